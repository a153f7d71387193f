"""Sector caches of the GPU model: an SM's L1 and the L2's partitions.

A line (128 B) has a tag and a mask of valid 32-byte sectors; an access asks for some sectors of one line and
gets back the ones that were missing, which are then filled (allocate on miss, sector by sector, as NVIDIA's L1
and L2 do). Replacement is LRU within a set. The set index of every access is computed beforehand, vectorised
(:func:`set_index`), so the per-access work is two dictionary operations.

Abstracted away: the L1's and L2's exact hash functions and replacement (NVIDIA does not document them; an
XOR fold of the line number spreads strided rows the way a slice hash does), streaming and evict-first hints,
and in-flight merging (a second request for a sector already being fetched is counted as a hit).
"""

from __future__ import annotations

import numpy as np


def set_index(lines: np.ndarray, nsets: int) -> np.ndarray:
    """Set of each line number: an XOR fold of its bits in chunks of ``log2(nsets)`` (a power of two) or,
    otherwise, the line number modulo ``nsets`` after folding the high bits in."""
    x = np.asarray(lines, dtype=np.uint64)
    if nsets & (nsets - 1) == 0:
        bits = nsets.bit_length() - 1
        if bits == 0:
            return np.zeros(x.shape, dtype=np.int64)
        # chunk i of x ^ (x >> s) is c_i ^ c_(i + s / bits): doubling s folds every chunk into chunk 0 in
        # ceil(log2(64 / bits)) steps
        h = x.copy()
        s = bits
        while s < 64:
            h ^= h >> np.uint64(s)
            s *= 2
        return (h & np.uint64(nsets - 1)).astype(np.int64)
    return ((x ^ (x >> np.uint64(17)) ^ (x >> np.uint64(29))) % np.uint64(nsets)).astype(np.int64)


class SectorCache:
    """``nsets`` x ``ways`` lines with sector masks; :meth:`access` returns the missing sectors and fills them."""

    __slots__ = ("nsets", "ways", "sets", "pinned")

    def __init__(self, nsets: int, ways: int) -> None:
        if nsets < 1 or ways < 1:
            raise ValueError(f"need at least one set and one way, got {nsets} x {ways}")
        self.nsets = nsets
        self.ways = ways
        self.sets: list[dict[int, int]] = [{} for _ in range(nsets)]
        self.pinned: dict[int, int] = {}

    def access(self, s: int, line: int, want: int) -> int:
        """Sectors of ``want`` (a bit mask) that ``line`` (in set ``s``) did not hold; they are filled, and
        the line becomes the set's most recently used."""
        if self.pinned and line in self.pinned:
            have = self.pinned[line]
            self.pinned[line] = have | want
            return want & ~have
        d = self.sets[s]
        have = d.pop(line, None)
        if have is None:
            if len(d) >= self.ways:
                del d[next(iter(d))]
            d[line] = want
            return want
        d[line] = have | want
        return want & ~have

    def pin(self, lines) -> None:
        """Hold ``lines`` in a set-aside outside the sets (CUDA's persisting L2 region): they are filled on
        first use and never evicted."""
        for ln in lines:
            self.pinned.setdefault(int(ln), 0)
