"""The tier manager (archsim/storage/tiers.py, kind ``tier``), its gather unit and PCIe link, and the paper checks
(archsim/storage/tier_checks.py) at a small scale: exact latencies on SSD tiers (closed forms of
docs/storage.md), placements, EVMix capacity, EVProx accounting, sharding within capacity, one-line errors, and
EVStore's layers / Hotline's placement in the right direction."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from archsim.api import run
from archsim.core.request import MemRequest
from archsim.core.sim import Simulator
from archsim.storage.evstore import quant_rel_error, quantise, row_bytes_at
from archsim.storage.tier_spec import VectorSpec
from archsim.storage.tiers import TierManager
from archsim.system.builder import build_host_system, build_layout
from archsim.system.config import load_system
from archsim.workload.batches import Batch
from archsim.workload.spec import IndexSpec, PoolingSpec, TableInfo

REPO = Path(__file__).resolve().parents[1]
HW = REPO / "hwconfigs"
WL = REPO / "workloads"


def tables(n: int = 2, rows: int = 1000, dim: int = 36) -> list[TableInfo]:
    return [TableInfo(f"t{i}", rows, dim, "fp32", PoolingSpec(dist="fixed", value=1), IndexSpec(dist="uniform"))
            for i in range(n)]


def batch(per_table: list[list[int]], index: int = 0) -> Batch:
    """One batch with a single bag per table holding ``per_table[t]``."""
    idx = [np.asarray(r, dtype=np.int64) for r in per_table]
    return Batch(index, 1, idx, [np.asarray([0, len(r)], dtype=np.int64) for r in idx])


def hw(tmp_path: Path, emb: str, extra: str = "") -> Path:
    """cpu_ddr4 with two SSDs (a Z-NAND 'fast' one, a TLC 'slow' one) and tier ``emb`` read by the cores."""
    p = tmp_path / "hw.yaml"
    p.write_text(f"extends: {HW / 'cpu_ddr4.yaml'}\nname: tiers\nhost: {{llc: null}}\ncomponents:\n"
                 f"  fast: {{impl: ssd, extends: nvme_znand_pcie3}}\n"
                 f"  slow: {{impl: ssd, extends: nvme_tlc_pcie4}}\n"
                 f"  emb:\n{emb}\n  uncore: {{next: emb}}\n{extra}")
    return p


def build(path: Path, tbls: list[TableInfo], profile: list[Batch] = ()):
    cfg, _ = load_system(str(path))
    sim = Simulator(0)
    system = build_host_system(sim, cfg, tbls, build_layout(cfg, tbls), None, profile=iter(list(profile)))
    return sim, system, system["emb"]


def line_addr(tier: TierManager, t: int, row: int, line: int = 0) -> int:
    addrs, _ = tier.table_map.line_addresses(t, np.asarray([row]))
    return int(addrs[line])


def read(sim, tier: TierManager, addrs: list[int]) -> list[MemRequest]:
    reqs = [MemRequest(a, False, 64) for a in addrs]
    for r in reqs:
        tier.submit(r)
    sim.env.run()
    return reqs


TWO_SSD = """    impl: tier
    placement: cache
    tiers:
      - {memory: fast, capacity: 1MiB}
      - {memory: slow, capacity: 1GiB}"""


# ------------------------------------------------------------------------ exact small cases
def test_a_hit_in_tier0_costs_tier0s_read(tmp_path):
    sim, system, tier = build(hw(tmp_path, TWO_SSD), tables())
    tier.replay([batch([[7], []])])  # row 7 of table 0 is in tier 0, slot 0
    assert tier.held(7) == 0 and tier._slot_of[0][7] == 0
    (r,) = read(sim, tier, [line_addr(tier, 0, 7)])
    fast = system["fast"]
    assert r.t_done - r.t_submit == fast.idle_read_latency_ps(fast.base, 144)  # 144 B: fp32 x 36
    assert tier.found == [1, 0] and tier.lookups == 1 and system["slow"].reads == 0


def test_a_miss_costs_tier1s_read_then_fills_tier0(tmp_path):
    sim, system, tier = build(hw(tmp_path, TWO_SSD), tables())
    (r,) = read(sim, tier, [line_addr(tier, 1, 5)])
    slow, fast = system["slow"], system["fast"]
    unit = 1000 + 5  # table 1's units follow table 0's 1000
    assert r.t_done - r.t_submit == slow.idle_read_latency_ps(slow.base + unit * 144, 144)
    assert tier.found == [0, 1] and tier.held(unit) == 0
    assert fast.writes == 1 and tier.bytes_written[0] == 144 and tier.fills[0] == 1  # the fill: a write to tier 0
    (r2,) = read(sim, tier, [line_addr(tier, 1, 5)])  # now a hit
    assert tier.found == [1, 1] and slow.reads == 1


def test_lines_of_a_row_and_two_lookups_in_flight_merge(tmp_path):
    sim, system, tier = build(hw(tmp_path, TWO_SSD), tables())
    lines = [line_addr(tier, 0, 3, k) for k in range(3)]  # a 144 B row: 3 lines
    reqs = read(sim, tier, lines + [lines[0]])  # its three lines, then another lookup of it
    assert system["slow"].reads == 1  # one read of the row
    assert len({r.t_done for r in reqs}) == 1  # all complete with it
    assert tier.lookups == 2 and tier.merged == 1 and tier.found == [0, 2]
    assert system["fast"].writes == 1  # filled once


def test_lookup_time_is_added_before_the_read(tmp_path):
    sim, system, tier = build(hw(tmp_path, TWO_SSD + "\n    lookup_ns: 100"), tables())
    (r,) = read(sim, tier, [line_addr(tier, 0, 0)])
    slow = system["slow"]
    assert r.t_done - r.t_submit == 100_000 + slow.idle_read_latency_ps(slow.base, 144)


def test_static_placement_puts_exactly_the_hottest_rows_in_tier0(tmp_path):
    emb = """    impl: tier
    placement: static
    tiers:
      - {memory: fast, capacity: 1MiB, rows: 3}
      - {memory: slow, capacity: 1GiB}"""
    counts = {0: {9: 5, 2: 4, 4: 1}, 1: {6: 4, 1: 3}}  # (table 1, row 6) ties (table 0, row 2): lower unit first
    prof = [batch([[r for r, c in counts[0].items() for _ in range(c)],
                   [r for r, c in counts[1].items() for _ in range(c)]])]
    sim, system, tier = build(hw(tmp_path, emb), tables(), prof)
    assert tier._placed == {9: (0, 0), 2: (0, 1), 1006: (0, 2)}
    assert tier.home(4) == (1, 4) and tier.home(1001) == (1, 1001)  # the rest at their canonical slots
    (r,) = read(sim, tier, [line_addr(tier, 1, 6)])
    fast = system["fast"]
    assert r.t_done - r.t_submit == fast.idle_read_latency_ps(fast.base + 2 * 144, 144)
    assert tier.summary(sim.env.now)["tier0_hit_rate"] == 1.0


def test_evmix_fp16_doubles_the_rows_per_byte_and_int_rows_carry_a_scale(tmp_path):
    emb = """    impl: tier
    tiers:
      - {memory: fast, capacity: 144000, precision: fp16}
      - {memory: fast, capacity: 144000, base: 1MiB, precision: int8}
      - {memory: slow, capacity: 1GiB}"""
    sim, system, tier = build(hw(tmp_path, emb), tables())
    assert tier.slot_b == [72, 40, 144] and tier.cap_rows[:2] == [2000, 3600]  # fp32 would hold 1000
    assert tier.capacity_gain == [2.0, 3.6, 1.0]
    assert row_bytes_at(36, "int4") == 18 + 4
    s = tier.summary(1)
    assert s["tier0_rows"] == 2000 and s["tier0_capacity_gain"] == 2.0
    # a row read from a lower precision moves fewer bytes
    tier.replay([batch([[1], []])])
    read(sim, tier, [line_addr(tier, 0, 1)])
    assert tier.bytes_read[0] == 72


def test_quantisation_error_on_drawn_vectors():
    vec = VectorSpec(std=0.01, samples=512, seed=3)
    e16, e8, e4 = (quant_rel_error([36], p, vec) for p in ("fp16", "int8", "int4"))
    assert quant_rel_error([36], "fp32", vec) == 0.0
    assert 1e-5 < e16 < 1e-3 < e8 < 0.02 < e4 < 0.2  # each halving of the bits costs more
    v = np.random.default_rng(0).normal(0, 0.01, (4, 36)).astype(np.float32)
    q = quantise(v, "int8")
    assert np.all(np.abs(v - q) <= np.abs(v).max(axis=1, keepdims=True) / 127 / 2 + 1e-9)


EVPROX = """    impl: tier
    tiers:
      - {{memory: fast, capacity: 1MiB}}
      - {{memory: slow, capacity: 1GiB}}
    evprox: {{hot_rows: 1, max_fraction: {f}, max_distance: 0.5}}
    vectors: {{clusters: 1, noise: 0.1}}"""


def test_evprox_serves_a_cached_surrogate_as_an_approximate_hit(tmp_path):
    prof = [batch([[5, 5, 5, 8, 9], []])]  # row 5 is hot; 8 and 9 are cold keys of the profile
    sim, system, tier = build(hw(tmp_path, EVPROX.format(f=1.0)), tables(), prof)
    assert set(tier.surrogate) == {8, 9} and all(s == 5 for s, _ in tier.surrogate.values())
    assert all(d < 0.5 for _, d in tier.surrogate.values())
    tier.replay([batch([[5], []])])  # the surrogate is cached
    (r,) = read(sim, tier, [line_addr(tier, 0, 8)])
    fast = system["fast"]
    assert r.t_done - r.t_submit == fast.idle_read_latency_ps(fast.base, 144)  # served from tier 0
    assert tier.approx == 1 and tier.found == [0, 0] and system["slow"].reads == 0
    assert tier.held(8) == -1  # not filled
    s = tier.summary(sim.env.now)
    assert s["approx_hit_rate"] == 1.0 and s["hit_rate"] == 0.0
    assert s["evprox_rel_error"] == pytest.approx(tier.surrogate[8][1])
    assert s["evprox_map_entries"] == 2
    read(sim, tier, [line_addr(tier, 0, 4)])  # no surrogate: a miss
    assert tier.found == [0, 1]


def test_evprox_stays_within_its_fraction(tmp_path):
    prof = [batch([[5, 5, 5, 8, 9], []])]
    sim, system, tier = build(hw(tmp_path, EVPROX.format(f=0.5)), tables(), prof)
    tier.replay([batch([[5], []])])
    read(sim, tier, [line_addr(tier, 0, 8)])  # 1 approximate of 1 lookup would be 100% > 50%: a miss
    assert tier.approx == 0 and tier.found == [0, 1]
    read(sim, tier, [line_addr(tier, 0, 5)])  # a hit
    read(sim, tier, [line_addr(tier, 0, 9)])  # 1 of 3 <= 50%: approximate
    assert tier.approx == 1 and tier.lookups == 3


def test_shard_respects_capacity_and_balances_cost(tmp_path):
    emb = """    impl: tier
    placement: shard
    tiers:
      - {memory: fast, capacity: 14400, cost: 1}
      - {memory: slow, capacity: 144000, cost: 4}
      - {memory: fast, capacity: 273600, base: 1MiB, cost: 2}"""
    tb = tables(3, 1000)
    rng = np.random.default_rng(0)
    prof = [batch([rng.zipf(1.3, 400) % 1000 for _ in range(3)])]
    sim, system, tier = build(hw(tmp_path, emb), tb, prof)
    cap = tier.cap_rows
    assert cap == [100, 1000, 1900] and sum(cap) == 3000  # exactly the units
    homes = [tier.home(u) for u in range(3000)]
    assert len(set(homes)) == 3000  # no two units share a slot
    for i in range(3):
        assert max(s for t, s in homes if t == i) < cap[i]  # every slot inside its tier
    placed = tier.placed_units
    assert placed[0] == 100  # the cheapest tier takes profiled units until it is full
    load = tier.shard_load
    assert load[0] > load[2] > 0  # hot units where access is cheap, then the next cheapest
    read(sim, tier, [line_addr(tier, 2, 999)])
    assert sum(tier.found) == 1


def test_same_config_and_seed_give_identical_results():
    a = run(str(HW / "evstore.yaml"), workload=str(WL / "evstore_criteo.yaml"), workload_overrides=["num_batches=30"])
    b = run(str(HW / "evstore.yaml"), workload=str(WL / "evstore_criteo.yaml"), workload_overrides=["num_batches=30"])
    sa = {k: v for k, v in a.summary.items() if k != "wall_time_s"}
    sb = {k: v for k, v in b.summary.items() if k != "wall_time_s"}
    assert json.dumps(sa, sort_keys=True) == json.dumps(sb, sort_keys=True)  # nan (no samples) compares equal here
    assert json.dumps(a.stats, sort_keys=True, default=str) == json.dumps(b.stats, sort_keys=True, default=str)


def test_summary_columns_per_tier():
    s = run(str(HW / "evstore.yaml"), workload=str(WL / "evstore_criteo.yaml"),
            workload_overrides=["num_batches=20"]).summary
    for k in ("emb_lookups", "emb_hit_rate", "emb_approx_hit_rate", "emb_lookup_latency_p50_ns",
              "emb_lookup_latency_p99_ns", "emb_evprox_map_entries"):
        assert k in s, k
    for i in range(3):
        for c in ("hit_rate", "bytes_read", "bytes_written", "energy_nJ", "rows", "capacity_gain", "quant_rel_error"):
            assert f"emb_tier{i}_{c}" in s, (i, c)
    assert s["emb_lookups"] == 20 * 26
    assert sum(s[f"emb_tier{i}_hit_rate"] for i in range(3)) + s["emb_approx_hit_rate"] == pytest.approx(1.0)
    assert s["emb_tier2_bytes_read"] > 0 and s["emb_tier0_bytes_written"] > 0
    assert s["emb_tier0_capacity_gain"] == 3.6 and s["emb_tier1_capacity_gain"] == pytest.approx(144 / 22)
    assert s["emb_tier2_energy_nJ"] > 0 and s["emb_lookup_latency_p99_ns"] > 10_000  # misses read the SSD
    assert s["emb_hit_rate"] == s["emb_tier0_hit_rate"] + s["emb_tier1_hit_rate"]


# ------------------------------------------------------------------------ errors
def _err(path: Path, workload: str = "evstore_criteo") -> str:
    r = subprocess.run([sys.executable, "-m", "archsim.cli", "run", str(path), "--workload", str(WL / f"{workload}.yaml"),
                        "--workload-set", "num_batches=1", "--out", str(path.parent / "out")],
                       capture_output=True, text=True)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1, r.stderr
    return lines[0]


def test_a_static_tier_that_cannot_hold_its_rows_is_a_one_line_error(tmp_path):
    p = hw(tmp_path, """    impl: tier
    placement: static
    tiers:
      - {memory: fast, capacity: 14400, rows: 101}
      - {memory: slow, capacity: 1GiB}""")
    e = _err(p)
    assert f"{p}:11: components.emb.tiers[0].rows: " in e and "do not fit tier 0's capacity" in e, e


def test_a_last_tier_that_cannot_hold_the_tables_is_a_one_line_error(tmp_path):
    p = hw(tmp_path, """    impl: tier
    placement: static
    tiers:
      - {memory: fast, capacity: 1MiB}
      - {memory: slow, capacity: 1GiB}""")
    e = _err(p)  # 33.8M rows x 144 B do not fit 1 GiB
    assert f"{p}:12: components.emb.tiers[1].capacity: " in e and "more than its capacity" in e, e


def test_a_cache_larger_than_its_tier_is_a_one_line_error(tmp_path):
    p = hw(tmp_path, """    impl: tier
    tiers:
      - {memory: fast, capacity: 900GB}
      - {memory: slow, capacity: 3840GB}""")
    e = _err(p)  # the Z-NAND drive holds 800 GB
    assert f"{p}:10: components.emb.tiers[0].capacity: " in e and "larger than its memory" in e, e
    p = hw(tmp_path, """    impl: tier
    tiers:
      - {memory: dram, capacity: 8GiB}
      - {memory: slow, capacity: 6GB}""")
    e = _err(p)
    assert f"{p}:10: components.emb.tiers[0].capacity: " in e and "a cache larger than the tier it caches" \
        in e, e


def test_a_tier_naming_a_node_that_is_no_memory_is_a_one_line_error(tmp_path):
    p = hw(tmp_path, """    impl: tier
    tiers:
      - {memory: host, capacity: 1MiB}
      - {memory: slow, capacity: 3840GB}""")
    e = _err(p)
    assert f"{p}:10: components.emb.tiers[0].memory: " in e and "'host' is a host, which cannot serve as " \
        "the memory of a tier" in e, e


@pytest.mark.parametrize("emb, key, words", [
    ("tiers: [{memory: fast, capacity: 1MiB}]", "components.emb.tiers", "at least 2 tiers"),
    ("placement: static\n    tiers: [{memory: fast, capacity: 1MiB, policy: lru}, {memory: slow, capacity: 1TB}]",
     "components.emb.tiers[0].policy", "a replacement policy is for the tiers that cache"),
    ("tiers: [{memory: fast, capacity: 1MiB, precision: int2}, {memory: slow, capacity: 1TB}]",
     "components.emb.tiers[0].precision", "'fp32', 'fp16', 'int8' or 'int4'"),
    ("placement: shard\n    tiers: [{memory: fast, capacity: 1MiB}]\n    evprox: {}", "components.emb.evprox",
     "needs placement cache"),
    ("tiers: [{memory: fast, capacity: -1}, {memory: slow, capacity: 1TB}]", "components.emb.tiers[0].capacity",
     "greater than 0"),
])
def test_bad_tier_keys_are_one_line_errors(tmp_path, emb, key, words):
    p = hw(tmp_path, f"    impl: tier\n    {emb}")
    r = subprocess.run([sys.executable, "-m", "archsim.cli", "show", str(p)], capture_output=True, text=True)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1, r.stderr
    assert f"{p}:" in lines[0] and f": {key}: " in lines[0] and words in lines[0], lines


# ------------------------------------------------------------------------ gather unit and PCIe link
def test_a_gather_unit_pools_a_bag_from_hbm_and_over_pcie(tmp_path):
    """One bag of two rows, one in HBM and one behind the link: the unit reads both and returns one vector."""
    from archsim.core.request import GatherReduce

    p = tmp_path / "h.yaml"
    p.write_text((HW / "hotline.yaml").read_text().replace("extends: cpu_ddr4.yaml",
                                                           f"extends: {HW / 'cpu_ddr4.yaml'}"))
    tb = tables(1, 100, 64)
    sim, system, tier = build(p, tb, [batch([[1, 1, 1]])])
    gpu, link = system["gpu"], system["pcie"]
    assert tier.home(1) == (0, 0) and tier.home(2)[0] == 1
    gr = GatherReduce(0, [1, 2], 64, "fp32", 256)
    sim.env.run(until=gpu.submit(gr))  # (DRAM refresh keeps the clock going: run until the bag is done)
    assert gpu.lines == 8 and tier.found == [1, 1]  # 256 B rows: 4 lines each
    lb = link.link_bytes()
    assert lb["command"] == 16 + 24 and lb["pooled"] == 256 + 24  # 2 x 8 B indices, one 256 B vector (1 TLP)
    assert link.reads == 1 and lb["data"] == 256 + 24  # row 2 came over the link: one request, one completion
    assert gr.t_done > gr.t_submit


# ------------------------------------------------------------------------ the papers (small scale)
def test_evstore_layers_beat_a_plain_lru_cache_over_the_same_ssd():
    from archsim.storage.tier_checks import HW as THW
    from archsim.storage.tier_checks import evstore_setup, evstore_tier, iso_hit_memory, run_point

    tb, warm, measured, memory = evstore_setup(6000, 300)
    res = {name: run_point(THW / "evstore.yaml", tb, warm, measured, {"emb": evstore_tier(memory, layers)})
           for name, layers in (("lru", ()), ("evmix", ("evmix",)), ("evprox", ("evprox",)),
                                ("evstore", ("evcache", "evmix", "evprox")))}
    lru, ev = res["lru"], res["evstore"]
    assert res["evmix"]["hit_rate"] > lru["hit_rate"]  # more rows per byte
    assert res["evprox"]["approx_hit_rate"] > 0 and res["evprox"]["map_entries"] > 0
    assert ev["hit_rate"] + ev["approx_hit_rate"] > lru["hit_rate"]
    assert ev["mean_us"] < lru["mean_us"] and ev["p90_us"] <= lru["p90_us"]
    ssd = run_point(THW / "ssd_only.yaml", tb, warm, measured)
    dram = run_point(THW / "dram_only.yaml", tb, warm, measured)
    assert dram["mean_us"] < ev["mean_us"] < ssd["mean_us"]
    iso = iso_hit_memory(tb, warm, measured, memory, steps=5)
    assert iso["saved"] > 0.5  # int8 / int4 rows: the same hit rate with far less DRAM


def test_hot_rows_in_hbm_beat_cpu_side_gathering_on_a_skewed_workload():
    from archsim.storage.tier_checks import BAGPIPE_SKEW, hotline_vs_cpu

    r = hotline_vs_cpu(batches=2, batch_size=16, profile_batches=32, index=BAGPIPE_SKEW)
    cpu, hot = r["cpu_ddr4"], r["hotline"]
    assert 0.8 < hot["hit_rate"] < 1  # the hot rows the profile found; the rest crosses PCIe
    assert hot["mean_us"] < cpu["mean_us"] / 1.5
