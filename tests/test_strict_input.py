"""Issue #12's examples of silently coerced or crashing input: strict types, finite numbers, cache geometries,
seeds. Each is exit 2 and one line on stderr naming the key."""

from __future__ import annotations

import subprocess
import sys

import pytest

WL = ["--workload", "criteo_zipf", "--workload-set", "num_batches=1", "--workload-set", "batch_size=4"]


@pytest.mark.parametrize("argv, words", [
    (["recross", "--set", "nmp.clock_mhz=true", *WL], "nmp.clock_mhz: input should be a valid number, got True"),
    (["cpu_ddr4", "--set", "host.fill_buffers='+5'", *WL], "host.fill_buffers: input should be a valid integer"),
    (["cpu_ddr4", "--set", "host.pool_op_energy_pJ=.inf", *WL], "host.pool_op_energy_pJ: input should be a finite"),
    (["cpu_ddr4", "--set", "dram.timing.tCK_ps=1.5e400", *WL], "dram.timing.tCK_ps"),
    (["cpu_ddr4", "--workload", "criteo_zipf", "--workload-set", "defaults.dim='-4'"],
     "defaults.dim: input should be a valid integer, got '-4'"),
    (["cpu_ddr4", "--workload", "criteo_zipf", "--workload-set", "defaults.index.s='-1'"],
     "defaults.index.s: input should be a valid number"),
    (["cpu_ddr4", "--workload", "criteo_zipf", "--workload-set", "seed=-1"], "seed: input should be greater"),
    (["recross", "--set", "nmp.rank_cache_kib=128", "--set", "nmp.rank_cache_ways=3", *WL],
     "rank_cache_kib 128 is not a whole number of 3-way sets"),
    (["pifs_rec", "--set", "cxl.pifs.buffer_ways=3", *WL], "buffer_kib 4096 is not a whole number of 3-way sets"),
])
def test_wrong_types_and_impossible_values_are_refused(tmp_path, argv, words):
    r = subprocess.run([sys.executable, "-m", "archsim.cli", "run", *argv, "--quiet", "--out", str(tmp_path / "o")],
                       capture_output=True, text=True)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and words in lines[0], lines
    assert not (tmp_path / "o").exists()  # nothing written


def test_empty_trace_is_refused(tmp_path):
    empty = tmp_path / "empty.trace"
    empty.write_text("")
    r = subprocess.run([sys.executable, "-m", "archsim.cli", "run", "dram_ddr4_dramsim3", "--trace", str(empty),
                        "--quiet", "--out", str(tmp_path / "o")], capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.strip() == f"archsim: error: {empty}: the trace holds no requests"
    assert not (tmp_path / "o").exists()


def test_a_value_that_cannot_be_computed_is_left_empty_and_explained(tmp_path):
    """A workload whose tables all go to near-data units: the host cores load nothing, so the load latency
    has no samples; summary.csv leaves it empty (not nan) and stats.json says why."""
    import csv
    import json

    out = tmp_path / "o"
    r = subprocess.run([sys.executable, "-m", "archsim.cli", "run", "recross", *WL, "--quiet", "--out", str(out)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    row = next(csv.DictReader(open(out / "summary.csv")))
    assert "nan" not in row.values() and "inf" not in row.values()
    assert row["load_latency_mean_ns"] == ""
    stats = json.loads((out / "stats.json").read_text())
    assert "load_latency_mean_ns" in stats["undefined_columns"]
