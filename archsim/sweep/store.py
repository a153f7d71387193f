"""The result store of a sweep: one JSON file per finished point, keyed by the hash of what the point runs.

Layout of the sweep directory::

    DIR/manifest.json          the sweep: name, spec, archsim version, the points (key and axis values)
    DIR/points/<key>.json      one finished point: status, error, attempts, axes, seed, overrides, summary
    DIR/results.csv            the tidy table, one row per point (written when the sweep completes)
    DIR/results.parquet        the same table, when pyarrow imports

Every file is written atomically (a temporary sibling, then a rename), so a killed sweep loses at most the
points in flight. A point's key is the SHA-256 of the resolved hwconfig (as the API resolves it: ``extends:``
and overrides applied), the resolved workload spec (or the trace's content and the window), the seed and the
archsim version; :class:`KeyResolver` computes it before the point runs, so a finished point is never re-run.
With ``hwconfig`` / ``workload`` axes each point resolves its own hwconfig / workload, so the key holds the
content of the one it runs (not its name).
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from archsim.config import (
    ConfigError,
    InputError,
    LoadedConfig,
    apply_override,
    format_key_path,
    load_config,
    parse_override,
)
from archsim.core.files import atomic_write_bytes
from archsim.sweep.spec import Point, Sweep

__all__ = ["KeyResolver", "ResultStore", "archsim_version", "build_table", "fallback_key"]


def archsim_version() -> str:
    """The installed archsim version (package metadata; the module's ``__version__`` when not installed)."""
    try:
        from importlib.metadata import PackageNotFoundError, version

        return version("archsim")
    except (ImportError, PackageNotFoundError):  # pragma: no cover - running from a bare checkout
        import archsim

        return archsim.__version__


def _sha256_json(data: Any) -> str:
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _file_sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fallback_key(sweep: Sweep, point: Point) -> str:
    """Key of a point whose config cannot be resolved (it is recorded as failed without running)."""
    hwconfig = point.hwconfig if point.hwconfig is not None else sweep.hwconfig
    workload = point.workload if point.workload is not None else sweep.workload
    return _sha256_json({"unresolved": True, "hwconfig": hwconfig, "overrides": point.overrides,
                         "workload": workload, "workload_overrides": point.workload_overrides,
                         "trace": sweep.trace, "window": sweep.window, "seed": point.seed,
                         "archsim": archsim_version()})


class KeyResolver:
    """Computes a point's store key and the ``config_hash`` its :class:`~archsim.api.Result` will carry.

    Each hwconfig and workload (the base run's, and each value of a ``hwconfig`` / ``workload`` axis) is
    loaded once; each point deep-copies the loaded data and applies its overrides, which gives exactly the data
    :func:`archsim.config.load_config` would (and so the same hash), without re-reading the YAML and presets.

    With a ``hwconfig`` axis, a ``hw.`` override must land in a mapping the point's hwconfig has (after
    ``extends:``): one that would create a missing section (``nmp.lanes`` on a hwconfig without ``nmp:``,
    which would add NMP units to it) makes the point invalid. The same holds for ``workload.`` overrides with
    a ``workload`` axis. Without such an axis, overrides create missing mappings, as ``archsim run --set``.
    """

    def __init__(self, sweep: Sweep) -> None:
        self.sweep = sweep
        self.version = archsim_version()
        self._loaded: dict[tuple[str, str], LoadedConfig | InputError] = {}
        self.hw = self._load("hwconfig", sweep.hwconfig) if sweep.hwconfig is not None else None
        self.wl: LoadedConfig | None = None
        if sweep.workload is not None:
            self.wl = self._load("workload", sweep.workload)
        self.has_workload = sweep.workload is not None or "workload" in sweep.axis_keys
        self.strict = {kind: kind in sweep.axis_keys for kind in ("hwconfig", "workload")}
        self.trace_sha = _file_sha256(sweep.trace) if sweep.trace is not None else None

    def _load(self, kind: str, source: str, cache_errors: bool = False) -> LoadedConfig:
        """The loaded hwconfig or workload ``source``, read once (an error is raised again for each point)."""
        got = self._loaded.get((kind, source))
        if got is None:
            try:
                got = load_config(source, kind=kind)
            except InputError as exc:
                if not cache_errors:
                    raise
                got = exc
            self._loaded[(kind, source)] = got
        if isinstance(got, InputError):
            raise got
        return got

    @staticmethod
    def _apply(base: LoadedConfig, overrides: Iterable[str], strict: bool = False) -> LoadedConfig:
        data = copy.deepcopy(base.data)
        sources = base.sources.copy()
        applied = tuple(overrides)
        for text in applied:
            if strict:
                _check_parents(data, text, base.name)
            apply_override(data, sources, text)
        return LoadedConfig(data=data, sources=sources, name=base.name, path=base.path, overrides=applied)

    def resolve(self, point: Point) -> tuple[str, str, int]:
        """``(key, config_hash, seed)``; raises InputError when the point's config does not resolve."""
        hw_base = self.hw if point.hwconfig is None else self._load("hwconfig", point.hwconfig, True)
        if hw_base is None:  # pragma: no cover - load_sweep requires base.hwconfig or a hwconfig axis
            raise InputError("the point has no hwconfig")
        hw_hash = self._apply(hw_base, point.overrides, self.strict["hwconfig"]).hash
        ident: dict[str, Any] = {"hwconfig": hw_hash, "seed": None, "archsim": self.version}
        if self.has_workload:
            from archsim.workload.spec import load_workload

            wl_base = self.wl if point.workload is None else self._load("workload", point.workload, True)
            if wl_base is None:  # pragma: no cover - load_sweep requires base.workload or a workload axis
                raise InputError("the point has no workload")
            wl = load_workload(self._apply(wl_base, point.workload_overrides, self.strict["workload"]))
            from archsim.api import check_workload_size

            check_workload_size(wl)  # work that cannot finish fails the point before it is sent
            # as archsim.api hashes a workload (tests/test_sweep.py checks the two agree)
            wl_text = json.dumps(wl.model_dump(mode="json"), sort_keys=True)
            wl_hash = hashlib.sha256(wl_text.encode()).hexdigest()
            seed = wl.seed if point.seed is None else point.seed
            ident["workload"] = wl_hash
            run_hash = hashlib.sha256((hw_hash + wl_hash).encode()).hexdigest()
        else:
            seed = 0 if point.seed is None else point.seed
            ident["trace"] = {"sha256": self.trace_sha, "window": self.sweep.window}
            run_hash = hw_hash
        ident["seed"] = seed
        return _sha256_json(ident), run_hash, seed


def _check_parents(data: Any, text: str, name: str) -> None:
    """Raise a ConfigError when override ``text`` would create a mapping that ``data`` (config ``name``) lacks."""
    path, _ = parse_override(text)
    node = data
    for depth, part in enumerate(path[:-1]):
        if isinstance(node, list) and isinstance(part, int | str) and str(part).isdigit() \
                and int(part) < len(node):
            node = node[int(part)]
            continue
        if not isinstance(node, dict) or node.get(part) is None:
            missing = format_key_path(path[: depth + 1])
            raise ConfigError(f"{name} has no '{missing}' (with a hwconfig or workload axis an override does "
                              f"not create a missing section)", file=f"--set {text.strip()}",
                              path=format_key_path(path))
        node = node[part]


# ------------------------------------------------------------------------------------------------------------
# Files
# ------------------------------------------------------------------------------------------------------------


def _atomic_write(path: Path, data: bytes) -> None:
    atomic_write_bytes(path, data)


def _json_safe(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: _json_safe(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_json_safe(x) for x in v]
    return v


class ResultStore:
    """The files of one sweep directory (see the module doc)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.points_dir = self.root / "points"

    def path(self, key: str) -> Path:
        return self.points_dir / f"{key}.json"

    def load(self, key: str) -> dict[str, Any] | None:
        """The record of ``key``, or None (missing, or unreadable: it will be run again)."""
        try:
            with open(self.path(key), encoding="utf-8") as f:
                rec = json.load(f)
        except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
            return None
        return rec if isinstance(rec, dict) and rec.get("key") == key else None

    def save(self, record: dict[str, Any]) -> dict[str, Any]:
        """Write ``record`` (atomically); returns it as it reads back (JSON types, key order kept)."""
        text = json.dumps(_json_safe(record), indent=1, allow_nan=False)
        _atomic_write(self.path(record["key"]), text.encode("utf-8"))
        return json.loads(text)

    def keys(self) -> list[str]:
        """Keys of every stored point (finished or failed)."""
        if not self.points_dir.is_dir():
            return []
        return sorted(p.stem for p in self.points_dir.glob("*.json"))

    def write_json(self, name: str, data: Any) -> None:
        _atomic_write(self.root / name, json.dumps(_json_safe(data), indent=1).encode("utf-8"))

    def remove_tables(self) -> None:
        """Remove ``results.csv`` / ``results.parquet`` (before points run: a killed sweep leaves no table)."""
        for name in ("results.csv", "results.parquet"):
            (self.root / name).unlink(missing_ok=True)

    def write_tables(self, df: Any) -> list[Path]:
        """``results.csv`` always, ``results.parquet`` when pyarrow imports; returns the files written."""
        written = [self.root / "results.csv"]
        _atomic_write(written[0], df.to_csv(index=False).encode("utf-8"))
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            return written
        import io

        buf = io.BytesIO()
        try:
            df.to_parquet(buf, index=False)
        except Exception:  # mixed-type object columns: write them as text
            buf = io.BytesIO()
            text = df.copy()
            for col in text.columns:
                if text[col].dtype == object:
                    text[col] = text[col].map(lambda v: None if v is None else str(v))
            text.to_parquet(buf, index=False)
        written.append(self.root / "results.parquet")
        _atomic_write(written[1], buf.getvalue())
        return written


# ------------------------------------------------------------------------------------------------------------
# The tidy table
# ------------------------------------------------------------------------------------------------------------


def _cell(v: Any) -> Any:
    """Axis values that are lists or mappings go into the table as JSON text."""
    return json.dumps(v) if isinstance(v, list | dict) else v


def build_table(sweep: Sweep, points: list[Point], records: dict[str, dict[str, Any] | None]):
    """One row per point: ``key``, the axis values (columns named by key path), ``status``, ``error``, then
    the metrics (``sweep.metrics``, or every summary column in first-seen order). A metric named like an axis
    (``seed``) is left to the axis column."""
    import pandas as pd

    axis_cols = sweep.axis_keys
    reserved = {"key", "status", "error", *axis_cols}
    if sweep.metrics is not None:
        metrics = [m for m in sweep.metrics if m not in reserved]
    else:
        metrics = []
        seen: set[str] = set()
        for p in points:
            rec = records.get(p.key)
            for k in (rec or {}).get("summary") or {}:
                if k not in seen and k not in reserved:
                    seen.add(k)
                    metrics.append(k)
    rows = []
    for p in points:
        rec = records.get(p.key)
        row: dict[str, Any] = {"key": p.key}
        row.update({k: _cell(p.axes[k]) for k in axis_cols})
        row["status"] = rec["status"] if rec else "missing"
        row["error"] = rec.get("error") if rec else None
        summary = (rec or {}).get("summary") or {}
        for m in metrics:
            row[m] = summary.get(m)
        rows.append(row)
    columns = ["key", *axis_cols, "status", "error", *metrics]
    df = pd.DataFrame(rows, columns=columns)
    for m in metrics:  # None -> NaN in numeric columns
        if df[m].map(lambda v: v is None or isinstance(v, int | float)).all():
            df[m] = pd.to_numeric(df[m])
    return df
