"""The tier manager against EVStore's and FAE/Hotline's claims (docs/validation.md, "Tiers and storage"; asserted
by tests/test_tiers.py at a smaller scale).

EVStore (Kurniawan et al., ASPLOS 2023): each layer over a plain LRU DRAM cache of the same memory over the same
SSD (:func:`evstore_layers`), and the memory EVStore's layers need to reach that cache's hit rate
(:func:`iso_hit_memory`). A run is warmed first: the cache tiers serve ``warm`` requests of the same workload
(a different seed) without time passing (:meth:`archsim.storage.tiers.TierManager.replay`), the EVProx map and a
static_hot profile are built from those requests (offline), and then ``measured`` requests run one at a time
(batch size 1): a request's latency is its batch's.

FAE / Hotline: hot rows in HBM read by a gather unit next to it, the rest in host DRAM over PCIe
(``hotline.yaml``), against the CPU gathering every row from DRAM (``cpu_ddr4.yaml``): :func:`hotline_vs_cpu`.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np

from archsim.workload.batches import Batch, table_streams

ROOT = Path(__file__).resolve().parents[2]
HW = ROOT / "hwconfigs"
WL = ROOT / "workloads"

#: EVStore artifact (ucare-uchicago/ev-store-dlrm, mixed_precs_caching/cache_manager.cpp): TOTAL_SIZE 75,425
#: entries of 144 B, C1:C2:C3 = 48:48:4; 240,000 entries hold every key of its inference workload
#: (experiments.md), so the cache holds 75,425 / 240,000 of the keys at fp32
ARTIFACT_CACHE_SHARE = 75_425 / 240_000
ENTRY_BYTES = 144


def request_batches(tables: list, n: int, seed: int, batch_size: int = 1, key_seed: int = 0) -> list[Batch]:
    """``n`` batches of ``batch_size`` samples of ``tables`` (each table's indices drawn at once with its
    workload sampler, then cut into batches: the same distributions as :func:`archsim.workload.batches.iter_batches`,
    generated in one block for speed). ``seed`` draws the samples; ``key_seed`` fixes which rows are popular (the
    samplers' permutation keys), the same for every stream of one workload."""
    streams = table_streams(seed, len(tables))
    keys = [k for _, _, k in table_streams(key_seed, len(tables))]
    per_table = []
    for (pool_rng, idx_rng, _), key, t in zip(streams, keys, tables):
        lengths = t.pooling.sampler().sample(pool_rng, n * batch_size)
        idx = t.index.sampler(t.rows, key=key).sample(idx_rng, int(lengths.sum()))
        off = np.concatenate(([0], np.cumsum(lengths))).astype(np.int64)
        per_table.append((idx, off))
    out = []
    for b in range(n):
        indices, offsets = [], []
        for idx, off in per_table:
            o = off[b * batch_size:(b + 1) * batch_size + 1]
            indices.append(idx[o[0]:o[-1]])
            offsets.append(o - o[0])
        out.append(Batch(index=b, batch_size=batch_size, indices=indices, offsets=offsets))
    return out


def distinct_rows(batches: list[Batch]) -> int:
    """Distinct (table, row) pairs the batches look up."""
    keys = [np.asarray(idx, dtype=np.int64) + (t << 40) for b in batches for t, idx in enumerate(b.indices)]
    return len(np.unique(np.concatenate(keys))) if keys else 0


def _load(hw: str | Path, components: dict[str, Any] | None):
    from archsim.system.config import load_system

    cfg, _ = load_system(str(hw))
    if components:
        merged = copy.deepcopy(cfg.components)
        for name, entry in components.items():
            merged[name] = entry
        cfg = cfg.model_copy(update={"components": merged})
    return cfg


def run_point(hw: str | Path, tables: list, warm: list[Batch], measured: list[Batch],
              components: dict[str, Any] | None = None, seed: int = 0) -> dict[str, Any]:
    """Run ``measured`` on ``hw`` (its ``components`` entries replaced by ``components``) after warming its tiers
    with ``warm``; per-request latencies (mean, p50, p90, p99 in us), the tier's hit rates and its summary."""
    from archsim.core.sim import Simulator
    from archsim.storage.tiers import TierManager
    from archsim.system.builder import build_host_system, build_layout

    cfg = _load(hw, components)
    layout = build_layout(cfg, tables)
    sim = Simulator(seed)
    system = build_host_system(sim, cfg, tables, layout, None, profile=iter(warm))
    tiers = [c for c in system.components.values() if isinstance(c, TierManager)]
    for tier in tiers:
        tier.replay(warm)
    times: list[int] = []
    op = system.hosts[0]
    proc = sim.env.process(op.run(measured, lambda done, now: times.append(now)))
    sim.env.run(until=proc)
    system.finalize(op.end_ps)
    lat = np.diff(np.asarray([0, *times], dtype=np.int64)) / 1e6  # us
    out: dict[str, Any] = {
        "mean_us": float(lat.mean()), "p50_us": float(np.percentile(lat, 50)),
        "p90_us": float(np.percentile(lat, 90)), "p99_us": float(np.percentile(lat, 99)),
        "lookups": op.lookups, "lookups_per_s": op.lookups / (op.end_ps * 1e-12) if op.end_ps else 0.0,
    }
    if tiers:
        t = tiers[0]
        s = t.summary(op.end_ps)
        out.update(hit_rate=s["hit_rate"], approx_hit_rate=s["approx_hit_rate"], tier=s,
                   cache_bytes=sum(lv.capacity for lv in t.spec.tiers[:t.last])
                   + ((t.spec.evprox.map_bytes or 0) if t.spec.evprox is not None else 0),
                   map_entries=t.map_entries)
    return out


def evstore_tier(total_bytes: int, layers: tuple[str, ...], ssd: str = "ssd0",
                 max_fraction: float = 0.05, profile_batches: int = 1 << 30) -> dict[str, Any]:
    """The ``emb`` node of evstore.yaml with ``total_bytes`` of DRAM and the EVStore ``layers`` on (a subset of
    evcache, evmix, evprox): evcache: EvLFU instead of LRU; evmix: the memory split into an int8 and an int4 tier
    (48% + 48% with evprox, 50% + 50% without) instead of one fp32 tier; evprox: 4% of the memory for the
    surrogate map."""
    policy = "evlfu" if "evcache" in layers else "lru"
    prox = "evprox" in layers
    if "evmix" in layers:
        c = int(total_bytes * (0.48 if prox else 0.5))
        base2 = -(-c // 4096) * 4096
        tiers = [{"memory": "dram", "capacity": c, "precision": "int8", "policy": policy},
                 {"memory": "dram", "capacity": c, "base": base2, "precision": "int4", "policy": policy}]
    else:
        tiers = [{"memory": "dram", "capacity": int(total_bytes * (0.96 if prox else 1.0)), "precision": "fp32",
                  "policy": policy}]
    tiers.append({"memory": ssd, "capacity": "3840GB"})
    node: dict[str, Any] = {"impl": "tier", "placement": "cache", "tiers": tiers, "profile_batches": profile_batches}
    if prox:
        node["evprox"] = {"map_bytes": int(total_bytes * 0.04), "max_fraction": max_fraction, "max_distance": 0.5}
    return node


LAYER_SETS: list[tuple[str, tuple[str, ...]]] = [
    ("lru", ()), ("evcache", ("evcache",)), ("evmix", ("evmix",)), ("evprox", ("evprox",)),
    ("evcache+evmix", ("evcache", "evmix")), ("evstore", ("evcache", "evmix", "evprox")),
]


#: the EVStore artifact's warm-up: N_WARMUP_REQUEST 137,521 requests (cache_manager.cpp)
ARTIFACT_WARMUP = 137_521


def evstore_setup(warm_requests: int = ARTIFACT_WARMUP, measured_requests: int = 2000,
                  seed: int = 1) -> tuple[list, list[Batch], list[Batch], int]:
    """EVStore's workload (workloads/evstore_criteo.yaml), warm-up requests (in chunks of 1,000) and measured
    requests (one per batch), independent streams, and the cache memory: the artifact's share of the distinct
    rows both touch, at 144 B each."""
    from archsim.config import load_config
    from archsim.workload.spec import load_workload

    wl = load_workload(load_config(str(WL / "evstore_criteo.yaml"), kind="workload"))
    tables = wl.table_list()
    chunk = min(1000, warm_requests)
    warm = request_batches(tables, -(-warm_requests // chunk), seed, chunk)
    measured = request_batches(tables, measured_requests, seed + 1)
    memory = int(ARTIFACT_CACHE_SHARE * distinct_rows(warm + measured) * ENTRY_BYTES)
    return tables, warm, measured, memory


def evstore_layers(warm_requests: int = ARTIFACT_WARMUP, measured_requests: int = 2000,
                   seed: int = 1) -> dict[str, dict[str, Any]]:
    """Each layer set of :data:`LAYER_SETS` over the same SSD with the same DRAM, plus dram_only and ssd_only."""
    tables, warm, measured, memory = evstore_setup(warm_requests, measured_requests, seed)
    out = {}
    for name, layers in LAYER_SETS:
        out[name] = run_point(HW / "evstore.yaml", tables, warm, measured, {"emb": evstore_tier(memory, layers)})
        out[name]["memory_bytes"] = memory
    out["dram_only"] = run_point(HW / "dram_only.yaml", tables, warm, measured)
    out["dram_only"]["memory_bytes"] = sum(t.bytes for t in tables)
    out["ssd_only"] = run_point(HW / "ssd_only.yaml", tables, warm, measured)
    return out


#: cache sizes of the EVStore artifact's experiments (experiments.md: 1,500 to 240,000 entries, 240,000 holding
#: every key): the sizes :func:`evstore_cache_sweep` runs, as shares of the distinct rows
ARTIFACT_SWEEP_ENTRIES = (8_000, 32_000, 64_000, 100_000, 150_000)


def evstore_cache_sweep(entries: tuple[int, ...] = ARTIFACT_SWEEP_ENTRIES, warm_requests: int = ARTIFACT_WARMUP,
                        measured_requests: int = 2000, seed: int = 1) -> dict[int, dict[str, Any]]:
    """The plain LRU cache against all three layers at each cache size of ``entries`` (out of the artifact's
    240,000), each as that share of the distinct rows at 144 B: EVStore's figures are "up to" figures, so the
    comparison is with the range over cache sizes. Per size: both runs' latencies and hit rates, and the mean
    and p90 change."""
    tables, warm, measured, _ = evstore_setup(warm_requests, measured_requests, seed)
    rows = distinct_rows(warm + measured)
    out: dict[int, dict[str, Any]] = {}
    for n in entries:
        mem = int(n / 240_000 * rows * ENTRY_BYTES)
        pair = {name: run_point(HW / "evstore.yaml", tables, warm, measured, {"emb": evstore_tier(mem, layers)})
                for name, layers in (("lru", ()), ("evstore", ("evcache", "evmix", "evprox")))}
        out[n] = {"memory_bytes": mem,
                  **{f"{name}_{k}": r[k] for name, r in pair.items()
                     for k in ("mean_us", "p50_us", "p90_us", "p99_us", "hit_rate")},
                  "mean_change": pair["evstore"]["mean_us"] / pair["lru"]["mean_us"] - 1,
                  "p90_change": pair["evstore"]["p90_us"] / pair["lru"]["p90_us"] - 1}
    return out


def replay_hit_rate(tables: list, warm: list[Batch], measured: list[Batch], node: dict[str, Any]) -> float:
    """Hit rate (exact and approximate) of tier ``node`` (evstore.yaml's ``emb``) on ``measured`` after ``warm``,
    from its state alone (no timing: :meth:`archsim.storage.tiers.TierManager.replay`)."""
    from archsim.core.sim import Simulator
    from archsim.storage.tiers import TierManager
    from archsim.system.builder import build_host_system, build_layout

    cfg = _load(HW / "evstore.yaml", {"emb": node})
    system = build_host_system(Simulator(0), cfg, tables, build_layout(cfg, tables), None, profile=iter(warm))
    tier = next(c for c in system.components.values() if isinstance(c, TierManager))
    tier.replay(warm)
    n, hits, approx = tier.replay(measured)
    return (hits + approx) / n if n else 0.0


def iso_hit_memory(tables: list, warm: list[Batch], measured: list[Batch], memory: int,
                   layers: tuple[str, ...] = ("evcache", "evmix", "evprox"), steps: int = 12) -> dict[str, float]:
    """The least DRAM with which EVStore's ``layers`` reach the hit rate a plain LRU fp32 cache of ``memory``
    bytes gets (bisection on the memory, ``steps`` halvings), and the memory saved: 1 - that / ``memory``."""
    target = replay_hit_rate(tables, warm, measured, evstore_tier(memory, ()))
    lo, hi = 0.0, 1.0
    if replay_hit_rate(tables, warm, measured, evstore_tier(memory, layers)) < target:
        return {"target_hit_rate": target, "fraction": float("nan"), "saved": float("nan")}
    for _ in range(steps):
        mid = (lo + hi) / 2
        m = max(int(memory * mid), 4 * 4096)
        if replay_hit_rate(tables, warm, measured, evstore_tier(m, layers)) >= target:
            hi = mid
        else:
            lo = mid
    return {"target_hit_rate": target, "fraction": hi, "saved": 1 - hi}


#: FAE's / Hotline's premise, a few rows take most lookups: Bagpipe's figure, about 1% of the embeddings take
#: over 92% of the accesses (../shared/reference/papers_found.md, section 4)
BAGPIPE_SKEW = {"dist": "hotset", "hot_fraction": 0.01, "hot_share": 0.92}


def hotline_vs_cpu(batches: int = 2, batch_size: int = 64, profile_batches: int = 32, seed: int = 0,
                   index: dict | None = None, link: dict | None = None) -> dict[str, dict[str, Any]]:
    """hotline.yaml (hot rows in HBM gathered next to it, the rest in host DRAM over PCIe) against cpu_ddr4.yaml
    (the cores gather every row from DRAM) on workloads/criteo_zipf.yaml: ``batches`` batches of ``batch_size``
    bags, the hot rows placed by a profile of ``profile_batches`` other batches of the same workload (another
    seed: FAE samples its training input). Per system: batch latency (us), lookups per second, and the tier's
    summary for hotline."""
    import dataclasses

    from archsim.config import load_config
    from archsim.workload.spec import IndexSpec, load_workload

    wl = load_workload(load_config(str(WL / "criteo_zipf.yaml"), kind="workload"))
    tables = wl.table_list()
    if index is not None:
        tables = [dataclasses.replace(t, index=IndexSpec.model_validate(index)) for t in tables]
    profile = request_batches(tables, profile_batches, seed + 1000, batch_size)
    measured = request_batches(tables, batches, seed, batch_size)
    out = {}
    for name in ("cpu_ddr4", "hotline"):
        comps = None
        if name == "hotline":
            hl = _load(HW / "hotline.yaml", None).components
            comps = {"emb": {**hl["emb"], "profile_batches": profile_batches}, "pcie": {**hl["pcie"], **(link or {})}}
        r = run_point(HW / f"{name}.yaml", tables, profile, measured, comps, seed)
        out[name] = r
    return out


def main(argv: list[str] | None = None) -> int:
    """``python -m archsim.storage.tier_checks [--out FILE] [--measured N] [--warm N]``: the numbers of
    docs/validation.md's "Tiers and storage" section, as JSON (a few minutes on one core)."""
    import argparse
    import json

    ap = argparse.ArgumentParser(description=main.__doc__.splitlines()[0])
    ap.add_argument("--out", default="-")
    ap.add_argument("--warm", type=int, default=ARTIFACT_WARMUP)
    ap.add_argument("--measured", type=int, default=2000)
    ap.add_argument("--only", default="evstore,iso,hotline", help="any of evstore, iso, hotline, sweep (the "
                                                                    "cache-size sweep, about 5 minutes)")
    args = ap.parse_args(argv)
    only = set(args.only.split(","))
    res: dict[str, Any] = {}

    def clean(d):
        return {k: v for k, v in d.items() if not isinstance(v, dict)}

    if "evstore" in only or "iso" in only:
        tables, warm, measured, memory = evstore_setup(args.warm, args.measured)
        res["setup"] = {"warm": args.warm, "measured": args.measured, "memory_bytes": memory,
                        "distinct_rows": distinct_rows(warm + measured),
                        "tables_bytes": sum(t.bytes for t in tables)}
    if "evstore" in only:
        runs = {}
        for name, layers in LAYER_SETS:
            runs[name] = clean(run_point(HW / "evstore.yaml", tables, warm, measured,
                                         {"emb": evstore_tier(memory, layers)}))
        runs["dram_only"] = clean(run_point(HW / "dram_only.yaml", tables, warm, measured))
        runs["ssd_only"] = clean(run_point(HW / "ssd_only.yaml", tables, warm, measured))
        res["evstore"] = runs
    if "sweep" in only:
        res["sweep"] = evstore_cache_sweep(warm_requests=args.warm, measured_requests=args.measured)
    if "iso" in only:
        res["iso"] = iso_hit_memory(tables, warm, measured, memory, steps=8)
    if "hotline" in only:
        res["hotline"] = {}
        for wname, idx in (("zipf", None), ("bagpipe", BAGPIPE_SKEW)):
            for gen in ("pcie4", "pcie5"):
                r = hotline_vs_cpu(index=idx, link={"generation": gen})
                res["hotline"][f"{wname}_{gen}"] = {k: clean(v) for k, v in r.items()}
    text = json.dumps(res, indent=1, sort_keys=True)
    if args.out == "-":
        print(text)
    else:
        Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
