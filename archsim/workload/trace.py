"""Memory-trace readers: one request a line, streamed (plain or gzip), never held whole in memory.

Accepted line forms (blank lines and lines starting with ``#`` are skipped):

- Ramulator: ``0x1a2b3c40 R`` / ``0x1a2b3c40 W``, and its load-store form ``LD 0x1a2b3c40`` / ``ST 0x1a2b3c40``
- DRAMsim3: ``0x1a2b3c40 READ 120`` / ``0x1a2b3c40 WRITE 120`` (the third field is the issue cycle)

Addresses are hexadecimal with ``0x`` or decimal. A cycle column, when present, is the earliest cycle (of the
memory clock) at which the request may be offered.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path

from archsim.config import InputError

_OPS = {"R": False, "READ": False, "LD": False, "W": True, "WRITE": True, "ST": True}


def _parse_int(tok: str) -> int:
    t = tok.lower()
    return int(t, 16) if t.startswith("0x") else int(t)


def open_trace(path: str | Path):
    """Open a trace for text reading; gzip is recognised by its magic bytes, not the file name."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: trace file not found")
    with open(p, "rb") as f:
        magic = f.read(2)
    if magic == b"\x1f\x8b":
        return gzip.open(p, "rt", encoding="ascii", errors="replace")
    return open(p, encoding="ascii", errors="replace")


def iter_trace(path: str | Path) -> Iterator[tuple[int, bool, int]]:
    """Yield (address, is_write, earliest cycle or -1) for each request; errors name file:line."""
    name = str(path)
    ops = _OPS
    try:
        with open_trace(path) as f:
            for lineno, line in enumerate(f, 1):
                toks = line.split()
                if not toks or toks[0].startswith("#"):
                    continue
                try:
                    if toks[0].upper() in ("LD", "ST"):
                        if len(toks) != 2:
                            raise ValueError
                        yield _parse_int(toks[1]), ops[toks[0].upper()], -1
                        continue
                    if len(toks) not in (2, 3):
                        raise ValueError
                    is_write = ops[toks[1].upper()]
                    addr = _parse_int(toks[0])
                    cycle = _parse_int(toks[2]) if len(toks) == 3 else -1
                    if addr < 0 or (len(toks) == 3 and cycle < 0):
                        raise ValueError
                except (ValueError, KeyError):
                    shown = line.strip()
                    if len(shown) > 60:
                        shown = shown[:57] + "..."
                    raise InputError(
                        f"{name}:{lineno}: malformed trace line {shown!r}: expected 'ADDR R|W', "
                        "'ADDR READ|WRITE CYCLE' or 'LD|ST ADDR'") from None
                yield addr, is_write, cycle
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise InputError(f"{name}: cannot read trace: {e}") from None
