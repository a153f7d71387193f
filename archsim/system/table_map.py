"""The table map: where every embedding row lives, in one place.

``(table, row) -> (component, address)``: the layout (``system/layout.py``: each table's base, row stride,
lines per row) gives a row's host physical address and its cache lines; the system graph's memory map gives the
component that owns that address (the host's DRAM, an expander behind a switch); the hot-row profile
(``nmp/placement.py``) says which rows are hot; and the fabric's view of an address (the HDM decoder's
interleaving) is applied here too. The host cores, the NMP units and the PIFS units read tables only through
this map, so a tier manager that moves rows changes it and nothing else.
"""

from __future__ import annotations

import numpy as np

from archsim.nmp.placement import is_hot


class TableMap:
    """Rows of ``tables`` laid out by ``layout``; ``hot``: per table the sorted profiled hot rows (or None);
    ``translate``: host address -> the address the fabric routes (interleaved CXL memory; None: the same)."""

    def __init__(self, layout, tables: list, hot: list[np.ndarray] | None = None, translate=None) -> None:
        self.layout = layout
        self.tables = tables
        self.hot = hot
        self.translate = translate
        self.root = None  # the memory the host reads through (set by the builder): owner() resolves through it
        self.line_bytes = layout.line_bytes

    # ------------------------------------------------------------------ addresses
    def line_addresses(self, t: int, rows: np.ndarray, device: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
        """Host addresses of the lines of ``rows`` of table ``t`` and the lines per row (None: every row has
        :meth:`lines_per_row`); ``device``: as the fabric routes them (after the HDM decoder)."""
        addrs, counts = self.layout.line_addresses(t, rows)
        if device and self.translate is not None:
            addrs = self.translate(addrs)
        return addrs, counts

    def lines_per_row(self, t: int) -> int:
        return self.layout.tables[t].lines_per_row

    def stride(self, t: int) -> int:
        """Bytes from one row of table ``t`` to the next."""
        return self.layout.tables[t].stride

    def extent(self, t: int, device: bool = False) -> tuple[int, int]:
        """The first and last byte address of table ``t``."""
        place = self.layout.tables[t]
        lo, hi = place.base, place.base + place.stride * self.tables[t].rows - 1
        if device and self.translate is not None:
            lo, hi = int(self.translate(lo)), int(self.translate(hi))
        return lo, hi

    # ------------------------------------------------------------------ placement
    def is_hot(self, t: int, rows: np.ndarray) -> np.ndarray:
        """Which of ``rows`` of table ``t`` the profile marked hot (all False without a profile)."""
        if self.hot is None:
            return np.zeros(len(rows), dtype=bool)
        return is_hot(self.hot[t], rows)

    def hot_rows(self, t: int) -> np.ndarray:
        return self.hot[t] if self.hot is not None else np.empty(0, dtype=np.int64)

    def owner(self, t: int, row: int):
        """The memory component that holds row ``row`` of table ``t`` (the first line's), and its host address:
        the memory map resolved through the graph (routers, HDM decoder, links, switches) to a DRAM or an
        expander."""
        addr = int(self.layout.line_addresses(t, np.asarray([row], dtype=np.int64))[0][0])
        comp = self.root
        a = addr
        while True:
            step = getattr(comp, "owner_of", None)
            if step is None:
                return comp, addr
            nxt, a = step(a)
            if nxt is comp:
                return comp, addr
            comp = nxt
