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


try:  # the compiled fast path for plain lines (archsim/dram/_ctrace.c); _parse_line stays the reference
    from archsim.dram._cchannel import parse_trace_block as _parse_block
except ImportError:  # pragma: no cover - without the extension every line goes through _parse_line
    _parse_block = None

_CHUNK = 1 << 18  # characters read at a time: the reader keeps one chunk, never the whole trace


def _parse_line(line: str, name: str, lineno: int) -> tuple[int, bool, int] | None:
    """One trace line to (address, is_write, earliest cycle or -1); None for blank and comment lines."""
    toks = line.split()
    if not toks or toks[0].startswith("#"):
        return None
    try:
        if toks[0].upper() in ("LD", "ST"):
            if len(toks) != 2:
                raise ValueError
            return _parse_int(toks[1]), _OPS[toks[0].upper()], -1
        if len(toks) not in (2, 3):
            raise ValueError
        is_write = _OPS[toks[1].upper()]
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
    return addr, is_write, cycle


def iter_trace(path: str | Path) -> Iterator[tuple[int, bool, int]]:
    """Yield (address, is_write, earliest cycle or -1) for each request; errors name file:line.

    The file is read in chunks of complete lines; the compiled parser takes the plain lines of a chunk and
    stops before any other line, which :func:`_parse_line` (the reference) handles, so every accepted
    spelling and every error message is the reference's.
    """
    name = str(path)
    try:
        with open_trace(path) as f:
            if _parse_block is None:
                for lineno, line in enumerate(f, 1):
                    rec = _parse_line(line, name, lineno)
                    if rec is not None:
                        yield rec
                return
            lineno = 0  # lines consumed so far
            rest = ""
            while True:
                chunk = f.read(_CHUNK)
                if chunk:
                    text = rest + chunk
                    cut = text.rfind("\n") + 1
                    rest = text[cut:]
                    text = text[:cut]
                else:  # end of file: the last line may lack its newline
                    text = rest + "\n" if rest else ""
                    rest = ""
                pos, end = 0, len(text)
                while pos < end:
                    recs, pos, nlines = _parse_block(text, pos)
                    lineno += nlines
                    yield from recs
                    if pos < end:  # a line for the reference parser
                        eol = text.index("\n", pos) + 1
                        lineno += 1
                        rec = _parse_line(text[pos:eol], name, lineno)
                        if rec is not None:
                            yield rec
                        pos = eol
                if not chunk:
                    break
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise InputError(f"{name}: cannot read trace: {e}") from None
