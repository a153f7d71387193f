"""Where embedding tables live in physical memory, and which cache lines a row covers.

Each table gets a base address (aligned to ``table_alignment``); its rows are laid out row-major with a stride of
the row size rounded up to ``row_alignment``. ``policy``:

- ``contiguous``: tables one after another in one address space; the DRAM address mapping spreads their lines
  over channels, ranks and banks (what an OS interleaving memory across channels gives).
- ``channel_per_table``: table t lives only in channel ``t mod channels`` (NUMA-style partitioning); within
  the channel the mapping spreads it over ranks and banks. Built by inserting the channel bits into a
  channel-local address, so it works for any mapping order.

Abstracted away: virtual memory (pages are contiguous physical memory), huge-page boundaries, OS placement.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from archsim.dram.mapping import AddressMapper


class LayoutSpec(BaseModel):
    """The ``layout:`` section of a hwconfig."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

    memory: Literal["local", "cxl"] = Field(
        "local", description="where the tables live: local (the host's DRAM) or cxl (the CXL expanders' windows, "
                             "reached through the fabric)")
    policy: Literal["contiguous", "channel_per_table", "device_per_table"] = Field(
        "contiguous", description="contiguous: one address space interleaved by the mapping (with memory cxl: "
                                  "the expanders' windows filled in address order); channel_per_table: table t "
                                  "only in channel t mod channels (local); device_per_table: table t on expander "
                                  "t mod expanders (cxl)")
    row_alignment: int = Field(64, gt=0, description="row stride is the row size rounded up to this (bytes)")
    table_alignment: int = Field(4096, gt=0, description="each table starts at a multiple of this (bytes)")
    base_address: int = Field(0, ge=0, description="first byte address used for tables")


def _round_up(v: int, a: int) -> int:
    return -(-v // a) * a


@dataclass(frozen=True)
class TablePlacement:
    """One table: ``base`` (channel-local when ``channel`` >= 0), row ``stride`` and lines per row."""

    base: int
    stride: int
    lines_per_row: int
    row_bytes: int
    channel: int


class TableLayout:
    """Addresses of embedding rows for the tables of a workload in a memory of ``capacity`` bytes."""

    def __init__(self, spec: LayoutSpec, row_bytes: list[int], rows: list[int], line_bytes: int,
                 mapper: AddressMapper | None, channels: int, capacity: int,
                 regions: list[tuple[int, int]] | None = None) -> None:
        self.spec = spec
        self.line_bytes = line_bytes
        self.line_shift = line_bytes.bit_length() - 1
        self.mapper = mapper
        self.tables: list[TablePlacement] = []
        if regions is not None:
            self._place_in_regions(spec, row_bytes, rows, regions)
            return
        if spec.policy == "device_per_table":
            raise ValueError("layout.policy device_per_table needs layout.memory cxl (tables on expanders)")
        part = spec.policy == "channel_per_table"
        if part and mapper is None:
            raise ValueError("layout.policy channel_per_table needs a DRAM memory with an address mapping")
        limit = capacity // channels if part else capacity
        nxt = [spec.base_address] * (channels if part else 1)
        for t, (rb, nrows) in enumerate(zip(row_bytes, rows)):
            stride = _round_up(rb, max(spec.row_alignment, 1))
            ch = t % channels if part else -1
            slot = ch if part else 0
            base = _round_up(nxt[slot], spec.table_alignment)
            nxt[slot] = base + stride * nrows
            self.tables.append(TablePlacement(base, stride, -(-rb // line_bytes), rb, ch))
        self.bytes_needed = max(nxt)
        self.capacity = limit
        self.fits = self.bytes_needed <= limit

    def _place_in_regions(self, spec: LayoutSpec, row_bytes: list[int], rows: list[int],
                          regions: list[tuple[int, int]]) -> None:
        """Tables in address windows (CXL expanders, in address order): filled one after another
        (contiguous; a table that does not fit the rest of a window starts the next) or table t in window
        t mod windows (device_per_table)."""
        if spec.policy == "channel_per_table":
            raise ValueError("layout.policy channel_per_table places tables in local DRAM channels; with "
                             "layout.memory cxl use contiguous or device_per_table")
        wins = sorted(regions)
        nxt = [max(lo, spec.base_address) for lo, _hi in wins]
        self.fits = True
        self.bytes_needed = 0
        w = 0
        for t, (rb, nrows) in enumerate(zip(row_bytes, rows)):
            stride = _round_up(rb, max(spec.row_alignment, 1))
            size = stride * nrows
            if spec.policy == "device_per_table":
                w = t % len(wins)
            else:
                while w < len(wins) - 1 and _round_up(nxt[w], spec.table_alignment) + size > wins[w][1]:
                    w += 1
            base = _round_up(nxt[w], spec.table_alignment)
            nxt[w] = base + size
            if nxt[w] > wins[w][1]:
                self.fits = False
            self.bytes_needed += size
            self.tables.append(TablePlacement(base, stride, -(-rb // self.line_bytes), rb, -1))
        self.capacity = sum(hi - lo for lo, hi in wins)

    def line_addresses(self, table: int, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Byte addresses of the cache lines covering ``rows`` of ``table``, in row order, and the number of
        lines of each row (``None`` when every row covers ``lines_per_row`` lines)."""
        p = self.tables[table]
        start = p.base + rows.astype(np.int64) * p.stride
        shift = self.line_shift
        counts = None
        if p.stride % self.line_bytes == 0:
            first = start >> shift
            if p.lines_per_row > 1:
                first = (first[:, None] + np.arange(p.lines_per_row, dtype=np.int64)).ravel()
        else:  # rows may straddle line boundaries: each covers its own number of lines
            first = start >> shift
            counts = ((start + p.row_bytes - 1) >> shift) - first + 1
            total = int(counts.sum())
            ends = np.cumsum(counts)
            first = np.repeat(first, counts) + (np.arange(total, dtype=np.int64) - np.repeat(ends - counts, counts))
        addr = first << shift
        if p.channel >= 0:
            m = self.mapper
            low_mask = (1 << m.ch_s) - 1
            chw = m.ch_m.bit_length()
            addr = ((addr >> m.ch_s) << (m.ch_s + chw)) | (p.channel << m.ch_s) | (addr & low_mask)
        return addr, counts
