"""The gather-and-pool engine (archsim/core/pooling.py) that host cores, NMP units, PIFS units and the switch's
combiner share: exact datapath timing and the line buffer's hits, merges and fills."""

from __future__ import annotations

from archsim.core.pooling import HIT, MERGED, MISS, Datapath, LineBuffer


def test_line_time_is_whole_clocks():
    dp = Datapath(1000.0, 16)  # 1 ns clock
    assert dp.line_ps(16) == 1000 and dp.line_ps(17) == 2000 and dp.line_ps(64) == 4000
    assert Datapath(2300.0, 32).line_ps(16) == round(1e6 / 2300)  # one 2.3 GHz clock, rounded to a ps


def test_lines_pool_one_after_another_never_before_they_arrive():
    dp = Datapath(1000.0, 16)
    assert dp.pool(0, 2, 4000, 64) == 8000  # two lines there at 0
    assert dp.pool(5000, 1, 4000, 64) == 12000  # arrives while busy: waits for the datapath
    assert dp.pool(20000, 1, 4000, 64) == 24000  # arrives when idle: starts at once
    assert dp.adds == 4 * 64 and dp.busy_until == 24000


def test_streamed_row_overlaps_pooling_with_arrival():
    """Four bursts of one row, 2.5 ns apart, the last at 10 ns: pooling (4 ns a line) starts with the first,
    so the row is done 4 ns after the last burst plus 3 x (4 - 2.5) ns of the datapath falling behind."""
    dp = Datapath(1000.0, 16)
    assert dp.pool_stream(10_000, 4, 4000, 64, 2500) == 10_000 + 4000 + 3 * 1500
    slow = Datapath(1000.0, 16)
    assert slow.pool_stream(10_000, 4, 2000, 32, 2500) == 12_000  # faster than arrival: last burst + one line
    busy = Datapath(1000.0, 16)
    busy.busy_until = 30_000
    assert busy.pool_stream(10_000, 4, 2000, 32, 2500) == 38_000  # behind earlier work: serial


def test_line_buffer_merges_reads_in_flight_and_keeps_lines():
    buf = LineBuffer(2 * 64, 2)  # one set of two lines
    assert buf.lookup(0x1000, "a") == MISS
    assert buf.lookup(0x1000, "b") == MERGED and buf.lookup(0x1000, "c") == MERGED
    assert buf.fill(0x1000) == ["b", "c"] and buf.merged == 2
    assert buf.lookup(0x1000, "d") == HIT
    assert buf.lookup(0x2000, "e") == MISS and buf.fill(0x2000) == []
    assert buf.lookup(0x3000, "f") == MISS and buf.fill(0x3000) == []  # evicts the LRU line, 0x1000
    assert buf.lookup(0x2000, "g") == HIT and buf.lookup(0x1000, "h") == MISS
    assert buf.hits == 2 and buf.misses == 6  # the tags count a merged lookup as a miss (served: hits + merged)
