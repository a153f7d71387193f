"""Memory-trace readers: one request a line, streamed (plain or gzip), never held whole in memory.

Accepted line forms (blank lines and lines starting with ``#`` are skipped):

- Ramulator: ``0x1a2b3c40 R`` / ``0x1a2b3c40 W``, and its load-store form ``LD 0x1a2b3c40`` / ``ST 0x1a2b3c40``
- DRAMsim3: ``0x1a2b3c40 READ 120`` / ``0x1a2b3c40 WRITE 120`` (the third field is the issue cycle)

Addresses are hexadecimal with ``0x`` or decimal. A cycle column, when present, is the earliest cycle (of the
memory clock) at which the request may be offered.

Bounds (each a ``FILE:LINE:`` error): an address is below 2^64, and, when the reader is given the memory's
:class:`AddressSpace`, inside it (below the capacity of a DRAM, inside a window of a memory map); a cycle is at
most :data:`MAX_TRACE_CYCLE` (2^40, about 11 minutes of a 1.6 GHz memory clock). A file that cannot be read
(a corrupt gzip stream, say) is a ``FILE: cannot read trace: ...`` error.
"""

from __future__ import annotations

import gzip
import zlib
from bisect import bisect_right
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from archsim.config import InputError

MAX_TRACE_CYCLE = 1 << 40
"""The largest cycle a trace line may give (2^40)."""

_ADDR_BITS = 64


@dataclass(frozen=True)
class AddressSpace:
    """The addresses a memory serves: sorted, non-overlapping windows ``[lo, hi)``.

    ``AddressSpace.of_capacity(n)`` is one memory of ``n`` bytes at address 0 (a DRAM); a memory map has a
    window per component (local DRAM, each CXL window).
    """

    windows: tuple[tuple[int, int], ...]
    map_name: str = ""

    @classmethod
    def of_capacity(cls, capacity: int) -> AddressSpace:
        return cls(((0, int(capacity)),))

    @classmethod
    def of_windows(cls, windows: Iterable[tuple[int, int]], map_name: str = "") -> AddressSpace:
        merged: list[tuple[int, int]] = []
        for lo, hi in sorted((int(lo), int(hi)) for lo, hi in windows if hi > lo):
            if merged and lo <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(hi, merged[-1][1]))
            else:
                merged.append((lo, hi))
        return cls(tuple(merged), map_name)

    @property
    def single(self) -> bool:
        """One window from address 0: the capacity of one memory."""
        return len(self.windows) == 1 and self.windows[0][0] == 0

    def contains(self, addr: int) -> bool:
        i = bisect_right(self.windows, (addr, 1 << 80)) - 1
        return i >= 0 and addr < self.windows[i][1]

    def problem(self, addr: int) -> str:
        """Why ``addr`` is refused (it is not in the space)."""
        if self.single:
            cap = self.windows[0][1]
            return f"address 0x{addr:x} is beyond the memory's capacity of {cap} bytes ({_size(cap)})"
        shown = ", ".join(f"0x{lo:x}-0x{hi - 1:x}" for lo, hi in self.windows[:4])
        more = f" and {len(self.windows) - 4} more" if len(self.windows) > 4 else ""
        where = f"the memory map{' ' + self.map_name if self.map_name else ''}"
        return f"address 0x{addr:x} is outside every window of {where} ({shown}{more})"


def _size(n: int) -> str:
    for unit, shift in (("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift:
            return f"{n / (1 << shift):g} {unit}"
    return f"{n} B"

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
_MAX_LINE = 1 << 20  # the longest line read (a trace line is a few dozen characters)


def _parse_line(line: str, name: str, lineno: int,
                space: AddressSpace | None = None) -> tuple[int, bool, int] | None:
    """One trace line to (address, is_write, earliest cycle or -1); None for blank and comment lines.

    Raises :class:`InputError` naming ``name:lineno`` for a malformed line, an address of 2^64 or more or
    outside ``space``, and a cycle above :data:`MAX_TRACE_CYCLE`."""
    toks = line.split()
    if not toks or toks[0].startswith("#"):
        return None
    try:
        if toks[0].upper() in ("LD", "ST"):
            if len(toks) != 2:
                raise ValueError
            addr, is_write, cycle = _parse_int(toks[1]), _OPS[toks[0].upper()], -1
        else:
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
    if addr >> _ADDR_BITS:
        raise InputError(f"{name}:{lineno}: address 0x{addr:x} does not fit in 64 bits")
    if space is not None and not space.contains(addr):
        raise InputError(f"{name}:{lineno}: {space.problem(addr)}")
    if cycle > MAX_TRACE_CYCLE:
        raise InputError(f"{name}:{lineno}: cycle {cycle} is beyond the limit of 2^40 = {MAX_TRACE_CYCLE} cycles")
    return addr, is_write, cycle


def iter_trace(path: str | Path, space: AddressSpace | None = None) -> Iterator[tuple[int, bool, int]]:
    """Yield (address, is_write, earliest cycle or -1) for each request; errors name file:line.

    ``space``: the addresses the memory serves (see :func:`archsim.system.trace_driver.address_space`); an
    address outside it is an error. The file is read in chunks of complete lines; the compiled parser takes
    the plain, in-bounds lines of a chunk and stops before any other line, which :func:`_parse_line` (the
    reference) handles, so every accepted spelling and every error message is the reference's.
    """
    name = str(path)
    # the compiled parser checks one window (the first; for a DRAM its capacity): addresses in the others,
    # if any, take the reference parser, which checks them all
    lo, hi = space.windows[0] if space is not None and space.windows else (0, 0)
    hi = 0 if hi >> _ADDR_BITS else hi  # 0: no upper bound (every address the compiled parser reads is < 2^64)
    try:
        with open_trace(path) as f:
            if _parse_block is None:
                for lineno, line in enumerate(f, 1):
                    rec = _parse_line(line, name, lineno, space)
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
                    recs, pos, nlines = _parse_block(text, pos, lo, hi, MAX_TRACE_CYCLE)
                    lineno += nlines
                    yield from recs
                    if pos < end:  # a line for the reference parser
                        eol = text.index("\n", pos) + 1
                        lineno += 1
                        rec = _parse_line(text[pos:eol], name, lineno, space)
                        if rec is not None:
                            yield rec
                        pos = eol
                if len(rest) > _MAX_LINE:  # no line break in sight: not a text trace; do not hold it all
                    raise InputError(f"{name}:{lineno + 1}: a line longer than {_MAX_LINE} characters: "
                                     "not a text trace?")
                if not chunk:
                    break
    except (OSError, EOFError, gzip.BadGzipFile, zlib.error) as e:
        raise InputError(f"{name}: cannot read trace: {_one_line(e)}") from None


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split()) or type(e).__name__
    return text if len(text) <= 160 else text[:157] + "..."
