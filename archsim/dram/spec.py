"""Configuration schema of the ``dram:`` section: organisation, timing, power, mapping, controller.

A DRAM standard is mostly data (as in Ramulator 2): the presets under ``archsim/config/presets/dram/`` give the
organisation, the JEDEC timing set in clock cycles, the IDD currents, and the table of timing constraints
("at level L, command B may follow command A after N cycles"). The controller code is generic.

What this schema abstracts away: on-die ECC, CRC/DBI, preamble training, temperature-dependent refresh rates,
power-down modes (the controller never enters them, as in the reference configurations).
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from archsim.dram.standard import COMMANDS, eval_delay


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


def _pow2(name: str, v: int) -> int:
    if v < 1 or (v & (v - 1)) != 0:
        raise ValueError(f"must be a power of two, got {v}")
    return v


MAX_CYCLES = 1 << 24
"""Largest timing parameter or constraint delay, in clock cycles (16.7M; JEDEC's largest, nREFI, is about 34k):
past it, times in the engine's 64-bit picoseconds overflow (a fuzzed nRCD of 2^62 was an OverflowError)."""

MAX_TCK_PS = 1_000_000
"""Longest clock period: 1 us (a 1 MHz memory clock)."""

ORG_MAX = {"channels": 4096, "pseudo_channels": 64, "ranks": 64, "bankgroups": 64, "banks_per_group": 64,
           "rows": 1 << 24, "columns": 1 << 20, "device_width": 1 << 12, "bus_width": 1 << 14,
           "burst_length": 1 << 10}
"""Largest value of each organisation field: far beyond any DRAM or HBM part, small enough that a system of
them is built in bounded time and memory (a fuzzed 2^62 channels hung; 2^64 ranks was an OverflowError)."""

MAX_QUEUE = 1 << 16
"""Largest controller queue (entries) and row-hit cap."""


class Organisation(_Strict):
    """Geometry of one memory system built from identical channels."""

    channels: int = Field(1, description="independent channels (each with its own controller)")
    pseudo_channels: int = Field(
        1, description="HBM pseudo-channels per channel; each is scheduled as its own channel")
    ranks: int = Field(1, description="ranks per (pseudo-)channel")
    bankgroups: int = Field(4, description="bank groups per rank (1 = no bank groups)")
    banks_per_group: int = Field(4, description="banks per bank group")
    rows: int = Field(65536, description="rows per bank")
    columns: int = Field(1024, description="columns per row, each device_width bits wide")
    device_width: int = Field(8, description="data pins per device (x4/x8/x16/x128)")
    bus_width: int = Field(64, description="data bus width of one (pseudo-)channel in bits")
    burst_length: int = Field(8, description="beats per column access (BL)")

    @field_validator("channels", "pseudo_channels", "ranks", "bankgroups", "banks_per_group", "rows",
                     "columns", "device_width", "bus_width", "burst_length")
    @classmethod
    def _powers_of_two(cls, v: int, info: ValidationInfo) -> int:
        _pow2("", v)
        top = ORG_MAX[info.field_name]
        if v > top:
            raise ValueError(f"must be at most {top}, got {v}")
        return v

    @model_validator(mode="after")
    def _geometry(self) -> Organisation:
        if self.bus_width < self.device_width:
            raise ValueError(f"bus_width {self.bus_width} is narrower than device_width {self.device_width}")
        if self.columns < self.burst_length:
            raise ValueError(f"columns {self.columns} fewer than one burst of {self.burst_length}")
        return self

    @property
    def banks(self) -> int:
        return self.bankgroups * self.banks_per_group

    @property
    def devices_per_rank(self) -> int:
        return self.bus_width // self.device_width

    @property
    def access_bytes(self) -> int:
        """Bytes moved by one column command (one burst on the whole bus)."""
        return self.bus_width // 8 * self.burst_length

    @property
    def logical_channels(self) -> int:
        return self.channels * self.pseudo_channels

    @property
    def capacity_bytes(self) -> int:
        row_bytes = self.columns * self.device_width // 8 * self.devices_per_rank
        return row_bytes * self.rows * self.banks * self.ranks * self.logical_channels


TIMING_NAMES = (
    "nCL", "nCWL", "nRCD", "nRCDRD", "nRCDWR", "nRP", "nRAS", "nRC", "nWR", "nRTP", "nCCD_S", "nCCD_L",
    "nRRD_S", "nRRD_L", "nFAW", "nWTR_S", "nWTR_L", "nRFC", "nREFI", "nRTRS", "nAL", "nBL", "nPPD",
)


class Timing(_Strict):
    """JEDEC timing parameters in clock cycles of ``tCK_ps``.

    ``nBL`` is the data-bus occupancy of one burst in clock cycles (BL/2 for DDR signalling); it defaults to
    ``burst_length / 2``. ``nRC`` defaults to ``nRAS + nRP``; ``nRCDRD``/``nRCDWR`` default to ``nRCD``.
    """

    tCK_ps: int = Field(..., description="clock period in picoseconds (at most 1 us)")
    nCL: int
    nCWL: int
    nRCD: int
    nRCDRD: int | None = None
    nRCDWR: int | None = None
    nRP: int
    nRAS: int
    nRC: int | None = None
    nWR: int
    nRTP: int
    nCCD_S: int
    nCCD_L: int
    nRRD_S: int
    nRRD_L: int
    nFAW: int
    nWTR_S: int
    nWTR_L: int
    nRFC: int
    nREFI: int
    nRTRS: int = 1
    nAL: int = 0
    nBL: int | None = None
    nPPD: int = 0

    @field_validator("tCK_ps", "nCL", "nCWL", "nRCD", "nRP", "nRAS", "nWR", "nRTP", "nCCD_S", "nCCD_L",
                     "nRRD_S", "nRRD_L", "nFAW", "nWTR_S", "nWTR_L", "nRFC", "nREFI")
    @classmethod
    def _positive(cls, v: int, info: ValidationInfo) -> int:
        if not isinstance(v, int) or v <= 0:
            raise ValueError("must be a positive integer")
        top = MAX_TCK_PS if info.field_name == "tCK_ps" else MAX_CYCLES
        if v > top:
            raise ValueError(f"must be at most {top}{' ps (a 1 MHz clock)' if top == MAX_TCK_PS else ' cycles'}, "
                             f"got {v}")
        return v

    @field_validator("nRTRS", "nAL", "nPPD", "nRC", "nRCDRD", "nRCDWR", "nBL")
    @classmethod
    def _non_negative(cls, v: int | None) -> int | None:
        if v is not None and v < 0:
            raise ValueError("must be a non-negative integer")
        if v is not None and v > MAX_CYCLES:
            raise ValueError(f"must be at most {MAX_CYCLES} cycles, got {v}")
        return v

    def resolved(self, burst_length: int) -> dict[str, int]:
        """All timing names with defaults filled in (the namespace constraint expressions see)."""
        d = self.model_dump()
        d["nRC"] = d["nRC"] if d["nRC"] is not None else d["nRAS"] + d["nRP"]
        d["nRCDRD"] = d["nRCDRD"] if d["nRCDRD"] is not None else d["nRCD"]
        d["nRCDWR"] = d["nRCDWR"] if d["nRCDWR"] is not None else d["nRCD"]
        d["nBL"] = d["nBL"] if d["nBL"] is not None else burst_length // 2
        return d


class Power(_Strict):
    """Supply voltages and data-sheet currents (mA per device) of the VDD domain (IDD) and the VPP domain (IPP).

    Per-command energies follow the Micron / DRAMPower method, domain by domain (see
    :mod:`archsim.dram.power`). The VPP (wordline pump) domain is optional: with ``VPP`` 0 and no IPP currents
    (the default) only VDD is booked, exactly as before it was modelled.

    ``rho``: DRAMPower's bank-wise power factor. A data sheet gives the active-standby current IDD3N with all
    banks open; ``rho`` is the fraction of the increment IDD3N - IDD2N drawn as soon as any bank is open, the
    rest being drawn bank by bank, (IDD3N - IDD2N)(1 - rho)/banks per open bank. 1 (the default): the whole
    increment is rank-level, the classic model of Micron's technical notes and DRAMsim3.

    ``energy_time_basis``: ``ns`` books physical energy (mA x V x ns = pJ). ``cycle`` books mA x V x cycles
    as pJ, which is what DRAMsim3 reports (its energy figures omit the tCK factor); the DRAMsim3 validation
    configurations set it so their totals compare like for like.
    """

    VDD: float = 1.2
    IDD0: float
    IDD2P: float
    IDD2N: float
    IDD3P: float
    IDD3N: float
    IDD4R: float
    IDD4W: float
    IDD5AB: float
    IDD6x: float = 0.0
    VPP: float = Field(0.0, ge=0, description="wordline (pump) supply in V: DDR4 2.5, DDR5 1.8; 0: the VPP "
                                              "domain is not modelled (no IPP currents may be given)")
    IPP0: float = Field(0.0, ge=0, description="VPP current of the one-bank ACT-PRE loop (as IDD0)")
    IPP2N: float = Field(0.0, ge=0, description="VPP current in precharge standby (as IDD2N)")
    IPP3N: float = Field(0.0, ge=0, description="VPP current in active standby (as IDD3N)")
    IPP4R: float = Field(0.0, ge=0, description="VPP current of continuous reads (as IDD4R)")
    IPP4W: float = Field(0.0, ge=0, description="VPP current of continuous writes (as IDD4W)")
    IPP5AB: float = Field(0.0, ge=0, description="VPP current of all-bank refresh (as IDD5AB; IPP5B in DDR5 "
                                                 "data sheets)")
    rho: float = Field(1.0, ge=0, le=1, description="DRAMPower bank-wise power factor: the share of IDD3N - "
                                                    "IDD2N (and IPP3N - IPP2N) drawn once any bank is open; the "
                                                    "rest is drawn per open bank. 1: rank-level (classic)")
    energy_time_basis: Literal["ns", "cycle"] = "ns"
    io_energy_pJ_per_bit: float = Field(
        0.0, ge=0, description="energy per data bit moved over the channel between controller and DRAM "
                               "(I/O drivers and termination; not in IDD currents). 0: not booked")
    act_energy_pJ: float | None = Field(
        None, gt=0, description="energy of one ACT-PRE pair in pJ, replacing the IDD0-based value (e.g. a "
                                "paper's CACTI-3DD figure: RecNMP Table I, 2.1 nJ); absent: from the IDDs")
    column_energy_pJ_per_bit: float | None = Field(
        None, gt=0, description="energy per data bit of a RD or WR burst in the array, replacing the "
                                "IDD4R/IDD4W-based value (RecNMP Table I: 14 pJ/bit); absent: from the IDDs")

    @model_validator(mode="after")
    def _currents(self) -> Power:
        for k in ("VDD", "IDD0", "IDD2N", "IDD3N", "IDD4R", "IDD4W", "IDD5AB"):
            if getattr(self, k) <= 0:
                raise ValueError(f"{k} must be positive, got {getattr(self, k)}")
        return self

    @property
    def ipp_given(self) -> bool:
        """Whether any VPP-domain current is non-zero."""
        return any(getattr(self, k) for k in IPP_NAMES)


#: The VPP-domain currents, in the order of their VDD counterparts.
IPP_NAMES = ("IPP0", "IPP2N", "IPP3N", "IPP4R", "IPP4W", "IPP5AB")


class Mapping(_Strict):
    """Physical address to (channel, rank, bank group, bank, row, column).

    ``order`` lists the fields most significant first, either DRAMsim3's two-letter spelling (``rochrababgco``:
    ro, ch, ra, ba, bg, co) or Ramulator's capitalised one (``RoBaRaCoCh``: Ro, Ba, Ra, Co, Ch, with ``Ba``
    covering bank then bank group, as Ramulator 2 lays them out, unless ``Bg`` is given). Field widths come from the organisation; the low
    log2(access bytes) bits are the offset inside one burst. ``xor_bank`` XORs the bank and bank-group bits
    with the low row bits (permutation-based interleaving, Zhang et al., MICRO 2000).
    """

    order: str = "rochrababgco"
    xor_bank: bool = False


class Refresh(_Strict):
    policy: Literal["all_bank", "none"] = "all_bank"
    staggered: bool = Field(True, description="ranks refresh tREFI/ranks apart (DRAMsim3 RANK_LEVEL_STAGGERED)")


class Controller(_Strict):
    """The memory controller of one channel.

    ``queue_structure``: ``per_bank`` = a read transaction queue and a write buffer feeding per-bank command
    queues (DRAMsim3); ``unified`` = one read queue and one write queue scheduled directly by FR-FCFS
    (Ramulator 2's generic controller).
    """

    queue_structure: Literal["per_bank", "unified"] = "per_bank"
    read_queue: int = Field(32, gt=0, le=MAX_QUEUE, description="read transaction queue entries")
    write_queue: int = Field(32, gt=0, le=MAX_QUEUE, description="write buffer entries")
    cmd_queue: int = Field(8, gt=0, le=MAX_QUEUE, description="entries per bank command queue (per_bank only)")
    row_policy: Literal["open", "closed"] = "open"
    row_hit_cap: int = Field(4, ge=0, le=MAX_QUEUE,
                             description="row hits served before a pending precharge may close a row")
    write_high_watermark: float = Field(1.0, gt=0, le=1,
                                        description="write buffer fill fraction that starts a write drain")
    write_low_watermark: float = Field(0.25, ge=0, le=1,
                                       description="drain also starts above this fill when no reads wait")
    merge_reads: bool = Field(True, description="a read of an address already queued shares its access (DRAMsim3)")
    dual_command_issue: bool = Field(False, description="a row and a column command may issue in one cycle (HBM)")
    refresh: Refresh = Refresh()


class Constraint(_Strict):
    """One timing constraint: after ``prev`` at ``level``, ``next`` waits ``delay`` cycles.

    ``sibling``: applies to the other nodes of that level (e.g. other ranks), not the issuing one.
    ``window``: a rolling-window constraint (nFAW): at most ``window`` ``prev`` commands in ``delay`` cycles.
    """

    level: Literal["channel", "rank", "bankgroup", "bank"]
    prev: list[str]
    next: list[str]
    delay: str | int
    sibling: bool = False
    window: int = Field(0, ge=0, le=MAX_QUEUE)

    @field_validator("prev", "next", mode="before")
    @classmethod
    def _listify(cls, v: str | list[str]) -> list[str]:
        v = [v] if isinstance(v, str) else v
        for c in v:
            if c not in COMMANDS:
                raise ValueError(f"unknown command {c!r} (known: {', '.join(COMMANDS)})")
        return v


class DRAMSpec(_Strict):
    """The whole ``dram:`` section."""

    standard: str = Field(..., description="standard name (DDR4, DDR5, HBM2, HBM3): informational")
    description: str = ""
    org: Organisation
    timing: Timing
    power: Power
    mapping: Mapping = Mapping()
    controller: Controller = Controller()
    constraints: list[Constraint]
    sources: dict[str, str] = Field(default_factory=dict, description="where each figure comes from")

    def semantic_errors(self) -> list[tuple[tuple, str]]:
        """Cross-field problems as (key path below ``dram``, message); empty when the spec is consistent."""
        errs: list[tuple[tuple, str]] = []
        names = self.timing.resolved(self.org.burst_length)
        for i, c in enumerate(self.constraints):
            try:
                delay = eval_delay(c.delay, names)
            except ValueError as e:
                errs.append((("constraints", i, "delay"), str(e)))
                continue
            if abs(delay) > MAX_CYCLES:
                errs.append((("constraints", i, "delay"), f"{c.delay!r} is {delay} cycles: at most {MAX_CYCLES}"))
        if names["nRAS"] > names["nRC"]:
            errs.append((("timing", "nRAS"), f"exceeds nRC ({names['nRC']}), got {names['nRAS']}"))
        if names["nREFI"] <= names["nRFC"]:
            errs.append((("timing", "nREFI"), f"must exceed nRFC ({names['nRFC']}), got {names['nREFI']}"))
        from archsim.dram.mapping import AddressMapper

        try:
            AddressMapper(self.org, self.mapping)
        except ValueError as e:
            errs.append((("mapping", "order"), str(e)))
        p = self.power
        if p.ipp_given and p.VPP <= 0:
            first = next(k for k in IPP_NAMES if getattr(p, k))
            errs.append((("power", "VPP"),
                         f"must be positive when IPP currents are given ({first} {getattr(p, first):g} mA)"))
        elif names["nRC"] > 0:  # no command may book negative energy (archsim.dram.power)
            from archsim.dram.power import energy_errors

            errs += [(("power", key), msg) for key, msg in energy_errors(self)]
        return errs

    @property
    def peak_bandwidth_GBps(self) -> float:
        """Data-bus peak of the whole system: bytes per burst / burst time, summed over channels."""
        t = self.timing.resolved(self.org.burst_length)
        per_ch = self.org.access_bytes / (t["nBL"] * self.timing.tCK_ps * 1e-12) / 1e9
        return per_ch * self.org.logical_channels


def log2i(v: int) -> int:
    return int(math.log2(v))
