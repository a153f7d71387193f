"""Batches of bags: the unit an embedding workload is streamed in.

A :class:`Batch` holds, for every table, the bags of ``batch_size`` samples in CSR form: bag ``b`` of table
``t`` reads rows ``indices[t][offsets[t][b]:offsets[t][b + 1]]``. :func:`iter_batches` yields them one at a
time, generated in numpy blocks or read from a trace, so a run of any length holds one batch in memory.

Generated workloads draw every bag's indices *with replacement* (as DLRM's random data generator and FBGEMM's
benchmarks do): a bag may read the same row twice. Randomness: ``SeedSequence(seed).spawn(T)`` gives table
``t`` its own stream (``spawn`` keys children by position, so appending a table leaves the others' batches
unchanged); each table's stream is split again into pooling, index and permutation-key streams.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from archsim.workload.spec import WorkloadSpec

__all__ = ["Batch", "iter_batches", "table_streams"]


@dataclass(slots=True, eq=False)
class Batch:
    """One batch: ``batch_size`` bags for each table, in CSR form (int64 arrays).

    ``offsets[t]`` has ``batch_size + 1`` entries, starting at 0 and ending at ``len(indices[t])``.
    """

    index: int
    batch_size: int
    indices: list[np.ndarray]
    offsets: list[np.ndarray]

    @property
    def num_tables(self) -> int:
        return len(self.indices)

    @property
    def num_lookups(self) -> int:
        """Lookups in the batch, over all tables."""
        return int(sum(a.size for a in self.indices))

    def lengths(self, table: int) -> np.ndarray:
        """The bag lengths (pooling factors) of one table."""
        return np.diff(self.offsets[table])

    def bag(self, table: int, b: int) -> np.ndarray:
        """The rows bag ``b`` of ``table`` reads."""
        o = self.offsets[table]
        return self.indices[table][o[b] : o[b + 1]]

    def equals(self, other: Batch) -> bool:
        """Same batch size and identical arrays (the index is not compared)."""
        return (
            self.batch_size == other.batch_size
            and self.num_tables == other.num_tables
            and all(np.array_equal(a, b) for a, b in zip(self.indices, other.indices))
            and all(np.array_equal(a, b) for a, b in zip(self.offsets, other.offsets))
        )


def table_streams(
    seed: int, num_tables: int
) -> list[tuple[np.random.Generator, np.random.Generator, list[int]]]:
    """Per table: (pooling generator, index generator, permutation key), derived from ``seed``."""
    from archsim.core.sim import check_seed

    out = []
    for child in np.random.SeedSequence(check_seed(seed)).spawn(num_tables):
        pool, idx, key = child.spawn(3)
        out.append(
            (
                np.random.default_rng(pool),
                np.random.default_rng(idx),
                [int(x) for x in key.generate_state(4, dtype=np.uint32)],
            )
        )
    return out


def iter_batches(spec: WorkloadSpec, seed: int | None = None) -> Iterator[Batch]:
    """Yield ``spec.num_batches`` batches, one at a time (generated with ``seed``, default ``spec.seed``, or
    read from the spec's trace, where the seed is not used)."""
    if spec.trace is not None:
        yield from _iter_trace(spec)
        return
    tables = spec.table_list()
    seed = spec.seed if seed is None else seed
    streams = table_streams(seed, len(tables))
    samplers = [
        (t.pooling.sampler(), t.index.sampler(t.rows, key=streams[i][2])) for i, t in enumerate(tables)
    ]
    bs = int(spec.batch_size or 0)
    assert spec.num_batches is not None
    for n in range(spec.num_batches):
        indices: list[np.ndarray] = []
        offsets: list[np.ndarray] = []
        for (pool_rng, idx_rng, _), (pool, idx) in zip(streams, samplers):
            lengths = pool.sample(pool_rng, bs)
            off = np.empty(bs + 1, dtype=np.int64)
            off[0] = 0
            np.cumsum(lengths, out=off[1:])
            offsets.append(off)
            indices.append(idx.sample(idx_rng, int(off[-1])))
        yield Batch(index=n, batch_size=bs, indices=indices, offsets=offsets)


def _iter_trace(spec: WorkloadSpec) -> Iterator[Batch]:
    assert spec.trace_file is not None and spec.num_batches is not None
    tables = spec.table_list()
    rows = [t.rows for t in tables]
    if spec.trace_format == "dlrm":
        from archsim.workload.dlrm_trace import iter_dlrm

        it = iter_dlrm(
            spec.trace_file,
            batch_size=int(spec.batch_size or 0),
            tables=spec.trace_tables,
            num_batches=spec.num_batches,
            rows=rows,
            num_tables=spec._trace_num_tables,
        )
    else:
        from archsim.workload.npz_trace import iter_npz

        it = iter_npz(spec.trace_file, num_batches=spec.num_batches, rows=rows)
    yield from it
