"""Table layout: row-major rows, alignment, lines per row, channel partitioning."""

from __future__ import annotations

import numpy as np

from archsim.dram.mapping import AddressMapper
from archsim.system.config import load_system
from archsim.system.layout import LayoutSpec, TableLayout

CFG = "hwconfigs/cpu_ddr4.yaml"


def _layout(policy: str = "contiguous", row_bytes=(64, 256), rows=(1000, 500), **kw) -> TableLayout:
    cfg, _ = load_system(CFG)
    org = cfg.dram.org
    return TableLayout(LayoutSpec(policy=policy, **kw), list(row_bytes), list(rows), 64,
                       AddressMapper(org, cfg.dram.mapping), org.logical_channels, org.capacity_bytes)


def test_row_major_lines_and_table_bases() -> None:
    lay = _layout()
    t0, t1 = lay.tables
    assert (t0.base, t0.stride, t0.lines_per_row) == (0, 64, 1)
    assert t1.base == 64 * 1000 // 4096 * 4096 + 4096  # next 4 KiB boundary after table 0
    assert (t1.stride, t1.lines_per_row) == (256, 4)
    addrs, counts = lay.line_addresses(1, np.array([0, 2]))
    assert counts is None
    assert addrs.tolist() == [t1.base + o for o in (0, 64, 128, 192, 512, 576, 640, 704)]


def test_rows_straddling_lines() -> None:
    lay = _layout(row_bytes=(48,), rows=(100,), row_alignment=16)
    addrs, counts = lay.line_addresses(0, np.array([0, 1, 2, 3]))
    # rows at bytes 0, 48, 96, 144 (48 B each): lines {0}, {0, 1}, {1, 2}, {2}
    assert counts.tolist() == [1, 2, 2, 1]
    assert addrs.tolist() == [0, 0, 64, 64, 128, 128]


def test_channel_per_table_puts_each_table_in_its_channel() -> None:
    lay = _layout(policy="channel_per_table", row_bytes=(64,) * 10, rows=(5000,) * 10)
    m = lay.mapper
    for t in range(10):
        addrs, _ = lay.line_addresses(t, np.arange(0, 5000, 7))
        chans = {m.decode(int(a))[0] for a in addrs}
        assert chans == {t % 8}
        assert len(set(addrs.tolist())) == len(addrs)


def test_contiguous_spreads_over_channels_and_capacity_check() -> None:
    lay = _layout(row_bytes=(64,), rows=(4096,))
    addrs, _ = lay.line_addresses(0, np.arange(4096))
    assert {lay.mapper.decode(int(a))[0] for a in addrs} == set(range(8))
    assert lay.fits
    big = _layout(row_bytes=(256,), rows=(2**31,))  # 512 GiB > 8 ch x 2 ranks x 16 GiB... of 256 GiB
    assert not big.fits and big.bytes_needed > big.capacity
