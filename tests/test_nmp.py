"""RecNMP rank-level units: rank parallelism beyond the channel bus, the C/A instruction limit, exact idle bag."""

from __future__ import annotations

import pytest

from archsim.system.builder import run_embedding
from archsim.system.config import load_system
from archsim.validation import REPO_ROOT, SyntheticTable, uniform_batches

RECNMP = str(REPO_ROOT / "hwconfigs" / "recnmp.yaml")
ROWS = 1 << 22


def _rate(sets: list[str], bags: int = 4096, pooling: int = 8, dim: int = 16) -> tuple[float, object]:
    cfg, _ = load_system(RECNMP, ["dram.org.channels=2", *sets])
    system, end_ps = run_embedding(cfg, [SyntheticTable("t", ROWS, dim)], uniform_batches(ROWS, bags, pooling, 1))
    return system.operator.lookups / (end_ps * 1e-12), system


def test_rank_parallelism_scales_until_the_ca_bus_limit() -> None:
    """Uniform 64 B rows: throughput doubles from 1 to 2 ranks per channel (each rank reads on its own path);
    at 8 ranks the channels' C/A buses (one 79-bit instruction per row) cap it at their closed-form rate."""
    narrow = "nmp.ca_bits_per_cycle=24"  # the C/A pins alone (RecNMP also uses DQ: 158 bits per clock)
    r1, _ = _rate(["dram.org.ranks=1", narrow])
    r2, _ = _rate(["dram.org.ranks=2", narrow])
    r8, s8 = _rate(["dram.org.ranks=8", narrow])
    assert r2 / r1 == pytest.approx(2.0, rel=0.15)
    nmp = s8.nmp
    ca_limit = nmp.nch / (nmp.inst_ps * 1e-12)  # rows per second over all channels' C/A buses
    assert r8 <= ca_limit * 1.001
    assert r8 >= 0.85 * ca_limit
    assert nmp.summary(s8.operator.end_ps)["ca_utilization"] > 0.85


def test_ranks_beat_the_shared_channel_bus() -> None:
    """The units' combined DRAM bandwidth exceeds what the host could move over the channels' data buses."""
    _, s = _rate(["dram.org.ranks=4", "nmp.ca_bits_per_cycle=128"], pooling=16)
    end = s.operator.end_ps
    internal = s.nmp.summary(end)["dram_bandwidth_GBps"]
    peak_bus = 2 * 25.6  # two DDR4-3200 channels
    assert internal > 1.5 * peak_bus


def test_idle_bag_latency_is_the_sum_of_its_parts() -> None:
    """One bag of one 64 B row on an idle system: to-memory wire + one instruction on C/A + the rank's read
    latency (ACT + RD to a closed bank, data burst) + one line of pooling + the partial sum's burst on the
    channel bus + the wire back."""
    cfg, _ = load_system(RECNMP, ["dram.org.channels=2"])
    system, end_ps = run_embedding(cfg, [SyntheticTable("t", ROWS, 16)], uniform_batches(ROWS, 1, 1, 1))
    nmp = system.nmp
    t = cfg.dram.timing
    tck = t.tCK_ps
    names = t.resolved(cfg.dram.org.burst_length)
    arrive = nmp.to_ps + nmp.inst_ps
    # the read enters the controller at the first edge strictly after arrival (cycle c0); per_bank queues move
    # it into its bank's command queue at the end of c0, so ACT issues at c0 + 1, RD nRCD later, data CL + BL
    c0 = arrive // tck + 1
    read_done = (c0 + 1 + names["nRCD"] + names["nCL"] + names["nBL"]) * tck
    expected = read_done + nmp.pool_ps(16) + nmp.burst_ps + nmp.from_ps
    assert system.operator.bag_latency.max == expected


@pytest.mark.parametrize("lanes", [4, 1])
def test_idle_bag_of_one_256B_row_streams_its_pooling(lanes: int) -> None:
    """One bag of one 256 B row (one instruction, one 4-burst request to one bank) on an idle system: the
    bursts come out nCCD_L apart and the unit pools each as it arrives, so pooling ends p after the last burst
    when a line's pooling time p fits the spacing (4 lanes), and (n-1)(p - nCCD_L) later when it does not
    (1 lane: 16 unit clocks per line, twice the spacing); then the 256 B partial sum (4 bursts) goes back."""
    cfg, _ = load_system(RECNMP, ["dram.org.channels=2", f"nmp.lanes={lanes}"])
    system, _ = run_embedding(cfg, [SyntheticTable("t", ROWS, 64)], uniform_batches(ROWS, 1, 1, 1))
    nmp = system.nmp
    t = cfg.dram.timing
    tck = t.tCK_ps
    names = t.resolved(cfg.dram.org.burst_length)
    ccd = max(names["nCCD_L"], names["nBL"])
    c0 = (nmp.to_ps + nmp.inst_ps) // tck + 1
    last_data = (c0 + 1 + names["nRCD"] + 3 * ccd + names["nCL"] + names["nBL"]) * tck
    p = nmp.pool_ps(16)
    pooled = last_data + p + 3 * max(0, p - ccd * tck)
    expected = pooled + 4 * nmp.burst_ps + nmp.from_ps
    assert system.operator.bag_latency.max == expected
    if lanes == 1:  # the same as pooling line by line: arrivals ccd apart, each line p, done after the 4th
        first = last_data - 3 * ccd * tck
        by_line = first
        for k in range(4):
            by_line = max(by_line, first + k * ccd * tck) + p
        assert pooled == by_line


@pytest.mark.parametrize("adders", [True, False])
def test_partial_sums_climb_the_levels(adders: bool) -> None:
    """Bank-level units, one bag of 30 rows at a time: with bank-group adders every bank unit's partial sum
    crosses its group's bus and one per bank group crosses the rank's bus; without, every bank unit's crosses
    the rank bus. Counted exactly against the units and bank groups the bag touched."""
    import numpy as np

    from archsim.validation import SyntheticBatch

    rows_all = next(uniform_batches(ROWS, 4, 30, 1)).indices[0]
    for bag in range(4):
        cfg, _ = load_system(RECNMP, ["dram.org.channels=1", "nmp.level=bank", "nmp.rank_cache_kib=0",
                                      f"nmp.bankgroup_adders={str(adders).lower()}"])
        rows = rows_all[bag * 30:(bag + 1) * 30]
        system, _ = run_embedding(cfg, [SyntheticTable("t", ROWS, 64)],
                                  [SyntheticBatch(0, 1, [rows], [np.array([0, 30])])])
        nmp = system.nmp
        bpg = cfg.dram.org.banks_per_group
        units = {(u.ch, u.rank, u.sub) for u in nmp.units if u.sub >= 0 and u.lines}
        groups = {(c, r, sub // bpg) for c, r, sub in units}
        assert len(units) > len(groups) > 1
        if adders:
            assert (nmp.bg_bus_partials, nmp.rank_bus_partials) == (len(units), len(groups))
        else:
            assert (nmp.bg_bus_partials, nmp.rank_bus_partials) == (0, len(units))


def test_rank_cache_serves_a_table_that_fits() -> None:
    """A 512-row table (32 KiB) read 32k times through 128 KiB rank caches: every row is read from DRAM once,
    the rest are hits; without the cache every lookup reads DRAM."""
    rows = 512
    for kib, expect_lines in ((128, rows), (0, 4096 * 8)):
        cfg, _ = load_system(RECNMP, ["dram.org.channels=2", f"nmp.rank_cache_kib={kib}"])
        system, end_ps = run_embedding(cfg, [SyntheticTable("t", rows, 16)], uniform_batches(rows, 4096, 8, 1))
        units = system.nmp.units
        lines = sum(u.lines for u in units)
        if kib:
            assert lines == rows  # later lookups of a row being read wait for that read
            assert system.nmp.summary(end_ps)["rank_cache_hit_rate"] > 0.98
        else:
            assert lines == expect_lines


def _one_bag(level: str, rows: int, dim: int) -> int:
    cfg, _ = load_system(RECNMP, ["dram.org.channels=1", "dram.org.ranks=1", f"nmp.level={level}",
                                  "nmp.rank_cache_kib=0"])
    system, _ = run_embedding(cfg, [SyntheticTable("t", ROWS, dim)], uniform_batches(ROWS, 1, rows, 1, seed=5))
    return system.operator.bag_latency.max


def test_bag_at_bank_level_beats_rank_level_when_rows_spread_over_banks() -> None:
    """64 rows of 512 B on one idle rank: rank level moves 512 bursts over the rank's bus (>= 2048 clocks);
    bank-level units read their banks in parallel, limited by nFAW and by their partial sums on the rank bus."""
    rank = _one_bag("rank", 64, 128)
    bankgroup = _one_bag("bankgroup", 64, 128)
    bank = _one_bag("bank", 64, 128)
    assert bank < 0.6 * rank
    assert bankgroup < rank
    # 64 B rows: every row needs its own ACT, so nFAW binds every level alike (within 10%)
    assert _one_bag("bank", 64, 16) == pytest.approx(_one_bag("rank", 64, 16), rel=0.10)


def test_bank_level_constraint_table() -> None:
    """Bank level: column spacing moves from bank group to bank, the shared-bus spacing goes, nFAW stays."""
    from archsim.nmp.rank import rank_local_spec

    cfg, _ = load_system(RECNMP)
    col = {"RD", "RDA", "WR", "WRA"}

    def colcols(spec):
        return {(c.level, c.sibling) for c in spec.constraints if set(c.prev) <= col and set(c.next) <= col}

    assert ("rank", False) in colcols(rank_local_spec(cfg.dram, "rank"))
    assert colcols(rank_local_spec(cfg.dram, "bankgroup")) == {("bankgroup", False)}
    bank = rank_local_spec(cfg.dram, "bank")
    assert colcols(bank) == {("bank", False)}
    assert any(c.window for c in bank.constraints)  # nFAW
    assert len(bank.constraints) < len(cfg.dram.constraints)


def test_profile_picks_the_most_frequent_rows() -> None:
    import numpy as np

    from archsim.nmp.placement import profile_hot_rows
    from archsim.validation import SyntheticBatch

    idx = np.array([5, 5, 5, 9, 9, 1, 7, 7, 7, 7])
    batches = [SyntheticBatch(0, 1, [idx], [np.array([0, 10])])] * 3
    hot = profile_hot_rows(iter(batches), [SyntheticTable("t", 200, 16)], hot_fraction=0.01, max_batches=2)
    assert hot[0].tolist() == [5, 7]  # 1% of 200 rows = 2 rows: the two most frequent
    wide = profile_hot_rows(iter(batches), [SyntheticTable("t", 200, 16)], hot_fraction=0.5, max_batches=2)
    assert wide[0].tolist() == [1, 5, 7, 9]  # counts over two batches: 1:2, 5:6, 7:8, 9:4
    strict = profile_hot_rows(iter(batches), [SyntheticTable("t", 200, 16)], 0.5, 2, min_count=3)
    assert strict[0].tolist() == [5, 7, 9]  # a row counted fewer than min_count times is not hot
    assert profile_hot_rows(iter(batches), [SyntheticTable("t", 200, 16)], 0.0, 2)[0].size == 0


def test_cross_level_beats_rank_level_on_skewed_lookups(tmp_path) -> None:
    """Zipf lookups of 256 B rows: ReCross (hot rows at rank level with rank caches, cold rows at bank level)
    is faster than RecNMP's rank level on the same DIMMs, and its hot rows hit the rank caches more."""
    from archsim.workload.batches import iter_batches
    from archsim.workload.spec import load_workload

    wl_file = tmp_path / "w.yaml"
    wl_file.write_text("seed: 1\nbatch_size: 128\nnum_batches: 3\ntables:\n  - rows: 1000000\n    dim: 64\n"
                       "    count: 2\n    pooling: 40\n    index: {dist: zipf, s: 1.05}\n")
    wl = load_workload(wl_file)
    out = {}
    for name in ("recnmp", "recross"):
        cfg, _ = load_system(str(REPO_ROOT / "hwconfigs" / f"{name}.yaml"), ["dram.org.channels=2"])
        system, end_ps = run_embedding(cfg, wl.table_list(), iter_batches(wl), profile=iter_batches(wl))
        out[name] = (system.operator.lookups / (end_ps * 1e-12), system.nmp.summary(end_ps))
    assert out["recross"][0] > 1.2 * out["recnmp"][0]
    assert out["recross"][1]["rank_cache_hit_rate"] > out["recnmp"][1]["rank_cache_hit_rate"]


@pytest.mark.parametrize("name", ["recnmp", "recross"])
def test_engines_agree_on_nmp_runs(monkeypatch, tmp_path, name) -> None:
    """The units drive their ranks with multi-burst requests (one per instruction's row): the compiled and
    the Python channel engines give the same stats tree, energy and end time."""
    from archsim.dram import controller
    from archsim.workload.batches import iter_batches
    from archsim.workload.spec import load_workload

    if controller._cchannel is None:
        pytest.skip("compiled engine not built")
    wl_file = tmp_path / "w.yaml"
    wl_file.write_text("seed: 3\nbatch_size: 32\nnum_batches: 2\ntables:\n  - rows: 100000\n    dim: 64\n"
                       "    count: 2\n    pooling: 20\n    index: {dist: zipf, s: 1.05}\n")
    wl = load_workload(wl_file)
    out = {}
    for eng in ("python", "c"):
        monkeypatch.setenv("ARCHSIM_ENGINE", eng)
        cfg, _ = load_system(str(REPO_ROOT / "hwconfigs" / f"{name}.yaml"), ["dram.org.channels=2"])
        system, end_ps = run_embedding(cfg, wl.table_list(), iter_batches(wl), profile=iter_batches(wl))
        out[eng] = (end_ps, system.sim.stats.to_dict(raw=True), system.sim.energy.to_dict())
    assert out["python"] == out["c"]


@pytest.mark.parametrize("hot_level", ["rank", "bank"])
def test_cross_level_mapping_policy(tmp_path, hot_level) -> None:
    """cross_hot_level decides where the profiled hot rows are read: every line of a hot row by the rank units
    (rank) or by the bank units (bank), every other line by the other level (no rank cache: all read DRAM)."""
    import numpy as np

    from archsim.workload.batches import iter_batches
    from archsim.workload.spec import load_workload

    wl_file = tmp_path / "w.yaml"
    wl_file.write_text("seed: 2\nbatch_size: 16\nnum_batches: 2\ntables:\n  - rows: 50000\n    dim: 64\n"
                       "    pooling: 20\n    index: {dist: zipf, s: 1.1}\n")
    wl = load_workload(wl_file)
    cfg, _ = load_system(str(REPO_ROOT / "hwconfigs" / "recross.yaml"),
                         ["dram.org.channels=2", "nmp.rank_cache_kib=0", f"nmp.cross_hot_level={hot_level}"])
    system, _ = run_embedding(cfg, wl.table_list(), iter_batches(wl), profile=iter_batches(wl))
    nmp = system.nmp
    hot = nmp.table_map.hot_rows(0)
    assert len(hot) > 0
    rows = np.concatenate([b.indices[0] for b in iter_batches(wl)])
    hot_lines = int(np.isin(rows, hot).sum()) * 4  # 256 B rows: 4 lines each
    rank_lines = sum(u.lines for u in nmp.units if u.sub < 0)
    bank_lines = sum(u.lines for u in nmp.units if u.sub >= 0)
    assert rank_lines + bank_lines == len(rows) * 4
    assert (rank_lines if hot_level == "rank" else bank_lines) == hot_lines
