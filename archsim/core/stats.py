"""Counters and mergeable latency histograms, grouped per component under dotted names.

Two pieces:

* :class:`Histogram` -- an HDR-style log-linear histogram over non-negative integers (latencies in ps or
  cycles). Values below ``2**sub_bucket_bits`` (128 by default) are recorded exactly; above that every bucket
  spans at most ``1/2**(sub_bucket_bits-1)`` (1/64) of its lowest value, and a percentile is reported as the
  bucket's midpoint, so its relative error is at most 1/128 (well inside the 1/64 bound). Count, sum, min and
  max are exact. Histograms with equal parameters merge exactly: merging is identical to recording both
  streams into one histogram, which makes percentiles mergeable across sweep points.
* :class:`Stats` -- a named group of counters, histograms and child groups for one component. Full names are
  the dotted paths of the component graph (``system.cxl.switch0.port3``); :meth:`Stats.flat` yields
  ``system.cxl.switch0.port3.bytes_rx``-style keys and :meth:`Stats.to_dict` the nested form for stats.json.

Hot path: :meth:`Histogram.record` is a handful of integer operations and one list update;
:meth:`Stats.inc` is one dict update. Neither allocates or touches numpy.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from fractions import Fraction
from typing import Any

import numpy as np

__all__ = ["Histogram", "Stats", "merge_stats", "SUMMARY_PERCENTILES"]

#: Percentiles reported in a histogram summary, as (key, percentile) pairs.
SUMMARY_PERCENTILES: tuple[tuple[str, float], ...] = (
    ("p50", 50),
    ("p90", 90),
    ("p95", 95),
    ("p99", 99),
    ("p999", 99.9),
)

_INF = math.inf


def _rank(p: float, count: int) -> int:
    """1-based rank ``ceil(p/100 * count)`` computed exactly for the decimal value of ``p``, at least 1.

    ``p`` is taken at its shortest decimal representation (``99.9`` means 999/10), so the rank is free of
    binary rounding (a float computation gives rank 1000 for p=99.9, count=1000).
    """
    if isinstance(p, int):
        frac = Fraction(p)
    else:
        frac = Fraction(repr(float(p)))
    return max(1, math.ceil(frac * count / 100))


class Histogram:
    """Log-linear (HDR-style) histogram of non-negative integers.

    Bucket layout with ``S = sub_bucket_bits``: a value ``v < 2**S`` has its own bucket ``v`` (exact). A larger
    value is shifted right by ``shift = v.bit_length() - S`` so that its top ``S`` bits ``v >> shift`` lie in
    ``[2**(S-1), 2**S)``; its bucket index is ``(shift << (S-1)) + (v >> shift)``. Indices are contiguous
    (128..191 hold 128..255 in steps of 2, 192..255 hold 256..511 in steps of 4, ...). A bucket covers
    ``[low, low + 2**shift)`` with ``low >= 2**(S-1+shift)``, so its width is at most ``1/2**(S-1)`` of any
    value in it.

    Values must be Python ``int`` (use :meth:`record_array` for numpy arrays); negative values raise
    ``ValueError``.

    Empty histogram: :meth:`percentile` and :attr:`min`/:attr:`max` return ``None``, :meth:`mean` returns
    ``float('nan')``; :meth:`summary` reports ``None`` for all of them so that it stays JSON-safe.
    """

    __slots__ = ("_bits", "_exact", "_half_bits", "_counts", "_count", "_sum", "_min", "_max")

    def __init__(self, sub_bucket_bits: int = 7) -> None:
        if not isinstance(sub_bucket_bits, int) or not 1 <= sub_bucket_bits <= 30:
            raise ValueError(f"sub_bucket_bits must be an int in [1, 30], got {sub_bucket_bits!r}")
        self._bits = sub_bucket_bits
        self._exact = 1 << sub_bucket_bits
        self._half_bits = sub_bucket_bits - 1
        self._counts: list[int] = [0] * self._exact
        self._count = 0
        self._sum = 0
        self._min: float = _INF
        self._max: float = -1

    # ------------------------------------------------------------------ parameters and buckets
    @property
    def sub_bucket_bits(self) -> int:
        """Number of significant bits kept per value; values below ``2**sub_bucket_bits`` are exact."""
        return self._bits

    @property
    def max_relative_width(self) -> float:
        """Upper bound on (bucket width / any value in the bucket) for inexact buckets: ``1/2**(S-1)``."""
        return 1.0 / (1 << self._half_bits)

    def bucket_index(self, value: int) -> int:
        """Index of the bucket that holds ``value``."""
        if value < 0:
            raise ValueError(f"histogram values must be non-negative, got {value!r}")
        if value < self._exact:
            return value
        shift = value.bit_length() - self._bits
        return (shift << self._half_bits) + (value >> shift)

    def bucket_bounds(self, index: int) -> tuple[int, int]:
        """Inclusive ``(low, high)`` range of values that fall in bucket ``index``."""
        if index < 0:
            raise ValueError(f"bucket index must be non-negative, got {index}")
        if index < self._exact:
            return index, index
        shift = (index >> self._half_bits) - 1
        low = (index - (shift << self._half_bits)) << shift
        return low, low + (1 << shift) - 1

    def bucket_value(self, index: int) -> int:
        """Representative value of bucket ``index``: its midpoint (rounded down); the value itself if exact."""
        low, high = self.bucket_bounds(index)
        return (low + high) >> 1

    # ------------------------------------------------------------------ recording (hot path)
    def record(self, value: int) -> None:
        """Record one value (a non-negative ``int``)."""
        if value < self._exact:
            if value < 0:
                raise ValueError(f"histogram values must be non-negative, got {value!r}")
            idx = value
        else:
            shift = value.bit_length() - self._bits
            idx = (shift << self._half_bits) + (value >> shift)
        try:
            self._counts[idx] += 1
        except IndexError:
            self._grow(idx)
            self._counts[idx] += 1
        self._count += 1
        self._sum += value
        if value < self._min:
            self._min = value
        if value > self._max:
            self._max = value

    def record_n(self, value: int, n: int) -> None:
        """Record ``value`` ``n`` times (``n >= 0``; ``n == 0`` changes nothing)."""
        if n <= 0:
            if n < 0:
                raise ValueError(f"record_n count must be non-negative, got {n}")
            return
        if value < self._exact:
            if value < 0:
                raise ValueError(f"histogram values must be non-negative, got {value!r}")
            idx = value
        else:
            shift = value.bit_length() - self._bits
            idx = (shift << self._half_bits) + (value >> shift)
        try:
            self._counts[idx] += n
        except IndexError:
            self._grow(idx)
            self._counts[idx] += n
        self._count += n
        self._sum += value * n
        if value < self._min:
            self._min = value
        if value > self._max:
            self._max = value

    def record_array(self, values: Iterable[int] | np.ndarray) -> None:
        """Record every value of an array or iterable of integers (numpy integer arrays are welcome)."""
        arr = np.asarray(values)
        if arr.size == 0:
            return
        if arr.dtype.kind not in "iub":
            raise TypeError(f"histogram values must be integers, got dtype {arr.dtype}")
        uniq, cnt = np.unique(arr.ravel(), return_counts=True)
        for v, c in zip(uniq.tolist(), cnt.tolist(), strict=True):
            self.record_n(int(v), c)

    def _grow(self, idx: int) -> None:
        counts = self._counts
        counts.extend([0] * (idx + 1 - len(counts)))

    def clear(self) -> None:
        """Forget every recorded value (parameters are kept)."""
        self._counts = [0] * self._exact
        self._count = 0
        self._sum = 0
        self._min = _INF
        self._max = -1

    # ------------------------------------------------------------------ exact aggregates
    @property
    def count(self) -> int:
        """Number of recorded values."""
        return self._count

    @property
    def sum(self) -> int:
        """Exact sum of recorded values."""
        return self._sum

    @property
    def min(self) -> int | None:
        """Smallest recorded value, ``None`` when empty."""
        return int(self._min) if self._count else None

    @property
    def max(self) -> int | None:
        """Largest recorded value, ``None`` when empty."""
        return int(self._max) if self._count else None

    def mean(self) -> float:
        """Exact mean ``sum / count``; ``float('nan')`` when empty."""
        if not self._count:
            return math.nan
        return self._sum / self._count

    def __len__(self) -> int:
        return self._count

    def __bool__(self) -> bool:
        return self._count > 0

    # ------------------------------------------------------------------ percentiles
    def buckets(self) -> Iterator[tuple[int, int]]:
        """Yield ``(index, count)`` for every non-empty bucket, in increasing index order."""
        for i, c in enumerate(self._counts):
            if c:
                yield i, c

    def percentile(self, p: float) -> int | None:
        """Value at percentile ``p`` (``0 <= p <= 100``) in the inverted-CDF sense; ``None`` when empty.

        Returns the representative value (midpoint) of the bucket holding the ``ceil(p/100 * count)``-th
        smallest value, clamped to ``[min, max]``: exact for values below ``2**sub_bucket_bits``, otherwise
        within ``max_relative_width / 2`` of the true order statistic. ``p == 0`` gives ``min`` and
        ``p == 100`` gives ``max``.
        """
        return self.percentiles((p,))[0]

    def percentiles(self, ps: Iterable[float]) -> list[int | None]:
        """Several percentiles in one pass over the buckets (same semantics as :meth:`percentile`)."""
        ps = list(ps)
        for p in ps:
            if not 0 <= p <= 100:
                raise ValueError(f"percentile must be in [0, 100], got {p!r}")
        if not self._count:
            return [None] * len(ps)
        lo, hi = int(self._min), int(self._max)
        out: list[int | None] = [None] * len(ps)
        pending: list[tuple[int, int]] = []
        for j, p in enumerate(ps):
            if p == 0:
                out[j] = lo
            elif p == 100:
                out[j] = hi
            else:
                pending.append((_rank(p, self._count), j))
        if pending:
            pending.sort()
            k = 0
            cum = 0
            for i, c in enumerate(self._counts):
                if not c:
                    continue
                cum += c
                while k < len(pending) and pending[k][0] <= cum:
                    out[pending[k][1]] = min(hi, max(lo, self.bucket_value(i)))
                    k += 1
                if k == len(pending):
                    break
        return out

    def summary(self) -> dict[str, Any]:
        """JSON-safe summary: count, mean, min, max, p50, p90, p95, p99, p999 (``None`` where empty)."""
        pvals = self.percentiles(p for _, p in SUMMARY_PERCENTILES)
        out: dict[str, Any] = {
            "count": self._count,
            "mean": self.mean() if self._count else None,
            "min": self.min,
            "max": self.max,
        }
        for (key, _), v in zip(SUMMARY_PERCENTILES, pvals, strict=True):
            out[key] = v
        return out

    def cdf(self) -> tuple[np.ndarray, np.ndarray]:
        """``(values, fractions)`` for plotting: one point per non-empty bucket.

        ``values`` (int64) are the buckets' representative values clamped to ``[min, max]``, increasing;
        ``fractions`` (float64) the cumulative fraction of recorded values up to and including that bucket
        (the last is 1.0). Both are empty for an empty histogram.
        """
        if not self._count:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64)
        lo, hi = int(self._min), int(self._max)
        idx, cnt = zip(*self.buckets(), strict=True)
        values = np.array([min(hi, max(lo, self.bucket_value(i))) for i in idx], dtype=np.int64)
        fractions = np.cumsum(np.array(cnt, dtype=np.float64)) / self._count
        return values, fractions

    # ------------------------------------------------------------------ merge, copy, (de)serialise
    def merge(self, other: Histogram) -> Histogram:
        """Add ``other``'s values into this histogram in place (same ``sub_bucket_bits`` required).

        The result is identical to having recorded both streams into one histogram. Returns ``self``.
        """
        if not isinstance(other, Histogram):
            raise TypeError(f"can only merge a Histogram, got {type(other).__name__}")
        if other._bits != self._bits:
            raise ValueError(
                f"cannot merge histograms with sub_bucket_bits {self._bits} and {other._bits}"
            )
        if not other._count:
            return self
        counts = self._counts
        if len(other._counts) > len(counts):
            self._grow(len(other._counts) - 1)
            counts = self._counts
        for i, c in enumerate(other._counts):
            if c:
                counts[i] += c
        self._count += other._count
        self._sum += other._sum
        if other._min < self._min:
            self._min = other._min
        if other._max > self._max:
            self._max = other._max
        return self

    def copy(self) -> Histogram:
        """An independent copy."""
        h = Histogram(self._bits)
        h._counts = list(self._counts)
        h._count = self._count
        h._sum = self._sum
        h._min = self._min
        h._max = self._max
        return h

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form: parameters, exact aggregates and the sparse bucket list ``[[index, count], ...]``."""
        return {
            "sub_bucket_bits": self._bits,
            "count": self._count,
            "sum": self._sum,
            "min": self.min,
            "max": self.max,
            "buckets": [[i, c] for i, c in self.buckets()],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Histogram:
        """Rebuild a histogram from :meth:`to_dict` output (validates that the parts agree)."""
        h = cls(int(d.get("sub_bucket_bits", 7)))
        total = 0
        for idx, c in d.get("buckets", []):
            idx, c = int(idx), int(c)
            if idx < 0 or c < 0:
                raise ValueError(f"bad histogram bucket [{idx}, {c}]")
            if idx >= len(h._counts):
                h._grow(idx)
            h._counts[idx] += c
            total += c
        count = int(d.get("count", total))
        if count != total:
            raise ValueError(f"histogram count {count} does not match bucket total {total}")
        h._count = count
        h._sum = int(d.get("sum", 0))
        if count:
            if d.get("min") is None or d.get("max") is None:
                raise ValueError("non-empty histogram needs min and max")
            h._min = int(d["min"])
            h._max = int(d["max"])
        return h

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Histogram):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        if not self._count:
            return f"Histogram(sub_bucket_bits={self._bits}, empty)"
        p50, p99 = self.percentiles((50, 99))
        return (
            f"Histogram(count={self._count}, mean={self.mean():.6g}, min={self.min}, p50={p50}, "
            f"p99={p99}, max={self.max})"
        )


class Stats:
    """A named group of counters, histograms and child groups for one component.

    ``Stats("system").child("dram.ch0")`` has ``full_name == "system.dram.ch0"``. Within one group a key names
    either a counter, a histogram or a child group, never two of them (``to_dict`` raises on a clash).
    Counters are plain ``int``/``float`` values in :attr:`counters`; every counter adds on merge (a value
    written with :meth:`set` included).
    """

    __slots__ = ("name", "full_name", "counters", "hists", "children")

    def __init__(self, name: str = "", _full_name: str | None = None) -> None:
        self.name = name
        self.full_name = name if _full_name is None else _full_name
        self.counters: dict[str, int | float] = {}
        self.hists: dict[str, Histogram] = {}
        self.children: dict[str, Stats] = {}

    # ------------------------------------------------------------------ counters (hot path)
    def inc(self, key: str, n: int | float = 1) -> None:
        """Add ``n`` (default 1) to counter ``key``, creating it at 0."""
        c = self.counters
        c[key] = c.get(key, 0) + n

    def set(self, key: str, value: int | float) -> None:
        """Set counter ``key`` to ``value``."""
        self.counters[key] = value

    def get(self, key: str, default: int | float = 0) -> int | float:
        """Value of counter ``key``; ``default`` if it was never touched."""
        return self.counters.get(key, default)

    counter = get

    # ------------------------------------------------------------------ histograms and children
    def hist(self, key: str, sub_bucket_bits: int = 7) -> Histogram:
        """Histogram ``key`` of this group, created on first use (``sub_bucket_bits`` applies then)."""
        h = self.hists.get(key)
        if h is None:
            h = self.hists[key] = Histogram(sub_bucket_bits)
        return h

    def child(self, name: str) -> Stats:
        """Child group ``name`` (created on demand); a dotted name walks/creates several levels."""
        node = self
        for part in name.split("."):
            if not part:
                raise ValueError(f"empty component in stats name {name!r}")
            ch = node.children.get(part)
            if ch is None:
                full = f"{node.full_name}.{part}" if node.full_name else part
                ch = node.children[part] = Stats(part, full)
            node = ch
        return node

    def __getitem__(self, path: str) -> int | float | Histogram | Stats:
        """Resolve a dotted path relative to this group to a counter value, a histogram or a child group."""
        head, _, last = path.rpartition(".")
        node = self
        if head:
            for part in head.split("."):
                if part not in node.children:
                    raise KeyError(path)
                node = node.children[part]
        if last in node.counters:
            return node.counters[last]
        if last in node.hists:
            return node.hists[last]
        if last in node.children:
            return node.children[last]
        raise KeyError(path)

    def __contains__(self, path: str) -> bool:
        try:
            self[path]
        except KeyError:
            return False
        return True

    def walk(self) -> Iterator[Stats]:
        """This group and every descendant, depth-first, children in sorted order."""
        yield self
        for k in sorted(self.children):
            yield from self.children[k].walk()

    def reset(self) -> None:
        """Zero every counter and clear every histogram in this tree (keys and groups stay)."""
        for node in self.walk():
            for k in node.counters:
                node.counters[k] = 0
            for h in node.hists.values():
                h.clear()

    # ------------------------------------------------------------------ reporting
    def _check_keys(self) -> None:
        c, h, ch = self.counters.keys(), self.hists.keys(), self.children.keys()
        clash = (c & h) | (c & ch) | (h & ch)
        if clash:
            raise ValueError(f"stats group {self.full_name!r}: keys used twice: {sorted(clash)}")

    def to_dict(self, raw: bool = False) -> dict[str, Any]:
        """Nested, JSON-safe dict of this tree, keys sorted.

        Counters map to their values, histograms to :meth:`Histogram.summary` (plus the full histogram
        under ``"_hist"`` when ``raw`` is true), child groups to nested dicts.
        """
        self._check_keys()
        out: dict[str, Any] = {}
        for k in sorted(self.counters):
            out[k] = self.counters[k]
        for k in sorted(self.hists):
            h = self.hists[k]
            s = h.summary()
            if raw:
                s["_hist"] = h.to_dict()
            out[k] = s
        for k in sorted(self.children):
            out[k] = self.children[k].to_dict(raw)
        return out

    @classmethod
    def from_dict(cls, name: str, d: dict[str, Any]) -> Stats:
        """Rebuild a tree from ``to_dict(raw=True)`` output (histogram summaries without ``_hist`` are
        rejected: they cannot be turned back into histograms)."""
        root = cls(name)
        root._fill(d)
        return root

    def _fill(self, d: dict[str, Any]) -> None:
        for k, v in d.items():
            if isinstance(v, dict):
                if "_hist" in v:
                    self.hists[k] = Histogram.from_dict(v["_hist"])
                elif {"count", "p50", "p99"} <= v.keys() and not any(isinstance(x, dict) for x in v.values()):
                    raise ValueError(f"{k!r} looks like a histogram summary without '_hist'; use raw=True")
                else:
                    self.child(k)._fill(v)
            elif isinstance(v, bool) or not isinstance(v, int | float):
                raise ValueError(f"counter {k!r} must be a number, got {v!r}")
            else:
                self.counters[k] = v

    def flat(self, include_hist: bool = False) -> dict[str, int | float | None]:
        """Map full dotted name -> value for every counter in this tree.

        With ``include_hist`` each histogram adds ``<name>.count``, ``.mean``, ``.min``, ``.max``, ``.p50`` ...
        ``.p999`` entries (its summary).
        """
        out: dict[str, int | float | None] = {}
        for node in self.walk():
            prefix = f"{node.full_name}." if node.full_name else ""
            for k in sorted(node.counters):
                out[prefix + k] = node.counters[k]
            if include_hist:
                for k in sorted(node.hists):
                    for sk, sv in node.hists[k].summary().items():
                        out[f"{prefix}{k}.{sk}"] = sv
        return out

    # ------------------------------------------------------------------ merge
    def merge(self, other: Stats) -> Stats:
        """Merge ``other``'s tree into this one in place: counters add, histograms merge, groups recurse.

        Returns ``self``. ``other`` is not modified (histograms missing here are copied, not shared).
        """
        c = self.counters
        for k, v in other.counters.items():
            c[k] = c.get(k, 0) + v
        for k, h in other.hists.items():
            mine = self.hists.get(k)
            if mine is None:
                self.hists[k] = h.copy()
            else:
                mine.merge(h)
        for k, ch in other.children.items():
            self.child(k).merge(ch)
        return self

    def copy(self) -> Stats:
        """A deep, independent copy (same names)."""
        s = Stats(self.name, self.full_name)
        s.merge(self)
        return s

    def __repr__(self) -> str:
        return (
            f"Stats({self.full_name!r}, counters={len(self.counters)}, hists={len(self.hists)}, "
            f"children={len(self.children)})"
        )


def merge_stats(a: Stats, b: Stats) -> Stats:
    """A new tree holding ``a`` and ``b`` merged (counters add, histograms merge); neither input changes.

    The result carries ``a``'s names.
    """
    return a.copy().merge(b)
