"""Reader for Meta's embedding-lookup datasets (github.com/facebookresearch/dlrm_datasets).

Each file (``fbgemm_t856_bs65536_0.pt``, or gzipped ``.pt.gz``) is a ``torch.save``'d tuple
``(indices, offsets, lengths)``, the input of FBGEMM's table-batched EmbeddingBag for ``T`` tables of ``B``
samples each:

- ``indices``: 1-D, every lookup of every table, table-major (table 0's bags, then table 1's, ...); the
  values are rows of their own table;
- ``offsets``: 1-D, ``T * B + 1`` entries; bag ``b`` of table ``t`` is
  ``indices[offsets[t * B + b] : offsets[t * B + b + 1]]`` (FBGEMM's benchmarks slice table ``t`` as
  ``offsets[B * t : B * (t + 1) + 1]``);
- ``lengths``: 2-D ``[T, B]``, the bag lengths (kept in the files for checking; used here for ``T``
  and ``B``).

The ``B`` samples are cut into batches of ``batch_size`` bags (the last one may be shorter). PyTorch is
imported only when such a file is read; an uncompressed file is memory-mapped (``torch.load(mmap=True)``),
so only the slices of a batch are touched; a gzipped file has to be decompressed into memory whole.
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from archsim.config import InputError
from archsim.workload.batches import Batch

__all__ = ["DlrmInfo", "load_dlrm", "dlrm_info", "iter_dlrm"]

_CACHE: dict[tuple[str, int, int], tuple[np.ndarray, np.ndarray, np.ndarray | None, Any]] = {}


def _import_torch(file: Path):
    try:
        import torch
    except ImportError:
        raise InputError(f"reading {file} needs PyTorch: pip install torch") from None
    return torch


def _short(e: BaseException) -> str:
    text = " ".join(str(e).split()) or type(e).__name__
    return text if len(text) <= 160 else text[:157] + "..."


def load_dlrm(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """``(indices, offsets, lengths or None)`` of a dlrm_datasets file, as numpy views (the last file read
    is cached)."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: trace file not found")
    st = p.stat()
    key = (str(p.resolve()), st.st_mtime_ns, st.st_size)
    if key in _CACHE:
        return _CACHE[key][:3]
    torch = _import_torch(p)
    with open(p, "rb") as f:
        gz = f.read(2) == b"\x1f\x8b"
    try:
        if gz:
            with gzip.open(p, "rb") as f:
                data = torch.load(f, map_location="cpu", weights_only=True)
        else:
            try:
                data = torch.load(p, map_location="cpu", weights_only=True, mmap=True)
            except (RuntimeError, TypeError):  # legacy (non-zip) serialisation or an old torch: no mmap
                data = torch.load(p, map_location="cpu", weights_only=True)
    except InputError:
        raise
    except Exception as e:  # torch raises many kinds (pickle, zip, runtime) for a bad file
        raise InputError(f"{p}: cannot read dlrm trace: {_short(e)}") from None
    if isinstance(data, dict):
        data = tuple(data.get(k) for k in ("indices", "offsets", "lengths") if data.get(k) is not None)
    if (
        not isinstance(data, tuple | list)
        or len(data) not in (2, 3)
        or not all(isinstance(x, torch.Tensor) for x in data)
    ):
        raise InputError(
            f"{p}: not a dlrm_datasets file: expected a tuple (indices, offsets[, lengths]) of tensors"
        )
    indices, offsets = data[0], data[1]
    lengths = data[2] if len(data) == 3 else None
    if indices.dim() != 1 or offsets.dim() != 1 or (lengths is not None and lengths.dim() != 2):
        raise InputError(
            f"{p}: not a dlrm_datasets file: indices and offsets must be 1-D and lengths 2-D "
            f"[tables, batch], got {tuple(indices.shape)}, {tuple(offsets.shape)}"
            + (f", {tuple(lengths.shape)}" if lengths is not None else "")
        )
    try:
        arrays = (indices.numpy(), offsets.numpy(), None if lengths is None else lengths.numpy())
    except (TypeError, RuntimeError, ValueError) as e:  # a dtype numpy lacks (bfloat16), a tensor on a device
        raise InputError(f"{p}: not a dlrm_datasets file: {_short(e)}") from None
    for name, a in zip(("indices", "offsets", "lengths"), arrays):
        if a is not None and a.dtype.kind not in "iu":
            raise InputError(f"{p}: not a dlrm_datasets file: {name} must hold integers, got {a.dtype}")
    _CACHE.clear()
    _CACHE[key] = (*arrays, data)
    return arrays


@dataclass
class DlrmInfo:
    """Shape of a dlrm_datasets file: ``num_tables`` tables of ``batch_size`` samples."""

    path: Path
    num_tables: int
    batch_size: int
    num_lookups: int

    def rows(self, tables: Sequence[int]) -> list[int]:
        """Per chosen table, the largest index + 1 (a pass over those tables' indices)."""
        indices, offsets, _ = load_dlrm(self.path)
        b = self.batch_size
        out = []
        for t in tables:
            seg = indices[int(offsets[t * b]) : int(offsets[(t + 1) * b])]
            if seg.size and int(seg.min()) < 0:
                raise InputError(f"{self.path}: table {t}: index {int(seg.min())} is negative")
            out.append(int(seg.max()) + 1 if seg.size else 1)
        return out


def dlrm_info(path: str | os.PathLike[str], num_tables: int | None = None) -> DlrmInfo:
    """Tables and samples of a dlrm_datasets file; ``num_tables`` is needed only when it has no lengths."""
    p = Path(path)
    indices, offsets, lengths = load_dlrm(p)
    if lengths is not None:
        t = int(lengths.shape[0])
    elif num_tables is not None:
        t = int(num_tables)
    else:
        raise InputError(f"{p}: the file has no lengths tensor; state its tables in a workload YAML")
    nbags = int(offsets.shape[0]) - 1
    if t < 1 or nbags < 0 or nbags % t:
        raise InputError(f"{p}: offsets has {nbags + 1} entries, not tables x batch + 1 for {t} tables")
    b = nbags // t
    if lengths is not None and int(lengths.shape[1]) != b:
        raise InputError(
            f"{p}: lengths is [{lengths.shape[0]}, {lengths.shape[1]}] but offsets hold {b} bags per table"
        )
    if int(offsets[-1]) > indices.shape[0] or int(offsets[0]) < 0 or int(offsets[0]) > int(offsets[-1]):
        raise InputError(f"{p}: offsets point past the {indices.shape[0]} indices")
    return DlrmInfo(path=p, num_tables=t, batch_size=b, num_lookups=int(offsets[-1] - offsets[0]))


def iter_dlrm(
    path: str | os.PathLike[str],
    batch_size: int,
    tables: Sequence[int] | None = None,
    num_batches: int | None = None,
    rows: Sequence[int | None] | None = None,
    num_tables: int | None = None,
) -> Iterator[Batch]:
    """Stream a dlrm_datasets file as batches of ``batch_size`` samples of the chosen ``tables`` (default
    all). ``rows`` (per chosen table) bounds-checks the indices; ``num_tables`` is the file's table count,
    needed only for a file without lengths."""
    p = Path(path)
    info = dlrm_info(p, num_tables=num_tables)
    indices, offsets, _ = load_dlrm(p)
    chosen = list(range(info.num_tables)) if tables is None else list(tables)
    b = info.batch_size
    total = -(-b // batch_size)
    n = total if num_batches is None else min(num_batches, total)
    for j in range(n):
        s0, s1 = j * batch_size, min((j + 1) * batch_size, b)
        out_idx, out_off = [], []
        for k, t in enumerate(chosen):
            o = offsets[t * b + s0 : t * b + s1 + 1].astype(np.int64)
            if o[0] < 0 or o[-1] > indices.shape[0] or np.any(np.diff(o) < 0):
                raise InputError(
                    f"{p}: table {t}: offsets of samples {s0}..{s1 - 1} decrease or point outside the "
                    f"{indices.shape[0]} indices"
                )
            if indices.dtype.kind == "u" and indices.dtype.itemsize >= 8 and o[-1] > o[0]:
                if int(indices[o[0] : o[-1]].max()) > np.iinfo(np.int64).max:
                    raise InputError(f"{p}: table {t}: an index does not fit a 64-bit signed integer "
                                     f"in samples {s0}..{s1 - 1}")
            idx = indices[o[0] : o[-1]].astype(np.int64)
            limit = rows[k] if rows is not None else None
            if idx.size and (idx.min() < 0 or (limit is not None and idx.max() >= limit)):
                v = int(idx.min()) if idx.min() < 0 else int(idx.max())
                raise InputError(
                    f"{p}: table {t}: index {v} outside [0, {limit if limit is not None else 'rows'}) "
                    f"in samples {s0}..{s1 - 1}"
                )
            out_idx.append(idx)
            out_off.append(o - o[0])
        yield Batch(index=j, batch_size=s1 - s0, indices=out_idx, offsets=out_off)
