"""The embedding operator: runs batches of bags on the system, records per-bag and per-batch latency.

For each batch, tables are processed in order and within a table bags in sample order (EmbeddingBag's loop
nest). A bag becomes a :class:`GatherReduce`; if a near-data component accepts it (``near_data.accepts``:
an NMP unit, a switch processing unit), it goes there and only its completion comes back; otherwise the host
gathers it: the layout turns its rows into cache-line reads that the cores issue and pool. Batches run one
after another: batch ``i + 1`` starts when every bag of batch ``i`` is pooled (inference serving).

Latency of a bag (the same definition on every system, docs/metrics.md): from the issue of its first memory
read to its pooled vector at the host. On the host that is a core's first line load of the bag (the bag's wait
for a free core does not count) to the end of the core's pooling; a bag pooled near the data starts when the
near-data component issued its first read of the bag, referred back to the host by the idle flight of the
command that asked for it (``GatherReduce.t_issue``; the hand-off ``t_submit`` when the component sets none),
and ends when the pooled vector is back. Latency of a batch: from its start to its last bag's end.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import simpy

from archsim.cache.component import Cache
from archsim.core.component import Component
from archsim.core.pooling import Datapath
from archsim.core.port import Light, call_at
from archsim.core.request import GatherReduce, MemRequest
from archsim.core.sim import Simulator, host_engine_name
from archsim.core.stats import Histogram
from archsim.system.host import DelayPath, HostSpec
from archsim.system.table_map import TableMap
from archsim.workload.spec import DTYPE_BYTES


class _Bag:
    __slots__ = ("t_start", "lines_left", "batch")

    def __init__(self, lines: int, batch: _BatchState) -> None:
        self.t_start = -1
        self.lines_left = lines
        self.batch = batch


class _BatchState:
    __slots__ = ("index", "t_start", "t_end", "bags_left", "done")

    def __init__(self, index: int, t_start: int, bags: int, done: simpy.Event) -> None:
        self.index = index
        self.t_start = t_start
        self.t_end = t_start
        self.bags_left = bags
        self.done = done


class Core:
    """One core: a stream of bags' line addresses, ``fill_buffers`` misses in flight, serial pooling."""

    __slots__ = ("op", "idx", "free", "addrs", "pos", "end", "bag", "datapath", "queue", "qpos", "pool_ps")

    def __init__(self, op: EmbeddingOperator, idx: int, fill_buffers: int) -> None:
        self.op = op
        self.idx = idx
        self.free = fill_buffers
        self.addrs: list[int] = []
        self.pos = 0
        self.end = 0
        self.bag: _Bag | None = None
        self.datapath = Datapath(op.host.clock_mhz, op.host.lanes)  # the core's SIMD pooling
        self.queue: list[tuple[_Bag, list[int], int, int, int]] = []  # static schedule: this core's bags
        self.qpos = 0
        self.pool_ps = 0

    def pump(self) -> None:
        """Issue lines while fill buffers are free and work remains."""
        op = self.op
        submit = op.mem.submit
        while self.free > 0:
            if self.pos >= self.end:
                nxt = op.next_bag(self)
                if nxt is None:
                    return
                bag, self.addrs, self.pos, self.end, self.pool_ps = nxt
                bag.t_start = op.env.now
                self.bag = bag
            req = MemRequest(self.addrs[self.pos], False, op.line_bytes, tag=self.bag)
            self.pos += 1
            self.free -= 1
            submit(req).callbacks.append(self.on_line)

    def on_line(self, ev: simpy.Event) -> None:
        req = ev.value
        bag = req.tag
        self.free += 1
        now = self.op.env.now
        self.op.line_latency.record(now - req.t_submit)
        t = self.datapath.pool(now, 1, self.pool_ps, 0)  # adds counted per batch (pool_adds)
        bag.lines_left -= 1
        if bag.lines_left == 0:
            self.op.bag_done(bag, t)
        self.pump()

    # the fast path (issue #15): the lines go to the LLC as Light completions (no MemRequest, no simpy.Event),
    # the line latencies are recorded in blocks; same events, same order, same results as pump/on_line
    def pump_light(self) -> None:
        """:meth:`pump` through ``op.llc.read_light``."""
        op = self.op
        read = op.llc_read
        size = op.line_bytes
        new = Light.__new__
        cb = self.on_line_light
        while self.free > 0:
            if self.pos >= self.end:
                nxt = op.next_bag(self)
                if nxt is None:
                    return
                bag, self.addrs, self.pos, self.end, self.pool_ps = nxt
                bag.t_start = op.env._now
                self.bag = bag
            ev = new(Light)
            ev.callbacks = [cb]
            ev.tag = self.bag
            addr = self.addrs[self.pos]
            self.pos += 1
            self.free -= 1
            read(addr, size, ev)

    def on_line_light(self, ev: Light) -> None:
        """:meth:`on_line` of a :meth:`pump_light` line."""
        bag = ev.tag
        self.free += 1
        op = self.op
        now = op.env._now
        buf = op.line_lat_buf
        buf.append(now - ev.t_submit)
        if len(buf) >= 65536:
            op.flush_line_latency()
        dp = self.datapath  # Datapath.pool(now, 1, pool_ps, 0), inlined
        t = dp.busy_until
        t = (t if t > now else now) + self.pool_ps
        dp.busy_until = t
        bag.lines_left -= 1
        if bag.lines_left == 0:
            op.bag_done(bag, t)
        self.pump_light()


class EmbeddingOperator:
    """Runs a workload's batches on ``mem`` (the host's memory path) with the host's cores."""

    def __init__(self, sim: Simulator, host: HostSpec, mem: Component, table_map: TableMap,
                 near_data: Component | None = None, name: str = "host") -> None:
        """``table_map``: where the workload's tables live (their rows' addresses and lines)."""
        self.sim = sim
        self.env = sim.env
        self.host = host
        self.mem = mem
        self.table_map = table_map
        self.tables = tables = table_map.tables
        self.near_data = near_data
        self.line_bytes = table_map.line_bytes
        self.stats = sim.stats.child(name)
        self.cores = [Core(self, i, host.fill_buffers) for i in range(host.cores)]
        line = Datapath(host.clock_mhz, host.lanes)
        self.pool_ps = []  # per table: pooling time of one line
        self.pool_ops = []  # per table: fp32 adds per line
        for t in tables:
            elems = min(t.row_bytes, self.line_bytes) // DTYPE_BYTES[t.dtype]
            elems = max(1, elems)
            self.pool_ps.append(line.line_ps(elems))
            self.pool_ops.append(elems)
        self.bag_latency = Histogram()
        self.line_latency = Histogram()  # issue to data return of each line the cores load
        self.batch_latency = Histogram()
        self.lookups = 0
        self.bags = 0
        self.batches = 0
        self.lines = 0
        self.pool_adds = 0
        self.near_data_bags = 0
        # the fast path of the cores' line loads into an LLC (issue #15; ARCHSIM_HOST_ENGINE=python: the
        # reference pump/on_line with a MemRequest and a simpy.Event per line)
        self.llc_read = None
        self.line_lat_buf: list[int] = []  # line latencies not yet in line_latency (fast path)
        if host_engine_name() == "fast" and (
                type(mem) is Cache and vars(mem).get("submit", mem._submit_read_only) == mem._submit_read_only
                or type(mem) is DelayPath and "submit" not in vars(mem)):
            self.llc_read = mem.read_light
        self._work: list = []
        # the compiled host engine (issue #15: cores, LLC and port inside the DRAM loop), where it applies
        self._hloop = None
        self._fabric = None  # the compiled CXL path's Python components (host_engine._attach_fabric)
        self._host_st: _BatchState | None = None
        if self.llc_read is not None:
            from archsim.system import host_engine

            self._hloop = host_engine.attach(self)
        # a near-data component with a compiled engine (archsim/nmp/engine.py) takes a batch's bags, then a flush
        self._near_flush = None
        if near_data is not None and host_engine_name() == "fast" and getattr(near_data, "attach_engine", None):
            if near_data.attach_engine():
                self._near_flush = near_data.flush
        self._wpos = 0
        self.end_ps = 0

    # ----------------------------------------------------------------------------------------- batches
    def run(self, batches: Iterable, progress: Callable[[int, int], None] | None = None):
        """A SimPy process body: run ``batches`` one after another."""
        for batch in batches:
            yield self._start_batch(batch)
            self.batches += 1
            if progress is not None:
                progress(self.batches, self.env.now)
        self.end_ps = self.env.now

    def _start_batch(self, batch) -> simpy.Event:
        env = self.env
        done = env.event()
        work = []
        nbags = 0
        near = self.near_data
        for t, (idx, off) in enumerate(zip(batch.indices, batch.offsets)):
            nb = len(off) - 1
            nbags += nb
            self.lookups += int(off[-1] - off[0])
            if near is not None and near.accepts_table(t):
                work.append(("near", t, idx, off))
                continue
            addrs, counts = self.table_map.line_addresses(t, np.asarray(idx[off[0]:off[-1]]))
            lpr = self.table_map.lines_per_row(t)
            if counts is None:
                line_off = (np.asarray(off) - off[0]) * lpr
            else:
                line_off = np.concatenate(([0], np.cumsum(counts)))[np.asarray(off) - off[0]]
            self.lines += int(line_off[-1])
            self.pool_adds += int(line_off[-1]) * self.pool_ops[t]
            if self._hloop is not None:
                work.append(("host", t, addrs, line_off))
                continue
            work.append(("host", t, addrs.tolist(), line_off.tolist()))
        self.bags += nbags
        st = _BatchState(batch.index, env.now, nbags, done)
        if self._hloop is not None:
            return self._start_host_engine(work, st)
        # the bag list: (bag, addrs, start, end, pool_ps) in loop-nest order
        bags: list = []
        for kind, t, a, lo in work:
            if kind == "near":
                self._send_near_bags(t, a, lo, st)
                continue
            ps = self.pool_ps[t]
            for b in range(len(lo) - 1):
                bag = _Bag(lo[b + 1] - lo[b], st)
                if bag.lines_left == 0:
                    st.bags_left -= 1
                    continue
                bags.append((bag, a, lo[b], lo[b + 1], ps))
        if self._near_flush is not None:
            self._near_flush()
        if self.host.bag_schedule == "static":
            n = len(self.cores)
            for c in self.cores:
                c.queue = bags[c.idx::n]
                c.qpos = 0
            self._work = []
        else:
            self._work = bags
        self._wpos = 0
        if st.bags_left == 0:
            done.succeed()
            return done
        for c in self.cores:
            if self.llc_read is not None:
                c.pump_light()
            else:
                c.pump()
        return done

    def _send_near_bags(self, t: int, idx, off, st: _BatchState) -> None:
        """Hand table ``t``'s bags of the batch to the near-data component."""
        info = self.tables[t]
        for b in range(len(off) - 1):
            gr = GatherReduce(t, idx[off[b]:off[b + 1]], info.dim, info.dtype, info.row_bytes, tag=st)
            self._send_near(gr)

    def _start_host_engine(self, work: list, st: _BatchState) -> simpy.Event:
        """The batch on the compiled host engine: near-data tables as on the Python path, then the host's bags as
        arrays. The engine's bags count as one in ``st.bags_left`` (it reports when its last bag ends: at that
        moment the Python path would have counted its last one), so a batch ends when that and every near-data
        bag have."""
        from archsim.system.host_engine import batch_arrays

        host = []
        for kind, t, a, lo in work:
            if kind == "near":
                self._send_near_bags(t, a, lo, st)
            else:
                host.append((t, a, lo))
        if self._near_flush is not None:
            self._near_flush()
        addrs, lo, hi, pps, empty = batch_arrays(host, self.pool_ps)
        st.bags_left -= empty + max(len(lo) - 1, 0)
        if st.bags_left == 0:
            st.done.succeed()
        elif len(lo):
            self._host_st = st
            self._hloop.host_batch(addrs, len(addrs), lo, hi, pps, len(lo))
        return st.done

    def next_bag(self, core: Core):
        if self.host.bag_schedule == "static":
            if core.qpos >= len(core.queue):
                return None
            core.qpos += 1
            return core.queue[core.qpos - 1]
        if self._wpos >= len(self._work):
            return None
        self._wpos += 1
        return self._work[self._wpos - 1]

    def _host_batch_end(self, t_end: int) -> None:
        """The compiled engine's last bag of the batch ended at ``t_end``: ``_bag_finished`` of that bag."""
        self._bag_finished(self._host_st, t_end)

    def host_sync(self) -> None:
        """Take what the compiled engine gathered: latencies into the histograms, the LLC's and its port's
        counters into those objects."""
        loop = self._hloop
        if loop is None:
            return
        lines, bags, accesses, merged, sent, stalled = loop.host_take()
        if lines:
            self.line_latency.record_array(np.frombuffer(lines, dtype=np.int64))
        if bags:
            self.bag_latency.record_array(np.frombuffer(bags, dtype=np.int64))
        cache = self.mem
        cache.accesses += accesses
        cache.merged += merged
        cache.port.sent += sent
        cache.port.stalled += stalled
        if self._fabric is not None:
            from archsim.system.host_engine import fabric_sync

            fabric_sync(loop, *self._fabric)

    def flush_line_latency(self) -> None:
        """Record the buffered line latencies (the fast path's) into ``line_latency``: histograms of the same
        values in any grouping are identical."""
        self.host_sync()
        if self.line_lat_buf:
            self.line_latency.record_array(self.line_lat_buf)
            self.line_lat_buf.clear()

    def bag_done(self, bag: _Bag, t_end: int) -> None:
        self.bag_latency.record(t_end - bag.t_start)
        self._bag_finished(bag.batch, t_end)

    def _bag_finished(self, st: _BatchState, t_end: int) -> None:
        if t_end > st.t_end:
            st.t_end = t_end
        st.bags_left -= 1
        if st.bags_left == 0:
            call_at(self.env, st.t_end, self._batch_done, st)

    def _batch_done(self, ev: simpy.Event) -> None:
        st = ev.value
        self.host_sync()  # the engine's latencies of the batch: memory bounded by one batch
        self.batch_latency.record(st.t_end - st.t_start)
        st.done.succeed()

    # ----------------------------------------------------------------------------------------- near data
    def _send_near(self, gr: GatherReduce) -> None:
        gr.t_submit = self.env.now
        self.near_data_bags += 1
        self.near_data.submit(gr).callbacks.append(self._near_done)

    def _near_done(self, ev: simpy.Event) -> None:
        gr = ev.value
        now = self.env.now
        self.bag_latency.record(now - (gr.t_issue if gr.t_issue >= 0 else gr.t_submit))
        self._bag_finished(gr.tag, now)

    # ----------------------------------------------------------------------------------------- results
    def finalize(self, end_ps: int | None = None) -> None:
        self.flush_line_latency()
        sync = getattr(self.near_data, "_engine_sync", None) if self._near_flush is not None else None
        if sync is not None:  # a compiled near-data engine's counts, before the components below are finalized
            sync()
        s = self.stats
        for k, v in (("lookups", self.lookups), ("bags", self.bags), ("batches", self.batches),
                     ("lines", self.lines), ("near_data_bags", self.near_data_bags),
                     ("pool_adds", self.pool_adds)):
            s.set(k, v)
        s.hists["bag_latency_ps"] = self.bag_latency
        s.hists["batch_latency_ps"] = self.batch_latency
        s.hists["line_latency_ps"] = self.line_latency
        self.sim.energy.book(s.full_name, "compute", self.host.pool_op_energy_pJ * self.pool_adds)
