"""Mutation primitives (pure functions; :mod:`.strategies` draws their arguments).

Values: wrong types (bool, string, list, map, null where a number belongs and the reverse), negative, zero,
huge (2^31 .. 2^64, 1e308) and non-finite numbers, and values derived from the original (its negation, times
1000, as a string...). Trees: set, delete, rename a key, add an unknown key, nest deeply. Text and bytes:
truncate, unbalanced brackets, tabs, NUL and binary garbage, other encodings, whole-document replacements
(empty, a scalar, a list, several documents, an alias bomb). Traces: bad hex, unknown ops, huge numbers,
extra or missing fields; gzip truncated, corrupted or wrapping garbage.
"""

from __future__ import annotations

import copy
import gzip
import math
from collections.abc import Hashable
from typing import Any

import yaml

INF = math.inf
NAN = math.nan

NUMBERS = [0, -1, 1, 2, 3, 7, 2**31, 2**32, 2**53 + 1, 2**63 - 1, 2**63, 2**64, 10**30, -(2**63), -(2**64),
           0.0, -0.0, 0.5, -0.5, 1e-300, 5e-324, 1e308, -1e308, INF, -INF, NAN]
"""Numbers, including the out-of-range and non-finite ones."""

WRONG_TYPES = [True, False, None, "", "abc", "12", "-4", "1e9", "0x40", ".inf", "nan", "yes", "2^64", "1_000",
               " 5", "\x00", "\u00e9t\u00e9", [], [1, 2], [None], {}, {"a": 1}, {"value": 3}]
"""Values of the wrong type for most keys (a number key gets these, a string key gets :data:`NUMBERS`)."""

UNKNOWN_KEYS = ["typo", "unknown_key", "Name", "extra", "", "0", "__class__", "\u00e9", "a.b", "extends_"]


def derived(v: Any) -> list[Any]:
    """Values made from the original one: its negation, a thousand times it, it as a string, in a list..."""
    out: list[Any] = [[v], {"v": v}, str(v), None]
    if isinstance(v, bool):
        out += [not v, int(v), "true", 2]
    elif isinstance(v, int):
        out += [-v, v + 1, v - 1, v * 1000, v * 2**40, v + 0.5, float(v), -v - 1, v * 2**64]
    elif isinstance(v, float):
        out += [-v, v * 1000, v * 1e300, v / 1e300, v + 1, INF if v >= 0 else -INF]
        out += [int(v)] if math.isfinite(v) else [0]
    elif isinstance(v, str):
        out += [v.upper(), v + "x", "", v * 50, v[:-1], " " + v, v + "\x00", 0, 1.5]
    elif isinstance(v, list):
        out += [[], v * 3, v[:1], v[1:], [v], {"0": v[0]} if v else {}, 0]
    elif isinstance(v, dict):
        out += [{}, list(v.values()), list(v), 0, "x"]
    return out


# ------------------------------------------------------------------------------------------------------------
# Trees (parsed YAML / JSON)
# ------------------------------------------------------------------------------------------------------------

Path = tuple[Hashable, ...]


def tree_paths(data: Any, prefix: Path = ()) -> list[Path]:
    """Every node under the root, depth-first: mapping keys and list indices."""
    out: list[Path] = []
    if isinstance(data, dict):
        for k, v in data.items():
            out.append(prefix + (k,))
            out += tree_paths(v, prefix + (k,))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            out.append(prefix + (i,))
            out += tree_paths(v, prefix + (i,))
    return out


def containers(data: Any, prefix: Path = ()) -> list[Path]:
    """The paths of every mapping (the root included): places for an unknown key."""
    out: list[Path] = [prefix] if isinstance(data, dict) else []
    if isinstance(data, dict):
        for k, v in data.items():
            out += containers(v, prefix + (k,))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            out += containers(v, prefix + (i,))
    return out


def get(data: Any, path: Path) -> Any:
    for p in path:
        data = data[p]
    return data


def set_value(data: Any, path: Path, value: Any) -> Any:
    """A copy of ``data`` with ``path`` set (the root itself when ``path`` is empty)."""
    if not path:
        return value
    data = copy.deepcopy(data)
    get(data, path[:-1])[path[-1]] = value
    return data


def delete(data: Any, path: Path) -> Any:
    data = copy.deepcopy(data)
    parent = get(data, path[:-1])
    del parent[path[-1]]
    return data


def rename(data: Any, path: Path, new: Hashable) -> Any:
    """Rename a mapping key, keeping the order (a list item is left alone)."""
    data = copy.deepcopy(data)
    parent = get(data, path[:-1])
    if isinstance(parent, dict):
        items = [(new if k == path[-1] else k, v) for k, v in parent.items()]
        parent.clear()
        parent.update(items)
    return data


def add_key(data: Any, path: Path, key: Hashable, value: Any) -> Any:
    data = copy.deepcopy(data)
    get(data, path)[key] = value
    return data


def nested(depth: int, leaf: Any = 1, kind: str = "list") -> Any:
    out = leaf
    for _ in range(depth):
        out = [out] if kind == "list" else {"a": out}
    return out


def dotted(path: Path) -> str:
    """``('dram', 'org', 'channels')`` -> ``dram.org.channels``; list indices as ``[i]``."""
    text = ""
    for p in path:
        text += f"[{p}]" if isinstance(p, int) else (("." if text else "") + str(p))
    return text


def dump(data: Any) -> str:
    """YAML text of a tree (non-finite floats as .inf / .nan, unicode kept)."""
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=4096, default_flow_style=False)


def yaml_scalar(value: Any) -> str:
    """The YAML text of a value on one line (for ``--set KEY=VALUE``)."""
    text = yaml.safe_dump(value, default_flow_style=True, allow_unicode=True, width=1 << 20).strip()
    return text[:-4].strip() if text.endswith("\n...") or text.endswith(" ...") else text.removesuffix("...")


# ------------------------------------------------------------------------------------------------------------
# Text and bytes
# ------------------------------------------------------------------------------------------------------------

SNIPPETS = ["[", "{", "]", "}", "[[[", "{{", ": ", ":", "- ", "-", "\t", "\x00", "&a ", "*a", "*undefined",
            "!!python/object/apply:os.system ['true']", "!!binary", "!custom", "\"", "'", "\\", "#", "|", ">",
            "\n  bad: indentation", "\n- a list item", "? ", "%YAML 1.1\n", "---\n", "...\n", "<<: *a\n",
            "\ufeff", "\u2028", "\r", "\x1b[31m", "\ud7ff", "\U0001f600", "key: [1, 2\n", "key: {a: 1\n"]
"""Text spliced into a file: brackets, tabs, NUL, YAML directives, tags, aliases, odd characters."""

WHOLE_DOCUMENTS = [b"", b"\n", b"---\n", b"...\n", b"# only a comment\n", b"null\n", b"~\n", b"42\n",
                   b"3.5\n", b"true\n", b"'a string'\n", b"- a\n- b\n", b"[]\n", b"{}\n", b"a: 1\n---\nb: 2\n",
                   b"!!binary AAAA\n", b"\x00", b"\x00" * 64, b"\xff\xfe\xfd", b"\x1f\x8b\x08\x00garbage",
                   b"PK\x03\x04", b"\xef\xbb\xbf", b"[" * 200 + b"]" * 200,
                   b"a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                   b"c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
                   b"e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\n"]
"""Replacements of a whole file (the last one is a small 'billion laughs' alias bomb: 9^6 leaves)."""

ENCODINGS = ["utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-8-sig", "latin-1", "cp1252", "shift_jis"]


def splice(data: bytes, pos: int, insert: bytes, remove: int = 0) -> bytes:
    pos = min(pos, len(data))
    return data[:pos] + insert + data[pos + remove:]


def lines_of(data: bytes) -> list[bytes]:
    return data.split(b"\n")


def tabify(data: bytes, line: int) -> bytes:
    """Turn the indentation of a line into a tab (YAML forbids tabs in indentation)."""
    lines = lines_of(data)
    if not lines:
        return data
    i = line % len(lines)
    stripped = lines[i].lstrip(b" ")
    lines[i] = b"\t" * max(1, (len(lines[i]) - len(stripped)) // 2) + stripped
    return b"\n".join(lines)


def reindent(data: bytes, line: int, delta: int) -> bytes:
    lines = lines_of(data)
    i = line % len(lines)
    lines[i] = b" " * delta + lines[i] if delta > 0 else lines[i][-delta:]
    return b"\n".join(lines)


def drop_line(data: bytes, line: int) -> bytes:
    lines = lines_of(data)
    del lines[line % len(lines)]
    return b"\n".join(lines)


def duplicate_line(data: bytes, line: int) -> bytes:
    lines = lines_of(data)
    i = line % len(lines)
    lines.insert(i, lines[i])
    return b"\n".join(lines)


def encode(text: str, encoding: str) -> bytes:
    """``text`` with a few non-ASCII characters added, in another encoding."""
    marked = text.replace("description: ", "description: \u00e9\u00e8 ", 1)
    return marked.encode(encoding, errors="replace")


# ------------------------------------------------------------------------------------------------------------
# Memory-trace lines and gzip
# ------------------------------------------------------------------------------------------------------------

BAD_ADDRESSES = ["0x", "0xZZ", "0x-40", "-64", "0x" + "f" * 17, "0x" + "f" * 40, str(2**64), str(2**64 - 1),
                 str(2**63), "1e9", "0x1.8p3", "0b1010", "0o17", "ff", "0X40", "0x_40", "1_000", "+64", "",
                 "\u0660", "0x40\x00", "\u00bd", "NaN", "inf", "9" * 400]
BAD_OPS = ["X", "RD", "WR", "r", "w", "read", "Write", "LOAD", "STORE", "P_MEM_RD", "", "R W", "R\x00", "\u00c9"]
BAD_CYCLES = ["-1", "0x-1", str(2**64), str(2**63), "1.5", "1e3", "abc", "", "9" * 400, "0x" + "f" * 20]


def gzip_bytes(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def corrupt(data: bytes, pos: int, byte: int) -> bytes:
    """Overwrite one byte (a CRC error or an invalid deflate block inside a gzip member)."""
    if not data:
        return bytes([byte])
    i = pos % len(data)
    return data[:i] + bytes([byte if data[i] != byte else (byte + 1) % 256]) + data[i + 1:]
