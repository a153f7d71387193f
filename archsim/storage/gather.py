"""Two small kinds for rows that live away from the host's cores: ``pcie_link`` (a PCIe link in front of a memory)
and ``gather_unit`` (a fixed-rate gather-and-pool unit, the stand-in for a GPU's embedding kernel next to its HBM
until a GPU model exists).

``pcie_link``: requests to ``to`` cross a PCIe link (:class:`archsim.storage.pcie.PCIeLink`: TLPs of at most
Max_Payload_Size, exact serialisation per direction, then a fixed latency). A read of any size (a whole row, as
a DMA engine asks for it) sends one request TLP (no payload) out, is read from ``to`` in its bursts, and its
data come back as completion TLPs; a write sends its data out and completes when ``to`` has taken it. It is how a device reads host memory by DMA (Hotline's accelerator
gathering non-popular rows from CPU DRAM) or the host reads device memory. Messages of a unit near the data (a
bag's indices out, the pooled vector back) share the same wires (:meth:`PCIeHop.message`).

``gather_unit``: takes whole bags from the host (role ``reducer``); the indices cross its ``link``, the unit
reads every line of the bag's rows through ``memory`` (a tier that holds the hot rows in HBM and the rest behind
the link) with at most ``outstanding`` lines in flight, pools them at a fixed rate of ``lanes`` fp32 adds per
clock of ``clock_mhz`` (a line of ``e`` elements takes ``ceil(e x 10^6 / (lanes x MHz))`` ps, one line after
another: a wide unit pools many lines per clock), and sends the pooled vector back over the link.

Abstracted away: a GPU's SMs, warps, caches and kernel launches (the unit is one fixed-rate datapath with a
fixed memory-level parallelism), DLLPs and flow-control credits on the link, the link's power states.
"""

from __future__ import annotations

from collections import deque

import simpy
from pydantic import Field, field_validator

from archsim.core.component import Component
from archsim.core.port import MemoryPort, call_at, finish_at
from archsim.core.request import GatherReduce, MemRequest
from archsim.storage.pcie import PCIeLink
from archsim.storage.spec import PCIeLinkSpec, _Strict
from archsim.workload.spec import DTYPE_BYTES

__all__ = ["PCIeLinkNode", "PCIeHop", "GatherUnitNode", "GatherUnit"]


class PCIeLinkNode(PCIeLinkSpec):
    """A PCIe link (generation, lanes, TLP size and overhead, latency each way) in front of memory ``to``."""

    to: str = Field(..., description="the memory on the far side of the link")
    energy_pJ_per_bit: float = Field(5.0, ge=0, le=1000, description="energy per bit on the wire (TLP overhead "
                                                                     "included), booked as kind link. Assumption: "
                                                                     "as the CXL links' (cxl_link) typical SerDes "
                                                                     "figure")
    # the host's side of a device's reads of host memory in place (a GPU's zero-copy loads, archsim.gpu): the
    # requests the root complex serves and the IOMMU's translations; the DMA paths of this module ignore them
    read_request_ns: float = Field(0.0, ge=0, le=1e6, description="time one read request of a device occupies the "
                                                                  "host's root complex besides its wire time (a gpu's "
                                                                  "reads of host rows)")
    iommu_walk_ns: float = Field(0.0, ge=0, le=1e6, description="latency an IOMMU translation adds to the reads of "
                                                                "a page it has not translated (0: no IOMMU)")
    iommu_walk_occupancy_ns: float = Field(0.0, ge=0, le=1e6, description="time one translation occupies the host's "
                                                                          "path (its throughput is 1 / this)")
    iommu_page_bytes: int = Field(4096, ge=512, le=1 << 30, description="bytes one translation covers (a power "
                                                                        "of two)")

    @field_validator("iommu_page_bytes")
    @classmethod
    def _pow2(cls, v: int) -> int:
        if v & (v - 1):
            raise ValueError(f"must be a power of two, got {v}")
        return v


class PCIeHop(Component):
    """Requests to ``port``'s memory across a PCIe link (``down``: towards it, ``up``: back)."""

    def __init__(self, sim, name: str, spec: PCIeLinkNode, port: MemoryPort) -> None:
        super().__init__(sim, name)
        self.spec = spec
        self.link = PCIeLink(spec)
        self.port = port
        self.msg_bytes = {"command": 0, "pooled": 0}
        self.reads = 0
        self.writes = 0
        self.grain = getattr(port.mem, "burst_bytes", None)  # the far memory's bursts

    def extent(self) -> tuple[int, int] | None:
        from archsim.storage.tiers import memory_extent

        return memory_extent(self.port.mem)

    def submit(self, req: MemRequest) -> simpy.Event:
        """One request of any size: one read request TLP out (or the write's data), the far memory's bursts,
        the data back as completion TLPs of at most Max_Payload_Size."""
        env = self.env
        now = env.now
        req.t_submit = now
        if req.done is None:
            req.done = env.event()
        link = self.link
        if req.is_write:
            self.writes += 1
            at = link.send(link.down, now, req.size, True)
        else:
            self.reads += 1
            at = link.send(link.down, now, 0, False)
        call_at(env, at, self._forward, req)
        return req.done

    def _forward(self, ev: simpy.Event) -> None:
        req = ev.value
        g = self.grain
        if g is None or req.size <= g and req.addr // g == (req.addr + req.size - 1) // g:
            parts = [(req.addr, req.size)]
        else:
            parts = [(a * g, g) for a in range(req.addr // g, (req.addr + req.size - 1) // g + 1)]
        req._left = len(parts)
        for a, size in parts:
            self.port.send(MemRequest(a, req.is_write, size, tag=req), self._back)

    def _back(self, ev: simpy.Event) -> None:
        req = ev.value.tag
        req._left -= 1
        if req._left:
            return
        now = self.env.now
        if req.is_write:
            finish_at(self.env, req, now)
            return
        link = self.link
        finish_at(self.env, req, link.send(link.up, now, req.size, True))

    def message(self, down: bool, now: int, payload: int, kind: str) -> int:
        """A message of ``payload`` bytes (``kind`` command or pooled) sent at ``now``; when the far end has it."""
        self.msg_bytes[kind] = self.msg_bytes.get(kind, 0) + self.link.wire_bytes(payload)
        return self.link.send(self.link.down if down else self.link.up, now, payload, False)

    def link_bytes(self) -> dict[str, float]:
        """Wire bytes of both directions by kind: ``request`` (read requests), ``data`` (read and write data),
        ``command`` and ``pooled`` (a gather unit's messages)."""
        d, u = self.link.down, self.link.up
        msgs = sum(self.msg_bytes.values())
        return {"request": float(d.queue_wire + u.queue_wire - msgs), "data": float(d.data_wire + u.data_wire),
                **{k: float(v) for k, v in self.msg_bytes.items()}}

    def summary(self, end_ps: int) -> dict[str, float]:
        per_ns = end_ps * 1e-3
        return {"reads": self.reads, "writes": self.writes,
                "down_GBps": self.link.down.payload_bytes / per_ns if per_ns else 0.0,
                "up_GBps": self.link.up.payload_bytes / per_ns if per_ns else 0.0,
                "up_utilization": self.link.up.busy_ps() / end_ps if end_ps else 0.0}

    def finalize(self, end_ps: int | None = None) -> None:
        for key, wire in (("down", self.link.down), ("up", self.link.up)):
            w = self.stats.child(key)
            for k in ("messages", "tlps", "wire_bytes", "payload_bytes"):
                w.set(k, getattr(wire, k))
        bits = 8 * (self.link.down.wire_bytes + self.link.up.wire_bytes)
        self.sim.energy.book(self.stats.full_name, "link", self.spec.energy_pJ_per_bit * bits)


def build_pcie_link(ctx, node) -> PCIeHop:
    return PCIeHop(ctx.sim, node.name, node.params, MemoryPort(ctx.get(node.params.to)))


class GatherUnitNode(_Strict):
    """A fixed-rate gather-and-pool unit that takes whole bags (a GPU's embedding kernel, abstracted)."""

    memory: str = Field(..., description="the memory the unit reads rows through (a tier, a dram)")
    link: str | None = Field(None, description="a pcie_link between the host and the unit: the bag's indices "
                                               "cross it out, the pooled vector back (absent: no cost)")
    outstanding: int = Field(1024, ge=1, le=1 << 20, description="line reads in flight (the unit's memory-level "
                                                                 "parallelism)")
    clock_mhz: float = Field(1410.0, gt=0, le=100_000, description="clock of the pooling datapath")
    lanes: int = Field(256, ge=1, le=1 << 20, description="fp32 adds per clock")
    index_bytes: int = Field(8, ge=1, le=64, description="bytes per row index in a bag's command (int64 "
                                                         "indices, as PyTorch's EmbeddingBag takes)")
    pool_op_energy_pJ: float = Field(0.9, ge=0, le=1e6, description="energy of one fp32 add, booked as compute")


class _Bag:
    __slots__ = ("gr", "left", "t_pool")

    def __init__(self, gr: GatherReduce, left: int) -> None:
        self.gr = gr
        self.left = left
        self.t_pool = 0


class GatherUnit(Component):
    """Bags in, pooled vectors out; reads through ``port`` (see the module docstring)."""

    def __init__(self, sim, name: str, spec: GatherUnitNode, port: MemoryPort, link: PCIeHop | None,
                 table_map) -> None:
        super().__init__(sim, name)
        self.spec = spec
        self.port = port
        self.link = link
        self.table_map = table_map
        self.line = table_map.line_bytes
        self.queue: deque = deque()
        self.inflight = 0
        self.bags = 0
        self.lines = 0
        self.adds = 0
        self.busy_until = 0
        self.pool_ps = []  # per table: ps one line's adds take at lanes x clock (many lines share a clock)
        self.elems = []
        for t in table_map.tables:
            e = max(1, min(t.row_bytes, self.line) // DTYPE_BYTES[t.dtype])
            self.elems.append(e)
            self.pool_ps.append(max(1, -(-e * 10**6 // round(spec.lanes * spec.clock_mhz))))

    def accepts_table(self, t: int) -> bool:
        return True

    def submit(self, gr: GatherReduce) -> simpy.Event:
        env = self.env
        now = env.now
        gr.t_submit = now
        if gr.done is None:
            gr.done = env.event()
        self.bags += 1
        at = now if self.link is None else self.link.message(True, now, self.spec.index_bytes * len(gr.rows),
                                                             "command")
        call_at(env, at, self._arrive, gr)
        return gr.done

    def _arrive(self, ev: simpy.Event) -> None:
        import numpy as np

        gr = ev.value
        addrs, _ = self.table_map.line_addresses(gr.table, np.asarray(gr.rows, dtype=np.int64))
        bag = _Bag(gr, len(addrs))
        if not len(addrs):
            self._finish(bag, self.env.now)
            return
        q = self.queue
        for a in addrs.tolist():
            q.append((a, bag))
        self._pump()

    def _pump(self) -> None:
        q = self.queue
        send = self.port.send
        lb = self.line
        while q and self.inflight < self.spec.outstanding:
            a, bag = q.popleft()
            self.inflight += 1
            self.lines += 1
            send(MemRequest(a, False, lb, tag=bag), self._line_back)

    def _line_back(self, ev: simpy.Event) -> None:
        bag = ev.value.tag
        self.inflight -= 1
        now = self.env.now
        t = bag.gr.table
        b = self.busy_until
        done = self.busy_until = (b if b > now else now) + self.pool_ps[t]
        self.adds += self.elems[t]
        bag.left -= 1
        if bag.left == 0:
            self._finish(bag, done)
        self._pump()

    def _finish(self, bag: _Bag, t_pooled: int) -> None:
        gr = bag.gr
        now = self.env.now
        t = t_pooled if t_pooled > now else now
        vec = gr.dim * DTYPE_BYTES[gr.dtype]
        if self.link is not None:
            if t > now:  # the link takes the vector when it is pooled
                call_at(self.env, t, self._send_back, gr)
                return
            t = self.link.message(False, t, vec, "pooled")
        finish_at(self.env, gr, t)

    def _send_back(self, ev: simpy.Event) -> None:
        gr = ev.value
        vec = gr.dim * DTYPE_BYTES[gr.dtype]
        finish_at(self.env, gr, self.link.message(False, self.env.now, vec, "pooled"))

    def summary(self, end_ps: int) -> dict[str, float]:
        return {"bags": self.bags, "lines": self.lines,
                "read_GBps": self.lines * self.line / (end_ps * 1e-3) if end_ps else 0.0}

    def finalize(self, end_ps: int | None = None) -> None:
        s = self.stats
        s.set("bags", self.bags)
        s.set("lines", self.lines)
        s.set("pool_adds", self.adds)
        self.sim.energy.book(s.full_name, "compute", self.spec.pool_op_energy_pJ * self.adds)


def build_gather_unit(ctx, node) -> GatherUnit:
    from archsim.storage.tiers import tier_config_error

    p = node.params
    if ctx.table_map is None:
        raise tier_config_error(node.where, (), "a gather unit pools embedding bags and needs a workload")
    link = ctx.get(p.link) if p.link is not None else None
    if link is not None and not isinstance(link, PCIeHop):
        raise tier_config_error(node.where, ("link",), f"{p.link!r} is no pcie_link")
    return GatherUnit(ctx.sim, node.name, p, MemoryPort(ctx.get(p.memory)), link, ctx.table_map)
