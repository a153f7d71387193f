"""A CXL link: an upstream and a downstream component joined by one serial wire in each direction.

Path of a request (all times integer picoseconds)::

    submit --port--> M2S wire --phy--> --port--> downstream component ... done --port--> S2M wire --phy--> --port--> done

* **port** (``port_latency_ns``): the CXL port logic at each end of each direction (transaction and link layer,
  ARB/MUX, logical PHY); a pure delay.
* **wire**: each direction is one serial resource. A message occupies it for its *share* of a flit
  (:mod:`archsim.cxl.flit`: the steady-state flits per message of its type) times the flit time
  ``flit_bytes * 8 / (GT/s * lanes * encoding)``. Flits go back to back while messages keep coming; a busy
  period ends on a whole flit (the last flit is padded), and a message is delivered at the end of the flit that
  carries its last byte (the receiver checks the CRC of a whole flit before using it).
* **phy** (``phy_latency_ns``): SerDes and channel flight after serialisation; a pure delay.

So the latency of a read through an idle link is exactly::

    port + ser(M2S Req) + phy + port + downstream + port + ser(S2M DRS) + phy + port

with ``ser(m) = ceil(flits_alone(m) * flit_ps)``: the whole flits that carry message ``m`` alone (68B: 1 flit for
a MemRd, 2 for a 64 B data response; 256B: 1 and 1). A write is the same with M2S RwD and S2M NDR.

**Credits** (``credits``): the receiver's request buffers. A request takes a credit when it enters the link and
the credit comes back with its response (the device holds the request until it answers, and the credit return
rides in the response's flit), so at most ``credits`` requests are inside the link and the device; when none is
left :meth:`can_accept` is False and :meth:`space_event` fires when one returns.

**Counts** per direction (``m2s``, ``s2m`` in stats): messages, flits, wire bytes (flits x flit bytes), payload
bytes (data moved), busy time (flits x flit time), and the wire bytes by what the messages carry
(``bytes_<kind>``, :data:`LINK_KINDS`: a message's share of a flit times the flit bytes; ``padding`` is what
the last, padded flit of each busy period adds, so the kinds sum to the wire bytes); energy
``energy_pJ_per_bit`` x line bits (wire bytes x 8, with the 130/128 line-code overhead on pcie5) is booked to
the run's ledger under kind ``link``.

Abstracted away: mixing of message types in a flit (each message costs its homogeneous-stream share), separate
credit pools per message class (one pool for all requests), link-layer retry and CRC errors, CXL.io and
CXL.cache traffic sharing the link, power states (L0p, L1), retimers (fold them into ``phy_latency_ns``).
"""

from __future__ import annotations

import math
from fractions import Fraction

import simpy

from archsim.core.component import Component
from archsim.core.port import MemoryPort, Slots, call_at, finish_at
from archsim.core.request import MemRequest, Message
from archsim.core.sim import Simulator
from archsim.cxl.flit import LINE_BYTES, M2S_REQ, M2S_RWD, MESSAGES, S2M_DRS, S2M_NDR, FlitFormat, flit_format
from archsim.cxl.spec import LinkSpec, ns_to_ps

__all__ = ["Link", "Wire", "LINK_KINDS"]

#: What a message on a link carries (the ``bytes_link_<kind>`` columns, docs/metrics.md): ``request``: messages
#: without data (read requests M2S Req, write completions S2M NDR); ``data``: memory data (write data M2S RwD,
#: read data S2M DRS); ``command``: near-data units' commands (a bag's row indices); ``partial``: partial sums
#: of a bag on their way to be added; ``pooled``: pooled vectors to the host; ``padding``: the rest of the last
#: flit of a busy period.
LINK_KINDS = ("request", "data", "command", "partial", "pooled", "padding")
_KIND_OF = {M2S_REQ: "request", S2M_NDR: "request", M2S_RWD: "data", S2M_DRS: "data"}


class Wire:
    """One direction of a link: flits back to back, messages charged their share of a flit.

    Time inside is kept in integer units of ``1/scale`` ps, with ``scale`` chosen so that a flit and every
    message's share are whole units: the arithmetic is exact, and only delivery times are rounded up to ps.
    """

    __slots__ = ("scale", "flit_u", "cost_u", "free_u", "p_start_u", "p_end_u", "flits", "messages",
                 "payload_bytes", "by_type", "units_by_kind")

    def __init__(self, fmt: FlitFormat, flit_ps: Fraction) -> None:
        shares = {m: fmt.share(m) for m in MESSAGES}
        scale = flit_ps.denominator
        for s in shares.values():
            scale = math.lcm(scale, (s * flit_ps).denominator)
        self.scale = scale
        self.flit_u = int(flit_ps * scale)
        self.cost_u = {m: int(s * flit_ps * scale) for m, s in shares.items()}
        self.free_u = 0  # the wire is free of message bytes from here
        self.p_start_u = 0  # start of the current busy period
        self.p_end_u = 0  # end of its last (padded) flit
        self.flits = 0  # flits of closed busy periods
        self.messages = 0
        self.payload_bytes = 0
        self.by_type = dict.fromkeys(MESSAGES, 0)
        self.units_by_kind = dict.fromkeys(LINK_KINDS[:-1], 0)  # wire time by what the messages carry

    def send(self, arrival_ps: int, msg: str, n: int, payload: int, kind: str | None = None) -> int:
        """Put ``n`` messages of type ``msg`` on the wire, arriving at ``arrival_ps`` (nondecreasing over calls);
        returns the ps at which the receiver has the last of them. ``kind``: what they carry (one of
        :data:`LINK_KINDS`; default: ``request`` or ``data`` by the message type), for the counts only."""
        a = arrival_ps * self.scale
        if a >= self.p_end_u:  # the wire went idle: close the busy period, start a new one
            self.flits += (self.p_end_u - self.p_start_u) // self.flit_u
            self.p_start_u = self.p_end_u = self.free_u = a
        start = a if a > self.free_u else self.free_u
        end = start + self.cost_u[msg] * n
        self.free_u = end
        f = self.flit_u
        self.p_end_u = self.p_start_u + -(-(end - self.p_start_u) // f) * f
        self.messages += n
        self.by_type[msg] += n
        self.payload_bytes += payload
        k = kind or _KIND_OF[msg]
        self.units_by_kind[k] += self.cost_u[msg] * n
        return -(-self.p_end_u // self.scale)

    def alone_ps(self, msg: str, n: int = 1) -> int:
        """ps from the arrival of ``n`` messages of type ``msg`` on an idle wire to the receiver having the last of
        them (whole flits; what :meth:`send` returns minus the arrival when the wire is idle)."""
        f = self.flit_u
        return -(-(-(-self.cost_u[msg] * n // f) * f) // self.scale)

    def bytes_by_kind(self, flit_bytes: int) -> dict[str, float]:
        """Wire bytes by what the messages carry (:data:`LINK_KINDS`); they sum to the flits sent x flit bytes."""
        f = self.flit_u
        out = {k: u * flit_bytes / f for k, u in self.units_by_kind.items()}
        idle_u = self.total_flits() * f - sum(self.units_by_kind.values())  # exact: integer units
        out["padding"] = idle_u * flit_bytes / f
        return out

    def total_flits(self) -> int:
        """Flits sent so far, the open busy period's padded flits included."""
        return self.flits + (self.p_end_u - self.p_start_u) // self.flit_u


class Link(Component):
    """A CXL link in front of ``downstream`` (any component: an expander, a switch port, a stub).

    ``submit(req)`` carries a :class:`~archsim.core.request.MemRequest` (a read or a write of 64 B lines; a larger
    size is that many lines) to the downstream component and back; see the module docstring for the timing.
    """

    def __init__(self, sim: Simulator, name: str, spec: LinkSpec, downstream: Component | MemoryPort) -> None:
        super().__init__(sim, name)
        self.spec = spec
        self.port = downstream if isinstance(downstream, MemoryPort) else MemoryPort(downstream)
        self.fmt = flit_format(spec.flit_bytes)
        self.flit_ps = spec.flit_ps
        self.port_ps = ns_to_ps(spec.port_latency_ns)
        self.phy_ps = ns_to_ps(spec.phy_latency_ns)
        self.m2s = Wire(self.fmt, self.flit_ps)
        self.s2m = Wire(self.fmt, self.flit_ps)
        self.slots = Slots(self.env, spec.credits)  # requests holding a credit
        self._finalized = False

    # ------------------------------------------------------------------ timing helpers (also for tests/docs)
    def serialisation_ps(self, msg: str) -> int:
        """ps to serialise one message of type ``msg`` alone on an idle wire (whole flits, rounded up)."""
        return math.ceil(self.fmt.flits_alone(msg) * self.flit_ps)

    def idle_latency_ps(self, downstream_ps: int, write: bool = False) -> int:
        """Latency of one request through the idle link when the downstream component takes ``downstream_ps``."""
        req, rsp = (M2S_RWD, S2M_NDR) if write else (M2S_REQ, S2M_DRS)
        return (4 * self.port_ps + 2 * self.phy_ps + self.serialisation_ps(req) + self.serialisation_ps(rsp)
                + downstream_ps)

    # ------------------------------------------------------------------ face
    @property
    def outstanding(self) -> int:
        """Requests holding a credit now."""
        return self.slots.used

    @property
    def max_outstanding(self) -> int:
        return self.slots.peak

    def can_accept(self, req: MemRequest) -> bool:
        return self.slots.free()

    def space_event(self, req: MemRequest) -> simpy.Event:
        return self.slots.space_event()

    def submit(self, req: MemRequest) -> simpy.Event:
        """Take ``req`` (check :meth:`can_accept` first); the returned event fires when its response is back."""
        if not self.slots.free():
            raise RuntimeError(f"{self.name}: submit without a credit (check can_accept first)")
        env = self.env
        now = env.now
        req.t_submit = now
        if req.done is None:
            req.done = env.event()
        self.slots.take()
        n = -(-req.size // LINE_BYTES) if req.size > 0 else 1
        if req.__class__ is Message:  # a command to units that reduce: its bytes as write data
            at = self.m2s.send(now + self.port_ps, M2S_RWD, n, req.size, req.kind)
            inner = req.forward(req)
            call_at(env, at + self.phy_ps + self.port_ps, self._deliver, inner)
            return req.done
        if req.is_write:
            at = self.m2s.send(now + self.port_ps, M2S_RWD, n, req.size)
        else:
            at = self.m2s.send(now + self.port_ps, M2S_REQ, n, 0)
        inner = MemRequest(req.addr, req.is_write, req.size, tag=req)
        call_at(env, at + self.phy_ps + self.port_ps, self._deliver, inner)
        return req.done

    def queue_key(self, req: MemRequest) -> int:
        return 0

    def windows(self) -> list[tuple[int, int]]:
        """The host address windows reachable through the link (what its far end serves)."""
        return self.port.mem.windows()

    def owner_of(self, addr: int) -> tuple[Component, int]:
        """The next step towards the memory that holds ``addr``: the component at the far end."""
        return self.port.mem, addr

    # ------------------------------------------------------------------ internals
    def _deliver(self, ev: simpy.Event) -> None:
        inner = ev.value
        self.port.send(inner, self._respond)
        if inner.__class__ is Message:  # a command is posted: its credit returns when the far end has it
            self.slots.give()

    def _respond(self, ev: simpy.Event) -> None:
        inner: MemRequest = ev.value
        req: MemRequest = inner.tag
        n = -(-req.size // LINE_BYTES) if req.size > 0 else 1
        now = self.env.now
        if req.__class__ is Message:  # the pooled vector or partial sum comes back on its own, no credit held
            at = self.s2m.send(now + self.port_ps, S2M_DRS, -(-req.resp_bytes // LINE_BYTES), req.resp_bytes,
                               req.resp_kind)
            finish_at(self.env, req, at + self.phy_ps + self.port_ps)
            return
        if req.is_write:
            at = self.s2m.send(now + self.port_ps, S2M_NDR, n, 0)
        else:
            at = self.s2m.send(now + self.port_ps, S2M_DRS, n, req.size)
        finish_at(self.env, req, at + self.phy_ps + self.port_ps, self._release)

    def _release(self, ev: simpy.Event) -> None:
        """The response is back: its credit returns (before the requester's own callbacks run)."""
        self.slots.give()

    # ------------------------------------------------------------------ results
    def direction_counts(self, wire: Wire) -> dict[str, int | float]:
        """Counters of one direction (see the module docstring)."""
        flits = wire.total_flits()
        out: dict[str, int | float] = {
            "messages": wire.messages,
            "flits": flits,
            "wire_bytes": flits * self.fmt.flit_bytes,
            "payload_bytes": wire.payload_bytes,
            "busy_ps": float(flits * self.flit_ps),
        }
        for m, k in wire.by_type.items():
            out[f"msgs_{m}"] = k
        for k, b in wire.bytes_by_kind(self.fmt.flit_bytes).items():
            out[f"bytes_{k}"] = b
        return out

    def link_bytes(self) -> dict[str, float]:
        """Wire bytes of both directions by what the messages carry (:data:`LINK_KINDS`), for the summary."""
        out = dict.fromkeys(LINK_KINDS, 0.0)
        for wire in (self.m2s, self.s2m):
            for k, b in wire.bytes_by_kind(self.fmt.flit_bytes).items():
                out[k] += b
        return out

    def summary(self, end_ps: int) -> dict[str, float]:
        """Wire bytes by kind (``bytes_<kind>``) and the bandwidth each way: payload (``down_GBps``, ``up_GBps``)
        and on the wire with flit overhead (``*_wire_GBps``), bytes per ns = GB/s."""
        per_ns = end_ps * 1e-3
        out: dict[str, float] = {f"bytes_{k}": v for k, v in self.link_bytes().items()}
        for key, wire in (("down", self.m2s), ("up", self.s2m)):
            out[f"{key}_GBps"] = wire.payload_bytes / per_ns if per_ns else 0.0  # payload
            out[f"{key}_wire_GBps"] = wire.total_flits() * self.fmt.flit_bytes / per_ns if per_ns else 0.0
        return out

    def finalize(self, end_ps: int | None = None) -> None:
        """Flush counters into stats and book the link energy (kind ``link``)."""
        if self._finalized:
            return
        self._finalized = True
        line_bits = Fraction(0)
        for key, wire in (("m2s", self.m2s), ("s2m", self.s2m)):
            s = self.stats.child(key)
            for k, v in self.direction_counts(wire).items():
                s.set(k, v)
            line_bits += wire.total_flits() * self.fmt.flit_bytes * 8 / self.spec.gen.encoding
        self.stats.set("max_outstanding", self.max_outstanding)
        self.sim.energy.book(self.stats.full_name, "link", float(self.spec.energy_pJ_per_bit * line_bits))
