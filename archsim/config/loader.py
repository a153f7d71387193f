"""YAML configuration loading: line numbers, ``extends:``, ``--set`` overrides and validation messages.

The loader only deals in plain data (dicts, lists, scalars). Each package owns the pydantic model of its own
section; :func:`validate` runs a model over the loaded data and turns the first validation error into a
:class:`~archsim.config.errors.ConfigError` that names the file, the line and the key path.

Resolution of a config:

1. Parse the YAML, recording the line of every mapping key and sequence item in a :class:`SourceMap`.
2. Resolve ``extends:`` (at the top level or inside any nested mapping): each entry is a preset name or a path
   relative to the extending file; parents are resolved recursively, deep-merged in order, and the mapping
   itself is deep-merged on top. Dicts merge recursively; lists and scalars replace. A parent's top-level
   ``description:`` describes the parent file only and is not inherited.
3. Apply ``--set key.path=value`` overrides.

Names: the config :func:`load_config` loads (the ``CONFIG`` of ``archsim run``, the ``config`` of
``archsim.api.run``) is a path or a name; :func:`resolve_source` finds its file. For a hwconfig (the default)
the rule is, first match wins:

1. an existing file (the path as given, relative to the working directory);
2. a shipped hwconfig: ``hwconfigs/NAME.yaml`` in the directory above the ``archsim`` package;
3. a built-in preset under :data:`PRESET_DIR`, by file stem (``default``) or relative name
   (``systems/default``, ``dram/ddr4_3200_8gb_x8``).

So a name that is both a shipped hwconfig and a preset is the hwconfig; the preset stays reachable by its
relative name. For a workload (``kind="workload"``): an existing file, then ``workloads/NAME.yaml``.
``extends:`` entries are not affected: they name presets (or, in a workload, shipped workloads) or paths
relative to the extending file.

YAML is read with :class:`yaml.SafeLoader` semantics, plus one fix: exponent floats without a dot or an
exponent sign (``1e9``, ``3.2e9``) are floats, not strings, so frequencies and sizes can be written naturally.

Limits on a YAML file (each refused with one ``FILE:LINE:`` error, never a crash or a hang): the text is UTF-8
(a UTF-8 byte-order mark is allowed) without control characters other than tab and line breaks; at most
:data:`MAX_YAML_BYTES` (16 MiB); mappings and lists nest at most :data:`MAX_YAML_DEPTH` (100) levels, aliases
included; and aliases (``*name``) may add at most :data:`MAX_ALIAS_VALUES` (1,000,000) values to the document
(so an exponential "billion laughs" chain of anchors is refused before it is expanded).
"""

from __future__ import annotations

import copy
import datetime as _dt
import enum
import hashlib
import json
import os
import re
from collections.abc import Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pydantic
import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from archsim.config.errors import ConfigError

__all__ = [
    "PRESET_DIR",
    "HWCONFIGS_DIR",
    "WORKLOADS_DIR",
    "EXTENDS_KEY",
    "KeyPath",
    "Location",
    "SourceMap",
    "LoadedConfig",
    "load_yaml",
    "load_config",
    "deep_merge",
    "find_preset",
    "list_presets",
    "list_shipped",
    "find_shipped",
    "resolve_source",
    "parse_override",
    "apply_override",
    "validate",
    "config_error_from_validation",
    "format_key_path",
    "dump_resolved",
    "config_hash",
]

PRESET_DIR: Path = Path(__file__).resolve().parent / "presets"
"""Directory of the shipped presets (DRAM standards, devices); searched recursively."""

HWCONFIGS_DIR: Path = Path(__file__).resolve().parents[2] / "hwconfigs"
"""The shipped hwconfigs (``hwconfigs/*.yaml`` next to the ``archsim`` package); their stems work as names."""

WORKLOADS_DIR: Path = Path(__file__).resolve().parents[2] / "workloads"
"""The shipped workloads (``workloads/*.yaml``); their stems work as names and in a workload's ``extends:``."""

SHIPPED_KINDS = ("hwconfig", "workload")
"""The kinds of shipped configs, as :func:`list_shipped`, :func:`find_shipped` and :func:`resolve_source` take."""

EXTENDS_KEY = "extends"
"""The key that names the parents of a mapping."""

KeyPath = tuple[Hashable, ...]
"""A path into the config data: mapping keys, and ``int`` indices for list items."""

Location = tuple[str | None, int | None]
"""``(file, line)``; the line is 1-based, either part may be unknown."""

MAX_YAML_BYTES = 16 * 2**20
"""The largest YAML file read (16 MiB); a larger one is refused before it is parsed."""

MAX_YAML_DEPTH = 100
"""The deepest nesting of mappings and lists in a YAML file or ``--set`` value, alias expansion included."""

MAX_ALIAS_VALUES = 1_000_000
"""The most values that YAML aliases may add to a document (each alias counts the values it repeats)."""

OVERRIDE_LABEL = "--set"
"""How an override is named in error messages by default (``--set key.path=value: key.path: ...``)."""

_YAML_SUFFIXES = (".yaml", ".yml")
_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_MERGE_TAG = "tag:yaml.org,2002:merge"


class _LimitError(yaml.MarkedYAMLError):
    """A YAML document over one of the loader's limits (valid YAML, but refused)."""


class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads ``1e9`` / ``3.2e-3`` as floats (YAML 1.2 style), and refuses nesting deeper
    than :data:`MAX_YAML_DEPTH` while composing (the composer recurses once per level)."""

    _depth = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        if self._depth >= MAX_YAML_DEPTH and not self.check_event(yaml.AliasEvent, yaml.ScalarEvent):
            mark = self.peek_event().start_mark
            raise _LimitError(None, None, f"nested deeper than {MAX_YAML_DEPTH} levels (the limit)", mark)
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


# --------------------------------------------------------------------------------------------------------------
# Source map
# --------------------------------------------------------------------------------------------------------------


class SourceMap:
    """Where each value of a config came from: key path -> ``(file, line)``.

    Paths are tuples of mapping keys and ``int`` list indices, e.g. ``("dram", "timing", "nRCD")`` or
    ``("tables", 0, "rows")``; the empty tuple is the document itself.
    """

    __slots__ = ("_entries",)

    def __init__(self, entries: Mapping[KeyPath, Location] | Iterable[tuple[KeyPath, Location]] = ()) -> None:
        self._entries: dict[KeyPath, Location] = dict(entries)

    # mapping-like access
    def __getitem__(self, path: Sequence[Hashable]) -> Location:
        return self._entries[tuple(path)]

    def __setitem__(self, path: Sequence[Hashable], location: Location) -> None:
        self._entries[tuple(path)] = location

    def __contains__(self, path: object) -> bool:
        return isinstance(path, tuple | list) and tuple(path) in self._entries

    def __iter__(self) -> Iterator[KeyPath]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SourceMap) and self._entries == other._entries

    def __repr__(self) -> str:
        return f"SourceMap({len(self._entries)} entries)"

    def get(self, path: Sequence[Hashable], default: Location | None = None) -> Location | None:
        """The location recorded for exactly ``path``, or ``default``."""
        return self._entries.get(tuple(path), default)

    def items(self) -> Iterator[tuple[KeyPath, Location]]:
        """Iterate over ``(path, (file, line))`` pairs."""
        return iter(self._entries.items())

    def copy(self) -> SourceMap:
        """A shallow copy (locations are immutable tuples)."""
        return SourceMap(self._entries)

    def where(self, path: Sequence[Hashable]) -> Location:
        """Location of ``path``, or of its deepest recorded prefix; ``(None, None)`` if nothing matches.

        An error on a key that is missing from the config therefore points at its parent mapping.
        """
        key = tuple(path)
        for end in range(len(key), -1, -1):
            location = self._entries.get(key[:end])
            if location is not None:
                return location
        return (None, None)

    def blame(self, path: Sequence[Hashable], also: Iterable[Sequence[Hashable]] = ()) -> Location:
        """Where the value at ``path`` that an error is about came from: :meth:`where`, except that when that
        is a file and a command-line override (``--set``, ``--workload-set``) set a value below ``path`` (or
        at or below a path in ``also``: other values the check depends on), the (last such) override: a check
        of a whole mapping (``host.llc``: size, ways and line size together) fails because of the value the
        command line changed, not because of the file's line. The top level ``()`` is never blamed on an
        override."""
        location = self.where(path)
        key = tuple(path)
        if not key or _is_override(location[0]):
            return location
        heads = [(key, len(key) + 1)] + [(tuple(a), len(a)) for a in also if tuple(a)]
        below = [loc for p, loc in self._entries.items() if _is_override(loc[0])
                 and any(len(p) >= n and p[: len(h)] == h for h, n in heads)]
        return below[-1] if below else location

    # combining
    def update(self, other: SourceMap | Mapping[KeyPath, Location]) -> None:
        """Add ``other``'s entries, replacing existing ones (``other`` is the child)."""
        entries = other._entries if isinstance(other, SourceMap) else other
        self._entries.update(entries)

    def setdefaults(self, other: SourceMap) -> None:
        """Add ``other``'s entries only where this map has none (this map is the child)."""
        for path, location in other._entries.items():
            self._entries.setdefault(path, location)

    def merged(self, child: SourceMap) -> SourceMap:
        """A new map with this map's entries overridden by ``child``'s."""
        result = self.copy()
        result.update(child)
        return result

    def prefixed(self, prefix: Sequence[Hashable]) -> SourceMap:
        """A new map with every path moved under ``prefix``."""
        head = tuple(prefix)
        return SourceMap((head + path, location) for path, location in self._entries.items())

    def drop_under(self, path: Sequence[Hashable]) -> None:
        """Remove the entries strictly below ``path`` (the entry for ``path`` itself stays)."""
        head = tuple(path)
        n = len(head)
        for key in [k for k in self._entries if len(k) > n and k[:n] == head]:
            del self._entries[key]

    def pruned(self, data: Any) -> SourceMap:
        """A new map without the entries whose path does not exist in ``data``."""
        return SourceMap((p, loc) for p, loc in self._entries.items() if _path_exists(data, p))


_MISSING = object()


def _is_override(file: str | None) -> bool:
    """Whether a recorded location is a command-line override (``--set a.b=1``), not a file."""
    return file is not None and file.startswith("--")


def _path_exists(data: Any, path: KeyPath) -> bool:
    node = data
    for part in path:
        if isinstance(node, dict):
            node = node.get(part, _MISSING)
            if node is _MISSING:
                return False
        elif isinstance(node, list) and isinstance(part, int) and not isinstance(part, bool):
            if not 0 <= part < len(node):
                return False
            node = node[part]
        else:
            return False
    return True


def format_key_path(path: Iterable[Any]) -> str:
    """Dotted form of a key path: ``("dram", "channels", 0, "x")`` -> ``"dram.channels[0].x"``."""
    text = ""
    for part in path:
        if isinstance(part, int) and not isinstance(part, bool):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


# --------------------------------------------------------------------------------------------------------------
# YAML with line numbers
# --------------------------------------------------------------------------------------------------------------


def load_yaml(path: str | os.PathLike[str]) -> tuple[Any, SourceMap]:
    """Parse one YAML file, recording the 1-based line of every mapping key and sequence item.

    Returns the data (``None`` for an empty file) and its :class:`SourceMap`; the document itself is recorded
    at path ``()`` with the line where its content starts (no line for an empty file), so an error about a
    key missing from the top level names that line. Raises :class:`ConfigError` for a missing or unreadable
    file, text that is not UTF-8 or holds control characters (with the line), a YAML syntax error (with its
    line), a duplicate key in a mapping (at the duplicate's line), and a file over the limits of the module
    doc (size, nesting, alias expansion).
    """
    file = os.fspath(path)
    try:
        with open(file, "rb") as f:
            raw = f.read(MAX_YAML_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError("file not found", file=file) from None
    except IsADirectoryError:
        raise ConfigError("is a directory, not a YAML file", file=file) from None
    except OSError as exc:
        raise ConfigError(f"cannot read file: {exc.strerror or exc}", file=file) from None
    if len(raw) > MAX_YAML_BYTES:
        raise ConfigError(f"larger than {MAX_YAML_BYTES // 2**20} MiB, the limit for a YAML file", file=file)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        binary = any(b < 9 or 13 < b < 32 for b in raw[:4096])
        hint = "; a binary file, or UTF-16?" if binary else "; save it as UTF-8"
        raise ConfigError(
            f"not UTF-8 text: byte 0x{raw[exc.start]:02x} at column {column}{hint}", file=file, line=line
        ) from None
    return _parse_yaml(text, file)


def _reader_error(exc: yaml.reader.ReaderError, text: str) -> tuple[str, int]:
    """The message and 1-based line of a character the YAML reader refuses (NUL, other control characters)."""
    pos = exc.position
    line = text.count("\n", 0, pos) + 1
    column = pos - (text.rfind("\n", 0, pos) + 1) + 1
    char = exc.character if isinstance(exc.character, int) else ord(str(exc.character)[:1] or "\0")
    what = "NUL character" if char == 0 else "control character" if char < 32 or 127 <= char < 160 else "character"
    hint = "; a binary file, or UTF-16?" if char == 0 else ""
    return f"{what} U+{char:04X} at column {column} is not allowed in YAML{hint}", line


def _parse_yaml(text: str, file: str) -> tuple[Any, SourceMap]:
    sources = SourceMap({(): (file, None)})
    loader: _Loader | None = None
    try:
        loader = _Loader(text)  # the reader checks every character here
        node = loader.get_single_node()
        if node is not None:
            sources[()] = (file, node.start_mark.line + 1)
            _check_expansion(node, file)
        data = None if node is None else _Builder(loader, file, sources).build(node, ())
    except yaml.reader.ReaderError as exc:
        message, line = _reader_error(exc, text)
        raise ConfigError(message, file=file, line=line) from None
    except _LimitError as exc:
        mark = exc.problem_mark
        raise ConfigError(str(exc.problem), file=file, line=None if mark is None else mark.line + 1) from None
    except yaml.MarkedYAMLError as exc:
        raise _yaml_error(exc, file) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid YAML: {exc}", file=file) from None
    except RecursionError:  # pragma: no cover - the depth limit comes first
        raise ConfigError(f"nested deeper than {MAX_YAML_DEPTH} levels (the limit)", file=file) from None
    finally:
        if loader is not None:
            loader.dispose()
    return data, sources.pruned(data)


def _check_expansion(root: Node, file: str) -> None:
    """Refuse a document whose aliases nest it deeper than :data:`MAX_YAML_DEPTH` or repeat more than
    :data:`MAX_ALIAS_VALUES` values, before it is expanded (one pass over the node graph, shared nodes once)."""
    memo: dict[int, tuple[int, int]] = {}  # id(node) -> (values after expansion, depth)
    active: set[int] = set()

    def visit(node: Node) -> tuple[int, int]:
        key = id(node)
        done = memo.get(key)
        if done is not None:
            return done
        if isinstance(node, ScalarNode):
            memo[key] = (1, 0)
            return memo[key]
        if key in active:  # a recursive alias: the builder reports it with its key path
            return (1, 0)
        active.add(key)
        children = node.value if isinstance(node, SequenceNode) else [n for pair in node.value for n in pair]
        values, depth = 1, 0
        for child in children:
            v, d = visit(child)
            values += v
            depth = max(depth, d)
        active.discard(key)
        depth += 1
        if depth > MAX_YAML_DEPTH:
            raise ConfigError(f"nested deeper than {MAX_YAML_DEPTH} levels through aliases (the limit)",
                              file=file, line=node.start_mark.line + 1)
        memo[key] = (values, depth)
        if values > MAX_ALIAS_VALUES and values - len(memo) > MAX_ALIAS_VALUES:
            raise ConfigError(f"aliases expand the document to more than {MAX_ALIAS_VALUES:,} values "
                              "(the limit)", file=file, line=node.start_mark.line + 1)
        return memo[key]

    visit(root)


def _yaml_error(exc: yaml.MarkedYAMLError, file: str) -> ConfigError:
    mark = exc.problem_mark or exc.context_mark
    problem = exc.problem or "syntax error"
    message = f"invalid YAML: {problem}"
    if exc.context:
        message += f" ({exc.context})"
    return ConfigError(message, file=file, line=None if mark is None else mark.line + 1)


class _Builder:
    """Builds Python data from a composed YAML node tree, filling a :class:`SourceMap`."""

    def __init__(self, loader: _Loader, file: str, sources: SourceMap) -> None:
        self.loader = loader
        self.file = file
        self.sources = sources
        self._active: set[int] = set()  # collection nodes being built (recursive aliases)

    def build(self, node: Node, path: KeyPath) -> Any:
        if isinstance(node, ScalarNode):
            return self.loader.construct_object(node, deep=True)
        plain = (isinstance(node, MappingNode) and node.tag == _MAP_TAG) or (
            isinstance(node, SequenceNode) and node.tag == _SEQ_TAG
        )
        if not plain:  # !!set, !!omap, !!pairs, ...: no line numbers inside
            return self.loader.construct_object(node, deep=True)
        if id(node) in self._active:
            raise self._error(node, path, "recursive YAML alias")
        self._active.add(id(node))
        try:
            if isinstance(node, SequenceNode):
                return self._sequence(node, path)
            return self._mapping(node, path)
        finally:
            self._active.discard(id(node))

    def _line(self, node: Node) -> int:
        return node.start_mark.line + 1

    def _error(self, node: Node, path: KeyPath, message: str) -> ConfigError:
        return ConfigError(message, file=self.file, line=self._line(node), path=format_key_path(path))

    def _sequence(self, node: SequenceNode, path: KeyPath) -> list[Any]:
        items = []
        for index, item in enumerate(node.value):
            self.sources[path + (index,)] = (self.file, self._line(item))
            items.append(self.build(item, path + (index,)))
        return items

    def _mapping(self, node: MappingNode, path: KeyPath) -> dict[Any, Any]:
        merged: dict[Any, Any] = {}
        own: dict[Any, Any] = {}
        first_line: dict[Any, int] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:  # YAML merge key `<<: *anchor` or `<<: [*a, *b]`
                merged.update(self._merge_sources(value_node, path))
                continue
            if not isinstance(key_node, ScalarNode):
                raise self._error(key_node, path, "mapping keys must be scalars")
            key = self.loader.construct_object(key_node, deep=True)
            if not isinstance(key, Hashable):
                raise self._error(key_node, path, "mapping keys must be scalars")
            if key in first_line:
                raise self._error(
                    key_node, path + (key,), f"duplicate key (first defined on line {first_line[key]})"
                )
            first_line[key] = self._line(key_node)
            self.sources[path + (key,)] = (self.file, first_line[key])
            own[key] = self.build(value_node, path + (key,))
        if not merged:
            return own
        merged.update(own)
        return merged

    def _merge_sources(self, node: Node, path: KeyPath) -> dict[Any, Any]:
        if isinstance(node, MappingNode):
            parts = [node]
        elif isinstance(node, SequenceNode) and all(isinstance(n, MappingNode) for n in node.value):
            parts = list(node.value)
        else:
            raise self._error(node, path, "a merge key '<<' needs a mapping or a list of mappings")
        result: dict[Any, Any] = {}
        for part in reversed(parts):  # earlier mappings take precedence
            result.update(self.build(part, path))
        return result


# --------------------------------------------------------------------------------------------------------------
# Presets
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Preset:
    name: str  # relative path without suffix, posix ("dram/ddr4_3200_8gb_x8")
    stem: str
    relpath: str  # relative path with suffix, posix
    file: Path


def _preset_dirs(preset_dirs: str | os.PathLike[str] | Iterable[str | os.PathLike[str]] | None) -> list[Path]:
    if preset_dirs is None:
        return [PRESET_DIR]
    if isinstance(preset_dirs, str | os.PathLike):
        return [Path(preset_dirs)]
    return [Path(d) for d in preset_dirs]


def _preset_index(dirs: Sequence[Path]) -> list[_Preset]:
    """All presets under ``dirs``; for one relative name, the earliest directory wins."""
    seen: dict[str, _Preset] = {}
    for base in dirs:
        if not base.is_dir():
            continue
        files = sorted(p for p in base.rglob("*") if p.suffix in _YAML_SUFFIXES and p.is_file())
        for file in files:
            rel = file.relative_to(base).as_posix()
            name = rel.rsplit(".", 1)[0]
            if name not in seen:
                seen[name] = _Preset(name=name, stem=file.stem, relpath=rel, file=file)
    return sorted(seen.values(), key=lambda p: p.name)


def _known_names(index: Sequence[_Preset]) -> str:
    names = sorted({p.stem for p in index})
    return ", ".join(names) if names else "none"


def _lookup_preset(name: str, index: Sequence[_Preset]) -> _Preset | None:
    wanted = name[: -len(Path(name).suffix)] if Path(name).suffix in _YAML_SUFFIXES else name
    for preset in index:
        if preset.name == wanted:
            return preset
    matches = [p for p in index if p.stem == wanted]
    if len(matches) > 1:
        raise ConfigError(
            f"ambiguous preset '{name}' (matches: {', '.join(p.name for p in matches)}); "
            "name it with its directory"
        )
    return matches[0] if matches else None


def find_preset(
    name: str, preset_dirs: str | os.PathLike[str] | Iterable[str | os.PathLike[str]] | None = None
) -> Path | None:
    """The file of preset ``name`` (a file stem, or a relative name like ``dram/ddr4_3200_8gb_x8``), or ``None``.

    Raises :class:`ConfigError` when a bare stem matches presets in several subdirectories.
    """
    preset = _lookup_preset(name, _preset_index(_preset_dirs(preset_dirs)))
    return None if preset is None else preset.file


def list_presets(
    preset_dirs: str | os.PathLike[str] | Iterable[str | os.PathLike[str]] | None = None,
) -> list[dict[str, Any]]:
    """Describe the available presets, sorted by relative path.

    Each entry has ``name`` (file stem), ``path`` (relative to its preset directory, with suffix),
    ``description`` (the file's top-level ``description:``, or ``None``) and ``file`` (full path).
    """
    result = []
    for preset in _preset_index(_preset_dirs(preset_dirs)):
        data, _ = load_yaml(preset.file)
        description = data.get("description") if isinstance(data, dict) else None
        result.append(
            {
                "name": preset.stem,
                "path": preset.relpath,
                "description": None if description is None else str(description),
                "file": str(preset.file),
            }
        )
    return result


# --------------------------------------------------------------------------------------------------------------
# Shipped hwconfigs and workloads, and what a name means
# --------------------------------------------------------------------------------------------------------------


def _shipped_dir(kind: str) -> Path:
    if kind == "hwconfig":
        return HWCONFIGS_DIR
    if kind == "workload":
        return WORKLOADS_DIR
    raise ValueError(f"kind must be one of {', '.join(SHIPPED_KINDS)}, got {kind!r}")


def _shipped_files(kind: str) -> list[Path]:
    """The top-level YAML files of the shipped directory of ``kind``, sorted by name (none if it is absent)."""
    base = _shipped_dir(kind)
    if not base.is_dir():
        return []
    return sorted((p for p in base.iterdir() if p.suffix in _YAML_SUFFIXES and p.is_file()), key=lambda p: p.stem)


def _bare_name(name: str) -> str | None:
    """``name`` without a ``.yaml``/``.yml`` suffix, or None when it cannot be a shipped name (a path)."""
    if not name or "/" in name or os.sep in name or name.startswith("~"):
        return None
    return name[: -len(Path(name).suffix)] if Path(name).suffix in _YAML_SUFFIXES else name


def find_shipped(name: str, kind: str = "hwconfig") -> Path | None:
    """The file of the shipped hwconfig (``hwconfigs/NAME.yaml``) or workload (``workloads/NAME.yaml``) called
    ``name`` (its file stem; a ``.yaml`` suffix is allowed), or None."""
    stem = _bare_name(str(name))
    if stem is None:
        return None
    for file in _shipped_files(kind):
        if file.stem == stem:
            return file
    return None


def list_shipped(kind: str = "hwconfig") -> list[dict[str, Any]]:
    """Describe the shipped hwconfigs (``kind="hwconfig"``) or workloads (``kind="workload"``), sorted by name.

    Each entry has ``name`` (file stem), ``path`` (``hwconfigs/cpu_ddr4.yaml``), ``description`` (the file's
    own top-level ``description:``, or ``None``) and ``file`` (full path).
    """
    result = []
    for file in _shipped_files(kind):
        data, _ = load_yaml(file)
        description = data.get("description") if isinstance(data, dict) else None
        result.append(
            {
                "name": file.stem,
                "path": f"{file.parent.name}/{file.name}",
                "description": None if description is None else str(description),
                "file": str(file),
            }
        )
    return result


def _close_names(name: str, candidates: Iterable[str]) -> str:
    import difflib

    close = difflib.get_close_matches(name, sorted(set(candidates)), n=3, cutoff=0.6)
    return f"; did you mean {', '.join(close)}?" if close else ""


def resolve_source(
    source: str | os.PathLike[str],
    kind: str = "hwconfig",
    preset_dirs: str | os.PathLike[str] | Iterable[str | os.PathLike[str]] | None = None,
) -> str:
    """The file that ``source`` (a path or a name) names, as :func:`load_config` reads it.

    ``kind="hwconfig"``: an existing file, else a shipped hwconfig (``hwconfigs/NAME.yaml``), else a preset
    under ``preset_dirs`` (default :data:`PRESET_DIR`) by stem or relative name. ``kind="workload"``: an
    existing file, else a shipped workload (``workloads/NAME.yaml``). A path-like ``source`` (an
    ``os.PathLike``, or text ending in ``.yaml`` or holding a directory separator) that names nothing is
    returned as it is, for :func:`load_yaml` to report (``file not found``). Raises :class:`ConfigError` for
    an unknown name: ``config 'cpu_ddr9' not found: not a file, not a shipped hwconfig, not a preset ...``.
    """
    resolver = _Resolver(_preset_dirs(preset_dirs))
    return _locate_source(source, resolver, kind)


def _display(path: Path) -> str:
    """A path for messages: relative to the working directory when below it, else absolute."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return str(path)


# --------------------------------------------------------------------------------------------------------------
# Merging and extends
# --------------------------------------------------------------------------------------------------------------


def deep_merge(base: Any, override: Any) -> Any:
    """Merge ``override`` onto ``base`` without modifying either.

    Dicts merge key by key, recursively (keys keep ``base``'s order, new keys follow); anything else in
    ``override`` (lists, scalars, ``None``) replaces the value in ``base``.
    """
    if not (isinstance(base, dict) and isinstance(override, dict)):
        return copy.deepcopy(override)
    result = {key: copy.deepcopy(value) for key, value in base.items()}
    for key, value in override.items():
        result[key] = deep_merge(result[key], value) if key in result else copy.deepcopy(value)
    return result


class _Resolver:
    """Resolves ``extends:`` recursively, keeping the source map and detecting cycles."""

    def __init__(self, dirs: Sequence[Path]) -> None:
        self.dirs = dirs
        self._index: list[_Preset] | None = None

    @property
    def index(self) -> list[_Preset]:
        if self._index is None:
            self._index = _preset_index(self.dirs)
        return self._index

    def load_file(self, file: str, stack: tuple[tuple[Path, str], ...]) -> tuple[Any, SourceMap]:
        """Load ``file`` and resolve every ``extends:`` in it; ``stack`` holds the files being extended."""
        data, sources = load_yaml(file)
        stack = stack + ((Path(file).resolve(), file),)
        data = self._resolve(data, sources, (), file, stack)
        return data, sources.pruned(data)

    def _resolve(
        self, node: Any, sources: SourceMap, prefix: KeyPath, file: str, stack: tuple[tuple[Path, str], ...]
    ) -> Any:
        if isinstance(node, list):
            return [self._resolve(item, sources, prefix + (i,), file, stack) for i, item in enumerate(node)]
        if not isinstance(node, dict):
            return node
        body = {
            key: self._resolve(value, sources, prefix + (key,), file, stack)
            for key, value in node.items()
            if key != EXTENDS_KEY
        }
        if EXTENDS_KEY not in node:
            return body
        ext_path = prefix + (EXTENDS_KEY,)
        refs = node[EXTENDS_KEY]
        if isinstance(refs, str):
            entries = [(refs, ext_path)]
        elif isinstance(refs, list):
            entries = [(ref, ext_path + (i,)) for i, ref in enumerate(refs)]
        else:
            file_, line = sources.where(ext_path)
            raise ConfigError(
                f"must be a preset name, a file path, or a list of them, got {_short_repr(refs)}",
                file=file_,
                line=line,
                path=format_key_path(ext_path),
            )
        merged: dict[Any, Any] = {}
        parent_sources = SourceMap()
        for ref, ref_path in entries:
            location = sources.where(ref_path)
            parent, parent_map = self._load_parent(ref, file, location, format_key_path(ext_path), stack)
            merged = deep_merge(merged, parent)
            parent_sources.update(parent_map.prefixed(prefix))
        # The mapping's own entries (and those of its nested extends) win over its parents'.
        sources.setdefaults(parent_sources)
        return deep_merge(merged, body)

    def _load_parent(
        self,
        ref: Any,
        file: str,
        location: Location,
        key_path: str,
        stack: tuple[tuple[Path, str], ...],
    ) -> tuple[dict[Any, Any], SourceMap]:
        def error(message: str) -> ConfigError:
            return ConfigError(message, file=location[0], line=location[1], path=key_path)

        target = self._locate(ref, file, error)
        real = Path(target).resolve()
        for i, (seen, _) in enumerate(stack):
            if seen == real:
                chain = [shown for _, shown in stack[i:]] + [target]
                raise error(f"extends cycle: {' -> '.join(chain)}")
        data, sources = self.load_file(target, stack)
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise error(f"cannot extend '{ref}': its top level is {_kind_of(data)}, not a mapping")
        if "description" in data:  # describes the parent file only
            del data["description"]
            sources = sources.pruned(data)
        return data, sources

    def _locate(self, ref: Any, file: str, error: Any) -> str:
        """The file ``ref`` names: a path (relative to ``file``'s directory) or a preset name."""
        if not isinstance(ref, str) or not ref.strip():
            raise error(f"must be a preset name or a file path, got {_short_repr(ref)}")
        ref = ref.strip()
        expanded = os.path.expanduser(ref)
        candidate = (
            expanded
            if os.path.isabs(expanded)
            else os.path.normpath(os.path.join(os.path.dirname(file), ref))
        )
        if Path(ref).suffix in _YAML_SUFFIXES:
            if os.path.isfile(candidate):
                return candidate
            preset = self._preset(ref, error)
            if preset is not None:
                return preset
            raise error(f"file not found: {candidate}")
        preset = self._preset(ref, error)
        if preset is not None:
            return preset
        if os.path.isfile(candidate):
            return candidate
        raise error(f"unknown preset '{ref}' (known: {_known_names(self.index)})")

    def _preset(self, name: str, error: Any) -> str | None:
        try:
            preset = _lookup_preset(name, self.index)
        except ConfigError as exc:
            raise error(exc.message) from None
        return None if preset is None else _display(preset.file)


# --------------------------------------------------------------------------------------------------------------
# Overrides
# --------------------------------------------------------------------------------------------------------------

_SEGMENT = re.compile(r"([^.\[\]]+)((?:\[\d+\])*)")


def parse_override(text: str, label: str = OVERRIDE_LABEL) -> tuple[KeyPath, Any]:
    """Parse ``a.b[0].c=value`` into ``(("a", "b", 0, "c"), value)``; the value is read as YAML.

    Raises :class:`ConfigError` (file ``--set``, or ``label``: the option the override came from) for a
    malformed override.
    """
    key, sep, raw_value = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"malformed override '{text}' (expected KEY.PATH=VALUE)", file=label)
    path: list[Hashable] = []
    for segment in key.split("."):
        match = _SEGMENT.fullmatch(segment.strip())
        if match is None or not match.group(1).strip():
            raise ConfigError(f"malformed override '{text}' (bad key path '{key}')", file=label)
        path.append(match.group(1).strip())
        path.extend(int(i) for i in re.findall(r"\[(\d+)\]", match.group(2)))
    try:
        value = yaml.load(raw_value, Loader=_Loader)  # _Loader is a SafeLoader
    except yaml.reader.ReaderError as exc:
        problem = _reader_error(exc, raw_value)[0].replace(" in YAML", "")
        raise ConfigError(f"invalid value: {problem}", file=f"{label} {text}", path=key) from None
    except _LimitError as exc:
        raise ConfigError(str(exc.problem), file=f"{label} {text}", path=key) from None
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"invalid value: {problem}", file=f"{label} {text}", path=key) from None
    return tuple(path), value


def apply_override(data: dict[Any, Any], sources: SourceMap, text: str, label: str = OVERRIDE_LABEL) -> KeyPath:
    """Apply one ``key.path=value`` override to ``data`` in place, and record it in ``sources``.

    Missing (or null) intermediate mappings are created; list items are addressed as ``a[0]`` or ``a.0``.
    The recorded location is ``("--set key.path=value", None)`` (``label`` instead of ``--set``: the option
    the override came from, such as ``--workload-set``). Returns the key path that was set.
    """
    path, value = parse_override(text, label)
    origin = f"{label} {text.strip()}"
    location: Location = (origin, None)
    node: Any = data
    walked: list[Hashable] = []
    for depth, part in enumerate(path):
        last = depth == len(path) - 1
        if isinstance(node, list):
            index = _list_index(part)
            if index is None or not 0 <= index < len(node):
                where = format_key_path(walked) or "the config"
                problem = f"no item {part} in {where} (it has {len(node)} items)"
                raise ConfigError(problem, file=origin, path=format_key_path(path))
            part = index
        elif isinstance(node, dict):
            if isinstance(part, int) and part not in node:
                raise ConfigError(
                    f"cannot index '{format_key_path(walked)}' with [{part}]: it is a mapping, not a list",
                    file=origin,
                    path=format_key_path(path),
                )
            if not last and (part not in node or node[part] is None):
                node[part] = {}
                sources[(*walked, part)] = location
        else:
            raise ConfigError(
                f"cannot set '{format_key_path(path)}': {format_key_path(walked)} is "
                f"{_short_repr(node)}, not a mapping",
                file=origin,
                path=format_key_path(path),
            )
        walked.append(part)
        if last:
            node[part] = value
        else:
            node = node[part]
    full = tuple(walked)
    sources.drop_under(full)
    sources[full] = location
    return full


def _list_index(part: Hashable) -> int | None:
    if isinstance(part, int) and not isinstance(part, bool):
        return part
    if isinstance(part, str) and part.isdigit():
        return int(part)
    return None


# --------------------------------------------------------------------------------------------------------------
# Loading a config
# --------------------------------------------------------------------------------------------------------------


@dataclass
class LoadedConfig:
    """A config after ``extends:`` and overrides, before validation.

    Attributes:
        data: the resolved config (plain dicts, lists and scalars).
        sources: where each value came from.
        name: the stem of the config file (``pifs_rec`` for ``hwconfigs/pifs_rec.yaml``).
        path: the config file.
        overrides: the ``key.path=value`` overrides that were applied, in order.
    """

    data: dict[Any, Any]
    sources: SourceMap
    name: str
    path: Path
    overrides: tuple[str, ...] = field(default=())

    @property
    def hash(self) -> str:
        """:func:`config_hash` of :attr:`data`."""
        return config_hash(self.data)


def load_config(
    source: str | os.PathLike[str],
    overrides: Iterable[str] = (),
    preset_dirs: str | os.PathLike[str] | Iterable[str | os.PathLike[str]] | None = None,
    *,
    kind: str | None = None,
    override_label: str = OVERRIDE_LABEL,
) -> LoadedConfig:
    """Load a config from a YAML file or a name, resolving ``extends:`` and applying ``overrides``.

    ``kind`` says what a name in ``source`` means (see :func:`resolve_source` and the module doc):

    - ``"hwconfig"`` (the default when ``preset_dirs`` is not given): a path, a shipped hwconfig
      (``cpu_ddr4``), or a preset under ``preset_dirs`` (default :data:`PRESET_DIR`) by file stem or relative
      name (``dram/ddr4_3200_8gb_x8``); ``extends:`` names presets.
    - ``"workload"``: a path or a shipped workload (``criteo_zipf``); ``extends:`` names shipped workloads
      (``preset_dirs`` defaults to :data:`WORKLOADS_DIR`).
    - ``None`` with ``preset_dirs`` given: a path or a preset under ``preset_dirs`` only.

    ``override_label``: the option the overrides came from, as errors about them name it (``--set`` by
    default; ``archsim run`` passes ``--workload-set`` for the workload's). Raises :class:`ConfigError` on any
    problem with the input.
    """
    if kind is None:
        kind = "hwconfig" if preset_dirs is None else "preset"
    if kind == "workload" and preset_dirs is None:
        preset_dirs = [WORKLOADS_DIR]
    dirs = _preset_dirs(preset_dirs)
    resolver = _Resolver(dirs)
    file = _locate_source(source, resolver, kind)
    data, sources = resolver.load_file(file, ())
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"the top level must be a mapping (KEY: value), got {_kind_of(data)}", file=file,
                          line=sources.where(())[1])
    if isinstance(overrides, str):
        overrides = (overrides,)
    applied = tuple(overrides)
    for text in applied:
        apply_override(data, sources, text, override_label)
    return LoadedConfig(data=data, sources=sources, name=Path(file).stem, path=Path(file), overrides=applied)


def _locate_source(source: str | os.PathLike[str], resolver: _Resolver, kind: str) -> str:
    """The file of ``source`` for :func:`load_config` (``kind``: hwconfig, workload, or preset)."""
    file = os.fspath(source)
    if isinstance(source, os.PathLike) or os.path.isfile(file):
        return file
    if kind in SHIPPED_KINDS:
        shipped = find_shipped(file, kind)
        if shipped is not None:
            return _display(shipped)
    if kind != "workload":
        preset = resolver._preset(file, lambda message: ConfigError(message))
        if preset is not None:
            return preset
    if Path(file).suffix in _YAML_SUFFIXES or os.sep in file or "/" in file or os.path.exists(file):
        return file  # load_yaml reports it (not found, a directory, ...)
    if kind == "hwconfig":
        names = [p.stem for p in _shipped_files("hwconfig")] + [p.stem for p in resolver.index]
        raise ConfigError(f"config '{file}' not found: not a file, not a shipped hwconfig, not a preset "
                          f"(archsim presets lists them{_close_names(file, names)})")
    if kind == "workload":
        names = [p.stem for p in _shipped_files("workload")]
        raise ConfigError(f"workload '{file}' not found: not a file, not a shipped workload "
                          f"(archsim presets lists them{_close_names(file, names)})")
    raise ConfigError(f"no such file, and unknown preset '{file}' (known: {_known_names(resolver.index)})")


# --------------------------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------------------------

M = TypeVar("M", bound=pydantic.BaseModel)

_MSG_PREFIXES = ("Value error, ", "Assertion failed, ")


def validate(loaded: LoadedConfig, model: type[M]) -> M:
    """Validate ``loaded.data`` with ``model``; the first error becomes a :class:`ConfigError`.

    The error names the file and line the bad value came from, its dotted key path, and a concise message,
    e.g. ``hw.yaml:12: dram.timing.nRCD: must be a positive integer, got -3``.
    """
    try:
        return model.model_validate(loaded.data)
    except pydantic.ValidationError as exc:
        raise config_error_from_validation(exc, loaded.sources, loaded.data) from None


def config_error_from_validation(
    exc: pydantic.ValidationError, sources: SourceMap, data: Any = _MISSING
) -> ConfigError:
    """Turn the first error of a pydantic :class:`~pydantic.ValidationError` into a :class:`ConfigError`.

    When ``data`` (the validated input) is given, location entries pydantic adds for union members or
    function validators beyond a scalar are dropped from the key path.
    """
    errors = exc.errors(include_url=False)
    if not errors:  # pragma: no cover - pydantic always reports at least one
        return ConfigError(str(exc))
    first = errors[0]
    loc = tuple(part for part in first.get("loc", ()) if part != "[key]")
    if data is not _MISSING:
        loc = _clean_loc(loc, data)
    file, line = sources.blame(loc)
    return ConfigError(_error_message(first), file=file, line=line, path=format_key_path(loc) or None)


def _clean_loc(loc: tuple[Any, ...], data: Any) -> tuple[Any, ...]:
    """Drop pydantic's type tags (``int``, ``list[int]``, ``function-after[...]``) that are not data keys."""
    out: list[Any] = []
    node: Any = data
    for part in loc:
        if node is _MISSING:
            out.append(part)
        elif isinstance(node, dict):
            out.append(part)
            node = node.get(part, _MISSING)
        elif isinstance(node, list):
            if isinstance(part, int) and not isinstance(part, bool):
                out.append(part)
                node = node[part] if 0 <= part < len(node) else _MISSING
            # else: a tag naming a union member; skip it
        else:
            break  # below a scalar there are only tags
    return tuple(out)


_MAPPING_TYPES = frozenset({"model_type", "model_attributes_type", "dict_type", "dataclass_type",
                            "dataclass_exact_type", "typed_dict_type", "mapping_type"})
_LIST_TYPES = frozenset({"list_type", "tuple_type", "set_type", "frozen_set_type", "iterable_type"})


def _error_message(error: Mapping[str, Any]) -> str:
    """One pydantic error in plain words: no class names (``instance of TableSpec``), the value once."""
    kind = error.get("type")
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required key missing"
    if kind in _MAPPING_TYPES:
        message = "must be a mapping (KEY: value)"
    elif kind in _LIST_TYPES:
        message = "must be a list"
    else:
        message = str(error.get("msg", "invalid value"))
        for prefix in _MSG_PREFIXES:
            if message.startswith(prefix):
                message = message[len(prefix) :]
        message = re.sub(r" or (?:an )?instance of \w+", "", message)  # "a valid dictionary or instance of X"
        message = re.sub(r"\ban instance of \w+", "of another type", message)
        if message and message[0].isupper() and not (len(message) > 1 and message[1].isupper()):
            message = message[0].lower() + message[1:]
    value = error.get("input", _MISSING)
    if value is _MISSING or re.search(r"\bgot\b", message):  # the validator's message shows the value already
        return message
    if _is_scalar(value):
        message += f", got {_short_repr(value)}"
    elif kind in ("value_error", "assertion_error"):  # a check of a whole mapping or list: its message says it
        pass
    elif isinstance(value, Mapping):
        message += ", got a mapping"
    elif isinstance(value, list | tuple):
        message += ", got a list"
    return message


def _kind_of(value: Any) -> str:
    """``a list``, ``a mapping``, or the scalar itself (``'abc'``, ``5``): a YAML value in words."""
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return _short_repr(value)


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool | _dt.date | _dt.time)


def _short_repr(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --------------------------------------------------------------------------------------------------------------
# Output and hashing
# --------------------------------------------------------------------------------------------------------------


def dump_resolved(data: Any) -> str:
    """YAML text of a resolved config, keys in their original order."""
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False, allow_unicode=True)


def config_hash(data: Any) -> str:
    """SHA-256 hex digest of the canonical JSON form of ``data`` (sorted keys, no whitespace).

    Equal configs hash equally whatever their key order; used to name run directories and key sweep results.
    A pydantic model is hashed through its JSON-mode dump.
    """
    if isinstance(data, pydantic.BaseModel):
        data = data.model_dump(mode="json")
    text = json.dumps(_canonical(data), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _canonical(value: Any) -> Any:
    """JSON-ready form of ``value``; raises ``TypeError`` for types without a stable representation."""
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, Mapping):
        return {_canonical_key(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    if isinstance(value, set | frozenset):
        items = [_canonical(v) for v in value]
        return sorted(items, key=lambda v: json.dumps(v, sort_keys=True))
    if isinstance(value, _dt.date | _dt.time):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return _canonical(value.value)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, bytes):
        return value.hex()
    raise TypeError(f"cannot hash a config value of type {type(value).__name__}: {value!r}")


def _canonical_key(key: Any) -> str:
    # Non-string keys are tagged with their type so that 1 and "1" stay distinct.
    return key if isinstance(key, str) else f"{type(key).__name__}:{key!r}"
