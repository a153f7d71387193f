"""Tests for archsim.core.stats: log-linear histogram and hierarchical Stats groups."""

from __future__ import annotations

import json
import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from archsim.core.stats import Histogram, Stats, merge_stats

# Percentiles whose float rank computation in numpy agrees with the exact decimal rank for the list sizes used.
NP_PERCENTILES = [0, 1, 5, 10, 25, 50, 75, 90, 95, 99, 100]

values_st = st.lists(
    st.one_of(st.integers(0, 200), st.integers(0, 10**6), st.integers(0, 2**40)), min_size=1, max_size=300
)


def exact_percentile(data: list[int], p: float) -> int:
    """Inverted-CDF order statistic at exact decimal rank ceil(p/100*n)."""
    s = sorted(data)
    if p == 0:
        return s[0]
    rank = max(1, math.ceil(Fraction(repr(float(p))) * len(s) / 100))
    return s[rank - 1]


def hist_of(data: list[int]) -> Histogram:
    h = Histogram()
    for v in data:
        h.record(v)
    return h


# ---------------------------------------------------------------------- bucket layout
def test_exact_below_128() -> None:
    h = Histogram()
    for v in range(128):
        assert h.bucket_index(v) == v
        assert h.bucket_bounds(v) == (v, v)
        assert h.bucket_value(v) == v
    for v in range(128):
        h.record_n(v, v + 1)
    assert h.count == sum(range(1, 129))
    # Every percentile is an exact recorded value.
    assert h.percentile(50) == exact_percentile([v for v in range(128) for _ in range(v + 1)], 50)
    assert h.percentile(50) == 90
    assert h.min == 0
    assert h.max == 127
    assert dict(h.buckets()) == {v: v + 1 for v in range(128)}


def test_bucket_layout_contiguous_and_bounded() -> None:
    h = Histogram()
    assert h.bucket_index(128) == 128
    assert h.bucket_bounds(128) == (128, 129)
    assert h.bucket_index(255) == 191
    assert h.bucket_bounds(191) == (254, 255)
    assert h.bucket_index(256) == 192
    assert h.bucket_bounds(192) == (256, 259)
    prev_high = 127
    for idx in range(128, 128 + 64 * 40):
        low, high = h.bucket_bounds(idx)
        assert low == prev_high + 1  # no gaps, no overlaps
        assert h.bucket_index(low) == idx
        assert h.bucket_index(high) == idx
        assert (high - low + 1) / low <= 1 / 64
        prev_high = high
    assert h.max_relative_width == 1 / 64


def test_negative_value_rejected() -> None:
    h = Histogram()
    with pytest.raises(ValueError):
        h.record(-1)
    with pytest.raises(ValueError):
        h.record_n(-5, 2)
    with pytest.raises(ValueError):
        h.record_n(5, -1)
    assert h.count == 0


def test_large_values_and_growth() -> None:
    h = Histogram()
    big = 2**62 + 12345
    h.record(big)
    h.record(3)
    assert h.count == 2
    assert h.sum == big + 3
    assert h.max == big
    assert h.percentile(100) == big
    assert h.percentile(50) == 3
    # p=99 hits the big bucket: clamped midpoint, within 1/128 of the true value.
    p99 = h.percentile(99)
    assert abs(p99 - big) <= big / 128


# ---------------------------------------------------------------------- percentiles
def test_empty_histogram() -> None:
    h = Histogram()
    assert h.count == 0
    assert h.percentile(50) is None
    assert h.percentile(0) is None
    assert math.isnan(h.mean())
    assert h.min is None and h.max is None
    s = h.summary()
    assert s == {"count": 0, "mean": None, "min": None, "max": None,
                 "p50": None, "p90": None, "p95": None, "p99": None, "p999": None}
    values, fractions = h.cdf()
    assert values.shape == (0,) and fractions.shape == (0,)


def test_percentile_bad_argument() -> None:
    h = hist_of([1, 2, 3])
    with pytest.raises(ValueError):
        h.percentile(101)
    with pytest.raises(ValueError):
        h.percentile(-0.1)
    with pytest.raises(ValueError):
        h.percentile(float("nan"))


def test_known_distribution_1_to_1000() -> None:
    data = list(range(1, 1001))
    h = hist_of(data)
    assert h.count == 1000
    assert h.sum == 500500
    assert h.mean() == 500.5
    assert h.min == 1 and h.max == 1000
    assert h.percentile(0) == 1
    assert h.percentile(100) == 1000
    # Exact region.
    assert h.percentile(10) == 100
    assert h.percentile(12.7) == 127
    # Values 500 (bucket [500, 503]), 900 ([896, 903]), 950 ([944, 951]), 990 ([984, 991]), 999 ([992, 999]).
    assert h.percentile(50) == 501
    assert h.percentile(90) == 899
    assert h.percentile(95) == 947
    assert h.percentile(99) == 987
    assert h.percentile(99.9) == 995
    for p in [1, 12.8, 25, 33.3, 50, 66.6, 75, 90, 95, 99, 99.9]:
        true = exact_percentile(data, p)
        got = h.percentile(p)
        assert abs(got - true) <= true / 128, (p, got, true)
    summary = h.summary()
    assert summary == {"count": 1000, "mean": 500.5, "min": 1, "max": 1000,
                       "p50": 501, "p90": 899, "p95": 947, "p99": 987, "p999": 995}


def test_p999_uses_exact_decimal_rank() -> None:
    # 99.9/100*1000 is 999 exactly; binary float arithmetic would round the rank up to 1000.
    h = hist_of(list(range(1000)))
    assert h.percentile(99.9) == h.bucket_value(h.bucket_index(998))
    assert h.percentile(99.9) == 995


def test_percentiles_single_pass_matches_individual() -> None:
    h = hist_of([5, 1000, 20000, 7, 7, 300000])
    ps = [99, 0, 50, 100, 10]
    assert h.percentiles(ps) == [h.percentile(p) for p in ps]
    assert h.percentiles(ps) == [300000, 5, 7, 300000, 5]


def test_percentile_clamped_to_min_max() -> None:
    h = hist_of([1001, 1001, 1001])  # bucket [1000, 1007], midpoint 1003 > max
    assert h.percentile(50) == 1001
    h2 = hist_of([1006, 1006])  # midpoint 1003 < min
    assert h2.percentile(50) == 1006


@settings(max_examples=200, deadline=None)
@given(data=values_st, p=st.sampled_from(NP_PERCENTILES))
def test_percentile_error_bound_vs_numpy(data: list[int], p: float) -> None:
    h = hist_of(data)
    expected = int(np.percentile(np.array(data, dtype=np.int64), p, method="inverted_cdf"))
    assert expected == exact_percentile(data, p)
    got = h.percentile(p)
    assert got is not None
    assert abs(got - expected) <= expected / 64
    assert abs(got - expected) <= expected / 128  # the midpoint representative halves the width bound
    if expected < 128:
        assert got == expected


@settings(max_examples=100, deadline=None)
@given(data=values_st, p=st.floats(0, 100, allow_nan=False))
def test_percentile_error_bound_any_p(data: list[int], p: float) -> None:
    h = hist_of(data)
    expected = exact_percentile(data, p)
    got = h.percentile(p)
    assert abs(got - expected) <= expected / 128
    assert min(data) <= got <= max(data)


@settings(max_examples=100, deadline=None)
@given(data=values_st)
def test_mean_sum_min_max_exact(data: list[int]) -> None:
    h = hist_of(data)
    assert h.count == len(data)
    assert h.sum == sum(data)
    assert h.min == min(data)
    assert h.max == max(data)
    assert h.mean() == sum(data) / len(data)


def test_record_n_equals_repeated_record() -> None:
    a = Histogram()
    b = Histogram()
    a.record_n(700, 5)
    a.record_n(3, 2)
    a.record_n(9, 0)
    for _ in range(5):
        b.record(700)
    b.record(3)
    b.record(3)
    assert a == b
    assert a.count == 7
    assert a.sum == 3506
    assert a.min == 3


def test_record_array() -> None:
    arr = np.array([5, 5, 130, 10**9, 0], dtype=np.int64)
    a = Histogram()
    a.record_array(arr)
    assert a == hist_of([5, 5, 130, 10**9, 0])
    assert a.sum == 10**9 + 140
    with pytest.raises(TypeError):
        a.record_array(np.array([1.5]))


# ---------------------------------------------------------------------- merge and serialisation
@settings(max_examples=150, deadline=None)
@given(a=st.lists(st.integers(0, 2**40), max_size=200), b=st.lists(st.integers(0, 2**40), max_size=200))
def test_merge_equals_combined_recording(a: list[int], b: list[int]) -> None:
    ha = hist_of(a)
    hb = hist_of(b)
    hab = hist_of(a + b)
    merged = ha.copy().merge(hb)
    assert merged == hab
    assert merged.to_dict() == hab.to_dict()
    assert merged.count == len(a) + len(b)
    assert merged.sum == sum(a) + sum(b)
    assert merged.percentiles([0, 50, 99, 100]) == hab.percentiles([0, 50, 99, 100])
    # Merge order does not matter; inputs untouched.
    assert hb.copy().merge(ha) == hab
    assert ha == hist_of(a)


def test_merge_parameter_mismatch() -> None:
    with pytest.raises(ValueError):
        Histogram(7).merge(Histogram(8))
    with pytest.raises(TypeError):
        Histogram().merge([1, 2])  # type: ignore[arg-type]


def test_to_dict_known_values() -> None:
    h = hist_of([3, 3, 200, 201])
    d = h.to_dict()
    assert d == {"sub_bucket_bits": 7, "count": 4, "sum": 407, "min": 3, "max": 201,
                 "buckets": [[3, 2], [164, 2]]}
    assert Histogram().to_dict() == {"sub_bucket_bits": 7, "count": 0, "sum": 0, "min": None, "max": None,
                                     "buckets": []}


@settings(max_examples=100, deadline=None)
@given(data=st.lists(st.integers(0, 2**50), max_size=200), bits=st.integers(2, 10))
def test_to_dict_from_dict_round_trip(data: list[int], bits: int) -> None:
    h = Histogram(bits)
    for v in data:
        h.record(v)
    d = json.loads(json.dumps(h.to_dict()))
    h2 = Histogram.from_dict(d)
    assert h2 == h
    assert h2.sub_bucket_bits == bits
    assert h2.count == len(data)
    assert h2.sum == sum(data)
    assert h2.percentile(50) == h.percentile(50)
    # Round-tripped histograms keep recording and merging consistently.
    h2.record(12345)
    h.record(12345)
    assert h2 == h


def test_from_dict_rejects_inconsistent() -> None:
    with pytest.raises(ValueError):
        Histogram.from_dict({"sub_bucket_bits": 7, "count": 3, "sum": 2, "min": 1, "max": 1,
                             "buckets": [[1, 2]]})
    with pytest.raises(ValueError):
        Histogram.from_dict({"sub_bucket_bits": 7, "count": 1, "sum": 1, "min": None, "max": None,
                             "buckets": [[1, 1]]})


def test_cdf() -> None:
    h = hist_of([1, 1, 2, 1000, 1000])
    values, fractions = h.cdf()
    assert values.tolist() == [1, 2, 1000]  # bucket [1000, 1007] midpoint 1003 clamped to max 1000
    assert fractions.tolist() == [0.4, 0.6, 1.0]
    assert values.dtype == np.int64


def test_clear() -> None:
    h = hist_of([1, 500, 9000])
    h.clear()
    assert h == Histogram()
    assert h.count == 0 and h.sum == 0 and h.min is None
    h.record(7)
    assert h.percentile(50) == 7


# ---------------------------------------------------------------------- Stats groups
def make_tree() -> Stats:
    root = Stats("system")
    root.inc("ticks", 10)
    ch0 = root.child("dram").child("ch0")
    ch0.inc("reads")
    ch0.inc("reads")
    ch0.inc("writes", 3)
    ch0.set("row_hit_rate", 0.5)
    lat = ch0.hist("read_latency")
    for v in (100, 120, 1000):
        lat.record(v)
    return root


def test_stats_counters_and_names() -> None:
    root = make_tree()
    ch0 = root.child("dram.ch0")
    assert ch0 is root.child("dram").child("ch0")
    assert ch0.full_name == "system.dram.ch0"
    assert ch0.name == "ch0"
    assert ch0.get("reads") == 2
    assert ch0.counter("writes") == 3
    assert ch0.get("missing") == 0
    assert ch0.counters == {"reads": 2, "writes": 3, "row_hit_rate": 0.5}
    assert root["dram.ch0.reads"] == 2
    assert root["dram.ch0.read_latency"] is ch0.hist("read_latency")
    assert root["dram"] is root.child("dram")
    assert "dram.ch0.writes" in root
    assert "dram.ch1.writes" not in root
    with pytest.raises(KeyError):
        root["dram.nope"]
    unnamed = Stats()
    assert unnamed.child("a.b").full_name == "a.b"


def test_stats_to_dict() -> None:
    root = make_tree()
    d = root.to_dict()
    assert d == {
        "ticks": 10,
        "dram": {
            "ch0": {
                "reads": 2,
                "row_hit_rate": 0.5,
                "writes": 3,
                "read_latency": {"count": 3, "mean": 1220 / 3, "min": 100, "max": 1000,
                                 "p50": 120, "p90": 1000, "p95": 1000, "p99": 1000, "p999": 1000},
            }
        },
    }
    raw = root.to_dict(raw=True)
    assert raw["dram"]["ch0"]["read_latency"]["_hist"] == {
        "sub_bucket_bits": 7, "count": 3, "sum": 1220, "min": 100, "max": 1000,
        "buckets": [[100, 1], [120, 1], [317, 1]]}
    json.dumps(raw)  # JSON-safe
    back = Stats.from_dict("system", json.loads(json.dumps(raw)))
    assert back.to_dict(raw=True) == raw
    assert back.child("dram.ch0").full_name == "system.dram.ch0"
    with pytest.raises(ValueError):
        Stats.from_dict("system", d)  # summaries without _hist cannot be rebuilt


def test_stats_key_clash() -> None:
    s = Stats("x")
    s.inc("a")
    s.child("a")
    with pytest.raises(ValueError):
        s.to_dict()


def test_stats_flat() -> None:
    root = make_tree()
    assert root.flat() == {
        "system.ticks": 10,
        "system.dram.ch0.reads": 2,
        "system.dram.ch0.row_hit_rate": 0.5,
        "system.dram.ch0.writes": 3,
    }
    flat_h = root.flat(include_hist=True)
    assert flat_h["system.dram.ch0.read_latency.p50"] == 120
    assert flat_h["system.dram.ch0.read_latency.count"] == 3
    assert flat_h["system.dram.ch0.read_latency.max"] == 1000
    assert len(flat_h) == 4 + 9


def test_merge_stats() -> None:
    a = make_tree()
    b = Stats("system")
    b.inc("ticks", 5)
    bch = b.child("dram.ch0")
    bch.inc("reads", 7)
    bch.hist("read_latency").record(110)
    bch.hist("write_latency").record(50)
    b.child("cxl").inc("flits", 4)
    m = merge_stats(a, b)
    assert m.flat() == {
        "system.ticks": 15,
        "system.cxl.flits": 4,
        "system.dram.ch0.reads": 9,
        "system.dram.ch0.row_hit_rate": 0.5,
        "system.dram.ch0.writes": 3,
    }
    assert m["dram.ch0.read_latency"] == hist_of([100, 120, 1000, 110])
    assert m["dram.ch0.write_latency"] == hist_of([50])
    assert m.child("cxl").full_name == "system.cxl"
    # Inputs are unchanged and share nothing with the result.
    assert a.flat()["system.ticks"] == 10
    assert a["dram.ch0.read_latency"].count == 3
    assert b["dram.ch0.write_latency"] is not m["dram.ch0.write_latency"]
    m["dram.ch0.write_latency"].record(1)
    assert b["dram.ch0.write_latency"].count == 1


def test_stats_reset() -> None:
    root = make_tree()
    root.reset()
    assert root.flat() == {
        "system.ticks": 0,
        "system.dram.ch0.reads": 0,
        "system.dram.ch0.row_hit_rate": 0,
        "system.dram.ch0.writes": 0,
    }
    assert root["dram.ch0.read_latency"].count == 0
