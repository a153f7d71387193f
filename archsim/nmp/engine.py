"""The compiled NMP engine (issue #15): RecNMP and ReCross units inside the compiled DRAM loop
(``archsim/dram/_cnmp.h``).

The engine runs the events of :mod:`archsim.nmp.rank` (an instruction's delivery over the C/A bus, the units'
rank-cache lookups and reads, the data's arrival and pooling, the partial sums' trips to the adders, the buffer
chip and the host) at the same times and in the same order, so the results are bit-identical
(tests/test_host_engine.py runs both); it only spends no Python call, object or SimPy event per instruction or
read. What stays here: a batch's bags are decoded into instructions and parts in one vectorised pass
(:func:`dispatch_arrays`: the same arithmetic as ``RankNMP._dispatch``, bag after bag), and each bag's end
completes its ``GatherReduce`` in Python.

It applies to a :class:`~archsim.nmp.rank.RankNMP` that is a host's near-data component (the host flushes the
bags it sent at the end of the batch's start, before anything else happens at that instant, so deferring them
there changes no order), without RecNMP packets, whose rank caches (if any) are compiled LRU tag arrays, on the
compiled DRAM engine. ``ARCHSIM_HOST_ENGINE=python`` runs the reference.
"""

from __future__ import annotations

import heapq
from typing import TYPE_CHECKING

import numpy as np

from archsim.core.port import Light, MemoryPort
from archsim.core.sim import Environment, host_engine_name
from archsim.dram.memory import DRAMSystem
from archsim.workload.spec import DTYPE_BYTES

try:
    from archsim.cache import _ctags
except ImportError:  # pragma: no cover - only without the extension
    _ctags = None

if TYPE_CHECKING:
    from archsim.core.request import GatherReduce
    from archsim.nmp.rank import RankNMP


def qualifies(nmp: RankNMP) -> bool:
    """Whether the compiled engine can run ``nmp`` (module docstring)."""
    if host_engine_name() != "fast" or type(nmp.env) is not Environment or nmp.packet_size:
        return False
    if nmp.table_map is None or _ctags is None:
        return False
    dram = nmp.dram
    if type(dram) is not DRAMSystem or {"submit", "can_accept", "space_event", "queue_key"} & vars(dram).keys():
        return False
    loop = dram._loop
    if loop is None or not hasattr(loop, "attach_nmp") or loop.source_active:
        return False
    if type(nmp.port) is not MemoryPort or nmp.port.waiting or nmp.port.mem is not dram:
        return False
    for u in nmp.units:
        if u.port is not nmp.port:
            return False
        c = u.cache
        if c is not None and (type(c.tags) is not _ctags.LRUTags or c.pending or c.shift != 6):
            return False
    return True


def attach(nmp: RankNMP):
    """Attach the compiled engine to ``nmp`` if it qualifies; the DRAM loop that runs it, or None."""
    if not qualifies(nmp):
        return None
    dram = nmp.dram
    loop = dram._loop
    units = []
    for u in nmp.unit_list:
        if u is None:  # no unit of this id (bank-group and bank levels have no rank unit)
            units.append((0, 0, 0, None))
            continue
        units.append((u.ch, u.rank, u.sub, u.cache.tags if u.cache is not None else None))
    cfg = {
        "host_channels": nmp.nch, "ranks": nmp.ranks, "bankgroups": nmp.bgs, "banks_per_group": nmp.bpg,
        "level_rank": int(nmp.level == "rank"), "cross": int(nmp.cross), "bg_adders": int(bool(nmp.bg_adders)),
        "to_ps": nmp.to_ps, "hit_ps": nmp.units[0].hit_ps, "burst_ps": nmp.burst_ps, "ccd_l_ps": nmp.ccd_l_ps,
        "from_ps": nmp.from_ps, "combine_ps": nmp.combine_ps, "access_bytes": nmp.access_bytes,
        "inst_ps": float(nmp.inst_ps),
    }
    env = nmp.env
    try:
        loop.attach_nmp(tuple(dram.channels), units, cfg, nmp._engine_bag_done, env._queue, env._eid,
                        heapq.heappush, Light)
    except RuntimeError:
        return None
    return loop


def table_runs(grs: list[GatherReduce]):
    """The runs of consecutive bags of one table in ``grs`` (a batch sends its tables one after another):
    ``(table, first, end, rows of the run concatenated, rows per bag)``."""
    nb = len(grs)
    i = 0
    while i < nb:
        t = grs[i].table
        j = i
        while j < nb and grs[j].table == t:
            j += 1
        rows = [np.asarray(g.rows, dtype=np.int64) for g in grs[i:j]]
        lens = np.array([len(r) for r in rows], dtype=np.int64)
        yield t, i, j, np.concatenate(rows), lens
        i = j


def dispatch_arrays(nmp: RankNMP, grs: list[GatherReduce]) -> tuple:
    """``RankNMP._dispatch`` of every bag of ``grs``, in one pass: per bag the pooling time of a line, of a partial
    sum and the bursts of a partial sum; per part (a unit's share of a bag, bag-major, units in id order) its
    bag, unit, lines and elements per line; per instruction (bag after bag, in order) its part, first line and
    lines, and whether the rank cache may keep the lines; the lines' local addresses. Indices are local to the
    call."""
    tm = nmp.table_map
    nb = len(grs)
    line_ps = np.empty(nb, dtype=np.int64)
    dim_ps = np.empty(nb, dtype=np.int64)
    bursts = np.empty(nb, dtype=np.int64)
    elems_b = np.empty(nb, dtype=np.int64)
    parts = []  # per run of bags of one table: (local, uid, row_id, hot, bag index per line)
    row_base = 0
    for t, i, j, allrows, lens in table_runs(grs):
        addrs, counts = tm.line_addresses(t, allrows)
        if nmp.window_base:
            addrs = addrs - nmp.window_base
        per_row = counts if counts is not None else np.full(len(allrows), tm.lines_per_row(t), dtype=np.int64)
        ch, ra, bg, ba, ro, co = nmp.mapper.decode_array(addrs)
        local = nmp.local_mapper.encode_array(ch * nmp.ranks + ra, 0 * ch, bg, ba, ro, co)
        hot = np.repeat(tm.is_hot(t, allrows), per_row) if tm.hot is not None else None
        if nmp.level == "rank":
            sub = np.full(len(addrs), -1, dtype=np.int64)
        elif nmp.level == "bankgroup":
            sub = bg
        else:
            sub = bg * nmp.bpg + ba
            if nmp.cross:
                sub = np.where(hot, -1, sub) if nmp.hot_at_rank else np.where(hot, sub, -1)
        uid = (ch * nmp.ranks + ra) * nmp.nsub1 + sub + 1
        row_id = row_base + np.repeat(np.arange(len(allrows), dtype=np.int64), per_row)
        row_base += len(allrows)
        bag_of_row = np.repeat(np.arange(i, j, dtype=np.int64), lens)
        bag_of_line = np.repeat(bag_of_row, per_row)
        parts.append((local, uid, row_id, hot, bag_of_line))
        for k in range(i, j):
            gr = grs[k]
            e = max(1, min(gr.row_bytes, 64) // DTYPE_BYTES[gr.dtype])
            elems_b[k] = e
            line_ps[k] = nmp.pool_ps(e)
            dim_ps[k] = nmp.pool_ps(gr.dim)
            bursts[k] = -(-(gr.dim * 4) // nmp.access_bytes)
    local = np.concatenate([p[0] for p in parts]).astype(np.int64)
    uid = np.concatenate([p[1] for p in parts]).astype(np.int64)
    row_id = np.concatenate([p[2] for p in parts])
    bag_of_line = np.concatenate([p[4] for p in parts])
    hot = np.concatenate([p[3] for p in parts]) if tm.hot is not None else None
    n = len(local)
    # instructions: runs of lines of one row in one unit
    starts = np.flatnonzero(np.concatenate(([True], (row_id[1:] != row_id[:-1]) | (uid[1:] != uid[:-1]))))
    seg_len = np.diff(np.append(starts, n)).astype(np.int64)
    nu = len(nmp.unit_list)
    keys, inv = np.unique(bag_of_line[starts] * nu + uid[starts], return_inverse=True)
    part_bag = (keys // nu).astype(np.int64)
    part_unit = (keys % nu).astype(np.int64)
    part_lines = np.bincount(inv, weights=seg_len, minlength=len(keys)).astype(np.int64)
    part_elems = elems_b[part_bag]
    cab = hot[starts].astype(np.int64) if nmp.admit_hot else np.ones(len(starts), dtype=np.int64)
    c = np.ascontiguousarray
    return (line_ps, dim_ps, bursts, c(part_bag), c(part_unit), c(part_lines), c(part_elems),
            c(inv.astype(np.int64)), c(starts.astype(np.int64)), seg_len, c(cab), c(local))
