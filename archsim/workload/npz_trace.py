"""The archsim embedding-trace format: a directory of one ``.npz`` file per batch plus ``meta.json``.

Layout (see docs/workloads.md)::

    DIR/meta.json        {"format": "archsim-embedding-trace", "version": 1, "name": ..., "batch_size": B,
                          "num_batches": N, "tables": [{"name", "rows", "dim", "dtype"}, ...]}
    DIR/batch_00000.npz  indices   int64 [L]        the rows read, all tables concatenated, table-major
                         offsets   int64 [K*B + 1]  bag boundaries into indices, starting at 0; the bags of
                                                    the k-th listed table are offsets[k*B : (k+1)*B + 1]
                         table_ids int32 [K]        the table (position in meta.json) of each block of B
                                                    bags; tables not listed have only empty bags
    DIR/batch_00001.npz  ...

A single ``.npz`` file holding one batch in the same form is accepted too; it may carry its metadata as a JSON
string array ``meta``. Everything is read batch by batch; a missing, truncated or inconsistent file raises
:class:`~archsim.config.InputError` naming it: a file that is not a zip of ``.npy`` arrays, arrays that are not
1-D integers (or do not fit int64), offsets that do not bound the indices, table ids or indices outside the
tables of ``meta.json`` (and its rows), a batch whose bags per table differ from ``batch_size``, and a
``meta.json`` that is not a JSON object of the documented fields (``rows`` and ``dim`` positive integers,
``dtype`` one of fp32, fp16, bf16, int8, table names distinct strings; at most 16 MiB).
"""

from __future__ import annotations

import io
import json
import os
import re
import zipfile
import zlib
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from archsim.config import InputError
from archsim.workload.batches import Batch

__all__ = [
    "FORMAT",
    "VERSION",
    "batch_file",
    "read_meta",
    "read_batch",
    "iter_npz",
    "write_batch",
    "write_trace",
]

FORMAT = "archsim-embedding-trace"
VERSION = 1
_BATCH_RE = re.compile(r"^batch_\d{5,}\.npz$")
try:
    from lzma import LZMAError
except ImportError:  # a Python built without lzma: zipfile raises RuntimeError for such members instead
    LZMAError = zlib.error  # type: ignore[misc,assignment]
# RuntimeError / NotImplementedError: zipfile's "encrypted member" and "unsupported compression method" (a
# flipped flag or method byte); zipfile.BadZipFile covers a bad CRC, zlib/lzma errors corrupt compressed data
_READ_ERRORS = (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error,
                LZMAError, RuntimeError, NotImplementedError, TypeError, RecursionError, MemoryError)
_MAX_META_BYTES = 16 * 2**20
MAX_TABLES = 1 << 16
"""Most tables a trace may hold (a table id of a single batch file is below it)."""
_INT64_MAX = int(np.iinfo(np.int64).max)


def batch_file(directory: str | os.PathLike[str], i: int) -> Path:
    """The file of batch ``i`` in a trace directory."""
    return Path(directory) / f"batch_{i:05d}.npz"


# ------------------------------------------------------------------------------------------------------------
# Reading
# ------------------------------------------------------------------------------------------------------------


def read_meta(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The metadata of a trace directory or single-batch ``.npz``.

    Returns ``{"name", "batch_size", "num_batches", "tables": [{"name", "rows", "dim", "dtype"}], "single"}``;
    for a single file without embedded metadata the tables have only ``name`` and ``rows: None``.
    """
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: trace not found")
    if p.is_dir():
        mfile = p / "meta.json"
        if not mfile.is_file():
            raise InputError(f"{p}: not an archsim trace directory (no meta.json)")
        try:
            if mfile.stat().st_size > _MAX_META_BYTES:
                raise ValueError(f"larger than {_MAX_META_BYTES // 2**20} MiB")
            meta = json.loads(mfile.read_text(encoding="utf-8"))
        except RecursionError:  # arrays nested thousands deep
            raise InputError(f"{mfile}: cannot read trace metadata: JSON nested too deeply") from None
        except (OSError, ValueError) as e:
            raise InputError(f"{mfile}: cannot read trace metadata: {_short(e)}") from None
        meta = _check_meta(meta, mfile)
        meta["single"] = False
        return meta
    with _open_npz(p) as z:
        if "meta" in z.files:
            try:
                meta = _check_meta(json.loads(str(_array(z, "meta"))), p)
            except _READ_ERRORS as e:
                raise InputError(f"{p}: cannot read trace metadata: {_short(e)}") from None
            meta["num_batches"] = 1
        else:
            try:
                tids = _array(z, "table_ids")
                nbags = int(_array(z, "offsets").shape[0]) - 1
            except _READ_ERRORS as e:
                raise InputError(f"{p}: cannot read trace batch: {_short(e)}") from None
            if tids.ndim != 1 or tids.size == 0 or nbags < 0 or nbags % tids.size:
                raise InputError(
                    f"{p}: malformed trace batch: offsets do not hold a whole number of bags per table"
                )
            if not np.issubdtype(tids.dtype, np.integer) or tids.min() < 0 or tids.max() >= MAX_TABLES:
                raise InputError(f"{p}: malformed trace batch: table_ids must be integers in [0, {MAX_TABLES}), "
                                 f"got {tids.tolist()[:8]}")
            ntab = int(tids.max()) + 1
            meta = {
                "name": p.stem,
                "batch_size": nbags // tids.size,
                "num_batches": 1,
                "tables": [{"name": f"table{i}", "rows": None} for i in range(ntab)],
            }
    meta["single"] = True
    return meta


def _check_meta(meta: Any, file: Path) -> dict[str, Any]:
    def bad(msg: str) -> InputError:
        return InputError(f"{file}: malformed trace metadata: {msg}")

    if not isinstance(meta, dict):
        raise bad("not a JSON object")
    if meta.get("format", FORMAT) != FORMAT:
        raise bad(f"format is {meta.get('format')!r}, expected {FORMAT!r}")
    version = meta.get("version", VERSION)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise bad(f"'version' must be a positive integer, got {_short_json(version)}")
    if version > VERSION:
        raise bad(f"version {version} is newer than this archsim reads ({VERSION})")
    tables = meta.get("tables")
    if not isinstance(tables, list) or not tables or not all(isinstance(t, dict) for t in tables):
        raise bad("'tables' must be a non-empty list of objects")
    from archsim.workload.spec import DTYPE_BYTES

    names: dict[str, int] = {}
    tables = [dict(t) for t in tables]
    for i, t in enumerate(tables):
        for key in ("rows", "dim"):
            v = t.get(key)
            if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 1):
                raise bad(f"tables[{i}].{key} must be a positive integer, got {_short_json(v)}")
        dtype = t.get("dtype")
        if dtype is not None:
            if not isinstance(dtype, str) or dtype.lower() not in DTYPE_BYTES:
                raise bad(f"tables[{i}].dtype must be one of {', '.join(DTYPE_BYTES)}, got {_short_json(dtype)}")
            t["dtype"] = dtype.lower()
        name = t.get("name")
        if name is not None:
            if not isinstance(name, str) or not name.strip():
                raise bad(f"tables[{i}].name must be a non-empty string, got {_short_json(name)}")
            if name in names:
                raise bad(f"tables[{i}].name {name!r} is the name of tables[{names[name]}] too")
            names[name] = i
    for key in ("batch_size", "num_batches"):
        v = meta.get(key)
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise bad(f"'{key}' must be a positive integer, got {v!r}")
    return {
        "name": meta.get("name", file.parent.name),
        "batch_size": meta["batch_size"],
        "num_batches": meta["num_batches"],
        "tables": tables,
    }


class _open_npz:
    """``np.load`` of an npz file, with every failure turned into a one-line InputError naming the file."""

    def __init__(self, file: Path) -> None:
        self.file = file
        if not file.is_file():
            raise InputError(f"{file}: trace file not found")
        try:
            with open(file, "rb") as f:
                magic = f.read(6)
        except OSError as e:
            raise InputError(f"{file}: cannot read trace batch: {_short(e)}") from None
        if magic.startswith(b"\x93NUMPY"):
            raise InputError(f"{file}: a .npy array, not an .npz archive (np.savez writes those)")
        if not magic.startswith(b"PK"):
            raise InputError(f"{file}: not an .npz archive (a zip file of .npy arrays)")
        try:
            self.z = np.load(file, allow_pickle=False)
        except _READ_ERRORS as e:
            raise InputError(f"{file}: cannot read trace batch: {_short(e)}") from None
        if not isinstance(self.z, np.lib.npyio.NpzFile):
            raise InputError(f"{file}: not an .npz archive")

    def __enter__(self) -> np.lib.npyio.NpzFile:
        return self.z

    def __exit__(self, *exc: object) -> None:
        self.z.close()


def _array(z: np.lib.npyio.NpzFile, key: str) -> np.ndarray:
    """Member ``key`` of an npz file as an array; a member that is not a ``.npy`` array (np.load then returns
    its raw bytes) raises ValueError."""
    a = z[key]
    if not isinstance(a, np.ndarray):
        raise ValueError(f"member {key!r} is not a .npy array")
    return a


def _short(e: BaseException) -> str:
    text = " ".join(str(e).split()) or type(e).__name__
    return text if len(text) <= 160 else text[:157] + "..."


def _short_json(v: Any) -> str:
    text = json.dumps(v) if isinstance(v, (str, int, float, bool, type(None))) else type(v).__name__
    return text if len(text) <= 60 else text[:57] + "..."


def read_batch(
    file: str | os.PathLike[str],
    index: int = 0,
    num_tables: int | None = None,
    rows: Sequence[int | None] | None = None,
    batch_size: int | None = None,
) -> Batch:
    """Read one batch file; ``num_tables`` is the trace's table count (default: the largest table id + 1);
    ``rows`` (per table) bounds-checks the indices; ``batch_size`` (the trace's) is checked against the bags
    per table."""
    p = Path(file)
    with _open_npz(p) as z:
        try:
            indices = _array(z, "indices")
            offsets = _array(z, "offsets")
            tids = _array(z, "table_ids")
        except _READ_ERRORS as e:
            raise InputError(f"{p}: cannot read trace batch: {_short(e)}") from None

    def bad(msg: str) -> InputError:
        return InputError(f"{p}: malformed trace batch: {msg}")

    for name, a in (("indices", indices), ("offsets", offsets), ("table_ids", tids)):
        if a.ndim != 1 or a.dtype.kind not in "iu":
            raise bad(f"'{name}' must be a 1-D integer array, got {a.dtype} of shape {a.shape}")
        if a.dtype.kind == "u" and a.dtype.itemsize >= 8 and a.size and int(a.max()) > _INT64_MAX:
            raise bad(f"'{name}' holds {int(a.max())}, more than a 64-bit signed integer holds")
    k = tids.size
    if k == 0 or offsets.size < 1 or (offsets.size - 1) % k:
        raise bad(f"offsets has {offsets.size} entries, not (tables x batch_size) + 1 for {k} tables")
    bs = (offsets.size - 1) // k
    if batch_size is not None and bs != batch_size:
        raise bad(f"{bs} bags per table, but the trace's batch_size is {batch_size}")
    offsets = offsets.astype(np.int64, copy=False)
    if offsets[0] != 0 or offsets[-1] != indices.size or np.any(np.diff(offsets) < 0):
        raise bad("offsets must start at 0, never decrease, and end at the number of indices")
    ntab = int(num_tables) if num_tables is not None else int(tids.max()) + 1
    if tids.min() < 0 or tids.max() >= ntab or np.unique(tids).size != k:
        raise bad(f"table_ids must be distinct tables in [0, {ntab}), got {tids.tolist()[:8]}")
    indices = indices.astype(np.int64, copy=False)
    out_idx = [np.zeros(0, dtype=np.int64) for _ in range(ntab)]
    out_off = [np.zeros(bs + 1, dtype=np.int64) for _ in range(ntab)]
    for j, t in enumerate(tids.tolist()):
        o = offsets[j * bs : (j + 1) * bs + 1]
        idx = indices[o[0] : o[-1]]
        limit = rows[t] if rows is not None and t < len(rows) else None
        if idx.size and (idx.min() < 0 or (limit is not None and idx.max() >= limit)):
            bad_v = int(idx.min()) if idx.min() < 0 else int(idx.max())
            raise bad(f"table {t}: index {bad_v} outside [0, {limit if limit is not None else 'rows'})")
        out_idx[t] = idx
        out_off[t] = o - o[0]
    return Batch(index=index, batch_size=bs, indices=out_idx, offsets=out_off)


def iter_npz(
    path: str | os.PathLike[str], num_batches: int | None = None, rows: Sequence[int | None] | None = None
) -> Iterator[Batch]:
    """Stream the batches of a trace directory (or the one batch of a single ``.npz``)."""
    meta = read_meta(path)
    ntab = len(meta["tables"])
    if rows is None:
        rows = [t.get("rows") for t in meta["tables"]]
    if meta["single"]:
        if num_batches is None or num_batches >= 1:
            yield read_batch(path, 0, num_tables=ntab, rows=rows, batch_size=meta["batch_size"])
        return
    n = meta["num_batches"] if num_batches is None else min(num_batches, meta["num_batches"])
    for i in range(n):
        f = batch_file(path, i)
        if not f.is_file():
            raise InputError(f"{f}: trace file not found ({Path(path) / 'meta.json'} lists "
                             f"{meta['num_batches']} batches)")
        yield read_batch(f, i, num_tables=ntab, rows=rows, batch_size=meta["batch_size"])


# ------------------------------------------------------------------------------------------------------------
# Writing
# ------------------------------------------------------------------------------------------------------------


def write_batch(file: str | os.PathLike[str], batch: Batch, meta: dict[str, Any] | None = None) -> None:
    """Write one batch (all its tables) atomically; ``meta`` is embedded for a stand-alone file."""
    p = Path(file)
    t = batch.num_tables
    indices = np.concatenate(batch.indices) if t else np.zeros(0, dtype=np.int64)
    offsets = np.empty(t * batch.batch_size + 1, dtype=np.int64)
    offsets[0] = 0
    base = 0
    for k in range(t):
        o = batch.offsets[k]
        offsets[k * batch.batch_size + 1 : (k + 1) * batch.batch_size + 1] = o[1:] - o[0] + base
        base += int(o[-1] - o[0])
    arrays: dict[str, np.ndarray] = {
        "indices": indices.astype(np.int64, copy=False),
        "offsets": offsets,
        "table_ids": np.arange(t, dtype=np.int32),
    }
    if meta is not None:
        arrays["meta"] = np.array(json.dumps(meta))
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_bytes(buf.getvalue())
    os.replace(tmp, p)


def _ours(f: Path) -> bool:
    """Whether ``f`` is a file a trace writer leaves in its directory (an interrupted one included)."""
    name = f.name[:-4] if f.name.endswith(".tmp") else f.name
    return f.is_file() and (name == "meta.json" or _BATCH_RE.match(name) is not None)


def write_trace(
    out_dir: str | os.PathLike[str],
    batches: Iterable[Batch],
    tables: Sequence[Any],
    name: str = "",
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write ``batches`` as an archsim trace directory; ``tables`` are :class:`TableInfo`-like (name, rows,
    dim, dtype). ``meta.json`` is written last, so an interrupted write leaves no readable trace. Stale batch
    files of an earlier trace in the directory are removed. Returns the metadata."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is not a directory")
    if out.is_dir() and not all(_ours(f) for f in out.iterdir()):
        raise InputError(f"{out}: exists, is not empty and is not an archsim trace directory")
    out.mkdir(parents=True, exist_ok=True)
    (out / "meta.json").unlink(missing_ok=True)
    n = 0
    batch_size = None
    for b in batches:
        if batch_size is None:
            batch_size = b.batch_size
        write_batch(batch_file(out, n), b)
        n += 1
    keep = {batch_file(out, i).name for i in range(n)}
    for f in out.iterdir():
        if _ours(f) and f.name not in keep and f.name != "meta.json":
            f.unlink()
    if n == 0:
        raise InputError(f"{out}: no batches to write")
    meta: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "name": name or out.name,
        "batch_size": batch_size,
        "num_batches": n,
        "tables": [
            {"name": t.name, "rows": int(t.rows), "dim": int(t.dim), "dtype": str(t.dtype)} for t in tables
        ],
    }
    if extra:
        meta.update(extra)
    tmp = out / "meta.json.tmp"
    tmp.write_text(json.dumps(meta, indent=1) + "\n")
    os.replace(tmp, out / "meta.json")
    return meta
