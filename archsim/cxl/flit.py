"""CXL.mem flit packing: how many link bytes each message costs, computed from the flit formats.

Two flit formats (CXL 3.2 specification; section numbers below are that document's):

* **68B flit** (CXL 1.1/2.0, §4.2 and §6.2.2): 2 B Protocol ID (physical layer) + 4 slots of 16 B + 2 B CRC.
  Slot 0 of a *protocol flit* is the header slot (H-slot): 32 of its 128 bits carry the flit header, so it holds
  headers only (96 bits); slots 1-3 are generic slots (G-slots) that hold headers or one 16 B data chunk. An
  *all-data flit* has four 16 B data chunks and no header (§4.2.2). Data of a message follows its header in the
  next data-capable slots, rolling over into following flits (§4.2.5).
* **Standard 256B flit** (CXL 3.x, §4.3.2 and §6.2.3.1.1): 2 B flit header + 240 B flit data + 8 B CRC + 6 B FEC.
  The 240 B of flit data are slot 0, a 14 B H-slot (headers only), slots 1-14, fourteen 16 B G-slots (headers
  or data), and 2 B of credit return (CRD, §4.3.5). There are no all-data flits; data chunks go in G-slots only.

Header packing per slot, from the slot-format tables:

=============  ========================  ==================================  ===========================
message        68B H-slot / G-slot       256B H-slot / G-slot                data (16 B chunks)
=============  ========================  ==================================  ===========================
M2S Req        1 (H5) / 1 (G4)           1 (H4) / 1 (G4)                     0
M2S RwD        1 (H4) / 1 (G5)           1 (H14) / 1 (G14)                   4
S2M NDR        2 (H4) / 2 (G5)           2 (H7) / 3 (G7)                     0
S2M DRS        2 (H5) / 3 (G6)           2 (H15) / 3 (G15)                   4
=============  ========================  ==================================  ===========================

(68B: Tables 4-7 and 4-8; 256B: Tables 4-14 and 4-15.) Maximum messages of one type per 68B flit (§4.2.5):
M2S Req 2, M2S RwD header 1, S2M NDR 2, S2M DRS header 3. Maximum per 128 B group of a 256B flit (Table 4-18):
M2S Req 4, M2S RwD 2, S2M NDR 6, S2M DRS 3; the rolling groups "slots 0-7" and "slots 8-14" split a flit, so
a 256B flit carries at most twice these.

**Packing model (steady state of a long homogeneous stream).** For each message type the model computes the
messages per flit ``x`` that a long stream of that type alone reaches, and charges each message ``1/x`` of a
flit (its *share*):

* 68B, message with ``d`` data chunks: each header goes in the H-slot of a protocol flit (``h_H`` per slot) and
  its data fills the G-slots of that flit and the all-data flits after it, so a message costs ``d + 1/h_H`` slots
  of 4 per flit: ``x = min(cap, 4 / (d + 1/h_H))``. Without data ``x = min(cap, h_H + 3 h_G)``.
  A stream of 64 B reads (S2M DRS): H5 carries 2 headers, then 8 data chunks follow: 9 slots per 2 reads,
  ``x = 8/9``; it also follows the rollover rules of §4.2.5 (a 9-flit pattern P A P A P A P A A carries 8 reads).
* 256B, message with ``d`` data chunks: ``h_H`` headers ride in the H-slot, the others take G-slots (``h_G``
  each) next to the data: ``d x + (x - h_H)/h_G <= 14``, so ``x = min(cap, (14 h_G + h_H) / (d h_G + 1))``
  (or ``14/d`` when that is below ``h_H``). Without data ``x = min(cap, h_H + 14 h_G)``.
  A stream of 64 B reads: ``x = (42 + 2)/(12 + 1) = 44/13`` DRS per flit.

Abstracted away: mixing of message types in one flit (a mixed stream is charged the sum of each message's share
in a homogeneous stream, so co-packing gains are not modelled), CXL.cache and BISnp/BIRsp traffic, control
flits (LLCRD, RETRY, IDE MACs), byte-enable and trailer slots, 32 B transfers (68B), the latency-optimized 256B
flit, link-layer retry and replay, the restriction on data headers in H-slots (§4.3.4), and the PCIe physical
layer's SKP ordered sets.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from types import MappingProxyType
from typing import Literal

__all__ = [
    "M2S_REQ", "M2S_RWD", "S2M_NDR", "S2M_DRS", "MESSAGES", "DATA_CHUNK_BYTES", "LINE_BYTES",
    "MessagePacking", "FlitFormat", "FLIT_68B", "FLIT_256B", "FLIT_FORMATS", "flit_format",
]

#: CXL.mem message types (§3.3): master-to-subordinate request (MemRd, no data), request with data (MemWr with
#: a 64 B line), subordinate-to-master no-data response (write completion Cmp) and data response (MemData).
M2S_REQ = "m2s_req"
M2S_RWD = "m2s_rwd"
S2M_NDR = "s2m_ndr"
S2M_DRS = "s2m_drs"
MESSAGES: tuple[str, ...] = (M2S_REQ, M2S_RWD, S2M_NDR, S2M_DRS)

DATA_CHUNK_BYTES = 16  #: one data chunk fills one 16 B G-slot (68B and 256B flits)
LINE_BYTES = 64  #: CXL.mem moves 64 B cache lines (4 data chunks)


@dataclass(frozen=True)
class MessagePacking:
    """How one message type packs into a flit format.

    ``h_slot``/``g_slot``: headers of this type per H-slot / G-slot; ``data_chunks``: 16 B data slots that follow
    the header; ``max_per_flit``: the format's limit on messages of this type per flit.
    """

    h_slot: int
    g_slot: int
    data_chunks: int
    max_per_flit: int


@dataclass(frozen=True)
class FlitFormat:
    """A CXL.cachemem flit format and its steady-state message packing (see the module docstring)."""

    name: str
    flit_bytes: int  #: bytes of one flit on the wire, physical-layer framing, CRC and FEC included
    g_slots: int  #: 16 B generic slots per protocol flit
    all_data_flits: bool  #: True for 68B (a flit of 4 data chunks without header slot)
    packing: MappingProxyType  #: message type -> MessagePacking
    layout: str  #: the byte layout, for documentation

    def messages_per_flit(self, msg: str) -> Fraction:
        """Messages of type ``msg`` per flit in a long stream of that type alone (exact)."""
        p: MessagePacking = self.packing[msg]
        d, h_h, h_g, cap = p.data_chunks, p.h_slot, p.g_slot, p.max_per_flit
        if self.all_data_flits:  # 68B: 4 slots per flit, headers in the H-slot of protocol flits
            slots = self.g_slots + 1
            x = Fraction(h_h + self.g_slots * h_g) if d == 0 else Fraction(slots) / (d + Fraction(1, h_h))
        elif d == 0:  # 256B without data
            x = Fraction(h_h + self.g_slots * h_g)
        else:  # 256B with data: d x + (x - h_H)/h_G <= g_slots
            x = Fraction(self.g_slots * h_g + h_h, d * h_g + 1)
            if Fraction(self.g_slots, d) <= h_h:
                x = Fraction(self.g_slots, d)
        return min(Fraction(cap), x)

    def share(self, msg: str) -> Fraction:
        """Flits charged to one message of type ``msg``: ``1 / messages_per_flit``."""
        return 1 / self.messages_per_flit(msg)

    def wire_bytes(self, msg: str) -> Fraction:
        """Bytes on the wire charged to one message (its share of a flit, before line encoding)."""
        return self.flit_bytes * self.share(msg)

    def flits_alone(self, msg: str) -> int:
        """Whole flits that carry one message of type ``msg`` on an otherwise idle link."""
        return math.ceil(self.share(msg))


_M = MessagePacking

#: CXL 2.0 68B flit: 2 B Protocol ID + 64 B (4 x 16 B slots) + 2 B CRC (§4.2.2, §6.2.1).
FLIT_68B = FlitFormat(
    name="68B",
    flit_bytes=68,
    g_slots=3,
    all_data_flits=True,
    packing=MappingProxyType({
        M2S_REQ: _M(h_slot=1, g_slot=1, data_chunks=0, max_per_flit=2),
        M2S_RWD: _M(h_slot=1, g_slot=1, data_chunks=4, max_per_flit=1),
        S2M_NDR: _M(h_slot=2, g_slot=2, data_chunks=0, max_per_flit=2),
        S2M_DRS: _M(h_slot=2, g_slot=3, data_chunks=4, max_per_flit=3),
    }),
    layout="2 B protocol ID | slot 0: H-slot (4 B flit header + 12 B) | slots 1-3: 3 x 16 B G-slots | 2 B CRC",
)

#: CXL 3.x standard 256B flit: 2 B header + 14 B H-slot + 14 x 16 B G-slots + 2 B CRD + 8 B CRC + 6 B FEC.
FLIT_256B = FlitFormat(
    name="256B",
    flit_bytes=256,
    g_slots=14,
    all_data_flits=False,
    packing=MappingProxyType({
        M2S_REQ: _M(h_slot=1, g_slot=1, data_chunks=0, max_per_flit=8),
        M2S_RWD: _M(h_slot=1, g_slot=1, data_chunks=4, max_per_flit=4),
        S2M_NDR: _M(h_slot=2, g_slot=3, data_chunks=0, max_per_flit=12),
        S2M_DRS: _M(h_slot=2, g_slot=3, data_chunks=4, max_per_flit=6),
    }),
    layout="2 B flit header | slot 0: 14 B H-slot | slots 1-14: 14 x 16 B G-slots | 2 B CRD | 8 B CRC | 6 B FEC",
)

FLIT_FORMATS: MappingProxyType = MappingProxyType({68: FLIT_68B, 256: FLIT_256B})


def flit_format(flit_bytes: Literal[68, 256] | int) -> FlitFormat:
    """The flit format of ``flit_bytes`` (68 or 256)."""
    try:
        return FLIT_FORMATS[flit_bytes]
    except KeyError:
        raise ValueError(f"no CXL flit format of {flit_bytes} bytes (known: 68, 256)") from None
