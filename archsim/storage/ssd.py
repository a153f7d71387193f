"""An NVMe SSD: a PCIe link, NVMe queues, a controller, and NAND dies on shared channels.

Path of a read (all times integer picoseconds; docs/storage.md has the closed forms)::

    submit --[queue slot]--> SQE on the link down --latency--> controller --> per page: die senses the page (tR)
      --> the page's sectors cross the die's channel --> their data TLPs go up the link; after the last page the
      completion entry (CQE) follows them --latency--> done

* **Queues** (``queue_depth``): at most that many commands are in the drive (between their submission-queue
  entry and their completion). A request beyond it waits in the host, in order, until a completion frees a slot:
  :meth:`can_accept` is False and :meth:`space_event` fires when a slot frees, so upstream ports wait; a caller
  that submits anyway has its request queued in the host by the drive's model itself (``host_waits``).
* **Link** (:mod:`archsim.storage.pcie`): the 64 B SQE (and a write's data) cross the down direction as TLPs,
  read data and the 16 B CQE cross the up direction; each direction is serial, plus ``link.latency_ns``.
* **Controller** (``controller_latency_ns``): command fetch, decode and FTL lookup, a pipeline delay.
* **FTL: static striping.** Host address ``a`` is drive byte ``a - base`` in logical page
  ``lpn = (a - base) // page_bytes``, which lives on channel ``lpn mod channels``, die
  ``(lpn div channels) mod dies_per_channel``, plane ``(lpn div (channels x dies_per_channel)) mod planes_per_die``
  (channel first, then die, then plane: consecutive pages spread over the channels, then the dies). The mapping
  never changes: no garbage collection, no wear levelling, no write amplification.
* **Requests of any size** are split at page boundaries; each part reads its whole page in the die (tR) but
  moves only the sectors it needs (``sector_bytes``, the LBA size) over the channel and the link
  (``channel_transfer: page`` moves the whole page over the channel instead). The request completes when the
  last part's data are at the host. A 64 B line costs one sector; a 144 B row one or two; a 4 KiB block
  4096 B.
* **Dies**: a die (with ``independent_plane_reads`` a plane) holds one operation at a time, from the start of its
  tR until its data have crossed the channel (the page register is busy until drained; no cache reads), in
  the order the parts reached it. A die that is busy makes later parts to it wait.
* **Channels**: a channel's bus moves one part at a time, at ``channel_rate_MTps x channel_width_bits / 8`` bytes
  per us, in the order the parts became ready (their tR ended); dies on one channel overlap their tR but
  serialise their transfers.
* **Writes**: the data cross the link down after the command, then the channel into the die, which programs
  the page (``tPROG_us``); the write completes when every page is programmed (no DRAM write buffer acknowledges
  it sooner), and a partial-page write programs the page without reading it first.
* **Energy**: ``read_energy_nJ`` per page read (kind ``read``), ``program_energy_nJ`` per page program (kind
  ``write``), ``idle_power_W`` over the whole run (kind ``background``).

Abstracted away: garbage collection, write amplification and over-provisioning, the FTL's mapping-table misses,
read retries and ECC decode failures, read disturb, TLC page types (one tR for LSB, CSB and MSB pages), cache
and multi-plane reads, suspend/resume of programs and erases, erases, the drive's DRAM cache, several NVMe
queue pairs and their arbitration, interrupt coalescing, power states and thermal throttling.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import simpy

from archsim.core.component import Component
from archsim.core.port import Slots, call_at, finish_at
from archsim.core.request import MemRequest, Message
from archsim.core.sim import Simulator
from archsim.storage.pcie import CQE_BYTES, SQE_BYTES, PCIeLink
from archsim.storage.spec import SSDSpec, ssd_errors

__all__ = ["SSD"]


class _Part:
    """The page-aligned part of a request that one die serves."""

    __slots__ = ("req", "unit", "ch", "host_bytes", "xfer_ps", "write")

    def __init__(self, req: MemRequest, unit: int, ch: int, host_bytes: int, xfer_ps: int, write: bool) -> None:
        self.req = req
        self.unit = unit
        self.ch = ch
        self.host_bytes = host_bytes
        self.xfer_ps = xfer_ps
        self.write = write


class SSD(Component):
    """An NVMe SSD serving host addresses ``[base, base + capacity)``; see the module docstring for the timing."""

    def __init__(self, sim: Simulator, name: str, spec: SSDSpec) -> None:
        super().__init__(sim, name)
        errs = ssd_errors(spec)
        if errs:
            path, msg = errs[0]
            raise ValueError(f"{name}: {'.'.join(map(str, path))}: {msg}")
        self.spec = spec
        self.base = spec.base
        self.end = spec.end
        self.link = PCIeLink(spec.link)
        self.controller_ps = int(round(spec.controller_latency_ns * 1000))
        self.tR_ps = int(round(spec.tR_us * 1_000_000))
        self.tPROG_ps = int(round(spec.tPROG_us * 1_000_000))
        self.page = spec.page_bytes
        self.sector = spec.sector_bytes
        self.C = spec.channels
        self.D = spec.dies_per_channel
        self.P = spec.planes_per_die if spec.independent_plane_reads else 1
        self.whole_page = spec.channel_transfer == "page"
        ppb = spec.channel_ps_per_byte
        self._ch_num, self._ch_den = ppb.numerator, ppb.denominator
        n = self.C * self.D * self.P
        self.unit_busy = [False] * n
        self.unit_since = [0] * n
        self.unit_q: list[deque[_Part]] = [deque() for _ in range(n)]
        self.ch_busy = [False] * self.C
        self.ch_q: list[deque[_Part]] = [deque() for _ in range(self.C)]
        self.unit_busy_ps = 0
        self.ch_busy_ps = 0
        self.slots = Slots(self.env, spec.queue_depth)
        self.host_q: deque[MemRequest] = deque()
        self.host_waits = 0
        self.reads = 0
        self.writes = 0
        self.bytes_read = 0
        self.bytes_written = 0
        self.page_reads = 0
        self.page_programs = 0
        self.read_latency = self.stats.hist("read_latency_ps")
        self.write_latency = self.stats.hist("write_latency_ps")
        self._finalized = False

    # ------------------------------------------------------------------ timing helpers (also for tests and docs)
    def transfer_ps(self, nbytes: int) -> int:
        """ps ``nbytes`` take on a channel's bus: ``ceil(nbytes x 8 x 10^6 / (MT/s x width))``."""
        return -(-nbytes * self._ch_num // self._ch_den)

    def locate(self, addr: int) -> tuple[int, int, int]:
        """(channel, die on the channel, plane) of the page holding host address ``addr`` (static striping)."""
        lpn = (addr - self.base) // self.page
        r = lpn // self.C
        return lpn % self.C, r % self.D, (r // self.D) % self.spec.planes_per_die

    def sector_span(self, addr: int, size: int) -> tuple[int, int]:
        """Drive bytes ``[lo, hi)``: the whole sectors that cover ``size`` bytes at host address ``addr``."""
        off = addr - self.base
        s = self.sector
        return off // s * s, -(-(off + size) // s) * s

    def idle_read_latency_ps(self, addr: int, size: int) -> int:
        """Latency of one read inside one page on an idle drive: link down (SQE) + controller + tR + channel
        transfer + link up (data, then CQE)."""
        lo, hi = self.sector_span(addr, size)
        if lo // self.page != (hi - 1) // self.page:
            raise ValueError("idle_read_latency_ps: the read spans pages")
        link = self.link
        up = -(-(link.wire_bytes(hi - lo) + link.wire_bytes(CQE_BYTES)) * link.up.byte_u // link.up.scale)
        xfer = self.transfer_ps(self.page if self.whole_page else hi - lo)
        return (link.serialisation_ps(SQE_BYTES) + link.latency_ps + self.controller_ps + self.tR_ps + xfer + up
                + link.latency_ps)

    # ------------------------------------------------------------------ face
    def can_accept(self, req: Any) -> bool:
        return self.slots.used < self.slots.limit

    def space_event(self, req: Any) -> simpy.Event:
        return self.slots.space_event()

    def windows(self) -> list[tuple[int, int]]:
        """The host address window it serves."""
        return [(self.base, self.end)]

    def owner_of(self, addr: int) -> tuple[Component, int]:
        """The drive holds ``addr`` (the end of :meth:`archsim.system.table_map.TableMap.owner`'s walk)."""
        return self, addr

    def submit(self, req: MemRequest) -> simpy.Event:
        """Take ``req`` (a read or write of ``size`` bytes at a host address in the drive's window); the returned
        event fires when its completion entry is at the host. With the queues full it waits in the host."""
        if isinstance(req, Message) or not isinstance(req, MemRequest):
            raise TypeError(f"{self.name}: an SSD serves reads and writes (MemRequest), not {req!r}")
        if type(req.addr) is not int or type(req.size) is not int:  # numpy integers would leak into the clock
            req.addr, req.size = int(req.addr), int(req.size)
        if req.size <= 0:
            raise ValueError(f"{self.name}: request size must be positive, got {req.size}")
        if not (self.base <= req.addr and req.addr + req.size <= self.end):
            raise ValueError(f"{self.name}: [0x{req.addr:x}, 0x{req.addr + req.size:x}) is outside "
                             f"[0x{self.base:x}, 0x{self.end:x})")
        env = self.env
        req.t_submit = env.now
        if req.done is None:
            req.done = env.event()
        if self.slots.used < self.slots.limit:
            self._issue(req)
        else:
            self.host_q.append(req)
            self.host_waits += 1
        return req.done

    # ------------------------------------------------------------------ internals
    def _issue(self, req: MemRequest) -> None:
        """The command takes a queue slot and its SQE (and a write's data) crosses the link down."""
        self.slots.take()
        now = self.env.now
        req.t_accept = now
        link = self.link
        at = link.send(link.down, now, SQE_BYTES, False)
        if req.is_write:
            lo, hi = self.sector_span(req.addr, req.size)
            at = link.send(link.down, now, hi - lo, True)
        call_at(self.env, at + self.controller_ps, self._start, req)

    def _start(self, ev: simpy.Event) -> None:
        """The controller has the command: split it at page boundaries, each part to its die."""
        req: MemRequest = ev.value
        write = req.is_write
        if write:
            self.writes += 1
            self.bytes_written += req.size
        else:
            self.reads += 1
            self.bytes_read += req.size
        lo, hi = self.sector_span(req.addr, req.size)
        page = self.page
        req._left = (hi - 1) // page - lo // page + 1
        C, D, P = self.C, self.D, self.P
        now = self.env.now
        while lo < hi:
            lpn = lo // page
            stop = (lpn + 1) * page
            if stop > hi:
                stop = hi
            r = lpn // C
            ch = lpn % C
            unit = ch * D + r % D
            if P > 1:
                unit = unit * P + (r // D) % P
            nb = stop - lo
            part = _Part(req, unit, ch, nb, self.transfer_ps(page if self.whole_page and not write else nb), write)
            if self.unit_busy[unit]:
                self.unit_q[unit].append(part)
            else:
                self.unit_busy[unit] = True
                self.unit_since[unit] = now
                self._begin(part)
            lo = stop

    def _begin(self, part: _Part) -> None:
        """The die is the part's: a read senses its page; a write's data first cross the channel."""
        if part.write:
            self._want_channel(part)
        else:
            self.page_reads += 1
            call_at(self.env, self.env.now + self.tR_ps, self._sensed, part)

    def _sensed(self, ev: simpy.Event) -> None:
        self._want_channel(ev.value)

    def _want_channel(self, part: _Part) -> None:
        c = part.ch
        if self.ch_busy[c]:
            self.ch_q[c].append(part)
        else:
            self.ch_busy[c] = True
            call_at(self.env, self.env.now + part.xfer_ps, self._moved, part)

    def _moved(self, ev: simpy.Event) -> None:
        """A part's bytes have crossed the channel: the bus takes the next ready part; a read frees its die and
        sends its data up, a write starts programming."""
        part: _Part = ev.value
        c = part.ch
        now = self.env.now
        self.ch_busy_ps += part.xfer_ps
        q = self.ch_q[c]
        if q:
            nxt = q.popleft()
            call_at(self.env, now + nxt.xfer_ps, self._moved, nxt)
        else:
            self.ch_busy[c] = False
        if part.write:
            self.page_programs += 1
            call_at(self.env, now + self.tPROG_ps, self._programmed, part)
            return
        self._free_unit(part.unit)
        self.link.send(self.link.up, now, part.host_bytes, True)
        self._part_done(part)

    def _programmed(self, ev: simpy.Event) -> None:
        part: _Part = ev.value
        self._free_unit(part.unit)
        self._part_done(part)

    def _free_unit(self, u: int) -> None:
        q = self.unit_q[u]
        if q:
            self._begin(q.popleft())
        else:
            self.unit_busy[u] = False
            self.unit_busy_ps += self.env.now - self.unit_since[u]

    def _part_done(self, part: _Part) -> None:
        req = part.req
        req._left -= 1
        if req._left == 0:  # the completion entry follows the data up
            at = self.link.send(self.link.up, self.env.now, CQE_BYTES, False)
            finish_at(self.env, req, at, self._finished)

    def _finished(self, ev: simpy.Event) -> None:
        """The CQE is at the host: record the latency, free the queue slot, issue a request waiting in the host."""
        req: MemRequest = ev.value
        (self.write_latency if req.is_write else self.read_latency).record(req.t_done - req.t_submit)
        self.slots.give()
        if self.host_q and self.slots.used < self.slots.limit:
            self._issue(self.host_q.popleft())

    # ------------------------------------------------------------------ results
    def _busy_fraction(self, end_ps: int) -> tuple[float, float]:
        if end_ps <= 0:
            return 0.0, 0.0
        units = self.unit_busy_ps + sum(end_ps - s for s, b in zip(self.unit_since, self.unit_busy) if b)
        return units / (len(self.unit_busy) * end_ps), self.ch_busy_ps / (self.C * end_ps)

    def link_bytes(self) -> dict[str, float]:
        """Wire bytes of both directions of the PCIe link: ``data`` (data TLPs), ``request`` (queue entries)."""
        link = self.link
        return {"request": float(link.down.queue_wire + link.up.queue_wire),
                "data": float(link.down.data_wire + link.up.data_wire)}

    def summary(self, end_ps: int) -> dict[str, float]:
        """Requests, bandwidth (requested bytes per ns = GB/s), IOPS, latency (ns), page operations,
        utilisation of dies and channels, link payload per direction."""
        per_ns = end_ps * 1e-3
        nan = float("nan")
        rl, wl = self.read_latency, self.write_latency
        die_u, ch_u = self._busy_fraction(end_ps)
        n = self.reads + self.writes
        return {
            "requests": n,
            "reads": self.reads,
            "writes": self.writes,
            "bandwidth_GBps": (self.bytes_read + self.bytes_written) / per_ns if per_ns else 0.0,
            "iops": n / (end_ps * 1e-12) if end_ps else 0.0,
            "read_latency_mean_ns": rl.mean() / 1000 if rl.count else nan,
            "read_latency_p50_ns": rl.percentile(50) / 1000 if rl.count else nan,
            "read_latency_p99_ns": rl.percentile(99) / 1000 if rl.count else nan,
            "write_latency_mean_ns": wl.mean() / 1000 if wl.count else nan,
            "page_reads": self.page_reads,
            "page_programs": self.page_programs,
            "die_utilization": die_u,
            "channel_utilization": ch_u,
            "link_up_GBps": self.link.up.payload_bytes / per_ns if per_ns else 0.0,
            "link_down_GBps": self.link.down.payload_bytes / per_ns if per_ns else 0.0,
            "host_waits": self.host_waits,
            "max_outstanding": self.slots.peak,
        }

    def finalize(self, end_ps: int | None = None) -> None:
        """Flush counters into stats and book the energy: page reads, page programs, idle power over the run."""
        if self._finalized:
            return
        self._finalized = True
        s = self.stats
        for k in ("reads", "writes", "bytes_read", "bytes_written", "page_reads", "page_programs", "host_waits"):
            s.set(k, getattr(self, k))
        s.set("max_outstanding", self.slots.peak)
        for key, wire in (("down", self.link.down), ("up", self.link.up)):
            w = s.child(key)
            for k in ("messages", "tlps", "wire_bytes", "payload_bytes"):
                w.set(k, getattr(wire, k))
        led, me, spec = self.sim.energy, s.full_name, self.spec
        led.book_n(me, "read", spec.read_energy_nJ * 1000.0, self.page_reads)
        led.book_n(me, "write", spec.program_energy_nJ * 1000.0, self.page_programs)
        if end_ps is not None:
            s.set("die_busy_ps", self.unit_busy_ps)
            s.set("channel_busy_ps", self.ch_busy_ps)
            led.book(me, "background", spec.idle_power_W * end_ps)  # W x ps = pJ
