"""A CXL Type-3 memory expander: a device controller in front of a DRAM system.

The expander owns the host physical address range ``[base, base + capacity)``. A request (a host physical
address) pays ``controller_latency_ns`` (CXL.mem decode, HDM decoder, memory-controller front end; charged once,
on the way in: for an idle access the sum is what matters, and the controller is modelled as a pure pipeline
delay without occupancy), has ``base`` subtracted, and goes to the DRAM system (:class:`archsim.dram.DRAMSystem`,
built from the expander's ``dram:`` spec), whose address mapping decodes the device address. The request itself
is rewritten and handed on (a request reaching an expander is its link's own copy, so no second copy and no
extra completion event): a caller that submits directly and needs the host address afterwards keeps its own.
The response returns as soon as the DRAM completes. So an idle read costs ``controller_latency + the DRAM's idle read latency`` here,
plus the link in front of the expander (:class:`archsim.cxl.link.Link`).

The expander itself never refuses a request: the link's credits bound what reaches it, and requests the DRAM
channels cannot take yet wait in the expander's port to the DRAM, per channel.

Abstracted away: the device's own caches or prefetchers, DRAM ECC and scrubbing, multi-logical-device (MLD)
partitioning and QoS telemetry (DevLoad), media other than DRAM. Each expander owns one contiguous range;
interleaving across expanders is the host decoder's work (``archsim.system.memory_map.Deinterleave``).
"""

from __future__ import annotations

from typing import Any

import simpy

from archsim.core.component import Component
from archsim.core.port import MemoryPort, call_at
from archsim.core.request import GatherReduce, MemRequest, Message
from archsim.core.sim import Simulator
from archsim.cxl.spec import ExpanderSpec, ns_to_ps
from archsim.dram.memory import DRAMSystem

__all__ = ["Expander"]


class Expander(Component):
    """A Type-3 memory expander: ``submit(req)`` with a host physical address in ``[base, base + size)``."""

    def __init__(self, sim: Simulator, name: str, spec: ExpanderSpec | Any, media: Component | None = None,
                 reducer: Component | None = None) -> None:
        """``media``: the memory behind the controller (a component of the system graph, finalized by its
        owner); absent: a :class:`DRAMSystem` built here from ``spec.dram`` and finalized with the expander.
        ``reducer``: near-memory units in the media that take :class:`GatherReduce` bags (NMP DIMMs)."""
        super().__init__(sim, name)
        self.reducer = reducer
        self.bags = 0
        self.spec = spec
        self.controller_ps = ns_to_ps(spec.controller_latency_ns)
        self._owns_media = media is None
        self.dram = DRAMSystem(sim, spec.dram, name=f"{name}.dram") if media is None else media
        self.base = spec.base
        self.size = spec.capacity if spec.capacity is not None else self.dram.spec.org.capacity_bytes
        self.end = self.base + self.size
        self.port = MemoryPort(self.dram)
        self.reads = 0
        self.writes = 0
        self.bytes = 0
        self._finalized = False

    def windows(self) -> list[tuple[int, int]]:
        """The host address window it serves."""
        return [(self.base, self.end)]

    def owner_of(self, addr: int) -> tuple[Component, int]:
        """The expander holds ``addr`` (the end of the walk of :meth:`archsim.system.table_map.TableMap.owner`)."""
        return self, addr

    def accepts_table(self, t: int) -> bool:
        """Whether bags of table ``t`` can be reduced here (by the units in the media)."""
        return self.reducer is not None and self.reducer.accepts_table(t)

    def submit(self, req: MemRequest | Message) -> simpy.Event:
        """Accept ``req``; the returned event fires when the DRAM has served it. The request's address becomes
        the device address (``addr - base``) and the DRAM completes it directly. A :class:`Message` whose
        payload is a :class:`GatherReduce` (rows in this expander's window) goes, after the controller's
        latency, to the units in the media; its event fires when their pooled partial sum is ready in the
        controller (the link carries it back as the message's response)."""
        if req.__class__ is Message:  # a command for the units in the media; its payload is the bag
            return self._reduce(req)
        addr = req.addr
        if not self.base <= addr < self.end:
            raise ValueError(f"{self.name}: address 0x{addr:x} is outside [0x{self.base:x}, 0x{self.end:x})")
        env = self.env
        req.t_submit = env.now
        if req.done is None:
            req.done = env.event()
        if req.is_write:
            self.writes += 1
        else:
            self.reads += 1
        self.bytes += req.size
        req.addr = addr - self.base
        req._ch = -1  # decoded again by the DRAM
        if self.controller_ps:
            call_at(env, env.now + self.controller_ps, self._to_dram, req)
        else:
            self.port.send(req, None)
        return req.done

    def _reduce(self, msg: Message) -> simpy.Event:
        env = self.env
        msg.t_submit = env.now
        if msg.done is None:
            msg.done = env.event()
        self.bags += 1
        call_at(env, env.now + self.controller_ps, self._to_units, msg)
        return msg.done

    def _to_units(self, ev: simpy.Event) -> None:
        msg = ev.value
        gr = msg.payload
        inner = GatherReduce(gr.table, gr.rows, gr.dim, gr.dtype, gr.row_bytes, tag=msg)
        self.reducer.submit(inner).callbacks.append(self._reduced)

    def _reduced(self, ev: simpy.Event) -> None:
        inner = ev.value
        msg = inner.tag
        msg.payload.t_issue = inner.t_issue
        msg.t_done = self.env.now
        msg.done.succeed(msg)

    def _to_dram(self, ev: simpy.Event) -> None:
        self.port.send(ev.value, None)  # the DRAM completes the request's own done event

    def memory_models(self) -> list[DRAMSystem]:
        """The DRAM it built itself (no component of the graph), or none when its media is a graph component."""
        return [self.dram] if self._owns_media else []

    def summary(self, end_ps: int) -> dict[str, float]:
        """Requests served and their bytes per simulated ns (10^9 B/s)."""
        per_ns = end_ps * 1e-3
        bw = self.bytes / per_ns if per_ns else 0.0
        return {"reads": self.reads, "writes": self.writes, "bandwidth_GBps": bw}

    def finalize(self, end_ps: int | None = None) -> None:
        """Flush counters into stats and finalize the DRAM it built (its energy goes to the ledger)."""
        if self._finalized:
            return
        self._finalized = True
        self.stats.set("reads", self.reads)
        self.stats.set("writes", self.writes)
        self.stats.set("bytes", self.bytes)
        if self.reducer is not None:
            self.stats.set("bags", self.bags)
        if self._owns_media:
            self.dram.finalize()
