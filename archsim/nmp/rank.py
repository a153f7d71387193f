"""RecNMP-style rank-level near-memory processing: one unit per rank in the DIMM buffer chip.

The host sends each bag as NMP instructions, one per embedding row and rank holding it, over the channel's
C/A bus (``inst_bits`` at ``ca_bits_per_cycle`` per DRAM clock, serialised per channel). Each rank's unit
issues the DRAM commands to its own rank with its own controller (the same FR-FCFS controller and timing as the
host's), so the ranks of a channel read in parallel: a rank's data moves only between its devices and the
buffer chip, not over the shared channel bus. An optional rank cache (RecNMP's RankCache, LRU) serves lines
read before. The unit pools each arriving line with ``lanes`` fp32 adds per unit clock (a serial datapath per
unit); when its share of the bag is pooled, the partial sum (``dim`` fp32) returns to the host over the
channel's data bus (shared by the channel's ranks, ``nBL`` clocks per burst, serialised in the order partial
sums are ready). The host adds the partial sums of the ranks that held the bag's rows.

Bag latency (the host's ``bag_latency``, docs/metrics.md): from the first of the bag's reads that a unit issues
(the first its rank's controller takes), referred back to the host by an instruction's idle flight
(``to_memory_ns`` and one instruction on the C/A bus), to the bag's pooled vector at the host: a bag on an idle
system takes its batch's latency, and a bag whose instructions or reads wait behind other bags' does not count
that wait. Lines a rank cache serves (or that share a read in flight) start the bag only when it reads nothing
from DRAM: a unit serves them the moment the instruction arrives, ahead of the reads it has queued.

Abstracted away: the instruction packet format beyond its size (RecNMP's fields are not decoded), the host's
scheduling of instructions across channels beyond FIFO per channel, host accesses interleaved with NMP
accesses on the same ranks (all table accesses go through the units).
"""

from __future__ import annotations

from collections import deque

import numpy as np
import simpy

from archsim.core.component import Component
from archsim.core.pooling import HIT, MERGED, Datapath, LineBuffer
from archsim.core.port import MemoryPort, call_at
from archsim.core.request import GatherReduce, MemRequest
from archsim.core.sim import Simulator
from archsim.dram.mapping import AddressMapper
from archsim.dram.memory import DRAMSystem
from archsim.dram.spec import DRAMSpec
from archsim.nmp.spec import NMPSpec
from archsim.system.table_map import TableMap
from archsim.workload.spec import DTYPE_BYTES

_COLUMN = {"RD", "RDA", "WR", "WRA"}


def rank_local_spec(spec: DRAMSpec, level: str = "rank") -> DRAMSpec:
    """The DRAM the units drive: every rank becomes a channel of one rank (its own data path to its units,
    its own controller), same devices, timing and controller settings. Rank r of channel c is channel
    ``c * ranks + r``.

    The constraint table follows where the data goes. ``rank``: unchanged (the rank's data bus is shared by
    its banks). ``bankgroup``: each bank group's unit reads over the group's internal bus, so column-to-column
    spacing at rank and channel level (nCCD_S, the shared bus) is dropped and the bank-group level (nCCD_L)
    kept. ``bank``: each bank's unit reads from its own bank, so the bank-group-level column spacing moves to
    the bank (a bank's column cycle, nCCD_L) and the rank and channel spacing is dropped. Everything else,
    activation and power constraints included (nRRD_S/L, nFAW, nRC, refresh), stays.
    """
    org = spec.org
    local = org.model_copy(update={"channels": org.logical_channels * org.ranks, "pseudo_channels": 1,
                                   "ranks": 1})
    cons = spec.constraints
    if level != "rank":
        out = []
        for c in cons:
            col = set(c.prev) <= _COLUMN and set(c.next) <= _COLUMN
            if col and c.level in ("channel", "rank"):
                continue
            if col and c.level == "bankgroup" and level in ("bank", "cross") and not c.sibling:
                c = c.model_copy(update={"level": "bank"})
            out.append(c)
        cons = out
    # the units' data stays on the DIMM: no off-chip channel I/O energy (the array access is in the IDD terms)
    power = spec.power.model_copy(update={"io_energy_pJ_per_bit": 0.0})
    return spec.model_copy(update={"org": local, "constraints": cons, "power": power})


class _Part:
    """One unit's share of one bag (a rank's, or a bank group's or bank's below it)."""

    __slots__ = ("bag", "left", "ch", "unit", "elems", "up", "pool_ps")

    def __init__(self, bag: _Bag, left: int, ch: int, unit: RankUnit, elems: int,
                 up: _RankPart | None = None) -> None:
        self.bag = bag
        self.left = left
        self.ch = ch
        self.unit = unit
        self.elems = elems
        self.up = up
        self.pool_ps = unit.owner.pool_ps(elems)  # one line's pooling time


class _RankPart:
    """Where partial sums of a bag gather below the host: a rank's buffer chip (``bg`` < 0) when bank-group
    or bank units pool the rank's share, or a bank group's adder (``bg`` >= 0, ``up`` its rank's node)
    when bank units do."""

    __slots__ = ("bag", "left", "ch", "rank", "bg", "up", "t_ready")

    def __init__(self, bag: _Bag, left: int, ch: int, rank: int, bg: int = -1,
                 up: _RankPart | None = None) -> None:
        self.bag = bag
        self.left = left
        self.ch = ch
        self.rank = rank
        self.bg = bg
        self.up = up
        self.t_ready = 0


class _Bag:
    __slots__ = ("gr", "parts_left", "t_end", "t_first", "t_hit")

    def __init__(self, gr: GatherReduce, parts: int) -> None:
        self.gr = gr
        self.parts_left = parts
        self.t_end = 0
        self.t_first = 1 << 62  # when the ranks' controllers took the first of its reads (module docstring)
        self.t_hit = 1 << 62  # when a rank cache first served one of its lines (or a read in flight did)

    def issued(self, t: int) -> None:
        if t < self.t_first:
            self.t_first = t

    def served(self, t: int) -> None:
        if t < self.t_hit:
            self.t_hit = t


class RankUnit:
    """A processing unit (of a rank, or of a bank group or bank when ``sub`` >= 0): a serial pooling datapath
    fed by the rank's controller; rank-level units may have a rank cache."""

    def __init__(self, owner: RankNMP, ch: int, rank: int, port: MemoryPort, sub: int = -1) -> None:
        self.owner = owner
        self.ch = ch
        self.rank = rank
        self.sub = sub
        self.port = port
        spec = owner.spec
        self.datapath = Datapath(spec.clock_mhz, spec.lanes)
        self.lines = 0
        # the rank cache (rank-level units), with the reads in flight that later instructions wait for
        self.cache = (LineBuffer(spec.rank_cache_kib * 1024, spec.rank_cache_ways)
                      if spec.rank_cache_kib and sub < 0 else None)
        self.hit_ps = round(spec.rank_cache_hit_ns * 1000)

    @property
    def adds(self) -> int:
        return self.datapath.adds

    @property
    def merged(self) -> int:
        return self.cache.merged if self.cache is not None else 0

    def read(self, lines: list[int], part: _Part, cacheable: bool = True) -> None:
        """An instruction arrived: read the lines (local addresses) of one embedding row from this rank.

        The lines a unit must read from DRAM go as one request per run of consecutive lines (the
        instruction's row: one queue entry, one column burst per line, completing with its last burst)."""
        cache = self.cache
        if cache is None or not cacheable:  # not cached: read around the rank cache
            self._send_runs(lines, part, self._on_data_uncached if cache is not None else self._on_data)
            return
        hits = 0
        shared = 0
        miss = []
        lookup = cache.lookup
        for a in lines:
            r = lookup(a, part)
            if r == HIT:
                hits += 1
            elif r == MERGED:  # the line is being read for an earlier instruction: wait for it
                shared += 1
            else:
                miss.append(a)
        if hits or shared:  # served by the rank cache or by a read in flight
            part.bag.served(self.owner.env.now)
        if miss:
            self._send_runs(miss, part, self._on_data)
        if hits:  # the row's cached lines are pooled together after one hit latency
            call_at(self.owner.env, self.owner.env.now + self.hit_ps, self._pool, (part, hits))

    def _send_runs(self, lines: list[int], part: _Part, on_data) -> None:
        send = self.port.send
        start = lines[0]
        n = 1
        for a in lines[1:]:
            if a == start + 64 * n:
                n += 1
                continue
            send(MemRequest(start, False, 64 * n, tag=part), on_data)
            start = a
            n = 1
        send(MemRequest(start, False, 64 * n, tag=part), on_data)
        self.lines += len(lines)

    def _on_data_uncached(self, ev: simpy.Event) -> None:
        req = ev.value
        req.tag.bag.issued(req.t_submit)  # the rank's controller took the read then
        self._pool_part(req.tag, self._arrival(req.size >> 6), req.size >> 6, True)

    def _on_data(self, ev: simpy.Event) -> None:
        req = ev.value
        req.tag.bag.issued(req.t_submit)
        n = req.size >> 6
        arrive = self._arrival(n)
        self._pool_part(req.tag, arrive, n, True)
        if self.cache is not None:
            fill = self.cache.fill
            for k in range(n):
                for part in fill(req.addr + 64 * k):
                    self._pool_part(part, arrive, 1)

    def _arrival(self, n: int) -> int:
        """When the last of ``n`` lines read now reaches the unit."""
        owner = self.owner
        arrive = owner.env.now
        if owner.cross and self.sub < 0:
            # cross-level: a rank-level read comes out of a bank and crosses the rank's internal bus, one
            # burst per line, the last line at the earliest when it left the bank
            i = self.ch * owner.ranks + self.rank
            b = owner.burst_ps
            arrive = max(owner.rank_bus_free[i] + n * b, arrive + b)
            owner.rank_bus_free[i] = arrive
        return arrive

    def _pool(self, ev: simpy.Event) -> None:
        part, n = ev.value
        self._pool_part(part, self.owner.env.now, n)

    def _pool_part(self, part: _Part, now: int, n: int = 1, streamed: bool = False) -> None:
        """Pool ``n`` lines of ``part`` on the unit's serial datapath. ``streamed``: the lines are the bursts
        of one request (one row, one bank) whose last arrived at ``now``; the earlier ones came at least a
        same-bank column spacing (``ccd_l_ps``) apart, exactly that on an idle bank, and the datapath pooled
        them while the rest arrived; otherwise all ``n`` are there at ``now``."""
        if streamed:
            t = self.datapath.pool_stream(now, n, part.pool_ps, part.elems, self.owner.ccd_l_ps)
        else:
            t = self.datapath.pool(now, n, part.pool_ps, part.elems)
        part.left -= n
        if part.left == 0:
            self.owner.partial_ready(part, t)


class RankNMP(Component):
    """The NMP-capable memory: channels of ranks, each rank with a unit; accepts ``GatherReduce``."""

    def __init__(self, sim: Simulator, dram: DRAMSpec, spec: NMPSpec, table_map: TableMap | None,
                 name: str = "nmp", window_base: int = 0) -> None:
        """``table_map``: where the tables' rows live and which are hot (None when a memory trace drives the
        system: then no bag comes and the units stay idle, the DIMMs serve the trace's plain reads);
        ``window_base``: the host address of the DIMMs' first byte (units in a CXL expander): row addresses are
        taken relative to it."""
        super().__init__(sim, name)
        self.spec = spec
        self.window_base = window_base
        self.table_map = table_map
        self.tables = table_map.tables if table_map is not None else []
        org = dram.org
        self.mapper = AddressMapper(org, dram.mapping)
        local = rank_local_spec(dram, spec.level)
        self.local_mapper = AddressMapper(local.org, local.mapping)
        self.nch = org.logical_channels
        self.ranks = org.ranks
        self.dram = DRAMSystem(sim, local, name=f"{name}.dram")
        self.port = MemoryPort(self.dram)
        self.level = spec.level
        self.cross = spec.level == "cross"
        hot_rows = table_map.hot if table_map is not None else None  # per table: sorted hot row indices
        self.admit_hot = spec.rank_cache_admit == "hot"
        self.hot_at_rank = spec.cross_hot_level == "rank"
        if (self.cross or self.admit_hot) and hot_rows is None and table_map is not None:
            raise ValueError("nmp.level cross and rank_cache_admit hot need the profiled hot rows of each table")
        nsub = {"rank": 0, "bankgroup": org.bankgroups, "bank": org.banks, "cross": org.banks}[spec.level]
        self.unit_of: dict[tuple[int, int, int], RankUnit] = {}
        for c in range(self.nch):
            for r in range(org.ranks):
                subs = ([-1] if spec.level in ("rank", "cross") else []) + list(range(nsub))
                for sub in subs:
                    self.unit_of[(c, r, sub)] = RankUnit(self, c, r, self.port, sub)
        self.units = list(self.unit_of.values())
        self.nsub1 = nsub + 1
        self.unit_list: list[RankUnit | None] = [None] * (self.nch * org.ranks * self.nsub1)
        for (c, r, sub), unit in self.unit_of.items():
            self.unit_list[(c * org.ranks + r) * self.nsub1 + sub + 1] = unit
        self.bpg = org.banks_per_group
        self.rank_bus_free = [0] * (self.nch * org.ranks)
        self.bgs = org.bankgroups
        self.bg_adders = spec.bankgroup_adders and spec.level in ("bank", "cross")
        self.bg_bus_free = [0] * (self.nch * org.ranks * org.bankgroups)
        tck = dram.timing.tCK_ps
        names = dram.timing.resolved(org.burst_length)
        # an instruction occupies inst_bits / ca_bits_per_cycle clocks of its channel's pins (a fraction when
        # several fit in one clock, as RecNMP's two per clock over C/A and DQ); the bus keeps fractional time
        self.inst_ps = spec.inst_bits * tck / spec.ca_bits_per_cycle
        self.burst_ps = names["nBL"] * tck
        # the same-bank-group column spacing: a bank group's internal bus moves one burst per nCCD_L, and the
        # bursts of one row (one bank) come out at least this far apart
        self.ccd_l_ps = max(names["nCCD_L"], names["nBL"]) * tck
        self.access_bytes = org.access_bytes
        self.to_ps = round(spec.to_memory_ns * 1000)
        # an instruction's idle flight from the host to its unit (bag latency starts that much before the
        # bag's first read): the on-chip path, then the C/A bus, delivered at the next whole ps
        self.flight_ps = self.to_ps + -int(-self.inst_ps // 1)
        self.from_ps = round(spec.from_memory_ns * 1000)
        self.combine_ps = round(spec.host_combine_ns * 1000)
        self._line = Datapath(spec.clock_mhz, spec.lanes)  # the units' datapath timing (pool_ps)
        self.ca_free = [0] * self.nch
        self.ca_q: list[deque] = [deque() for _ in range(self.nch)]  # instructions on each C/A bus
        self.bus_free = [0] * self.nch
        self.packet_size = spec.poolings_per_packet
        self.waiting: deque[GatherReduce] = deque()  # bags waiting for their packet
        self.in_packet = 0  # bags of the packet in flight not yet done
        self.packets = 0
        self.instructions = 0
        self.partials = 0  # partial sums moved over any bus (bank group, rank, channel)
        self.bg_bus_partials = 0
        self.rank_bus_partials = 0
        self.result_bytes = 0
        self.bags = 0
        # the compiled engine (archsim/nmp/engine.py), once a host attaches it: bags wait here until flush()
        self._engine = None
        self._pending: list[GatherReduce] = []

    def attach_engine(self) -> bool:
        """Run the units on the compiled NMP engine if it applies (called by the host whose near-data component
        this is: it then calls :meth:`flush` once it has sent a batch's bags); whether it does."""
        if self._engine is None:
            from archsim.nmp import engine

            self._engine = engine.attach(self)
        return self._engine is not None

    def flush(self) -> None:
        """Dispatch the bags submitted since the last flush, in order, as ``submit`` would have one by one."""
        if self._pending:
            from archsim.nmp.engine import dispatch_arrays

            grs, self._pending = self._pending, []
            self._engine.nmp_dispatch(grs, *dispatch_arrays(self, grs))

    def _engine_bag_done(self, gr: GatherReduce, t_first: int, t_hit: int) -> None:
        """:meth:`_bag_done` of a bag the compiled engine pooled (packets do not run there)."""
        t = (t_first if t_first < 1 << 62 else t_hit) - self.flight_ps
        gr.t_issue = t if t > gr.t_submit else gr.t_submit
        gr.t_done = self.env.now
        gr.done.succeed(gr)

    def _engine_sync(self) -> None:
        """Take the compiled engine's counts into the units and this component."""
        if self._engine is None:
            return
        inst, partials, bgp, rkp, rbytes, per_unit = self._engine.nmp_take()
        self.instructions += inst
        self.partials += partials
        self.bg_bus_partials += bgp
        self.rank_bus_partials += rkp
        self.result_bytes += rbytes
        for u, (lines, adds, merged) in zip(self.unit_list, per_unit):
            if u is None:
                continue
            u.lines += lines
            u.datapath.adds += adds
            if u.cache is not None:
                u.cache.merged += merged

    def accepts_table(self, t: int) -> bool:
        return True

    def pool_ps(self, elems: int) -> int:
        """One line's (or partial sum's) time on a unit's datapath."""
        return self._line.line_ps(elems)

    def submit(self, gr: GatherReduce) -> simpy.Event:
        env = self.env
        gr.t_submit = env.now
        if gr.done is None:
            gr.done = env.event()
        self.bags += 1
        if self._engine is not None:
            self._pending.append(gr)
            return gr.done
        if self.packet_size:
            self.waiting.append(gr)
            if not self.in_packet:
                self._next_packet()
        else:
            self._dispatch(gr)
        return gr.done

    def _next_packet(self) -> None:
        """Send the next packet of waiting bags (RecNMP: the next packet goes once the last one is done)."""
        w = self.waiting
        n = min(self.packet_size, len(w))
        self.in_packet = n
        self.packets += n > 0
        for _ in range(n):
            self._dispatch(w.popleft())

    def _dispatch(self, gr: GatherReduce) -> None:
        """Send the instructions of bag ``gr`` now."""
        env = self.env
        now = env.now
        addrs, _counts = self.table_map.line_addresses(gr.table, np.asarray(gr.rows, dtype=np.int64))
        if self.window_base:
            addrs = addrs - self.window_base
        elems = max(1, min(gr.row_bytes, 64) // DTYPE_BYTES[gr.dtype])
        # one instruction per embedding row and unit holding (part of) it; the unit reads the row's lines
        level = self.level
        lpr = self.table_map.lines_per_row(gr.table)
        ch, ra, bg, ba, ro, co = self.mapper.decode_array(addrs)
        local = self.local_mapper.encode_array(ch * self.ranks + ra, 0 * ch, bg, ba, ro, co)
        hot = None
        if self.table_map.hot is not None:  # profiled hot rows (cross level's rank-level rows, cache admission)
            hot = np.repeat(self.table_map.is_hot(gr.table, np.asarray(gr.rows, dtype=np.int64)),
                            _counts if _counts is not None else lpr)
        if level == "rank":
            sub = np.full(len(addrs), -1, dtype=np.int64)
        elif level == "bankgroup":
            sub = bg
        else:
            sub = bg * self.bpg + ba
            if self.cross:  # hot rows to the rank unit, cold to their banks' units (or the other way round)
                sub = np.where(hot, -1, sub) if self.hot_at_rank else np.where(hot, sub, -1)
        # segments: runs of lines of one row in one unit (row ids from the per-row line counts); one
        # instruction each. Units are numbered (channel * ranks + rank) * (subs + 1) + sub + 1.
        n = len(addrs)
        row_id = np.repeat(np.arange(len(gr.rows)), _counts if _counts is not None else lpr)
        uid = (ch * self.ranks + ra) * self.nsub1 + sub + 1
        starts = np.flatnonzero(np.concatenate(([True], (row_id[1:] != row_id[:-1]) | (uid[1:] != uid[:-1]))))
        seg_u = uid[starts]
        seg_len = np.diff(np.append(starts, n))
        units, inv = np.unique(seg_u, return_inverse=True)
        nlines = np.bincount(inv, weights=seg_len).astype(np.int64).tolist()
        rank_of = units // self.nsub1
        ranks, per_rank = np.unique(rank_of, return_counts=True)
        bag = _Bag(gr, len(ranks))
        unit_list = self.unit_list
        if level == "rank":
            parts = [_Part(bag, nl, unit_list[u].ch, unit_list[u], elems) for u, nl in zip(units.tolist(), nlines)]
        else:  # units below the rank: partial sums gather in the rank's buffer chip
            nsub1 = self.nsub1
            R = self.ranks
            ups = {r: _RankPart(bag, 0, r // R, r % R) for r in ranks.tolist()}
            parts = []
            groups: dict[tuple[int, int], _RankPart] = {}
            for u, nl in zip(units.tolist(), nlines):
                r, sub = divmod(u, nsub1)
                up = ups[r]
                if self.bg_adders and sub > 0:  # a bank unit: its bank group's adder first
                    bg = (sub - 1) // self.bpg
                    g = groups.get((r, bg))
                    if g is None:
                        g = groups[(r, bg)] = _RankPart(bag, 0, r // R, r % R, bg, up)
                        up.left += 1
                    g.left += 1
                    up = g
                else:
                    up.left += 1
                parts.append(_Part(bag, nl, unit_list[u].ch, unit_list[u], elems, up))
        t0 = now + self.to_ps
        ca_free = self.ca_free
        inst_ps = self.inst_ps
        local_l = local.tolist()
        self.instructions += len(starts)
        ca_q = self.ca_q
        # may the unit's rank cache keep the row (all rows, or the profiled hot ones: RecNMP's LocalityBit)
        cacheable = hot[starts].tolist() if self.admit_hot else [True] * len(starts)
        for i, s0, s1, cab in zip(inv.tolist(), starts.tolist(), (starts + seg_len).tolist(), cacheable):
            part = parts[i]
            c = part.ch
            t = (t0 if t0 > ca_free[c] else ca_free[c]) + inst_ps
            ca_free[c] = t
            q = ca_q[c]
            q.append((-int(-t // 1), part, local_l[s0:s1], cab))  # delivered at the next whole ps
            if len(q) == 1:
                call_at(env, q[0][0], self._deliver, c)

    def _deliver(self, ev: simpy.Event) -> None:
        """The instructions of channel ``ev.value`` due now reach their units (one pending event per
        channel's C/A bus, not one per instruction, keeps the event heap small)."""
        c = ev.value
        q = self.ca_q[c]
        now = self.env.now
        while q and q[0][0] <= now:
            _t, part, lines, cab = q.popleft()
            part.unit.read(lines, part, cab)
        if q:
            call_at(self.env, q[0][0], self._deliver, c)

    def partial_ready(self, part: _Part | _RankPart, t_ready: int) -> None:
        """A unit (or an adder) finished its share of a bag at ``t_ready``. A bank unit's partial sum crosses
        its bank group's bus to the group's adder (``bankgroup_adders``), a bank group's (unit's or adder's)
        or, without adders, a bank unit's crosses the rank's internal bus to the rank's buffer chip; each
        adds it in ``dim / lanes`` clocks. A rank's partial sum crosses the channel bus to the host."""
        gr = part.bag.gr
        up = part.up
        if up is not None:
            t = t_ready
            if isinstance(part, _Part) and part.unit.sub < 0:
                pass  # the rank unit's own share (cross level): already in the buffer chip
            elif up.bg >= 0:  # a bank unit's partial sum to its bank group's adder
                bursts = -(-(gr.dim * 4) // self.access_bytes)
                i = (up.ch * self.ranks + up.rank) * self.bgs + up.bg
                t = max(t_ready, self.bg_bus_free[i]) + bursts * self.ccd_l_ps
                self.bg_bus_free[i] = t
                self.partials += 1
                self.bg_bus_partials += 1
            else:  # a bank group's or bank's partial sum crosses the rank's internal bus
                bursts = -(-(gr.dim * 4) // self.access_bytes)
                i = up.ch * self.ranks + up.rank
                t = max(t_ready, self.rank_bus_free[i]) + bursts * self.burst_ps
                self.rank_bus_free[i] = t
                self.partials += 1
                self.rank_bus_partials += 1
            t += self.pool_ps(gr.dim)  # the adder above adds it into its partial sum
            if t > up.t_ready:
                up.t_ready = t
            up.left -= 1
            if up.left == 0:
                self.partial_ready(up, up.t_ready)
            return
        nbytes = gr.dim * 4
        bursts = -(-nbytes // self.access_bytes)
        ch = part.ch
        t = max(t_ready, self.bus_free[ch]) + bursts * self.burst_ps
        self.bus_free[ch] = t
        self.partials += 1
        self.result_bytes += bursts * self.access_bytes
        bag = part.bag
        t_host = t + self.from_ps + self.combine_ps
        if t_host > bag.t_end:
            bag.t_end = t_host
        bag.parts_left -= 1
        if bag.parts_left == 0:
            call_at(self.env, bag.t_end, self._bag_done, bag)

    def _bag_done(self, ev: simpy.Event) -> None:
        bag = ev.value
        gr = bag.gr
        t = (bag.t_first if bag.t_first < 1 << 62 else bag.t_hit) - self.flight_ps
        gr.t_issue = t if t > gr.t_submit else gr.t_submit
        gr.t_done = self.env.now
        gr.done.succeed(gr)
        if self.packet_size:
            self.in_packet -= 1
            if self.in_packet == 0 and self.waiting:
                self._next_packet()

    def finalize(self, end_ps: int) -> None:
        self._engine_sync()
        s = self.stats
        units = self.units
        for k, v in (("bags", self.bags), ("packets", self.packets), ("instructions", self.instructions),
                     ("partials", self.partials), ("bg_bus_partials", self.bg_bus_partials),
                     ("rank_bus_partials", self.rank_bus_partials),
                     ("result_bytes", self.result_bytes), ("lines", sum(u.lines for u in units)),
                     ("adds", sum(u.adds for u in units))):
            s.set(k, v)
        book = self.sim.energy.book
        book(s.full_name, "compute", self.spec.compute_energy_pJ * sum(u.adds for u in units))
        bits = self.instructions * self.spec.inst_bits + self.result_bytes * 8
        book(s.full_name, "io", self.spec.io_energy_pJ_per_bit * bits)
        caches = [u.cache for u in units if u.cache is not None]
        if caches:
            hits = sum(c.hits for c in caches)
            misses = sum(c.misses for c in caches)
            s.set("rank_cache_hits", hits)
            s.set("rank_cache_misses", misses)
            s.set("rank_cache_merged", sum(u.merged for u in units))
            book(s.full_name, "sram", self.spec.rank_cache_energy_pJ * (hits + 2 * misses))
        self.dram.finalize(end_ps)

    def memory_models(self) -> list[DRAMSystem]:
        """The DRAM models held here that are no component of the graph: the units' rank-local model of the
        DIMMs they sit in (the same DIMMs as the ``dram`` component: its reads are the units' reads)."""
        return [self.dram]

    def peak_bandwidth_GBps(self) -> float:
        """Peak data rate of the units' paths into the DIMMs (the model of :meth:`memory_models`), 10^9 B/s:
        one burst per burst time per rank (rank units), or one per same-bank-group column spacing per bank
        group (bank-group units) or per bank (bank and cross-level units: their rank units read out of the
        banks too)."""
        if self.level == "rank":
            paths, ps = 1, self.burst_ps
        else:
            paths, ps = (self.bgs if self.level == "bankgroup" else self.bgs * self.bpg), self.ccd_l_ps
        return self.nch * self.ranks * paths * self.access_bytes / ps * 1e3

    def cache_stats(self) -> dict[str, tuple[int, int]]:
        """The units' rank caches together as ``{name: (lookups served, lookups)}``: served are hits and
        lookups that joined a read in flight (the ``<name>_hit_rate`` column, docs/metrics.md)."""
        self._engine_sync()
        caches = [u.cache for u in self.units if u.cache is not None]
        if not caches:
            return {}
        served = sum(c.hits for c in caches) + sum(u.merged for u in self.units)
        return {f"{self.name}.rank_cache": (served, sum(c.hits + c.misses for c in caches))}

    def summary(self, end_ps: int) -> dict[str, float]:
        self._engine_sync()
        units = self.units
        nbytes = sum(u.lines for u in units) * 64
        extra = {}
        for served, looked in self.cache_stats().values():
            extra["rank_cache_hit_rate"] = served / looked if looked else 0.0
        return extra | {
            "dram_bandwidth_GBps": nbytes / (end_ps * 1e-3) if end_ps else 0.0,
            "channel_bus_GBps": self.result_bytes / (end_ps * 1e-3) if end_ps else 0.0,
            "ca_utilization": (self.instructions * self.inst_ps / (self.nch * end_ps)) if end_ps else 0.0,
        }
