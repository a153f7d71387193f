"""The summary.csv row of an embedding-workload run (DESIGN.md's contract, units in the column names)."""

from __future__ import annotations

from typing import Any

from archsim.core.energy import pj_to_nj
from archsim.core.sim import Simulator


def _pct(h, p: float, scale: float) -> float:
    v = h.percentile(p)
    return float("nan") if v is None else v / scale


def workload_summary(system, end_ps: int, sim: Simulator) -> dict[str, Any]:
    """Throughput, batch and bag latency, DRAM bandwidth per channel, energy per lookup by component and kind."""
    op = system.operator
    ops = getattr(system, "operators", [op])
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
    if system.llc is not None:
        out["llc_hit_rate"] = system.llc.hit_rate()
    dram = system.dram.summary(end_ps)
    out["dram_bandwidth_GBps"] = dram["bandwidth_GBps"]
    out["dram_read_latency_mean_ns"] = dram["read_latency_mean_ns"]
    out["dram_row_hit_rate"] = dram["row_hit_rate"]
    if getattr(system, "nmp", None) is not None:
        out.update(system.nmp.summary(end_ps))
    if getattr(system, "pifs", None) is not None:
        out.update(system.pifs.summary(end_ps))
    nbytes = system.dram.spec.org.access_bytes
    for ch in system.dram.channels:
        b = (ch.n_reads + ch.n_writes) * nbytes
        out[f"dram_ch{ch.index}_bandwidth_GBps"] = b / (end_ps * 1e-3) if end_ps else 0.0
    fab = getattr(system, "fabric", None)
    if fab is not None:  # payload bandwidth of each CXL link per direction, bytes served by each expander
        per_ns = end_ps * 1e-3 if end_ps else 0.0
        for link in fab.links:
            short = link.name.split(".", 1)[1].replace(".", "_")
            out[f"cxl_{short}_down_GBps"] = link.m2s.payload_bytes / per_ns if per_ns else 0.0
            out[f"cxl_{short}_up_GBps"] = link.s2m.payload_bytes / per_ns if per_ns else 0.0
        for name, e in fab.expanders.items():
            out[f"cxl_{name}_bandwidth_GBps"] = e.bytes / per_ns if per_ns else 0.0
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
    return out
