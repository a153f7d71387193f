"""Skipping idle cycles and running ahead inside one callback must not change any result."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from archsim.core.sim import Simulator
from archsim.dram.memory import DRAMSystem
from archsim.system.config import load_system
from archsim.system.trace_driver import TraceDriver
from archsim.workload.trace import iter_trace

ROOT = Path(__file__).resolve().parent.parent
TRACES = ROOT / "validation/reference/dram/traces"


def _run(cfg_path: str, trace: str, window: int, skip: bool, n: int = 3000):
    cfg, _ = load_system(ROOT / cfg_path)
    sim = Simulator(0)
    mem = DRAMSystem(sim, cfg.dram)
    for ch in mem.channels:
        ch.skip_idle = skip
    drv = TraceDriver(sim.env, mem, itertools.islice(iter_trace(TRACES / trace), n), window=window,
                      cycle_ps=cfg.dram.timing.tCK_ps)
    sim.env.run(until=drv.finished)
    mem.finalize(drv.last_done_ps)
    return drv.last_done_ps, mem.summary(drv.last_done_ps), sim.energy.total_pj()


@pytest.mark.parametrize("cfg", ["hwconfigs/dram_ddr4_dramsim3.yaml", "hwconfigs/dram_ddr4_ramulator2.yaml",
                                 "hwconfigs/dram_hbm2_dramsim3.yaml"])
@pytest.mark.parametrize("trace,window", [("random_rw_100k.trace.gz", 1), ("random_rw_100k.trace.gz", 0),
                                          ("zipf105_row128_100k.trace.gz", 8)])
def test_skipping_idle_cycles_is_exact(cfg, trace, window):
    fast = _run(cfg, trace, window, skip=True)
    slow = _run(cfg, trace, window, skip=False)
    assert fast[0] > 0
    assert fast == slow
