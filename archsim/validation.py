"""Validation against the reference simulators (DRAMsim3, Ramulator 2) on the shared traces.

Each row of ``validation/reference/dram/reference.csv`` names a simulator, a configuration, a trace and a window.
The matching archsim configuration (``hwconfigs/dram_*``) runs the same trace driven the same way, and each
metric is compared with its stated tolerance. ``archsim validate`` prints the table and can write it as
markdown (docs/validation.md is generated this way).
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

# reference configuration name -> archsim hwconfig (relative to the repository root)
CONFIGS = {
    "DDR4_8Gb_x8_3200": "hwconfigs/dram_ddr4_dramsim3.yaml",
    "HBM2_8Gb_x128": "hwconfigs/dram_hbm2_dramsim3.yaml",
    "DDR4_8Gb_x8_3200AA": "hwconfigs/dram_ddr4_ramulator2.yaml",
}

# (metric column, kind, tolerance): kind "rel" = relative error, "abs" = absolute difference
TOLERANCES = {
    "DRAMsim3": [("bandwidth_GBps", "rel", 0.05), ("read_latency_mean_ns", "rel", 0.10),
                 ("row_hit_rate", "abs", 0.03), ("energy_total_nJ", "rel", 0.10)],
    "Ramulator2": [("bandwidth_GBps", "rel", 0.10)],
}

REPO_ROOT = Path(__file__).resolve().parent.parent


def reference_dir() -> Path:
    """The shipped copy of the reference data (``validation/reference``), else ``../shared/reference``."""
    for cand in (REPO_ROOT / "validation" / "reference", REPO_ROOT.parent / "shared" / "reference"):
        if (cand / "dram" / "reference.csv").is_file():
            return cand
    from archsim.config import InputError

    raise InputError("no reference data found (validation/reference/dram/reference.csv)")


@dataclass
class Check:
    case: str
    metric: str
    reference: float
    archsim: float
    error: float
    tolerance: float
    kind: str

    @property
    def ok(self) -> bool:
        return abs(self.error) <= self.tolerance

    def error_text(self) -> str:
        return f"{self.error * 100:+.2f}%" if self.kind == "rel" else f"{self.error:+.4f}"

    def tol_text(self) -> str:
        return f"{self.tolerance * 100:.0f}%" if self.kind == "rel" else f"{self.tolerance:.2f}"


def dram_cases(ref_dir: Path | None = None) -> list[dict[str, str]]:
    """The reference rows (one per simulator, config, trace, window)."""
    ref_dir = ref_dir or reference_dir()
    with open(ref_dir / "dram" / "reference.csv") as f:
        return list(csv.DictReader(f))


def case_name(row: dict[str, str]) -> str:
    return f"{row['simulator']}/{row['config']}/{row['trace']}/w{row['window']}"


def run_case(row: dict[str, str], ref_dir: Path | None = None) -> tuple[dict, list[Check]]:
    """Run one reference case and compare its metrics; returns (archsim summary, checks)."""
    from archsim.api import run

    ref_dir = ref_dir or reference_dir()
    trace = ref_dir / "dram" / "traces" / f"{row['trace']}.trace.gz"
    res = run(REPO_ROOT / CONFIGS[row["config"]], trace=trace, window=int(row["window"]))
    checks = []
    for metric, kind, tol in TOLERANCES[row["simulator"]]:
        if not row.get(metric):
            continue
        ref = float(row[metric])
        got = float(res.summary[metric])
        err = (got / ref - 1.0) if kind == "rel" else (got - ref)
        checks.append(Check(case_name(row), metric, ref, got, err, tol, kind))
    return res.summary, checks


def run_all(select: Callable[[dict[str, str]], bool] | None = None) -> Iterator[Check]:
    for row in dram_cases():
        if select is None or select(row):
            yield from run_case(row)[1]


def markdown_table(checks: list[Check]) -> str:
    lines = ["| case | metric | reference | archsim | error | tolerance | ok |",
             "|---|---|---:|---:|---:|---:|:---:|"]
    for c in checks:
        lines.append(f"| {c.case} | {c.metric} | {c.reference:.6g} | {c.archsim:.6g} | {c.error_text()} "
                     f"| {c.tol_text()} | {'yes' if c.ok else '**no**'} |")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------------------------
# Closed-form checks of the models built on the DRAM (issue #3: the CPU host baseline)
# ------------------------------------------------------------------------------------------------------------
CPU_DDR4 = "hwconfigs/cpu_ddr4.yaml"


@dataclass
class SyntheticTable:
    name: str
    rows: int
    dim: int
    dtype: str = "fp32"

    @property
    def row_bytes(self) -> int:
        return self.dim * 4


@dataclass
class SyntheticBatch:
    index: int
    batch_size: int
    indices: list
    offsets: list


def uniform_batches(rows: int, bags: int, pooling: int, n: int, seed: int = 1, tables: int = 1):
    """``n`` batches of ``bags`` bags per table, ``pooling`` uniform row indices each, over ``tables`` tables."""
    import numpy as np

    rng = np.random.default_rng(seed)
    for i in range(n):
        yield SyntheticBatch(i, bags, [rng.integers(0, rows, size=bags * pooling) for _ in range(tables)],
                             [np.arange(bags + 1) * pooling for _ in range(tables)])


def _rel(case: str, metric: str, ref: float, got: float, tol: float) -> Check:
    return Check(case, metric, ref, got, got / ref - 1.0, tol, "rel")


def host_random_limit_check() -> Check:
    """Pooling 1, 64 B rows of a 2^24-row table on cpu_ddr4: lookups/s against the DRAM model's own random-read
    rate over the same addresses (window 0, only the controller queues limiting). Tolerance 10%."""
    import numpy as np

    from archsim.core.sim import Simulator
    from archsim.dram.memory import DRAMSystem
    from archsim.system.builder import run_embedding
    from archsim.system.config import load_system
    from archsim.system.trace_driver import TraceDriver

    rows = 1 << 24
    cfg, _ = load_system(REPO_ROOT / CPU_DDR4)
    system, end_ps = run_embedding(cfg, [SyntheticTable("t", rows, 16)], uniform_batches(rows, 65536, 1, 1))
    got = system.operator.lookups / (end_ps * 1e-12)
    rng = np.random.default_rng(2)
    n = 40_000
    addrs = (rng.integers(0, rows, size=n) * 64).tolist()
    sim = Simulator(0)
    mem = DRAMSystem(sim, cfg.dram)
    drv = TraceDriver(sim.env, mem, ((a, False, -1) for a in addrs), window=0)
    sim.env.run(until=drv.finished)
    ref = n / (drv.last_done_ps * 1e-12)
    return _rel("host/cpu_ddr4/uniform_pool1_64B", "lookups_per_s vs DRAM random-read limit", ref, got, 0.10)


def host_serial_bag_check(pooling: int = 8) -> tuple[Check, Check]:
    """One fill buffer per core: a bag of P rows takes P loaded read latencies plus one line's pooling (1%);
    a load takes the LLC tag check + the wire each way + the DRAM's mean read latency (2%)."""
    from archsim.system.builder import run_embedding
    from archsim.system.config import load_system

    rows = 1 << 24
    cfg, _ = load_system(REPO_ROOT / CPU_DDR4, ["host.fill_buffers=1"])
    system, _ = run_embedding(cfg, [SyntheticTable("t", rows, 16)], uniform_batches(rows, 1024, pooling, 2))
    op = system.operator
    per_load = op.line_latency.mean()
    host = cfg.host
    fixed = (host.llc.hit_latency_ns + host.to_memory_ns + host.from_memory_ns) * 1000
    case = f"host/cpu_ddr4/fill_buffers1_pool{pooling}"
    return (_rel(case, "bag latency vs P x load latency", pooling * per_load + op.pool_ps[0],
                 op.bag_latency.mean(), 0.01),
            _rel(case, "load latency vs LLC + wires + DRAM latency", fixed + system.dram.latency.mean(),
                 per_load, 0.02))


def llc_che_check(s: float = 1.2, rows: int = 100_000, lines: int = 1024, tmp_dir: Path | None = None) -> Check:
    """Zipf s over ``rows`` 64 B rows (the workload generator's sampler), a 16-way LLC of ``lines`` lines:
    the hit rate against Che's approximation of an LRU cache of the same size (2 points)."""
    import tempfile

    from archsim.cache.analytic import che_lru_hit_rate, zipf_probabilities
    from archsim.system.builder import run_embedding
    from archsim.system.config import load_system
    from archsim.workload.batches import iter_batches
    from archsim.workload.spec import load_workload

    with tempfile.TemporaryDirectory(dir=tmp_dir) as d:
        wl_file = Path(d) / "zipf.yaml"
        wl_file.write_text(f"seed: 3\nbatch_size: 2048\nnum_batches: 40\ntables:\n  - rows: {rows}\n"
                           f"    dim: 16\n    pooling: 1\n    index: {{dist: zipf, s: {s}}}\n")
        wl = load_workload(wl_file)
    cfg, _ = load_system(REPO_ROOT / CPU_DDR4, [f"host.llc.size_kib={lines * 64 // 1024}", "host.llc.ways=16"])
    system, _ = run_embedding(cfg, wl.table_list(), iter_batches(wl))
    ref = che_lru_hit_rate(zipf_probabilities(rows, s), lines)
    got = system.llc.hit_rate()
    return Check(f"host/cpu_ddr4/zipf{s}_llc{lines}lines", "LLC hit rate vs Che's LRU", ref, got, got - ref,
                 0.02, "abs")


# ------------------------------------------------------------------------------------------------------------
# CXL (issue #6): link bandwidth from the flit arithmetic, an expander's idle latency against Pond's measurement
# ------------------------------------------------------------------------------------------------------------
def _link_stream_GBps(generation: str, n: int = 20_000, skip: int = 2000) -> float:
    """Steady data bandwidth of ``n`` 64 B reads offered at once through an x16 link to a 1 ns downstream."""
    from archsim.core.component import Component
    from archsim.core.port import MemoryPort, finish_at
    from archsim.core.request import MemRequest
    from archsim.core.sim import Simulator
    from archsim.cxl import Link, LinkSpec

    class _Fixed(Component):
        def submit(self, req):
            req.done = self.env.event()
            finish_at(self.env, req, self.env.now + 1000)
            return req.done

    sim = Simulator(0)
    link = Link(sim, "link", LinkSpec(generation=generation, lanes=16), _Fixed(sim, "stub"))
    port = MemoryPort(link)
    done: list[int] = []
    for i in range(n):
        port.send(MemRequest(i * 64), lambda ev: done.append(sim.env.now))
    sim.env.run()
    return 64 * (len(done) - 1 - skip) / (done[-1] - done[skip]) * 1000


def cxl_link_checks() -> Iterator[Check]:
    """Long 64 B read streams over x16 links against the bandwidth by hand (tests/test_cxl_link.py derives the
    flit packing from the CXL 3.2 specification): PCIe 5 with 68B flits, 63.015 GB/s of flits per direction x 64 /
    76.5 wire bytes per read (9/8 flit: a header slot holds 2 data-response headers, 4 data slots per read);
    PCIe 6 with 256B flits, 128 GB/s x 64 / (256 x 13/44)."""
    from fractions import Fraction

    hand5 = float(Fraction(32 * 16 * 128, 130 * 8) * 64 / Fraction(68 * 9, 8))
    hand6 = float(Fraction(64 * 16, 8) * 64 / (256 * Fraction(13, 44)))
    for gen, hand in (("pcie5", hand5), ("pcie6", hand6)):
        yield _rel(f"cxl/{gen}_x16_64B_reads", "bandwidth GB/s vs flit arithmetic", hand, _link_stream_GBps(gen),
                   0.02)


def cxl_expander_latency_check() -> Check:
    """A directly attached expander (default link and controller, one DDR5-4800 DIMM): an idle read costs
    more than the same DRAM read locally by the link and controller; held against Pond's 70-90 ns
    (checked as 80 ns +- 12.5%)."""
    from archsim.config import load_config
    from archsim.core.port import call_at
    from archsim.core.request import MemRequest
    from archsim.core.sim import Simulator
    from archsim.cxl import Expander, ExpanderSpec, Link, LinkSpec
    from archsim.cxl.flit import M2S_REQ
    from archsim.dram.memory import DRAMSystem
    from archsim.dram.spec import DRAMSpec

    dram = DRAMSpec.model_validate(load_config("ddr5_4800_16gb_x8").data)
    base = 64 << 30
    sim = Simulator(0)
    exp = Expander(sim, "exp", ExpanderSpec(name="exp", base=base, dram=dram))
    link = Link(sim, "link", LinkSpec(), exp)
    req = MemRequest(base)
    t0 = 100_000
    call_at(sim.env, t0, lambda ev: link.submit(req))
    sim.env.run(until=t0 + 10_000_000)
    total = req.t_done - t0
    # the same device address read on a bare DRAM, arriving when the expander hands it over
    arrive = t0 + link.port_ps + link.serialisation_ps(M2S_REQ) + link.phy_ps + link.port_ps + exp.controller_ps
    sim2 = Simulator(0)
    bare = DRAMSystem(sim2, dram)
    r2 = MemRequest(0)
    call_at(sim2.env, arrive, lambda ev: bare.submit(r2))
    sim2.env.run(until=arrive + 10_000_000)
    added = total - (r2.t_done - arrive)
    return _rel("cxl/expander_direct_ddr5", "idle read added over local DRAM (ps) vs Pond 70-90 ns", 80_000,
                added, 0.125)


def model_checks() -> Iterator[Check]:
    """The closed-form checks of the models above the DRAM, in the order ``archsim validate`` prints them."""
    yield host_random_limit_check()
    yield from host_serial_bag_check()
    yield llc_che_check()
    yield from cxl_link_checks()
    yield cxl_expander_latency_check()
