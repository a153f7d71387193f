"""Running a sweep: expand the spec, key every point, skip the finished ones, run the rest on an executor,
record each result as it arrives, and write the tidy table."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from archsim.config import InputError
from archsim.sweep.executors import Backend, ExecutorLost, make_backend, prestart
from archsim.sweep.spec import Point, Sweep, expand_points, load_sweep
from archsim.sweep.store import KeyResolver, ResultStore, archsim_version, build_table, fallback_key

__all__ = ["run_sweep"]


def run_sweep(spec: str | os.PathLike[str] | Sweep, jobs: int | None = None, dask: Any = None,
              out: str | os.PathLike[str] | None = None, progress: bool = True, *, executor: Any = None,
              on_result: Callable[[dict[str, Any]], None] | None = None):
    """Run a sweep and return its tidy table (a ``pandas.DataFrame``, one row per point).

    ``spec``: a spec file or a loaded :class:`Sweep`. Executor: ``jobs`` (None or 1: in this process; N: N
    local processes; 0: one per CPU), or ``dask`` (``"tcp://HOST:PORT"``, ``"local"`` for a LocalCluster of
    ``jobs`` or 2 worker processes, or a ``distributed.Client``), or ``executor`` (any
    ``concurrent.futures.Executor`` or a ``distributed.Client``). ``out``: the sweep directory (default
    ``results/<name>/``). Points already finished there are not run again; failed ones are. ``progress``:
    a progress bar when stderr is a terminal, and a one-line summary on stderr at the end.
    ``on_result(record)`` is called after each point's record is written.

    ``df.attrs["sweep"]`` holds the counts: ``points, unique, reused, ran, ok, failed, timed_out, seconds, out``
    (``timed_out``: the failed points that ran past ``sweep.timeout``).
    Raises :class:`~archsim.config.ConfigError` for a bad spec; a failing point does not raise.
    :class:`~archsim.sweep.executors.ExecutorLost` when the executor goes away midway (the Dask scheduler
    stopped): the points recorded so far are kept, and running the sweep again runs only the others.
    """
    t0 = time.perf_counter()
    sweep = spec if isinstance(spec, Sweep) else load_sweep(spec)
    prestart(jobs, dask, executor)  # local processes: the workers' imports overlap the keying below
    points = expand_points(sweep)
    out_dir = Path(out) if out is not None else Path("results") / sweep.name
    store = ResultStore(out_dir)
    resolver = KeyResolver(sweep)
    records: dict[str, dict[str, Any] | None] = {}
    todo: list[Point] = []
    stats = {"points": len(points), "unique": 0, "reused": 0, "ran": 0, "ok": 0, "failed": 0, "timed_out": 0}
    unresolved: list[tuple[Point, str]] = []
    for p in points:
        try:
            p.key, p.config_hash, p.seed = resolver.resolve(p)
        except InputError as exc:
            p.key = fallback_key(sweep, p)
            if p.key not in records:
                records[p.key] = None
                unresolved.append((p, str(exc)))
            continue
        if p.key in records:
            continue
        rec = store.load(p.key)
        records[p.key] = rec
        if rec is not None and rec.get("status") == "ok":
            stats["reused"] += 1
        else:
            todo.append(p)
    stats["unique"] = len(records)
    store.write_json("manifest.json", {
        "name": sweep.name, "spec": str(sweep.spec_file.resolve()), "description": sweep.description,
        "archsim_version": archsim_version(), "grid_points": sweep.grid_size,
        "axes": sweep.axis_keys, "points": [{"key": p.key, "axes": p.axes} for p in points]})

    if todo or unresolved:
        # a table from an earlier run would look complete while points are missing: it is written anew at the end
        store.remove_tables()
    bar = _Progress(progress, sweep.name, total=len(todo) + len(unresolved), reused=stats["reused"])

    def record(p: Point, res: dict[str, Any], attempts: int) -> None:
        rec = {"key": p.key, "status": res["status"], "error": res.get("error"),
               "error_kind": res.get("error_kind"), "attempts": attempts, "axes": p.axes, "seed": p.seed,
               "hwconfig": p.hwconfig, "overrides": p.overrides, "workload": p.workload,
               "workload_overrides": p.workload_overrides, "trace": sweep.trace,
               "window": sweep.window if sweep.trace else None,
               "config_hash": res.get("config_hash") or p.config_hash or None,
               "archsim_version": resolver.version, "wall_s": res.get("wall_s"),
               "cpu_s": res.get("cpu_s"), "worker": res.get("worker"),
               "finished": time.strftime("%Y-%m-%dT%H:%M:%S"), "summary": res.get("summary")}
        if res.get("traceback"):
            rec["traceback"] = res["traceback"]
        rec = store.save(rec)
        records[p.key] = rec
        stats["ok" if rec["status"] == "ok" else "failed"] += 1
        stats["timed_out"] += rec.get("error_kind") == "timeout"
        bar.advance(rec["status"] == "ok")
        if on_result is not None:
            on_result(rec)

    with bar:
        for p, err in unresolved:
            record(p, {"status": "failed", "error": err, "error_kind": "input"}, attempts=1)
        if todo:
            backend = make_backend(jobs, dask, executor)
            bar.executor(backend.describe())
            try:
                _drive(backend, sweep, todo, record, stats)
            except ExecutorLost as exc:
                kept = stats["reused"] + stats["ok"] + stats["failed"]
                raise ExecutorLost(f"{exc}; {kept} of {stats['unique']} points are recorded in {out_dir} (run the "
                                   f"same sweep again to run the other {stats['unique'] - kept})") from None
    stats["seconds"] = round(time.perf_counter() - t0, 3)
    stats["out"] = str(out_dir)
    df = build_table(sweep, points, records)
    store.write_tables(df)
    df.attrs["sweep"] = stats
    if progress:
        print(summary_line(sweep.name, stats), file=sys.stderr)
    return df


def _task(sweep: Sweep, p: Point) -> dict[str, Any]:
    return {"key": p.key, "hwconfig": p.hwconfig, "overrides": p.overrides, "workload": p.workload,
            "workload_overrides": p.workload_overrides, "trace": sweep.trace, "window": sweep.window,
            "seed": p.seed, "timeout": sweep.timeout}


def _drive(backend: Backend, sweep: Sweep, todo: list[Point],
           record: Callable[[Point, dict[str, Any], int], None], stats: dict[str, Any]) -> None:
    """Keep ``backend.slots`` points in flight; retry internal failures up to ``sweep.retries`` times (bad
    input and timeouts are deterministic and not retried)."""
    queue: list[tuple[Point, int]] = [(p, 1) for p in reversed(todo)]  # popped from the end
    inflight: dict[Any, tuple[Point, int]] = {}
    clean = False
    try:
        while queue or inflight:
            while queue and len(inflight) < backend.slots:
                p, attempt = queue.pop()
                inflight[backend.submit(_task(sweep, p), attempt)] = (p, attempt)
            for fut in backend.wait(inflight):
                p, attempt = inflight.pop(fut)
                res = backend.result(fut)
                if res["status"] != "ok" and res.get("error_kind") == "internal" and attempt <= sweep.retries:
                    queue.append((p, attempt + 1))
                    continue
                stats["ran"] += 1
                record(p, res, attempt)
        clean = True
    finally:
        if not clean:
            backend.cancel(list(inflight))
        backend.close(cancel=not clean)


def summary_line(name: str, stats: dict[str, Any]) -> str:
    """``sweep NAME: 24 points: 24 ok, 0 failed (20 run, 4 reused) in 3.2 s; results in DIR``."""
    dup = stats["points"] - stats["unique"]
    extra = f", {dup} duplicates" if dup else ""
    timed = f", {stats['timed_out']} past the time limit" if stats.get("timed_out") else ""
    return (f"sweep {name}: {stats['points']} points: {stats['ok'] + stats['reused']} ok, {stats['failed']} "
            f"failed ({stats['ran']} run, {stats['reused']} reused{extra}{timed}) in {stats['seconds']:.1f} s; "
            f"results in {stats['out']}")


class _Progress:
    """A rich progress bar (points done, failed, rate, time left), shown only when stderr is a terminal."""

    def __init__(self, enabled: bool, name: str, total: int, reused: int) -> None:
        self.enabled = enabled and sys.stderr.isatty() and total > 0
        self.name = name
        self.total = total
        self.reused = reused
        self.done = 0
        self.failed = 0
        self.t0 = time.perf_counter()
        self.bar: Any = None
        self.task: Any = None

    def __enter__(self) -> _Progress:
        if self.enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(TextColumn("sweep {task.description}"), BarColumn(), MofNCompleteColumn(),
                                TextColumn("{task.fields[failed]} failed"), TextColumn("{task.fields[rate]}"),
                                TextColumn("left"), TimeRemainingColumn(), TextColumn("{task.fields[info]}"),
                                console=Console(stderr=True), transient=True)
            self.bar.start()
            info = f"({self.reused} reused)" if self.reused else ""
            self.task = self.bar.add_task(self.name, total=self.total, failed=0, rate="", info=info)
        return self

    def executor(self, text: str) -> None:
        if self.bar is not None:
            info = f"on {text}" + (f", {self.reused} reused" if self.reused else "")
            self.bar.update(self.task, info=info)

    def advance(self, ok: bool) -> None:
        self.done += 1
        self.failed += not ok
        if self.bar is not None:
            rate = self.done / max(time.perf_counter() - self.t0, 1e-9)
            self.bar.update(self.task, advance=1, failed=self.failed, rate=f"{rate:.1f} points/s")

    def __exit__(self, *exc: Any) -> None:
        if self.bar is not None:
            self.bar.stop()
