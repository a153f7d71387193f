"""The CPU host over DRAM: closed-form checks of throughput, per-bag latency and LLC hit rate."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from archsim.cache.analytic import che_lru_hit_rate, zipf_probabilities
from archsim.core.sim import Simulator
from archsim.dram.memory import DRAMSystem
from archsim.system.builder import run_embedding
from archsim.system.config import load_system
from archsim.system.metrics import workload_summary
from archsim.system.trace_driver import TraceDriver

CFG = "hwconfigs/cpu_ddr4.yaml"


@dataclass
class Table:
    name: str
    rows: int
    dim: int
    dtype: str = "fp32"

    @property
    def row_bytes(self) -> int:
        return self.dim * {"fp32": 4, "fp16": 2, "bf16": 2, "int8": 1}[self.dtype]


@dataclass
class Batch:
    index: int
    batch_size: int
    indices: list
    offsets: list


def _uniform_batches(rows: int, bags: int, pooling: int, n: int, seed: int = 1):
    rng = np.random.default_rng(seed)
    for i in range(n):
        yield Batch(i, bags, [rng.integers(0, rows, size=bags * pooling)], [np.arange(bags + 1) * pooling])


def test_uniform_lookups_reach_the_dram_random_access_limit() -> None:
    """Pooling 1, 64 B rows, a table far larger than the LLC: lookups/s within 10% of the DRAM model's own
    random-read rate (same address range, window 0, only the controller queues limiting)."""
    rows = 1 << 24
    cfg, _ = load_system(CFG)
    system, end_ps = run_embedding(cfg, [Table("t", rows, 16)], _uniform_batches(rows, 65536, 1, 1))
    lookups_per_s = system.operator.lookups / (end_ps * 1e-12)
    rng = np.random.default_rng(2)
    n = 40_000
    addrs = (rng.integers(0, rows, size=n) * 64).tolist()
    sim = Simulator(0)
    mem = DRAMSystem(sim, cfg.dram)
    drv = TraceDriver(sim.env, mem, ((a, False, -1) for a in addrs), window=0)
    sim.env.run(until=drv.finished)
    dram_limit = n / (drv.last_done_ps * 1e-12)
    assert lookups_per_s == pytest.approx(dram_limit, rel=0.10)
    assert lookups_per_s < dram_limit * 1.02  # the host cannot beat the memory


def test_one_fill_buffer_bag_takes_pooling_times_load_latency() -> None:
    """With one line miss in flight per core, a bag of P rows takes P loaded read latencies (plus pooling)."""
    rows, pooling = 1 << 24, 8
    cfg, _ = load_system(CFG, ["host.fill_buffers=1"])
    system, _ = run_embedding(cfg, [Table("t", rows, 16)], _uniform_batches(rows, 1024, pooling, 2))
    op = system.operator
    per_bag = op.bag_latency.mean()
    per_load = op.line_latency.mean()
    pool_ps = op.pool_ps[0]
    assert per_bag == pytest.approx(pooling * per_load + pool_ps, rel=0.01)
    # the load latency is the LLC tag check + wire each way + the DRAM's own read latency
    dram_lat = system.dram.latency.mean()
    host = cfg.host
    fixed = (host.llc.hit_latency_ns + host.to_memory_ns + host.from_memory_ns) * 1000
    assert per_load == pytest.approx(fixed + dram_lat, rel=0.02)


def test_zipf_llc_hit_rate_matches_che(tmp_path) -> None:
    """Zipf s=1.2 (the workload generator's sampler) over a table much larger than a 64 KiB LLC: the hit rate
    is within 2 points of Che's approximation of an LRU cache of the same 1024 lines."""
    from archsim.workload.batches import iter_batches
    from archsim.workload.spec import load_workload

    rows, s, lines = 100_000, 1.2, 1024
    wl_file = tmp_path / "zipf.yaml"
    wl_file.write_text(f"seed: 3\nbatch_size: 2048\nnum_batches: 40\ntables:\n  - rows: {rows}\n    dim: 16\n"
                       f"    pooling: 1\n    index: {{dist: zipf, s: {s}}}\n")
    wl = load_workload(wl_file)
    cfg, _ = load_system(CFG, ["host.llc.size_kib=64", "host.llc.ways=16"])
    system, end_ps = run_embedding(cfg, wl.table_list(), iter_batches(wl))
    summary = workload_summary(system, end_ps, system.sim)
    che = che_lru_hit_rate(zipf_probabilities(rows, s), lines)
    assert summary["llc_hit_rate"] == pytest.approx(che, abs=0.02)


@pytest.mark.parametrize("cfg_name, sets", [("cpu_ddr4.yaml", ["dram.org.channels=2"]),
                                            ("cpu_ddr4.yaml", ["host.llc.size_kib=48", "host.fill_buffers=4"]),
                                            ("cpu_ddr5.yaml", [])])
def test_compiled_and_python_engines_agree_on_embedding_runs(monkeypatch, cfg_name, sets) -> None:
    """The host drives the DRAM through submit/can_accept/space_event with many channels and an LLC: both
    channel engines give the same stats tree, energy and end time."""
    from archsim.dram import controller
    from archsim.workload.batches import iter_batches
    from archsim.workload.spec import load_workload

    if controller._cchannel is None:
        pytest.skip("compiled engine not built")
    wl = load_workload(str(Path(CFG).parent.parent / "workloads" / "zipf_small.yaml"), ["num_batches=3"])
    out = {}
    for eng in ("python", "c"):
        monkeypatch.setenv("ARCHSIM_ENGINE", eng)
        cfg, _ = load_system(str(Path(CFG).parent / cfg_name), sets)
        system, end_ps = run_embedding(cfg, wl.table_list(), iter_batches(wl))
        out[eng] = (end_ps, system.sim.stats.to_dict(raw=True), system.sim.energy.to_dict())
    assert out["python"] == out["c"]
