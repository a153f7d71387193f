"""A cache as a component: it wraps a downstream memory (through a :class:`MemoryPort`) and answers hits itself.

Timing: a hit completes ``hit_latency`` after it arrives. A miss pays the tag check, then its line is read from
downstream; further misses to a line already being fetched wait for that fetch (MSHR merge) and count as
``merged``. A fill may evict a dirty line, which is written back downstream as a posted write. Writes allocate
(a write miss reads the line first). The number of misses in flight is not capped here: the cores' fill
buffers bound it.

Replacement: ``spec.policy`` picks the tag array (:func:`archsim.cache.policies.make_tags`; ``lru`` is
:class:`SetAssocCache`). ``static_hot`` needs ``profile`` (line -> count, or lines hottest first); a miss to a
line it does not pin is a bypass: the line is read for the requests waiting on it and not held (a dirty one,
from a write miss, is written back at once).

Write policy ``read_only``: no line is ever dirty. A write goes around the cache: it pays the tag check, goes
to the next level (``to_next_ps``), completes when the next level has taken it and the answer is back
(``from_next_ps``), and invalidates the cache's copy of its line if there is one (write-around with invalidate,
so a later read fetches the written data). It counts as a lookup that was not served (``write_arounds``). A
write to a line whose read is in flight does not cancel that read's fill (tags only, no data).

Energy: one ``access_energy_pJ`` per lookup, fill and write-back, booked as kind ``sram`` (a bypass is no fill).
"""

from __future__ import annotations

import simpy

from archsim.cache.policies import make_tags
from archsim.cache.spec import CacheSpec
from archsim.core.component import Component
from archsim.core.port import Light, MemoryPort, call_at, schedule_light
from archsim.core.request import MemRequest, complete_at
from archsim.core.sim import Simulator


class Cache(Component):
    """A write-back (or read-only) cache in front of ``port``; ``to_next_ps``/``from_next_ps`` are the wire
    delays each way; ``profile``: the lines a ``static_hot`` policy ranks (line -> count, or lines hottest
    first)."""

    def __init__(self, sim: Simulator, name: str, spec: CacheSpec, port: MemoryPort,
                 to_next_ps: int = 0, from_next_ps: int = 0, profile=None) -> None:
        super().__init__(sim, name)
        self.spec = spec
        self.tags = make_tags(spec.size_kib * 1024, spec.ways, spec.line_bytes, spec.index, spec.policy,
                              profile=profile, **spec.policy_args())
        self.port = port
        self.hit_ps = round(spec.hit_latency_ns * 1000)
        self.to_next_ps = to_next_ps
        self.from_next_ps = from_next_ps
        self.mshr: dict[int, list[MemRequest]] = {}
        self.merged = 0
        self.writebacks = 0
        self.accesses = 0
        self.write_arounds = 0
        #: called before the counters are read, where another engine keeps some of them (the compiled host
        #: engine, archsim/system/host_engine.py)
        self.sync_hook = None
        self.read_only = spec.write_policy == "read_only"
        if self.read_only:  # the write-back path below stays as it is
            self.submit = self._submit_read_only

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

    def read_light(self, addr: int, size: int, ev: Light) -> None:
        """:meth:`submit` of a read of ``size`` bytes (a line) carried by a :class:`~archsim.core.port.Light`
        instead of a ``MemRequest`` and its done event (the host cores' line loads, issue #15): the same state
        changes and the same events at the same times, in the same order; ``ev`` fires when the line is there
        (``ev.t_submit``: now)."""
        env = self.env
        now = env._now
        ev.t_submit = now
        self.accesses += 1
        line = addr >> self.tags.line_shift
        if self.tags.lookup(line, False):
            schedule_light(env, ev, now + self.hit_ps)
            return
        waiters = self.mshr.get(line)
        if waiters is not None:
            waiters.append(ev)
            self.merged += 1
            return
        self.mshr[line] = [ev]
        call_at(env, now + self.hit_ps + self.to_next_ps, self._send_miss, line)

    def _submit_read_only(self, req: MemRequest) -> simpy.Event:
        if not req.is_write:
            return Cache.submit(self, req)
        env = self.env
        req.t_submit = env.now
        if req.done is None:
            req.done = env.event()
        self.accesses += 1
        self.write_arounds += 1
        self.tags.invalidate(req.addr >> self.tags.line_shift)
        call_at(env, env.now + self.hit_ps + self.to_next_ps, self._send_write, req)
        return req.done

    def _send_write(self, ev: simpy.Event) -> None:
        req = ev.value
        self.port.send(MemRequest(req.addr, True, req.size, tag=req), self._on_write_done)

    def _on_write_done(self, ev: simpy.Event) -> None:
        call_at(self.env, self.env.now + self.from_next_ps, self._write_done, ev.value.tag)

    def _write_done(self, ev: simpy.Event) -> None:
        req = ev.value
        req.t_done = self.env.now
        req.done.succeed(req)

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
        dirty = False
        for r in waiters:
            if r.is_write:
                dirty = True
                break
        victim = self.tags.fill(line, dirty)
        if victim is not None and victim[1]:
            self.writebacks += 1
            self.port.send(MemRequest(victim[0] << self.tags.line_shift, True, self.spec.line_bytes), None)
        env = self.env
        now = env.now
        for r in waiters:
            if r.__class__ is Light:  # read_light's: scheduled as r.done.succeed(r) would be
                schedule_light(env, r, now)
                continue
            r.t_done = now
            r.done.succeed(r)

    def hit_rate(self) -> float:
        """Lookups served without a new downstream read (hits and merges onto a fetch in flight)."""
        if self.sync_hook is not None:
            self.sync_hook()
        return (self.tags.hits + self.merged) / self.accesses if self.accesses else 0.0

    def cache_stats(self) -> dict[str, tuple[int, int]]:
        """``{name: (lookups served, lookups)}`` (served: hits and merges onto a fetch in flight), for the
        ``<name>_hit_rate`` column (docs/metrics.md)."""
        if self.sync_hook is not None:
            self.sync_hook()
        return {self.name: (self.tags.hits + self.merged, self.accesses)}

    def summary(self, end_ps: int) -> dict[str, float]:
        """Lookups, hit rate, misses sent downstream (merges aside) and write-backs; a read-only cache adds its
        write-arounds, a static_hot one its bypasses."""
        if self.sync_hook is not None:
            self.sync_hook()
        t = self.tags
        out = {"accesses": self.accesses, "hit_rate": self.hit_rate(), "misses": t.misses - self.merged,
               "writebacks": self.writebacks}
        out.update(self._policy_counts())
        return out

    def _policy_counts(self) -> dict[str, int]:
        """The counters only non-default policies have (so a default cache's columns stay as they were)."""
        out = {}
        if self.read_only:
            out["write_arounds"] = self.write_arounds
        bypasses = getattr(self.tags, "bypasses", None)
        if bypasses is not None:
            out["bypasses"] = bypasses
        return out

    def finalize(self, end_ps: int | None = None) -> None:
        if self.sync_hook is not None:
            self.sync_hook()
        t = self.tags
        s = self.stats
        for k, v in (("accesses", self.accesses), ("hits", t.hits), ("misses", t.misses - self.merged),
                     ("merged", self.merged), ("evictions", t.evictions), ("writebacks", self.writebacks)):
            s.set(k, v)
        s.set("hit_rate", self.hit_rate())
        pc = self._policy_counts()
        for k, v in pc.items():
            s.set(k, v)
        fills = t.misses - self.merged - pc.get("bypasses", 0)
        self.sim.energy.book(self.stats.full_name, "sram",
                             self.spec.access_energy_pJ * (self.accesses + fills + self.writebacks))
