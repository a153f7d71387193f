"""The Python API: ``archsim.run(config, trace=..., window=..., overrides=..., seed=...) -> Result``.

Limits (issue #12): a workload whose simulated work cannot finish is refused before it runs
(:func:`check_workload_size`: at most :data:`MAX_LOOKUPS` lookups in a run and :data:`MAX_BATCH_LOOKUPS` in one
batch), and ``run(..., max_wall=SECONDS)`` stops a run that goes past a wall-clock limit with
:class:`WallLimitExceeded` (nothing is written).
"""

from __future__ import annotations

import hashlib
import json
import math
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from archsim.config import ConfigError, InputError, dump_resolved
from archsim.core.sim import Simulator, fewer_gc_passes
from archsim.core.stats import Histogram
from archsim.report.output import write_run_dir
from archsim.system.config import SystemConfig, load_system
from archsim.system.trace_driver import TraceDriver, address_space
from archsim.workload.trace import iter_trace

MAX_LOOKUPS = 10**12
"""Most lookups one workload run may simulate (``num_batches x batch_size x`` the mean pooling summed over the
tables). At the simulator's speed (about 10^5 to 10^6 lookups per wall second) a run above it would take
weeks; it is refused before it starts."""

MAX_BATCH_LOOKUPS = 10**9
"""Most lookups in one batch (``batch_size x`` the mean pooling summed over the tables): a batch's indices
are generated at once (8 bytes each), so a larger one cannot be held in memory."""

MAX_WINDOW = 1 << 32
"""Most requests a trace run may keep outstanding (``run(window=...)``, ``archsim run --window``, a sweep's
``base.window``); the engine holds the window in 64 bits, so 2^64 overflowed it."""

MAX_WALL_S = 10**7
"""Longest wall-clock limit, in seconds (about 116 days): ``run(max_wall=...)``, ``--max-wall`` of ``archsim run``
and ``archsim sweep``, a sweep's ``timeout``. The SIGALRM timer cannot take much more (1e10 s overflowed
setitimer's time_t)."""


class WallLimitExceeded(BaseException):
    """A run went past its wall-clock limit (``run(..., max_wall=...)``, ``archsim run --max-wall``, a sweep's
    ``timeout``). A BaseException, so that no ``except Exception`` in the simulator swallows it."""

    def __init__(self, seconds: float) -> None:
        super().__init__(seconds)
        self.seconds = seconds

    def __str__(self) -> str:
        return f"ran past the wall-clock limit of {self.seconds:g} s"


_ALARM: dict[str, Any] = {"armed": False, "seconds": None, "in_gc": False}


def _on_alarm(signum: int, frame: Any) -> None:
    # not inside a garbage collection: an exception raised in another library's gc callback is printed as
    # "Exception ignored in ..." (lines on stderr) and lost; the timer ticks again 50 ms later. Nor inside our own
    # marks, whose flag a tick can beat (it lands on _gc_start's first bytecode, before in_gc is set)
    if _ALARM["armed"] and not _ALARM["in_gc"] and getattr(frame, "f_code", None) not in _GC_MARKS:
        raise WallLimitExceeded(_ALARM["seconds"])


def _gc_start(phase: str, info: dict) -> None:
    if phase == "start":
        _ALARM["in_gc"] = True


def _gc_stop(phase: str, info: dict) -> None:
    if phase == "stop":
        _ALARM["in_gc"] = False


_GC_MARKS = (_gc_start.__code__, _gc_stop.__code__)


def _watch_gc(on: bool) -> None:
    """Mark garbage collections (every callback between ours) while a wall limit is armed."""
    import gc

    for cb in (_gc_start, _gc_stop):
        while cb in gc.callbacks:
            gc.callbacks.remove(cb)
    _ALARM["in_gc"] = False
    if on:
        gc.callbacks.insert(0, _gc_start)
        gc.callbacks.append(_gc_stop)


@contextmanager
def wall_limit(seconds: float | None) -> Iterator[float | None]:
    """Raise :class:`WallLimitExceeded` in the body once ``seconds`` of wall time have passed (None or 0: no
    limit); yields the deadline (``time.monotonic()`` units) or None.

    On a process's main thread a SIGALRM timer interrupts the body wherever it is (it repeats every 50 ms, so
    an exception the garbage collector swallows in a callback is raised again at the next tick). Elsewhere (a
    Dask worker thread) there is no timer: :func:`run` checks the deadline after each batch of a workload."""
    if not seconds:
        yield None
        return
    deadline = time.monotonic() + seconds
    alarm = hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    old_handler: Any = None
    if alarm:
        _watch_gc(True)
        old_handler = signal.signal(signal.SIGALRM, _on_alarm)
        _ALARM.update(armed=True, seconds=seconds)
    try:
        if alarm:  # armed inside the try: a tick that comes at once is still disarmed below
            signal.setitimer(signal.ITIMER_REAL, float(seconds), 0.05)
        yield deadline
    finally:
        while alarm:  # disarm; a tick that lands in here is dropped (and the disarming done again)
            try:
                _ALARM["armed"] = False
                signal.setitimer(signal.ITIMER_REAL, 0)
                signal.signal(signal.SIGALRM, old_handler)
                _watch_gc(False)
                alarm = False
            except WallLimitExceeded:
                continue


def check_max_wall(seconds: Any, name: str = "max_wall") -> None:
    """A wall-clock limit: None, or a finite number of seconds > 0 and at most :data:`MAX_WALL_S`; raises
    :class:`InputError` (``NAME: must be ...``, one line) otherwise."""
    if seconds is None:
        return
    number = isinstance(seconds, int | float) and not isinstance(seconds, bool)
    if not (number and math.isfinite(seconds) and 0 < seconds <= MAX_WALL_S):
        shown = f"{seconds:g}" if number else repr(seconds)
        raise InputError(f"{name}: must be a number of seconds > 0, at most {MAX_WALL_S:,}, got {shown}")


def check_window(window: Any, name: str = "window") -> None:
    """A trace run's window: an integer from 0 to :data:`MAX_WINDOW`; raises :class:`InputError` otherwise."""
    if not (isinstance(window, int) and not isinstance(window, bool) and 0 <= window <= MAX_WINDOW):
        raise InputError(f"{name}: must be 0 to {MAX_WINDOW:,}, got {window!r}")


def check_workload_size(wl: Any) -> None:
    """Refuse a workload (a loaded :class:`~archsim.workload.spec.WorkloadSpec`) whose simulated work cannot
    finish: more than :data:`MAX_BATCH_LOOKUPS` lookups in a batch (named at ``batch_size``) or more than
    :data:`MAX_LOOKUPS` in the run (named at ``num_batches``); raises :class:`ConfigError`."""
    tables = len(wl.table_list())
    per_batch = wl.lookups_per_batch
    batches = wl.num_batches or 0
    pooling = per_batch / (wl.batch_size * tables) if wl.batch_size and tables else 0.0
    what = f"batch_size {wl.batch_size} x {tables} tables x {pooling:g} lookups per bag"
    if per_batch > MAX_BATCH_LOOKUPS:
        key, text = "batch_size", (f"a batch of {_sci(per_batch)} lookups ({what}) is more than a batch may hold "
                                   f"(at most {_sci(MAX_BATCH_LOOKUPS)}, archsim.api.MAX_BATCH_LOOKUPS)")
    elif per_batch * batches > MAX_LOOKUPS:
        key, text = "num_batches", (f"{batches} batches of {_sci(per_batch)} lookups ({what}) are "
                                    f"{_sci(per_batch * batches)} lookups, more than a run may simulate (at most "
                                    f"{_sci(MAX_LOOKUPS)}, archsim.api.MAX_LOOKUPS)")
    else:
        return
    sources = getattr(wl, "_sources", None)
    file, line = sources.where((key,)) if sources is not None else (None, None)
    raise ConfigError(text, file=file, line=line, path=key)


def _sci(x: float) -> str:
    """``1088``, ``1.64e5``, ``3.02e24``: below a million as is, else three significant digits."""
    if abs(x) < 1e6:
        return f"{x:.6g}"
    text = f"{x:.3g}"
    mantissa, _, exp = text.partition("e")
    return f"{mantissa}e{int(exp)}" if exp else text


@dataclass
class Result:
    """A finished run: ``summary`` (the summary.csv row), ``stats`` (the hierarchy), the resolved config."""

    summary: dict[str, Any]
    stats: dict[str, Any]
    config: SystemConfig
    resolved: dict[str, Any] = field(repr=False)
    config_hash: str = ""
    name: str = ""
    out_dir: Path | None = None

    def to_frame(self):
        import pandas as pd  # optional dependency, imported on use

        return pd.DataFrame([self.summary])


def run(config: str | Path, trace: str | Path | None = None, window: int = 0,
        overrides: Sequence[str] = (), seed: int | None = None, out: str | Path | None = None,
        write: bool = False, workload: str | Path | None = None, workload_overrides: Sequence[str] = (),
        progress: Callable[[int, int, int], None] | None = None, max_wall: float | None = None) -> Result:
    """Simulate ``trace`` (memory requests) or ``workload`` (embedding batches) on ``config``.

    ``seed``: the run's seed (default: the workload's own seed, 0 for traces). ``progress(batches_done,
    batches_total, sim_time_ps)`` is called after each batch of a workload. With ``write`` (or ``out``
    given) the run directory is written atomically; the default directory is
    ``results/<config-name>-<hash8>/``.

    ``max_wall``: seconds of wall time the simulation may take (default: no limit; at most :data:`MAX_WALL_S`);
    past it the run stops with :class:`WallLimitExceeded` and writes nothing (see :func:`wall_limit`).
    ``window`` (trace runs: most requests outstanding, 0 for no limit but the queues') is at most
    :data:`MAX_WINDOW`; a value out of range is an :class:`InputError`. A workload above
    :data:`MAX_LOOKUPS` / :data:`MAX_BATCH_LOOKUPS` is refused with a :class:`ConfigError` before it runs.
    """
    check_max_wall(max_wall)
    check_window(window)
    cfg, loaded = load_system(config, overrides)
    if (trace is None) == (workload is None):
        raise InputError("give either a memory trace (--trace FILE) or an embedding workload (--workload FILE)")
    wall0 = time.perf_counter()
    if trace is not None:
        seed = 0 if seed is None else seed
        with fewer_gc_passes(), wall_limit(max_wall):
            summary, stats, sim = _run_trace(cfg, trace, window, seed)
        run_info: dict[str, Any] = {"trace": str(trace), "window": window}
        run_hash = loaded.hash
    else:
        with fewer_gc_passes(), wall_limit(max_wall) as deadline:
            try:
                summary, stats, sim, wl, seed = _run_workload(cfg, workload, workload_overrides, seed, progress,
                                                              deadline, max_wall)
            except ConfigError as e:  # a component found its configuration wrong once it saw the workload
                raise _located(e, loaded) from None
        run_info = {"workload": str(workload), "workload_name": wl.name}
        run_hash = hashlib.sha256((loaded.hash + _workload_hash(wl)).encode()).hexdigest()
    wall = time.perf_counter() - wall0
    head: dict[str, Any] = {
        "config_hash": run_hash[:16],
        "seed": seed,
        "sim_time_ns": summary.pop("_sim_time_ps") / 1000,
        "wall_time_s": round(wall, 3),
    }
    head.update(summary)
    stats = {"system": sim.stats.to_dict(raw=True), "energy": sim.energy.to_dict(), "run": run_info}
    res = Result(summary=head, stats=stats, config=cfg, resolved=loaded.data, config_hash=run_hash,
                 name=cfg.name or loaded.name)
    if write or out is not None:
        out_dir = Path(out) if out is not None else Path("results") / f"{res.name}-{run_hash[:8]}"
        res.out_dir = write_run_dir(out_dir, dump_resolved(loaded.data), stats, head)
    return res


def _located(err: ConfigError, loaded) -> ConfigError:
    """``err`` with the file and line of its key (``err.key_path``, set by components that check their keys
    when they are built) when it names no file yet."""
    path = getattr(err, "key_path", None)
    if err.file is not None or path is None:
        return err
    file, line = loaded.sources.where(path)
    return err.with_location(file=file, line=line)


def _run_trace(cfg: SystemConfig, trace: str | Path, window: int, seed: int):
    """Drive the graph's memory root (the host's memory: its DRAM, or its memory map over local DRAM and CXL
    windows) with a memory trace; the hosts and the near-data units above the root are not built."""
    from archsim.system.graph import build
    from archsim.system.shorthand import expand

    graph = expand(cfg)
    if graph.memory_root is None:
        raise InputError(f"{cfg.name or 'this config'} has no memory a trace can drive")
    sim = Simulator(seed)
    system = build(sim, graph.below(graph.memory_root))
    mem = system.memory_root
    latency = Histogram() if not hasattr(mem, "summary") else None
    drv = TraceDriver(sim.env, mem, iter_trace(trace, address_space(mem)), window=window,
                      cycle_ps=cfg.dram.timing.tCK_ps,
                      latency=latency)
    sim.env.run(until=drv.finished)
    if drv.completed == 0:
        raise InputError(f"{trace}: the trace holds no requests")
    end_ps = drv.last_done_ps
    system.finalize(end_ps)
    summary: dict[str, Any] = {"_sim_time_ps": end_ps}
    if latency is None:
        summary.update(mem.summary(end_ps))
    else:  # a memory map: the trace's own columns, then every component's (DRAMs, links, expanders)
        summary.update(drv.summary(end_ps))
        for name, comp in system.components.items():
            f = getattr(comp, "summary", None)
            if f is not None:
                key = name.replace(".", "_")
                summary.update({f"{key}_{k}": v for k, v in f(end_ps).items()})
    summary.update(sim.energy.summary_nj())
    return summary, None, sim


def _workload_hash(wl) -> str:
    return hashlib.sha256(json.dumps(wl.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()


def _run_workload(cfg: SystemConfig, workload: str | Path, workload_overrides: Sequence[str],
                  seed: int | None, progress, deadline: float | None = None, max_wall: float | None = None):
    from archsim.config import load_config
    from archsim.system.builder import build_layout, run_embedding
    from archsim.system.metrics import workload_summary
    from archsim.workload.batches import iter_batches
    from archsim.workload.spec import load_workload

    # errors in an override name the option it came from: --workload-set (--set is the hwconfig's)
    wl = load_workload(load_config(workload, overrides=tuple(workload_overrides), kind="workload",
                                   override_label="--workload-set"))
    check_workload_size(wl)
    seed = wl.seed if seed is None else seed
    tables = wl.table_list()
    layout = build_layout(cfg, tables)
    if not layout.fits:
        where = ("tables",) if wl.tables else ("trace",)
        # an override of the tables or their defaults (--workload-set defaults.rows=...) is what made them big
        file, line = (wl._sources.blame(where, also=[("defaults",)]) if wl._sources is not None
                      else (str(workload), None))
        per = " per channel (layout.policy channel_per_table)" if cfg.layout.policy == "channel_per_table" else ""
        raise ConfigError(f"the tables need {layout.bytes_needed / 2**30:.2f} GiB but {cfg.name or 'the memory'} "
                          f"holds {layout.capacity / 2**30:.2f} GiB{per}", file=file, line=line, path=where[0])
    total = wl.num_batches
    cb = None
    if progress is not None or deadline is not None:
        def cb(done: int, now: int) -> None:
            if deadline is not None and time.monotonic() > deadline:  # where no SIGALRM timer runs
                raise WallLimitExceeded(max_wall)
            if progress is not None:
                progress(done, total, now)
    more = [iter_batches(wl, seed=seed + i) for i in range(1, cfg.hosts)]  # each host its own stream
    system, end_ps = run_embedding(cfg, tables, iter_batches(wl, seed=seed), seed, cb,
                                   profile=iter_batches(wl, seed=seed), more_batches=more)
    sim = system.sim
    summary = workload_summary(system, end_ps, sim)
    summary["_sim_time_ps"] = end_ps
    return summary, None, sim, wl, seed
