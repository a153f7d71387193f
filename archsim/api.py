"""The Python API: ``archsim.run(config, trace=..., window=..., overrides=..., seed=...) -> Result``."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from archsim.config import dump_resolved
from archsim.core.sim import Simulator
from archsim.dram.memory import DRAMSystem
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
        overrides: Sequence[str] = (), seed: int = 0, out: str | Path | None = None,
        write: bool = False) -> Result:
    """Simulate ``trace`` through the memory system of ``config`` and return its results.

    With ``write`` (or ``out`` given) the run directory is written atomically; the default directory is
    ``results/<config-name>-<hash8>/``.
    """
    cfg, loaded = load_system(config, overrides)
    if trace is None:
        from archsim.config import InputError

        raise InputError("a trace is needed (--trace FILE)")
    wall0 = time.perf_counter()
    sim = Simulator(seed)
    mem = DRAMSystem(sim, cfg.dram)
    drv = TraceDriver(sim.env, mem, iter_trace(trace), window=window, cycle_ps=cfg.dram.timing.tCK_ps)
    sim.env.run(until=drv.finished)
    end_ps = drv.last_done_ps
    mem.finalize(end_ps)
    wall = time.perf_counter() - wall0
    summary: dict[str, Any] = {
        "config_hash": loaded.hash[:16],
        "seed": seed,
        "sim_time_ns": end_ps / 1000,
        "wall_time_s": round(wall, 3),
    }
    summary.update(mem.summary(end_ps))
    summary.update(sim.energy.summary_nj())
    stats = {"system": sim.stats.to_dict(raw=True), "energy": sim.energy.to_dict(),
             "run": {"trace": str(trace), "window": window}}
    res = Result(summary=summary, stats=stats, config=cfg, resolved=loaded.data, config_hash=loaded.hash,
                 name=cfg.name or loaded.name)
    if write or out is not None:
        out_dir = Path(out) if out is not None else Path("results") / f"{res.name}-{loaded.hash[:8]}"
        res.out_dir = write_run_dir(out_dir, dump_resolved(loaded.data), stats, summary)
    return res
