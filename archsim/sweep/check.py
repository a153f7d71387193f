"""Checking a sweep's values before any point runs (issue #12).

:func:`load_sweep` checks every ``hw.`` / ``workload.`` value of a spec (``base.overrides``, and each distinct
value of each axis and zip group) against the schema it overrides, so a value of the wrong type or out of
range (``true`` for a Zipf exponent, ``''`` for a batch size, ``null`` for a channel count, a list where a
mapping belongs, an unknown key) is a spec error at its line, ``SPEC:LINE: axes.KEY[i]: message``, and nothing
is run or written. A workload whose simulated work cannot finish (:func:`archsim.api.check_workload_size`) is
refused the same way.

Each value is checked once, not each point: against the base run (the hwconfig and workload with
``base.overrides`` applied; with a ``hwconfig`` / ``workload`` axis, against each of them) with that one value
applied. A value is refused for an error at or below its own key path, and for an error its value brings to a
mapping above it (``zipf needs its exponent s`` at ``defaults.index`` for ``s: null``) unless another axis also
sets something in that mapping (the combination is left to the points). Errors that depend on several values
together (a layout that does not fit, cross-section checks), and ``hw.`` keys missing in one hwconfig of a
``hwconfig`` axis, are left to the points: such a point is recorded failed, the others run.

A hwconfig or workload that is itself invalid, at a key no override touches, is refused too: every point
would fail.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any

import pydantic

from archsim.config import (
    ConfigError,
    InputError,
    LoadedConfig,
    apply_override,
    format_key_path,
    load_config,
    parse_override,
)
from archsim.config.loader import _clean_loc, _error_message
from archsim.sweep.spec import Sweep, override_text

__all__ = ["check_sweep"]


@dataclass
class _Slot:
    """One ``hw.`` / ``workload.`` key of the spec: a base override (one value) or an axis (its values)."""

    key: str
    where: tuple[Any, ...]  # ("base", "overrides", key), ("axes", key) or ("zip", g, key)
    values: list[tuple[int | None, Any]]  # distinct values, each with its first index in the axis (None: base)

    @property
    def kind(self) -> str:
        return "hwconfig" if self.key.startswith("hw.") else "workload"

    @property
    def rel(self) -> str:
        return self.key.split(".", 1)[1]

    @property
    def path(self) -> str:
        """The key path in the config, as errors name it (``tables[0].rows``)."""
        parts, _ = parse_override(f"{self.rel}=0")
        return format_key_path(int(p) if isinstance(p, str) and p.isdigit() else p for p in parts)


@dataclass(frozen=True)
class _Err:
    path: str
    message: str
    file: str | None = None
    line: int | None = None

    @property
    def ident(self) -> tuple[str, str]:
        return (self.path, self.message)

    def text(self) -> str:
        return str(ConfigError(self.message, file=self.file, line=self.line, path=self.path or None))


def _under(path: str, top: str) -> bool:
    """``path`` is ``top`` or lies below it."""
    return top == "" or path == top or path.startswith(top + ".") or path.startswith(top + "[")


def _distinct(values: Any) -> list[tuple[int | None, Any]]:
    seen: set[str] = set()
    out: list[tuple[int | None, Any]] = []
    for i, v in enumerate(values):
        ident = json.dumps(v, sort_keys=True)
        if ident not in seen:
            seen.add(ident)
            out.append((i, v))
    return out


def _slots(sweep: Sweep) -> list[_Slot]:
    """Every ``hw.`` / ``workload.`` key in the order a point applies them (base overrides, then the axes)."""
    slots = [_Slot(key, ("base", "overrides", key), [(None, value)]) for key, value in sweep.base_overrides]
    for axis in sweep.axes:
        slots.append(_Slot(axis.key, ("axes", axis.key), _distinct(axis.values)))
    for g, group in enumerate(sweep.zip_groups):
        for axis in group:
            slots.append(_Slot(axis.key, ("zip", g, axis.key), _distinct(axis.values)))
    return [s for s in slots if s.key.startswith(("hw.", "workload."))]


def _where_of_axis(sweep: Sweep, key: str) -> tuple[tuple[Any, ...], tuple[Any, ...]] | None:
    """(where the axis ``key`` is written, its values) or None."""
    for axis in sweep.axes:
        if axis.key == key:
            return ("axes", key), axis.values
    for g, group in enumerate(sweep.zip_groups):
        for axis in group:
            if axis.key == key:
                return ("zip", g, key), axis.values
    return None


def check_sweep(sweep: Sweep) -> None:
    """Raise :class:`ConfigError` at the spec's line for the first value that does not validate (see the
    module doc); returns quietly when every value does."""
    slots = _slots(sweep)
    for kind in ("hwconfig", "workload"):
        mine = [s for s in slots if s.kind == kind]
        contexts = _contexts(sweep, kind)
        for name, source, where in contexts:
            _Context(sweep, kind, name, source, where, mine, several=len(contexts) > 1).check()


def _contexts(sweep: Sweep, kind: str) -> list[tuple[str | None, str, tuple[Any, ...]]]:
    """What the ``kind`` values are checked against: ``(name, source, where)`` for each value of the
    ``hwconfig`` / ``workload`` axis (the first spelling of each), else the base run's one (or none)."""
    axis = _where_of_axis(sweep, kind)
    if axis is not None:
        where, names = axis
        out = []
        seen: set[str] = set()
        for i, name in enumerate(names):
            if name not in seen:
                seen.add(name)
                out.append((name, sweep.choices[kind][name], where + (i,)))
        return out
    source = sweep.hwconfig if kind == "hwconfig" else sweep.workload
    return [] if source is None else [(None, source, ("base", kind))]


class _Context:
    """The checks of one hwconfig (or workload) the spec's values apply to."""

    def __init__(self, sweep: Sweep, kind: str, name: str | None, source: str, where: tuple[Any, ...],
                 slots: list[_Slot], several: bool) -> None:
        self.sweep = sweep
        self.kind = kind
        self.name = name  # the hwconfig / workload axis value, or None for the base run's
        self.source = source
        self.where = where
        self.slots = slots
        self.several = several
        # with a hwconfig (workload) axis an override must land in a mapping the config has (KeyResolver)
        self.strict = name is not None

    # ---- errors

    def refuse(self, slot: _Slot, index: int | None, err: _Err) -> ConfigError:
        where = slot.where if index is None else slot.where + (index,)
        message = err.message if err.path == slot.path else f"{err.path or 'the ' + self.kind}: {err.message}"
        value = dict(slot.values)[index]
        if err.path == slot.path and ", got " not in message and isinstance(value, list | dict):
            shown = json.dumps(value)
            message += f", got {shown if len(shown) <= 60 else shown[:57] + '...'}"
        if self.several:
            message += f" (with {self.kind} {self.name})"
        file, line = self.sweep.sources.where(where)
        return ConfigError(message, file=file, line=line, path=format_key_path(where))

    def refuse_config(self, err: _Err | InputError) -> ConfigError:
        """The hwconfig (workload) itself is invalid: its own error, at the axis value naming it."""
        if self.name is None:
            if isinstance(err, InputError):
                return err if isinstance(err, ConfigError) else ConfigError(str(err))
            return ConfigError(err.message, file=err.file, line=err.line, path=err.path or None)
        file, line = self.sweep.sources.where(self.where)
        text = str(err) if isinstance(err, InputError) else err.text()
        return ConfigError(text, file=file, line=line, path=format_key_path(self.where))

    def errors(self, cfg: LoadedConfig) -> list[_Err]:
        """Every schema error of ``cfg`` (for a workload that validates: its resolution and size checks)."""
        if self.kind == "hwconfig":
            from archsim.system.config import SystemConfig

            return _schema_errors(SystemConfig, cfg)
        from archsim.workload.spec import WorkloadSpec, load_workload

        errs = _schema_errors(WorkloadSpec, cfg)
        if errs:
            return errs
        from archsim.api import check_workload_size

        try:
            check_workload_size(load_workload(cfg))
        except ConfigError as exc:
            return [_Err(exc.path or "", exc.message, exc.file, exc.line)]
        except InputError as exc:  # an unreadable trace: not about a value
            return [_Err("", str(exc))]
        return []

    # ---- applying values

    def apply(self, base: LoadedConfig, slot: _Slot, value: Any) -> LoadedConfig | ConfigError | None:
        """``base`` with ``slot`` set to ``value``; None when the override does not apply to this config (a
        missing mapping with a hwconfig / workload axis: left to the point), the ConfigError when it cannot be
        applied at all."""
        from archsim.sweep.store import _check_parents

        data = copy.deepcopy(base.data)
        sources = base.sources.copy()
        text = override_text(slot.rel, value)
        try:
            if self.strict:
                _check_parents(data, text, base.name)
            apply_override(data, sources, text)
        except ConfigError as exc:
            return None if self.strict else exc
        return LoadedConfig(data=data, sources=sources, name=base.name, path=base.path,
                            overrides=(*base.overrides, text))

    def touched_by_other_axis(self, path: str, slot: _Slot) -> bool:
        """Does an axis other than ``slot`` set ``path``, something below it, or a mapping above it?"""
        return any(s is not slot and s.where[0] != "base" and (_under(s.path, path) or _under(path, s.path))
                   for s in self.slots)

    # ---- the checks

    def check(self) -> None:
        try:
            own = load_config(self.source, kind=self.kind)
        except InputError as exc:
            raise self.refuse_config(exc) from None
        own_errors = {e.ident for e in self.errors(own)}

        base = own
        base_slots = [s for s in self.slots if s.where[0] == "base"]
        for slot in base_slots:
            got = self.apply(base, slot, slot.values[0][1])
            if isinstance(got, ConfigError):
                raise self.refuse(slot, None, _Err(slot.path, got.message)) from None
            if got is not None:
                base = got
        base_errors = self.errors(base)
        for err in base_errors:
            blamed = next((s for s in reversed(base_slots) if _under(err.path, s.path)), None)
            if blamed is None and err.ident not in own_errors:
                blamed = next((s for s in base_slots if _under(s.path, err.path)
                               and not self.touched_by_other_axis(err.path, s)), None)
            if blamed is not None:
                raise self.refuse(blamed, None, err)
            if err.ident in own_errors and not any(_under(err.path, s.path) or _under(s.path, err.path)
                                                   for s in self.slots):
                raise self.refuse_config(err)  # nothing in the spec touches it: every point would fail
        known = {e.ident for e in base_errors}

        for slot in self.slots:
            if slot.where[0] == "base":
                continue
            for index, value in slot.values:
                got = self.apply(base, slot, value)
                if isinstance(got, ConfigError):
                    raise self.refuse(slot, index, _Err(slot.path, got.message))
                if got is None:
                    continue
                for err in self.errors(got):
                    if err.ident in known:
                        continue
                    if _under(err.path, slot.path) or (_under(slot.path, err.path)
                                                       and not self.touched_by_other_axis(err.path, slot)):
                        raise self.refuse(slot, index, err)


def _schema_errors(model: type[pydantic.BaseModel], cfg: LoadedConfig) -> list[_Err]:
    """Every error of validating ``cfg.data`` with ``model``, each with its key path and where it came from."""
    try:
        model.model_validate(cfg.data)
    except pydantic.ValidationError as exc:
        out = []
        for error in exc.errors(include_url=False):
            loc = _clean_loc(tuple(p for p in error.get("loc", ()) if p != "[key]"), cfg.data)
            file, line = cfg.sources.where(loc)
            out.append(_Err(format_key_path(loc), _error_message(error), file, line))
        return out
    return []
