"""The compiled PIFS-Rec engine (issue #15): the units in a CXL switch, with the fabric they read through, inside
the compiled DRAM loop (``archsim/dram/_cfab.h``).

The engine runs the events of :mod:`archsim.cxl.pifs` (a bag's command down the host link, through the switch to
the units, the units' reads through the ports' links and the expanders, the on-switch buffer, the serial
datapaths, the combiner, the pooled vector back up) and of the links, the switch and the expanders at the same
times and in the same order, so the results are bit-identical (tests/test_host_engine.py runs both). What stays
here: each bag's submit (it takes its insertion id there), the decoding of a batch's bags into the units' parts
(:func:`dispatch_data`, vectorised, handed over when the host has sent the batch), each bag's end, and the
write-back of the counters (:meth:`PIFS._engine_sync`).

It applies to units in the switch (``location: switch``) without hot-row replicas, whose buffer (if any) is a
compiled LRU tag array, behind a switch of one upstream port (one host) whose other outputs are links to
expanders without units of their own, on the compiled DRAM engine. ``ARCHSIM_HOST_ENGINE=python`` runs the
reference.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from archsim.core.port import MemoryPort
from archsim.core.sim import Environment, host_engine_name
from archsim.cxl.expander import Expander
from archsim.cxl.flit import M2S_RWD
from archsim.cxl.link import Link
from archsim.cxl.switch import UpstreamPort
from archsim.dram.memory import DRAMSystem
from archsim.nmp.engine import table_runs

try:
    from archsim.cache import _ctags
except ImportError:  # pragma: no cover - only without the extension
    _ctags = None

if TYPE_CHECKING:
    from archsim.core.request import GatherReduce
    from archsim.cxl.pifs import PIFS


def _outputs(pifs: PIFS) -> list | None:
    """Per switch output: (link, expander), or None for the units' command output; None if one is neither."""
    from archsim.cxl.pifs import _CommandFace

    outs = []
    for o in pifs.switch._outputs:
        t = o.target
        if type(t) is _CommandFace:
            outs.append(None)
            continue
        if type(t) is not Link or type(t.port) is not MemoryPort or type(t.port.mem) is not Expander:
            return None
        exp = t.port.mem
        if exp.reducer is not None or type(exp.port) is not MemoryPort or exp.port.waiting:
            return None
        if type(exp.dram) is not DRAMSystem or exp.dram._loop is None:
            return None
        outs.append((t, exp))
    return outs


def attach(pifs: PIFS):
    """Attach the compiled engine to ``pifs`` if it applies; the DRAM loop that runs it, or None."""
    if host_engine_name() != "fast" or type(pifs.env) is not Environment or _ctags is None:
        return None
    if pifs.in_device or pifs.replicas is not None:
        return None
    buf = pifs.buffer
    if buf is not None and (type(buf.tags) is not _ctags.LRUTags or buf.pending or buf.shift != 6):
        return None
    sw = pifs.switch
    link1 = pifs.host_link
    if len(sw._in_ports) != 1 or type(link1) is not Link or type(link1.port) is not MemoryPort:
        return None
    if type(link1.port.mem) is not UpstreamPort or link1.port.mem is not sw._in_ports[0]:
        return None
    if pifs.front.port.waiting or link1.port.waiting:
        return None
    outs = _outputs(pifs)
    if outs is None or sum(x is None for x in outs) != 1 or len(pifs.units) != len(outs) - 1:
        return None
    loops = {id(pair[1].dram._loop): pair[1].dram._loop for pair in outs if pair is not None}
    if len(loops) != 1:
        return None
    (loop,) = loops.values()
    if not hasattr(loop, "attach_pifs") or loop.source_active:
        return None
    for u, pair in zip(pifs.units, outs, strict=False):
        if pair is None or u.link is not pair[0] or u.device is not None or u.port.waiting:
            return None
    for link in [link1] + [p[0] for p in outs if p is not None]:
        if link.m2s.messages or link.s2m.messages or link.slots.used:
            return None
    from archsim.system.host_engine import attach_fabric

    try:
        attach_fabric(loop, pifs.env, link1, sw, outs)
    except RuntimeError:  # the loop has a fabric already (a host engine's CXL path)
        return None
    loop.attach_pifs(buf.tags if buf is not None else None, pifs.front.to_ps, pifs.front.from_ps, pifs.hit_ps,
                     pifs._engine_done)
    pifs._fabric = (link1, sw, outs)
    return loop


def dispatch_data(pifs: PIFS, grs: list[GatherReduce]) -> tuple:
    """``PIFS._command`` and ``PIFS.dispatch`` of every bag of ``grs`` (in order) as arrays: per bag (command
    bytes, its flits, response bytes, dim, the combiner's time for it, the command's idle flight to the
    units); per part (bag, unit, lines, pooling time of a line, elements per line), bag after bag, units in
    port order; the parts' lines (device addresses) in order, and whether the buffer may keep each."""
    tm = pifs.table_map
    spec = pifs.spec
    lk = pifs.front.link
    sw = pifs.switch
    nb = len(grs)
    bag_rows = np.zeros((nb, 6), dtype=np.int64)
    elems_b = np.array([pifs.elems_per_line(gr) for gr in grs], dtype=np.int64)
    pool_of = {e: pifs.units[0].datapath.line_ps(e) for e in set(elems_b.tolist())}
    pool_b = np.array([pool_of[e] for e in elems_b.tolist()], dtype=np.int64)
    parts, addr_parts, cab_parts = [], [], []
    for t, i, j, allrows, lens in table_runs(grs):
        addrs, counts = tm.line_addresses(t, allrows, device=True)
        per_row = counts if counts is not None else np.full(len(allrows), tm.lines_per_row(t), dtype=np.int64)
        cab = (np.repeat(tm.is_hot(t, allrows), per_row) if pifs.admit_hot
               else np.ones(len(addrs), dtype=bool))
        out_line = sw.route_outputs(addrs).astype(np.int64)
        bag_line = np.repeat(np.repeat(np.arange(i, j, dtype=np.int64), lens), per_row)
        order = np.lexsort((np.arange(len(addrs)), out_line, bag_line))  # bag, then port, lines in order
        key = bag_line[order] * (len(sw._outputs) + 1) + out_line[order]
        uk, start, cnt = np.unique(key, return_index=True, return_counts=True)
        pb = uk // (len(sw._outputs) + 1)
        po = uk % (len(sw._outputs) + 1)
        for k in range(i, j):
            gr = grs[k]
            nbytes = spec.command_header_bytes + len(gr.rows) * spec.index_bytes
            n = -(-nbytes // 64)
            flight = pifs.front.to_ps + 2 * lk.port_ps + lk.m2s.alone_ps(M2S_RWD, n) + lk.phy_ps + sw.fwd_ps
            bag_rows[k] = (nbytes, n, gr.dim * 4, gr.dim, pifs.combiner.line_ps(gr.dim), flight)
        parts.append(np.stack([pb, po, cnt.astype(np.int64), pool_b[pb], elems_b[pb]], axis=1))
        addr_parts.append(addrs[order].astype(np.int64))
        cab_parts.append(cab[order].astype(np.int64))
    part_arr = np.ascontiguousarray(np.concatenate(parts) if parts else np.zeros((0, 5), dtype=np.int64))
    return (np.ascontiguousarray(bag_rows), part_arr,
            np.ascontiguousarray(np.concatenate(addr_parts) if addr_parts else np.zeros(0, dtype=np.int64)),
            np.ascontiguousarray(np.concatenate(cab_parts) if cab_parts else np.zeros(0, dtype=np.int64)))
