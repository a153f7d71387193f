"""Sweeps on a Dask cluster of worker processes (docs/sweeps.md, "On a cluster"): the runner keeps one result
store, so a point finished on any worker is never run again, on the same cluster or on a fresh one; a sweep
interrupted midway (the runner stopped, or its scheduler killed) resumes with exactly the points that have no
record; a worker killed while it runs a point loses nothing."""

from __future__ import annotations

import logging
import os
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from archsim.sweep import run_sweep

distributed = pytest.importorskip("distributed")

ROOT = Path(__file__).resolve().parent.parent
HW = ROOT / "hwconfigs" / "cpu_ddr4.yaml"
WL = ROOT / "workloads" / "zipf_small.yaml"
N = 8


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    p = tmp_path / "dask_small.yaml"
    p.write_text(textwrap.dedent(f"""\
        base:
          hwconfig: {HW}
          workload: {WL}
          overrides: {{workload.num_batches: 1}}
        axes:
          hw.dram.org.channels: [2, 4]
          workload.batch_size: [1, 2, 3, 4]
        timeout: 120
        """))
    return p


class _Cluster:
    """A fresh LocalCluster of 2 worker processes (one thread each) with a client, and the points it was given:
    every task the scheduler received (``tasks``: their keys) and the pids of its worker processes."""

    def __enter__(self) -> _Cluster:
        self.cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                                dashboard_address=None, silence_logs=logging.ERROR)
        self.client = distributed.Client(self.cluster)
        self.pids = set(self.client.run(os.getpid).values())
        assert len(self.pids) == 2
        return self

    def tasks(self) -> list[str]:
        """Keys of the sweep's point tasks the scheduler has seen (finished, running, cancelled or lost)."""
        def seen(dask_scheduler) -> list[str]:
            keys = [str(ts.key) for ts in dask_scheduler.tasks.values()]
            log = [str(k) for entry in dask_scheduler.transition_log for k in entry[:1]]
            return sorted(set(keys) | set(log))

        return [k for k in self.client.run_on_scheduler(seen) if k.startswith("archsim-point-")]

    def __exit__(self, *exc) -> None:
        self.client.close()
        self.cluster.close()


def _records(out: Path) -> dict[str, tuple[int, int]]:
    """key -> (inode, mtime) of every stored record: a record written again gets a new inode (atomic rename)."""
    return {p.stem: (p.stat().st_ino, p.stat().st_mtime_ns) for p in (out / "points").glob("*.json")}


def _identity(df: pd.DataFrame) -> pd.DataFrame:
    return df.drop(columns=["wall_time_s"]).reset_index(drop=True)


def test_points_run_on_worker_processes_are_not_run_again_on_a_fresh_cluster(tmp_path, spec):
    import json

    out = tmp_path / "out"
    with _Cluster() as c:
        first = run_sweep(spec, dask=c.client, out=out, progress=False)
        tasks = c.tasks()
        pids = c.pids
    stats = first.attrs["sweep"]
    assert (first["status"] == "ok").all() and len(first) == N
    assert (stats["ran"], stats["reused"]) == (N, 0)
    assert len(tasks) == N  # one task per point, none retried
    recs = [json.loads(p.read_text()) for p in (out / "points").glob("*.json")]
    assert len(recs) == N
    # each point was run by one of the cluster's worker processes, not by the runner
    ran_on = {int(r["worker"].rsplit(":", 1)[1]) for r in recs}
    assert ran_on <= pids and os.getpid() not in ran_on
    before = _records(out)

    # the same sweep into the same directory on a fresh cluster: every point is reused, no task is submitted
    with _Cluster() as c:
        again = run_sweep(spec, dask=c.client, out=out, progress=False)
        assert c.tasks() == []
    assert (again.attrs["sweep"]["ran"], again.attrs["sweep"]["reused"]) == (0, N)
    assert _records(out) == before  # no record written again
    pd.testing.assert_frame_equal(_identity(again), _identity(first))


def test_interrupted_sweep_resumes_only_the_missing_points_on_a_fresh_cluster(tmp_path, spec):
    full = run_sweep(spec, out=tmp_path / "serial", progress=False)  # the uninterrupted table
    out = tmp_path / "out"
    stop_after = 3

    class Interrupt(Exception):
        pass

    def interrupt(rec) -> None:
        if len(_records(out)) >= stop_after:
            raise Interrupt  # as Ctrl-C in the runner: the points in flight are given up

    with _Cluster() as c:
        with pytest.raises(Interrupt):
            run_sweep(spec, dask=c.client, out=out, progress=False, on_result=interrupt)
    done = _records(out)
    assert len(done) == stop_after
    assert not (out / "results.csv").exists()  # no table that looks complete

    with _Cluster() as c:
        resumed = run_sweep(spec, dask=c.client, out=out, progress=False)
        tasks = c.tasks()
    stats = resumed.attrs["sweep"]
    assert (stats["ran"], stats["reused"]) == (N - stop_after, stop_after)
    # exactly the points without a record were sent to the cluster (the task key holds the point's key prefix)
    missing = set(full["key"]) - set(done)
    assert len(tasks) == len(missing) == N - stop_after
    assert {t.split("-")[3] for t in tasks} == {k[:16] for k in missing}
    now = _records(out)
    assert all(now[k] == v for k, v in done.items())  # the finished ones were neither run nor written again
    assert len(now) == N
    pd.testing.assert_frame_equal(_identity(resumed), _identity(full))


def test_a_worker_killed_midway_loses_no_point(tmp_path, spec):
    """SIGKILL of a worker process while it runs a point: the scheduler gives that point (and the worker's queued
    ones) to the other worker, its nanny starts a new worker, every point ends ok with one record, the killed
    point run again elsewhere, and the table is the uninterrupted one."""
    import json
    import signal
    import time

    full = run_sweep(spec, out=tmp_path / "serial", progress=False)
    out = tmp_path / "out"
    killed: dict[str, object] = {}

    def executing(dask_worker) -> list[str]:
        return [str(ts.key) for ts in dask_worker.state.executing]

    with _Cluster() as c:
        pid_of = c.client.run(os.getpid)  # worker address -> pid

        def kill_one(rec) -> None:
            deadline = time.monotonic() + 10
            while not killed and time.monotonic() < deadline:
                for addr, keys in c.client.run(executing).items():
                    points = [k for k in keys if k.startswith("archsim-point-")]
                    if points:
                        os.kill(pid_of[addr], signal.SIGKILL)
                        killed.update(pid=pid_of[addr], key=points[0].split("-")[3])
                        return

        df = run_sweep(spec, dask=c.client, out=out, progress=False, on_result=kill_one)
    assert killed, "no point was running when the first one finished"
    assert (df["status"] == "ok").all() and df.attrs["sweep"]["ran"] == N
    recs = {r["key"][:16]: r for r in (json.loads(p.read_text()) for p in (out / "points").glob("*.json"))}
    assert len(recs) == N and all(r["status"] == "ok" for r in recs.values())
    victim = recs[killed["key"]]
    # run again on a live worker; Dask's own rescheduling (not a failed attempt of the runner's)
    assert int(victim["worker"].rsplit(":", 1)[1]) != killed["pid"] and victim["attempts"] == 1
    pd.testing.assert_frame_equal(_identity(df), _identity(full))


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_scheduler_lost_midway_is_one_line_and_the_sweep_resumes(tmp_path, spec):
    """``archsim sweep --dask tcp://...`` against a scheduler and workers started with the dask command line;
    the scheduler is killed after 3 points: the runner stops with one line and exit status 1, the recorded
    points are kept, and the same command on a fresh cluster (--dask local) runs only the others."""
    import re
    import signal
    import subprocess
    import sys
    import time

    bin_dir = Path(sys.executable).parent
    port = _free_port()
    addr = f"tcp://127.0.0.1:{port}"
    out = tmp_path / "out"
    procs: list[subprocess.Popen] = []

    def start(*cmd: str) -> subprocess.Popen:
        p = subprocess.Popen(list(cmd), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
        procs.append(p)
        return p

    try:
        scheduler = start(str(bin_dir / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(port),
                          "--no-dashboard")
        start(str(bin_dir / "dask"), "worker", addr, "--nworkers", "2", "--nthreads", "1", "--no-dashboard")
        with distributed.Client(addr, timeout=60) as client:
            client.wait_for_workers(2, timeout=60)
        runner = subprocess.Popen([sys.executable, "-m", "archsim.cli", "sweep", str(spec), "--dask", addr,
                                   "--out", str(out), "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True)
        deadline = time.monotonic() + 60
        while len(_records(out)) < 3 and runner.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        os.killpg(scheduler.pid, signal.SIGKILL)
        _, err = runner.communicate(timeout=120)
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
    kept = _records(out)
    if len(kept) == N:  # the kill landed after the last point: nothing to resume
        pytest.skip("the sweep finished before the scheduler was killed")
    assert runner.returncode == 1, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    # the client names the exception it saw, when it saw one before noticing the scheduler is gone
    assert re.fullmatch(rf"archsim: sweep dask_small stopped: lost the connection to the Dask scheduler {addr}"
                        rf"( \(\w+\))?; {len(kept)} of {N} points are recorded in {re.escape(str(out))} \(run the same "
                        rf"sweep again to run the other {N - len(kept)}\)", lines[0]), lines[0]

    resumed = subprocess.run([sys.executable, "-m", "archsim.cli", "sweep", str(spec), "--dask", "local", "-j", "2",
                              "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert f"({N - len(kept)} run, {len(kept)} reused)" in resumed.stderr
    now = _records(out)
    assert all(now[k] == v for k, v in kept.items()) and len(now) == N
