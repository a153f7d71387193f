"""Embedding workload specs: the YAML a user passes as ``--workload`` (see docs/workloads.md for every key).

A workload is either *generated* (tables with index and pooling distributions, a batch size, a number of
batches and a seed) or *read from a trace* (``trace:``, in the archsim npz format or Meta's dlrm_datasets
format). :func:`load_workload` loads a file or a shipped workload by name (``workloads/*.yaml``), resolves
``extends:`` and ``--set`` overrides, validates it, and reports bad input as a one-line
:class:`~archsim.config.ConfigError` ``FILE:LINE: KEY.PATH: MESSAGE``.

Table entries are expanded by :meth:`WorkloadSpec.table_list`: an entry with ``count: 8`` and ``name: emb``
gives eight tables ``emb0 .. emb7``. Keys missing from an entry are taken from the ``defaults:`` block, then
from the built-in defaults (``dtype: fp32``, ``pooling: 1``, ``index: uniform``); ``rows`` and ``dim`` have
no built-in default.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PrivateAttr, model_validator

from archsim.config import (
    WORKLOADS_DIR,  # the shipped workloads; their file stems work as names in load_workload and extends:
    ConfigError,
    InputError,
    LoadedConfig,
    SourceMap,
    format_key_path,
    load_config,
    validate,
)

__all__ = [
    "DTYPE_BYTES",
    "WORKLOADS_DIR",
    "PoolingSpec",
    "IndexSpec",
    "TableDefaults",
    "TableSpec",
    "TraceSpec",
    "WorkloadSpec",
    "TableInfo",
    "load_workload",
]

DTYPE_BYTES: dict[str, int] = {"fp32": 4, "fp16": 2, "bf16": 2, "int8": 1}
"""Bytes per element of each embedding dtype."""



# ------------------------------------------------------------------------------------------------------------
# Field checks (messages come out as ``KEY.PATH: must be >= 1, got 0``)
# ------------------------------------------------------------------------------------------------------------


def _int_at_least(lo: int):
    def check(v: Any) -> Any:
        if isinstance(v, bool):
            raise ValueError("must be an integer")
        if isinstance(v, int | float) and v < lo:
            raise ValueError(f"must be >= {lo}")
        return v

    return BeforeValidator(check)


def _positive_number(v: Any) -> Any:
    if isinstance(v, bool):
        raise ValueError("must be a number")
    if isinstance(v, int | float) and not v > 0:
        raise ValueError("must be > 0")
    return v


def _non_negative_number(v: Any) -> Any:
    if isinstance(v, bool):
        raise ValueError("must be a number")
    if isinstance(v, int | float) and v < 0:
        raise ValueError("must be >= 0")
    return v


def _open_fraction(v: Any) -> Any:
    if isinstance(v, bool):
        raise ValueError("must be a number")
    if isinstance(v, int | float) and not 0 < v < 1:
        raise ValueError("must be in (0, 1)")
    return v


def _dtype(v: Any) -> Any:
    if isinstance(v, str) and v.lower() in DTYPE_BYTES:
        return v.lower()
    raise ValueError(f"unknown dtype (known: {', '.join(DTYPE_BYTES)})")


def _rows(v: Any) -> Any:
    if isinstance(v, str) and v.strip().lower() == "auto":
        return "auto"
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise ValueError("must be a positive integer or 'auto'")
    if v < 1:
        raise ValueError("must be >= 1")
    if v != int(v):
        raise ValueError("must be an integer")
    return int(v)


PosInt = Annotated[int, _int_at_least(1)]
NonNegInt = Annotated[int, _int_at_least(0)]
PosFloat = Annotated[float, BeforeValidator(_positive_number)]
NonNegFloat = Annotated[float, BeforeValidator(_non_negative_number)]
Fraction = Annotated[float, BeforeValidator(_open_fraction)]
Dtype = Annotated[Literal["fp32", "fp16", "bf16", "int8"], BeforeValidator(_dtype)]
Rows = Annotated[int | Literal["auto"], BeforeValidator(_rows)]


# ------------------------------------------------------------------------------------------------------------
# Pooling and index distributions
# ------------------------------------------------------------------------------------------------------------

_POOLING_KEYS = {
    "fixed": {"value"},
    "uniform": {"range"},
    "normal": {"mean", "std", "max"},
    "empirical": {"values", "weights"},
}
_POOLING_REQUIRED = {
    "fixed": ("value",),
    "uniform": ("range",),
    "normal": ("mean", "std"),
    "empirical": ("values", "weights"),
}


def _pooling_shorthand(v: Any) -> Any:
    """``80`` -> fixed 80; ``[1, 4]`` -> uniform over 1..4."""
    if isinstance(v, int | float) and not isinstance(v, bool):
        return {"dist": "fixed", "value": v}
    if isinstance(v, list) and len(v) == 2:
        return {"dist": "uniform", "range": v}
    return v


def _range(v: Any) -> Any:
    ok = (
        isinstance(v, list | tuple)
        and len(v) == 2
        and all(isinstance(x, int) and not isinstance(x, bool) for x in v)
    )
    if not ok:
        raise ValueError(f"must be [lo, hi], two integers, got {v!r}")
    if not 1 <= v[0] <= v[1]:
        raise ValueError(f"must be [lo, hi] with 1 <= lo <= hi, got {list(v)!r}")
    return list(v)


class PoolingSpec(BaseModel):
    """Lookups per bag: ``fixed`` value, ``uniform`` inclusive range, rounded ``normal``, or an ``empirical``
    histogram. In YAML an integer is a fixed pooling factor and ``[lo, hi]`` a uniform range."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

    dist: Literal["fixed", "uniform", "normal", "empirical"] = Field(description="the distribution")
    value: PosInt | None = Field(None, description="fixed: lookups per bag")
    range: Annotated[list[int] | None, BeforeValidator(lambda v: v if v is None else _range(v))] = Field(
        None, description="uniform: [lo, hi], both inclusive, lo >= 1"
    )
    mean: PosFloat | None = Field(None, description="normal: mean")
    std: NonNegFloat | None = Field(None, description="normal: standard deviation")
    max: PosInt | None = Field(None, description="normal: largest bag (default: no upper clip)")
    values: list[PosInt] | None = Field(None, description="empirical: the bag lengths")
    weights: list[NonNegFloat] | None = Field(None, description="empirical: their relative frequencies")

    @model_validator(mode="after")
    def _check(self) -> PoolingSpec:
        allowed = _POOLING_KEYS[self.dist]
        for key in ("value", "range", "mean", "std", "max", "values", "weights"):
            if getattr(self, key) is not None and key not in allowed:
                raise ValueError(
                    f"'{key}' does not apply to {self.dist} pooling (its keys: {', '.join(sorted(allowed))})"
                )
        missing = [k for k in _POOLING_REQUIRED[self.dist] if getattr(self, k) is None]
        if missing:
            raise ValueError(f"{self.dist} pooling needs {', '.join(missing)}")
        if self.dist == "empirical":
            assert self.values is not None and self.weights is not None
            if not self.values or len(self.values) != len(self.weights):
                raise ValueError(
                    "values and weights must be non-empty lists of the same length, "
                    f"got {len(self.values)} values and {len(self.weights)} weights"
                )
            if not sum(self.weights) > 0:
                raise ValueError("weights must not all be 0")
        return self

    def sampler(self):
        """The :class:`~archsim.workload.distributions.PoolingSampler` this spec describes."""
        from archsim.workload import distributions as d

        if self.dist == "fixed":
            return d.FixedPooling(self.value)
        if self.dist == "uniform":
            return d.UniformPooling(*self.range)
        if self.dist == "normal":
            return d.NormalPooling(self.mean, self.std, self.max)
        return d.EmpiricalPooling(self.values, self.weights)


def _index_shorthand(v: Any) -> Any:
    """``uniform`` -> ``{dist: uniform}``."""
    return {"dist": v} if isinstance(v, str) else v


_INDEX_KEYS = {"uniform": set(), "zipf": {"s", "permute"}, "hotset": {"hot_fraction", "hot_share", "permute"}}


class IndexSpec(BaseModel):
    """Which rows a bag reads: ``uniform``; ``zipf`` (rank k has probability proportional to k^-s, ranks
    scattered over the rows by a keyed permutation); or ``hotset`` (a fraction of the rows receives a share of
    the accesses). In YAML a bare name (``index: uniform``) is accepted."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

    dist: Literal["uniform", "zipf", "hotset"] = Field(description="the distribution")
    s: PosFloat | None = Field(None, description="zipf: the exponent (> 0; below, at or above 1)")
    hot_fraction: Fraction | None = Field(
        None, description="hotset: fraction of the rows that are hot, in (0, 1)"
    )
    hot_share: Fraction | None = Field(
        None, description="hotset: fraction of the accesses they get, in (0, 1)"
    )
    permute: bool | None = Field(
        None, description="zipf, hotset: scatter hot rows over the table (default true)"
    )

    @model_validator(mode="after")
    def _check(self) -> IndexSpec:
        allowed = _INDEX_KEYS[self.dist]
        for key in ("s", "hot_fraction", "hot_share", "permute"):
            if getattr(self, key) is not None and key not in allowed:
                raise ValueError(f"'{key}' does not apply to the {self.dist} distribution")
        if self.dist == "zipf" and self.s is None:
            raise ValueError("zipf needs its exponent s")
        if self.dist == "hotset" and (self.hot_fraction is None or self.hot_share is None):
            raise ValueError("hotset needs hot_fraction and hot_share")
        return self

    def sampler(self, rows: int, key: Sequence[int] | int = 0):
        """The :class:`~archsim.workload.distributions.IndexSampler` for a table of ``rows`` rows."""
        from archsim.workload import distributions as d

        permute = True if self.permute is None else self.permute
        if self.dist == "uniform":
            return d.UniformIndex(rows)
        if self.dist == "zipf":
            return d.ZipfIndex(rows, self.s, key=key, permute=permute)
        return d.HotsetIndex(rows, self.hot_fraction, self.hot_share, key=key, permute=permute)


PoolingField = Annotated[PoolingSpec | None, BeforeValidator(_pooling_shorthand)]
IndexField = Annotated[IndexSpec | None, BeforeValidator(_index_shorthand)]


# ------------------------------------------------------------------------------------------------------------
# Tables, trace, workload
# ------------------------------------------------------------------------------------------------------------


class TableDefaults(BaseModel):
    """Values for the keys a table entry leaves out."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

    rows: Rows | None = Field(None, description="rows of each table (no built-in default)")
    dim: PosInt | None = Field(None, description="elements per row (no built-in default)")
    dtype: Dtype | None = Field(None, description="element type: fp32, fp16, bf16 or int8 (default fp32)")
    pooling: PoolingField = Field(None, description="lookups per bag (default 1)")
    index: IndexField = Field(None, description="index distribution (default uniform)")


class TableSpec(TableDefaults):
    """One entry of ``tables:``; ``count`` > 1 stands for that many identical tables ``name0, name1, ...``."""

    name: str | None = Field(
        None, description="table name (default table<i>, i its position after expansion)"
    )
    count: PosInt = Field(1, description="number of identical tables this entry stands for")


def _trace_shorthand(v: Any) -> Any:
    return {"path": v} if isinstance(v, str | os.PathLike) else v


class TraceSpec(BaseModel):
    """Read the batches from a trace instead of generating them."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

    path: str = Field(
        description="archsim trace directory or .npz file, or a dlrm_datasets .pt / .pt.gz file; "
        "relative to the YAML file that names it"
    )
    format: Literal["auto", "archsim", "dlrm"] = Field(
        "auto", description="auto: dlrm for .pt / .pt.gz files, archsim otherwise"
    )
    tables: list[NonNegInt] | None = Field(
        None, description="dlrm: the file's tables to use, in this order (default: all)"
    )


@dataclass(frozen=True)
class TableInfo:
    """A table after expansion and defaults: what the simulator needs to place and read it."""

    name: str
    rows: int
    dim: int
    dtype: str
    pooling: PoolingSpec
    index: IndexSpec

    @property
    def row_bytes(self) -> int:
        """Bytes of one row: ``dim`` times the dtype's size."""
        return self.dim * DTYPE_BYTES[self.dtype]

    @property
    def bytes(self) -> int:
        """Bytes of the whole table."""
        return self.rows * self.row_bytes


_BUILTIN = {
    "dtype": "fp32",
    "pooling": PoolingSpec(dist="fixed", value=1),
    "index": IndexSpec(dist="uniform"),
}


class WorkloadSpec(BaseModel):
    """An embedding workload: tables, batches of bags, and how indices and bag lengths are drawn (or a
    trace to read them from)."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

    name: str = Field("", description="workload name (default: the file stem)")
    description: str = Field("", description="free text")
    seed: int = Field(0, ge=0, lt=2**63, description="seed of every random stream of the workload")
    batch_size: PosInt | None = Field(None, description="bags per table per batch (a trace gives its own)")
    num_batches: PosInt | None = Field(
        None, description="batches to generate (default 100) or to read from a trace (default: all)"
    )
    defaults: TableDefaults = Field(
        default_factory=TableDefaults, description="values for keys tables leave out"
    )
    tables: list[TableSpec] = Field(default_factory=list, description="the embedding tables")
    trace: Annotated[TraceSpec | None, BeforeValidator(_trace_shorthand)] = Field(
        None, description="read batches from this trace instead of generating them"
    )

    _tables: list[TableInfo] | None = PrivateAttr(None)
    _trace_file: Path | None = PrivateAttr(None)
    _trace_format: str | None = PrivateAttr(None)
    _trace_tables: list[int] | None = PrivateAttr(None)
    _trace_num_tables: int | None = PrivateAttr(None)
    _sources: SourceMap | None = PrivateAttr(None)

    # ---- resolved views

    def table_list(self) -> list[TableInfo]:
        """The tables, expanded (``count``) and with defaults applied."""
        if self._tables is None:
            _resolve(self, None)
        assert self._tables is not None
        return list(self._tables)

    @property
    def trace_file(self) -> Path | None:
        """The trace file or directory (absolute), or None for a generated workload."""
        if self.trace is not None and self._trace_file is None:
            _resolve(self, None)
        return self._trace_file

    @property
    def trace_format(self) -> str | None:
        """``archsim`` or ``dlrm`` for a trace workload, None for a generated one."""
        if self.trace is not None and self._trace_format is None:
            _resolve(self, None)
        return self._trace_format

    @property
    def trace_tables(self) -> list[int] | None:
        """dlrm: the file's tables used, in order."""
        return self._trace_tables

    @property
    def lookups_per_batch(self) -> float:
        """Expected lookups per batch over all tables (from the pooling distributions)."""
        return float(sum(t.pooling.sampler().mean for t in self.table_list())) * (self.batch_size or 0)


# ------------------------------------------------------------------------------------------------------------
# Loading and resolution
# ------------------------------------------------------------------------------------------------------------


def load_workload(
    source: str | os.PathLike[str] | LoadedConfig, overrides: Sequence[str] = ()
) -> WorkloadSpec:
    """Load, resolve (``extends:``, ``--set``), validate and expand a workload YAML file or shipped workload.

    ``source`` is a path or the name of a file in ``workloads/`` (``criteo_zipf``). For a trace workload the
    trace's metadata is read (meta.json; for a dlrm file the file itself, which needs PyTorch) to fill in
    tables, rows, batch size and number of batches. Raises :class:`ConfigError` (``FILE:LINE: KEY.PATH: MSG``)
    on bad input and :class:`InputError` on an unreadable trace.
    """
    if isinstance(source, LoadedConfig):
        loaded = source
    else:
        loaded = load_config(source, overrides=tuple(overrides), kind="workload")
    spec = validate(loaded, WorkloadSpec)
    if not spec.name:
        spec.name = loaded.name
    spec._sources = loaded.sources
    _resolve(spec, loaded.sources)
    return spec


def _error(sources: SourceMap | None, path: tuple[Any, ...], message: str) -> ConfigError:
    file, line = sources.where(path) if sources is not None else (None, None)
    return ConfigError(message, file=file, line=line, path=format_key_path(path) or None)


def _resolve(spec: WorkloadSpec, sources: SourceMap | None) -> None:
    if spec.trace is not None:
        _resolve_trace(spec, sources)
    else:
        if spec.batch_size is None:
            raise _error(sources, ("batch_size",), "is required (or a trace to read)")
        if not spec.tables:
            raise _error(sources, ("tables",), "is required: a list of embedding tables (or a trace to read)")
        spec._tables = _expand(spec, sources, meta_tables=None, allow_auto=False)
        if spec.num_batches is None:
            spec.num_batches = 100


def _expand(
    spec: WorkloadSpec, sources: SourceMap | None, meta_tables: list[dict[str, Any]] | None, allow_auto: bool
) -> list[TableInfo]:
    """Expand ``count`` and apply defaults; ``meta_tables`` (from a trace) fills what the spec leaves out."""
    d = spec.defaults
    out: list[TableInfo] = []
    names: dict[str, tuple[Any, ...]] = {}
    for i, entry in enumerate(spec.tables):
        where = ("tables", i)
        for j in range(entry.count):
            pos = len(out)
            meta = meta_tables[pos] if meta_tables is not None and pos < len(meta_tables) else {}
            if entry.name is not None:
                name = f"{entry.name}{j}" if entry.count > 1 else entry.name
            else:
                name = meta.get("name") or f"table{pos}"
            rows = _pick(entry.rows, d.rows, meta.get("rows"))
            dim = _pick(entry.dim, d.dim, meta.get("dim"))
            if rows is None:
                raise _error(sources, where, "rows is required (in the table or in defaults)")
            if rows == "auto" and not allow_auto:
                key = where + ("rows",) if entry.rows is not None else ("defaults", "rows")
                raise _error(sources, key, "'auto' needs a trace to count rows in; give the number of rows")
            if dim is None:
                raise _error(sources, where, "dim is required (in the table or in defaults)")
            pooling = _pick(entry.pooling, d.pooling, None) or _BUILTIN["pooling"]
            index = _pick(entry.index, d.index, None) or _BUILTIN["index"]
            if index.dist == "hotset" and rows != "auto" and rows < 2:
                key = where + ("rows",) if entry.rows is not None else ("defaults", "rows")
                raise _error(sources, key, f"a hotset table needs at least 2 rows, got {rows}")
            if name in names:
                raise _error(
                    sources,
                    where + ("name",) if entry.name is not None else where,
                    f"duplicate table name '{name}'",
                )
            names[name] = where
            out.append(
                TableInfo(
                    name=name,
                    rows=rows,
                    dim=int(dim),
                    dtype=_pick(entry.dtype, d.dtype, meta.get("dtype")) or _BUILTIN["dtype"],
                    pooling=pooling,
                    index=index,
                )
            )
    return out


def _pick(*values: Any) -> Any:
    for v in values:
        if v is not None:
            return v
    return None


def _trace_path(spec: WorkloadSpec, sources: SourceMap | None) -> Path:
    assert spec.trace is not None
    if "\0" in spec.trace.path:
        raise _error(sources, ("trace", "path"), "the trace path contains a NUL byte")
    raw = os.path.expanduser(spec.trace.path)
    if os.path.isabs(raw):
        return Path(raw)
    file = None
    if sources is not None:
        file, _ = sources.where(("trace", "path"))
        if file is None or file.startswith("--"):  # an override (--set, --workload-set): no file
            file, _ = sources.where(("trace",))
    if file is not None and not file.startswith("--"):
        return (Path(file).parent / raw).resolve()
    return Path(raw).resolve()


def _resolve_trace(spec: WorkloadSpec, sources: SourceMap | None) -> None:
    assert spec.trace is not None
    path = _trace_path(spec, sources)
    key = ("trace", "path")
    if not path.exists():
        raise _error(sources, key, f"trace not found: {path}")
    fmt = spec.trace.format
    if fmt == "auto":
        fmt = "dlrm" if path.name.endswith((".pt", ".pt.gz", ".pth")) else "archsim"
    spec._trace_file = path
    spec._trace_format = fmt
    if fmt == "archsim":
        from archsim.workload.npz_trace import read_meta

        if spec.trace.tables is not None:
            raise _error(sources, ("trace", "tables"), "applies to dlrm traces only")
        meta = read_meta(path)
        n_meta = len(meta["tables"])
        if spec.tables:
            tables = _expand(spec, sources, meta["tables"], allow_auto=True)
            if len(tables) != n_meta:
                raise _error(
                    sources, ("tables",), f"the trace {path} has {n_meta} tables, the spec {len(tables)}"
                )
        else:
            tables = [_meta_table(spec, t, i) for i, t in enumerate(meta["tables"])]
        tables = [_fill_auto(t, meta["tables"][i].get("rows")) for i, t in enumerate(tables)]
        if (
            spec.batch_size is not None
            and meta["batch_size"] is not None
            and spec.batch_size != meta["batch_size"]
        ):
            raise _error(
                sources,
                ("batch_size",),
                f"the trace {path} has batches of {meta['batch_size']} bags; "
                "re-batching an archsim trace is not supported",
            )
        spec.batch_size = meta["batch_size"]
        available = meta["num_batches"]
    else:
        from archsim.workload.dlrm_trace import dlrm_info

        info = dlrm_info(path, num_tables=None if not spec.tables else sum(t.count for t in spec.tables))
        file_tables = spec.trace.tables if spec.trace.tables is not None else list(range(info.num_tables))
        for j, t in enumerate(file_tables):
            if t >= info.num_tables:
                raise _error(
                    sources, ("trace", "tables", j), f"the file has {info.num_tables} tables, got {t}"
                )
        if not spec.tables:
            raise _error(
                sources, ("tables",), "a dlrm trace needs its tables (rows may be 'auto', dim is needed)"
            )
        tables = _expand(spec, sources, None, allow_auto=True)
        if len(tables) != len(file_tables):
            raise _error(
                sources,
                ("tables",),
                f"{len(tables)} tables in the spec, but {len(file_tables)} used "
                f"from {path} (set trace.tables to choose them)",
            )
        if any(t.rows == "auto" for t in tables):
            max_rows = info.rows(file_tables)
            tables = [_fill_auto(t, max_rows[i]) for i, t in enumerate(tables)]
        if spec.batch_size is None:
            spec.batch_size = info.batch_size
        spec._trace_tables = file_tables
        spec._trace_num_tables = info.num_tables
        available = -(-info.batch_size // spec.batch_size)
    if spec.num_batches is not None and spec.num_batches > available:
        raise _error(
            sources, ("num_batches",), f"the trace {path} holds {available} batches, got {spec.num_batches}"
        )
    if spec.num_batches is None:
        spec.num_batches = available
    spec._tables = tables


def _meta_table(spec: WorkloadSpec, t: dict[str, Any], i: int) -> TableInfo:
    d = spec.defaults
    return TableInfo(
        name=str(t.get("name") or f"table{i}"),
        rows=_pick(t.get("rows"), d.rows) or "auto",
        dim=int(_pick(t.get("dim"), d.dim) or 1),
        dtype=str(_pick(t.get("dtype"), d.dtype, "fp32")),
        pooling=d.pooling or _BUILTIN["pooling"],
        index=d.index or _BUILTIN["index"],
    )


def _fill_auto(t: TableInfo, rows: int | None) -> TableInfo:
    if t.rows != "auto":
        return t
    if rows is None:
        raise InputError(f"table {t.name}: rows: 'auto' but the trace does not tell the rows")
    return TableInfo(name=t.name, rows=int(rows), dim=t.dim, dtype=t.dtype, pooling=t.pooling, index=t.index)
