"""Request objects that travel the component graph.

Plain slotted objects: no per-request process, no dict. A component that accepts a request charges time to
it, fills its timestamps (picoseconds) and triggers ``req.done`` when it completes.
"""

from __future__ import annotations

from typing import Any

import simpy

READ = 0
WRITE = 1


class MemRequest:
    """A read or write of ``size`` bytes at byte address ``addr``.

    ``t_submit``: when it was offered; ``t_accept``: when a component took it into its queues;
    ``t_done``: when it completed (data returned for reads, buffered for posted writes).
    The ``_`` fields are scratch space of the component currently holding the request (decoded address).
    """

    __slots__ = ("addr", "size", "is_write", "t_submit", "t_accept", "t_done", "done", "tag",
                 "added_cycle", "_ch", "_fb", "_row", "_col", "_cmd", "_seq", "_grp", "_left")

    def __init__(self, addr: int, is_write: bool = False, size: int = 64, tag: Any = None) -> None:
        self.addr = addr
        self.size = size
        self.is_write = is_write
        self.t_submit = -1
        self.t_accept = -1
        self.t_done = -1
        self.done: simpy.Event | None = None
        self.tag = tag
        self.added_cycle = -1
        self._ch = -1
        self._grp: MemRequest | None = None

    def __repr__(self) -> str:
        op = "W" if self.is_write else "R"
        return f"MemRequest(0x{self.addr:x} {op} {self.size}B)"


def complete_at(env: simpy.Environment, ev: simpy.Event, value: Any, when_ps: int,
                priority: int = simpy.events.NORMAL) -> None:
    """Trigger ``ev`` successfully at absolute time ``when_ps`` (>= now) without an extra Timeout.

    Used by components that run their own state a few cycles ahead of ``env.now`` inside one callback
    (never past the next scheduled event) and must still deliver completions at the exact picosecond.
    """
    ev._ok = True
    ev._value = value
    env.schedule(ev, priority, when_ps - env.now)


class Message(MemRequest):
    """A request that carries something other than a line: a bag's command to units that reduce near the data
    (``payload``: the :class:`GatherReduce`), whose response carries ``resp_bytes`` back (the pooled vector or
    a partial sum). Links move it as write-data messages of ``size`` bytes down and data responses of
    ``resp_bytes`` up, counted as ``kind`` and ``resp_kind`` (archsim/cxl/link.py's LINK_KINDS); a message
    is posted (its link credit returns when the far end has it; the response travels on its own), and
    switches route and arbitrate it by ``addr`` like any request."""

    __slots__ = ("resp_bytes", "kind", "resp_kind", "payload")

    def __init__(self, addr: int, size: int, resp_bytes: int, payload: Any, kind: str = "command",
                 resp_kind: str = "pooled", tag: Any = None) -> None:
        super().__init__(addr, True, size, tag)
        self.resp_bytes = resp_bytes
        self.kind = kind
        self.resp_kind = resp_kind
        self.payload = payload

    def forward(self, tag: Any) -> Message:
        """The copy a link or switch hands on (same message, its own completion)."""
        return Message(self.addr, self.size, self.resp_bytes, self.payload, self.kind, self.resp_kind, tag)


class GatherReduce:
    """Pool one bag of embedding rows: ``rows`` of ``table`` (row indices), each ``dim`` elements of ``dtype``.

    A component that computes near the data (an NMP unit, a switch processing unit, a GPU SM) accepts it and
    returns only the pooled vector; a host breaks it into :class:`MemRequest` s and pools itself. ``op`` is
    the reduction (``sum``, ``mean``, ``max``). Timestamps in picoseconds as for :class:`MemRequest`;
    ``t_issue``: where the bag's latency starts (docs/metrics.md), set by the component that pooled it when it
    differs from ``t_submit`` (the first of the bag's reads, referred back to the host).
    """

    __slots__ = ("table", "rows", "dim", "dtype", "row_bytes", "op", "t_submit", "t_issue", "t_done", "done",
                 "tag")

    def __init__(self, table: int, rows: Any, dim: int, dtype: str, row_bytes: int, op: str = "sum",
                 tag: Any = None) -> None:
        self.table = table
        self.rows = rows
        self.dim = dim
        self.dtype = dtype
        self.row_bytes = row_bytes
        self.op = op
        self.t_submit = -1
        self.t_issue = -1
        self.t_done = -1
        self.done: simpy.Event | None = None
        self.tag = tag

    def __repr__(self) -> str:
        return f"GatherReduce(table {self.table}, {len(self.rows)} rows x {self.dim} {self.dtype})"
