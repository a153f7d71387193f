"""The host's physical memory map: address ranges routed to the components that own them.

A host with CXL memory sees its local DRAM at ``[0, local capacity)`` and each expander's window above it, as
NUMA nodes of one physical address space: the router sends a request to the component that owns its address
(the local :class:`~archsim.dram.memory.DRAMSystem`, or the host's CXL link into the fabric) without copying it,
and upstream backpressure waits per destination queue. Abstracted away: the home agent's coherence work (a
CXL.mem access from the host is treated as a plain read or write), NUMA policy beyond the table layout.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from typing import Any

import simpy

from archsim.core.component import Component
from archsim.core.request import MemRequest
from archsim.core.sim import Simulator


class AddressRouter(Component):
    """Routes requests by address range: ``ranges`` is ``[(lo, hi, component), ...]``, non-overlapping."""

    def __init__(self, sim: Simulator, name: str, ranges: Sequence[tuple[int, int, Component]]) -> None:
        super().__init__(sim, name)
        spans = sorted(ranges, key=lambda r: r[0])
        for (_lo0, hi0, _), (lo1, _hi1, _) in zip(spans, spans[1:]):
            if lo1 < hi0:
                raise ValueError(f"{name}: address ranges overlap at 0x{lo1:x}")
        self._lo = [r[0] for r in spans]
        self._hi = [r[1] for r in spans]
        self._dest = [r[2] for r in spans]

    def _index(self, addr: int) -> int:
        i = bisect_right(self._lo, addr) - 1
        if i < 0 or addr >= self._hi[i]:
            raise ValueError(f"{self.name}: no memory at address 0x{addr:x}")
        return i

    def destination(self, addr: int) -> Component:
        """The component that owns ``addr``."""
        return self._dest[self._index(addr)]

    def owner_of(self, addr: int) -> tuple[Component, int]:
        """The next step towards the memory that holds ``addr`` (:meth:`archsim.system.table_map.TableMap.owner`)."""
        return self.destination(addr), addr

    def can_accept(self, req: MemRequest) -> bool:
        return self._dest[self._index(req.addr)].can_accept(req)

    def space_event(self, req: MemRequest) -> simpy.Event:
        return self._dest[self._index(req.addr)].space_event(req)

    def queue_key(self, req: MemRequest) -> Any:
        i = self._index(req.addr)
        return (i, self._dest[i].queue_key(req))

    def submit(self, req: MemRequest) -> simpy.Event:
        return self._dest[self._index(req.addr)].submit(req)


class Deinterleave(Component):
    """The host's HDM decoder for interleaved CXL memory: a request's host address becomes the address in the
    owning expander's own window (``translate``) before it enters the fabric; the completion is the original
    request's. Abstracted away: the decoder's latency (part of the port latency)."""

    def __init__(self, sim: Simulator, name: str, inner: Component, translate) -> None:
        super().__init__(sim, name)
        self.inner = inner
        self.translate = translate

    def owner_of(self, addr: int) -> tuple[Component, int]:
        return self.inner, int(self.translate(addr))

    def _view(self, req: MemRequest) -> MemRequest:
        return MemRequest(int(self.translate(req.addr)), req.is_write, req.size, tag=req)

    def can_accept(self, req: MemRequest) -> bool:
        return self.inner.can_accept(req)

    def space_event(self, req: MemRequest) -> simpy.Event:
        return self.inner.space_event(req)

    def queue_key(self, req: MemRequest) -> Any:
        return self.inner.queue_key(req)

    def submit(self, req: MemRequest) -> simpy.Event:
        if req.done is None:
            req.done = self.env.event()
        self.inner.submit(self._view(req)).callbacks.append(self._back)
        return req.done

    def _back(self, ev: simpy.Event) -> None:
        req = ev.value.tag
        req.t_done = self.env.now
        req.done.succeed(req)
