"""Sweeps: spec expansion and validation, executors giving identical tables, the result store and resume."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from archsim.config import ConfigError
from archsim.sweep import expand_points, load_sweep, run_sweep
from archsim.sweep.cli import main as sweep_main
from archsim.sweep.store import KeyResolver

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
HW = ROOT / "hwconfigs" / "cpu_ddr4.yaml"
WL = ROOT / "workloads" / "zipf_small.yaml"


def _spec(tmp_path: Path, body: str, name: str = "s.yaml") -> Path:
    p = tmp_path / name
    head = (f"base:\n  hwconfig: {HW}\n  workload: {WL}\n  overrides:\n    workload.num_batches: 1\n"
            "timeout: 60\n")
    p.write_text(head + textwrap.dedent(body))
    return p


def _line_of(path: Path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def _identity(df: pd.DataFrame) -> pd.DataFrame:
    return df.drop(columns=["wall_time_s"]).reset_index(drop=True)


# 40 tiny points with the axes of examples/sweep_cpu_ddr4.yaml (fewer values)
SMALL40 = """\
axes:
  hw.dram.org.channels: [2, 4]
  workload.batch_size: {start: 1, stop: 2}
  workload.defaults.index.s: {start: 0.5, stop: 1.4, step: 0.1}
"""


# ------------------------------------------------------------------------------------------------------------
# Expansion
# ------------------------------------------------------------------------------------------------------------


def test_product_ranges_log2_values(tmp_path):
    spec = _spec(tmp_path, """\
        seed: 3
        axes:
          hw.dram.org.channels: {log2: {start: 1, stop: 8}}
          workload.batch_size: {start: 2, stop: 6, step: 2}
          workload.defaults.index.s: {start: 0.5, stop: 1.0, step: 0.25}
          hw.host.cores: {values: [8, 16]}
        """)
    sweep = load_sweep(spec)
    assert [a.values for a in sweep.axes] == [(1, 2, 4, 8), (2, 4, 6), (0.5, 0.75, 1.0), (8, 16)]
    points = expand_points(sweep)
    assert len(points) == 4 * 3 * 3 * 2 == sweep.grid_size
    first, last = points[0], points[-1]
    assert first.axes == {"hw.dram.org.channels": 1, "workload.batch_size": 2,
                          "workload.defaults.index.s": 0.5, "hw.host.cores": 8}
    assert last.axes["hw.dram.org.channels"] == 8 and last.axes["hw.host.cores"] == 16
    assert first.overrides == ["dram.org.channels=1", "host.cores=8"]
    assert first.workload_overrides == ["num_batches=1", "batch_size=2", "defaults.index.s=0.5"]
    assert first.seed == 3
    # the last axis varies fastest
    assert [p.axes["hw.host.cores"] for p in points[:4]] == [8, 16, 8, 16]


def test_zip_groups_and_seed_axis(tmp_path):
    spec = _spec(tmp_path, """\
        axes:
          seed: [0, 1]
        zip:
          - hw.dram.org.channels: [1, 2, 4]
            workload.batch_size: [4, 2, 1]
        """)
    points = expand_points(spec)
    assert len(points) == 6
    pairs = {(p.axes["hw.dram.org.channels"], p.axes["workload.batch_size"]) for p in points}
    assert pairs == {(1, 4), (2, 2), (4, 1)}
    assert [p.seed for p in points] == [0, 0, 0, 1, 1, 1]
    assert load_sweep(spec).axis_keys == ["seed", "hw.dram.org.channels", "workload.batch_size"]


def test_constraints_drop_points(tmp_path):
    spec = _spec(tmp_path, """\
        axes:
          hw.dram.org.channels: [1, 2, 4, 8]
          workload.batch_size: [1, 2, 4, 8]
          hw.dram.controller.row_policy: [open, closed]
        constraints:
          - "hw.dram.org.channels * workload.batch_size <= 8"
          - "not (channels == 4 and row_policy == 'closed') or min(batch_size, 2) == 1"
        """)
    points = expand_points(spec)
    kept = [(p.axes["hw.dram.org.channels"], p.axes["workload.batch_size"],
             p.axes["hw.dram.controller.row_policy"]) for p in points]
    expected = [(c, b, r) for c in (1, 2, 4, 8) for b in (1, 2, 4, 8) for r in ("open", "closed")
                if c * b <= 8 and (not (c == 4 and r == "closed") or min(b, 2) == 1)]
    assert kept == expected and len(kept) == 19
    assert points[0].overrides == ['dram.org.channels=1', 'dram.controller.row_policy="open"']


@pytest.mark.parametrize("case", ["prefix", "zip_lengths", "call", "attribute_call", "dunder", "power",
                                  "lambda", "unknown_name", "ambiguous", "syntax", "empty", "bad_range",
                                  "log2", "workload_on_trace", "both_workload_and_trace"])
def test_bad_spec_names_file_line_and_key(tmp_path, case):
    body, marker, expect = {
        "prefix": ("axes:\n  dram.org.channels: [1, 2]\n", "dram.org.channels", "unknown axis"),
        "zip_lengths": ("zip:\n  - hw.dram.org.channels: [1, 2]\n    workload.batch_size: [1, 2, 3]\n",
                        "- hw.dram.org.channels", "equal lengths"),
        "call": ("axes:\n  hw.dram.org.channels: [1]\nconstraints:\n  - \"open('x') == 1\"\n", "open(",
                 "not allowed"),
        "attribute_call": ("axes:\n  hw.dram.org.channels: [1]\nconstraints:\n  - \"'a'.upper() == 'A'\"\n",
                           "upper", "not allowed"),
        "dunder": ("axes:\n  hw.dram.org.channels: [1]\nconstraints:\n  - \"channels.__class__ == 1\"\n",
                   "__class__", "not an axis"),
        "power": ("axes:\n  hw.dram.org.channels: [1]\nconstraints:\n  - \"channels ** 2 < 9\"\n", "**",
                  "not allowed"),
        "lambda": ("axes:\n  hw.dram.org.channels: [1]\nconstraints:\n  - \"(lambda: 1)() == 1\"\n", "lambda",
                   "not allowed"),
        "unknown_name": ("axes:\n  hw.dram.org.channels: [1]\nconstraints:\n  - \"cores < 8\"\n", "cores",
                         "not an axis"),
        "ambiguous": ("axes:\n  hw.dram.org.channels: [1]\n  hw.x.channels: [1]\nconstraints:\n"
                      "  - \"channels < 8\"\n", "channels <", "ambiguous"),
        "syntax": ("axes:\n  hw.dram.org.channels: [1]\nconstraints:\n  - \"channels <\"\n", "channels <",
                   "invalid expression"),
        "empty": ("axes:\n  hw.dram.org.channels: []\n", "hw.dram.org.channels", "no values"),
        "bad_range": ("axes:\n  workload.batch_size: {start: 4, stop: 1}\n", "workload.batch_size", "empty"),
        "log2": ("axes:\n  workload.batch_size: {log2: {start: 3, stop: 16}}\n", "workload.batch_size",
                 "power of two"),
        "workload_on_trace": None,
        "both_workload_and_trace": None,
    }[case] or (None, None, None)
    if case in ("workload_on_trace", "both_workload_and_trace"):
        trace = tmp_path / "t.trace"
        trace.write_text("0x40 R\n")
        spec = tmp_path / "s.yaml"
        wl = f"  workload: {WL}\n" if case == "both_workload_and_trace" else ""
        spec.write_text(f"base:\n  hwconfig: {HW}\n  trace: t.trace\n{wl}axes:\n  workload.batch_size: [1]\n")
        marker, expect = (("workload.batch_size", "needs base.workload") if not wl
                          else ("base:", "exactly one"))
    else:
        spec = _spec(tmp_path, body)
    with pytest.raises(ConfigError) as info:
        expand_points(load_sweep(spec))
    msg = str(info.value)
    assert msg.startswith(f"{spec}:{_line_of(spec, marker)}: "), msg
    assert expect in msg and "\n" not in msg


def test_unknown_key_and_missing_base(tmp_path):
    spec = tmp_path / "s.yaml"
    spec.write_text("name: x\nbase:\n  hwconfig: h.yaml\n  workload: w.yaml\naxis:\n  hw.a: [1]\n")
    with pytest.raises(ConfigError, match=rf"^{spec}:5: axis: unknown key"):
        load_sweep(spec)
    spec.write_text("name: x\naxes:\n  hw.a: [1]\n")
    with pytest.raises(ConfigError, match=rf"^{spec}:1: base: required key missing"):
        load_sweep(spec)


def test_constraint_evaluation_error_names_the_constraint(tmp_path):
    # (channels 0 would be refused as a value before the constraint is evaluated: tests/test_sweep_reliability.py)
    spec = _spec(tmp_path, 'axes:\n  hw.dram.org.channels: [1, 2]\nconstraints:\n  - "8 // (channels - 1) > 1"\n')
    line = _line_of(spec, "8 // (channels - 1)")
    with pytest.raises(ConfigError, match=rf"s.yaml:{line}: constraints\[0\]: cannot evaluate .*division"):
        expand_points(spec)


# ------------------------------------------------------------------------------------------------------------
# Running
# ------------------------------------------------------------------------------------------------------------


def test_sweep_small_example_with_two_processes(tmp_path):
    out = tmp_path / "small"
    df = run_sweep(EXAMPLES / "sweep_small.yaml", jobs=2, out=out, progress=False)
    assert len(df) == 24 and (df["status"] == "ok").all() and df["error"].isna().all()
    assert list(df.columns[:6]) == ["key", "hw.dram.org.channels", "workload.batch_size",
                                    "workload.defaults.index.s", "status", "error"]
    assert "lookups_per_s" in df.columns and "dram_ch0_bandwidth_GBps" not in df.columns  # metrics: kept only
    assert (df["hw.dram.org.channels"] * df["workload.batch_size"] <= 512).all()
    assert len(list((out / "points").glob("*.json"))) == 24
    csv = pd.read_csv(out / "results.csv")
    assert len(csv) == 24 and list(csv.columns) == list(df.columns)
    assert len(pd.read_parquet(out / "results.parquet")) == 24
    assert json.loads((out / "manifest.json").read_text())["name"] == "sweep_small"
    # a second run reuses every point
    again = run_sweep(EXAMPLES / "sweep_small.yaml", out=out, progress=False)
    assert again.attrs["sweep"]["ran"] == 0 and again.attrs["sweep"]["reused"] == 24
    pd.testing.assert_frame_equal(again, df)


def test_keys_match_the_api_hash(tmp_path):
    spec = _spec(tmp_path, "axes:\n  hw.dram.org.channels: [1, 2]\n  workload.batch_size: [1, 2]\n")
    df = run_sweep(spec, out=tmp_path / "o", progress=False)
    sweep = load_sweep(spec)
    resolver = KeyResolver(sweep)
    for p in expand_points(sweep):
        key, config_hash, seed = resolver.resolve(p)
        rec = json.loads((tmp_path / "o" / "points" / f"{key}.json").read_text())
        assert rec["config_hash"] == config_hash  # as archsim.api.run computed it in the worker
        assert rec["summary"]["config_hash"] == config_hash[:16] and rec["seed"] == seed == 0
    assert df["key"].nunique() == 4


def test_interrupted_sweep_resumes_only_missing_points(tmp_path):
    spec = _spec(tmp_path, SMALL40)
    full = run_sweep(spec, out=tmp_path / "full", progress=False)
    assert len(full) == 40 and (full["status"] == "ok").all()

    seen: list[str] = []

    def stop_after_15(rec):
        seen.append(rec["key"])
        if len(seen) == 15:
            raise KeyboardInterrupt

    out = tmp_path / "resumed"
    with pytest.raises(KeyboardInterrupt):
        run_sweep(spec, jobs=2, out=out, progress=False, on_result=stop_after_15)
    stored = sorted(p.stem for p in (out / "points").glob("*.json"))
    assert stored == sorted(seen)  # exactly the recorded points, nothing half-written
    assert not [p for p in (out / "points").iterdir() if not p.name.endswith(".json")]
    assert not (out / "results.csv").exists()

    df = run_sweep(spec, jobs=2, out=out, progress=False)
    st = df.attrs["sweep"]
    assert st["reused"] == 15 and st["ran"] == 40 - 15 and st["failed"] == 0
    pd.testing.assert_frame_equal(_identity(df), _identity(full))


def test_example_500_point_sweep_killed_halfway_resumes_only_missing_points(tmp_path):
    """examples/sweep_cpu_ddr4.yaml as shipped: 500 points with -j 2, interrupted after 250, resumed."""
    spec = EXAMPLES / "sweep_cpu_ddr4.yaml"
    full = run_sweep(spec, jobs=2, out=tmp_path / "full", progress=False)
    assert len(full) == 500 and (full["status"] == "ok").all()
    seen: list[str] = []

    def stop_halfway(rec):
        seen.append(rec["key"])
        if len(seen) == 250:
            raise KeyboardInterrupt

    out = tmp_path / "resumed"
    with pytest.raises(KeyboardInterrupt):
        run_sweep(spec, jobs=2, out=out, progress=False, on_result=stop_halfway)
    assert len(list((out / "points").glob("*.json"))) == 250
    df = run_sweep(spec, jobs=2, out=out, progress=False)
    st = df.attrs["sweep"]
    assert st["reused"] == 250 and st["ran"] == 250 and st["failed"] == 0
    pd.testing.assert_frame_equal(_identity(df), _identity(full))


def test_dask_local_cluster_gives_identical_results(tmp_path):
    distributed = pytest.importorskip("distributed")
    spec = _spec(tmp_path, SMALL40)
    serial = run_sweep(spec, out=tmp_path / "serial", progress=False)
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                       dashboard_address=None)
    with cluster, distributed.Client(cluster) as client:
        on_dask = run_sweep(spec, dask=client, out=tmp_path / "dask", progress=False)
    assert (on_dask["status"] == "ok").all()
    pd.testing.assert_frame_equal(_identity(on_dask), _identity(serial))


def test_invalid_point_is_recorded_failed_and_the_rest_finish(tmp_path, capsys):
    # values that validate on their own (a value that does not is a spec error: tests/test_sweep_reliability.py),
    # but tables of 10^11 rows do not fit the memory: those points fail, the others run
    spec = _spec(tmp_path, """\
        axes:
          hw.dram.timing.nRCD: [20, 22]
          workload.defaults.rows: [100000000000, 1000]
        retries: 2
        """)
    out = tmp_path / "o"
    rc = sweep_main([str(spec), "--out", str(out)])
    assert rc == 1  # some points failed
    df = pd.read_csv(out / "results.csv")
    assert list(df["status"]) == ["failed", "ok", "failed", "ok"]
    errors = list(df["error"][::2])
    assert all("\n" not in e for e in errors)
    assert all("tables: the tables need 23841.86 GiB but cpu_ddr4 holds 256.00 GiB" in e for e in errors)
    recs = {p.stem: json.loads(p.read_text()) for p in (out / "points").glob("*.json")}
    failed = [r for r in recs.values() if r["status"] == "failed"]
    assert len(failed) == 2
    assert all(r["attempts"] == 1 and r["error_kind"] == "input" for r in failed)  # bad input is not retried
    assert "4 points: 2 ok, 2 failed" in capsys.readouterr().err
    # a later run retries the failed points only
    df2 = run_sweep(spec, out=out, progress=False)
    assert df2.attrs["sweep"]["reused"] == 2 and df2.attrs["sweep"]["failed"] == 2


def test_internal_errors_are_retried(tmp_path, monkeypatch):
    import archsim.sweep.executors as ex

    calls: dict[str, int] = {}
    real = ex.run_point

    def flaky(task):
        calls[task["key"]] = calls.get(task["key"], 0) + 1
        if calls[task["key"]] == 1:
            return {"key": task["key"], "status": "failed", "error": "RuntimeError: flaky",
                    "error_kind": "internal", "summary": None, "config_hash": None}
        return real(task)

    monkeypatch.setattr(ex, "run_point", flaky)
    spec = _spec(tmp_path, "axes:\n  workload.batch_size: [1, 2]\n")
    df = run_sweep(spec, out=tmp_path / "a", progress=False)
    assert (df["status"] == "ok").all() and set(calls.values()) == {2}
    rec = json.loads(next((tmp_path / "a" / "points").glob("*.json")).read_text())
    assert rec["attempts"] == 2
    spec.write_text(spec.read_text() + "retries: 0\n")
    calls.clear()
    df = run_sweep(spec, out=tmp_path / "b", progress=False)
    assert (df["status"] == "failed").all() and (df["error"] == "RuntimeError: flaky").all()


def test_timeout_fails_a_point_without_retry(tmp_path):
    spec = _spec(tmp_path, "axes:\n  workload.num_batches: [1, 100000]\n  workload.batch_size: [4]\n")
    spec.write_text(spec.read_text().replace("timeout: 60", "timeout: 2"))
    df = run_sweep(spec, out=tmp_path / "o", progress=False)
    assert list(df["status"]) == ["ok", "failed"] and df["error"][1] == "timed out after 2 s"
    rec = json.loads((tmp_path / "o" / "points" / f"{df['key'][1]}.json").read_text())
    assert rec["error_kind"] == "timeout" and rec["attempts"] == 1


def test_cli_bad_spec_one_line_exit_2(tmp_path, capsys):
    spec = _spec(tmp_path, "axes:\n  dram.org.channels: [1]\n")
    assert sweep_main([str(spec)]) == 2
    err = capsys.readouterr().err.strip()
    line = _line_of(spec, "dram.org.channels")
    assert err.startswith(f"archsim: error: {spec}:{line}: axes.dram.org.channels: unknown axis")
    assert "\n" not in err
    assert sweep_main([str(spec).replace("s.yaml", "missing.yaml")]) == 2


def test_callable_module_and_dry_run(tmp_path, capsys):
    import archsim.sweep

    spec = _spec(tmp_path, "axes:\n  workload.batch_size: [1, 2, 3]\n")
    df = archsim.sweep(spec, executor=None, out=tmp_path / "o")
    assert len(df) == 3 and (df["status"] == "ok").all()
    assert sweep_main([str(spec), "--dry-run"]) == 0
    assert "3 points" in capsys.readouterr().out


def test_cpu_ddr4_example_has_500_points():
    sweep = load_sweep(EXAMPLES / "sweep_cpu_ddr4.yaml")
    assert len(expand_points(sweep)) == 500
    assert [a.key for a in sweep.axes] == ["hw.dram.org.channels", "workload.batch_size",
                                           "workload.defaults.index.s"]


# ------------------------------------------------------------------------------------------------------------
# hwconfig and workload axes
# ------------------------------------------------------------------------------------------------------------

SYSTEMS = ["cpu_ddr4", "recnmp", "recross", "cxl_pool", "pifs_rec"]


def test_sweep_systems_example_one_table_of_five_systems(tmp_path):
    out = tmp_path / "systems"
    df = run_sweep(EXAMPLES / "sweep_systems.yaml", jobs=2, out=out, progress=False)
    assert len(df) == 5 and list(df.columns[:4]) == ["key", "hwconfig", "status", "error"]
    assert list(df["hwconfig"]) == SYSTEMS and (df["status"] == "ok").all(), df["error"]
    for col in ("lookups_per_s", "batch_latency_p50_us", "mem_bandwidth_GBps", "energy_per_lookup_dynamic_nJ"):
        assert df[col].notna().all() and (df[col] > 0).all(), col
    from archsim.system.metrics import CORE_COLUMNS

    for col in CORE_COLUMNS:  # every core column filled on every system (docs/metrics.md)
        assert col in df.columns and df[col].notna().all(), col
    assert (df["mem_bandwidth_GBps"] <= df["mem_peak_bandwidth_GBps"]).all()
    assert (df["lookups"] == 32 * 8 * 80).all()  # 1 batch of 32 bags, 8 tables, pooling 80
    assert df["key"].nunique() == 5
    recs = [json.loads((out / "points" / f"{k}.json").read_text()) for k in df["key"]]
    assert [r["hwconfig"] for r in recs] == SYSTEMS and all(r["workload"] == "criteo_zipf" for r in recs)
    assert list(pd.read_csv(out / "results.csv")["hwconfig"]) == SYSTEMS


def test_hwconfig_and_workload_axes_names_paths_and_keys(tmp_path):
    (tmp_path / "sub").mkdir()
    spec = tmp_path / "sub" / "s.yaml"
    spec.write_text(textwrap.dedent(f"""\
        base:
          overrides:
            workload.num_batches: 1
            workload.batch_size: 4
        axes:
          hwconfig: [cpu_ddr4, {ROOT / "hwconfigs" / "cpu_ddr4.yaml"}, ../../nope.yaml]
          workload: [zipf_small, ../w.yaml]
        """))
    (tmp_path / "w.yaml").write_text(f"extends: {WL}\nname: w\n")
    with pytest.raises(ConfigError) as info:
        load_sweep(spec)
    assert str(info.value).startswith(f"{spec}:6: axes.hwconfig[2]: hwconfig file not found: ")
    spec.write_text(spec.read_text().replace(", ../../nope.yaml", ""))
    sweep = load_sweep(spec)
    points = expand_points(sweep)
    assert [tuple(p.axes.values()) for p in points] == [("cpu_ddr4", "zipf_small"), ("cpu_ddr4", "w"),
                                                        ("cpu_ddr4", "zipf_small"), ("cpu_ddr4", "w")]
    assert points[1].workload == str(tmp_path / "w.yaml") and points[0].hwconfig == "cpu_ddr4"
    assert points[2].hwconfig == "cpu_ddr4"  # the same file as its first spelling
    df = run_sweep(sweep, out=tmp_path / "o", progress=False)
    assert (df["status"] == "ok").all() and list(df["workload"]) == ["zipf_small", "w"] * 2
    # the key holds the resolved content: a name and a path to the same file are one run
    assert df["key"][0] == df["key"][2] and df["key"][1] == df["key"][3] and df["key"][0] != df["key"][1]
    assert df.attrs["sweep"]["unique"] == 2


def test_hw_axis_key_missing_in_one_hwconfig_is_an_invalid_point(tmp_path):
    spec = tmp_path / "s.yaml"
    spec.write_text(textwrap.dedent(f"""\
        base:
          workload: {WL}
          overrides:
            workload.num_batches: 1
            workload.batch_size: 4
        axes:
          hwconfig: [cpu_ddr4, recnmp]
          hw.nmp.lanes: [4, 8]
          hw.dram.org.channels: [2]
        """))
    df = run_sweep(spec, out=tmp_path / "o", progress=False)
    assert list(df["hwconfig"]) == ["cpu_ddr4"] * 2 + ["recnmp"] * 2
    assert list(df["status"]) == ["failed", "failed", "ok", "ok"]
    assert df["error"][0] == ("--set nmp.lanes=4: nmp.lanes: cpu_ddr4 has no 'nmp' (with a hwconfig or "
                              "workload axis an override does not create a missing section)")
    assert df["key"].nunique() == 4
    recs = {k: json.loads((tmp_path / "o" / "points" / f"{k}.json").read_text()) for k in df["key"]}
    assert all(r["error_kind"] == "input" for r in recs.values() if r["status"] == "failed")
    assert recs[df["key"][3]]["overrides"] == ["nmp.lanes=8", "dram.org.channels=2"]  # every point gets them
    # an unknown key is a spec error before anything runs (the schema is every hwconfig's)
    spec.write_text(spec.read_text().replace("hw.nmp.lanes: [4, 8]", "hw.dram.controller.nonsense: [1]"))
    with pytest.raises(ConfigError, match=r"s.yaml:8: axes.hw.dram.controller.nonsense\[0\]: unknown key "
                                          r"\(with hwconfig cpu_ddr4\)$"):
        run_sweep(spec, out=tmp_path / "o2", progress=False)
    assert not (tmp_path / "o2").exists()


@pytest.mark.parametrize("case", ["unknown_name", "not_a_string", "no_hwconfig", "in_base_overrides",
                                  "workload_axis_on_trace", "same_name_two_files"])
def test_bad_hwconfig_or_workload_axis_names_file_line_and_key(tmp_path, case):
    spec = tmp_path / "s.yaml"
    base = f"base:\n  hwconfig: {HW}\n  workload: {WL}\n"
    body, marker, expect = {
        "unknown_name": (base + "axes:\n  hwconfig: [cpu_ddr4, cpu_ddr9]\n", "hwconfig: [",
                         "axes.hwconfig[1]: config 'cpu_ddr9' not found: not a file, not a shipped hwconfig"),
        "not_a_string": (base + "zip:\n  - workload: [zipf_small, 3]\n    seed: [1, 2]\n", "workload: [",
                         "zip[0].workload[1]: a workload is a name or a path, got 3"),
        "no_hwconfig": (f"base:\n  workload: {WL}\naxes:\n  seed: [1]\n", "base:",
                        "base: give a hwconfig: base.hwconfig, or a 'hwconfig' axis"),
        "in_base_overrides": (base.replace(f"  workload: {WL}\n", f"  workload: {WL}\n  overrides:\n"
                                                                   "    hwconfig: recnmp\n"),
                              "hwconfig: recnmp", "the hwconfig is set by base.hwconfig or a 'hwconfig' axis"),
        "workload_axis_on_trace": (f"base:\n  hwconfig: {HW}\n  trace: t.trace\naxes:\n  workload: [zipf_small]\n",
                                   "workload: [", "a workload axis needs a workload run"),
        "same_name_two_files": (base + "axes:\n  hwconfig: [cpu_ddr4, sub/cpu_ddr4.yaml]\n", "hwconfig: [",
                                "two hwconfigs named 'cpu_ddr4'"),
    }[case]
    (tmp_path / "t.trace").write_text("0x40 R\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "cpu_ddr4.yaml").write_text(f"extends: {HW}\n")
    spec.write_text(body)
    with pytest.raises(ConfigError) as info:
        load_sweep(spec)
    msg = str(info.value)
    assert msg.startswith(f"{spec}:{_line_of(spec, marker)}: "), msg
    assert expect in msg and "\n" not in msg
