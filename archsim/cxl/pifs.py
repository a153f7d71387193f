"""PIFS-Rec: processing units inside a CXL switch, next to its downstream ports, that gather and pool embeddings.

Path of a bag (a :class:`~archsim.core.request.GatherReduce`) whose table lives behind the switch::

    host --command (row indices) over the host link, M2S--> switch pipeline --> per downstream port: a unit
    reads its rows over the port's link from the expander(s) behind it, one 64 B read per line (the port's
    on-switch buffer may hold hot lines), and pools them --> the switch's combiner adds the ports' partial sums
    --> pooled vector over the host link, S2M --> host

- **Command.** The bag's indices (``index_bytes`` each, plus ``command_header_bytes``) are a
  :class:`~archsim.core.request.Message` the host submits to its link after its on-chip path
  (``host.to_memory_ns``): a credit, 64 B write-data messages (M2S RwD), port logic and PHY, then the switch's
  forwarding pipeline and crossbar to the units' output inside the switch (``Switch.attach``). A port whose
  expander reduces itself (NMP DIMMs) gets its share the same way over its link.
- **Port units.** One per downstream port, reading the rows routed to that port (the switch's address ranges)
  through the port's link: the link's credits, flits and the expander's DRAM set the pace, exactly as for host
  reads. A serial pooling datapath per unit: ``ceil(elements / lanes)`` unit clocks per 64 B line.
- **On-switch buffer** (``buffer_kib``; PIFS-Rec's buffer for hot embeddings): an LRU cache of 64 B lines per
  switch shared by its units; a hit is pooled ``buffer_hit_ns`` after the command reaches the unit and reads
  nothing downstream. ``buffer_admit: hot`` keeps only profiled hot rows (PIFS-Rec's hotness detection).
- **Combine.** When a unit has pooled its share of a bag, its partial sum goes to the switch's combiner, which
  adds partial sums one after another (``dim / combine_lanes`` unit clocks each).
- **Result.** The pooled vector (``dim`` fp32) is the command's response: the switch's pipeline, data
  responses (S2M DRS) up the host link, then ``host.from_memory_ns`` to the core.
- **Units in the expanders** (``location: expander``, BEACON-like): each unit is its expander's reducer; the
  host sends every device its share of a bag as a message and adds the partial sums that come back.
- **Bag latency** (the host's ``bag_latency``, docs/metrics.md): from the first of the bag's reads that a unit
  issues (taken by the port's link, or by the expander for units in the device), referred back to the host by
  the idle flight of the command that carried it (host path, host link, switch pipeline, and the port's link
  for units in the device), to the pooled vector at the host. A bag on an idle system so takes its batch's
  latency, and a bag whose reads wait behind other bags' in a unit's queue does not count that wait. Lines the
  buffer serves (or that share a read in flight) start the bag only when it reads nothing downstream: a unit
  serves them the moment the command arrives, ahead of the reads it has queued.

Abstracted away: the processing core's instruction stream and its programming interface, coherence with host
caches of the tables (read-only inference), the switch's management CPU, page migration by the hotness
detector (hot rows are profiled before the run), congestion between PIFS reads and other hosts' traffic beyond
sharing the same links (they share credits and wires).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import simpy

from archsim.core.component import Component
from archsim.core.pooling import HIT, MERGED, Datapath, LineBuffer
from archsim.core.port import MemoryPort, call_at
from archsim.core.request import GatherReduce, MemRequest, Message
from archsim.core.sim import Simulator
from archsim.cxl.flit import M2S_RWD
from archsim.cxl.link import Link
from archsim.cxl.spec import PIFSSpec, ns_to_ps
from archsim.cxl.switch import Switch
from archsim.system.table_map import TableMap
from archsim.workload.spec import DTYPE_BYTES

__all__ = ["PIFS", "PIFSHostPort", "HostFront"]


#: where the switch routes PIFS commands: an address range no memory uses (the units' control window)
COMMAND_WINDOW = (1 << 62, (1 << 62) + 4096)


class HostFront:
    """A host's side of the units: its link into the switch (and the port that waits for the link's credits)
    and its on-chip path to the root port."""

    __slots__ = ("link", "port", "to_ps", "from_ps")

    def __init__(self, link: Link, to_ps: int, from_ps: int) -> None:
        self.link = link
        self.port = MemoryPort(link)
        self.to_ps = to_ps
        self.from_ps = from_ps


class _DeviceReducer:
    """A PIFS unit inside an expander (``location: expander``) as the expander's reducer."""

    def __init__(self, owner: PIFS, unit: _PortUnit) -> None:
        self.owner = owner
        self.unit = unit

    def accepts_table(self, t: int) -> bool:
        return self.owner.accepts_table(t)

    def submit(self, gr: GatherReduce) -> simpy.Event:
        return self.owner.reduce_in_device(self.unit, gr)


class _CommandFace(Component):
    """The units' output inside the switch: bag commands (:class:`Message`) routed here by the crossbar."""

    def __init__(self, owner: PIFS) -> None:
        super().__init__(owner.sim, f"{owner.name}.commands")
        self.owner = owner

    def submit(self, msg: Message) -> simpy.Event:
        msg.t_submit = self.env.now
        if msg.done is None:
            msg.done = self.env.event()
        gr, front, flight = msg.payload
        self.owner.dispatch(gr, front, flight, msg)
        return msg.done


class _Bag:
    __slots__ = ("gr", "parts_left", "t_ready", "front", "flight", "t_first", "t_hit", "msg")

    def __init__(self, gr: GatherReduce, parts: int, front: HostFront, flight: int = 0) -> None:
        self.gr = gr
        self.parts_left = parts
        self.t_ready = 0
        self.front = front
        self.flight = flight  # idle flight of the bag's command from the host to the switch's units
        self.t_first = 1 << 62  # first read issued downstream, referred back to the host (module docstring)
        self.t_hit = 1 << 62  # first line served by the buffer (or by a read in flight), referred back
        self.msg: Message | None = None  # the command message the pooled vector answers


class _Part:
    """One port unit's share of a bag: ``left`` lines still to pool, each ``elems`` adds in ``pool_ps``;
    ``flight``: the idle flight of its command from the host to its unit."""

    __slots__ = ("bag", "left", "unit", "pool_ps", "elems", "flight")

    def __init__(self, bag: _Bag, left: int, unit: _PortUnit, pool_ps: int, elems: int) -> None:
        self.bag = bag
        self.left = left
        self.unit = unit
        self.pool_ps = pool_ps
        self.elems = elems
        self.flight = bag.flight

    def issued(self, t: int) -> None:
        """One of the part's reads was taken downstream at ``t``."""
        bag = self.bag
        t -= self.flight
        if t < bag.t_first:
            bag.t_first = t

    def served(self, t: int) -> None:
        """Lines of the part were served at ``t`` without a read of their own (buffer hits, shared reads)."""
        bag = self.bag
        t -= self.flight
        if t < bag.t_hit:
            bag.t_hit = t


class _PortUnit:
    """The processing unit of one downstream port: reads through the port's link, pools serially."""

    def __init__(self, owner: PIFS, index: int, link: Link, in_device: bool) -> None:
        self.owner = owner
        self.index = index
        self.link = link
        # in the switch: reads cross the port's link; in the device (NDP in the expander): straight to it
        self.port = link.port if in_device else MemoryPort(link)
        # the device behind the port's link when it reduces bags itself (an expander with NMP DIMMs)
        dev = getattr(link.port, "mem", None)
        self.device = dev if getattr(dev, "reducer", None) is not None else None
        self.bags = 0  # sub-bags handed to the device
        self.datapath = Datapath(owner.spec.clock_mhz, owner.spec.lanes)
        self.lines = 0
        self.inflight = 0  # reads sent and not yet back (the least-loaded port choice looks at it)

    def read(self, lines: list[int], part: _Part, cacheable: list[bool], where: list[int] | None = None) -> None:
        """Pool ``lines`` (the rows' addresses, the buffer's keys) for ``part``; ``where``: the addresses to
        read them from when they differ (a hot row's copy on this port's expander)."""
        owner = self.owner
        buf = owner.buffer
        hits = 0
        shared = 0
        for k, (a, cab) in enumerate(zip(lines, cacheable)):
            src = a if where is None else where[k]
            if buf is not None and cab:
                r = buf.lookup(a, part)
                if r == HIT:
                    hits += 1
                    continue
                if r == MERGED:  # being read for an earlier bag: share that read
                    shared += 1
                    continue
                self.lines += 1
                self.inflight += 1
                self.port.send(MemRequest(src, False, 64, tag=(part, a)), self._on_fill)
                continue
            self.lines += 1
            self.inflight += 1
            self.port.send(MemRequest(src, False, 64, tag=part), self._on_data)
        if hits or shared:
            part.served(owner.env.now)
        if hits:
            call_at(owner.env, owner.env.now + owner.hit_ps, self._on_hits, (part, hits))

    def _on_data(self, ev: simpy.Event) -> None:
        self.inflight -= 1
        req = ev.value
        req.tag.issued(req.t_submit)  # taken by the link (or the expander) then
        self.pool(req.tag, self.owner.env.now, 1)

    def _on_fill(self, ev: simpy.Event) -> None:
        self.inflight -= 1
        owner = self.owner
        part, a = ev.value.tag
        part.issued(ev.value.t_submit)
        waiters = owner.buffer.fill(a)
        now = owner.env.now
        self.pool(part, now, 1)
        for other in waiters:
            other.unit.pool(other, now, 1)

    def _on_hits(self, ev: simpy.Event) -> None:
        part, n = ev.value
        self.pool(part, self.owner.env.now, n)

    def pool(self, part: _Part, now: int, n: int) -> None:
        t = self.datapath.pool(now, n, part.pool_ps, part.elems)
        part.left -= n
        if part.left == 0:
            self.owner.partial_ready(part.bag, t, self)


class PIFS(Component):
    """PIFS-Rec units in ``switch``: accept ``GatherReduce`` for tables behind it (see the module docstring)."""

    def __init__(self, sim: Simulator, spec: PIFSSpec, switch: Switch, host_link: Link,
                 down_links: Sequence[Link], table_map: TableMap, to_host_ps: int, from_host_ps: int,
                 name: str = "pifs") -> None:
        """``table_map``: where the tables' rows live (host and fabric addresses), which are hot."""
        super().__init__(sim, name)
        self.spec = spec
        self.switch = switch
        self.host_link = host_link
        self.front = HostFront(host_link, to_host_ps, from_host_ps)
        if spec.location == "switch":  # commands reach the units through the switch's crossbar
            switch.attach(_CommandFace(self), [COMMAND_WINDOW], "pifs")
        self.table_map = tm = table_map
        self.tables = tm.tables
        self.in_device = spec.location == "expander"
        self.units = [_PortUnit(self, i, lk, self.in_device) for i, lk in enumerate(down_links)]
        if self.in_device:  # each unit sits in its expander: the expander's controller hands it the shares
            for unit in self.units:
                unit.link.port.mem.reducer = _DeviceReducer(self, unit)
        self.to_ps = to_host_ps
        self.from_ps = from_host_ps
        self.hit_ps = ns_to_ps(spec.buffer_hit_ns)
        self.buffer = (LineBuffer(spec.buffer_kib * 1024, spec.buffer_ways)
                       if spec.buffer_kib else None)
        self.admit_hot = spec.buffer_admit == "hot"
        if (self.admit_hot or spec.replicate_hot) and tm.hot is None:
            raise ValueError("pifs.buffer_admit hot and replicate_hot need the profiled hot rows of each table")
        self.spread = 0  # hot-row reads sent to a copy
        self.combiner = Datapath(spec.clock_mhz, spec.combine_lanes)  # adds the ports' partial sums
        self.bags = 0
        self.partials = 0
        self.result_bytes = 0
        self.command_bytes = 0
        # which tables the units can reach: every row of the table routes to one of the switch's ports
        self._reach = []
        for t in range(len(self.tables)):
            try:
                for a in tm.extent(t, device=True):
                    switch._route_out(a)
                self._reach.append(True)
            except ValueError:
                self._reach.append(False)
        self.replicas: list[int] | None = None
        if spec.replicate_hot:
            self._place_replicas(switch)
        # the compiled engine (archsim/cxl/pifs_engine.py), once the host attaches it: bags' data at flush()
        self._engine = None
        self._fabric = None
        self._pending: list[GatherReduce] = []
        self._pending_first = 0

    def attach_engine(self) -> bool:
        """Run the units and the fabric on the compiled engine if it applies (called by the host whose
        near-data component this is: it then calls :meth:`flush` once it has sent a batch's bags)."""
        if self._engine is None:
            from archsim.cxl import pifs_engine

            self._engine = pifs_engine.attach(self)
        return self._engine is not None

    def flush(self) -> None:
        """Hand the compiled engine the dispatch data of the bags submitted since the last flush."""
        if self._pending:
            from archsim.cxl.pifs_engine import dispatch_data

            grs, self._pending = self._pending, []
            self._engine.pifs_data(self._pending_first, *dispatch_data(self, grs))

    def _engine_done(self, gr: GatherReduce, t_issue: int) -> None:
        """:meth:`_done` of a bag the compiled engine pooled (its start stamped at the result, as _stamp)."""
        gr.t_issue = t_issue
        gr.t_done = self.env.now
        gr.done.succeed(gr)

    def _engine_sync(self) -> None:
        """Take the compiled engine's counts into the units, the combiner, the buffer and the fabric."""
        if self._engine is None:
            return
        from archsim.system.host_engine import fabric_sync

        partials, self.result_bytes, self.command_bytes, busy, adds, merged, units = self._engine.pifs_take()
        self.partials = partials
        self.combiner.busy_until, self.combiner.adds = busy, adds
        if self.buffer is not None:
            self.buffer.merged = merged
        for u, (lines, uadds, ubusy, inflight) in zip(self.units, units, strict=False):
            u.lines, u.datapath.adds, u.datapath.busy_until, u.inflight = lines, uadds, ubusy, inflight
        fabric_sync(self._engine, *self._fabric)

    def _place_replicas(self, switch: Switch) -> None:
        """Copies of each table's hot rows at the top of every port's expander window (embedding spreading):
        ``replicas[o]`` is the base address of the copies on port o, ``rep_base[t]`` a table's offset in them."""
        tm = self.table_map
        self.rep_base = []
        total = 0
        for t in range(len(self.tables)):
            total = -(-total // 64) * 64
            self.rep_base.append(total)
            total += len(tm.hot_rows(t)) * tm.stride(t)
        region = -(-total // 4096) * 4096
        ports = len(self.units)
        used_top = [0] * ports
        for t in range(len(self.tables)):
            for a in tm.extent(t, device=True):
                o = switch._route_out(a)
                used_top[o] = max(used_top[o], a + 1)
        self.replicas = []
        for o, out in enumerate(switch._outputs[:ports]):
            hi = max(h for _lo, h in out.ranges)
            base = hi - region
            if tm.translate is None and used_top[o] > base:
                raise ValueError(f"pifs.replicate_hot: no room for {region} bytes of hot-row copies above the "
                                 f"tables on {switch.name} port {switch._out_port[o]}")
            self.replicas.append(base)
        self.replica_bytes = region

    def accepts_table(self, t: int) -> bool:
        return self._reach[t]

    def elems_per_line(self, gr: GatherReduce) -> int:
        return max(1, min(gr.row_bytes, 64) // DTYPE_BYTES[gr.dtype])

    # ------------------------------------------------------------------ face
    def submit(self, gr: GatherReduce, front: HostFront | None = None) -> simpy.Event:
        """Pool bag ``gr`` for the host behind ``front`` (default: the host the units were built with)."""
        env = self.env
        gr.t_submit = env.now
        if gr.done is None:
            gr.done = env.event()
        self.bags += 1
        if self._engine is not None and (front is None or front is self.front):
            idx = self._engine.pifs_submit(gr, env.now)
            if not self._pending:
                self._pending_first = idx
            self._pending.append(gr)
            return gr.done
        front = front or self.front
        call_at(env, env.now + front.to_ps, self._command, (gr, front))
        return gr.done

    def _command(self, ev: simpy.Event) -> None:
        """The bag's command leaves the host's root port: down the host link (a message that takes a credit),
        through the switch's pipeline and crossbar to the units; the pooled vector is its response."""
        gr, front = ev.value
        if self.in_device:  # BEACON-like: the host sends each device its share
            self._device_commands(gr, front)
            return
        lk = front.link
        nbytes = self.spec.command_header_bytes + len(gr.rows) * self.spec.index_bytes
        self.command_bytes += nbytes
        n = -(-nbytes // 64)
        # the command's idle flight to the units: host path, host link, the switch's pipeline
        flight = front.to_ps + 2 * lk.port_ps + lk.m2s.alone_ps(M2S_RWD, n) + lk.phy_ps + self.switch.fwd_ps
        msg = Message(COMMAND_WINDOW[0], nbytes, gr.dim * 4, (gr, front, flight), "command", "pooled")
        front.port.send(msg, self._pooled_back)

    def _pooled_back(self, ev: simpy.Event) -> None:
        """The pooled vector crossed the host link: on to the core."""
        gr, front, _ = ev.value.payload
        call_at(self.env, self.env.now + front.from_ps, self._done, gr)

    def _device_commands(self, gr: GatherReduce, front: HostFront) -> None:
        """BEACON-like units in the expanders: the host splits the bag by the device that holds each row and
        sends each device its rows as a message (host link, switch crossbar, the port's link), whose response
        is the device's partial sum; the host adds the partial sums as they arrive."""
        tm = self.table_map
        rows = np.asarray(gr.rows, dtype=np.int64)
        addrs, counts = tm.line_addresses(gr.table, rows, device=True)
        per_row = counts if counts is not None else np.full(len(rows), tm.lines_per_row(gr.table))
        first = addrs[np.cumsum(per_row) - per_row]
        row_port = self.switch.route_outputs(first)
        ports = np.unique(row_port)
        bag = _Bag(gr, len(ports), front)
        lk = front.link
        for o in ports.tolist():
            sel = row_port == o
            nbytes = self.spec.command_header_bytes + int(sel.sum()) * self.spec.index_bytes
            self.command_bytes += nbytes
            n = -(-nbytes // 64)
            dl = self.units[o].link
            # idle flight: host path, host link, switch, the port's link, the device's controller
            flight = (front.to_ps + 2 * lk.port_ps + lk.m2s.alone_ps(M2S_RWD, n) + lk.phy_ps + self.switch.fwd_ps
                      + 2 * dl.port_ps + dl.m2s.alone_ps(M2S_RWD, n) + dl.phy_ps + dl.port.mem.controller_ps)
            sub = GatherReduce(gr.table, rows[sel].tolist(), gr.dim, gr.dtype, gr.row_bytes, tag=flight)
            msg = Message(int(first[sel][0]), nbytes, gr.dim * 4, sub, "command", "partial", tag=bag)
            front.port.send(msg, self._device_partial_at_host)

    def _device_partial_at_host(self, ev: simpy.Event) -> None:
        msg = ev.value
        bag, sub = msg.tag, msg.payload
        self.partials += 1
        self.result_bytes += sub.dim * 4
        t = self.env.now + bag.front.from_ps
        if t > bag.t_ready:
            bag.t_ready = t
        if 0 <= sub.t_issue < bag.t_first:
            bag.t_first = sub.t_issue
        bag.parts_left -= 1
        if bag.parts_left == 0:
            self._stamp(bag)
            call_at(self.env, bag.t_ready, self._done, bag.gr)

    def reduce_in_device(self, unit: _PortUnit, gr: GatherReduce) -> simpy.Event:
        """A device's share (``gr``, handed on by its expander's controller): its unit reads the rows from the
        expander's DRAM and pools them; the event fires with the partial sum ready."""
        env = self.env
        gr.t_submit = env.now
        if gr.done is None:
            gr.done = env.event()
        share = _Bag(gr, 1, self.front, gr.tag.payload.tag)  # flight: the share's command from the host
        addrs, _ = self.table_map.line_addresses(gr.table, np.asarray(gr.rows, dtype=np.int64), device=True)
        elems = self.elems_per_line(gr)
        part = _Part(share, len(addrs), unit, unit.datapath.line_ps(elems), elems)
        unit.read(addrs.tolist(), part, [False] * len(addrs))
        return gr.done

    def dispatch(self, gr: GatherReduce, front: HostFront, flight: int, msg: Message | None = None) -> None:
        """The command reached the units (``msg``: it came as a message, answered with the pooled vector)."""
        rows = np.asarray(gr.rows, dtype=np.int64)
        tm = self.table_map
        addrs, counts = tm.line_addresses(gr.table, rows, device=True)
        lpr = tm.lines_per_row(gr.table)
        per_row = counts if counts is not None else np.full(len(rows), lpr)
        cab = np.ones(len(addrs), dtype=bool)
        if self.admit_hot:
            cab = np.repeat(tm.is_hot(gr.table, rows), per_row)
        out_line = self.switch.route_outputs(addrs)
        where = None
        if self.replicas is not None:  # hot rows: read the copy on the port with the fewest reads in flight
            hot = tm.hot_rows(gr.table)
            hmask = tm.is_hot(gr.table, rows)
            if hmask.any():
                where = addrs.copy()
                load = [u.inflight for u in self.units]
                stride = tm.stride(gr.table)
                starts = np.cumsum(per_row) - per_row
                for r in np.flatnonzero(hmask).tolist():
                    o = min(range(len(load)), key=load.__getitem__)
                    n = int(per_row[r])
                    load[o] += n
                    s0 = int(starts[r])
                    copy = self.replicas[o] + self.rep_base[gr.table] + int(np.searchsorted(hot, rows[r])) * stride
                    out_line[s0:s0 + n] = o
                    where[s0:s0 + n] = copy + np.arange(n) * 64
                self.spread += int(hmask.sum())
        ports = np.unique(out_line)
        bag = _Bag(gr, len(ports), front, flight)
        bag.msg = msg
        elems = self.elems_per_line(gr)
        pool_ps = self.units[0].datapath.line_ps(elems)
        addr_l = addrs.tolist()
        cab_l = cab.tolist()
        where_l = where.tolist() if where is not None else None
        row_port = None
        for o in ports.tolist():
            unit = self.units[o]
            if unit.device is not None and unit.device.accepts_table(gr.table):
                if row_port is None:
                    row_port = out_line[np.cumsum(per_row) - per_row]
                self._to_device(unit, bag, gr, rows[row_port == o])
                continue
            sel = np.flatnonzero(out_line == o).tolist()
            part = _Part(bag, len(sel), unit, pool_ps, elems)
            lines, cab_o = [addr_l[i] for i in sel], [cab_l[i] for i in sel]
            src = [where_l[i] for i in sel] if where_l is not None else None
            unit.read(lines, part, cab_o, src)

    def _to_device(self, unit: _PortUnit, bag: _Bag, gr: GatherReduce, rows: np.ndarray) -> None:
        """The port's rows of the bag go as a command over its link (a message: credits, flits) to the device,
        whose units gather and pool them (NMP in the expander's DIMMs); the device's partial sum is the
        message's response, up the link to the combiner."""
        lk = unit.link
        nbytes = self.spec.command_header_bytes + len(rows) * self.spec.index_bytes
        n = -(-nbytes // 64)
        flight = bag.flight + 2 * lk.port_ps + lk.m2s.alone_ps(M2S_RWD, n) + lk.phy_ps
        sub = GatherReduce(gr.table, rows.tolist(), gr.dim, gr.dtype, gr.row_bytes)
        unit.bags += 1
        msg = Message(unit.device.base, nbytes, gr.dim * 4, sub, "command", "partial", tag=(bag, flight))
        unit.port.send(msg, self._device_done)

    def _device_done(self, ev: simpy.Event) -> None:
        msg = ev.value
        sub = msg.payload
        bag, flight = msg.tag
        if sub.t_issue >= 0:  # the device's first read, referred back to the host like the units' reads
            t = sub.t_issue - flight
            if t < bag.t_first:
                bag.t_first = t
        self.partial_ready(bag, self.env.now)

    def partial_ready(self, bag: _Bag, t_ready: int, unit: _PortUnit | None = None) -> None:
        """A unit finished its share of ``bag`` at ``t_ready``: the combiner adds it (in the switch), or (units
        in the devices) the partial sum travels up its link, the switch and the host link to the host."""
        if self.in_device:  # the device's share is pooled: its expander answers the share's command
            call_at(self.env, t_ready, self._share_done, bag)
            return
        gr = bag.gr
        t = self.combiner.pool(t_ready, 1, self.combiner.line_ps(gr.dim), gr.dim)
        self.partials += 1
        if t > bag.t_ready:
            bag.t_ready = t
        bag.parts_left -= 1
        if bag.parts_left == 0:
            call_at(self.env, bag.t_ready, self._result, bag)

    def _share_done(self, ev: simpy.Event) -> None:
        share = ev.value
        gr = share.gr
        t = share.t_first if share.t_first < 1 << 62 else share.t_hit
        gr.t_issue = t if t < 1 << 62 else -1
        gr.t_done = self.env.now
        gr.done.succeed(gr)

    def _result(self, ev: simpy.Event) -> None:
        """The pooled vector is ready: the command's response (the switch's pipeline, then the host link's data
        responses carry it to the host)."""
        bag = ev.value
        self.result_bytes += bag.gr.dim * 4  # pooled in fp32
        self._stamp(bag)
        msg = bag.msg
        msg.t_done = self.env.now
        msg.done.succeed(msg)

    @staticmethod
    def _stamp(bag: _Bag) -> None:
        """Every read of the bag is back: its start (its first read taken downstream; its first line served by
        the buffer when it read nothing downstream), referred back to the host, goes on the bag."""
        gr = bag.gr
        t = bag.t_first if bag.t_first < 1 << 62 else bag.t_hit
        gr.t_issue = t if t > gr.t_submit else gr.t_submit

    def _done(self, ev: simpy.Event) -> None:
        gr = ev.value
        gr.t_done = self.env.now
        gr.done.succeed(gr)

    # ------------------------------------------------------------------ results
    def finalize(self, end_ps: int) -> None:
        self._engine_sync()
        s = self.stats
        adds = sum(u.datapath.adds for u in self.units)
        for k, v in (("bags", self.bags), ("partials", self.partials), ("lines", sum(u.lines for u in self.units)),
                     ("adds", adds), ("command_bytes", self.command_bytes), ("result_bytes", self.result_bytes),
                     ("spread_rows", self.spread)):
            s.set(k, v)
        book = self.sim.energy.book
        book(s.full_name, "compute", self.spec.compute_energy_pJ * adds)
        if self.buffer is not None:
            b = self.buffer
            s.set("buffer_hits", b.hits)
            s.set("buffer_misses", b.misses)
            s.set("buffer_merged", b.merged)
            book(s.full_name, "sram", self.spec.buffer_energy_pJ * (b.hits + 2 * b.misses))

    def cache_stats(self) -> dict[str, tuple[int, int]]:
        """The on-switch buffer as ``{name: (lookups served, lookups)}``: served are hits and lookups that
        shared a read in flight (the ``<name>_hit_rate`` column, docs/metrics.md)."""
        self._engine_sync()
        if self.buffer is None:
            return {}
        b = self.buffer
        return {f"{self.name}.buffer": (b.hits + b.merged, b.hits + b.misses)}

    def summary(self, end_ps: int) -> dict[str, float]:
        out = {}
        self._engine_sync()
        for served, looked in self.cache_stats().values():
            out["buffer_hit_rate"] = served / looked if looked else 0.0
        lines = sum(u.lines for u in self.units)
        out["read_GBps"] = lines * 64 / (end_ps * 1e-3) if end_ps else 0.0
        return out


class PIFSHostPort:
    """Another host's door to a switch's PIFS units (hosts pooling the fabric share the units, the buffer and
    the combiner; each sends commands and gets results over its own link)."""

    def __init__(self, pifs: PIFS, front: HostFront) -> None:
        self.pifs = pifs
        self.front = front

    def accepts_table(self, t: int) -> bool:
        return self.pifs.accepts_table(t)

    def submit(self, gr: GatherReduce) -> simpy.Event:
        return self.pifs.submit(gr, self.front)

    def finalize(self, end_ps: int | None = None) -> None:
        """Nothing of its own: the shared units count this host's bags."""
