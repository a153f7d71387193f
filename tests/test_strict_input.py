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
