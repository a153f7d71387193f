"""The gather-and-pool engine every place that reduces embedding bags is built from: host cores, NMP units at
rank, bank-group and bank level, PIFS port units and the switch's combiner.

- :class:`Datapath`: a serial pooling datapath of ``lanes`` fp32 adds per clock. A line of ``elems`` elements
  takes ``ceil(elems / lanes)`` clocks; lines are pooled one after another, each no earlier than it arrives.
  A combiner of partial sums is the same datapath fed with whole vectors.
- :class:`LineBuffer`: lines held next to a datapath (RecNMP's RankCache, PIFS-Rec's on-switch buffer): tags of
  a set-associative cache (LRU unless ``policy`` names another, :mod:`archsim.cache.policies`), and the reads
  in flight, so that a second request for a line being read waits
  for that read instead of reading it again.

Abstracted away: the datapath's pipeline depth (a line's adds finish ``ceil(elems / lanes)`` clocks after they
start, with no fill or drain latency), operand alignment and the output store.
"""

from __future__ import annotations

from typing import Any

from archsim.cache.policies import make_tags

HIT, MERGED, MISS = 0, 1, 2


class Datapath:
    """A serial pooling datapath: ``lanes`` fp32 adds per clock of ``clock_mhz``; ``busy_until`` (ps) is when
    it has pooled everything given so far, ``adds`` the adds it did."""

    __slots__ = ("lanes", "cyc_ps", "busy_until", "adds")

    def __init__(self, clock_mhz: float, lanes: int) -> None:
        self.lanes = lanes
        self.cyc_ps = 1e6 / clock_mhz
        self.busy_until = 0
        self.adds = 0

    def line_ps(self, elems: int) -> int:
        """Time to pool one line (or vector) of ``elems`` elements: whole clocks, rounded to a ps."""
        return round(-(-elems // self.lanes) * self.cyc_ps)

    def pool(self, now: int, n: int, line_ps: int, elems: int) -> int:
        """Pool ``n`` lines that are all there at ``now``; returns when the last is pooled."""
        b = self.busy_until
        t = (b if b > now else now) + n * line_ps
        self.busy_until = t
        self.adds += n * elems
        return t

    def pool_stream(self, now: int, n: int, line_ps: int, elems: int, spacing_ps: int) -> int:
        """Pool ``n`` lines that streamed in ``spacing_ps`` apart, the last at ``now`` (the bursts of one row
        from one bank): the datapath pooled the earlier ones while the rest arrived."""
        if n == 1:
            return self.pool(now, 1, line_ps, elems)
        gap = line_ps - spacing_ps
        t = now + line_ps + (n - 1) * (gap if gap > 0 else 0)
        t2 = self.busy_until + n * line_ps
        t = t if t > t2 else t2
        self.busy_until = t
        self.adds += n * elems
        return t


class LineBuffer:
    """Lines of ``line_bytes`` kept near a datapath (tags of ``size_bytes``, ``ways``-way, replacement ``policy``
    with its keyword arguments ``policy_args``, as :func:`archsim.cache.policies.make_tags`) with the reads in
    flight: :meth:`lookup` says whether a line is held, being read (the waiter is queued on that read) or must
    be read; :meth:`fill` holds a line that arrived (a static_hot policy may bypass it) and returns the waiters
    of its read."""

    __slots__ = ("tags", "pending", "merged", "shift")

    def __init__(self, size_bytes: int, ways: int, line_bytes: int = 64, index: str = "xor", policy: str = "lru",
                 **policy_args) -> None:
        self.tags = make_tags(size_bytes, ways, line_bytes, index, policy, **policy_args)
        self.pending: dict[int, list[Any]] = {}
        self.merged = 0
        self.shift = line_bytes.bit_length() - 1

    def lookup(self, addr: int, waiter: Any) -> int:
        """:data:`HIT`, :data:`MERGED` (``waiter`` waits for the read in flight) or :data:`MISS` (the caller
        reads the line and calls :meth:`fill` when it arrives)."""
        if self.tags.lookup(addr >> self.shift):
            return HIT
        waiting = self.pending.get(addr)
        if waiting is not None:
            waiting.append(waiter)
            self.merged += 1
            return MERGED
        self.pending[addr] = []
        return MISS

    def fill(self, addr: int) -> list[Any]:
        """The line read for :meth:`lookup`'s miss arrived: hold it; the waiters that joined its read."""
        self.tags.fill(addr >> self.shift)
        return self.pending.pop(addr)

    @property
    def hits(self) -> int:
        return self.tags.hits

    @property
    def misses(self) -> int:
        return self.tags.misses
