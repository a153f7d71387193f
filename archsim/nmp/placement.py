"""Hot-row profiling for cross-level NMP (ReCross): which rows are processed at rank level.

ReCross maps frequently accessed ("hot") embeddings to the rank level, where the rank cache and the rank's
wide unit serve them, and infrequent ("cold") ones to bank-level units that read them in parallel across
banks. The profile counts row accesses over the first ``profile_batches`` batches of the workload (streamed;
memory grows with the rows touched, not with the table) and marks the ``hot_fraction`` of each table's rows
with the highest counts as hot, among rows counted at least ``hot_min_count`` times (ties broken by row index,
so the choice is deterministic).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


def profile_hot_rows(batches: Iterable, tables: list, hot_fraction: float, max_batches: int,
                     min_count: int = 2, access_share: float | None = None) -> list[np.ndarray]:
    """Per table: the sorted row indices of its hottest ``hot_fraction`` of rows over ``max_batches``, among
    the rows accessed at least ``min_count`` times (a row seen once is not hot, whatever the budget).
    ``access_share``: instead of a row budget, the hottest rows whose counts stay within this share of the
    table's profiled accesses (a bandwidth split between levels, as ReCross's partitioning balances them)."""
    counts: list[dict[int, int]] = [{} for _ in tables]
    for i, batch in enumerate(batches):
        if i >= max_batches:
            break
        for t, idx in enumerate(batch.indices):
            rows, n = np.unique(np.asarray(idx, dtype=np.int64), return_counts=True)
            c = counts[t]
            for r, k in zip(rows.tolist(), n.tolist()):
                c[r] = c.get(r, 0) + k
    hot = []
    for t, info in enumerate(tables):
        k = int(round(hot_fraction * info.rows))
        c = counts[t]
        if (k <= 0 and access_share is None) or not c:
            hot.append(np.empty(0, dtype=np.int64))
            continue
        rows = np.fromiter(c.keys(), dtype=np.int64, count=len(c))
        n = np.fromiter(c.values(), dtype=np.int64, count=len(c))
        total = int(n.sum())
        keep = n >= min_count
        rows, n = rows[keep], n[keep]
        order = np.lexsort((rows, -n))
        if access_share is not None:
            k = int(np.searchsorted(np.cumsum(n[order]), access_share * total, side="right"))
        hot.append(np.sort(rows[order[:k]]))
    return hot


def is_hot(hot_rows: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Which of ``rows`` are in ``hot_rows`` (sorted, as :func:`profile_hot_rows` returns them): a bool array."""
    if not len(hot_rows):
        return np.zeros(len(rows), dtype=bool)
    pos = np.searchsorted(hot_rows, rows)
    return (pos < len(hot_rows)) & (hot_rows[np.minimum(pos, len(hot_rows) - 1)] == rows)
