"""A cache as a component: it wraps a downstream memory (through a :class:`MemoryPort`) and answers hits itself.

Timing: a hit completes ``hit_latency`` after it arrives. A miss pays the tag check, then its line is read from
downstream; further misses to a line already being fetched wait for that fetch (MSHR merge) and count as
``merged``. A fill may evict a dirty line, which is written back downstream as a posted write. Writes allocate
(a write miss reads the line first). The number of misses in flight is not capped here: the cores' fill
buffers bound it.

Energy: one ``access_energy_pJ`` per lookup, fill and write-back, booked as kind ``sram``.
"""

from __future__ import annotations

import simpy

from archsim.cache.set_assoc import SetAssocCache
from archsim.cache.spec import CacheSpec
from archsim.core.component import Component
from archsim.core.port import MemoryPort, call_at
from archsim.core.request import MemRequest, complete_at
from archsim.core.sim import Simulator


class Cache(Component):
    """A write-back cache in front of ``port``; ``to_next_ps``/``from_next_ps`` are the wire delays each way."""

    def __init__(self, sim: Simulator, name: str, spec: CacheSpec, port: MemoryPort,
                 to_next_ps: int = 0, from_next_ps: int = 0) -> None:
        super().__init__(sim, name)
        self.spec = spec
        self.tags = SetAssocCache(spec.size_kib * 1024, spec.ways, spec.line_bytes, spec.index)
        self.port = port
        self.hit_ps = round(spec.hit_latency_ns * 1000)
        self.to_next_ps = to_next_ps
        self.from_next_ps = from_next_ps
        self.mshr: dict[int, list[MemRequest]] = {}
        self.merged = 0
        self.writebacks = 0
        self.accesses = 0

    def submit(self, req: MemRequest) -> simpy.Event:
        env = self.env
        now = env.now
        req.t_submit = now
        if req.done is None:
            req.done = env.event()
        self.accesses += 1
        line = req.addr >> self.tags.line_shift
        if self.tags.lookup(line, req.is_write):
            req.t_done = now + self.hit_ps
            complete_at(env, req.done, req, req.t_done)
            return req.done
        waiters = self.mshr.get(line)
        if waiters is not None:
            waiters.append(req)
            self.merged += 1
            return req.done
        self.mshr[line] = [req]
        call_at(env, now + self.hit_ps + self.to_next_ps, self._send_miss, line)
        return req.done

    def _send_miss(self, ev: simpy.Event) -> None:
        line = ev.value
        self.port.send(MemRequest(line << self.tags.line_shift, False, self.spec.line_bytes, tag=line),
                       self._on_fill_data)

    def _on_fill_data(self, ev: simpy.Event) -> None:
        line = ev.value.tag
        call_at(self.env, self.env.now + self.from_next_ps, self._fill, line)

    def _fill(self, ev: simpy.Event) -> None:
        line = ev.value
        waiters = self.mshr.pop(line)
        dirty = any(r.is_write for r in waiters)
        victim = self.tags.fill(line, dirty)
        if victim is not None and victim[1]:
            self.writebacks += 1
            self.port.send(MemRequest(victim[0] << self.tags.line_shift, True, self.spec.line_bytes), None)
        now = self.env.now
        for r in waiters:
            r.t_done = now
            r.done.succeed(r)

    def hit_rate(self) -> float:
        """Lookups served without a new downstream read (hits and merges onto a fetch in flight)."""
        return (self.tags.hits + self.merged) / self.accesses if self.accesses else 0.0

    def cache_stats(self) -> dict[str, tuple[int, int]]:
        """``{name: (lookups served, lookups)}`` (served: hits and merges onto a fetch in flight), for the
        ``<name>_hit_rate`` column (docs/metrics.md)."""
        return {self.name: (self.tags.hits + self.merged, self.accesses)}

    def summary(self, end_ps: int) -> dict[str, float]:
        """Lookups, hit rate, misses sent downstream (merges aside) and write-backs."""
        t = self.tags
        return {"accesses": self.accesses, "hit_rate": self.hit_rate(), "misses": t.misses - self.merged,
                "writebacks": self.writebacks}

    def finalize(self, end_ps: int | None = None) -> None:
        t = self.tags
        s = self.stats
        for k, v in (("accesses", self.accesses), ("hits", t.hits), ("misses", t.misses - self.merged),
                     ("merged", self.merged), ("evictions", t.evictions), ("writebacks", self.writebacks)):
            s.set(k, v)
        s.set("hit_rate", self.hit_rate())
        fills = t.misses - self.merged
        self.sim.energy.book(self.stats.full_name, "sram",
                             self.spec.access_energy_pJ * (self.accesses + fills + self.writebacks))
