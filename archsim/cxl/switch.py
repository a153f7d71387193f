"""A CXL switch: upstream ports that hosts attach to, downstream ports that lead to devices, a crossbar between.

Ports are numbered in configuration order; each is either an :class:`Upstream` port (a host's link, or a parent
switch's downstream link, submits into :meth:`Switch.port`) or a :class:`Downstream` port with the host physical
address ranges it serves and the component behind it (normally a :class:`~archsim.cxl.link.Link` to an
expander or to another switch: cascading).

Request path (integer ps):

1. **Ingress.** The upstream port takes the request if its ingress buffer has room (``queue_depth`` requests per
   port, held from arrival until the crossbar grants them; a full port refuses and its upstream waits). The
   request is routed by address: the downstream port whose range holds it.
2. **Forwarding pipeline.** ``forwarding_latency_ns`` later (routing lookup, crossbar traversal) it waits for
   its output in a virtual output queue (one per input and output, so a blocked output does not hold back
   requests for the others).
3. **Crossbar.** An output port forwards at most one request per ``crossbar_slot_ns``, and only when the
   component behind it accepts the request (its link has a credit). When several inputs wait for one output,
   the **arbitration** policy picks:

   * ``round_robin``: a pointer per output rotates over the inputs; the first input at or after the pointer
     with a waiting request wins, and the pointer moves past it. Saturated inputs share an output equally.
   * ``oldest_first``: the request that reached the switch first wins (ties, which cannot happen within one
     input, by input number). An input that sends a burst first is served first, however many inputs wait.

4. **Response.** The response returns to the port the request came from, ``forwarding_latency_ns`` after the
   device answered (the response path of the crossbar does not contend: responses contend on the links).

So an idle request through the switch adds exactly ``2 x forwarding_latency`` (once each way).

Stats per port (``port<j>``): ``requests``, ``bytes_rx``, ``bytes_tx`` (data bytes: write data in on an upstream
port and out on a downstream port; read data the other way), and ``queue_delay_ps``, a histogram of the time
from the end of the forwarding pipeline to the crossbar grant (recorded at both the input and the output port).

Abstracted away: the CXL.io and configuration paths, virtual hierarchies and fabric manager, port-based routing
(PBR), multi-logical-device LD-ID routing, back-invalidate snoops, QoS telemetry and egress throttling, response
crossbar contention, and the switch's own link-layer buffers (the links model serialisation and credits).
"""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import simpy

from archsim.core.component import Component
from archsim.core.port import Slots, call_at, finish_at
from archsim.core.request import MemRequest, Message
from archsim.core.sim import Simulator
from archsim.core.stats import Histogram, Stats
from archsim.cxl.spec import SwitchSpec, ns_to_ps

__all__ = ["Switch", "Upstream", "Downstream", "UpstreamPort"]


@dataclass
class Upstream:
    """Configuration of an upstream port: a host (or a parent switch) attaches here."""


@dataclass
class Downstream:
    """Configuration of a downstream port: the ``[base, end)`` ranges it serves and the component behind it."""

    target: Component
    ranges: Sequence[tuple[int, int]] = field(default_factory=list)


class _Entry:
    """A request inside the switch."""

    __slots__ = ("req", "inner", "src", "out", "t_ready", "seq")

    def __init__(self, req: MemRequest, src: int, out: int, seq: int) -> None:
        self.req = req
        self.inner: MemRequest | None = None
        self.src = src
        self.out = out
        self.t_ready = -1
        self.seq = seq


class UpstreamPort(Component):
    """The face of one upstream port: a bounded ingress buffer in front of the switch's crossbar."""

    def __init__(self, switch: Switch, index: int) -> None:
        super().__init__(switch.sim, f"{switch.name}.port{index}")
        self.switch = switch
        self.index = index
        self.depth = switch.queue_depth
        self.slots = Slots(self.env, switch.queue_depth)  # ingress buffer entries
        self.requests = 0
        self.bytes_rx = 0
        self.bytes_tx = 0
        self.queue_delay = Histogram()

    def owner_of(self, addr: int) -> tuple[Component, int]:
        return self.switch, addr

    def windows(self) -> list[tuple[int, int]]:
        """Every range the switch routes to its downstream ports."""
        return self.switch.windows()

    @property
    def occupancy(self) -> int:
        return self.slots.used

    def can_accept(self, req: MemRequest) -> bool:
        return self.slots.free()

    def space_event(self, req: MemRequest) -> simpy.Event:
        return self.slots.space_event()

    def submit(self, req: MemRequest) -> simpy.Event:
        """Take ``req`` into the ingress buffer (check :meth:`can_accept` first)."""
        if not self.slots.free():
            raise RuntimeError(f"{self.name}: ingress buffer full (check can_accept first)")
        return self.switch._ingress(self, req)

    def _release(self) -> None:
        self.slots.give()


class _Output:
    """State of one downstream port."""

    __slots__ = ("index", "target", "ranges", "voq", "waiting", "next_slot", "pending", "rr",
                 "requests", "bytes_rx", "bytes_tx", "queue_delay")

    def __init__(self, index: int, target: Component, ranges: Sequence[tuple[int, int]], n_in: int) -> None:
        self.index = index
        self.target = target
        self.ranges = list(ranges)
        self.voq: list[deque[_Entry]] = [deque() for _ in range(n_in)]
        self.waiting = 0
        self.next_slot = 0
        self.pending = False  # a retry is scheduled (slot) or registered (space event)
        self.rr = 0
        self.requests = 0
        self.bytes_rx = 0
        self.bytes_tx = 0
        self.queue_delay = Histogram()


class Switch(Component):
    """A CXL switch routing by address range (see the module docstring)."""

    def __init__(self, sim: Simulator, name: str, ports: Sequence[Upstream | Downstream], *,
                 queue_depth: int = 32, arbitration: Literal["round_robin", "oldest_first"] = "round_robin",
                 forwarding_latency_ns: float = 20.0, crossbar_slot_ns: float = 0.5) -> None:
        super().__init__(sim, name)
        if arbitration not in ("round_robin", "oldest_first"):
            raise ValueError(f"unknown arbitration {arbitration!r} (round_robin, oldest_first)")
        if queue_depth <= 0:
            raise ValueError(f"queue_depth must be positive, got {queue_depth}")
        self.queue_depth = queue_depth
        self.arbitration = arbitration
        self.fwd_ps = ns_to_ps(forwarding_latency_ns)
        self.slot_ps = max(1, ns_to_ps(crossbar_slot_ns))
        self.kinds = ["up" if isinstance(p, Upstream) else "down" for p in ports]
        up = [j for j, p in enumerate(ports) if isinstance(p, Upstream)]
        down = [j for j, p in enumerate(ports) if isinstance(p, Downstream)]
        if not up or not down:
            raise ValueError(f"{name}: a switch needs at least one upstream and one downstream port")
        self._inputs: dict[int, UpstreamPort] = {}
        self._in_index: dict[int, int] = {}  # port number -> dense input index
        for k, j in enumerate(up):
            self._inputs[j] = UpstreamPort(self, j)
            self._in_index[j] = k
        self._in_ports = [self._inputs[j] for j in up]
        self._outputs: list[_Output] = []
        self._out_port: list[int | str] = []  # dense output index -> port number (a name: inside the switch)
        spans: list[tuple[int, int, int]] = []
        for j in down:
            p = ports[j]
            assert isinstance(p, Downstream)
            o = _Output(len(self._outputs), p.target, p.ranges, len(up))
            self._outputs.append(o)
            self._out_port.append(j)
            spans.extend((lo, hi, o.index) for lo, hi in p.ranges)
        self._set_routes(spans)
        self._seq = 0
        self._finalized = False

    @classmethod
    def from_spec(cls, sim: Simulator, name: str, spec: SwitchSpec,
                  downstream: dict[int, tuple[Component, Sequence[tuple[int, int]]]]) -> Switch:
        """Build from a :class:`SwitchSpec`; ``downstream`` maps each downstream port number to its component and
        resolved ranges (see :meth:`archsim.cxl.spec.CXLSpec.port_ranges`)."""
        ports: list[Upstream | Downstream] = []
        for j, p in enumerate(spec.ports):
            if p.role == "upstream":
                ports.append(Upstream())
            else:
                target, ranges = downstream[j]
                ports.append(Downstream(target, ranges))
        return cls(sim, name, ports, queue_depth=spec.queue_depth, arbitration=spec.arbitration,
                   forwarding_latency_ns=spec.forwarding_latency_ns, crossbar_slot_ns=spec.crossbar_slot_ns)

    # ------------------------------------------------------------------ faces
    def port(self, j: int) -> UpstreamPort:
        """The component a host (or a parent switch's link) submits into at upstream port ``j``."""
        try:
            return self._inputs[j]
        except KeyError:
            raise ValueError(f"{self.name}: port {j} is not an upstream port") from None

    def attach(self, target: Component, ranges: Sequence[tuple[int, int]], name: str) -> None:
        """An output inside the switch (no port, no link: processing units that take :class:`Message` s for the
        address ``ranges``), arbitrated by the crossbar like a downstream port; its stats are under ``name``."""
        o = _Output(len(self._outputs), target, ranges, len(self._in_ports))
        self._outputs.append(o)
        self._out_port.append(name)
        self._set_routes(self._spans + [(lo, hi, o.index) for lo, hi in ranges])

    def _set_routes(self, spans: list[tuple[int, int, int]]) -> None:
        """The routing table: (base, end, output) spans, which must not overlap."""
        spans = sorted(spans)
        for (lo0, hi0, _), (lo1, hi1, _) in zip(spans, spans[1:], strict=False):
            if lo1 < hi0:
                raise ValueError(f"{self.name}: address ranges [0x{lo0:x}, 0x{hi0:x}) and [0x{lo1:x}, 0x{hi1:x}) "
                                 f"overlap")
        self._lo = [sp[0] for sp in spans]
        self._spans = spans
        self._span_arrays = tuple(np.asarray([sp[k] for sp in spans], dtype=np.int64) for k in range(3))

    def windows(self) -> list[tuple[int, int]]:
        """Every range routed to a downstream port (units inside the switch aside)."""
        return [(lo, hi) for lo, hi, o in self._spans if isinstance(self._out_port[o], int)]

    def owner_of(self, addr: int) -> tuple[Component, int]:
        """The next step towards the memory that holds ``addr``: the link of the port that routes it."""
        return self._outputs[self._route_out(addr)].target, addr

    def output_targets(self) -> list[Component]:
        """The component behind each downstream port (its link), in port order."""
        return [o.target for o in self._outputs if isinstance(self._out_port[o.index], int)]

    @property
    def upstream_ports(self) -> list[int]:
        return list(self._inputs)

    def route(self, addr: int) -> int:
        """The downstream port number that serves ``addr``; ValueError when no range holds it."""
        return self._out_port[self._route_out(addr)]

    def _route_out(self, addr: int) -> int:
        i = bisect.bisect_right(self._lo, addr) - 1
        if i >= 0:
            _, hi, o = self._spans[i]
            if addr < hi:
                return o
        raise ValueError(f"{self.name}: address 0x{addr:x} is in no downstream port's range")

    def route_outputs(self, addrs: np.ndarray) -> np.ndarray:
        """:meth:`_route_out` of an array of addresses (dense output indices); ValueError if one is unrouted."""
        lo, hi, out = self._span_arrays
        i = np.searchsorted(lo, addrs, side="right") - 1
        bad = (i < 0) | (addrs >= hi[np.maximum(i, 0)])
        if bad.any():
            raise ValueError(f"{self.name}: address 0x{int(addrs[bad][0]):x} is in no downstream port's range")
        return out[i]

    def submit(self, req: MemRequest) -> simpy.Event:
        """Submit at the first upstream port (a switch with one host)."""
        return self._in_ports[0].submit(req)

    def can_accept(self, req: MemRequest) -> bool:
        return self._in_ports[0].can_accept(req)

    def space_event(self, req: MemRequest) -> simpy.Event:
        return self._in_ports[0].space_event(req)

    # ------------------------------------------------------------------ request path
    def _ingress(self, port: UpstreamPort, req: MemRequest) -> simpy.Event:
        env = self.env
        req.t_submit = env.now
        if req.done is None:
            req.done = env.event()
        o = self._outputs[self._route_out(req.addr)]
        port.slots.take()
        port.requests += 1
        if req.is_write:
            port.bytes_rx += req.size
        self._seq += 1
        e = _Entry(req, self._in_index[port.index], o.index, self._seq)
        call_at(env, env.now + self.fwd_ps, self._ready, e)
        return req.done

    def _ready(self, ev: simpy.Event) -> None:
        e: _Entry = ev.value
        e.t_ready = self.env.now
        req = e.req
        e.inner = req.forward(e) if req.__class__ is Message else MemRequest(req.addr, req.is_write, req.size, tag=e)
        o = self._outputs[e.out]
        o.voq[e.src].append(e)
        o.waiting += 1
        if not o.pending:
            self._arbitrate(o)

    def _pick(self, o: _Output) -> int:
        """The input whose head request wins output ``o`` now (some VOQ is non-empty)."""
        voq = o.voq
        n = len(voq)
        if self.arbitration == "round_robin":
            for k in range(n):
                i = (o.rr + k) % n
                if voq[i]:
                    return i
        best = -1
        for i in range(n):
            if voq[i] and (best < 0 or voq[i][0].seq < voq[best][0].seq):
                best = i
        return best

    def _arbitrate(self, o: _Output) -> None:
        """Grant as many requests to output ``o`` as the slot and the target allow now; schedule the next try."""
        env = self.env
        while o.waiting:
            now = env.now
            if now < o.next_slot:
                o.pending = True
                call_at(env, o.next_slot, self._retry, o)
                return
            i = self._pick(o)
            e = o.voq[i][0]
            inner = e.inner
            target = o.target
            if not target.can_accept(inner):
                o.pending = True
                target.space_event(inner).callbacks.append(lambda _ev, out=o: self._retry_out(out))
                return
            o.voq[i].popleft()
            o.waiting -= 1
            if self.arbitration == "round_robin":
                o.rr = (i + 1) % len(o.voq)
            o.next_slot = now + self.slot_ps
            src = self._in_ports[i]
            src._release()
            delay = now - e.t_ready
            src.queue_delay.record(delay)
            o.queue_delay.record(delay)
            o.requests += 1
            if e.req.is_write:
                o.bytes_tx += e.req.size
            target.submit(inner).callbacks.append(self._response)
        o.pending = False

    def _retry(self, ev: simpy.Event) -> None:
        self._retry_out(ev.value)

    def _retry_out(self, o: _Output) -> None:
        o.pending = False
        self._arbitrate(o)

    # ------------------------------------------------------------------ response path
    def _response(self, ev: simpy.Event) -> None:
        e: _Entry = ev.value.tag
        e.inner = None  # the entry and its copy referred to each other: freed now, not by the cyclic GC
        req = e.req
        back = req.resp_bytes if req.__class__ is Message else (0 if req.is_write else req.size)
        if back:
            self._outputs[e.out].bytes_rx += back
            self._in_ports[e.src].bytes_tx += back
        finish_at(self.env, req, self.env.now + self.fwd_ps)

    # ------------------------------------------------------------------ results
    def finalize(self, end_ps: int | None = None) -> None:
        """Flush per-port counters and histograms into stats (``port<j>``)."""
        if self._finalized:
            return
        self._finalized = True
        for p in self._in_ports:
            self._port_stats(p.stats, p.requests, p.bytes_rx, p.bytes_tx, p.queue_delay)
        for o in self._outputs:
            j = self._out_port[o.index]
            s = self.stats.child(f"port{j}" if isinstance(j, int) else j)
            self._port_stats(s, o.requests, o.bytes_rx, o.bytes_tx, o.queue_delay)

    @staticmethod
    def _port_stats(s: Stats, requests: int, rx: int, tx: int, hist: Histogram) -> None:
        s.set("requests", requests)
        s.set("bytes_rx", rx)
        s.set("bytes_tx", tx)
        s.hists["queue_delay_ps"] = hist
