"""Configuration schema of an NVMe SSD (component kind ``ssd``): its PCIe link, NVMe queues, controller, and the
NAND behind it (channels x dies x planes, page size, tR, tPROG, channel rate), energy and idle power.

Every field has a range (checked strictly: no string or boolean is taken for a number, no ``.inf``/``.nan``) and
a description; cross-field rules (a sector no larger than a page, a capacity of whole pages) are
:func:`ssd_errors`, which the kind reports with the key they concern. The shipped presets
(``archsim/config/presets/storage/``) name the source of each value; docs/storage.md describes the model::

    components:
      ssd0: {impl: ssd, extends: nvme_tlc_pcie4}                # a TLC datacenter drive, PCIe 4.0 x4
      ssd1: {impl: ssd, extends: nvme_znand_pcie3, base: 4TiB}  # a Z-NAND drive above it
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from archsim.cxl.spec import parse_bytes

__all__ = ["PCIE_GENERATIONS", "PCIeLinkSpec", "SSDSpec", "ssd_errors"]

#: PCIe generations an NVMe drive uses: GT/s per lane; all three use the 128b/130b line code (PCI Express Base
#: Specification 3.0 §4.2.2, 4.0 and 5.0 keep it; 6.0's FLIT mode is not modelled here).
PCIE_GENERATIONS: dict[str, int] = {"pcie3": 8, "pcie4": 16, "pcie5": 32}
ENCODING = Fraction(128, 130)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


def _power_of_two(v: int, lo: int, hi: int) -> int:
    if v & (v - 1) or not lo <= v <= hi:
        raise ValueError(f"must be a power of two from {lo} to {hi}")
    return v


class PCIeLinkSpec(_Strict):
    """The drive's PCIe link to the host: lanes at a generation's rate, TLPs of at most ``max_payload_bytes``."""

    generation: Literal["pcie3", "pcie4", "pcie5"] = Field(
        ..., description="pcie3 = 8 GT/s, pcie4 = 16 GT/s, pcie5 = 32 GT/s per lane, each with the 128b/130b "
                         "line code (PCI Express Base Specification)")
    lanes: Literal[1, 2, 4, 8, 16] = Field(..., description="lanes per direction (x1, x2, x4, x8, x16; NVMe "
                                                            "drives are x4, some add-in cards x8)")
    max_payload_bytes: int = Field(
        256, description="Max_Payload_Size negotiated with the root port: the largest data payload of one TLP "
                         "(a power of two, 128 to 4096; servers commonly run 256)")
    tlp_overhead_bytes: int = Field(
        24, ge=0, le=64, description="bytes a TLP adds to its payload on the wire (0 to 64): 4 B framing token "
                                     "with the sequence number + 16 B header (4 DW, 64-bit address) + 4 B "
                                     "LCRC for PCIe 3.0 and later; DLLPs (Ack, flow control) are not counted")
    latency_ns: float = Field(
        250.0, ge=0, le=100_000,
        description="ns each crossing adds after serialisation, each direction (0 to 100 us): PHY, flight, the "
                    "root complex to and from host memory. Assumption: half a DMA read round trip of the order "
                    "of 500 ns (Neugebauer et al., 'Understanding PCIe performance for end host networking', "
                    "SIGCOMM 2018)")

    @field_validator("max_payload_bytes")
    @classmethod
    def _mps(cls, v: int) -> int:
        return _power_of_two(v, 128, 4096)

    @property
    def gt_per_s(self) -> int:
        return PCIE_GENERATIONS[self.generation]

    @property
    def ps_per_byte(self) -> Fraction:
        """Time one byte takes on all lanes of one direction, in ps (exact): 8 / (GT/s x lanes x 128/130)."""
        return Fraction(8000) / (self.gt_per_s * self.lanes * ENCODING)

    @property
    def raw_GBps(self) -> float:
        """Bytes per ns on the wire, each direction, after the line code (TLP overhead included)."""
        return float(1000 / self.ps_per_byte)

    @property
    def payload_GBps(self) -> float:
        """The most data one direction carries per ns: full TLPs of ``max_payload_bytes``."""
        m = self.max_payload_bytes
        return self.raw_GBps * m / (m + self.tlp_overhead_bytes)


class SSDSpec(_Strict):
    """An NVMe SSD: PCIe link, submission/completion queues, controller, NAND channels x dies x planes."""

    base: int = Field(0, ge=0, description="host address of the drive's first byte (an integer or e.g. '4TiB'; "
                                           ">= 0); requests carry host addresses in [base, base + capacity)")
    capacity: int = Field(..., gt=0, description="bytes the drive holds, a whole number of pages (> 0; an "
                                                 "integer or e.g. '3840GB')")
    queue_depth: int = Field(
        ..., ge=1, le=65536, description="commands in flight in the drive (1 to 65536: NVMe's largest queue); "
                                         "a request beyond it waits in the host until a completion frees a slot")
    controller_latency_ns: float = Field(
        ..., ge=0, le=1_000_000, description="ns from a command's arrival to its page reads starting (0 to 1 ms): "
                                             "the doorbell and the fetch of the submission-queue entry, command "
                                             "decode, the FTL lookup; a pipeline delay without occupancy")
    link: PCIeLinkSpec = Field(..., description="the PCIe link to the host")
    channels: int = Field(..., ge=1, le=64, description="NAND channels (1 to 64), each a bus shared by its dies")
    dies_per_channel: int = Field(..., ge=1, le=64, description="dies (ways x dies per package) on each channel "
                                                                 "(1 to 64)")
    planes_per_die: int = Field(..., ge=1, le=16, description="planes in a die (1 to 16)")
    independent_plane_reads: bool = Field(
        False, description="true: each plane senses a page on its own (independent / asynchronous plane reads), "
                           "so a die holds planes_per_die reads at once; false: one read at a time per die")
    page_bytes: int = Field(..., description="bytes of a NAND page (a power of two, 512 to 65536): what one "
                                             "read senses (tR) and one program writes (tPROG)")
    sector_bytes: int = Field(512, description="the logical block (LBA) size: a request moves whole sectors on "
                                               "the channel and the link (a power of two, 512 to page_bytes)")
    tR_us: float = Field(..., gt=0, le=10_000, description="page read time: a die (or plane) is busy sensing "
                                                          "for tR (> 0, at most 10 ms)")
    tPROG_us: float = Field(..., gt=0, le=100_000, description="page program time (> 0, at most 100 ms)")
    channel_rate_MTps: float = Field(..., gt=0, le=100_000, description="transfers per us on a channel's data "
                                                                         "bus (ONFI NV-DDR / Toggle rate; > 0)")
    channel_width_bits: Literal[8, 16] = Field(8, description="data bits per transfer on a channel (8 or 16)")
    channel_transfer: Literal["sectors", "page"] = Field(
        "sectors", description="what a read moves over the channel: the requested sectors (random data out) "
                               "or the whole page")
    read_energy_nJ: float = Field(..., ge=0, le=1e9, description="energy per page read (>= 0 nJ), booked as "
                                                                  "kind read")
    program_energy_nJ: float = Field(..., ge=0, le=1e9, description="energy per page program (>= 0 nJ), booked "
                                                                     "as kind write")
    idle_power_W: float = Field(..., ge=0, le=1000, description="power drawn all the time (0 to 1000 W), booked "
                                                                "as kind background over the run")

    @field_validator("base", "capacity", mode="before")
    @classmethod
    def _byte_counts(cls, v: Any) -> int:
        return parse_bytes(v)

    @field_validator("page_bytes")
    @classmethod
    def _page(cls, v: int) -> int:
        return _power_of_two(v, 512, 65536)

    @field_validator("sector_bytes")
    @classmethod
    def _sector(cls, v: int) -> int:
        return _power_of_two(v, 512, 65536)

    # ------------------------------------------------------------------ derived
    @property
    def end(self) -> int:
        return self.base + self.capacity

    @property
    def dies(self) -> int:
        return self.channels * self.dies_per_channel

    @property
    def read_units(self) -> int:
        """Reads that can sense at once: dies, or dies x planes with independent plane reads."""
        return self.dies * (self.planes_per_die if self.independent_plane_reads else 1)

    @property
    def channel_ps_per_byte(self) -> Fraction:
        """ps one byte takes on a channel's bus (exact): 8 x 10^6 / (MT/s x width bits)."""
        return Fraction(8 * 10**6) / (Fraction(self.channel_rate_MTps) * self.channel_width_bits)

    @property
    def channel_GBps(self) -> float:
        return float(1000 / self.channel_ps_per_byte)


def ssd_errors(spec: SSDSpec) -> list[tuple[tuple, str]]:
    """Cross-field problems as (key path inside the node, message)."""
    errs: list[tuple[tuple, str]] = []
    if spec.sector_bytes > spec.page_bytes:
        errs.append((("sector_bytes",), f"a sector must fit a page: {spec.sector_bytes} > page_bytes "
                                        f"{spec.page_bytes}"))
    if spec.capacity % spec.page_bytes:
        errs.append((("capacity",), f"must be a whole number of {spec.page_bytes} B pages, got {spec.capacity}"))
    return errs
