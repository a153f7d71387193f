"""Replacement policies other than LRU, as tag arrays with :class:`SetAssocCache`'s interface.

Every policy here is a subclass of :class:`~archsim.cache.set_assoc.SetAssocCache` (same geometry, set index,
counters) that replaces its replacement state: ``lookup(line, write)`` (a hit updates the policy's state and
the dirty bit), ``contains(line)`` (no state change), ``fill(line, dirty)`` (insert; returns the line that is
not held afterwards, with its dirty bit: the victim, or for a bypass the filled line itself), ``invalidate(line)``
and ``stats()``. :func:`make_tags` picks one by name; ``lru`` is :class:`SetAssocCache` itself, untouched (its
dict-per-set fast path is what every shipped hwconfig runs).

Policies (a line is a cache line, an embedding row or a page: whatever ``line_bytes`` the cache has):

- ``lfu`` (:class:`LFUCache`): evict the line of the set with the fewest hits since it was filled, the least
  recently used of those on a tie. Counts are kept for held lines only (in-cache LFU: a line's count starts
  at 1 when it is filled and is forgotten when it leaves). Frequency buckets per set make every operation O(1)
  (Shah, Mitra, Matani, "An O(1) algorithm for implementing the LFU cache eviction scheme", 2010).
- ``evlfu`` (:class:`EvLFUCache`): LFU with aging, in the style of EVStore's EvLFU (Kurniawan et al.,
  ASPLOS 2023): every ``aging_period`` lookups to the cache every held line's count is halved (rounded
  down, so a line not touched for a few periods reaches 0), so popularity that has gone stale fades and a new
  hot set can displace the old one. Aging is applied lazily: a set catches up on the halvings it missed when
  it is next touched (the same outcome as halving every set at once, since a set's state matters only when it
  is touched). This is the policy's idea, not EVStore's code: its exact counter widths and its other cache
  layers are not modelled.
- ``static_hot`` (:class:`StaticHotCache`): a pinned set of lines chosen by a profile (a mapping or a callable
  line -> count, or the lines ranked hottest first): the hottest lines that fit (greedily, hottest first, each
  into its own set while the set has a free way, up to ``max_lines``) are pinned and never replaced; every other
  line bypasses (a miss that is not held afterwards; a dirty bypass comes back from ``fill`` to be written back).
  Pinned lines are filled on their first miss (one compulsory miss each), or held from the start with
  ``preload`` (a scratchpad loaded before the run).
- ``random`` (:class:`RandomCache`): a uniformly random way of the full set is replaced, drawn from a
  ``random.Random(seed)`` owned by the cache: the same seed and the same calls give the same victims.

Abstracted away: replacement state's storage cost and update latency (a hit costs ``hit_latency_ns`` whatever
the policy), hardware approximations (pseudo-LRU, counter saturation), RRIP and adaptive insertion.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Iterator, Mapping

from archsim.cache.set_assoc import SetAssocCache
from archsim.core.sim import host_engine_name

try:  # the compiled LRU tag array; without it the Python class is used
    from archsim.cache import _ctags
except ImportError:  # pragma: no cover - extension not built
    _ctags = None

#: ``policy:`` values, in the order the docs list them
POLICIES = ("lru", "lfu", "evlfu", "static_hot", "random")


class _FreqSet:
    """One set's LFU state: ``count`` per held line, ``buckets`` count -> {line: dirty} in recency order (first
    = least recently used), ``minc`` the smallest count held, ``order`` every held line in recency order
    (EvLFU only: the aging rebuild needs recency across buckets), ``epoch`` the aging epoch it has caught up to."""

    __slots__ = ("count", "buckets", "minc", "order", "epoch")

    def __init__(self, epoch: int = 0) -> None:
        self.count: dict[int, int] = {}
        self.buckets: dict[int, dict[int, bool]] = {}
        self.minc = 1
        self.order: dict[int, None] = {}
        self.epoch = epoch


class LFUCache(SetAssocCache):
    """Least frequently used within a set, ties broken by LRU (in-cache counts, O(1) per operation)."""

    __slots__ = ()
    policy = "lfu"

    def _set(self, line: int, create: bool = False) -> _FreqSet | None:
        i = self.set_of(line)
        s = self.sets[i]
        if s is None and create:
            s = self.sets[i] = _FreqSet()
        return s

    def _touch(self, s: _FreqSet, line: int, write: bool) -> None:
        c = s.count[line]
        b = s.buckets[c]
        dirty = b.pop(line) or write
        if not b:
            del s.buckets[c]
            if s.minc == c:
                s.minc = c + 1
        c += 1
        s.count[line] = c
        nb = s.buckets.get(c)
        if nb is None:
            nb = s.buckets[c] = {}
        nb[line] = dirty

    def lookup(self, line: int, write: bool = False) -> bool:
        s = self._set(line)
        if s is not None and line in s.count:
            self._touch(s, line, write)
            self.hits += 1
            return True
        self.misses += 1
        return False

    def contains(self, line: int) -> bool:
        s = self.sets[self.set_of(line)]
        return s is not None and line in s.count

    def _evict(self, s: _FreqSet) -> tuple[int, bool]:
        c = s.minc
        b = s.buckets[c]
        vline = next(iter(b))
        vdirty = b.pop(vline)
        if not b:
            del s.buckets[c]
        del s.count[vline]
        self.evictions += 1
        if vdirty:
            self.dirty_evictions += 1
        return vline, vdirty

    def fill(self, line: int, dirty: bool = False) -> tuple[int, bool] | None:
        s = self._set(line, True)
        if line in s.count:
            self._touch(s, line, dirty)
            return None
        victim = self._evict(s) if len(s.count) >= self.ways else None
        s.count[line] = 1
        b = s.buckets.get(1)
        if b is None:
            b = s.buckets[1] = {}
        b[line] = dirty
        s.minc = 1
        return victim

    def invalidate(self, line: int) -> tuple[int, bool] | None:
        s = self.sets[self.set_of(line)]
        if s is None or line not in s.count:
            return None
        c = s.count.pop(line)
        b = s.buckets[c]
        dirty = b.pop(line)
        if not b:
            del s.buckets[c]
            if s.minc == c and s.buckets:
                s.minc = min(s.buckets)
        s.order.pop(line, None)
        return line, dirty

    def counts(self, line: int) -> int | None:
        """The replacement count of a held line (None if not held): for tests and inspection."""
        s = self.sets[self.set_of(line)]
        return None if s is None else s.count.get(line)


class EvLFUCache(LFUCache):
    """LFU whose counts are halved every ``aging_period`` lookups (EvLFU-style aging; lazily per set)."""

    __slots__ = ("aging_period", "ticks")
    policy = "evlfu"

    def __init__(self, size_bytes: int, ways: int, line_bytes: int = 64, index: str = "modulo",
                 aging_period: int | None = None) -> None:
        super().__init__(size_bytes, ways, line_bytes, index)
        if aging_period is None:
            aging_period = 8 * self.capacity_lines
        if aging_period <= 0:
            raise ValueError(f"aging_period must be positive, got {aging_period}")
        self.aging_period = aging_period
        self.ticks = 0  # lookups so far: the epoch is ticks // aging_period

    def _set(self, line: int, create: bool = False) -> _FreqSet | None:
        i = self.set_of(line)
        s = self.sets[i]
        epoch = self.ticks // self.aging_period
        if s is None:
            if create:
                s = self.sets[i] = _FreqSet(epoch)
            return s
        if s.epoch != epoch:
            self._age(s, epoch)
        return s

    @staticmethod
    def _age(s: _FreqSet, epoch: int) -> None:
        """Halve every count once per epoch the set missed, rebuilding the buckets in recency order."""
        k = min(epoch - s.epoch, 63)
        s.epoch = epoch
        old = s.buckets
        dirty = {ln: d for b in old.values() for ln, d in b.items()}
        count = s.count
        buckets: dict[int, dict[int, bool]] = {}
        for ln in s.order:  # least recently used first
            c = count[ln] >> k
            count[ln] = c
            b = buckets.get(c)
            if b is None:
                b = buckets[c] = {}
            b[ln] = dirty[ln]
        s.buckets = buckets
        s.minc = min(buckets) if buckets else 1

    def _touch(self, s: _FreqSet, line: int, write: bool) -> None:
        super()._touch(s, line, write)
        o = s.order
        del o[line]
        o[line] = None

    def lookup(self, line: int, write: bool = False) -> bool:
        hit = super().lookup(line, write)
        self.ticks += 1
        return hit

    def _evict(self, s: _FreqSet) -> tuple[int, bool]:
        v = super()._evict(s)
        del s.order[v[0]]
        return v

    def fill(self, line: int, dirty: bool = False) -> tuple[int, bool] | None:
        victim = super().fill(line, dirty)
        s = self.sets[self.set_of(line)]
        if line not in s.order:
            s.order[line] = None
        if 0 in s.buckets:  # counts aged to 0 sit below the new line's 1
            s.minc = 0
        return victim


def rank_profile(profile, candidates: Iterable[int] | None = None) -> Iterator[int]:
    """Lines hottest first from a profile: a mapping line -> count, a callable line -> count (over
    ``candidates``), or a sequence of lines already ranked hottest first (read lazily, repeats skipped). Lines
    with a count <= 0 are left out; ties go to the lower line number (deterministic)."""
    if isinstance(profile, Mapping):
        items = [(c, ln) for ln, c in profile.items() if c > 0]
    elif callable(profile):
        if candidates is None:
            raise ValueError("a callable profile needs the candidate lines to rank (candidates=...)")
        items = [(c, ln) for ln in candidates if (c := profile(ln)) > 0]
    else:
        seen: set[int] = set()
        for ln in profile:
            ln = int(ln)
            if ln not in seen:
                seen.add(ln)
                yield ln
        return
    items.sort(key=lambda x: (-x[0], x[1]))
    for _, ln in items:
        yield int(ln)


class StaticHotCache(SetAssocCache):
    """The hottest profiled lines that fit, pinned; every other line bypasses."""

    __slots__ = ("pinned", "held", "bypasses")
    policy = "static_hot"

    def __init__(self, size_bytes: int, ways: int, line_bytes: int = 64, index: str = "modulo",
                 profile: Mapping[int, float] | Callable[[int], float] | Iterable[int] = (),
                 candidates: Iterable[int] | None = None, max_lines: int | None = None,
                 preload: bool = False) -> None:
        super().__init__(size_bytes, ways, line_bytes, index)
        cap = self.capacity_lines
        budget = cap if max_lines is None else max_lines
        if not 0 <= budget <= cap:
            raise ValueError(f"max_lines {budget} must be between 0 and the cache's {cap} lines")
        per_set = [0] * self.nsets
        pinned: set[int] = set()
        if budget:
            for ln in rank_profile(profile, candidates):
                i = self.set_of(ln)
                if per_set[i] < ways:
                    per_set[i] += 1
                    pinned.add(ln)
                    if len(pinned) == budget:
                        break
        self.pinned = frozenset(pinned)
        self.held: dict[int, bool] = dict.fromkeys(sorted(pinned), False) if preload else {}
        self.bypasses = 0

    def lookup(self, line: int, write: bool = False) -> bool:
        h = self.held
        if line in h:
            if write:
                h[line] = True
            self.hits += 1
            return True
        self.misses += 1
        return False

    def contains(self, line: int) -> bool:
        return line in self.held

    def fill(self, line: int, dirty: bool = False) -> tuple[int, bool] | None:
        if line in self.pinned:
            self.held[line] = self.held.get(line, False) or dirty
            return None
        self.bypasses += 1
        return line, dirty

    def invalidate(self, line: int) -> tuple[int, bool] | None:
        if line not in self.held:
            return None
        return line, self.held.pop(line)

    def stats(self) -> dict[str, int]:
        d = super().stats()
        d["bypasses"] = self.bypasses
        return d


class _RandomSet:
    __slots__ = ("pos", "lines", "dirty")

    def __init__(self) -> None:
        self.pos: dict[int, int] = {}
        self.lines: list[int] = []
        self.dirty: list[bool] = []


class RandomCache(SetAssocCache):
    """A random way of the full set is replaced (``random.Random(seed)``: deterministic for a seed)."""

    __slots__ = ("rng", "seed")
    policy = "random"

    def __init__(self, size_bytes: int, ways: int, line_bytes: int = 64, index: str = "modulo",
                 seed: int = 0) -> None:
        super().__init__(size_bytes, ways, line_bytes, index)
        self.seed = seed
        self.rng = random.Random(seed)

    def lookup(self, line: int, write: bool = False) -> bool:
        s = self.sets[self.set_of(line)]
        if s is not None:
            j = s.pos.get(line)
            if j is not None:
                if write:
                    s.dirty[j] = True
                self.hits += 1
                return True
        self.misses += 1
        return False

    def contains(self, line: int) -> bool:
        s = self.sets[self.set_of(line)]
        return s is not None and line in s.pos

    def fill(self, line: int, dirty: bool = False) -> tuple[int, bool] | None:
        i = self.set_of(line)
        s = self.sets[i]
        if s is None:
            s = self.sets[i] = _RandomSet()
        j = s.pos.get(line)
        if j is not None:
            s.dirty[j] = s.dirty[j] or dirty
            return None
        if len(s.lines) < self.ways:
            s.pos[line] = len(s.lines)
            s.lines.append(line)
            s.dirty.append(dirty)
            return None
        j = self.rng.randrange(self.ways)
        vline, vdirty = s.lines[j], s.dirty[j]
        del s.pos[vline]
        s.pos[line] = j
        s.lines[j] = line
        s.dirty[j] = dirty
        self.evictions += 1
        if vdirty:
            self.dirty_evictions += 1
        return vline, vdirty

    def invalidate(self, line: int) -> tuple[int, bool] | None:
        s = self.sets[self.set_of(line)]
        if s is None or line not in s.pos:
            return None
        j = s.pos.pop(line)
        d = s.dirty[j]
        last = len(s.lines) - 1
        if j != last:  # move the last way into the hole
            ml = s.lines[last]
            s.lines[j] = ml
            s.dirty[j] = s.dirty[last]
            s.pos[ml] = j
        s.lines.pop()
        s.dirty.pop()
        return line, d


def make_tags(size_bytes: int, ways: int, line_bytes: int = 64, index: str = "modulo", policy: str = "lru", *,
              aging_period: int | None = None, seed: int = 0, profile=None,
              candidates: Iterable[int] | None = None, max_lines: int | None = None,
              preload: bool = False) -> SetAssocCache:
    """A tag array of ``policy`` (:data:`POLICIES`); ``lru`` is :class:`SetAssocCache` itself. The keyword
    arguments are the policies' own: ``aging_period`` (evlfu), ``seed`` (random), ``profile``, ``candidates``,
    ``max_lines``, ``preload`` (static_hot; a profile is required)."""
    if policy == "lru":
        # the compiled LRU tag array (issue #15): a set is an array searched line by line, so only for
        # set-associative caches (a fully associative tier of many ways keeps the dicts)
        if _ctags is not None and ways <= 64 and host_engine_name() == "fast":
            try:
                return _ctags.LRUTags(size_bytes, ways, line_bytes, index)
            except OverflowError:  # sizes or lines beyond 64 bits: the reference class
                pass
        return SetAssocCache(size_bytes, ways, line_bytes, index)
    if policy == "lfu":
        return LFUCache(size_bytes, ways, line_bytes, index)
    if policy == "evlfu":
        return EvLFUCache(size_bytes, ways, line_bytes, index, aging_period)
    if policy == "random":
        return RandomCache(size_bytes, ways, line_bytes, index, seed)
    if policy == "static_hot":
        if profile is None:
            raise ValueError("policy static_hot needs a profile (line -> count, or lines hottest first)")
        return StaticHotCache(size_bytes, ways, line_bytes, index, profile, candidates, max_lines, preload)
    raise ValueError(f"policy must be one of {', '.join(POLICIES)}, got {policy!r}")
