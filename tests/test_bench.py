"""``archsim bench``: the DRAM trace lines and one line per architecture, each workload line with its ratio to
the random trace of the same run; ``--only`` runs a subset and refuses unknown names (exit 2, one line)."""

from __future__ import annotations

import json

import pytest

from archsim.cli import main
from archsim.report.bench import ARCHITECTURES, DEFAULT_SIZE, RANDOM_TRACE, TRACES, WORKLOAD, architectures


def test_bench_only_two_architectures_writes_ratios(tmp_path, capsys):
    out = tmp_path / "bench.json"
    rc = main(["bench", "--only", "recnmp", "--only", "recross", "--repeat", "1", "--out", str(out)])
    assert rc == 0
    printed = capsys.readouterr().out
    data = json.loads(out.read_text())
    # the keys old readers use are kept
    for key in ("config", "window", "unit", "engine", "repeat", "statistic", "date", "traces", "workloads"):
        assert key in data, key
    assert data["repeat"] == 1 and data["only"] == ["recnmp", "recross"]
    # --only names architectures: the random trace still runs (every ratio is to it), the other traces do not
    assert list(data["traces"]) == [RANDOM_TRACE]
    ref = data["traces"][RANDOM_TRACE]
    assert ref["requests"] == 100_000 and ref["requests_per_s"] > 0 and len(ref["walls_s"]) == 1
    assert list(data["workloads"]) == [f"recnmp/{WORKLOAD}", f"recross/{WORKLOAD}"]
    for name, line in data["workloads"].items():
        hw = name.split("/")[0]
        nb, bs = ARCHITECTURES[hw]
        assert line["hwconfig"] == hw and line["workload"] == WORKLOAD
        assert line["workload_overrides"] == [f"num_batches={nb}", f"batch_size={bs}"]
        assert line["lookups"] == nb * bs * 8 * 80  # criteo_zipf: 8 tables, pooling 80
        assert line["lookups_per_s"] > 0 and line["wall_s"] > 0 and line["warmup_wall_s"] > 0
        assert line["lookups_per_s"] == pytest.approx(line["lookups"] / line["wall_s"], rel=2e-3)
        assert line["ratio_to_random_dram"] == pytest.approx(line["lookups_per_s"] / ref["requests_per_s"],
                                                             rel=1e-3)
        assert f"{hw} {WORKLOAD}" in printed
    assert f"written {out}" in printed


def test_bench_only_a_trace_runs_no_architecture(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["bench", "--only", "stream_r_100k", "--repeat", "1", "--out", str(out)]) == 0
    data = json.loads(out.read_text())
    assert list(data["traces"]) == [t for t in TRACES if t in ("stream_r_100k", RANDOM_TRACE)]
    assert data["workloads"] == {}


@pytest.mark.parametrize("only", ["cpu_ddr9", "recnmp,nope", ",", "dram_ddr4_dramsim3"])
def test_bench_bad_only_is_one_line_exit_2(tmp_path, capsys, only):
    out = tmp_path / "bench.json"
    rc = main(["bench", "--only", only, "--out", str(out)])
    cap = capsys.readouterr()
    assert rc == 2 and cap.out == ""
    lines = cap.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("archsim: error: --only: "), lines
    assert not out.exists()


def test_bench_bad_repeat_is_one_line_exit_2(tmp_path, capsys):
    rc = main(["bench", "--repeat", "0", "--out", str(tmp_path / "b.json")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "--repeat: must be >= 1" in err[0]


def test_architectures_are_the_shipped_ones():
    """Every shipped hwconfig that is an architecture has a bench line (a new one at the default size): all but
    the DRAM-only validation set-ups (traces only) and the papers' set-ups; the sized ones keep their order."""
    from archsim.config import list_shipped

    shipped = {h["name"] for h in list_shipped("hwconfig")}
    expected = {n for n in shipped if not n.startswith(("dram_ddr", "dram_hbm")) and "_paper" not in n}
    got = architectures()
    assert set(got) == expected
    assert set(ARCHITECTURES) <= shipped
    assert list(got)[:len(ARCHITECTURES)] == list(ARCHITECTURES)
    assert all(got[n] == DEFAULT_SIZE for n in set(got) - set(ARCHITECTURES))
