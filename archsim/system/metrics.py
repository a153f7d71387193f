"""The summary.csv row of an embedding-workload run (DESIGN.md's contract, units in the column names).

The core columns (docs/metrics.md defines each) are the same on every system and come from the built graph,
whatever its kinds: every DRAM model (a ``dram`` component, or a model a component holds of the memory it is
wired to, ``memory_models()``: NMP units' view of their DIMMs) for memory traffic, every component with
``link_bytes()`` (CXL links) for link bytes by message kind, every component with ``cache_stats()`` (the LLC,
NMP rank caches, a PIFS buffer) for hit rates, and the energy ledger by kind.
"""

from __future__ import annotations

from typing import Any

from archsim.core.energy import pj_to_nj
from archsim.core.sim import Simulator
from archsim.cxl.link import LINK_KINDS
from archsim.dram.memory import DRAMSystem

#: energy kinds listed per lookup on every system (0.0 where no component books them)
ENERGY_KINDS = ("act", "read", "write", "refresh", "background", "io", "link", "sram", "compute")
#: the DRAM array's share of the kinds: row activation and column accesses
ARRAY_KINDS = ("act", "pre", "read", "write")
#: energy that accrues with time, not with traffic: DRAM standby and refresh
STATIC_KINDS = ("background", "refresh")
#: the energy_per_lookup_<name>_nJ columns that add kinds up (no kind of the ledger has these names)
DERIVED_ENERGY = ("array", "dynamic")

#: the columns every embedding-workload summary has, whatever the system (docs/metrics.md); besides these,
#: ``mem_<medium>_bandwidth_GBps`` for every memory and ``<cache>_hit_rate``, ``<cache>_lookups`` for every cache
CORE_COLUMNS: tuple[str, ...] = (
    "lookups", "lookups_per_s", "bags_per_s",
    *(f"batch_latency_{s}_us" for s in ("mean", "p50", "p95", "p99")),
    *(f"bag_latency_{s}_ns" for s in ("mean", "p50", "p95", "p99")),
    "mem_bytes", "mem_bandwidth_GBps", "mem_peak_bandwidth_GBps",
    "bytes_link_total", *(f"bytes_link_{k}" for k in LINK_KINDS),
    "energy_total_nJ", "energy_per_lookup_nJ", "energy_per_lookup_dynamic_nJ", "energy_per_lookup_array_nJ",
    *(f"energy_per_lookup_{k}_nJ" for k in ENERGY_KINDS),
)


def _pct(h, p: float, scale: float) -> float:
    v = h.percentile(p)
    return float("nan") if v is None else v / scale


def workload_summary(system, end_ps: int, sim: Simulator) -> dict[str, Any]:
    """Throughput, batch and bag latency, every component's own columns (its ``summary(end_ps)``, prefixed by its
    name), energy per lookup by component and kind, and the core columns every system shares."""
    ops = list(system.hosts)
    op = ops[0]
    secs = end_ps * 1e-12
    bl, gl = op.batch_latency, op.bag_latency
    if len(ops) > 1:  # hosts pooling CXL memory: totals, and latencies over every host's batches and bags
        bl, gl = bl.copy(), gl.copy()
        for other in ops[1:]:
            bl.merge(other.batch_latency)
            gl.merge(other.bag_latency)
    lookups = sum(o.lookups for o in ops)
    bags = sum(o.bags for o in ops)
    out: dict[str, Any] = {
        "lookups": lookups,
        "bags": bags,
        "batches": sum(o.batches for o in ops),
        "lookups_per_s": lookups / secs if secs else 0.0,
        "bags_per_s": bags / secs if secs else 0.0,
        "batch_latency_mean_us": bl.mean() / 1e6 if bl.count else float("nan"),
        "batch_latency_p50_us": _pct(bl, 50, 1e6),
        "batch_latency_p95_us": _pct(bl, 95, 1e6),
        "batch_latency_p99_us": _pct(bl, 99, 1e6),
        "bag_latency_mean_ns": gl.mean() / 1e3 if gl.count else float("nan"),
        "bag_latency_p50_ns": _pct(gl, 50, 1e3),
        "bag_latency_p95_ns": _pct(gl, 95, 1e3),
        "bag_latency_p99_ns": _pct(gl, 99, 1e3),
    }
    if len(ops) > 1:
        for i, o in enumerate(ops):
            out[f"host{i}_batch_latency_mean_us"] = o.batch_latency.mean() / 1e6 if o.batch_latency.count \
                else float("nan")
            out[f"host{i}_batch_latency_p99_us"] = _pct(o.batch_latency, 99, 1e6)
    ll = op.line_latency
    out["load_latency_mean_ns"] = ll.mean() / 1e3 if ll.count else float("nan")
    # every component's own columns, named by the component (llc_hit_rate, dram_bandwidth_GBps,
    # cxl_sw0_port1_link_down_GBps, nmp_ca_utilization, ...): whatever kinds the graph holds
    for name, comp in system.components.items():
        f = getattr(comp, "summary", None)
        if f is None or comp in ops:
            continue
        col = _col(name)
        for k, v in f(end_ps).items():
            out[f"{col}_{k}"] = v
    n = lookups or 1
    led = sim.energy
    out["energy_total_nJ"] = pj_to_nj(led.total_pj())
    out["energy_per_lookup_nJ"] = pj_to_nj(led.total_pj()) / n
    for kind, pj in led.by_kind().items():
        out[f"energy_per_lookup_{kind}_nJ"] = pj_to_nj(pj) / n
    split: dict[tuple[str, str], float] = {}
    for comp, kind, pj in led.items():
        parts = comp.split(".")
        top = parts[1] if len(parts) > 1 else parts[0]  # system.<component>...
        split[(top, kind)] = split.get((top, kind), 0.0) + pj
    for (top, kind), pj in sorted(split.items()):
        out[f"energy_per_lookup_{top}_{kind}_nJ"] = pj_to_nj(pj) / n
    out.update(core_columns(system, end_ps, sim, lookups))
    return out


def _col(name: str) -> str:
    return name.replace(".", "_")


def memory_media(system) -> dict[str, list[tuple[DRAMSystem, float]]]:
    """Every DRAM model of the built graph by the medium (the memory component) whose devices it models, each
    with its peak data rate (GB/s): a ``dram`` component models its own devices; a model that a component holds
    (``memory_models()``: NMP units' rank-local view of their DIMMs) counts for the memory component it is wired
    to. Each access goes through exactly one model, so their bytes add up without counting any twice."""
    comps = system.components
    media: dict[str, list[tuple[DRAMSystem, float]]] = {}
    for name, comp in comps.items():
        if isinstance(comp, DRAMSystem):
            media.setdefault(name, []).append((comp, comp.spec.peak_bandwidth_GBps))
    for name, comp in comps.items():
        inner = getattr(comp, "memory_models", None)
        if inner is None:
            continue
        node = system.graph.nodes.get(name)
        wired = [t for _, t in node.refs() if isinstance(comps.get(t), DRAMSystem)] if node is not None else []
        peak = getattr(comp, "peak_bandwidth_GBps", None)
        for model in inner():
            medium = wired[0] if wired else model.name
            media.setdefault(medium, []).append((model, peak() if peak else model.spec.peak_bandwidth_GBps))
    return media


def core_columns(system, end_ps: int, sim: Simulator, lookups: int) -> dict[str, Any]:
    """The columns every system reports alike (docs/metrics.md): memory traffic, link bytes by kind, cache hit
    rates, energy per lookup by kind with the dynamic part apart."""
    per_ns = end_ps * 1e-3
    out: dict[str, Any] = {}
    total = 0
    peak = 0.0
    per_medium = {}
    for medium, models in memory_media(system).items():
        nbytes = 0
        for model, p in models:
            nbytes += sum(ch.n_reads + ch.n_writes for ch in model.channels) * model.spec.org.access_bytes
            peak += p
        per_medium[medium] = nbytes
        total += nbytes
    out["mem_bytes"] = total
    out["mem_bandwidth_GBps"] = total / per_ns if per_ns else 0.0
    out["mem_peak_bandwidth_GBps"] = peak
    for medium, nbytes in per_medium.items():
        out[f"mem_{_col(medium)}_bandwidth_GBps"] = nbytes / per_ns if per_ns else 0.0
    link = dict.fromkeys(LINK_KINDS, 0.0)
    for comp in system.components.values():
        f = getattr(comp, "link_bytes", None)
        if f is not None:
            for k, b in f().items():
                link[k] += b
    out["bytes_link_total"] = sum(link.values())
    for k, b in link.items():
        out[f"bytes_link_{k}"] = b
    for comp in system.components.values():
        f = getattr(comp, "cache_stats", None)
        if f is not None:
            for cname, (served, looked) in f().items():
                out[f"{_col(cname)}_hit_rate"] = served / looked if looked else 0.0
                out[f"{_col(cname)}_lookups"] = looked
    n = lookups or 1
    kinds = sim.energy.by_kind()
    for k in ENERGY_KINDS:
        out[f"energy_per_lookup_{k}_nJ"] = pj_to_nj(kinds.get(k, 0.0)) / n
    out["energy_per_lookup_array_nJ"] = pj_to_nj(sum(kinds.get(k, 0.0) for k in ARRAY_KINDS)) / n
    dynamic = sum(pj for k, pj in kinds.items() if k not in STATIC_KINDS)
    out["energy_per_lookup_dynamic_nJ"] = pj_to_nj(dynamic) / n
    return out
