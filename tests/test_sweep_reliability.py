"""Issue #12, sweeps and limits: every value of a sweep spec checked before the first point runs; work that
cannot finish refused; ``--max-wall`` on ``archsim run`` and ``archsim sweep``; crash safety (SIGKILL of a run
or of a sweep at random moments, resumed with no point lost or run twice)."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from archsim.api import MAX_LOOKUPS, WallLimitExceeded, run
from archsim.cli import main as cli_main
from archsim.config import ConfigError, InputError
from archsim.sweep import load_sweep, run_sweep
from archsim.sweep.cli import main as sweep_main

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
HW = ROOT / "hwconfigs" / "cpu_ddr4.yaml"
WL = ROOT / "workloads" / "zipf_small.yaml"
HUGE = 2**64


def _line_of(path: Path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def _identity(df: pd.DataFrame) -> pd.DataFrame:
    return df.drop(columns=["wall_time_s"]).reset_index(drop=True)


# ------------------------------------------------------------------------------------------------------------
# 1. Every value checked before the first point runs
# ------------------------------------------------------------------------------------------------------------

# (example spec, text replaced, replacement, marker of the reported line, key path, part of the message: the
# schema's own wording is left to tests/test_strict_input.py)
MUTATIONS = {
    "list_where_a_map_belongs": (
        "sweep_small.yaml", "workload.defaults.index.s: [0.8, 1.2]", "workload.defaults.index: [uniform, [1, 2]]",
        "workload.defaults.index:", "axes.workload.defaults.index[1]", "got"),
    "null_channels": (
        "sweep_small.yaml", "hw.dram.org.channels: {log2: {start: 2, stop: 8}}", "hw.dram.org.channels: [2, null]",
        "hw.dram.org.channels:", "axes.hw.dram.org.channels[1]", "got None"),
    "empty_map_batch_size": (
        "sweep_small.yaml", "workload.batch_size: {log2: {start: 16, stop: 256}}", "workload.batch_size: [16, {}]",
        "workload.batch_size:", "axes.workload.batch_size[1]", "got"),
    "true_zipf_exponent": (
        "sweep_cpu_ddr4.yaml", "workload.defaults.index.s: {start: 0.1, stop: 2.5, step: 0.1}",
        "workload.defaults.index.s: [0.5, true]", "workload.defaults.index.s:", "axes.workload.defaults.index.s[1]",
        "must be a number, got True"),
    "empty_string_batch_size": (
        "sweep_pifs.yaml", "workload.batch_size: [16, 64]", "workload.batch_size: [16, '']",
        "workload.batch_size:", "axes.workload.batch_size[1]", "got ''"),
    "null_zipf_exponent": (
        "sweep_fig_cpu.yaml", "workload.defaults.index.s: [0.6, 1.0, 1.2]", "workload.defaults.index.s: [0.6, null]",
        "workload.defaults.index.s:", "axes.workload.defaults.index.s[1]", "defaults.index: zipf needs its exponent s"),
    "string_for_int": (
        "sweep_pifs.yaml", "hw.cxl.pifs.buffer_kib: [0, 1024, 4096]", "hw.cxl.pifs.buffer_kib: [0, '1024']",
        "hw.cxl.pifs.buffer_kib:", "axes.hw.cxl.pifs.buffer_kib[1]", "got '1024'"),
    "map_in_base_overrides": (
        "sweep_systems.yaml", "    workload.num_batches: 1\n", "    workload.num_batches: {n: 1}\n",
        "workload.num_batches:", "base.overrides.workload.num_batches", "got"),
    "list_on_each_hwconfig": (
        "sweep_systems.yaml", "  hwconfig: [cpu_ddr4, recnmp, recross, cxl_pool, pifs_rec]",
        "  hwconfig: [cpu_ddr4, recnmp]\n  hw.host.cores: [8, [4]]", "hw.host.cores:", "axes.hw.host.cores[1]",
        "(with hwconfig cpu_ddr4)"),
    "bool_for_a_section": (
        "sweep_fig_cpu.yaml", "hw.dram.org.channels: [1, 2, 4, 8]", "hw.dram.org: [true]",
        "hw.dram.org:", "axes.hw.dram.org[0]", "got True"),
    "unknown_key_in_zip": (
        "sweep_small.yaml", "workload.defaults.index.s: [0.8, 1.2]",
        "workload.defaults.index.s: [0.8, 1.2]\nzip:\n  - hw.dram.org.nonsense: [1, 2]\n    seed: [1, 2]",
        "hw.dram.org.nonsense:", "zip[0].hw.dram.org.nonsense[0]", "unknown key"),
    "out_of_range_in_a_range": (
        "sweep_cpu_ddr4.yaml", "workload.batch_size: {start: 1, stop: 5}", "workload.batch_size: {start: -1, stop: 5}",
        "workload.batch_size:", "axes.workload.batch_size[0]", "got -1"),
    "num_batches_2_to_the_64": (
        "sweep_small.yaml", "    workload.num_batches: 2\n", f"    workload.num_batches: {HUGE}\n",
        "workload.num_batches:", "base.overrides.workload.num_batches",
        f"{HUGE} batches of 1088 lookups (batch_size 64 x 2 tables x 8.5 lookups per bag) are 2.01e22 lookups, "
        "more than a run may simulate (at most 1e12, archsim.api.MAX_LOOKUPS)"),
}


@pytest.mark.parametrize("case", sorted(MUTATIONS))
def test_mutated_example_spec_is_refused_before_anything_runs(tmp_path, capsys, case):
    src, old, new, marker, path, expect = MUTATIONS[case]
    text = (EXAMPLES / src).read_text()
    assert old in text
    spec = tmp_path / src
    spec.write_text(text.replace(old, new).replace("../", f"{ROOT}/"))
    out = tmp_path / "out"
    assert sweep_main([str(spec), "--out", str(out), "-j", "2"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    head = f"archsim: error: {spec}:{_line_of(spec, marker)}: {path}: "
    assert err.startswith(head) and expect in err, err
    assert not out.exists()  # nothing run, nothing written
    assert sweep_main([str(spec), "--dry-run"]) == 2  # --dry-run checks the values too
    capsys.readouterr()


def test_every_shipped_example_passes_the_value_check():
    for spec in sorted(EXAMPLES.glob("sweep_*.yaml")):
        load_sweep(spec)


def test_values_are_checked_once_each_not_per_point(tmp_path, monkeypatch):
    """A sweep of 27,000 points with 3 axes of 30 values: about 90 validations, not 27,000."""
    import archsim.sweep.check as check

    calls = []
    real = check._schema_errors
    monkeypatch.setattr(check, "_schema_errors", lambda model, cfg: calls.append(1) or real(model, cfg))
    spec = tmp_path / "s.yaml"
    spec.write_text(textwrap.dedent(f"""\
        base: {{hwconfig: {HW}, workload: {WL}}}
        axes:
          hw.dram.timing.nRCD: {{start: 10, stop: 39}}
          workload.batch_size: {{start: 1, stop: 30}}
          workload.defaults.index.s: {{start: 0.1, stop: 3.0, step: 0.1}}
        """))
    t0 = time.perf_counter()
    sweep = load_sweep(spec)
    assert sweep.grid_size == 27_000
    assert len(calls) <= 3 * 30 + 4, len(calls)
    assert time.perf_counter() - t0 < 30


def test_combination_errors_stay_point_failures(tmp_path):
    """A value valid on its own but not with another (``nmp.lanes`` on a hwconfig without ``nmp:``, tables that
    do not fit) fails its points only; a value refused for one hwconfig of the axis refuses the spec."""
    spec = tmp_path / "s.yaml"
    spec.write_text(textwrap.dedent(f"""\
        base:
          workload: {WL}
          overrides: {{workload.num_batches: 1, workload.batch_size: 2}}
        axes:
          hwconfig: [cpu_ddr4, recnmp]
          hw.nmp.lanes: [4]
          workload.defaults.rows: [1000, 100000000000]
        """))
    df = run_sweep(spec, out=tmp_path / "o", progress=False)
    assert list(df["status"]) == ["failed", "failed", "ok", "failed"]
    assert "cpu_ddr4 has no 'nmp'" in df["error"][0] and "the tables need" in df["error"][3]
    # a value of the wrong type is refused even where one hwconfig of the axis has no place for it
    spec.write_text(spec.read_text().replace("hw.nmp.lanes: [4]", "hw.nmp.lanes: ['4']"))
    with pytest.raises(ConfigError, match=r"s.yaml:6: axes.hw.nmp.lanes\[0\]: .*got '4' \(with hwconfig recnmp\)$"):
        load_sweep(spec)


# ------------------------------------------------------------------------------------------------------------
# 2. Work that cannot finish, and --max-wall
# ------------------------------------------------------------------------------------------------------------


def test_run_refuses_work_above_the_bound(capsys):
    with pytest.raises(ConfigError) as info:
        run("cpu_ddr4", workload=WL, workload_overrides=[f"num_batches={HUGE}"])
    assert info.value.path == "num_batches" and "at most 1e12, archsim.api.MAX_LOOKUPS" in str(info.value)
    assert MAX_LOOKUPS == 10**12
    with pytest.raises(ConfigError) as info:
        run("cpu_ddr4", workload=WL, workload_overrides=["batch_size=1000000000"])
    assert info.value.path == "batch_size" and "archsim.api.MAX_BATCH_LOOKUPS" in str(info.value)
    assert cli_main(["run", "cpu_ddr4", "--workload", str(WL), "--workload-set", f"num_batches={HUGE}",
                     "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "num_batches: " in err and "1e12" in err


def test_run_max_wall_stops_with_status_4_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "run"
    t0 = time.perf_counter()
    rc = cli_main(["run", "cpu_ddr4", "--workload", str(WL), "--workload-set", "num_batches=100000",
                   "--max-wall", "1", "--out", str(out), "--quiet"])
    assert rc == 4 and time.perf_counter() - t0 < 20
    assert capsys.readouterr().err == "archsim: stopped: ran past --max-wall 1 s\n"
    assert not out.exists() and not list(tmp_path.iterdir())  # no run directory, no temporary one
    assert cli_main(["run", "cpu_ddr4", "--workload", str(WL), "--max-wall", "-3"]) == 2
    assert "--max-wall: must be a number of seconds > 0" in capsys.readouterr().err
    helptext = subprocess.run(_archsim("run", "--help"), capture_output=True, text=True).stdout
    assert "exit status 4" in " ".join(helptext.split())


def test_max_wall_off_the_main_thread_is_checked_after_each_batch():
    """Dask runs points in worker threads, where there is no SIGALRM: the deadline is checked per batch."""
    got: list[BaseException] = []

    def body():
        try:
            run("cpu_ddr4", workload=WL, workload_overrides=["num_batches=100000"], max_wall=0.5)
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            got.append(exc)

    t = threading.Thread(target=body)
    t.start()
    t.join(60)
    assert not t.is_alive() and len(got) == 1 and isinstance(got[0], WallLimitExceeded)


def test_sweep_max_wall_fails_the_long_point_and_exits_4(tmp_path, capsys):
    spec = tmp_path / "s.yaml"
    spec.write_text(f"base: {{hwconfig: {HW}, workload: {WL}}}\naxes:\n  workload.num_batches: [1, 100000]\n")
    out = tmp_path / "o"
    assert sweep_main([str(spec), "--out", str(out), "--max-wall", "1"]) == 4
    assert "1 past the time limit" in capsys.readouterr().err
    df = pd.read_csv(out / "results.csv")
    assert list(df["status"]) == ["ok", "failed"] and df["error"][1] == "timed out after 1 s"
    # with another failure as well the status is 1
    spec.write_text(spec.read_text().replace("[1, 100000]", "[1, 100000]\n  workload.defaults.rows: "
                                                            "[1000, 100000000000]"))
    assert sweep_main([str(spec), "--out", str(tmp_path / "o2"), "--max-wall", "1", "--quiet"]) == 1


# ------------------------------------------------------------------------------------------------------------
# 3. Crash safety
# ------------------------------------------------------------------------------------------------------------


def _archsim(*args: str) -> list[str]:
    return [sys.executable, "-m", "archsim.cli", *args]


def test_run_killed_mid_run_leaves_no_directory(tmp_path):
    out = tmp_path / "results" / "run"
    proc = subprocess.Popen(_archsim("run", "cpu_ddr4", "--workload", str(WL), "--workload-set",
                                     "num_batches=100000", "--out", str(out), "--quiet"),
                            start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(3)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not out.exists()
    leftovers = list(out.parent.iterdir()) if out.parent.exists() else []
    assert all(p.name.startswith(".") for p in leftovers)  # at most a hidden temporary directory


def _records(points: Path) -> dict[str, tuple[int, int]]:
    """key -> (inode, mtime) of every stored record: a record written again gets a new inode (atomic rename)."""
    if not points.is_dir():
        return {}
    return {p.stem: (p.stat().st_ino, p.stat().st_mtime_ns) for p in points.glob("*.json")}


@pytest.mark.parametrize("jobs", [1, 2])
def test_sweep_killed_at_random_moments_resumes_without_losing_or_repeating_points(tmp_path, jobs):
    spec = tmp_path / "s.yaml"
    spec.write_text(textwrap.dedent(f"""\
        base:
          hwconfig: {HW}
          workload: {WL}
          overrides: {{workload.num_batches: 1}}
        axes:
          hw.dram.org.channels: [2, 4]
          workload.batch_size: [1, 2, 3, 4, 5]
        """))
    full = run_sweep(spec, out=tmp_path / "full", progress=False)
    n = len(full)
    assert n == 10 and full["key"].nunique() == n and (full["status"] == "ok").all()

    out = tmp_path / "killed"
    rng = random.Random(1234 + jobs)
    cmd = _archsim("sweep", str(spec), "--out", str(out), "-j", str(jobs))
    before: dict[str, tuple[int, int]] = {}
    new_per_run: list[int] = []
    kills = 0
    for attempt in range(4):
        proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        if attempt < 3:
            # killed at a random moment: once 1 to 3 more points are recorded, after a random 0-0.3 s
            target = len(before) + rng.randint(1, 3)
            deadline = time.monotonic() + 60
            while len(_records(out / "points")) < target and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.02)
            time.sleep(rng.uniform(0.0, 0.3))
        if attempt < 3 and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            kills += 1
            err = None
        else:
            _, err = proc.communicate(timeout=120)
        now = _records(out / "points")
        for key, ident in before.items():  # a point recorded before this run was neither lost nor run again
            assert now.get(key) == ident, f"run {attempt}: point {key[:12]} was lost or written again"
        new_per_run.append(len(now) - len(before))
        if err is not None:
            assert proc.returncode == 0, err
            m = re.search(r"\((\d+) run, (\d+) reused\)", err)
            assert m, err
            assert (int(m.group(1)), int(m.group(2))) == (n - len(before), len(before)), (err, new_per_run)
            break
        if (out / "results.csv").exists():  # the kill came after the last point and the table: a finished sweep
            assert len(now) == n
            break
        before = now
    else:
        pytest.fail("the sweep never finished")
    print("points recorded by each run:", new_per_run)
    assert kills >= 1 and sum(new_per_run) == n
    # every point exactly one record, run once
    records = [json.loads(p.read_text()) for p in (out / "points").glob("*.json")]
    assert sorted(r["key"] for r in records) == sorted(full["key"])
    assert all(r["status"] == "ok" and r["attempts"] == 1 for r in records)
    assert not [p for p in (out / "points").iterdir() if not (p.suffix == ".json" or p.name.startswith("."))]
    pd.testing.assert_frame_equal(_identity(pd.read_csv(out / "results.csv")),
                                  _identity(pd.read_csv(tmp_path / "full" / "results.csv")))


@pytest.mark.parametrize("line, words", [
    # the fuzz campaign's sweep classes: a tiny timeout fired outside the point (a raw traceback), a 2^64 one
    # overflowed setitimer, a float range of 1e308 / 1e-300 overflowed, a metric listed twice broke the table;
    # each is one line naming the spec's line 3 and the key
    ("timeout: 1.0e-09", "s.yaml:3: timeout: input should be greater than or equal to 0.01"),
    ("timeout: 18446744073709551616", "s.yaml:3: timeout: input should be less than or equal to 10000000"),
    ("metrics: [seed, seed]", "s.yaml:3: metrics[1]: 'seed' is listed twice (also metrics[0])"),
    ("axes: {workload.defaults.index.s: {start: 0, stop: 1.0e+308, step: 1.0e-300}}",
     "s.yaml:3: axes.workload.defaults.index.s: range from 0 to 1e+308 with step 1e-300 has more than 1000000 "
     "values"),
    # an integer bound past a float's range overflowed math.isfinite (OverflowError, exit 1)
    (f"axes: {{workload.defaults.index.s: {{start: 0, stop: {10**400}, step: 0.5}}}}",
     "s.yaml:3: axes.workload.defaults.index.s: range from 0 to an integer of 401 digits with step 0.5 has more "
     "than 1000000 values"),
    ("axes: {workload.defaults.index.s: {start: -1.0e+308, stop: 1.0e+308, step: 1.0e+308}}",
     "s.yaml:3: axes.workload.defaults.index.s: range from -1e+308 to 1e+308 with step 1e+308 goes past the "
     "largest number"),
])
def test_fuzz_found_sweep_specs_are_refused(tmp_path, line, words):
    spec = tmp_path / "s.yaml"
    spec.write_text(f"name: s\nbase: {{hwconfig: cpu_ddr4, workload: zipf_small}}\n{line}\n")
    r = subprocess.run([sys.executable, "-m", "archsim.cli", "sweep", str(spec), "--out", str(tmp_path / "o")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and len(r.stderr.splitlines()) == 1, r.stderr
    assert r.stderr.startswith("archsim: error: ") and words in r.stderr, r.stderr
    assert not (tmp_path / "o").exists()


def test_a_metric_listed_twice_names_the_line_of_the_second(tmp_path):
    """Fuzz case 0009 (a line of the metrics list duplicated): pandas' 'truth value of a Series is ambiguous'
    in build_table after every point ran; now refused at the duplicate's own line before anything runs."""
    spec = tmp_path / "s.yaml"
    spec.write_text("name: s\nbase: {hwconfig: cpu_ddr4, workload: zipf_small}\nmetrics:\n- seed\n- lookups\n"
                    "- sim_time_ns\n- lookups\n")
    r = subprocess.run(_archsim("sweep", str(spec), "--out", str(tmp_path / "o")), capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 2, r.stderr
    assert r.stderr == f"archsim: error: {spec}:7: metrics[3]: 'lookups' is listed twice (also metrics[1])\n"
    assert not (tmp_path / "o").exists()


def test_a_tiny_wall_limit_is_disarmed_when_its_block_ends():
    """Fuzz cases 0001/0002 (``timeout: 1e-09``): the timer's first tick came before the ``try`` that disarms it,
    so it went on ticking every 50 ms after the point and raised WallLimitExceeded in the sweep's table code
    (a raw traceback). Every way out of the block now leaves the timer off and the old handler back."""
    from archsim.api import wall_limit

    before = signal.getsignal(signal.SIGALRM)
    for _ in range(100):
        try:
            with wall_limit(1e-9):
                sum(range(10_000))
        except WallLimitExceeded:
            pass
        assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
        assert signal.getsignal(signal.SIGALRM) is before
    time.sleep(0.15)  # three ticks of the 50 ms repeat: none comes


def test_sweep_max_wall_below_the_first_tick_times_out_the_points_only(tmp_path):
    """``--max-wall`` is not bounded below like the spec's ``timeout`` (0.01 s): at 1e-9 s every point times
    out at once, and the sweep still writes its table (pandas imported after the points) and exits 4 with
    its one summary line."""
    spec = tmp_path / "s.yaml"
    spec.write_text(f"name: s\nbase: {{hwconfig: {HW}, workload: {WL}, overrides: {{workload.num_batches: 1}}}}\n"
                    "axes: {seed: [0, 1]}\n")
    r = subprocess.run(_archsim("sweep", str(spec), "--out", str(tmp_path / "o"), "--max-wall", "1e-9"),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 4, r.stderr
    assert len(r.stderr.splitlines()) == 1 and "2 past the time limit" in r.stderr, r.stderr
    df = pd.read_csv(tmp_path / "o" / "results.csv")
    assert list(df["status"]) == ["failed", "failed"] and set(df["error"]) == {"timed out after 1e-09 s"}


@pytest.mark.parametrize("command", ["run", "sweep"])
@pytest.mark.parametrize("seconds", ["1e10", "1e300"])
def test_max_wall_past_the_timer_limit_is_refused(tmp_path, command, seconds):
    """``--max-wall 1e10`` reached setitimer: 'OverflowError: timestamp out of range for platform time_t', an
    internal error (``run``) or every point failing with it (``sweep``). Now at most archsim.api.MAX_WALL_S, as
    the spec's ``timeout``; ``run(max_wall=...)`` too."""
    spec = tmp_path / "s.yaml"
    spec.write_text(f"name: s\nbase: {{hwconfig: {HW}, workload: {WL}}}\n")
    args = ["run", str(HW), "--workload", str(WL)] if command == "run" else ["sweep", str(spec)]
    r = subprocess.run(_archsim(*args, "--max-wall", seconds, "--out", str(tmp_path / "o")), capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 2, r.stderr
    assert r.stderr == (f"archsim: error: --max-wall: must be a number of seconds > 0, at most 10,000,000, "
                        f"got {float(seconds):g}\n")
    assert not (tmp_path / "o").exists()
    with pytest.raises(InputError, match="^max_wall: must be a number of seconds > 0, at most 10,000,000, got"):
        run(HW, workload=WL, max_wall=float(seconds))


def test_a_tick_that_beats_the_gc_mark_is_skipped():
    """A tick can land on the first bytecode of archsim's own gc-start callback, before it marks the collection
    (CI, 2026-12-06: the 'Exception ignored in _gc_start' the test below guards against). The handler skips a
    tick whose frame is one of the marks, armed or not, and raises anywhere else."""
    import types

    from archsim import api

    api._ALARM.update(armed=True, seconds=0.05, in_gc=False)
    try:
        for mark in (api._gc_start, api._gc_stop):
            api._on_alarm(14, types.SimpleNamespace(f_code=mark.__code__))  # no raise
        with pytest.raises(api.WallLimitExceeded):
            api._on_alarm(14, types.SimpleNamespace(f_code=test_a_tick_that_beats_the_gc_mark_is_skipped.__code__))
    finally:
        api._ALARM.update(armed=False, seconds=None, in_gc=False)


def test_a_wall_limit_tick_in_a_gc_callback_is_not_lost(monkeypatch):
    """A SIGALRM tick that lands in another library's garbage-collection callback used to raise there, where
    Python prints 'Exception ignored in ...' to stderr (the 10,000-case campaign: hypothesis's gc callback in
    the harness). Ticks during a collection are skipped; the next one, 50 ms later, stops the block."""
    import gc
    import sys
    import time

    from archsim.api import WallLimitExceeded, wall_limit

    unraisable = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: unraisable.append(u))

    def slow(phase, info):
        if phase == "start":
            end = time.monotonic() + 0.15
            while time.monotonic() < end:
                pass

    gc.callbacks.append(slow)
    try:
        with pytest.raises(WallLimitExceeded):
            with wall_limit(0.05):
                for _ in range(100):
                    gc.collect()
                time.sleep(5)
    finally:
        gc.callbacks.remove(slow)
    assert not unraisable
