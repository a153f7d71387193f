"""Index and pooling samplers, batch streaming, determinism, bounded memory, and the resulting statistics."""

from __future__ import annotations

import gc
import resource
import textwrap
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from archsim.workload.batches import Batch, iter_batches
from archsim.workload.distributions import (
    EmpiricalPooling,
    FeistelPermutation,
    HotsetIndex,
    NormalPooling,
    UniformPooling,
    ZipfIndex,
    harmonic,
)
from archsim.workload.spec import WorkloadSpec, load_workload
from archsim.workload.trace_stats import fit_zipf, trace_stats


def spec_file(tmp_path: Path, text: str, name: str = "w.yaml") -> Path:
    p = tmp_path / name
    p.write_text(textwrap.dedent(text).lstrip("\n"))
    return p


# ------------------------------------------------------------------------------------------------------------
# permutation and samplers
# ------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 3, 7, 1000, 12345, (1 << 16) + 1])
def test_feistel_is_a_bijection_with_an_inverse(n):
    p = FeistelPermutation(n, key=[1, 2, 3])
    x = np.arange(n, dtype=np.int64)
    y = p(x)
    assert np.array_equal(np.sort(y), x)
    assert np.array_equal(p.inverse(y), x)
    if n > 100:
        assert not np.array_equal(y, x)
        assert not np.array_equal(FeistelPermutation(n, key=4)(x), y)  # the key matters


def test_feistel_on_huge_domains_needs_no_table():
    n = 10**12 + 39
    p = FeistelPermutation(n, key=9)
    x = np.random.default_rng(0).integers(0, n, 100_000)
    y = p(x)
    assert y.min() >= 0 and y.max() < n
    assert np.array_equal(p.inverse(y), x)
    assert np.unique(y).size == np.unique(x).size


@pytest.mark.parametrize("s", [0.6, 1.0, 1.05, 1.6])
def test_zipf_ranks_follow_the_pmf(s):
    n_rows = 40
    ranks = ZipfIndex(n_rows, s, permute=False).ranks(np.random.default_rng(1), 400_000)
    assert ranks.min() >= 1 and ranks.max() <= n_rows
    freq = np.bincount(ranks, minlength=n_rows + 1)[1:] / ranks.size
    pmf = np.arange(1, n_rows + 1, dtype=float) ** -s
    pmf /= pmf.sum()
    sigma = np.sqrt(pmf * (1 - pmf) / ranks.size)
    assert np.all(np.abs(freq - pmf) < 5 * sigma + 1e-12)


def test_zipf_on_1e8_rows_streams_without_per_row_arrays():
    rows = 10**8
    tracemalloc.start()
    z = ZipfIndex(rows, 1.05, key=3)
    x = z.sample(np.random.default_rng(2), 200_000)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 64 * 2**20  # a per-row array would be 800 MB
    assert x.min() >= 0 and x.max() < rows
    # the hottest row gets 1 / H(rows, s) of the lookups, and it is not row 0 (scattered)
    vals, counts = np.unique(x, return_counts=True)
    top = counts.argmax()
    assert abs(counts[top] / x.size - 1 / harmonic(rows, 1.05)) < 0.01
    assert vals[top] == z.perm(np.array([0]))[0] != 0


def test_harmonic_matches_direct_sums():
    for n in (1, 10, 5000, 300_000):
        for s in (0.0, 0.5, 1.0, 1.05, 2.5):
            direct = float(np.sum(np.arange(1, n + 1, dtype=float) ** -s))
            assert harmonic(n, s) == pytest.approx(direct, rel=1e-12)


def test_hotset_share_reproduced_within_one_point():
    rows, h, p = 1_000_000, 0.05, 0.7
    hs = HotsetIndex(rows, h, p, key=11)
    x = hs.sample(np.random.default_rng(4), 400_000)
    share = hs.is_hot(x).mean()
    assert abs(share - p) < 0.01
    assert hs.hot == 50_000
    hot_rows = np.unique(x[hs.is_hot(x)])
    assert hot_rows.size <= hs.hot and hot_rows.max() > hs.hot  # scattered over the table, not rows 0..H-1
    plain = HotsetIndex(rows, h, p, permute=False)
    y = plain.sample(np.random.default_rng(4), 400_000)
    assert abs((y < 50_000).mean() - p) < 0.01


def test_uniform_pooling_range_respected():
    x = UniformPooling(3, 9).sample(np.random.default_rng(0), 50_000)
    assert x.min() == 3 and x.max() == 9
    assert set(np.unique(x).tolist()) == set(range(3, 10))
    assert abs(x.mean() - 6) < 0.05


def test_empirical_pooling_matches_weights():
    values, weights = [1, 4, 20, 100], [5, 3, 1.5, 0.5]
    x = EmpiricalPooling(values, weights).sample(np.random.default_rng(0), 200_000)
    assert set(np.unique(x).tolist()) == set(values)
    expected = np.array(weights) / sum(weights)
    observed = np.array([(x == v).mean() for v in values])
    sigma = np.sqrt(expected * (1 - expected) / x.size)
    assert np.all(np.abs(observed - expected) < 5 * sigma)
    from scipy.stats import chisquare

    counts = np.array([(x == v).sum() for v in values])
    assert chisquare(counts, expected * x.size).pvalue > 1e-4


def test_normal_pooling_is_rounded_and_clipped():
    x = NormalPooling(3, 4, max=8).sample(np.random.default_rng(0), 50_000)
    assert x.dtype == np.int64 and x.min() == 1 and x.max() == 8


def test_fit_zipf_on_expected_counts_is_exact():
    rows = 50_000
    for s in (0.7, 1.0, 1.3):
        expected = 1e7 * np.arange(1, rows + 1, dtype=float) ** -s / harmonic(rows, s)
        assert fit_zipf(expected[::-1], rows) == pytest.approx(s, abs=1e-4)
    assert fit_zipf(np.array([0, 0]), 10) is None


# ------------------------------------------------------------------------------------------------------------
# batches: shapes, determinism, statistics
# ------------------------------------------------------------------------------------------------------------


def _spec(tmp_path: Path, s: float | None = None, **kw) -> WorkloadSpec:
    index = f"{{dist: zipf, s: {s}}}" if s is not None else "uniform"
    rows, pooling = kw.get("rows", 1000), kw.get("pooling", "[1, 6]")
    text = f"""
        seed: {kw.get("seed", 1)}
        batch_size: {kw.get("batch_size", 64)}
        num_batches: {kw.get("num_batches", 3)}
        tables:
          - {{name: a, rows: {rows}, dim: 8, pooling: {pooling}, index: {index}}}
          - {{name: b, rows: 50, dim: 4, pooling: 2}}
        """
    return load_workload(spec_file(tmp_path, text))


def test_batches_have_csr_shape(tmp_path):
    spec = _spec(tmp_path)
    batches = list(iter_batches(spec))
    assert len(batches) == 3 and [b.index for b in batches] == [0, 1, 2]
    for b in batches:
        assert isinstance(b, Batch) and b.batch_size == 64 and b.num_tables == 2
        for t, rows in ((0, 1000), (1, 50)):
            o, idx = b.offsets[t], b.indices[t]
            assert o.dtype == np.int64 and idx.dtype == np.int64
            assert o.shape == (65,) and o[0] == 0 and o[-1] == idx.size and np.all(np.diff(o) >= 1)
            assert idx.min() >= 0 and idx.max() < rows
        assert np.all(b.lengths(1) == 2) and b.bag(1, 3).size == 2
        assert b.num_lookups == b.indices[0].size + 128


def test_determinism_and_independent_table_streams(tmp_path):
    spec = _spec(tmp_path, s=1.1)
    a = list(iter_batches(spec))
    b = list(iter_batches(spec))
    assert all(x.equals(y) for x, y in zip(a, b))
    c = list(iter_batches(spec, seed=2))
    assert not any(np.array_equal(x.indices[0], y.indices[0]) for x, y in zip(a, c))
    assert list(iter_batches(spec, seed=spec.seed))[1].equals(a[1])
    # appending a table leaves the existing tables' batches unchanged
    bigger = load_workload(
        spec_file(
            tmp_path,
            """
        seed: 1
        batch_size: 64
        num_batches: 3
        tables:
          - {name: a, rows: 1000, dim: 8, pooling: [1, 6], index: {dist: zipf, s: 1.1}}
          - {name: b, rows: 50, dim: 4, pooling: 2}
          - {name: c, rows: 9, dim: 4, pooling: 7}
        """,
            "bigger.yaml",
        )
    )
    for x, y in zip(a, iter_batches(bigger)):
        assert y.num_tables == 3
        for t in range(2):
            assert np.array_equal(x.indices[t], y.indices[t]) and np.array_equal(x.offsets[t], y.offsets[t])


@pytest.mark.parametrize("s", [0.8, 1.05, 1.2])
def test_trace_stats_recovers_zipf_exponent(tmp_path, s):
    spec = _spec(tmp_path, s=s, rows=100_000, batch_size=20_000, num_batches=50, pooling=1)
    st = trace_stats(spec)
    a = st["tables"][0]
    assert a["lookups"] == 1_000_000 and st["batches"] == 50
    assert abs(a["zipf_s"] - s) < 0.05, a
    assert a["zipf_reliable"]
    assert a["pooling_mean"] == 1 and a["pooling_min"] == a["pooling_max"] == 1
    # the reuse profile: the hottest 1% of touched rows take a large share; unique rows per batch < lookups
    assert 0.3 < a["hot1pct_share"] < 0.9
    assert a["unique_per_batch"] < 20_000
    b = st["tables"][1]
    assert b["unique_rows"] == 50 and b["pooling_mean"] == 2


def test_trace_stats_of_a_uniform_table(tmp_path):
    spec = _spec(tmp_path, rows=1000, batch_size=1000, num_batches=20, pooling="[2, 5]")
    a = trace_stats(spec)["tables"][0]
    assert a["unique_rows"] == 1000
    assert a["zipf_s"] < 0.2  # sampling noise alone orders the counts (about 70 +- 8 per row): s near 0.1
    assert a["pooling_min"] == 2 and a["pooling_max"] == 5 and abs(a["pooling_mean"] - 3.5) < 0.05
    assert a["hot1pct_share"] < 0.02


def test_trace_stats_sparse_counter_matches_dense(tmp_path, monkeypatch):
    import archsim.workload.trace_stats as ts

    spec = _spec(tmp_path, s=0.9, rows=5000, batch_size=500, num_batches=8)
    dense = trace_stats(spec)
    monkeypatch.setattr(ts, "DENSE_ROWS", 10)
    sparse = trace_stats(spec)
    assert dense == sparse


def test_streaming_memory_is_bounded(tmp_path):
    """1,000 batches of 4,096 bags: iter_batches must not accumulate (tracemalloc peak and maxrss)."""
    spec = load_workload(
        spec_file(
            tmp_path,
            """
        batch_size: 4096
        num_batches: 1000
        tables:
          - {rows: 10000000, dim: 16, pooling: [1, 4], index: uniform}
        """,
        )
    )
    gc.collect()
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    tracemalloc.start()
    n = lookups = 0
    for b in iter_batches(spec):
        n += 1
        lookups += b.indices[0].size
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert n == 1000 and 9_000_000 < lookups < 11_500_000
    assert peak < 500 * 2**20, peak
    assert peak < 8 * 2**20  # in fact about one batch
    assert (rss1 - rss0) * 1024 < 500 * 2**20
