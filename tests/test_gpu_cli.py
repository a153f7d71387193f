"""``archsim validate gpu CASES.csv [--config HW] --out PRED.csv``: predictions written beside the measured
columns, a comparison table, and bad input as one line naming file:line (and column), exit 2, nothing written.

Cases are tiny (a 1,000-row table, 64 bags of 2) so the model runs in well under a second each; the CLI runs
in-process, so the HBM latency curve is measured once (it is cached per process) for the whole module.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from archsim import cli
from archsim.cli import main

ROOT = Path(__file__).resolve().parent.parent
REFERENCE_CSV = ROOT.parent / "shared" / "reference" / "gpu" / "h100_embedding_bag.csv"
HEADER = ("case,rows,dim,dtype,batch,pooling,dist,unique_rows_per_batch,op_time_us_median,kernel_time_ns,"
          "l2_hit_pct,l1_hit_pct,dram_read_bytes,dram_util_pct")
REQUIRED = "rows,dim,dtype,batch,pooling,dist"
PRED = ["pred_kernel_time_ns", "pred_l2_hit_pct", "pred_l1_hit_pct", "pred_dram_read_bytes", "pred_l2_hit_pct_launch"]
UNIFORM = "1000,32,float32,64,2,uniform"
ZIPF = "1000,32,float32,64,2,zipf1.05"
# made-up measurements (the model is not held to them here)
MEASURED_ROWS = [f"0,{UNIFORM},120,12.50,4200.0,60.0,30.0,12000,1.5",
                 f"1,{ZIPF},80,12.10,3900.0,80.5,55.0,6000,0.8"]


def _write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def _run(args, capsys):
    rc = main([str(a) for a in args])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def _read(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, newline="") as f:
        r = csv.DictReader(f)
        return list(r.fieldnames or []), list(r)


def _check_predictions(rows: list[dict[str, str]]) -> None:
    for r in rows:
        assert float(r["pred_kernel_time_ns"]) > 0
        assert 0.0 <= float(r["pred_l2_hit_pct"]) <= 100.0
        assert 0.0 <= float(r["pred_l1_hit_pct"]) <= 100.0
        assert int(r["pred_dram_read_bytes"]) >= 0
        assert 0.0 <= float(r["pred_l2_hit_pct_launch"]) <= 100.0


def test_header_is_the_references():
    if not REFERENCE_CSV.exists():
        pytest.skip(f"{REFERENCE_CSV} not here")
    assert REFERENCE_CSV.read_text().splitlines()[0] == HEADER


def test_reference_columns_predicted_and_compared(tmp_path, capsys):
    cases = _write(tmp_path, "cases.csv", "\n".join([HEADER, *MEASURED_ROWS]) + "\n")
    out = tmp_path / "pred.csv"
    rc, stdout, err = _run(["validate", "gpu", cases, "--out", out], capsys)
    assert rc == 0, err
    cols, rows = _read(out)
    assert cols == HEADER.split(",") + PRED
    _, inputs = _read(cases)
    assert [{k: r[k] for k in HEADER.split(",")} for r in rows] == inputs  # input columns unchanged
    _check_predictions(rows)
    assert "measured" in stdout and "predicted" in stdout
    last = stdout.strip().splitlines()[-1]
    assert last.startswith("2 cases: ") and last.endswith(" with kernel time within 20% and L2 hit rate within "
                                                          "5 points"), last
    within = int(last.split()[2])
    assert 0 <= within <= 2
    # the table: one row per case, named by the case column, with the signed error and point difference
    for r in rows:
        err_pct = (float(r["pred_kernel_time_ns"]) - float(r["kernel_time_ns"])) / float(r["kernel_time_ns"])
        assert f"{err_pct:+.1%}" in stdout
        assert f"{float(r['pred_l2_hit_pct']) - float(r['l2_hit_pct']):+.2f}" in stdout


def test_strict_exits_3_when_a_case_is_outside(tmp_path, capsys):
    rows = [f"0,{UNIFORM},120,12.50,1.0,60.0,30.0,12000,1.5",  # 1 ns: far outside 20%
            f"1,{ZIPF},80,12.10,,,,,"]  # not profiled: shown, not judged
    cases = _write(tmp_path, "cases.csv", "\n".join([HEADER, *rows]) + "\n")
    rc, stdout, _ = _run(["validate", "gpu", cases, "--out", tmp_path / "a.csv"], capsys)
    assert rc == 0
    assert stdout.strip().splitlines()[-1] == ("2 cases: 0 with kernel time within 20% and L2 hit rate within 5 "
                                               "points (1 without measured values)")
    rc, _, _ = _run(["validate", "gpu", cases, "--out", tmp_path / "b.csv", "--strict"], capsys)
    assert rc == 3
    assert (tmp_path / "b.csv").exists()  # the predictions are written all the same


def test_required_columns_only(tmp_path, capsys):
    cases = _write(tmp_path, "cases.csv", f"{REQUIRED}\n{UNIFORM}\n{ZIPF}\n")
    out = tmp_path / "sub" / "pred.csv"
    rc, stdout, err = _run(["validate", "gpu", cases, "--out", out, "--strict"], capsys)
    assert rc == 0, err
    cols, rows = _read(out)
    assert cols == REQUIRED.split(",") + PRED
    assert [r["dist"] for r in rows] == ["uniform", "zipf1.05"]
    _check_predictions(rows)
    assert stdout.strip().splitlines()[-1] == "2 cases predicted"
    assert "row" in stdout and "measured" not in stdout


def test_config_by_shipped_name(tmp_path, capsys):
    cases = _write(tmp_path, "cases.csv", f"{REQUIRED}\n{UNIFORM}\n")
    rc, stdout, err = _run(["validate", "gpu", cases, "--config", "gpu_h100", "--out", tmp_path / "p.csv"], capsys)
    assert rc == 0, err
    assert stdout.strip().splitlines()[-1] == "1 case predicted"


BAD = {
    # name: (CSV text, expected text in the line after "archsim: error: FILE", column named or None)
    "missing_column": ("rows,dim,dtype,batch,pooling\n1000,32,float32,64,2\n", ":1: missing column(s) dist", None),
    "rows_abc": (f"{REQUIRED}\nabc,32,float32,64,2,uniform\n", ":2: rows: must be a positive integer", "rows"),
    "rows_negative": (f"{REQUIRED}\n-5,32,float32,64,2,uniform\n", ":2: rows: must be a positive integer", "rows"),
    "dtype_float64": (f"{REQUIRED}\n1000,32,float64,64,2,uniform\n", ":2: dtype: must be one of", "dtype"),
    "dist_pareto": (f"{REQUIRED}\n1000,32,float32,64,2,pareto\n", ":2: dist: ", "dist"),
    "dist_zipf0": (f"{REQUIRED}\n{UNIFORM}\n1000,32,float32,64,2,zipf0\n", ":3: dist: ", "dist"),
    "too_few_fields": (f"{REQUIRED}\n{UNIFORM}\n1000,32,float32,64\n", ":3: a row with more or fewer fields", None),
    "empty": ("", ":1: missing column(s)", None),
    "header_only": (f"{REQUIRED}\n", ":1: no cases", None),
    "measured_not_a_number": (f"{REQUIRED},kernel_time_ns\n{UNIFORM},abc\n", ":2: kernel_time_ns: must be",
                              "kernel_time_ns"),
    "l2_over_100": (f"{REQUIRED},l2_hit_pct\n{UNIFORM},140\n", ":2: l2_hit_pct: must be", "l2_hit_pct"),
    "field_too_large": (f"{REQUIRED}\n1000,32,float32,64,2,\"{'x' * 200_000}\"\n", ":1: not a CSV file", None),
}


def _one_error_line(rc: int, out: str, err: str) -> str:
    assert rc == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("archsim: error: ") and "Traceback" not in err
    return lines[0]


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_cases_one_line_exit_2_nothing_written(tmp_path, capsys, case):
    text, expect, column = BAD[case]
    cases = _write(tmp_path, "cases.csv", text)
    out = tmp_path / "pred.csv"
    line = _one_error_line(*_run(["validate", "gpu", cases, "--out", out], capsys))
    assert line.startswith(f"archsim: error: {cases}{expect}"), line
    if column is not None:
        assert f": {column}: " in line
    assert not out.exists()


def test_binary_file(tmp_path, capsys):
    cases = tmp_path / "cases.csv"
    cases.write_bytes(bytes(range(256)) * 4)
    out = tmp_path / "pred.csv"
    line = _one_error_line(*_run(["validate", "gpu", cases, "--out", out], capsys))
    assert line.startswith(f"archsim: error: {cases}: cannot read the cases"), line
    assert not out.exists()


def test_missing_cases_file(tmp_path, capsys):
    cases = tmp_path / "nope.csv"
    line = _one_error_line(*_run(["validate", "gpu", cases, "--out", tmp_path / "p.csv"], capsys))
    assert line.startswith(f"archsim: error: {cases}: cannot read the cases"), line


def test_config_without_gpu(tmp_path, capsys):
    cases = _write(tmp_path, "cases.csv", f"{REQUIRED}\n{UNIFORM}\n")
    cfg = ROOT / "hwconfigs" / "cpu_ddr4.yaml"
    out = tmp_path / "pred.csv"
    line = _one_error_line(*_run(["validate", "gpu", cases, "--config", cfg, "--out", out], capsys))
    assert line == f"archsim: error: {cfg}: components: has no component of kind gpu (impl: gpu)"
    assert not out.exists()


def test_out_missing_or_a_directory(tmp_path, capsys):
    cases = _write(tmp_path, "cases.csv", f"{REQUIRED}\n{UNIFORM}\n")
    line = _one_error_line(*_run(["validate", "gpu", cases], capsys))
    assert "--out: needed for archsim validate gpu" in line
    line = _one_error_line(*_run(["validate", "gpu", cases, "--out", tmp_path], capsys))
    assert line == f"archsim: error: {tmp_path}: is a directory, not a file to write"
    line = _one_error_line(*_run(["validate", "gpu", "--out", tmp_path / "p.csv"], capsys))
    assert "needs CASES.csv" in line


def test_gpu_options_not_mixed_with_the_dram_validation(tmp_path, capsys):
    cases = _write(tmp_path, "cases.csv", f"{REQUIRED}\n{UNIFORM}\n")
    line = _one_error_line(*_run(["validate", "gpu", cases, "--out", tmp_path / "p.csv", "--only", "ddr4"], capsys))
    assert "--only: not for archsim validate gpu" in line
    line = _one_error_line(*_run(["validate", "--out", tmp_path / "p.csv"], capsys))
    assert "--out: only for archsim validate gpu" in line
    line = _one_error_line(*_run(["validate", "--protocol", "cold"], capsys))
    assert "--protocol: only for archsim validate gpu" in line
    line = _one_error_line(*_run(["validate", "--steady-state"], capsys))
    assert "--steady-state: only for archsim validate gpu" in line
    with pytest.raises(SystemExit) as e:  # a usage error: one line with the hint to --help
        main(["validate", "cpu"])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "invalid choice: 'cpu'" in err[0] and "--help" in err[0]


def test_protocols(tmp_path, capsys):
    """``--protocol``: kernel-replay (the default) reports the launch's L2 hits over a replay's lookups,
    ``cold`` and ``steady`` the launch's own hit rate (``pred_l2_hit_pct_launch`` in every case); the time and
    DRAM bytes of kernel-replay are cold's; ``--steady-state`` is ``--protocol steady``, and contradicting it
    is one line, exit 2, nothing written."""
    cases = _write(tmp_path, "cases.csv", f"{REQUIRED}\n{UNIFORM}\n{ZIPF}\n")
    got = {}
    for name, extra in (("default", []), ("kernel-replay", ["--protocol", "kernel-replay"]),
                        ("cold", ["--protocol", "cold"]), ("steady", ["--protocol", "steady"]),
                        ("steady-state", ["--steady-state"])):
        out = tmp_path / f"{name}.csv"
        rc, _, err = _run(["validate", "gpu", cases, "--out", out, *extra], capsys)
        assert rc == 0, err
        got[name] = _read(out)[1]
    assert got["default"] == got["kernel-replay"]
    assert got["steady"] == got["steady-state"]
    for kr, cold in zip(got["kernel-replay"], got["cold"]):
        for col in ("pred_kernel_time_ns", "pred_dram_read_bytes", "pred_l1_hit_pct", "pred_l2_hit_pct_launch"):
            assert kr[col] == cold[col]
        assert cold["pred_l2_hit_pct"] == cold["pred_l2_hit_pct_launch"]
        # the replay finds the launch's rows in the L2: fewer lookups than the launch's own, so a higher rate
        assert float(kr["pred_l2_hit_pct"]) > float(kr["pred_l2_hit_pct_launch"])
    for r in got["steady"]:
        assert r["pred_l2_hit_pct"] == r["pred_l2_hit_pct_launch"]
    out = tmp_path / "x.csv"
    line = _one_error_line(*_run(["validate", "gpu", cases, "--out", out, "--steady-state", "--protocol", "cold"],
                                 capsys))
    assert line == "archsim: error: --steady-state: contradicts --protocol cold"
    assert not out.exists()


def test_validate_help_lists_gpu(capsys):
    with pytest.raises(SystemExit) as e:
        main(["validate", "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for word in ("gpu", "CASES.csv", "--config", "--out", "--only", "--markdown", "--papers", "--strict",
                 "--protocol", "kernel-replay"):
        assert word in out


def test_plain_validate_unchanged(monkeypatch, capsys):
    """``archsim validate --only ddr4`` parses as before and runs the DRAM validation, not the GPU one (its
    cases stubbed out here: the real table takes minutes)."""
    from archsim import validation

    args = cli._parser().parse_args(["validate", "--only", "ddr4", "--strict"])
    assert args.what is None and args.cases is None and args.only == ["ddr4"] and args.strict

    def no_gpu(args):
        raise AssertionError("the GPU validation ran")

    monkeypatch.setattr(cli, "_cmd_validate_gpu", no_gpu)
    monkeypatch.setattr(validation, "dram_cases", lambda: [])
    assert main(["validate", "--only", "ddr4"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == "0 within tolerance, 0 outside"
