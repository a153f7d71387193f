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
from archsim.dram.memory import DRAMSystem

try:
    from archsim.cache import _ctags
except ImportError:  # pragma: no cover - only without the extension
    _ctags = None

if TYPE_CHECKING:
    from archsim.system.embedding import EmbeddingOperator


def _qualifies(op: EmbeddingOperator) -> bool:
    mem = op.mem
    if op.near_data is not None or type(mem) is not Cache or type(op.env) is not Environment:
        return False
    if _ctags is None or type(mem.tags) is not _ctags.LRUTags or mem.mshr:
        return False
    port = mem.port
    if type(port) is not MemoryPort or port.waiting:
        return False
    dram = port.mem
    if type(dram) is not DRAMSystem or {"submit", "can_accept", "space_event", "queue_key"} & vars(dram).keys():
        return False
    loop = dram._loop
    if loop is None or not hasattr(loop, "attach_host") or loop.source_active or loop.host_active:
        return False
    return mem.spec.line_bytes <= dram.burst_bytes and mem.spec.line_bytes == op.line_bytes


def _refuse(*_args, **_kw):
    raise RuntimeError("this LLC is driven by the compiled host engine (archsim/system/host_engine.py): "
                       "it takes no other requests")


def attach(op: EmbeddingOperator):
    """Attach the compiled engine to ``op``'s host if it qualifies; the DRAM loop that runs it, or None."""
    if not _qualifies(op):
        return None
    cache: Cache = op.mem
    dram: DRAMSystem = cache.port.mem
    loop = dram._loop
    drains = [lambda _ev, k=k: loop.host_drain(k) for k in range(len(dram.channels))]
    host = op.host
    try:
        loop.attach_host(tuple(dram.channels), cache.tags, cache.spec.line_bytes, cache.hit_ps, cache.to_next_ps,
                         cache.from_next_ps, host.cores, host.fill_buffers, host.bag_schedule == "static",
                         op._host_batch_end, drains, op.env._queue, op.env._eid, heapq.heappush, Light)
    except RuntimeError:  # the loop already feeds another host or a trace
        return None
    cache.submit = cache.read_light = _refuse
    cache.sync_hook = op.host_sync
    return loop


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
