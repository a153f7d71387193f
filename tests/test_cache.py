"""The set-associative tag array, the cache component's timing, and LRU against Che's approximation."""

from __future__ import annotations

import numpy as np
import pytest
import simpy

from archsim.cache.analytic import che_lru_hit_rate, zipf_probabilities
from archsim.cache.component import Cache
from archsim.cache.set_assoc import SetAssocCache
from archsim.cache.spec import CacheSpec
from archsim.core.component import Component
from archsim.core.port import MemoryPort
from archsim.core.request import MemRequest, complete_at
from archsim.core.sim import Simulator


def test_lru_order_and_dirty_victims() -> None:
    c = SetAssocCache(2 * 64, ways=2, line_bytes=64)  # one set of two ways
    assert c.nsets == 1
    assert not c.lookup(1)
    assert c.fill(1) is None
    assert c.fill(2, dirty=True) is None
    assert c.lookup(1)  # 1 becomes most recent; 2 is LRU
    assert c.fill(3) == (2, True)
    assert c.contains(1) and c.contains(3) and not c.contains(2)
    assert c.lookup(3, write=True)
    assert c.fill(4) == (1, False)
    assert c.fill(5) == (3, True)
    assert (c.hits, c.misses, c.evictions, c.dirty_evictions) == (2, 1, 3, 2)


def test_set_index_spreads_lines() -> None:
    c = SetAssocCache(64 * 64, ways=4, line_bytes=64, index="xor")
    sets = {c.set_of(line) for line in range(0, 4096, 16)}  # a power-of-two stride
    assert len(sets) == c.nsets
    m = SetAssocCache(64 * 64, ways=4, line_bytes=64, index="modulo")
    assert len({m.set_of(line) for line in range(0, 4096, 16)}) == 1


@pytest.mark.parametrize("bad", [dict(size_bytes=100, ways=2), dict(size_bytes=128, ways=3),
                                 dict(size_bytes=128, ways=1, line_bytes=48)])
def test_bad_geometry(bad) -> None:
    with pytest.raises(ValueError):
        SetAssocCache(**bad)


class FixedLatencyMemory(Component):
    """Completes every request ``lat`` ps after it arrives (a stand-in downstream memory)."""

    def __init__(self, sim: Simulator, lat: int) -> None:
        super().__init__(sim, "mem")
        self.lat = lat
        self.seen: list[tuple[int, int, bool]] = []

    def submit(self, req: MemRequest) -> simpy.Event:
        self.seen.append((self.env.now, req.addr, req.is_write))
        req.done = self.env.event()
        complete_at(self.env, req.done, req, self.env.now + self.lat)
        return req.done


def _cache(sim: Simulator, **kw) -> tuple[Cache, FixedLatencyMemory]:
    mem = FixedLatencyMemory(sim, 50_000)
    spec = CacheSpec(size_kib=kw.pop("size_kib", 1), ways=kw.pop("ways", 2), hit_latency_ns=20, **kw)
    return Cache(sim, "llc", spec, MemoryPort(mem), to_next_ps=7_000, from_next_ps=3_000), mem


def test_miss_hit_and_merge_exact_picoseconds() -> None:
    sim = Simulator()
    llc, mem = _cache(sim)
    env = sim.env
    done: dict[str, int] = {}

    def at(t: int, name: str, addr: int) -> None:
        def go(_ev):
            r = MemRequest(addr)
            llc.submit(r).callbacks.append(lambda ev: done.__setitem__(name, env.now))
        env.timeout(t).callbacks.append(go)

    at(0, "miss", 0x1000)
    at(5_000, "merged", 0x1000)          # same line while the fill is in flight
    at(200_000, "hit", 0x1010)           # same line, after the fill
    env.run()
    # miss: tag check 20 ns, 7 ns to memory, 50 ns there, 3 ns back
    assert done["miss"] == 20_000 + 7_000 + 50_000 + 3_000
    assert done["merged"] == done["miss"]
    assert done["hit"] == 200_000 + 20_000
    assert len(mem.seen) == 1 and mem.seen[0][0] == 27_000
    llc.finalize()
    assert llc.stats.get("hits") == 1 and llc.stats.get("merged") == 1 and llc.stats.get("misses") == 1


def test_dirty_eviction_writes_back() -> None:
    sim = Simulator()
    llc, mem = _cache(sim, size_kib=1, ways=16, index="modulo")  # one set of 16 ways
    env = sim.env

    def proc():
        ev = llc.submit(MemRequest(0, is_write=True))
        yield ev
        for i in range(1, 17):  # 16 more lines: line 0 (dirty, LRU) must go
            yield llc.submit(MemRequest(i * 64))
        yield env.timeout(100_000)

    env.run(env.process(proc()))
    writes = [s for s in mem.seen if s[2]]
    assert writes and writes[0][1] == 0
    assert llc.writebacks == 1


@pytest.mark.parametrize("s", [0.8, 1.2])
def test_lru_matches_che(s: float) -> None:
    """A 16-way set-associative LRU under Zipf(s) requests is within 1.5 points of Che's fully-associative LRU."""
    n, cap_lines, draws = 200_000, 4096, 400_000
    p = zipf_probabilities(n, s)
    rng = np.random.default_rng(7)
    perm = rng.permutation(n)  # scatter hot items over sets, as the workload's permutation does
    items = perm[np.searchsorted(np.cumsum(p), rng.random(draws))]
    c = SetAssocCache(cap_lines * 64, ways=16, index="xor")
    warm = 100_000
    hits = 0
    for i, x in enumerate(items.tolist()):
        hit = c.lookup(x)
        if not hit:
            c.fill(x)
        elif i >= warm:
            hits += 1
    sim_rate = hits / (draws - warm)
    che = che_lru_hit_rate(p, cap_lines)
    assert abs(sim_rate - che) < 0.015, (sim_rate, che)


def test_che_limits() -> None:
    p = zipf_probabilities(1000, 1.0)
    assert che_lru_hit_rate(p, 1000) == 1.0
    assert che_lru_hit_rate(p, 0) == 0.0
    u = np.full(1000, 1e-3)
    assert che_lru_hit_rate(u, 250) == pytest.approx(0.25, abs=1e-6)  # uniform: hit rate = C / N


def test_fully_associative_xor_cache_does_not_hang():
    """One set (ways = lines) with the XOR index: the fold used to divide by 1 forever."""
    from archsim.cache.set_assoc import SetAssocCache

    c = SetAssocCache(4 * 64, 4, 64, "xor")
    for line in (1, 2, 3, 4, 1, 5):
        if not c.lookup(line):
            c.fill(line)
    assert c.hits == 1 and c.misses == 5 and c.contains(1) and not c.contains(2)
