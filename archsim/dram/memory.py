"""A DRAM or HBM memory system: the address mapper and one controller per (pseudo-)channel.

``submit(req)`` routes a request to its channel's controller by the address mapping. The component reports,
per channel and in total, requests, bandwidth, read latency, row-buffer hit rate and commands, and books DRAM
energy by kind (act, read, write, refresh, background) in the run's ledger.
"""

from __future__ import annotations

import simpy
from simpy.events import Event

from archsim.core.component import Component
from archsim.core.request import MemRequest
from archsim.core.sim import Simulator
from archsim.core.stats import Histogram
from archsim.dram.controller import _NEVER, CChannelController, ChannelController, make_controller, share_loop
from archsim.dram.mapping import AddressMapper
from archsim.dram.power import CommandEnergy
from archsim.dram.spec import DRAMSpec
from archsim.dram.standard import ACT, COMMANDS, REF


class DRAMSystem(Component):
    """The memory behind a host: channels of ranks of banks, each channel with its own controller."""

    def __init__(self, sim: Simulator, spec: DRAMSpec, name: str = "dram", book_standby: bool = True) -> None:
        """``book_standby=False``: another model of the same devices (near-memory units' view of the ranks)
        books their background and refresh energy; this one books only its own commands' energy."""
        super().__init__(sim, name)
        self.book_standby = book_standby
        self.spec = spec
        self.mapper = AddressMapper(spec.org, spec.mapping)
        self.tck = spec.timing.tCK_ps
        self.channels: list[ChannelController | CChannelController] = [
            make_controller(self.env, spec, i) for i in range(spec.org.logical_channels)]
        self.latency = Histogram()
        for ch in self.channels:
            ch.lat_hist = Histogram()
        self.energy_model = CommandEnergy.from_spec(spec)
        m = self.mapper
        self._ch_s, self._ch_m = m.ch_s, m.ch_m
        self._finalized = False
        self._burst = spec.org.access_bytes
        # the compiled engine decodes in C (same mapping in every channel); addresses of 2**64 and above
        # take the Python path
        first = self.channels[0]
        compiled = CChannelController is not None and isinstance(first, CChannelController)
        self._cdecode = first.decode_request if compiled else None
        # the compiled channels share one wake-up event and cycle loop (same results as one per channel): all
        # compiled channels of the run with this clock, across memory systems (a host's DRAM, expanders, NMP
        # ranks), so events at one picosecond come out in the reference's order whatever system they belong to
        self._loop = None
        if compiled:
            systems = sim.dram_loop_groups.setdefault(self.tck, [])
            systems.append(self)
            loop = share_loop([ch for sys_ in systems for ch in sys_.channels])
            for sys_ in systems:
                sys_._loop = loop

    @property
    def burst_bytes(self) -> int:
        """Bytes of one column access; a request larger than this is served as consecutive bursts."""
        return self._burst

    # ----------------------------------------------------------------------------------------- face
    def _route(self, req: MemRequest) -> ChannelController:
        ch = req._ch
        if ch < 0:
            self._decode(req)
            ch = req._ch
        return self.channels[ch]

    def _decode(self, req: MemRequest) -> None:
        if self._cdecode is not None and 0 <= req.addr < 1 << 64:
            self._cdecode(req)
            return
        ch, ra, bg, ba, ro, co = self.mapper.decode(req.addr)
        org = self.spec.org
        req._ch = ch
        req._fb = (ra * org.bankgroups + bg) * org.banks_per_group + ba
        req._row = ro
        req._col = co
        ctl = self.channels[ch]
        req._cmd = ctl.wr_cmd if req.is_write else ctl.rd_cmd

    def _direct_channel(self):
        """The loop a :class:`~archsim.system.trace_driver.TraceDriver` may feed directly, or None.

        Direct feeding (the driver's loop inside the compiled channels' shared cycle loop, no per-request
        objects or events; ``attach_source``, ``src_offered``, ... of the returned ``Loop``) is exact when the
        driver is the memory's only client: the compiled engine, no channel used yet, and
        ``submit``/``can_accept``/``space_event`` not wrapped or overridden. Any number of channels.
        """
        loop = self._loop
        if loop is None or loop.source_active or loop.host_active:
            return None
        cls = type(self)
        if cls.submit is not DRAMSystem.submit or cls.can_accept is not DRAMSystem.can_accept \
                or cls.space_event is not DRAMSystem.space_event:
            return None
        if {"submit", "can_accept", "space_event"} & vars(self).keys():
            return None
        for ch in self.channels:
            if ch.queued != (0, 0, 0) or ch.cycle != 0 or ch.wake_cycle < _NEVER:
                return None
        return loop

    def queue_key(self, req: MemRequest) -> int:
        """Requests wait upstream per channel (decoded by :meth:`can_accept`): a full channel does not hold
        back requests to the others."""
        return req._ch

    def can_accept(self, req: MemRequest) -> bool:
        if req._ch < 0:  # decoded once: a waiting request is asked again on every freed slot
            self._decode(req)
        return self.channels[req._ch].can_accept(req.is_write)

    def space_event(self, req: MemRequest) -> simpy.Event:
        return self._route(req).space_event()

    def submit(self, req: MemRequest) -> simpy.Event:
        """Accept ``req`` now (check :meth:`can_accept` first); the returned event fires on completion."""
        ch = req._ch  # _route, inlined
        if ch < 0:
            self._decode(req)
            ch = req._ch
        ctl = self.channels[ch]
        env = self.env
        if req.done is None:
            req.done = Event(env)
        req.t_submit = env._now
        if req.size > self._burst and self._cdecode is None:
            self._submit_bursts(ctl, req)
        else:
            ctl.submit(req)
        return req.done

    def _submit_bursts(self, ctl: ChannelController, req: MemRequest) -> None:
        """A request larger than one burst (an NMP instruction's row) in the Python engine: one queue entry
        per burst at consecutive addresses, the request completing with its last burst (the compiled
        engine splits it in C the same way)."""
        b = self._burst
        n = -(-req.size // b)
        parts = [MemRequest(req.addr + i * b, req.is_write, b) for i in range(n)]
        for part in parts:  # all checked before any enters the channel
            self._decode(part)
            if part._ch != req._ch:
                raise ValueError("a multi-burst request must stay in one channel")
        req._left = n
        for part in parts:
            part._grp = req
            ctl.submit(part)
        req.added_cycle = part.added_cycle
        req.t_accept = part.t_accept

    # ----------------------------------------------------------------------------------------- results
    def finalize(self, end_ps: int | None = None) -> None:
        """Flush counters into stats and book energy up to ``end_ps`` (default: now)."""
        if self._finalized:
            return
        self._finalized = True
        end_ps = self.env.now if end_ps is None else end_ps
        end_cycle = -(-end_ps // self.tck)
        e = self.energy_model
        book = self.sim.energy.book
        tot = self.stats
        tot_counts: dict[str, float] = {}
        for ch in self.channels:
            ch.close_accounting(end_cycle)
            s = self.stats.child(f"ch{ch.index}")
            counts = {
                "reads": ch.n_reads, "writes": ch.n_writes, "read_write_buffer_hits": ch.n_wq_hits,
                "column_cmds": ch.n_col, "row_hits": ch.n_row_hits, "dual_issue_cycles": ch.n_dual,
                "active_cycles": sum(ch.rank_active), "precharged_cycles": sum(ch.rank_idle),
            }
            for i, cname in enumerate(COMMANDS):
                counts[f"cmd_{cname}"] = ch.n_cmd[i]
            counts["bytes"] = (ch.n_reads + ch.n_writes) * ch.bytes
            for k, v in counts.items():
                s.set(k, v)
                tot_counts[k] = tot_counts.get(k, 0) + v
            s.hists["read_latency_ps"] = ch.lat_hist
            self.latency.merge(ch.lat_hist)
            comp = f"{self.stats.full_name}.ch{ch.index}"
            n_col_rd = ch.n_cmd[2] + ch.n_cmd[4]
            n_col_wr = ch.n_cmd[3] + ch.n_cmd[5]
            book(comp, "act", e.act * ch.n_cmd[ACT])
            book(comp, "read", e.read * n_col_rd)
            book(comp, "write", e.write * n_col_wr)
            if e.io:
                book(comp, "io", e.io * (n_col_rd + n_col_wr))
            if self.book_standby:
                book(comp, "refresh", e.refresh * ch.n_cmd[REF])
                bg = e.act_standby * sum(ch.rank_active) + e.pre_standby * sum(ch.rank_idle)
                if e.bank_standby:  # bank-wise active standby (power.rho < 1)
                    bg += e.bank_standby * sum(ch.bank_open)
                book(comp, "background", bg)
        for k, v in tot_counts.items():
            tot.set(k, v)
        tot.hists["read_latency_ps"] = self.latency

    def summary(self, sim_time_ps: int) -> dict[str, float]:
        """The memory-trace columns of summary.csv (bandwidth in 10^9 B/s of simulated time)."""
        reads = sum(c.n_reads for c in self.channels)
        writes = sum(c.n_writes for c in self.channels)
        col = sum(c.n_col for c in self.channels)
        hits = sum(c.n_row_hits for c in self.channels)
        nbytes = (reads + writes) * self.spec.org.access_bytes
        lat = self.latency
        out = {
            "requests": reads + writes,
            "reads": reads,
            "writes": writes,
            "bandwidth_GBps": nbytes / (sim_time_ps * 1e-3) if sim_time_ps else 0.0,
            "read_latency_mean_ns": lat.mean() / 1000 if lat.count else float("nan"),
            "read_latency_p50_ns": (lat.percentile(50) or 0) / 1000,
            "read_latency_p99_ns": (lat.percentile(99) or 0) / 1000,
            "row_hit_rate": hits / col if col else 0.0,
        }
        nb = self.spec.org.access_bytes
        for ch in self.channels:  # data moved per channel
            b = (ch.n_reads + ch.n_writes) * nb
            out[f"ch{ch.index}_bandwidth_GBps"] = b / (sim_time_ps * 1e-3) if sim_time_ps else 0.0
        return out
