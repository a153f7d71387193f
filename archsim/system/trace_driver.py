"""Drives a memory component with a trace, the way the reference simulators were driven.

Requests are offered in trace order; one enters the memory as soon as the memory accepts it (head of line: a
request that is not accepted blocks the ones behind it). ``window`` caps the requests outstanding (0: only the
memory's queues limit them). A trace's cycle column is honoured as the earliest issue time (open loop).
One SimPy process for the whole trace; completions are callbacks, not processes.
"""

from __future__ import annotations

from collections.abc import Iterable

import simpy

from archsim.core.component import Component
from archsim.core.request import MemRequest


class TraceDriver:
    """Feeds ``(addr, is_write, cycle)`` tuples into ``mem``; ``cycle_ps`` converts the cycle column to time."""

    def __init__(self, env: simpy.Environment, mem: Component, trace: Iterable[tuple[int, bool, int]],
                 window: int = 0, cycle_ps: int = 1000, size: int = 64) -> None:
        if window < 0:
            raise ValueError("window must be >= 0")
        self.env = env
        self.mem = mem
        self.trace = trace
        self.window = window
        self.cycle_ps = cycle_ps
        self.size = size
        self.outstanding = 0
        self.offered = 0
        self.completed = 0
        self.last_done_ps = 0
        self._slot: simpy.Event | None = None
        self.finished = env.event()
        self.process = env.process(self._run())

    def _on_done(self, ev: simpy.Event) -> None:
        self.outstanding -= 1
        self.completed += 1
        self.last_done_ps = self.env.now
        slot = self._slot
        if slot is not None:
            self._slot = None
            slot.succeed()
        if self.completed == self.offered and self._exhausted:
            self.finished.succeed()

    def _run(self):
        env = self.env
        mem = self.mem
        window = self.window
        self._exhausted = False
        for addr, is_write, cycle in self.trace:
            if cycle >= 0:
                t = cycle * self.cycle_ps
                if t > env.now:
                    yield env.timeout(t - env.now)
            while window and self.outstanding >= window:
                self._slot = env.event()
                yield self._slot
            req = MemRequest(addr, is_write, self.size)
            while not mem.can_accept(req):
                yield mem.space_event(req)
            ev = mem.submit(req)
            self.outstanding += 1
            self.offered += 1
            ev.callbacks.append(self._on_done)
        self._exhausted = True
        if self.completed == self.offered:
            self.finished.succeed()
