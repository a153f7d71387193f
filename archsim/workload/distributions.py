"""Samplers for embedding workloads: which rows a bag reads (index samplers) and how many (pooling samplers).

Every sampler draws from a ``numpy.random.Generator`` the caller owns and works in numpy blocks; none holds an
array with one entry per table row, so a table of 10^9 rows costs no more memory than one of 10^3.

Index samplers (rows of one table, ``[0, rows)``):

- :class:`UniformIndex`: every row equally likely.
- :class:`ZipfIndex`: rank ``k`` (1-based) has probability proportional to ``k**-s`` over ranks
  ``1..rows``, for any ``s > 0`` (below, at and above 1). Ranks are drawn exactly by rejection-inversion
  (Hörmann and Derflinger, "Rejection-inversion to generate variates from monotone discrete distributions",
  1996), which needs O(1) memory whatever the number of rows; a keyed :class:`FeistelPermutation` then
  scatters the ranks over the rows, so hot rows do not sit next to each other (``permute=False`` keeps
  row = rank - 1).
- :class:`HotsetIndex`: a fraction ``h`` of the rows (the hot set) receives a fraction ``p`` of the accesses,
  uniformly within the hot and the cold rows; the hot set is scattered by the same permutation.

Pooling samplers (bag lengths, each >= 1): :class:`FixedPooling`, :class:`UniformPooling` (inclusive range),
:class:`NormalPooling` (rounded, clipped to ``[1, max]``) and :class:`EmpiricalPooling` (a histogram).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = [
    "FeistelPermutation",
    "IndexSampler",
    "UniformIndex",
    "ZipfIndex",
    "HotsetIndex",
    "PoolingSampler",
    "FixedPooling",
    "UniformPooling",
    "NormalPooling",
    "EmpiricalPooling",
    "harmonic",
]

_U64 = np.uint64
_C1 = _U64(0xBF58476D1CE4E5B9)
_C2 = _U64(0x94D049BB133111EB)
_GOLDEN = _U64(0x9E3779B97F4A7C15)


# ------------------------------------------------------------------------------------------------------------
# A cheap keyed bijection over [0, n)
# ------------------------------------------------------------------------------------------------------------


class FeistelPermutation:
    """A keyed pseudo-random bijection of ``[0, n)``: a balanced Feistel network with cycle walking.

    The network permutes ``[0, 4**h)`` for the smallest ``4**h >= n``; values that land outside ``[0, n)`` are
    encrypted again until they fall inside (cycle walking), which keeps it a bijection of ``[0, n)``. Each
    value needs fewer than 4 passes on average. Nothing of size ``n`` is ever allocated.
    """

    __slots__ = ("n", "half", "mask", "keys")

    def __init__(self, n: int, key: int | Sequence[int], rounds: int = 4) -> None:
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        self.n = int(n)
        bits = max(2, (self.n - 1).bit_length())
        bits += bits & 1
        self.half = _U64(bits // 2)
        self.mask = _U64((1 << (bits // 2)) - 1)
        self.keys = np.random.SeedSequence(key).generate_state(rounds, dtype=np.uint64)

    def _f(self, r: np.ndarray, k: np.uint64) -> np.ndarray:
        # splitmix64 finaliser of (r + k): a well-mixed round function
        z = (r + k) * _GOLDEN
        z ^= z >> _U64(30)
        z *= _C1
        z ^= z >> _U64(27)
        z *= _C2
        z ^= z >> _U64(31)
        return z & self.mask

    def _encrypt(self, x: np.ndarray) -> np.ndarray:
        left, right = x >> self.half, x & self.mask
        for k in self.keys:
            left, right = right, left ^ self._f(right, k)
        return (left << self.half) | right

    def _decrypt(self, y: np.ndarray) -> np.ndarray:
        left, right = y >> self.half, y & self.mask
        for k in self.keys[::-1]:
            left, right = right ^ self._f(left, k), left
        return (left << self.half) | right

    def _walk(self, x: np.ndarray, step) -> np.ndarray:
        if self.n == 1:
            return np.zeros(np.shape(x), dtype=np.int64)
        y = step(np.asarray(x, dtype=np.int64).astype(np.uint64))
        n = _U64(self.n)
        out = np.flatnonzero(y >= n)
        while out.size:
            sub = step(y[out])
            y[out] = sub
            out = out[sub >= n]
        return y.astype(np.int64)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """The images of ``x`` (int64 values in ``[0, n)``)."""
        return self._walk(x, self._encrypt)

    def inverse(self, y: np.ndarray) -> np.ndarray:
        """The pre-images of ``y``: ``perm.inverse(perm(x)) == x``."""
        return self._walk(y, self._decrypt)


# ------------------------------------------------------------------------------------------------------------
# Index samplers
# ------------------------------------------------------------------------------------------------------------


class IndexSampler:
    """Draws row indices of one table; ``sample(rng, n)`` returns ``n`` int64 values in ``[0, rows)``."""

    rows: int

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError


class UniformIndex(IndexSampler):
    """Every row equally likely."""

    def __init__(self, rows: int) -> None:
        self.rows = int(rows)

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.integers(0, self.rows, size=n, dtype=np.int64)


def _expm1_over(x: np.ndarray | float) -> np.ndarray | float:
    """``(exp(x) - 1) / x``, equal to 1 at 0."""
    x = np.asarray(x, dtype=np.float64)
    small = np.abs(x) < 1e-8
    safe = np.where(small, 1.0, x)
    return np.where(small, 1.0 + x * (0.5 + x / 6.0), np.expm1(safe) / safe)


def _log1p_over(x: np.ndarray | float) -> np.ndarray | float:
    """``log(1 + x) / x``, equal to 1 at 0."""
    x = np.asarray(x, dtype=np.float64)
    small = np.abs(x) < 1e-8
    safe = np.where(small, 1.0, x)
    return np.where(small, 1.0 - x * (0.5 - x / 3.0), np.log1p(safe) / safe)


class ZipfIndex(IndexSampler):
    """Zipf over the rows: rank ``k`` in ``1..rows`` has probability ``k**-s / H(rows, s)``.

    Ranks are drawn exactly by rejection-inversion (acceptance above 90 % for every ``s``); the scattering
    permutation maps rank ``k`` to row ``perm(k - 1)``.
    """

    def __init__(self, rows: int, s: float, key: int | Sequence[int] = 0, permute: bool = True) -> None:
        if rows < 1 or not s > 0:
            raise ValueError(f"need rows >= 1 and s > 0, got rows={rows}, s={s}")
        self.rows = int(rows)
        self.s = float(s)
        self.perm = FeistelPermutation(self.rows, key) if permute else None
        self._h_x1 = float(self._H(1.5)) - 1.0
        self._h_n = float(self._H(self.rows + 0.5))
        self._sval = 2.0 - float(self._H_inv(self._H(2.5) - self._h(2.0)))

    # h(x) = x^-s; H(x) = (x^(1-s) - 1) / (1-s) (log x at s = 1), an antiderivative of h; H_inv its inverse
    def _h(self, x):
        return np.exp(-self.s * np.log(x))

    def _H(self, x):
        lx = np.log(x)
        return _expm1_over((1.0 - self.s) * lx) * lx

    def _H_inv(self, x):
        t = np.maximum(x * (1.0 - self.s), -1.0)
        return np.exp(_log1p_over(t) * x)

    def ranks(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` ranks (1-based, int64), not permuted."""
        out = np.empty(n, dtype=np.int64)
        filled = 0
        while filled < n:
            want = n - filled
            m = int(want * 1.1) + 16
            u = self._h_n + rng.random(m) * (self._h_x1 - self._h_n)
            x = self._H_inv(u)
            k = np.clip(np.floor(x + 0.5), 1, self.rows)
            accept = (k - x <= self._sval) | (u >= self._H(k + 0.5) - self._h(k))
            got = k[accept][:want].astype(np.int64)
            out[filled : filled + got.size] = got
            filled += got.size
        return out

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        r = self.ranks(rng, n) - 1
        return self.perm(r) if self.perm is not None else r


class HotsetIndex(IndexSampler):
    """A hot set of ``round(h * rows)`` rows (at least 1, at most rows - 1) gets a share ``p`` of accesses.

    Within the hot set and within the cold rows, accesses are uniform. The hot rows are ``perm([0, H))`` (with
    ``permute=False``: rows ``0..H-1``).
    """

    def __init__(
        self, rows: int, h: float, p: float, key: int | Sequence[int] = 0, permute: bool = True
    ) -> None:
        if rows < 2:
            raise ValueError(f"a hot set needs at least 2 rows, got {rows}")
        self.rows = int(rows)
        self.p = float(p)
        self.hot = min(max(1, round(h * rows)), rows - 1)
        self.perm = FeistelPermutation(self.rows, key) if permute else None

    def is_hot(self, rows: np.ndarray) -> np.ndarray:
        """Whether each of ``rows`` belongs to the hot set."""
        ranks = self.perm.inverse(rows) if self.perm is not None else np.asarray(rows)
        return ranks < self.hot

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        hot = rng.random(n) < self.p
        r = rng.integers(self.hot, self.rows, size=n, dtype=np.int64)
        nh = int(np.count_nonzero(hot))
        r[hot] = rng.integers(0, self.hot, size=nh, dtype=np.int64)
        return self.perm(r) if self.perm is not None else r


# ------------------------------------------------------------------------------------------------------------
# Pooling samplers
# ------------------------------------------------------------------------------------------------------------


class PoolingSampler:
    """Draws bag lengths; ``sample(rng, n)`` returns ``n`` int64 values, each >= 1."""

    mean: float

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError


class FixedPooling(PoolingSampler):
    """Every bag has ``value`` lookups (consumes no randomness)."""

    def __init__(self, value: int) -> None:
        self.value = int(value)
        self.mean = float(value)

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return np.full(n, self.value, dtype=np.int64)


class UniformPooling(PoolingSampler):
    """Bag lengths uniform over ``lo..hi`` inclusive."""

    def __init__(self, lo: int, hi: int) -> None:
        self.lo, self.hi = int(lo), int(hi)
        self.mean = (self.lo + self.hi) / 2

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.integers(self.lo, self.hi + 1, size=n, dtype=np.int64)


class NormalPooling(PoolingSampler):
    """Bag lengths ``round(N(mean, std))`` clipped to ``[1, max]`` (``max`` None: no upper clip)."""

    def __init__(self, mean: float, std: float, max: int | None = None) -> None:
        self.mu, self.std, self.max = float(mean), float(std), max
        self.mean = float(mean)  # before clipping

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        x = np.rint(rng.normal(self.mu, self.std, size=n))
        return np.clip(x, 1, self.max if self.max is not None else np.inf).astype(np.int64)


class EmpiricalPooling(PoolingSampler):
    """Bag lengths drawn from a histogram: ``values[i]`` with probability ``weights[i] / sum(weights)``."""

    def __init__(self, values: Sequence[int], weights: Sequence[float]) -> None:
        self.values = np.asarray(values, dtype=np.int64)
        w = np.asarray(weights, dtype=np.float64)
        self.probs = w / w.sum()
        self._cdf = np.cumsum(self.probs)
        self._cdf[-1] = 1.0
        self.mean = float(np.dot(self.values, self.probs))

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        i = np.searchsorted(self._cdf, rng.random(n), side="right")
        return self.values[np.minimum(i, self.values.size - 1)]


def harmonic(n: int, s: float, exact: int = 4096) -> float:
    """The generalised harmonic number ``H(n, s) = sum_{k=1..n} k**-s`` for any ``s >= 0``, in O(exact) time.

    The first ``exact`` terms are summed; the rest by Euler-Maclaurin (integral, end terms and two derivative
    corrections), exact to double precision for ``exact`` in the thousands.
    """
    k = min(int(n), exact)
    head = float(np.sum(np.arange(1, k + 1, dtype=np.float64) ** -s))
    if n <= k:
        return head
    a, b = float(k + 1), float(n)
    la = math.log(a)
    integral = math.exp((1.0 - s) * la) * float(_expm1_over((1.0 - s) * math.log(b / a))) * math.log(b / a)
    fa, fb = a**-s, b**-s
    d1a, d1b = -s * a ** (-s - 1), -s * b ** (-s - 1)
    d3a, d3b = -s * (s + 1) * (s + 2) * a ** (-s - 3), -s * (s + 1) * (s + 2) * b ** (-s - 3)
    tail = integral + (fa + fb) / 2 + (d1b - d1a) / 12 - (d3b - d3a) / 720
    return head + tail
