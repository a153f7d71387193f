"""The command line: bad input gives one line naming file:line and key path, exit 2, nothing written."""

from __future__ import annotations

import gzip
import subprocess
import sys
from pathlib import Path

import pytest

from archsim.cli import main

ROOT = Path(__file__).resolve().parent.parent
TRACE = ROOT / "validation/reference/dram/traces/stream_r_100k.trace.gz"
DDR4 = ROOT / "hwconfigs/dram_ddr4_dramsim3.yaml"


def _small_trace(tmp_path: Path, n: int = 200, text: str | None = None) -> Path:
    p = tmp_path / "t.trace"
    p.write_text(text if text is not None else "".join(f"0x{i * 64:x} R\n" for i in range(n)))
    return p


def _run(args, capsys):
    rc = main(args)
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def test_run_writes_results(tmp_path, capsys):
    out = tmp_path / "run"
    rc, stdout, _ = _run(["run", str(DDR4), "--trace", str(_small_trace(tmp_path)), "--out", str(out)], capsys)
    assert rc == 0
    assert sorted(p.name for p in out.iterdir()) == ["config.yaml", "stats.json", "summary.csv"]
    header, row = (out / "summary.csv").read_text().strip().split("\n")
    cols = header.split(",")
    for c in ("config_hash", "seed", "sim_time_ns", "wall_time_s", "requests", "reads", "writes",
              "bandwidth_GBps", "read_latency_mean_ns", "read_latency_p50_ns", "read_latency_p99_ns",
              "row_hit_rate", "energy_total_nJ", "energy_act_nJ", "energy_read_nJ", "energy_background_nJ"):
        assert c in cols
    assert dict(zip(cols, row.split(",")))["requests"] == "200"
    assert "bandwidth_GBps" in stdout


@pytest.mark.parametrize("case", ["malformed", "preset", "timing", "mapping", "missing_trace", "bad_gzip"])
def test_bad_input_one_line_exit_2_nothing_written(tmp_path, capsys, case):
    out = tmp_path / "results" / "x"
    trace = _small_trace(tmp_path)
    cfg = DDR4
    extra: list[str] = []
    expect = ""
    if case == "malformed":
        trace = _small_trace(tmp_path, text="0x40 R\n0x80 R\n0xzz R\n")
        expect = f"{trace}:3: malformed trace line"
    elif case == "preset":
        cfg = tmp_path / "c.yaml"
        cfg.write_text("name: c\ndram:\n  extends: ddr9_nonsense\n")
        expect = f"{cfg}:3: dram.extends: unknown preset 'ddr9_nonsense'"
    elif case == "timing":
        cfg = tmp_path / "c.yaml"
        cfg.write_text("name: c\ndram:\n  extends: ddr4_3200_8gb_x8\n  timing:\n    nRCD: -3\n")
        expect = f"{cfg}:5: dram.timing.nRCD: must be a positive integer, got -3"
    elif case == "mapping":
        cfg = tmp_path / "c.yaml"
        cfg.write_text("name: c\ndram:\n  extends: ddr4_3200_8gb_x8\n  mapping:\n    order: rochrabaco\n")
        expect = f"{cfg}:5: dram.mapping.order: 'rochrabaco' lacks field(s) bg"
    elif case == "missing_trace":
        trace = tmp_path / "nope.trace"
        expect = f"{trace}: trace file not found"
    elif case == "bad_gzip":
        trace = tmp_path / "t.trace.gz"
        body = "".join(f"0x{(i * 2654435761) % (1 << 33):x} R\n" for i in range(5000)).encode()
        data = gzip.compress(body)
        trace.write_bytes(data[: len(data) // 2])
        expect = f"{trace}: cannot read trace"
    rc, _, err = _run(["run", str(cfg), "--trace", str(trace), "--out", str(out), *extra], capsys)
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert expect in lines[0]
    assert not out.exists()
    assert not list((tmp_path / "results").glob("*")) if (tmp_path / "results").exists() else True


def test_override_error_names_the_set(tmp_path, capsys):
    rc, _, err = _run(["run", str(DDR4), "--trace", str(_small_trace(tmp_path)), "--set",
                       "dram.controller.row_policy=sideways", "--out", str(tmp_path / "o")], capsys)
    assert rc == 2
    assert err.startswith("archsim: error: --set dram.controller.row_policy=sideways: dram.controller.row_policy")


def test_mapping_bits_must_add_up(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("name: c\ndram:\n  extends: ddr4_3200_8gb_x8\n  mapping:\n    order: rochrababgcoco\n")
    rc, _, err = _run(["run", str(cfg), "--trace", str(_small_trace(tmp_path))], capsys)
    assert rc == 2
    assert f"{cfg}:5: dram.mapping.order: field 'co' appears twice" in err


def test_determinism_same_seed_bit_identical(tmp_path, capsys):
    outs = []
    for i in range(2):
        out = tmp_path / f"r{i}"
        assert main(["run", str(DDR4), "--trace", str(TRACE), "--out", str(out), "--quiet"]) == 0
        outs.append(out)
    a = (outs[0] / "stats.json").read_text()
    b = (outs[1] / "stats.json").read_text()
    assert a.replace(" ", "").count("\n") > 10 and a == b
    row = [(o / "summary.csv").read_text().split("\n")[1].split(",") for o in outs]
    hdr = (outs[0] / "summary.csv").read_text().split("\n")[0].split(",")
    wall = hdr.index("wall_time_s")
    assert [v for i, v in enumerate(row[0]) if i != wall] == [v for i, v in enumerate(row[1]) if i != wall]


def test_presets_and_schema(tmp_path, capsys):
    rc, out, _ = _run(["presets"], capsys)
    assert rc == 0 and "ddr4_3200_8gb_x8" in out and "hbm2_2gbps" in out
    schema = tmp_path / "s.json"
    assert main(["schema", "--out", str(schema)]) == 0
    import json

    s = json.loads(schema.read_text())
    assert "dram" in s["properties"]


def test_console_script_exit_status(tmp_path):
    r = subprocess.run([sys.executable, "-m", "archsim.cli", "run", "nosuch_preset", "--trace", "x"],
                       capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 2
    assert "config 'nosuch_preset' not found" in r.stderr
    assert "Traceback" not in r.stderr


# ------------------------------------------------------------------------------------------------------------
# Shipped hwconfigs and workloads by name
# ------------------------------------------------------------------------------------------------------------

SMALL_WL = ["num_batches=1", "batch_size=8"]


def test_run_shipped_hwconfig_and_workload_by_name_cli(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # names, not paths relative to the working directory
    by_name, by_path = tmp_path / "by_name", tmp_path / "by_path"
    sets = [a for s in SMALL_WL for a in ("--workload-set", s)]
    rc, _, err = _run(["run", "cpu_ddr4", "--workload", "zipf_small", *sets, "--out", str(by_name), "--quiet"],
                      capsys)
    assert rc == 0, err
    rc, _, err = _run(["run", str(ROOT / "hwconfigs/cpu_ddr4.yaml"), "--workload",
                       str(ROOT / "workloads/zipf_small.yaml"), *sets, "--out", str(by_path), "--quiet"], capsys)
    assert rc == 0, err
    a, b = ((d / "summary.csv").read_text().split("\n") for d in (by_name, by_path))
    wall = a[0].split(",").index("wall_time_s")
    same = [[v for i, v in enumerate(row.split(",")) if i != wall] for row in (a[1], b[1])]
    assert same[0] == same[1] and "lookups" in a[0]  # the same run, config_hash included
    assert (by_name / "config.yaml").read_text() == (by_path / "config.yaml").read_text()


def test_run_shipped_hwconfig_and_workload_by_name_api(tmp_path, monkeypatch):
    from archsim.api import run

    monkeypatch.chdir(tmp_path)
    res = run("recross", workload="zipf_small", workload_overrides=SMALL_WL)
    ref = run(ROOT / "hwconfigs/recross.yaml", workload=ROOT / "workloads/zipf_small.yaml",
              workload_overrides=SMALL_WL)
    assert res.name == "recross" and res.config_hash == ref.config_hash
    assert res.summary["lookups"] == ref.summary["lookups"] > 0
    # a preset name still works, and the preset's relative name too
    assert run("default", trace=_small_trace(tmp_path)).config_hash == run(
        "systems/default", trace=_small_trace(tmp_path)).config_hash


@pytest.mark.parametrize("what", ["hwconfig", "workload"])
def test_unknown_name_one_line_exit_2(tmp_path, capsys, monkeypatch, what):
    monkeypatch.chdir(tmp_path)
    args = ["run", "cpu_ddr9", "--workload", "criteo_zipf"] if what == "hwconfig" else \
        ["run", "cpu_ddr4", "--workload", "criteo_zipg"]
    rc, out, err = _run([*args, "--out", str(tmp_path / "o")], capsys)
    assert rc == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    name = args[1] if what == "hwconfig" else args[3]
    kind = "config" if what == "hwconfig" else "workload"
    assert lines[0].startswith(f"archsim: error: {kind} '{name}' not found: not a file, not a shipped {what}")
    assert "archsim presets" in lines[0]
    assert not (tmp_path / "o").exists()


def test_presets_lists_shipped_hwconfigs_workloads_and_presets(capsys):
    rc, out, _ = _run(["presets"], capsys)
    assert rc == 0
    headers = [line for line in out.splitlines() if line and not line.startswith(" ")]
    assert [h.split(" (")[0] for h in headers[:3]] == ["Shipped hwconfigs", "Shipped workloads",
                                                       "Built-in presets"]
    listed = {line.split()[0] for line in out.splitlines() if line.startswith("  ")}
    stems = {p.stem for d in ("hwconfigs", "workloads") for p in (ROOT / d).glob("*.yaml")}
    assert len(stems) >= 20 and stems <= listed
    assert {"default", "ddr4_3200_8gb_x8", "hbm2_2gbps"} <= listed
    cpu = next(line for line in out.splitlines() if line.split()[:1] == ["cpu_ddr4"])
    assert "40-core" in cpu  # with its description


def test_readme_lists_every_command_and_shipped_hwconfig():
    import argparse

    from archsim.cli import _parser
    from archsim.config import list_shipped

    readme = (ROOT / "README.md").read_text()
    sub = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    for cmd in {*sub.choices, "show"}:
        assert f"| `archsim {cmd}" in readme, cmd
    for hw in list_shipped("hwconfig"):
        assert f"- `{hw['name']}`: {hw['description']}\n" in readme, hw["name"]
    assert "averages the metric over every column it does not draw" in readme


@pytest.mark.parametrize("argv, words", [
    (["run", "cpu_ddr4", "--seed", "abc"], "argument --seed: invalid int value: 'abc' (see archsim run --help)"),
    (["sweep"], "the following arguments are required: spec (see archsim sweep --help)"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
])
def test_usage_errors_are_one_line_with_a_hint(argv, words):
    """argparse's usage block is not printed: one line naming the problem and where --help is, exit 2."""
    r = subprocess.run([sys.executable, "-m", "archsim.cli", *argv], capture_output=True, text=True)
    assert r.returncode == 2 and r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("archsim: error: ") and words in lines[0], lines


def test_internal_error_is_one_line_with_the_traceback_in_a_file(monkeypatch, capsys):
    """A bug (any exception that is not bad input) is exit 1, one line naming it and the log that holds the
    traceback; no traceback on the terminal."""
    from archsim import cli

    def boom(args):
        raise ZeroDivisionError("division by zero in a model")

    monkeypatch.setattr(cli, "_cmd_presets", boom)
    assert cli.main(["presets"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("archsim: internal error: ZeroDivisionError: division by zero")
    log = err[0].rsplit("full traceback in ", 1)[1].rstrip(")")
    text = Path(log).read_text()
    assert "Traceback" in text and "boom" in text
    Path(log).unlink()


def test_validate_reports_rows_outside_tolerance_and_exits_0_unless_strict(monkeypatch, capsys):
    """validate ran: exit 0 even with rows outside tolerance (it reports them); --strict makes that exit 3."""
    from archsim import cli, validation

    bad = validation.Check("case", "metric", 1.0, 2.0, 1.0, 0.1, "rel")
    monkeypatch.setattr(validation, "dram_cases", lambda: [])
    monkeypatch.setattr(validation, "model_checks", lambda: [bad])
    assert cli.main(["validate"]) == 0
    assert "0 within tolerance, 1 outside" in capsys.readouterr().out
    assert cli.main(["validate", "--strict"]) == 3


@pytest.mark.parametrize("args", [["presets"], ["sweep", "examples/sweep_efficiency.yaml", "--dry-run"]])
def test_a_reader_that_goes_away_ends_the_command_quietly(args):
    """``archsim presets | head -1``: the reader closes the pipe; archsim stops with exit status 141 (128 +
    SIGPIPE, as the shell's tools do) and writes nothing to stderr (no 'internal error', no 'Exception
    ignored')."""
    import os

    root = Path(__file__).resolve().parents[1]
    r, w = os.pipe()
    os.close(r)  # the reader is gone before the first line: every write fails with EPIPE
    try:
        p = subprocess.run([sys.executable, "-m", "archsim.cli", *args], cwd=root, stdout=w,
                           stderr=subprocess.PIPE, timeout=120)
    finally:
        os.close(w)
    assert p.returncode == 141 and p.stderr.decode() == "", (p.returncode, p.stderr.decode())
