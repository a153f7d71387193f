"""The Python API: ``archsim.run(config, trace=..., window=..., overrides=..., seed=...) -> Result``."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from archsim.config import InputError, dump_resolved
from archsim.core.sim import Simulator, fewer_gc_passes
from archsim.core.stats import Histogram
from archsim.report.output import write_run_dir
from archsim.system.config import SystemConfig, load_system
from archsim.system.trace_driver import TraceDriver
from archsim.workload.trace import iter_trace


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
        progress: Callable[[int, int, int], None] | None = None) -> Result:
    """Simulate ``trace`` (memory requests) or ``workload`` (embedding batches) on ``config``.

    ``seed``: the run's seed (default: the workload's own seed, 0 for traces). ``progress(batches_done,
    batches_total, sim_time_ps)`` is called after each batch of a workload. With ``write`` (or ``out``
    given) the run directory is written atomically; the default directory is
    ``results/<config-name>-<hash8>/``.
    """
    cfg, loaded = load_system(config, overrides)
    if (trace is None) == (workload is None):
        raise InputError("give either a memory trace (--trace FILE) or an embedding workload (--workload FILE)")
    wall0 = time.perf_counter()
    if trace is not None:
        seed = 0 if seed is None else seed
        with fewer_gc_passes():
            summary, stats, sim = _run_trace(cfg, trace, window, seed)
        run_info: dict[str, Any] = {"trace": str(trace), "window": window}
        run_hash = loaded.hash
    else:
        with fewer_gc_passes():
            summary, stats, sim, wl, seed = _run_workload(cfg, workload, workload_overrides, seed, progress)
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
    drv = TraceDriver(sim.env, mem, iter_trace(trace), window=window, cycle_ps=cfg.dram.timing.tCK_ps,
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
                  seed: int | None, progress):
    from archsim.system.builder import build_layout, run_embedding
    from archsim.system.metrics import workload_summary
    from archsim.workload.batches import iter_batches
    from archsim.workload.spec import load_workload

    wl = load_workload(workload, overrides=tuple(workload_overrides))
    seed = wl.seed if seed is None else seed
    tables = wl.table_list()
    layout = build_layout(cfg, tables)
    if not layout.fits:
        from archsim.config import ConfigError

        where = ("tables",) if wl.tables else ("trace",)
        file, line = wl._sources.where(where) if wl._sources is not None else (str(workload), None)
        per = " per channel (layout.policy channel_per_table)" if cfg.layout.policy == "channel_per_table" else ""
        raise ConfigError(f"the tables need {layout.bytes_needed / 2**30:.2f} GiB but {cfg.name or 'the memory'} "
                          f"holds {layout.capacity / 2**30:.2f} GiB{per}", file=file, line=line, path=where[0])
    total = wl.num_batches
    cb = None
    if progress is not None:
        def cb(done: int, now: int) -> None:
            progress(done, total, now)
    more = [iter_batches(wl, seed=seed + i) for i in range(1, cfg.hosts)]  # each host its own stream
    system, end_ps = run_embedding(cfg, tables, iter_batches(wl, seed=seed), seed, cb,
                                   profile=iter_batches(wl, seed=seed), more_batches=more)
    sim = system.sim
    summary = workload_summary(system, end_ps, sim)
    summary["_sim_time_ps"] = end_ps
    return summary, None, sim, wl, seed
