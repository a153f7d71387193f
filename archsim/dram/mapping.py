"""Address mapping: a physical byte address to (channel, rank, bank group, bank, row, column).

The field order is written most significant first, in DRAMsim3's spelling (``rochrababgco``) or Ramulator's
(``RoBaRaCoCh``, where ``Ba`` is the bank and bank-group bits together, bank the more significant, as
Ramulator 2's linear mappers lay them out, unless a separate ``Bg`` is given). Widths come from the organisation; the lowest log2(bytes per burst) bits are the
offset inside a burst, and the column field counts bursts (columns / burst length), as both references do.
Bits above the top field are ignored (addresses wrap), as in DRAMsim3.
"""

from __future__ import annotations

import re

from archsim.dram.spec import Mapping, Organisation

_FIELDS = ("ch", "ra", "bg", "ba", "ro", "co")


def _log2(v: int) -> int:
    return v.bit_length() - 1


def parse_order(order: str) -> list[str]:
    """Field tokens, most significant first, in DRAMsim3 names; raises ValueError naming what is wrong."""
    if re.fullmatch(r"(?:[a-z]{2})+", order):
        toks = [order[i:i + 2] for i in range(0, len(order), 2)]
        out = toks
    elif re.fullmatch(r"(?:[A-Z][a-z])+", order):
        toks = re.findall(r"[A-Z][a-z]", order)
        names = {"Ch": "ch", "Ra": "ra", "Bg": "bg", "Ba": "ba", "Ro": "ro", "Co": "co"}
        out = []
        has_bg = "Bg" in toks
        for t in toks:
            if t not in names:
                raise ValueError(f"unknown field {t!r} in {order!r} (fields: Ro, Ch, Ra, Bg, Ba, Co)")
            if t == "Ba" and not has_bg:
                out += ["ba", "bg"]  # Ramulator's bank field: bank bits above bank-group bits
            else:
                out.append(names[t])
    else:
        raise ValueError(f"{order!r} is neither DRAMsim3 (e.g. rochrababgco) nor Ramulator (e.g. RoBaRaCoCh) form")
    for t in out:
        if t not in _FIELDS:
            raise ValueError(f"unknown field {t!r} in {order!r} (fields: {', '.join(_FIELDS)})")
    dup = {t for t in out if out.count(t) > 1}
    if dup:
        raise ValueError(f"field {sorted(dup)[0]!r} appears twice in {order!r}")
    missing = [t for t in _FIELDS if t not in out]
    if missing:
        raise ValueError(f"{order!r} lacks field(s) {', '.join(missing)}; all of {', '.join(_FIELDS)} are needed")
    return out


class AddressMapper:
    """Decodes addresses with precomputed shifts and masks (a hot-path helper, no per-call allocation)."""

    __slots__ = ("offset_bits", "widths", "pos", "order", "xor_bank", "total_bits",
                 "ch_s", "ch_m", "ra_s", "ra_m", "bg_s", "bg_m", "ba_s", "ba_m", "ro_s", "ro_m", "co_s", "co_m")

    def __init__(self, org: Organisation, mapping: Mapping) -> None:
        self.order = parse_order(mapping.order)
        self.offset_bits = _log2(org.access_bytes)
        self.widths = {
            "ch": _log2(org.logical_channels), "ra": _log2(org.ranks), "bg": _log2(org.bankgroups),
            "ba": _log2(org.banks_per_group), "ro": _log2(org.rows),
            "co": _log2(org.columns) - _log2(org.burst_length),
        }
        self.pos: dict[str, int] = {}
        p = self.offset_bits
        for t in reversed(self.order):
            self.pos[t] = p
            p += self.widths[t]
        self.total_bits = p
        self.xor_bank = mapping.xor_bank
        for t in _FIELDS:
            setattr(self, f"{t}_s", self.pos[t])
            setattr(self, f"{t}_m", (1 << self.widths[t]) - 1)

    @property
    def capacity_bytes(self) -> int:
        return 1 << self.total_bits

    def decode(self, addr: int) -> tuple[int, int, int, int, int, int]:
        """(channel, rank, bank group, bank, row, column-burst) of a byte address."""
        ro = (addr >> self.ro_s) & self.ro_m
        bg = (addr >> self.bg_s) & self.bg_m
        ba = (addr >> self.ba_s) & self.ba_m
        if self.xor_bank:
            ba ^= ro & self.ba_m
            bg ^= (ro >> self.widths["ba"]) & self.bg_m
        return ((addr >> self.ch_s) & self.ch_m, (addr >> self.ra_s) & self.ra_m, bg, ba, ro,
                (addr >> self.co_s) & self.co_m)

    def encode(self, ch: int, ra: int, bg: int, ba: int, ro: int, co: int) -> int:
        """Inverse of :meth:`decode` (used by tests and workload layout)."""
        if self.xor_bank:
            ba ^= ro & self.ba_m
            bg ^= (ro >> self.widths["ba"]) & self.bg_m
        return ((ch << self.ch_s) | (ra << self.ra_s) | (bg << self.bg_s) | (ba << self.ba_s)
                | (ro << self.ro_s) | (co << self.co_s))

    def decode_array(self, addr):
        """:meth:`decode` of a numpy array of addresses (int64): six arrays."""
        ro = (addr >> self.ro_s) & self.ro_m
        bg = (addr >> self.bg_s) & self.bg_m
        ba = (addr >> self.ba_s) & self.ba_m
        if self.xor_bank:
            ba = ba ^ (ro & self.ba_m)
            bg = bg ^ ((ro >> self.widths["ba"]) & self.bg_m)
        return ((addr >> self.ch_s) & self.ch_m, (addr >> self.ra_s) & self.ra_m, bg, ba, ro,
                (addr >> self.co_s) & self.co_m)

    def encode_array(self, ch, ra, bg, ba, ro, co):
        """:meth:`encode` of numpy arrays."""
        if self.xor_bank:
            ba = ba ^ (ro & self.ba_m)
            bg = bg ^ ((ro >> self.widths["ba"]) & self.bg_m)
        return ((ch << self.ch_s) | (ra << self.ra_s) | (bg << self.bg_s) | (ba << self.ba_s)
                | (ro << self.ro_s) | (co << self.co_s))
