"""The table map: where every embedding row lives, in one place.

``(table, row) -> (component, address)``: the layout (``system/layout.py``: each table's base, row stride,
lines per row) gives a row's host physical address and its cache lines; the system graph's memory map gives the
component that owns that address (the host's DRAM, an expander behind a switch); the hot-row profile
(``nmp/placement.py``) says which rows are hot; the workload's first batches (``profile``) say how often each
line is read, for caches that pin the hottest lines (``cache`` policy ``static_hot``); and the fabric's view of an address (the HDM decoder's
interleaving) is applied here too. The host cores, the NMP units and the PIFS units read tables only through
this map, so a tier manager that moves rows changes it and nothing else.
"""

from __future__ import annotations

import numpy as np

from archsim.nmp.placement import is_hot


class TableMap:
    """Rows of ``tables`` laid out by ``layout``; ``hot``: per table the sorted profiled hot rows (or None);
    ``translate``: host address -> the address the fabric routes (interleaved CXL memory; None: the same);
    ``profile``: an iterable of the workload's batches (host 0's stream) for :meth:`ranked_lines` (None: no
    profile)."""

    def __init__(self, layout, tables: list, hot: list[np.ndarray] | None = None, translate=None,
                 profile=None) -> None:
        self.layout = layout
        self.tables = tables
        self.hot = hot
        self.translate = translate
        self.profile = profile
        self._profiled: list = []  # the profile's batches read so far (several caches may ask)
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

    def profiled_batches(self, max_batches: int) -> list:
        """The profile's first ``max_batches`` batches (fewer if it has fewer; none without a profile), read once
        and kept for every component that asks (a tier's row counts, a cache's ranked lines)."""
        it = iter(self.profile) if self.profile is not None else iter(())
        while len(self._profiled) < max_batches:
            b = next(it, None)
            if b is None:
                break
            self._profiled.append(b)
        return self._profiled[:max_batches]

    def ranked_lines(self, max_batches: int, line_bytes: int) -> np.ndarray:
        """The lines of ``line_bytes`` (host address // line_bytes) the first ``max_batches`` batches of the
        profile read, hottest first (ties: lower line first): every line of every row looked up counts once per
        lookup, as the host's gathers would look it up in a cache of that line size."""
        it = iter(self.profile) if self.profile is not None else iter(())
        while len(self._profiled) < max_batches:
            b = next(it, None)
            if b is None:
                break
            self._profiled.append(b)
        shift = line_bytes.bit_length() - 1
        lines, weights = [], []
        for batch in self._profiled[:max_batches]:
            for t, idx in enumerate(batch.indices):
                rows, n = np.unique(np.asarray(idx, dtype=np.int64), return_counts=True)
                if not len(rows):
                    continue
                addrs, per_row = self.layout.line_addresses(t, rows)
                reps = per_row if per_row is not None else self.layout.tables[t].lines_per_row
                lines.append(addrs >> shift)
                weights.append(np.repeat(n, reps))
        if not lines:
            return np.empty(0, dtype=np.int64)
        uniq, inv = np.unique(np.concatenate(lines), return_inverse=True)
        counts = np.bincount(inv, weights=np.concatenate(weights))
        return uniq[np.lexsort((uniq, -counts))]

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
