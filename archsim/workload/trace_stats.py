"""Statistics of an embedding workload or trace, computed in one streaming pass.

Per table: lookups, bags, unique rows touched, pooling factor mean/min/max, the Zipf exponent fitted to the
rank-frequency of the row counts, and the reuse profile (unique rows per batch, and the share of accesses that
go to the hottest 1 % of the touched rows). Memory is bounded by the rows touched: a table of up to 2^21 rows
keeps a dense count array, a larger one a sorted (row, count) array merged batch by batch.

The Zipf exponent is the maximum-likelihood estimate for a discrete Zipf law over the table's ``rows`` ranks:
with the observed counts sorted in decreasing order ``c_1 >= c_2 >= ...`` (rank ``k`` for the ``k``-th) and
``n`` lookups, it maximises ``-s * sum_k c_k log k - n log H(rows, s)``, ``H`` the generalised harmonic number
(summed by Euler-Maclaurin, so 10^9 rows cost nothing). Unlike a least-squares line through the log-log
rank-frequency plot it is consistent; with fewer lookups than rows the ranks of rarely seen rows are
compressed and the estimate comes out high. ``singleton_share`` (the share of lookups that hit a row seen only
once) tells how far to trust it: at or below 0.1 the bias measured on generated traces stays under 0.02 for
s in 0.5..1.2 (``zipf_reliable``); a uniform table read far fewer times than it has rows fits as s near 1.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from archsim.config import InputError
from archsim.workload.distributions import harmonic
from archsim.workload.spec import TableInfo, TraceSpec, WorkloadSpec, load_workload

__all__ = ["trace_stats", "fit_zipf", "source_spec", "spec_from_trace", "is_trace_path"]

DENSE_ROWS = 1 << 21
"""Tables with at most this many rows are counted in a dense array."""

RELIABLE_SINGLETONS = 0.1
"""A Zipf fit is flagged reliable when at most this share of the lookups hit rows seen only once."""

_TRACE_SUFFIXES = (".npz", ".pt", ".pt.gz", ".pth")


def fit_zipf(counts: np.ndarray, rows: int, bounds: tuple[float, float] = (1e-3, 6.0)) -> float | None:
    """Maximum-likelihood Zipf exponent of per-row access ``counts`` (any order, zeros ignored) over ``rows``
    ranks; None when there are no lookups."""
    from scipy.optimize import minimize_scalar

    c = np.asarray(counts, dtype=np.float64)
    c = np.sort(c[c > 0])[::-1]
    if c.size == 0:
        return None
    rows = max(int(rows), c.size)
    n = float(c.sum())
    s1 = float(np.dot(c, np.log(np.arange(1, c.size + 1, dtype=np.float64))))
    if s1 == 0.0:  # every lookup on one row
        return bounds[1]

    def nll(s: float) -> float:
        return s * s1 + n * math.log(harmonic(rows, s))

    res = minimize_scalar(nll, bounds=bounds, method="bounded", options={"xatol": 1e-6})
    return float(res.x)


class _RowCounter:
    """Access counts per row: dense for small tables, sparse (sorted keys, merged in blocks) for large."""

    def __init__(self, rows: int | None) -> None:
        self.dense = np.zeros(rows, dtype=np.int64) if rows is not None and rows <= DENSE_ROWS else None
        self.keys = np.zeros(0, dtype=np.int64)
        self.counts = np.zeros(0, dtype=np.int64)
        self._pk: list[np.ndarray] = []
        self._pc: list[np.ndarray] = []
        self._pn = 0

    def add(self, uniq: np.ndarray, cnt: np.ndarray) -> None:
        if self.dense is not None:
            self.dense[uniq] += cnt
            return
        self._pk.append(uniq)
        self._pc.append(cnt)
        self._pn += uniq.size
        if self._pn > max(1 << 20, self.keys.size):
            self._merge()

    def _merge(self) -> None:
        if not self._pk:
            return
        k = np.concatenate([self.keys, *self._pk])
        c = np.concatenate([self.counts, *self._pc])
        self._pk, self._pc, self._pn = [], [], 0
        order = np.argsort(k, kind="stable")
        k, c = k[order], c[order]
        starts = (
            np.concatenate(([0], np.flatnonzero(np.diff(k)) + 1)) if k.size else np.zeros(0, dtype=np.int64)
        )
        self.keys = k[starts]
        self.counts = np.add.reduceat(c, starts) if k.size else c

    def nonzero(self) -> np.ndarray:
        """The counts of the rows touched (any order)."""
        if self.dense is not None:
            return self.dense[self.dense > 0]
        self._merge()
        return self.counts

    def max_row(self) -> int:
        if self.dense is not None:
            nz = np.flatnonzero(self.dense)
            return int(nz[-1]) if nz.size else -1
        self._merge()
        return int(self.keys[-1]) if self.keys.size else -1


def is_trace_path(source: str | os.PathLike[str]) -> bool:
    """Whether ``source`` names a trace (a directory, .npz, .pt or .pt.gz file), not a workload YAML."""
    p = Path(source)
    return p.is_dir() or p.name.endswith(_TRACE_SUFFIXES)


def spec_from_trace(path: str | os.PathLike[str], format: str = "auto", dim: int = 64) -> WorkloadSpec:
    """A workload spec that reads the trace at ``path`` with the tables it describes.

    An archsim trace directory gives its tables in meta.json. A single .npz without metadata and a dlrm file
    carry no table sizes: rows are taken as the largest index + 1 (a pass over the file) and ``dim`` is used.
    """
    p = Path(path).resolve()
    if not p.exists():
        raise InputError(f"{path}: trace not found")
    fmt = format
    if fmt == "auto":
        fmt = "dlrm" if p.name.endswith((".pt", ".pt.gz", ".pth")) else "archsim"
    spec = WorkloadSpec(name=p.name.split(".")[0], trace=TraceSpec(path=str(p), format=fmt))
    if fmt == "archsim":
        from archsim.workload.npz_trace import iter_npz, read_meta

        meta = read_meta(p)
        rows = [t.get("rows") for t in meta["tables"]]
        if any(r is None for r in rows):
            maxima = [-1] * len(rows)
            for b in iter_npz(p):
                for i, idx in enumerate(b.indices):
                    if idx.size:
                        maxima[i] = max(maxima[i], int(idx.max()))
            rows = [r if r is not None else max(1, m + 1) for r, m in zip(rows, maxima)]
        tables = [
            TableInfo(
                name=str(t.get("name") or f"table{i}"),
                rows=int(rows[i]),
                dim=int(t.get("dim") or dim),
                dtype=str(t.get("dtype") or "fp32"),
                pooling=_default_pooling(),
                index=_default_index(),
            )
            for i, t in enumerate(meta["tables"])
        ]
        spec.batch_size = meta["batch_size"]
        spec.num_batches = meta["num_batches"]
    else:
        from archsim.workload.dlrm_trace import dlrm_info

        info = dlrm_info(p)
        chosen = list(range(info.num_tables))
        tables = [
            TableInfo(
                name=f"table{i}",
                rows=r,
                dim=dim,
                dtype="fp32",
                pooling=_default_pooling(),
                index=_default_index(),
            )
            for i, r in zip(chosen, info.rows(chosen))
        ]
        spec.batch_size = info.batch_size
        spec.num_batches = 1
        spec._trace_tables = chosen
        spec._trace_num_tables = info.num_tables
    spec._trace_file = p
    spec._trace_format = fmt
    spec._tables = tables
    return spec


def _default_pooling():
    from archsim.workload.spec import PoolingSpec

    return PoolingSpec(dist="fixed", value=1)


def _default_index():
    from archsim.workload.spec import IndexSpec

    return IndexSpec(dist="uniform")


def source_spec(
    source: str | os.PathLike[str] | WorkloadSpec, overrides: Sequence[str] = (), format: str = "auto"
) -> WorkloadSpec:
    """A spec for ``source``: a WorkloadSpec as is, a trace path, or a workload YAML file or name."""
    if isinstance(source, WorkloadSpec):
        return source
    if is_trace_path(source):
        if overrides:
            raise InputError("--set applies to workload YAML files, not to trace files")
        return spec_from_trace(source, format=format)
    return load_workload(source, overrides=overrides)


def trace_stats(
    source: str | os.PathLike[str] | WorkloadSpec,
    *,
    overrides: Sequence[str] = (),
    seed: int | None = None,
    num_batches: int | None = None,
    format: str = "auto",
    top_fraction: float = 0.01,
) -> dict[str, Any]:
    """Stream a workload (generated or read from a trace) once and summarise it per table.

    Returns ``{"name", "source", "batches", "batch_size", "tables": [per-table dict], "total": {...}}``; each
    table entry has ``name, rows, lookups, bags, unique_rows, pooling_mean, pooling_min, pooling_max,
    zipf_s, singleton_share, zipf_reliable, unique_per_batch, hot1pct_share`` (the last: the share of
    accesses to the hottest ``top_fraction`` of the touched rows).
    """
    from archsim.workload.batches import iter_batches

    spec = source_spec(source, overrides=overrides, format=format)
    tables = spec.table_list()
    if num_batches is not None and spec.trace is None:  # a generated workload: as many batches as asked
        spec = spec.model_copy(update={"num_batches": num_batches})
    from archsim.api import check_workload_size

    check_workload_size(spec)
    nt = len(tables)
    counters = [_RowCounter(t.rows) for t in tables]
    lookups = np.zeros(nt, dtype=np.int64)
    bags = np.zeros(nt, dtype=np.int64)
    pmin = np.full(nt, np.iinfo(np.int64).max, dtype=np.int64)
    pmax = np.zeros(nt, dtype=np.int64)
    uniq_sum = np.zeros(nt, dtype=np.int64)
    limit = spec.num_batches if num_batches is None else min(num_batches, spec.num_batches or num_batches)
    batches = 0
    batch_size = 0
    for b in iter_batches(spec, seed=seed):
        if batches >= (limit or 0):
            break
        batches += 1
        batch_size = max(batch_size, b.batch_size)
        for t in range(nt):
            idx = b.indices[t]
            lens = np.diff(b.offsets[t])
            lookups[t] += idx.size
            bags[t] += lens.size
            if lens.size:
                pmin[t] = min(pmin[t], int(lens.min()))
                pmax[t] = max(pmax[t], int(lens.max()))
            if idx.size:
                u, c = np.unique(idx, return_counts=True)
                uniq_sum[t] += u.size
                counters[t].add(u, c)
    out_tables: list[dict[str, Any]] = []
    for t, info in enumerate(tables):
        counts = counters[t].nonzero()
        touched = int(counts.size)
        if touched:
            top = max(1, math.ceil(top_fraction * touched))
            hot = float(np.sort(counts)[::-1][:top].sum()) / float(lookups[t])
        else:
            hot = 0.0
        out_tables.append(
            {
                "name": info.name,
                "rows": int(info.rows),
                "lookups": int(lookups[t]),
                "bags": int(bags[t]),
                "unique_rows": touched,
                "pooling_mean": float(lookups[t] / bags[t]) if bags[t] else 0.0,
                "pooling_min": int(pmin[t]) if bags[t] else 0,
                "pooling_max": int(pmax[t]),
                "zipf_s": fit_zipf(counts, info.rows),
                "singleton_share": float(np.count_nonzero(counts == 1) / lookups[t]) if lookups[t] else 0.0,
                "unique_per_batch": float(uniq_sum[t] / batches) if batches else 0.0,
                "hot1pct_share": hot,
            }
        )
        out_tables[-1]["zipf_reliable"] = out_tables[-1]["singleton_share"] <= RELIABLE_SINGLETONS
    total = {
        "lookups": int(lookups.sum()),
        "bags": int(bags.sum()),
        "unique_rows": int(sum(x["unique_rows"] for x in out_tables)),
        "lookups_per_batch": float(lookups.sum() / batches) if batches else 0.0,
    }
    src = (
        str(spec.trace_file)
        if spec.trace_file is not None
        else str(source if not isinstance(source, WorkloadSpec) else spec.name)
    )
    return {
        "name": spec.name,
        "source": src,
        "trace_format": spec.trace_format,
        "batches": batches,
        "batch_size": batch_size,
        "seed": None if spec.trace is not None else (spec.seed if seed is None else seed),
        "tables": out_tables,
        "total": total,
    }
