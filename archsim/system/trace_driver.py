"""Drives a memory component with a trace, the way the reference simulators were driven.

Requests are offered in trace order; one enters the memory as soon as the memory accepts it (head of line: a
request that is not accepted blocks the ones behind it). ``window`` caps the requests outstanding (0: only the
memory's queues limit them). A trace's cycle column is honoured as the earliest issue time (open loop).
One SimPy process for the whole trace; completions are callbacks, not processes.

Direct feed: when the memory is a :class:`~archsim.dram.memory.DRAMSystem` on the compiled
engine and the driver is its only client, the same loop runs inside the channel's cycle loop
(``Channel.attach_source``): no request objects, no per-request SimPy events, the same simulated instants and
results (tests/test_cchannel.py compares it with this module's process). ``direct=False`` forces the process.
"""

from __future__ import annotations

from collections.abc import Iterable

import simpy

from archsim.core.component import Component
from archsim.core.request import MemRequest
from archsim.core.stats import Histogram
from archsim.workload.trace import AddressSpace


def address_space(mem: Component) -> AddressSpace | None:
    """The addresses ``mem`` serves, for :func:`archsim.workload.trace.iter_trace` to check a trace against:
    a DRAM's capacity (its address mapping would otherwise fold a larger address onto a smaller one), a memory
    map's windows (the local DRAM, and the CXL windows that the link behind it reaches: an address outside
    them has no owner); None for another kind of memory (then only the 64-bit bound is checked)."""
    from archsim.system.memory_map import AddressRouter

    if isinstance(mem, AddressRouter):
        windows: list[tuple[int, int]] = []
        for lo, hi, dest in zip(mem._lo, mem._hi, mem._dest):
            below = _windows(dest)
            if below is None:  # a component that does not tell: the whole range
                windows.append((lo, hi))
            elif _is_dram(dest):  # a DRAM serves its own addresses from the range's base
                windows.extend((lo + a, min(hi, lo + b)) for a, b in below if lo + a < hi)
            else:  # the far side of a link serves host addresses (its windows)
                windows.extend((max(lo, a), min(hi, b)) for a, b in below if max(lo, a) < min(hi, b))
        return AddressSpace.of_windows(windows, mem.name)
    below = _windows(mem)
    if below is None:
        return None
    if _is_dram(mem):
        return AddressSpace.of_capacity(below[0][1])
    return AddressSpace.of_windows(below)


def _is_dram(comp: Component) -> bool:
    from archsim.dram.memory import DRAMSystem

    return isinstance(comp, DRAMSystem)


def _windows(comp: Component) -> list[tuple[int, int]] | None:
    """The address windows ``comp`` serves (a DRAM: ``[0, capacity)``), or None when it does not say."""
    if _is_dram(comp):
        return [(0, comp.mapper.capacity_bytes)]
    windows = getattr(comp, "windows", None)
    if windows is None:
        inner = getattr(comp, "inner", None)  # an HDM decoder in front of a link
        return _windows(inner) if isinstance(inner, Component) else None
    try:
        return [(int(lo), int(hi)) for lo, hi in windows()]
    except (AttributeError, ValueError, TypeError):  # a component below that does not tell
        return None


class TraceDriver:
    """Feeds ``(addr, is_write, cycle)`` tuples into ``mem``; ``cycle_ps`` converts the cycle column to time.

    ``record``: keep each request's (t_accept, t_done), returned by :meth:`request_times` in trace order.
    """

    def __init__(self, env: simpy.Environment, mem: Component, trace: Iterable[tuple[int, bool, int]],
                 window: int = 0, cycle_ps: int = 1000, size: int | None = None, *,
                 direct: bool | None = None,
                 record: bool = False, latency: Histogram | None = None) -> None:
        if window < 0:
            raise ValueError("window must be >= 0")
        self.env = env
        self.mem = mem
        self.trace = trace
        self.window = window
        self.cycle_ps = cycle_ps
        # a trace line is one access of the memory (one burst, as in DRAMsim3 and Ramulator 2)
        self.size = size if size is not None else getattr(mem, "burst_bytes", 64)
        self._outstanding = 0
        self._offered = 0
        self._completed = 0
        self._last_done_ps = 0
        self._exhausted = False
        self._slot: simpy.Event | None = None
        self._record: list[MemRequest] | None = [] if record else None
        self.latency = latency  # submit-to-done of each read (generic path only)
        self.reads = 0
        self.writes = 0
        if latency is not None:
            direct = False
        burst = getattr(mem, "burst_bytes", None)
        if size is not None and burst is not None and size != burst:
            # the compiled loop serves every record as one burst: a larger access needs the generic path
            if direct:
                raise ValueError(f"direct feed serves one burst ({burst} B) a record, not {size} B")
            direct = False
        self.finished = env.event()
        self._ch = None
        if direct is not False:
            find = getattr(mem, "_direct_channel", None)
            self._ch = find() if find is not None else None
            if direct and self._ch is None:
                raise ValueError("direct feed needs an unused DRAMSystem on the compiled engine")
        if self._ch is not None:
            self._ch.attach_source(trace, window, cycle_ps, self.finished, record)
            self.process = None
        else:
            self.process = env.process(self._run())

    # counters (read from the channel when it runs the loop itself)
    @property
    def direct(self) -> bool:
        return self._ch is not None

    @property
    def outstanding(self) -> int:
        return self._ch.src_outstanding if self._ch is not None else self._outstanding

    @property
    def offered(self) -> int:
        return self._ch.src_offered if self._ch is not None else self._offered

    @property
    def completed(self) -> int:
        return self._ch.src_completed if self._ch is not None else self._completed

    @property
    def last_done_ps(self) -> int:
        return self._ch.src_last_done if self._ch is not None else self._last_done_ps

    def request_times(self) -> list[tuple[int, int]]:
        """(t_accept, t_done) of every request offered so far, in trace order (needs ``record=True``)."""
        if self._ch is not None:
            return self._ch.request_times()
        if self._record is None:
            raise ValueError("request_times() needs TraceDriver(..., record=True)")
        return [(r.t_accept, r.t_done) for r in self._record]

    def summary(self, sim_time_ps: int) -> dict[str, float]:
        """The trace's columns seen from the driver (needs ``latency``): requests, bandwidth, read latency."""
        lat = self.latency
        n = self.reads + self.writes
        return {
            "requests": n,
            "reads": self.reads,
            "writes": self.writes,
            "bandwidth_GBps": n * self.size / (sim_time_ps * 1e-3) if sim_time_ps else 0.0,
            "read_latency_mean_ns": lat.mean() / 1000 if lat.count else float("nan"),
            "read_latency_p50_ns": (lat.percentile(50) or 0) / 1000,
            "read_latency_p99_ns": (lat.percentile(99) or 0) / 1000,
        }

    def _on_done(self, ev: simpy.Event) -> None:
        if self.latency is not None:
            req = ev.value
            if req.is_write:
                self.writes += 1
            else:
                self.reads += 1
                self.latency.record(self.env.now - req.t_submit)
        self._outstanding -= 1
        self._completed += 1
        self._last_done_ps = self.env.now
        slot = self._slot
        if slot is not None:
            self._slot = None
            slot.succeed()
        if self._completed == self._offered and self._exhausted:
            self.finished.succeed()

    def _run(self):
        env = self.env
        mem = self.mem
        window = self.window
        record = self._record
        for addr, is_write, cycle in self.trace:
            if cycle >= 0:
                t = cycle * self.cycle_ps
                if t > env.now:
                    yield env.timeout(t - env.now)
            while window and self._outstanding >= window:
                self._slot = env.event()
                yield self._slot
            req = MemRequest(addr, is_write, self.size)
            if record is not None:
                record.append(req)
            while not mem.can_accept(req):
                yield mem.space_event(req)
            ev = mem.submit(req)
            self._outstanding += 1
            self._offered += 1
            ev.callbacks.append(self._on_done)
        self._exhausted = True
        if self._completed == self._offered:
            self.finished.succeed()
