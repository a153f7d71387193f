"""The memory controller of one DRAM channel: queues, command scheduling, refresh, and its clock loop.

Cycle semantics (one command per cycle, or a row and a column command with ``dual_command_issue``):

1. data whose burst has finished returns (reads), posted writes are acknowledged;
2. refresh becomes due for the next rank every nREFI / ranks (staggered) and takes priority: the rank's
   banks are precharged and REF issues; the rank's queues are skipped meanwhile;
3. otherwise the scheduler picks a command (``per_bank``: round robin over per-bank command queues, the first
   timing-ready command in each, a precharge held back while later requests hit the open row and fewer than
   ``row_hit_cap`` hits were served; ``unified``: FR-FCFS over the read or write queue);
4. ``per_bank`` only: one transaction moves from the read queue (or the write buffer while draining) into its
   bank's command queue.

The loop is not ticked every cycle: after a cycle in which nothing happened it computes the next cycle at which
anything can (a return, a refresh, a command becoming timing-ready) and sleeps until then, or until a request
arrives. It also runs several cycles inside one SimPy callback while nothing else in the simulation is due
before them, scheduling its completions at their exact picosecond.

Two engines implement this: :class:`ChannelController` (Python, the reference) and
:class:`CChannelController` (the same algorithm compiled, ``archsim/dram/_cchannel.c``; bit-identical results,
tested against the reference in ``tests/test_cchannel.py``). :func:`make_controller` picks one: the compiled
engine when the extension is built, unless ``ARCHSIM_ENGINE=python`` (or an ``engine`` argument) asks otherwise.
"""

from __future__ import annotations

import heapq
import os
from typing import TYPE_CHECKING

import simpy

from archsim.core.request import MemRequest, complete_at
from archsim.dram.channel_state import ChannelState
from archsim.dram.spec import DRAMSpec
from archsim.dram.standard import ACT, NCMD, PRE, RD, RDA, REF, WR, WRA, compile_constraints

if TYPE_CHECKING:
    pass

_NEVER = 1 << 62


class ChannelController:
    """One (pseudo-)channel: its queues, its :class:`ChannelState` and its scheduling loop."""

    def __init__(self, env: simpy.Environment, spec: DRAMSpec, index: int) -> None:
        self.env = env
        self.index = index
        org, ctl = spec.org, spec.controller
        self.tck = spec.timing.tCK_ps
        names = spec.timing.resolved(org.burst_length)
        self.state = ChannelState(org, compile_constraints(spec.constraints, names))
        self.read_delay = names["nAL"] + names["nCL"] + names["nBL"]
        self.write_delay = names["nAL"] + names["nCWL"] + names["nBL"]
        self.unified = ctl.queue_structure == "unified"
        self.rq_cap = ctl.read_queue
        self.wq_cap = ctl.write_queue
        self.cq_cap = ctl.cmd_queue
        self.closed_page = ctl.row_policy == "closed"
        self.rd_cmd = RDA if self.closed_page else RD
        self.wr_cmd = WRA if self.closed_page else WR
        self.hit_cap = ctl.row_hit_cap
        self.drain_high = max(1, round(ctl.write_high_watermark * ctl.write_queue))
        self.drain_low = round(ctl.write_low_watermark * ctl.write_queue)
        self.dual = ctl.dual_command_issue
        self.merge_reads = ctl.merge_reads
        self.refresh_on = ctl.refresh.policy == "all_bank"
        ranks = org.ranks
        self.ranks = ranks
        self.banks = org.banks
        self.ref_interval = names["nREFI"] // ranks if ctl.refresh.staggered else names["nREFI"]
        self.ref_staggered = ctl.refresh.staggered
        self.next_ref = self.ref_interval if self.refresh_on else _NEVER
        self.ref_rank_next = 0
        self.ref_pending: list[int] = []
        # queues
        self.readq: list[MemRequest] = []
        self.writeq: list[MemRequest] = []
        self.pending_rd: dict[int, list[MemRequest]] = {}
        self.pending_wr: dict[int, MemRequest] = {}
        self.cmdq: list[list[MemRequest]] = [[] for _ in range(self.state.nbanks)]
        self.cmdq_count = 0
        self.rr = 0  # round-robin pointer over command queues
        self.draining = 0
        self.sched_blocked = False
        self.bwait = [0] * self.state.nbanks  # per bank queue: a lower bound of its next ready cycle
        self.write_mode = False
        self.active: list[MemRequest] = []  # unified: requests whose row was opened for them
        self.active_cap = ctl.read_queue
        self.ret: list[tuple[int, int, MemRequest]] = []
        self.seq = 0
        # loop bookkeeping: next cycle not yet processed, and the currently scheduled wake-up
        self.cycle = 0
        self.wake_cycle = _NEVER
        self.wake_ev: simpy.Event | None = None
        self.space_waiters: list[simpy.Event] = []
        self.skip_idle = True
        # counters (flushed into Stats at finalize)
        self.n_cmd = [0] * NCMD
        self.n_reads = 0
        self.n_writes = 0
        self.n_row_hits = 0
        self.n_col = 0
        self.n_wq_hits = 0
        self.n_dual = 0
        self.lat_hist = None  # set by the DRAM system (a Histogram of read latency in ps)
        self.bytes = org.access_bytes
        self.acct_cycle = 0
        self.rank_active = [0] * ranks
        self.rank_idle = [0] * ranks
        self.bank_open = [0] * ranks  # bank-cycles with a row open (sum over banks), per rank

    # ----------------------------------------------------------------------------------------- intake
    def can_accept(self, is_write: bool) -> bool:
        return len(self.writeq) < self.wq_cap if is_write else len(self.readq) < self.rq_cap

    def space_event(self) -> simpy.Event:
        ev = self.env.event()
        self.space_waiters.append(ev)
        return ev

    def submit(self, req: MemRequest) -> None:
        """Take ``req`` (the caller checked :meth:`can_accept`); ``req.done`` fires on completion.

        A request enters at the first clock edge strictly after its arrival (an arrival exactly on an edge
        misses it), so the cycle a request is first seen in does not depend on the order of events that
        share a picosecond. Edges are processed before any other event of their picosecond.
        """
        c = self.env.now // self.tck + 1
        if c < self.cycle:
            c = self.cycle
        if self.wake_ev is None and self.next_ref < c:
            self._catch_up(c)
        req.added_cycle = c
        req.t_accept = c * self.tck
        self.sched_blocked = False
        addr = req.addr
        if req.is_write:
            if addr not in self.pending_wr:
                self.pending_wr[addr] = req
                self.writeq.append(req)
            self._push_return(c + 1, req)
        elif addr in self.pending_wr:
            self.n_wq_hits += 1
            self._push_return(c + 1, req)
        else:
            lst = self.pending_rd.get(addr)
            if lst is None:
                self.pending_rd[addr] = [req]
                self.readq.append(req)
            elif self.merge_reads:
                lst.append(req)
            else:
                lst.append(req)
                self.readq.append(req)
        self._wake(c)

    def _catch_up(self, until: int) -> None:
        """Process, synchronously, the cycles before ``until`` in which an idle channel refreshes.

        An idle channel sleeps without a wake-up; refresh still happens in the real device, so before its state
        is used again (a new request, the end of the run) the refresh cycles it skipped are run, in order.
        Nothing else is pending, so no completion or notification can come out of them.
        """
        c = self.cycle
        while True:
            nxt = self._next_event_cycle(c)
            if nxt >= until:
                break
            self._tick(nxt)
            c = nxt + 1
        self.cycle = c

    def _push_return(self, cycle: int, req: MemRequest) -> None:
        self.seq += 1
        heapq.heappush(self.ret, (cycle, self.seq, req))

    # ----------------------------------------------------------------------------------------- loop
    def _wake(self, cycle: int) -> None:
        """Make sure the loop runs at ``cycle`` (earlier wake-ups stay; later ones become stale)."""
        if cycle >= self.wake_cycle:
            return
        self.wake_cycle = cycle
        ev = self.env.event()
        ev.callbacks.append(self._on_wake)
        complete_at(self.env, ev, None, cycle * self.tck, simpy.events.URGENT)
        self.wake_ev = ev

    def _on_wake(self, ev: simpy.Event) -> None:
        if ev is not self.wake_ev:
            return  # superseded by an earlier wake-up
        self.wake_ev = None
        self.wake_cycle = _NEVER
        c = self.cycle if self.cycle > self.env.now // self.tck else self.env.now // self.tck
        horizon = self.env.peek()
        tck = self.tck
        while True:
            busy, emitted = self._tick(c)
            c += 1
            self.cycle = c
            if busy:
                nxt = c
            else:
                nxt = self._next_event_cycle(c)
                if nxt >= _NEVER:
                    return  # idle until a request arrives
                if not self.skip_idle:
                    nxt = c  # reference mode: tick every cycle (tests compare the two)
            if emitted or nxt * tck >= horizon:
                self._wake(nxt)
                return
            c = nxt
            self.cycle = c

    def _tick(self, c: int) -> tuple[bool, bool]:
        """Process cycle ``c``; returns (something happened, an event outside this channel was triggered)."""
        emitted = returned = False
        ret = self.ret
        if ret and ret[0][0] <= c:
            returned = True
            now_ps = c * self.tck
            env = self.env
            while ret and ret[0][0] <= c:
                _, _, req = heapq.heappop(ret)
                req.t_done = now_ps
                if not req.is_write:
                    lat = now_ps - req.t_accept
                    self.lat_hist.record(lat)
                    self.n_reads += 1
                else:
                    self.n_writes += 1
                grp = req._grp
                if grp is not None:  # a burst of a multi-burst request: it completes with its last burst
                    grp._left -= 1
                    if grp._left:
                        continue
                    req = grp
                    req.t_done = now_ps
                if req.done is not None:
                    complete_at(env, req.done, req, now_ps)
                emitted = True
        if c >= self.next_ref:
            r = self.ref_rank_next
            if self.ref_staggered:
                self.ref_pending.append(r)
                self.ref_rank_next = (r + 1) % self.ranks
            else:
                self.ref_pending.extend(range(self.ranks))
            self.next_ref += self.ref_interval
        issued = False
        cmd = None
        if self.ref_pending and not self.unified:
            cmd = self._refresh_command(c)
        if cmd is None:
            cmd = self._pick(c)
        if cmd is not None:
            self._issue(cmd[0], cmd[1], cmd[2], c)
            issued = True
            if self.dual:
                second = self._pick(c)
                if second is not None:
                    first_col = cmd[0] in (RD, WR, RDA, WRA)
                    if (second[0] in (RD, WR, RDA, WRA)) != first_col:
                        self._issue(second[0], second[1], second[2], c)
                        self.n_dual += 1
                    elif second[2] is not None and second[0] in (RD, WR, RDA, WRA):
                        # not issued; unreachable with JEDEC tables (no two column commands in one
                        # cycle), kept so a request is never lost
                        self.cmdq[second[1]].insert(0, second[2])
                        self.cmdq_count += 1
        moved = 0
        if not self.unified:
            moved = self._schedule_transaction()
            if moved == 1 and self.space_waiters:
                self._notify_space(c)
                emitted = True
        elif issued and self.space_waiters:
            self._notify_space(c)
            emitted = True
        return issued or moved or returned or emitted, emitted

    def _notify_space(self, c: int) -> None:
        waiters, self.space_waiters = self.space_waiters, []
        for ev in waiters:
            complete_at(self.env, ev, None, c * self.tck)

    # ----------------------------------------------------------------------------------------- refresh
    def _refresh_command(self, c: int) -> tuple[int, int, None] | None:
        """Precharge the pending rank's open banks, then REF once all are closed and ready."""
        r = self.ref_pending[0]
        st = self.state
        base = r * self.banks
        all_closed = True
        for fb in range(base, base + self.banks):
            if st.open_row[fb] >= 0:
                all_closed = False
                if st.ready(PRE, fb) <= c:
                    return (PRE, fb, None)
        if all_closed and st.ref_ready(r) <= c:
            return (REF, base, None)
        return None

    def _refresh_wait(self, c: int) -> int:
        """Earliest cycle the refresh sequence can make progress."""
        r = self.ref_pending[0]
        st = self.state
        base = r * self.banks
        t = _NEVER
        any_open = False
        for fb in range(base, base + self.banks):
            if st.open_row[fb] >= 0:
                any_open = True
                v = st.ready(PRE, fb)
                if v < t:
                    t = v
        if not any_open:
            t = st.ref_ready(r)
        return t

    # ----------------------------------------------------------------------------------------- per-bank
    def _bank_candidate(self, q: list[MemRequest], fb: int, c: int) -> tuple[int, MemRequest | None, int]:
        """The command bank queue ``q`` would issue at ``c``: (cmd, request, earliest cycle).

        cmd is -1 when nothing is ready at ``c``; earliest is then the first cycle something may be
        (a lower bound; _NEVER when only a state change can unblock the queue).
        """
        st = self.state
        orow = st.open_row[fb]
        if orow < 0:
            t = st.ready(ACT, fb)
            return (ACT, q[0], t) if t <= c else (-1, None, t)
        earliest = _NEVER
        q0 = q[0]
        if q0._row != orow:
            has_hit = False
            for x in q:
                if x._row == orow:
                    has_hit = True
                    break
            if not has_hit or st.hits[fb] >= self.hit_cap:
                t = st.ready(PRE, fb)
                if t <= c:
                    return (PRE, q0, t)
                earliest = t
            if not has_hit:
                return (-1, None, earliest)
        t_rd = -1
        t_wr = -1
        for i, x in enumerate(q):
            if x._row != orow:
                continue
            cmd = x._cmd
            if cmd == RD or cmd == RDA:
                if t_rd < 0:
                    t_rd = st.ready(cmd, fb)
                t = t_rd
            else:
                if t_wr < 0:
                    t_wr = st.ready(cmd, fb)
                t = t_wr
                if self._rw_dependency(q, i):
                    continue
            if t <= c:
                return (cmd, x, t)
            if t < earliest:
                earliest = t
        return (-1, None, earliest)

    @staticmethod
    def _rw_dependency(q: list[MemRequest], i: int) -> bool:
        """A write may not pass an earlier read of the same row and column in its queue."""
        w = q[i]
        for j in range(i):
            x = q[j]
            if not x.is_write and x._row == w._row and x._col == w._col:
                return True
        return False

    def _pick(self, c: int) -> tuple[int, int, MemRequest | None] | None:
        if self.unified:
            return self._pick_unified(c)
        cmdq = self.cmdq
        n = len(cmdq)
        skip = self.ref_pending[0] if self.ref_pending else -1
        banks = self.banks
        bwait = self.bwait
        idx = self.rr
        for _ in range(n):
            idx += 1
            if idx == n:
                idx = 0
            q = cmdq[idx]
            if not q or bwait[idx] > c or idx // banks == skip:
                continue
            cmd, req, t = self._bank_candidate(q, idx, c)
            if cmd >= 0:
                self.rr = idx
                if cmd != ACT and cmd != PRE:
                    if len(q) == self.cq_cap:
                        self.sched_blocked = False  # room appeared in a full bank queue
                    q.remove(req)
                    self.cmdq_count -= 1
                    if self.cmdq_count == 0:
                        self.sched_blocked = False  # the drain condition may hold now
                return (cmd, idx, req)
            bwait[idx] = t
        self.rr = idx
        return None

    def _schedule_transaction(self) -> int:
        """Move at most one transaction into its bank's command queue (DRAMsim3's ScheduleTransaction).

        Returns 1 if one moved, 2 if only the drain state changed (the next cycle may move one), else 0.
        A scan that found nothing is not repeated until a command issues or a request arrives.
        """
        if self.sched_blocked:
            return 0
        if self.draining == 0:
            nw = len(self.writeq)
            if nw >= self.drain_high or (nw > self.drain_low and self.cmdq_count == 0):
                self.draining = nw
        queue = self.writeq if self.draining > 0 else self.readq
        cap = self.cq_cap
        cmdq = self.cmdq
        for i, req in enumerate(queue):
            q = cmdq[req._fb]
            if len(q) < cap:
                if req.is_write:
                    if req.addr in self.pending_rd:
                        self.draining = 0
                        return 2
                    self.draining -= 1
                q.append(req)
                self.bwait[req._fb] = 0
                self.cmdq_count += 1
                del queue[i]
                return 1
        self.sched_blocked = True
        return 0

    def _next_event_cycle(self, c: int) -> int:
        """Earliest cycle >= c at which processing a cycle can change anything (after an idle cycle)."""
        t = self.next_ref
        if self.ret and self.ret[0][0] < t:
            t = self.ret[0][0]
        if self.ref_pending:
            v = self._refresh_wait(c)
            if v < t:
                t = v
        if self.unified:
            v = self._unified_wait(c)
            if v < t:
                t = v
        elif self.cmdq_count:
            skip = self.ref_pending[0] if self.ref_pending else -1
            banks = self.banks
            bwait = self.bwait
            for idx, q in enumerate(self.cmdq):
                if q and idx // banks != skip:
                    v = bwait[idx]
                    if v < c:
                        v = self._bank_candidate(q, idx, c)[2]
                        bwait[idx] = v
                    if v < t:
                        t = v
        return t if t > c else c

    # ----------------------------------------------------------------------------------------- unified
    def _need(self, req: MemRequest) -> int:
        """The next command ``req`` needs given its bank's row buffer (ACT, PRE, or its column command)."""
        orow = self.state.open_row[req._fb]
        if orow < 0:
            return ACT
        return req._cmd if orow == req._row else PRE

    def _first_ready(self, buf: list[MemRequest], c: int) -> tuple[int, MemRequest | None]:
        """FR-FCFS over ``buf`` (kept in arrival order): the oldest request whose next command is ready."""
        st = self.state
        for req in buf:
            cmd = self._need(req)
            if st.ready(cmd, req._fb) <= c:
                return cmd, req
        return -1, None

    def _pick_unified(self, c: int) -> tuple[int, int, MemRequest | None] | None:
        """Ramulator 2's generic controller: active requests first, then refresh, then the read or write queue."""
        cmd, req = self._first_ready(self.active, c)
        if req is None:
            if self.ref_pending:
                return self._refresh_command(c)
            nw = len(self.writeq)
            if self.write_mode:
                # an empty write buffer always ends write mode (with write_low_watermark 0, nw < drain_low
                # never holds: reads waited forever, a hang the fuzz campaign found)
                if (nw < self.drain_low or nw == 0) and self.readq:
                    self.write_mode = False
            elif nw > self.drain_high or not self.readq:
                self.write_mode = True
            cmd, req = self._first_ready(self.writeq if self.write_mode else self.readq, c)
            if req is None:
                return None
        fb = req._fb
        if cmd == PRE or cmd == RDA or cmd == WRA:
            for a in self.active:
                if a._fb == fb and a is not req:
                    return None  # do not close a row an activated request still needs
        return (cmd, fb, req)

    def _unified_issued(self, cmd: int, req: MemRequest) -> None:
        """Move a request between the queues after its command issued."""
        if cmd == ACT:
            if len(self.active) < self.active_cap and req not in self.active:
                (self.writeq if req.is_write else self.readq).remove(req)
                self.active.append(req)
        elif cmd != PRE:
            if req in self.active:
                self.active.remove(req)
            else:
                (self.writeq if req.is_write else self.readq).remove(req)

    def _unified_wait(self, c: int) -> int:
        st = self.state
        t = _NEVER
        for buf in (self.active, self.readq, self.writeq):
            for req in buf:
                v = st.ready(self._need(req), req._fb)
                if v < t:
                    t = v
        return t

    # ----------------------------------------------------------------------------------------- issue
    def _issue(self, cmd: int, fb: int, req: MemRequest | None, c: int) -> None:
        st = self.state
        self.bwait[fb] = 0
        self.n_cmd[cmd] += 1
        if self.unified and req is not None:
            self._unified_issued(cmd, req)
        if cmd == RD or cmd == RDA or cmd == WR or cmd == WRA:
            self.n_col += 1
            if st.hits[fb]:
                self.n_row_hits += 1
            st.hits[fb] += 1
            addr = req.addr
            if cmd == RD or cmd == RDA:
                done = c + self.read_delay
                if self.merge_reads:
                    for r in self.pending_rd.pop(addr):
                        self._push_return(done, r)
                else:
                    lst = self.pending_rd[addr]
                    lst.remove(req)
                    if not lst:
                        del self.pending_rd[addr]
                    self._push_return(done, req)
            else:
                self.pending_wr.pop(addr, None)
            st.apply(cmd, fb, c)
            if cmd == RDA or cmd == WRA:
                self._account(c)
                st.open_row[fb] = -1
                st.hits[fb] = 0
                st.open_in_rank[st.fb_rank[fb]] -= 1
        elif cmd == ACT:
            self._account(c)
            st.apply(ACT, fb, c)
            st.open_row[fb] = req._row
            st.hits[fb] = 0
            st.open_in_rank[st.fb_rank[fb]] += 1
        elif cmd == PRE:
            self._account(c)
            st.apply(PRE, fb, c)
            st.open_row[fb] = -1
            st.hits[fb] = 0
            st.open_in_rank[st.fb_rank[fb]] -= 1
        else:  # REF
            r = st.fb_rank[fb]
            st.apply_rank(REF, r, c)
            # the per-bank REF->ACT constraints of the table are rank-level; nothing per bank to do
            self.ref_pending.pop(0)

    def _account(self, c: int) -> None:
        """Book background cycles [acct_cycle, c) with the rank states before a state change at ``c``."""
        n = c - self.acct_cycle
        if n > 0:
            oir = self.state.open_in_rank
            for r in range(self.ranks):
                if oir[r]:
                    self.rank_active[r] += n
                    self.bank_open[r] += oir[r] * n
                else:
                    self.rank_idle[r] += n
            self.acct_cycle = c

    def close_accounting(self, end_cycle: int) -> None:
        """Run skipped refreshes and book background cycles up to ``end_cycle`` (exclusive) at the end of a run."""
        if self.wake_ev is None and self.next_ref < end_cycle:
            self._catch_up(end_cycle)
        self._account(end_cycle)


# --------------------------------------------------------------------------------------------- compiled engine
try:
    from archsim.dram import _cchannel
except ImportError:  # the extension is not built: only the Python engine exists
    _cchannel = None

ENGINE_ENV = "ARCHSIM_ENGINE"


def engine_name(engine: str | None = None) -> str:
    """The engine to use, ``"c"`` or ``"python"``: ``engine`` if given, else ``$ARCHSIM_ENGINE``, else the
    compiled one when it is built (silently the Python one when it is not)."""
    e = (engine if engine is not None else os.environ.get(ENGINE_ENV, "")).strip().lower()
    if e in ("", "auto"):
        return "c" if _cchannel is not None else "python"
    if e in ("python", "py"):
        return "python"
    if e == "c":
        if _cchannel is None:
            raise ImportError("the compiled channel engine (archsim.dram._cchannel) is not built; "
                              "run `pip install --no-deps --no-build-isolation -e .` or use ARCHSIM_ENGINE=python")
        return "c"
    raise ValueError(f"unknown channel engine {e!r} (expected 'c' or 'python')")


def make_controller(env: simpy.Environment, spec: DRAMSpec, index: int, engine: str | None = None):
    """A channel controller of the engine :func:`engine_name` selects."""
    if engine_name(engine) == "c":
        return CChannelController(env, spec, index)
    return ChannelController(env, spec, index)


def share_loop(channels):
    """One wake-up event and one cycle loop for the compiled ``channels`` of a memory system (the
    ``_cchannel.Loop``), instead of one per channel; the same results and the same order of emitted events as
    the reference's per-channel wake-ups (see ``archsim/dram/_cchannel.c``, "the shared loop"). The channels
    must be new (or idle) and share one environment and clock."""
    if _cchannel is None:
        raise ImportError("the compiled channel engine (archsim.dram._cchannel) is not built")
    return _cchannel.share_loop(list(channels))


def _no_issue_hook(cmd: int, fb: int, req: MemRequest | None, c: int) -> None:
    """The compiled engine issues commands itself: the default ``_issue`` hook does nothing."""


if _cchannel is not None:

    class CChannelController(_cchannel.Channel):
        """The compiled engine behind the :class:`ChannelController` interface.

        Every parameter is taken from a reference :class:`ChannelController` built for the same spec, so the
        two cannot differ in configuration. Counters (``n_cmd``, ``n_reads``, ``rank_active``, ...),
        ``skip_idle``, ``can_accept``/``space_event``/``submit``/``close_accounting`` behave as in the
        reference. Read latencies are gathered in C and recorded into ``lat_hist`` (``record_n`` per distinct
        value) whenever ``lat_hist`` is read. ``_issue`` is an observation hook here: assigning a callable
        makes the engine call it as ``fn(cmd, flat_bank, req_or_None, cycle)`` before each command it issues
        (the reference calls ``_issue`` to issue; replacing it there can change behaviour, here it cannot).

        The SimPy wake-up and the cycle loop belong to a ``Loop`` (``_loop``): the channel's own until
        :func:`share_loop` (called by :class:`~archsim.dram.memory.DRAMSystem`) puts all channels of a memory
        system into one; a trace source (direct feed) attaches to the loop.
        """

        def __init__(self, env: simpy.Environment, spec: DRAMSpec, index: int) -> None:
            from archsim.dram.mapping import AddressMapper

            ref = ChannelController(env, spec, index)
            st = ref.state
            m = AddressMapper(spec.org, spec.mapping)
            cfg = {
                "tck": ref.tck, "read_delay": ref.read_delay, "unified": ref.unified,
                "rq_cap": ref.rq_cap, "wq_cap": ref.wq_cap, "cq_cap": ref.cq_cap,
                "closed_page": ref.closed_page, "rd_cmd": ref.rd_cmd, "wr_cmd": ref.wr_cmd,
                "hit_cap": ref.hit_cap, "drain_high": ref.drain_high, "drain_low": ref.drain_low,
                "dual": ref.dual, "merge_reads": ref.merge_reads, "ranks": ref.ranks,
                "access_bytes": ref.bytes,
                "bankgroups": st.bgs, "banks_per_group": st.bpg,
                "ref_interval": ref.ref_interval, "ref_staggered": ref.ref_staggered, "next_ref": ref.next_ref,
                "active_cap": ref.active_cap,
                "same": st.cc.same, "sibling": st.cc.sibling,
                "windows": [[(count, span) for _lv, count, span in st.win[c]] for c in range(NCMD)],
                "ba_w": m.widths["ba"], "xor_bank": m.xor_bank,
            }
            for f in ("ch", "ra", "bg", "ba", "ro", "co"):
                cfg[f"{f}_s"] = getattr(m, f"{f}_s")
                cfg[f"{f}_m"] = getattr(m, f"{f}_m")
            self._setup(env, simpy.events.Event, simpy.events.URGENT, simpy.events.NORMAL, cfg)
            self.env = env
            self.index = index
            for name in ("tck", "read_delay", "write_delay", "unified", "rq_cap", "wq_cap", "cq_cap",
                         "closed_page", "rd_cmd", "wr_cmd", "hit_cap", "drain_high", "drain_low", "dual",
                         "merge_reads", "refresh_on", "ranks", "banks", "ref_interval", "ref_staggered",
                         "active_cap", "bytes"):
                setattr(self, name, getattr(ref, name))
            self._lat_hist = None

        @property
        def lat_hist(self):
            h = self._lat_hist
            if h is not None:
                self._flush_latency(h)
            return h

        @lat_hist.setter
        def lat_hist(self, h) -> None:
            if self._lat_hist is not None:
                self._flush_latency(self._lat_hist)
            self._lat_hist = h

        @property
        def _issue(self):
            hook = self._get_issue_hook()
            return _no_issue_hook if hook is None else hook

        @_issue.setter
        def _issue(self, fn) -> None:
            self._set_issue_hook(None if fn is _no_issue_hook else fn)

else:  # pragma: no cover - only without the extension
    CChannelController = None  # type: ignore[assignment,misc]
