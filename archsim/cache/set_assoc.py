"""The tag array of a set-associative cache with LRU replacement (no data is stored).

Lines are identified by their line number (byte address // line size). A set is a Python dict from line number
to its dirty bit; dicts keep insertion order, so re-inserting a line on a hit makes the first key the least
recently used one. Set index: line number modulo the number of sets (``index: modulo``) or, like the sliced
last-level caches of server CPUs, an XOR fold of the upper line-number bits into the index (``index: xor``).

This class is the ``lru`` policy and the fast path every shipped hwconfig runs; the other replacement policies
(``lfu``, ``evlfu``, ``static_hot``, ``random``) are its subclasses in :mod:`archsim.cache.policies`, with the
same interface (``lookup``, ``contains``, ``fill``, ``invalidate``, ``stats``); ``policies.make_tags`` picks one.

Abstracted away: data arrays, coherence states (one cache, no sharers), pseudo-LRU (trees approximate LRU
closely), RRIP and adaptive insertion.
"""

from __future__ import annotations


class SetAssocCache:
    """``sets`` x ``ways`` lines of ``line_bytes`` each, true LRU within a set."""

    __slots__ = ("line_bytes", "line_shift", "ways", "nsets", "sets", "xor_index", "hits", "misses",
                 "evictions", "dirty_evictions")
    policy = "lru"

    def __init__(self, size_bytes: int, ways: int, line_bytes: int = 64, index: str = "modulo") -> None:
        if line_bytes <= 0 or line_bytes & (line_bytes - 1):
            raise ValueError(f"line_bytes must be a power of two, got {line_bytes}")
        if ways <= 0:
            raise ValueError(f"ways must be positive, got {ways}")
        lines = size_bytes // line_bytes
        if lines < ways or lines % ways:
            raise ValueError(f"size {size_bytes} B is not a whole number of {ways}-way sets of {line_bytes} B lines")
        if index not in ("modulo", "xor"):
            raise ValueError(f"index must be modulo or xor, got {index!r}")
        self.line_bytes = line_bytes
        self.line_shift = line_bytes.bit_length() - 1
        self.ways = ways
        self.nsets = lines // ways
        self.sets: list[dict[int, bool] | None] = [None] * self.nsets
        self.xor_index = index == "xor"
        self.hits = 0
        self.misses = 0
        self.evictions = 0
        self.dirty_evictions = 0

    @property
    def capacity_lines(self) -> int:
        return self.nsets * self.ways

    def set_of(self, line: int) -> int:
        if self.nsets == 1:  # fully associative (and the XOR fold below would never end)
            return 0
        if self.xor_index:
            x = line
            h = 0
            while x:
                h ^= x
                x //= self.nsets
            return h % self.nsets
        return line % self.nsets

    def lookup(self, line: int, write: bool = False) -> bool:
        """Whether ``line`` is present; a hit makes it most recently used (and dirty on a write)."""
        s = self.sets[self.set_of(line)]
        if s is not None and line in s:
            dirty = s.pop(line) or write
            s[line] = dirty
            self.hits += 1
            return True
        self.misses += 1
        return False

    def contains(self, line: int) -> bool:
        """Presence without touching replacement state or counters."""
        s = self.sets[self.set_of(line)]
        return s is not None and line in s

    def fill(self, line: int, dirty: bool = False) -> tuple[int, bool] | None:
        """Insert ``line`` as most recently used; returns the evicted ``(line, dirty)`` if a line had to go."""
        i = self.set_of(line)
        s = self.sets[i]
        if s is None:
            s = self.sets[i] = {}
        if line in s:
            dirty = s.pop(line) or dirty
            s[line] = dirty
            return None
        victim = None
        if len(s) >= self.ways:
            vline = next(iter(s))
            vdirty = s.pop(vline)
            victim = (vline, vdirty)
            self.evictions += 1
            if vdirty:
                self.dirty_evictions += 1
        s[line] = dirty
        return victim

    def invalidate(self, line: int) -> tuple[int, bool] | None:
        """Drop ``line`` if held (no eviction counted); returns ``(line, dirty)`` if it was held."""
        s = self.sets[self.set_of(line)]
        if s is None or line not in s:
            return None
        return line, s.pop(line)

    def stats(self) -> dict[str, int]:
        """The counters: hits, misses, evictions, dirty evictions (policies may add their own)."""
        return {"hits": self.hits, "misses": self.misses, "evictions": self.evictions,
                "dirty_evictions": self.dirty_evictions}
