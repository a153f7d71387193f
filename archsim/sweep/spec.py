"""Sweep specs: the YAML ``archsim sweep`` reads, its validation, and its expansion into points.

A spec names a base run (a hwconfig and a workload or a trace) and the values to vary: ``axes`` (a mapping of
key paths to value lists, ranges or powers of two), ``zip`` groups (axes that vary together), and
``constraints`` (expressions a point must satisfy). The points are the cartesian product of the axes and the
zip groups, in the order written, the first axis varying slowest. See docs/sweeps.md for every key.

Key paths: ``hw.<path>`` overrides the hwconfig (``--set <path>=value``), ``workload.<path>`` the workload
(``--workload-set``), and ``seed`` is the run seed. The axes ``hwconfig`` and ``workload`` vary the hwconfig and
the workload themselves (shipped names or paths relative to the spec file); their table columns hold the names.
"""

from __future__ import annotations

import ast
import itertools
import json
import math
import operator
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from archsim.config import (
    ConfigError,
    SourceMap,
    format_key_path,
    load_config,
    parse_override,
    resolve_source,
    validate,
)

__all__ = [
    "AXIS_PREFIXES",
    "NAMED_AXES",
    "Axis",
    "Constraint",
    "Point",
    "Sweep",
    "SweepSpec",
    "expand_points",
    "load_sweep",
    "override_text",
]

AXIS_PREFIXES = ("hw.", "workload.")
"""Key-path prefixes of an axis; ``seed`` and the :data:`NAMED_AXES` are the axes without a prefix."""

NAMED_AXES = ("hwconfig", "workload")
"""Axes whose values are hwconfigs or workloads (a shipped name, or a path relative to the spec file)."""

_MAX_POINTS = 1_000_000


# ------------------------------------------------------------------------------------------------------------
# Axis values: a list, {start, stop, step}, {values: [...]}, {log2: {start, stop}}
# ------------------------------------------------------------------------------------------------------------


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _axis_values(v: Any) -> list[Any]:
    """Expand one axis's YAML value into its list of values (raises ValueError with a short message)."""
    if isinstance(v, list):
        values = v
    elif isinstance(v, dict):
        keys = set(v)
        if keys == {"values"}:
            values = v["values"]
            if not isinstance(values, list):
                raise ValueError("values: must be a list")
        elif keys == {"log2"}:
            values = _log2(v["log2"])
        elif "start" in keys or "stop" in keys:
            values = _range(v)
        else:
            raise ValueError("must be a list of values, {start, stop, step}, {values: [...]} or "
                             f"{{log2: {{start, stop}}}}, got keys {sorted(map(str, keys))}")
    else:
        raise ValueError("must be a list of values, {start, stop, step}, {values: [...]} or "
                         "{log2: {start, stop}}")
    if not values:
        raise ValueError("has no values")
    return list(values)


def _range(v: dict[str, Any]) -> list[Any]:
    extra = set(v) - {"start", "stop", "step"}
    if extra:
        raise ValueError(f"unknown key '{sorted(map(str, extra))[0]}' in a range (start, stop, step)")
    if "start" not in v or "stop" not in v:
        raise ValueError("a range needs start and stop (and optionally step)")
    start, stop, step = v["start"], v["stop"], v.get("step", 1)
    for name, x in (("start", start), ("stop", stop), ("step", step)):
        if not _is_number(x) or (isinstance(x, float) and not math.isfinite(x)):  # an int of any size is finite
            raise ValueError(f"range {name} must be a number, got {x!r}")
    if step == 0:
        raise ValueError("range step must not be 0")
    shown = f"range from {_short(start)} to {_short(stop)} with step {_short(step)}"
    # the number of steps, exactly: in floats, 1e308 / 1e-300 overflows and an int past 1e308 cannot be converted
    exact = (Fraction(stop) - Fraction(start)) / Fraction(step)
    if exact < 0:
        raise ValueError(f"{shown} is empty")
    if exact > _MAX_POINTS:
        raise ValueError(f"{shown} has more than {_MAX_POINTS} values")
    if all(isinstance(x, int) for x in (start, stop, step)):
        count = (stop - start) // step + 1
        _check_count(count)
        return [start + i * step for i in range(count)]
    try:
        span = (stop - start) / step  # as before: in floats, with their rounding (0.1 steps)
    except OverflowError:
        span = math.inf
    count = math.floor((span if math.isfinite(span) else float(exact)) + 1e-9) + 1
    _check_count(count)
    try:
        values = [round(start + i * step, 12) for i in range(count)]
    except OverflowError:
        values = [math.inf]
    if not all(math.isfinite(x) for x in values):
        raise ValueError(f"{shown} goes past the largest number (about 1.8e308)")
    return values


def _short(x: int | float) -> str:
    """A range bound as written; an integer of more than 20 digits by its number of digits."""
    if isinstance(x, int) and abs(x) >= 10**20:
        return f"{'-' if x < 0 else ''}an integer of {len(str(abs(x)))} digits"
    return str(x)


def _log2(v: Any) -> list[int]:
    if not isinstance(v, dict) or set(v) != {"start", "stop"}:
        raise ValueError("log2 must be {start, stop}: powers of two from start to stop")
    start, stop = v["start"], v["stop"]
    for name, x in (("start", start), ("stop", stop)):
        if not isinstance(x, int) or isinstance(x, bool) or x < 1 or x & (x - 1):
            raise ValueError(f"log2 {name} must be a power of two >= 1, got {x!r}")
    if stop < start:
        raise ValueError(f"log2 stop ({stop}) is below start ({start})")
    return [1 << e for e in range(start.bit_length() - 1, stop.bit_length())]


def _check_count(count: int) -> None:
    if count > _MAX_POINTS:
        raise ValueError(f"range has {count} values (at most {_MAX_POINTS})")


AxisValues = Annotated[list[Any], BeforeValidator(_axis_values)]


def _zip_groups(v: Any) -> Any:
    """A single mapping is one zip group."""
    return [v] if isinstance(v, dict) else v


# ------------------------------------------------------------------------------------------------------------
# The schema
# ------------------------------------------------------------------------------------------------------------


class BaseRun(BaseModel):
    """The run every point starts from."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

    hwconfig: str | None = Field(
        None, description="hwconfig YAML (relative to the spec file), shipped hwconfig or preset name; "
                          "may be left out when a 'hwconfig' axis gives every point its own")
    workload: str | None = Field(None, description="embedding workload YAML (relative to the spec) or name; "
                                                   "may be left out when a 'workload' axis is given")
    trace: str | None = Field(None, description="memory trace (relative to the spec file)")
    window: int = Field(0, ge=0, le=1 << 32, description="trace runs: most requests outstanding, at most 2^32 "
                                                        "(archsim.api.MAX_WINDOW; 0: only queues limit)")
    overrides: dict[str, Any] = Field(
        default_factory=dict, description="overrides of every point: hw.<path> / workload.<path>: value")


class SweepSpec(BaseModel):
    """A sweep spec as written in YAML (see docs/sweeps.md)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, strict=True, allow_inf_nan=False)

    name: str = Field("", description="sweep name (default: the spec file's stem); results/<name>/")
    description: str = Field("", description="free text")
    base: BaseRun = Field(description="the base run")
    axes: dict[str, AxisValues] = Field(default_factory=dict, description="key path -> values")
    zip_groups: Annotated[list[dict[str, AxisValues]], BeforeValidator(_zip_groups)] = Field(
        default_factory=list, alias="zip", description="groups of axes that vary together (equal lengths)")
    constraints: list[str] = Field(default_factory=list, description="expressions a point must satisfy")
    metrics: list[str] | None = Field(None, description="summary columns to keep (default: all)")
    retries: int = Field(1, ge=0, description="re-runs of a point that fails with an internal error")
    timeout: float | None = Field(None, ge=0.01, le=10**7, description="seconds a point may run, 0.01 to 10^7 "
                                                                      "(archsim.api.MAX_WALL_S; default: no limit)")
    seed: int | None = Field(None, ge=0, description="seed of every point (default: the workload's, or 0)")


# ------------------------------------------------------------------------------------------------------------
# The loaded sweep
# ------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Axis:
    """One varied key path and its values."""

    key: str
    values: tuple[Any, ...]


@dataclass
class Constraint:
    """A checked constraint expression; ``names`` maps each name in it to its axis key."""

    text: str
    tree: ast.Expression
    names: dict[str, str]
    where: tuple[str | None, int | None]
    path: str

    def holds(self, values: dict[str, Any]) -> bool:
        try:
            return bool(_Eval(self.names, values).run(self.tree))
        except ConfigError:
            raise
        except (ArithmeticError, TypeError, ValueError) as exc:
            shown = ", ".join(f"{k}={v!r}" for k, v in values.items())
            raise ConfigError(f"cannot evaluate '{self.text}' at {shown}: {exc}", file=self.where[0],
                              line=self.where[1], path=self.path) from None


@dataclass
class Point:
    """One point of a sweep: its axis values and what they mean for the run.

    ``hwconfig`` and ``workload`` are what the point runs (a path or a name, as the loader takes it): the base
    run's, or the value of a ``hwconfig`` / ``workload`` axis. ``key`` (the result-store key), ``config_hash``
    and ``seed`` are filled in by the runner.
    """

    index: int
    axes: dict[str, Any]
    overrides: list[str]
    workload_overrides: list[str]
    seed: int | None
    key: str = ""
    config_hash: str = ""
    hwconfig: str | None = None
    workload: str | None = None


@dataclass
class Sweep:
    """A validated sweep spec with its paths resolved.

    ``hwconfig`` / ``workload``: the base run's (None when only an axis gives them). ``choices``: for the
    ``hwconfig`` and ``workload`` axes, each value (the name in the table) -> the path or name it runs.
    """

    name: str
    spec_file: Path
    hwconfig: str | None
    workload: str | None
    trace: str | None
    window: int
    base_overrides: list[tuple[str, Any]]
    axes: list[Axis]
    zip_groups: list[list[Axis]]
    constraints: list[Constraint]
    metrics: list[str] | None
    retries: int
    seed: int | None
    timeout: float | None = None
    description: str = ""
    sources: SourceMap = field(default_factory=SourceMap, repr=False)
    choices: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def axis_keys(self) -> list[str]:
        """Every axis key path, in column order (axes first, then the zip groups)."""
        return [a.key for a in self.axes] + [a.key for g in self.zip_groups for a in g]

    @property
    def grid_size(self) -> int:
        """Points before constraints."""
        n = 1
        for a in self.axes:
            n *= len(a.values)
        for g in self.zip_groups:
            n *= len(g[0].values)
        return n


def load_sweep(path: str | os.PathLike[str], check_values: bool = True) -> Sweep:
    """Load and validate a sweep spec; raises :class:`ConfigError` (``FILE:LINE: KEY.PATH: MESSAGE``).

    With ``check_values`` (the default) every ``hw.`` / ``workload.`` value (``base.overrides``, each distinct
    axis value) is checked against the schema it overrides before anything runs (archsim.sweep.check)."""
    loaded = load_config(path)
    spec = validate(loaded, SweepSpec)
    src = loaded.sources

    def error(where: Sequence[Any], message: str) -> ConfigError:
        file, line = src.where(tuple(where))
        return ConfigError(message, file=file, line=line, path=format_key_path(where))

    first: dict[str, int] = {}
    for i, m in enumerate(spec.metrics or ()):  # a column listed twice breaks the table (build_table)
        if first.setdefault(m, i) != i:
            raise error(("metrics", i), f"'{m}' is listed twice (also metrics[{first[m]}])")

    spec_file = Path(loaded.path)
    base = spec.base
    named = {key: where for key, where in _axis_places(spec) if key in NAMED_AXES}
    if base.workload is not None and base.trace is not None:
        raise error(("base",), "give either a workload or a trace (exactly one)")
    if base.trace is not None and "workload" in named:
        raise error(named["workload"], "a workload axis needs a workload run (this sweep runs base.trace)")
    if base.workload is None and base.trace is None and "workload" not in named:
        raise error(("base",), "give either a workload or a trace (exactly one), or a 'workload' axis")
    if base.hwconfig is None and "hwconfig" not in named:
        raise error(("base",), "give a hwconfig: base.hwconfig, or a 'hwconfig' axis")
    hwconfig = None if base.hwconfig is None else _resolve_path(base.hwconfig, spec_file, must_exist=False)
    workload = None if base.workload is None else _resolve_path(base.workload, spec_file, must_exist=False)
    trace = None
    if base.trace is not None:
        trace = _resolve_path(base.trace, spec_file, must_exist=True)
        if not os.path.isfile(trace):
            raise error(("base", "trace"), f"trace not found: {trace}")

    has_workload = workload is not None or "workload" in named
    base_overrides: list[tuple[str, Any]] = []
    for key, value in base.overrides.items():
        _check_key(key, ("base", "overrides", key), error, has_workload, allow_seed=False)
        base_overrides.append((key, value))

    choices: dict[str, dict[str, str]] = {}
    axes: list[Axis] = []
    seen: dict[str, tuple[Any, ...]] = {}
    for key, values in spec.axes.items():
        where = ("axes", key)
        _check_key(key, where, error, has_workload, allow_seed=True)
        _check_values(key, values, where, error)
        if key in NAMED_AXES:
            values, choices[key] = _named_values(key, values, where, spec_file, error)
        seen[key] = where
        axes.append(Axis(key, tuple(values)))
    groups: list[list[Axis]] = []
    for i, group in enumerate(spec.zip_groups):
        if not group:
            raise error(("zip", i), "an empty zip group")
        members: list[Axis] = []
        for key, values in group.items():
            where = ("zip", i, key)
            _check_key(key, where, error, has_workload, allow_seed=True)
            _check_values(key, values, where, error)
            if key in seen:
                raise error(where, f"axis '{key}' is already varied at {format_key_path(seen[key])}")
            if key in NAMED_AXES:
                values, choices[key] = _named_values(key, values, where, spec_file, error)
            seen[key] = where
            members.append(Axis(key, tuple(values)))
        lengths = {a.key: len(a.values) for a in members}
        if len(set(lengths.values())) > 1:
            shown = ", ".join(f"{k} has {n}" for k, n in lengths.items())
            raise error(("zip", i), f"the axes of a zip group need equal lengths: {shown}")
        groups.append(members)

    keys = [a.key for a in axes] + [a.key for g in groups for a in g]
    constraints = [_constraint(text, ("constraints", i), keys, error, src)
                   for i, text in enumerate(spec.constraints)]
    sweep = Sweep(name=spec.name or loaded.name, spec_file=spec_file, hwconfig=hwconfig, workload=workload,
                  trace=trace, window=base.window, base_overrides=base_overrides, axes=axes,
                  zip_groups=groups, constraints=constraints, metrics=spec.metrics, retries=spec.retries,
                  seed=spec.seed, timeout=spec.timeout, description=spec.description, sources=src,
                  choices=choices)
    if sweep.grid_size > _MAX_POINTS:
        raise error(("axes",), f"{sweep.grid_size} points (at most {_MAX_POINTS})")
    if check_values:
        from archsim.sweep.check import check_sweep

        check_sweep(sweep)
    return sweep


def _resolve_path(value: str, spec_file: Path, must_exist: bool) -> str:
    """A path relative to the spec file, made absolute; a name that is no file is left for the loader
    (a preset or a shipped workload)."""
    raw = os.path.expanduser(value)
    if os.path.isabs(raw):
        return raw
    candidate = os.path.normpath(os.path.join(os.path.abspath(spec_file.parent), raw))
    if must_exist or os.path.exists(candidate):
        return candidate
    return value


def _axis_places(spec: SweepSpec) -> list[tuple[str, tuple[Any, ...]]]:
    """Every axis key of ``spec`` with where it is written."""
    places = [(key, ("axes", key)) for key in spec.axes]
    for i, group in enumerate(spec.zip_groups):
        places += [(key, ("zip", i, key)) for key in group]
    return places


def _named_values(key: str, values: list[Any], where: tuple[Any, ...], spec_file: Path,
                  error: Any) -> tuple[list[str], dict[str, str]]:
    """The names of a ``hwconfig`` / ``workload`` axis's values (the stem of the file each resolves to) and
    what each name runs: a path made absolute relative to the spec file, or the name for the loader."""
    names: list[str] = []
    choices: dict[str, str] = {}
    files: dict[str, str] = {}
    for i, value in enumerate(values):
        target = _resolve_path(value, spec_file, must_exist=False)
        try:
            file = resolve_source(target, kind=key)
        except ConfigError as exc:
            raise error(where + (i,), exc.message) from None
        if not os.path.isfile(file):
            shown = file if os.path.isabs(file) else os.path.normpath(os.path.join(spec_file.parent, file))
            raise error(where + (i,), f"{key} file not found: {shown}")
        name = Path(file).stem
        real = os.path.realpath(file)
        if files.setdefault(name, real) != real:
            raise error(where + (i,), f"two {key}s named '{name}' ({files[name]} and {real}): the table "
                                      f"column '{key}' holds the file's stem, so rename one")
        choices.setdefault(name, target)  # the same file: the first spelling runs
        names.append(name)
    return names, choices


def _check_key(key: str, where: tuple[Any, ...], error: Any, has_workload: bool, allow_seed: bool) -> None:
    if key == "seed":
        if not allow_seed:
            raise error(where, "the seed is set by the top-level 'seed:' or a 'seed' axis")
        return
    if key in NAMED_AXES:
        if not allow_seed:
            raise error(where, f"the {key} is set by base.{key} or a '{key}' axis")
        return
    prefix = next((p for p in AXIS_PREFIXES if key.startswith(p)), None)
    if prefix is None:
        raise error(where, "unknown axis: a key path starts with 'hw.' (the hwconfig) or 'workload.' "
                           "(the workload), or is 'seed', 'hwconfig' or 'workload'")
    rest = key[len(prefix):]
    try:
        parse_override(f"{rest}=0")
    except ConfigError:
        raise error(where, f"malformed key path '{rest}'") from None
    if prefix == "workload." and not has_workload:
        raise error(where, "a workload axis needs base.workload (this sweep runs a trace)")


def _check_values(key: str, values: list[Any], where: tuple[Any, ...], error: Any) -> None:
    if key == "seed":
        for v in values:
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise error(where, f"seeds must be integers >= 0, got {v!r}")
    if key in NAMED_AXES:
        for i, v in enumerate(values):
            if not isinstance(v, str) or not v.strip():
                raise error(where + (i,), f"a {key} is a name or a path, got {v!r}")
    for v in values:
        try:
            json.dumps(v, allow_nan=False)
        except (TypeError, ValueError):
            raise error(where, f"value {v!r} cannot be written as an override") from None


def override_text(path: str, value: Any) -> str:
    """``key.path=value`` with the value written as JSON (which the override parser reads as YAML)."""
    return f"{path}={json.dumps(value)}"


# ------------------------------------------------------------------------------------------------------------
# Expansion
# ------------------------------------------------------------------------------------------------------------


def expand_points(sweep: Sweep | str | os.PathLike[str]) -> list[Point]:
    """The points of a sweep (a :class:`Sweep` or a spec path): the product of its axes and zip groups,
    first axis slowest, less those failing a constraint."""
    if not isinstance(sweep, Sweep):
        sweep = load_sweep(sweep)
    factors: list[list[list[tuple[str, Any]]]] = [[[(a.key, v)] for v in a.values] for a in sweep.axes]
    for group in sweep.zip_groups:
        factors.append([[(a.key, a.values[i]) for a in group] for i in range(len(group[0].values))])
    points: list[Point] = []
    for combo in itertools.product(*factors):
        values = dict(kv for part in combo for kv in part)
        if not all(c.holds(values) for c in sweep.constraints):
            continue
        points.append(_point(sweep, len(points), values))
    return points


def _point(sweep: Sweep, index: int, values: dict[str, Any]) -> Point:
    hw: list[str] = []
    wl: list[str] = []
    for key, value in itertools.chain(sweep.base_overrides, ((k, values[k]) for k in sweep.axis_keys)):
        if key.startswith("hw."):
            hw.append(override_text(key[3:], value))
        elif key.startswith("workload."):
            wl.append(override_text(key[9:], value))
    seed = values.get("seed", sweep.seed)
    ordered = {k: values[k] for k in sweep.axis_keys}
    hwconfig = sweep.choices["hwconfig"][values["hwconfig"]] if "hwconfig" in values else sweep.hwconfig
    workload = sweep.choices["workload"][values["workload"]] if "workload" in values else sweep.workload
    return Point(index=index, axes=ordered, overrides=hw, workload_overrides=wl, seed=seed, hwconfig=hwconfig,
                 workload=workload)


# ------------------------------------------------------------------------------------------------------------
# Constraints: a whitelisted expression language, evaluated by walking the AST (never eval)
# ------------------------------------------------------------------------------------------------------------

_BINOPS: dict[type, Any] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod,
}
_CMPOPS: dict[type, Any] = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
    ast.Gt: operator.gt, ast.GtE: operator.ge,
}
_UNARY: dict[type, Any] = {ast.Not: operator.not_, ast.USub: operator.neg, ast.UAdd: operator.pos}
_FUNCS: dict[str, Any] = {"min": min, "max": max}


def _dotted(node: ast.AST) -> str | None:
    """``hw.dram.org.channels`` / ``workload.tables[0].rows`` as text; None if ``node`` is no such name."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        head = _dotted(node.value)
        return None if head is None else f"{head}.{node.attr}"
    if isinstance(node, ast.Subscript):
        head = _dotted(node.value)
        idx = node.slice
        if head is None or not (isinstance(idx, ast.Constant) and type(idx.value) is int):
            return None
        return f"{head}[{idx.value}]"
    return None


def _describe(node: ast.AST) -> str:
    if isinstance(node, ast.Call):
        return "function calls other than min(...) and max(...)"
    if isinstance(node, ast.Attribute | ast.Subscript):
        return "attributes and subscripts of anything but an axis name"
    if isinstance(node, ast.BinOp):
        return f"the operator {type(node.op).__name__}"
    if isinstance(node, ast.Constant):
        return f"the constant {node.value!r}"
    return type(node).__name__


def _constraint(text: str, where: tuple[Any, ...], keys: list[str], error: Any, src: SourceMap) -> Constraint:
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise error(where, f"invalid expression '{text}': {exc.msg}") from None
    names: dict[str, str] = {}

    def name(node: ast.AST, dotted: str) -> None:
        matches = [k for k in keys if k == dotted or k.endswith("." + dotted)]
        exact = [k for k in matches if k == dotted]
        if exact:
            matches = exact
        if not matches:
            known = ", ".join(keys) or "none"
            raise error(where, f"'{dotted}' in '{text}' is not an axis (axes: {known})")
        if len(matches) > 1:
            raise error(where, f"'{dotted}' in '{text}' is ambiguous: {', '.join(matches)}")
        names[dotted] = matches[0]

    def check(node: ast.AST) -> None:
        dotted = _dotted(node)
        if dotted is not None:
            name(node, dotted)
            return
        if isinstance(node, ast.Expression):
            check(node.body)
        elif isinstance(node, ast.Constant):
            if not isinstance(node.value, int | float | str | bool) or node.value is None:
                raise error(where, f"not allowed in a constraint: {_describe(node)} (in '{text}')")
        elif isinstance(node, ast.BoolOp):
            for v in node.values:
                check(v)
        elif isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
            check(node.operand)
        elif isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            check(node.left)
            check(node.right)
        elif isinstance(node, ast.Compare) and all(type(op) in _CMPOPS for op in node.ops):
            check(node.left)
            for c in node.comparators:
                check(c)
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCS
              and not node.keywords and node.args and not any(isinstance(a, ast.Starred) for a in node.args)):
            for a in node.args:
                check(a)
        else:
            raise error(where, f"not allowed in a constraint: {_describe(node)} (in '{text}')")

    check(tree)
    file, line = src.where(where)
    return Constraint(text=text, tree=tree, names=names, where=(file, line), path=format_key_path(where))


class _Eval:
    """Evaluates a checked constraint tree over one point's axis values."""

    def __init__(self, names: dict[str, str], values: dict[str, Any]) -> None:
        self.names = names
        self.values = values

    def run(self, node: ast.AST) -> Any:
        dotted = _dotted(node)
        if dotted is not None:
            return self.values[self.names[dotted]]
        if isinstance(node, ast.Expression):
            return self.run(node.body)
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.BoolOp):
            is_and = isinstance(node.op, ast.And)
            result: Any = None
            for v in node.values:
                result = self.run(v)
                if bool(result) != is_and:
                    return result
            return result
        if isinstance(node, ast.UnaryOp):
            operand = self.run(node.operand)
            if not isinstance(node.op, ast.Not):
                _numbers(operand)
            return _UNARY[type(node.op)](operand)
        if isinstance(node, ast.BinOp):
            left, right = self.run(node.left), self.run(node.right)
            _numbers(left, right)  # no arithmetic on strings (``"x" * 10**9``)
            return _BINOPS[type(node.op)](left, right)
        if isinstance(node, ast.Compare):
            left = self.run(node.left)
            for op, comp in zip(node.ops, node.comparators, strict=True):
                right = self.run(comp)
                if not _CMPOPS[type(op)](left, right):
                    return False
                left = right
            return True
        if isinstance(node, ast.Call):
            assert isinstance(node.func, ast.Name)
            return _FUNCS[node.func.id](*(self.run(a) for a in node.args))
        raise TypeError(f"unexpected {type(node).__name__}")  # pragma: no cover - checked at load


def _numbers(*values: Any) -> None:
    for v in values:
        if not isinstance(v, int | float):
            raise TypeError(f"arithmetic needs numbers, got {v!r}")
