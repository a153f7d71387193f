"""The compiled host engine (issue #15): a host's cores, its LLC and the LLC's memory port inside the compiled
DRAM loop (``archsim/dram/_chost.h``), for the common case of a host whose LLC sits straight on a compiled
DRAM system.

The engine runs the same events as the Python fast path (``Core.pump_light``, ``Cache.read_light`` and the
cache's miss path, ``MemoryPort.send``, ``DRAMSystem.submit``) at the same times and in the same order, so the
results are bit-identical (tests/test_host_engine.py runs both); it only spends no Python call, object or SimPy
event per line. :func:`attach` decides whether a host qualifies and wires the engine in; anything else (another
memory path, a near-data component, another replacement policy, ``ARCHSIM_HOST_ENGINE=python``) keeps the
Python paths. ``ARCHSIM_HOST_ENGINE=python`` runs the reference paths; ``ARCHSIM_HOST_ENGINE=fast`` (default)
attaches the engine wherever it applies.

Once attached, the engine owns the LLC's state changes: its tags (shared with the Python object through
``_ctags``'s C API, so the counters and contents a caller reads are the engine's), its misses in flight and the
port's queues. A Python call of the cache's ``submit`` or ``read_light`` is refused with an error instead of
silently racing the engine.
"""

from __future__ import annotations

import heapq
from typing import TYPE_CHECKING

import numpy as np

from archsim.cache.component import Cache
from archsim.core.port import Light, MemoryPort
from archsim.core.sim import Environment
from archsim.cxl.flit import MESSAGES
from archsim.cxl.link import LINK_KINDS
from archsim.dram.memory import DRAMSystem
from archsim.system.memory_map import AddressRouter

try:
    from archsim.cache import _ctags
except ImportError:  # pragma: no cover - only without the extension
    _ctags = None

if TYPE_CHECKING:
    from archsim.system.embedding import EmbeddingOperator


def _plain_dram(dram) -> bool:
    return type(dram) is DRAMSystem and not {"submit", "can_accept", "space_event", "queue_key"} & vars(dram).keys()


def _host_dram(op: EmbeddingOperator):
    """The DRAM system the host engine feeds (straight behind the LLC, or the host DRAM of the LLC's router when
    the rest of the router's range is a CXL fabric the engine takes: :func:`_fabric`), or None."""
    mem = op.mem
    if op.near_data is not None or type(mem) is not Cache or type(op.env) is not Environment:
        return None
    if _ctags is None or type(mem.tags) is not _ctags.LRUTags or mem.mshr:
        return None
    port = mem.port
    if type(port) is not MemoryPort or port.waiting:
        return None
    dram = port.mem
    if type(dram) is AddressRouter:
        fab = _fabric(op)
        if fab is None:
            return None
        dram = fab[0]
    if not _plain_dram(dram):
        return None
    loop = dram._loop
    if loop is None or not hasattr(loop, "attach_host") or loop.source_active or loop.host_active:
        return None
    if not (mem.spec.line_bytes <= dram.burst_bytes and mem.spec.line_bytes == op.line_bytes):
        return None
    return dram


def _fabric(op: EmbeddingOperator):
    """(host DRAM, upstream link, switch, [(link, expander)] per output) when the LLC's router sends its range
    above the host DRAM to one link into a switch of one upstream port whose every output is a link to an
    expander with its own compiled DRAM, reads of 64 B lines only (the compiled CXL path, archsim/dram/_cfab.h);
    None otherwise (the Python paths)."""
    from archsim.cxl.expander import Expander
    from archsim.cxl.link import Link
    from archsim.cxl.switch import Switch, UpstreamPort

    router = op.mem.port.mem
    if op.mem.spec.line_bytes != 64 or type(router) is not AddressRouter or len(router._dest) != 2:
        return None
    dram, link1 = router._dest
    if router._lo != [0, router._hi[0]] or router._hi[1] != 1 << 64 or type(link1) is not Link:
        return None
    if not _plain_dram(dram) or type(link1.port) is not MemoryPort or type(link1.port.mem) is not UpstreamPort:
        return None
    sw = link1.port.mem.switch
    if type(sw) is not Switch or len(sw._in_ports) != 1 or link1.port.waiting:
        return None
    outs = []
    for o in sw._outputs:
        link2 = o.target
        if type(link2) is not Link or type(link2.port) is not MemoryPort or type(link2.port.mem) is not Expander:
            return None
        exp = link2.port.mem
        if (exp.reducer is not None or type(exp.port) is not MemoryPort or exp.port.waiting
                or not _plain_dram(exp.dram) or exp.dram._loop is not dram._loop):
            return None
        outs.append((link2, exp))
    for link in [link1] + [lk for lk, _ in outs]:
        if link.m2s.messages or link.s2m.messages or link.slots.used or link.m2s.scale != link.s2m.scale:
            return None
    return dram, link1, sw, outs


def _refuse(*_args, **_kw):
    raise RuntimeError("this LLC is driven by the compiled host engine (archsim/system/host_engine.py): "
                       "it takes no other requests")


def attach(op: EmbeddingOperator):
    """Attach the compiled engine to ``op``'s host if it qualifies; the DRAM loop that runs it, or None."""
    dram = _host_dram(op)
    if dram is None:
        return None
    cache: Cache = op.mem
    loop = dram._loop
    host = op.host
    try:
        loop.attach_host(tuple(dram.channels), cache.tags, cache.spec.line_bytes, cache.hit_ps, cache.to_next_ps,
                         cache.from_next_ps, host.cores, host.fill_buffers, host.bag_schedule == "static",
                         op._host_batch_end, op.env._queue, op.env._eid, heapq.heappush, Light)
    except RuntimeError:  # the loop already feeds another host or a trace
        return None
    if type(cache.port.mem) is AddressRouter:
        _attach_fabric(op, loop)
    cache.submit = cache.read_light = _refuse
    cache.sync_hook = op.host_sync
    return loop


def link_args(link) -> tuple:
    """A link's timing for the compiled fabric (archsim/dram/_cfab.h parse_link)."""
    w = link.m2s
    return (link.port_ps, link.phy_ps, link.slots.limit, w.scale, w.flit_u, tuple(w.cost_u[m] for m in MESSAGES))


def attach_fabric(loop, env, link1, sw, outs, dram_lo: int = 0, dram_hi: int = 0) -> None:
    """The compiled fabric on ``loop``: ``link1`` into switch ``sw`` whose outputs are ``outs`` ((link,
    expander), or None for the PIFS units' command output), in output order; ``[dram_lo, dram_hi)``: the host
    DRAM's range of the host engine's router (the rest goes to ``link1``)."""
    spans = [(lo, hi, o) for lo, hi, o in sw._spans]
    exps, olist = [], []
    for e, pair in enumerate(outs):
        if pair is None:
            exps.append(None)
            olist.append(None)
            continue
        link2, exp = pair
        exps.append((exp.base, exp.end, exp.controller_ps, tuple(exp.dram.channels)))
        olist.append((link_args(link2), e))
    loop.attach_fab(dram_lo, dram_hi, link_args(link1), sw.fwd_ps, sw.slot_ps, sw.queue_depth,
                    sw.arbitration == "oldest_first", spans, olist, exps, env._queue, env._eid, heapq.heappush, Light)
    for comp in [link1] + [x for pair in outs if pair is not None for x in pair]:
        comp.submit = _refuse


def _attach_fabric(op: EmbeddingOperator, loop) -> None:
    _dram, link1, sw, outs = _fabric(op)
    attach_fabric(loop, op.env, link1, sw, outs, 0, op.mem.port.mem._hi[0])
    op._fabric = (link1, sw, outs)


def _wire_sync(wire, st) -> None:
    wire.free_u, wire.p_start_u, wire.p_end_u, wire.flits, wire.messages, wire.payload_bytes, by_type, units = st
    for m, n in zip(MESSAGES, by_type, strict=True):
        wire.by_type[m] = n
    for k, u in zip(LINK_KINDS[:-1], units, strict=True):
        wire.units_by_kind[k] = u


def _link_sync(link, st) -> None:
    m2s, s2m, used, peak = st
    _wire_sync(link.m2s, m2s)
    _wire_sync(link.s2m, s2m)
    link.slots.used = used
    link.slots.peak = peak


def fabric_sync(loop, link1, sw, outs) -> None:
    """Write the compiled fabric's state into the Python components (their counters, wires, credits and
    queue-delay histograms), so that what they report is what the engine did."""
    l1, l2s, up, out_st, exp_st, seq = loop.fab_take()
    _link_sync(link1, l1)
    port = sw._in_ports[0]
    port.slots.used, port.slots.peak, port.requests, port.bytes_rx, port.bytes_tx, qd = up
    if qd:
        port.queue_delay.record_array(np.frombuffer(qd, dtype=np.int64))
    for pair, lst, ost, est, o in zip(outs, l2s, out_st, exp_st, sw._outputs, strict=True):
        o.requests, o.bytes_rx, o.bytes_tx, qd, o.next_slot, pending, o.waiting = ost
        o.pending = bool(pending)
        if qd:
            o.queue_delay.record_array(np.frombuffer(qd, dtype=np.int64))
        if pair is None:
            continue
        link2, exp = pair
        _link_sync(link2, lst)
        exp.reads, exp.bytes = est
    sw._seq = seq


def batch_arrays(work: list, pool_ps: list[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """The bags of a batch's host tables for the engine, in loop-nest order: the line addresses of all tables
    (int64), per bag with lines the first and last+1 index of its lines and its tables' pooling time of a line,
    and the number of bags without lines (they are done at once). ``work``: ``(t, addrs, line_off)`` per table."""
    addrs, lo, hi, pps = [], [], [], []
    base = 0
    empty = 0
    for t, a, off in work:
        a = np.asarray(a, dtype=np.int64)
        off = np.asarray(off, dtype=np.int64)
        b_lo, b_hi = off[:-1] + base, off[1:] + base
        keep = b_hi > b_lo
        empty += int(len(keep) - keep.sum())
        addrs.append(a[:int(off[-1])] if len(off) else a[:0])
        lo.append(b_lo[keep])
        hi.append(b_hi[keep])
        pps.append(np.full(int(keep.sum()), pool_ps[t], dtype=np.int64))
        base += int(off[-1]) if len(off) else 0
    return _cat(addrs), _cat(lo), _cat(hi), _cat(pps), empty


def _cat(parts: list[np.ndarray]) -> np.ndarray:
    if not parts:
        return np.zeros(0, dtype=np.int64)
    return np.ascontiguousarray(np.concatenate(parts), dtype=np.int64)
