"""Configuration schema of the ``cxl:`` section: links, switches and Type-3 memory expanders.

Every figure below is either taken from a specification (the CXL 3.2 specification for flit formats and link
rates, PCIe for line encodings) or is a modelling assumption calibrated against a measured figure; docs/cxl.md
lists each with its source. Cross-references (a switch port naming its device, address ranges) are checked by
:meth:`CXLSpec.semantic_errors`, and :func:`load_cxl` turns the first problem into a one-line
:class:`~archsim.config.ConfigError` naming ``file:line`` and the key path (``cxl.switches[0].ports[3].target``).

A section looks like::

    cxl:
      expanders:
        - {name: exp0, base: 0, capacity: 16GiB, dram: {extends: ddr5_4800_16gb_x8}}
        - {name: exp1, base: 16GiB, capacity: 16GiB, dram: {extends: ddr5_4800_16gb_x8}}
      switches:
        - name: sw0
          ports:
            - {role: upstream}                       # a host attaches here (through the port's link)
            - {role: downstream, target: exp0}       # ranges default to the expander's [base, base+capacity)
            - {role: downstream, target: exp1, link: {generation: pcie6, lanes: 8}}
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Literal

import pydantic
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from archsim.cache.spec import set_geometry_error
from archsim.config import ConfigError, LoadedConfig, config_error_from_validation, format_key_path
from archsim.dram.spec import DRAMSpec
from archsim.nmp.spec import NMPSpec

__all__ = [
    "Generation", "GENERATIONS", "LinkSpec", "RangeSpec", "PortSpec", "SwitchSpec", "ExpanderSpec", "CXLSpec",
    "parse_bytes", "load_cxl", "ns_to_ps",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


def ns_to_ps(ns: float) -> int:
    """Nanoseconds (a config value) to integer picoseconds, rounded to the nearest."""
    return int(round(ns * 1000))


_UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
          "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}


def parse_bytes(v: Any) -> int:
    """A byte count: an integer (``0x4_0000_0000`` in YAML) or a string such as ``16GiB`` / ``512MB``."""
    if isinstance(v, bool):
        raise ValueError("must be a byte count, not a boolean")
    if isinstance(v, int):
        return v
    if isinstance(v, str):
        m = re.fullmatch(r"\s*(\d+)\s*([KMGT]i?B|B)?\s*", v, flags=re.IGNORECASE)
        if m:
            return int(m.group(1)) * _UNITS[(m.group(2) or "").upper()]
    raise ValueError(f"must be a byte count (an integer or e.g. '16GiB'), got {v!r}")


# ---------------------------------------------------------------------------------------------------- links
@dataclass(frozen=True)
class Generation:
    """A PCIe physical layer generation as CXL uses it."""

    gt_per_s: int  #: transfers (bits) per second per lane, in 10^9
    encoding: Fraction  #: payload bits per line bit (128b/130b or 1b/1b)
    flit_sizes: tuple[int, ...]  #: CXL flit sizes this generation carries
    default_flit: int


#: PCIe 5.0 (32 GT/s, 128b/130b) carries 68B flits, or 256B flits when PCIe Flit mode is negotiated; PCIe 6.0
#: (64 GT/s PAM4, 1b/1b, FLIT mode) carries 256B flits only (CXL 3.2 spec Table 6-4).
GENERATIONS: dict[str, Generation] = {
    "pcie5": Generation(32, Fraction(128, 130), (68, 256), 68),
    "pcie6": Generation(64, Fraction(1), (256,), 256),
}


class LinkSpec(_Strict):
    """One CXL link: two directions (M2S downstream, S2M upstream), each a serial resource."""

    generation: Literal["pcie5", "pcie6"] = Field(
        "pcie5", description="physical layer: pcie5 = 32 GT/s per lane, 128b/130b line code; pcie6 = 64 GT/s per "
                             "lane, PAM4, FLIT mode with 1b/1b (no 128b/130b). Source: CXL 3.2 spec Table 6-4")
    lanes: Literal[4, 8, 16] = Field(16, description="lanes per direction (x4, x8, x16; CXL 3.2 spec Table 6-1)")
    flit_bytes: int | None = Field(
        None, validate_default=True,
        description="CXL.cachemem flit size in bytes: 68 (CXL 1.1/2.0 flit, pcie5 only) or 256 (CXL 3.x standard "
                    "256B flit). Default: 68 for pcie5, 256 for pcie6. Source: CXL 3.2 spec §4.2, §4.3, Table 6-4")
    port_latency_ns: float = Field(
        10.0, ge=0, description="ns a message spends in the CXL port logic (transaction + link layer, ARB/MUX, "
                                "logical PHY) at each end, each direction. Assumption, calibrated so that a "
                                "directly attached expander adds 70-90 ns over local DRAM (Pond, ASPLOS 2023)")
    phy_latency_ns: float = Field(
        5.0, ge=0, description="ns of SerDes (Tx + Rx analog, FEC decode on pcie6) and channel flight per "
                               "direction, after serialisation. Assumption (see docs/cxl.md)")
    credits: int = Field(
        128, gt=0, description="request credits: requests the receiver's buffers hold; a credit is taken when a "
                               "request enters the link and returns with its response. Assumption")
    energy_pJ_per_bit: float = Field(
        5.0, ge=0, description="pJ per bit on the wire (line bits, both directions). Assumption: a typical "
                               "figure for 32-64 Gb/s long-reach SerDes; override per design")

    @field_validator("flit_bytes")
    @classmethod
    def _flit_supported(cls, v: int | None, info: ValidationInfo) -> int:
        gen = GENERATIONS.get(info.data.get("generation", ""))
        if gen is None:  # the generation itself failed validation; that error is reported
            return v if v is not None else 68
        if v is None:
            return gen.default_flit
        if v not in gen.flit_sizes:
            supported = ", ".join(str(s) for s in gen.flit_sizes)
            raise ValueError(f"not a flit size {info.data['generation']} carries (supported: {supported})")
        return v

    # ------------------------------------------------------------------ derived rates
    @property
    def gen(self) -> Generation:
        return GENERATIONS[self.generation]

    @property
    def bytes_per_ns(self) -> Fraction:
        """Payload (flit) bytes per ns per direction: GT/s x lanes x encoding / 8."""
        g = self.gen
        return Fraction(g.gt_per_s * self.lanes) * g.encoding / 8

    @property
    def flit_ps(self) -> Fraction:
        """Time to serialise one flit on all lanes, in ps (exact)."""
        return Fraction(self.flit_bytes * 1000) / self.bytes_per_ns

    @property
    def raw_GBps(self) -> float:
        """Flit bytes per second per direction, in 10^9 B/s."""
        return float(self.bytes_per_ns)


# ---------------------------------------------------------------------------------------------------- fabric
class RangeSpec(_Strict):
    """A host physical address range ``[base, base + size)`` in bytes."""

    base: int = Field(..., ge=0, description="first byte address")
    size: int = Field(..., gt=0, description="bytes in the range")

    @field_validator("base", "size", mode="before")
    @classmethod
    def _byte_counts(cls, v: Any) -> int:
        return parse_bytes(v)

    @property
    def end(self) -> int:
        return self.base + self.size


class PortSpec(_Strict):
    """One port of a switch."""

    role: Literal["upstream", "downstream"] = Field(
        ..., description="upstream: a host (or a parent switch's downstream port) attaches here; downstream: "
                         "leads to a device")
    target: str | None = Field(
        None, description="downstream ports: the name of the expander or switch behind this port (cascading)")
    ranges: list[RangeSpec] | None = Field(
        None, description="downstream ports: host physical address ranges routed here; default: the target "
                          "expander's [base, base+capacity), or every range below the target switch")
    link: LinkSpec = Field(default_factory=LinkSpec, description="the link on this port (to the device for a "
                                                                 "downstream port, from the host for an upstream one)")


class SwitchSpec(_Strict):
    """A CXL switch: ports, per-port ingress queues, a crossbar with an arbitration policy."""

    name: str = Field(..., description="unique name among switches and expanders")
    ports: list[PortSpec] = Field(..., min_length=2, description="the switch's ports, numbered in this order")
    queue_depth: int = Field(32, gt=0, description="requests each ingress (upstream) port buffers. Assumption")
    arbitration: Literal["round_robin", "oldest_first"] = Field(
        "round_robin", description="which input wins an output port: round_robin rotates over the inputs with a "
                                   "waiting request; oldest_first takes the request that reached the switch first")
    forwarding_latency_ns: float = Field(
        20.0, ge=0, description="ns from ingress to egress, each direction (routing lookup, crossbar). Assumption")
    crossbar_slot_ns: float = Field(
        0.5, gt=0, description="an output port forwards at most one request per slot (a 2 GHz crossbar by "
                               "default). Assumption")


class ExpanderSpec(_Strict):
    """A CXL Type-3 memory expander: a device controller in front of DRAM channels."""

    name: str = Field(..., description="unique name among switches and expanders")
    base: int = Field(0, ge=0, description="host physical address of the expander's first byte")
    capacity: int | None = Field(None, gt=0, description="bytes exposed; default: the whole DRAM")
    controller_latency_ns: float = Field(
        25.0, ge=0, description="ns the device controller adds to each access in total (CXL.mem decode, HDM "
                                "decoder, memory-controller front end), charged on the request path. Assumption "
                                "calibrated with the link defaults to Pond's +70-90 ns")
    dram: DRAMSpec = Field(..., description="the device's DRAM (a dram: section; e.g. {extends: ddr5_4800_16gb_x8})")
    nmp: NMPSpec | None = Field(
        None, description="near-memory processing units in the device's DIMMs (an nmp: section: RecNMP rank "
                          "units, ReCross cross-level units); PIFS units in the switch above hand them the rows "
                          "of a bag that live here and combine their partial sums (absent: plain DRAM)")
    link: LinkSpec = Field(default_factory=LinkSpec,
                           description="the link to the host when the expander is attached directly (no switch)")

    @field_validator("base", "capacity", mode="before")
    @classmethod
    def _byte_counts(cls, v: Any) -> int | None:
        return v if v is None else parse_bytes(v)

    @property
    def size(self) -> int:
        return self.capacity if self.capacity is not None else self.dram.org.capacity_bytes

    @property
    def end(self) -> int:
        return self.base + self.size


class PIFSSpec(_Strict):
    """PIFS-Rec processing units in a switch, one per downstream port (archsim/cxl/pifs.py)."""

    switch: str | None = Field(None, description="the switch that holds the units (default: the first)")
    location: Literal["switch", "expander"] = Field(
        "switch", description="switch: PIFS-Rec, units next to the switch's downstream ports read through the "
                              "ports' links and the switch combines their partial sums; expander: near-data "
                              "processing inside each expander (BEACON-like), units read their DRAM directly "
                              "and every partial sum travels to the host, which adds them")
    clock_mhz: float = Field(1000.0, gt=0, description="clock of the units' pooling datapaths")
    lanes: int = Field(16, gt=0, description="fp32 adds per unit clock in each port unit")
    combine_lanes: int = Field(16, gt=0, description="fp32 adds per unit clock in the switch's combiner of "
                                                     "the ports' partial sums")
    # upper bounds: a fuzzed 2^40 index or header hung a run, a 2^40 KiB buffer was a MemoryError
    index_bytes: int = Field(4, gt=0, le=4096, description="bytes per row index in the command the host sends")
    command_header_bytes: int = Field(16, ge=0, le=4096,
                                      description="bytes of a bag command besides its indices")
    buffer_kib: int = Field(0, ge=0, le=1 << 20, description="on-switch buffer of embedding lines (LRU, shared by "
                                                             "the units); 0: none")
    buffer_ways: int = Field(16, gt=0, le=1 << 16, description="associativity of the on-switch buffer")
    buffer_hit_ns: float = Field(2.0, ge=0, description="latency of a buffer hit")
    buffer_energy_pJ: float = Field(50.0, ge=0, description="energy per buffer access (lookup or fill), pJ")
    buffer_admit: Literal["all", "hot"] = Field(
        "all", description="lines the buffer keeps: all read, or only profiled hot rows (hot_fraction, "
                           "profile_batches)")
    replicate_hot: bool = Field(
        False, description="embedding spreading: the profiled hot rows (hot_fraction, profile_batches) have a copy "
                           "at the top of every downstream port's expander, and each read of a hot row goes to "
                           "the port with the fewest reads in flight (scheduling across ports)")
    hot_fraction: float = Field(0.01, ge=0, le=1, description="buffer_admit hot, replicate_hot: the most "
                                                              "accessed fraction of each table's rows")
    profile_batches: int = Field(4, ge=1, description="buffer_admit hot, replicate_hot: batches profiled for "
                                                      "hot rows")
    compute_energy_pJ: float = Field(0.9, ge=0, description="energy of one fp32 add, pJ (Horowitz, ISSCC "
                                                            "2014: 0.9 pJ at 45 nm)")

    @model_validator(mode="after")
    def _buffer_geometry(self) -> PIFSSpec:
        err = set_geometry_error("buffer_kib", self.buffer_kib, self.buffer_ways)
        if err:
            raise ValueError(err)
        return self


Path = tuple[Any, ...]


class CXLSpec(_Strict):
    """The whole ``cxl:`` section."""

    expanders: list[ExpanderSpec] = Field(default_factory=list, description="Type-3 memory expanders")
    switches: list[SwitchSpec] = Field(default_factory=list, description="switches, cascading allowed")
    pifs: PIFSSpec | None = Field(None, description="PIFS-Rec processing units in a switch (absent: none)")
    interleave_bytes: int | None = Field(
        None, gt=0, description="interleave the expanders' memory at this granularity (bytes, a power of two, "
                                "256 B to 16 KiB as CXL HDM decoders allow): the host sees one window from the "
                                "lowest expander base, N x the capacity, line g of granularity on expander g mod "
                                "N; the expanders must have equal capacities and adjacent windows. Absent: "
                                "each expander is its own window")
    attach: str | None = Field(
        None, description="where the host's CXL root port attaches: a switch's free upstream port "
                          "(<switch>.port<j>) or a directly attached expander's name; default: the first of them")

    def windows(self) -> list[tuple[int, int]]:
        """The host's view of the expanders: one interleaved window, or each expander's own, in address order."""
        spans = sorted((e.base, e.end) for e in self.expanders)
        if self.interleave_bytes is None or not spans:
            return spans
        return [(spans[0][0], spans[-1][1])]

    def deinterleave(self, addr):
        """Host address (int or numpy array) in the interleaved window -> the address in the owning expander's
        own window (what the switch routes and the expander decodes); identity without interleaving."""
        if self.interleave_bytes is None:
            return addr
        exps = sorted(self.expanders, key=lambda e: e.base)
        base, g, n, size = exps[0].base, self.interleave_bytes, len(exps), exps[0].size
        off = addr - base
        chunk = off // g
        return base + (chunk % n) * size + (chunk // n) * g + off % g

    def host_port_names(self) -> list[str]:
        """The attachment points a host can use, in build order (as :func:`archsim.cxl.build_fabric` names
        them): free upstream ports of switches, then expanders no switch leads to."""
        taken: dict[str, int] = {}
        targeted: set[str] = set()
        for sw in self.switches:
            for p in sw.ports:
                if p.role == "downstream" and p.target is not None:
                    targeted.add(p.target)
                    taken[p.target] = taken.get(p.target, 0) + 1
        out = []
        for sw in self.switches:
            ups = [j for j, p in enumerate(sw.ports) if p.role == "upstream"]
            out += [f"{sw.name}.port{j}" for j in ups[taken.get(sw.name, 0):]]
        out += [e.name for e in self.expanders if e.name not in targeted]
        return out

    def attach_point(self) -> str:
        """The host's attachment point (``attach`` or the first free one)."""
        names = self.host_port_names()
        return self.attach if self.attach is not None else names[0]

    def attach_points(self, hosts: int) -> list[str]:
        """Where ``hosts`` hosts attach: host 0 at :meth:`attach_point`, the others at the next free points."""
        first = self.attach_point()
        return [first] + [n for n in self.host_port_names() if n != first][:hosts - 1]

    # ------------------------------------------------------------------ cross-references
    def port_ranges(self) -> dict[tuple[int, int], list[tuple[int, int]]]:
        """``(switch index, port index) -> [(base, end), ...]`` for every downstream port (derived where not
        given). Call only on a spec without :meth:`semantic_errors`."""
        out: dict[tuple[int, int], list[tuple[int, int]]] = {}
        for si, sw in enumerate(self.switches):
            for pi, p in enumerate(sw.ports):
                if p.role == "downstream":
                    out[(si, pi)] = self._ranges_of(si, pi, set())
        return out

    def _ranges_of(self, si: int, pi: int, seen: set[int]) -> list[tuple[int, int]]:
        p = self.switches[si].ports[pi]
        if p.ranges is not None:
            return [(r.base, r.end) for r in p.ranges]
        kind, idx = self.lookup(p.target or "")
        if kind == "expander":
            e = self.expanders[idx]
            return [(e.base, e.end)]
        if idx in seen:
            raise ValueError("cascade loop")
        seen = seen | {idx}
        below: list[tuple[int, int]] = []
        for pj, q in enumerate(self.switches[idx].ports):
            if q.role == "downstream":
                below.extend(self._ranges_of(idx, pj, seen))
        return below

    def lookup(self, name: str) -> tuple[str, int]:
        """``("expander" | "switch", index)`` of the device called ``name``; KeyError if none."""
        for i, e in enumerate(self.expanders):
            if e.name == name:
                return "expander", i
        for i, s in enumerate(self.switches):
            if s.name == name:
                return "switch", i
        raise KeyError(name)

    def semantic_errors(self) -> list[tuple[Path, str]]:
        """Cross-field problems as (key path below ``cxl``, message); empty when the section is consistent."""
        errs: list[tuple[Path, str]] = []
        if not self.expanders:
            return [(("expanders",), "a cxl: section needs at least one memory expander")]
        names: dict[str, Path] = {}
        for kind, items in (("expanders", self.expanders), ("switches", self.switches)):
            for i, it in enumerate(items):
                if it.name in names:
                    errs.append(((kind, i, "name"), f"name {it.name!r} is already used at "
                                                    f"{format_key_path(('cxl', *names[it.name]))}"))
                names.setdefault(it.name, (kind, i, "name"))
        for i, e in enumerate(self.expanders):
            for rel, msg in e.dram.semantic_errors():
                errs.append((("expanders", i, "dram", *rel), msg))
            if e.capacity is not None and e.capacity > e.dram.org.capacity_bytes:
                errs.append((("expanders", i, "capacity"),
                             f"exceeds the DRAM's {e.dram.org.capacity_bytes} bytes, got {e.capacity}"))
        if errs:
            return errs
        upstream_used: dict[int, int] = {}
        for si, sw in enumerate(self.switches):
            if not any(p.role == "upstream" for p in sw.ports):
                errs.append((("switches", si, "ports"), "a switch needs at least one upstream port"))
            if not any(p.role == "downstream" for p in sw.ports):
                errs.append((("switches", si, "ports"), "a switch needs at least one downstream port"))
            for pi, p in enumerate(sw.ports):
                here = ("switches", si, "ports", pi)
                if p.role == "upstream":
                    if p.target is not None:
                        errs.append(((*here, "target"), "an upstream port connects a host and takes no target"))
                    if p.ranges is not None:
                        errs.append(((*here, "ranges"), "an upstream port routes nothing; ranges belong to "
                                                        "downstream ports"))
                    continue
                if p.target is None:
                    errs.append(((*here, "target"), "a downstream port must name the expander or switch behind it"))
                    continue
                try:
                    kind, idx = self.lookup(p.target)
                except KeyError:
                    known = ", ".join(sorted(names)) or "none"
                    errs.append(((*here, "target"), f"points at nothing: no expander or switch named "
                                                    f"{p.target!r} (known: {known})"))
                    continue
                if kind == "switch":
                    if idx == si:
                        errs.append(((*here, "target"), "a switch port cannot lead back to its own switch"))
                        continue
                    upstream_used[idx] = upstream_used.get(idx, 0) + 1
                    n_up = sum(q.role == "upstream" for q in self.switches[idx].ports)
                    if upstream_used[idx] > n_up:
                        errs.append(((*here, "target"), f"switch {p.target!r} has only {n_up} upstream port(s) "
                                                        f"and they are all taken"))
        if errs:
            return errs
        for si, sw in enumerate(self.switches):
            spans: list[tuple[int, int, Path]] = []
            for pi, p in enumerate(sw.ports):
                if p.role != "downstream":
                    continue
                here = ("switches", si, "ports", pi)
                try:
                    rs = self._ranges_of(si, pi, {si})
                except ValueError:
                    errs.append(((*here, "target"), f"cascade loop: {p.target!r} leads back to switch "
                                                    f"{sw.name!r}"))
                    continue
                for k, (lo, hi) in enumerate(rs):
                    where = (*here, "ranges", k) if p.ranges is not None else (*here, "target")
                    spans.append((lo, hi, where))
            spans.sort(key=lambda s: (s[0], s[1]))
            for (lo0, hi0, w0), (lo1, hi1, w1) in zip(spans, spans[1:], strict=False):
                if lo1 < hi0:
                    errs.append((w1, f"address range [0x{lo1:x}, 0x{hi1:x}) overlaps [0x{lo0:x}, 0x{hi0:x}) of "
                                     f"{format_key_path(('cxl', *w0))}"))
        if errs:
            return errs
        if self.interleave_bytes is not None:
            g = self.interleave_bytes
            if g & (g - 1) or not 256 <= g <= 16384:
                errs.append((("interleave_bytes",), f"must be a power of two from 256 to 16384, got {g}"))
            exps = sorted(self.expanders, key=lambda e: e.base)
            for a, b in zip(exps, exps[1:]):
                if b.size != exps[0].size or b.base != a.end:
                    errs.append((("interleave_bytes",), "interleaved expanders need equal capacities and "
                                                        f"adjacent windows ({b.name!r} is not)"))
                    break
        if self.pifs is not None:
            sw = self.pifs.switch
            if not self.switches:
                errs.append((("pifs",), "PIFS units sit in a switch; this fabric has none"))
            elif sw is not None and sw not in [s.name for s in self.switches]:
                errs.append((("pifs", "switch"), f"no switch named {sw!r}"))
        names = self.host_port_names()
        if (self.expanders or self.switches) and not names:
            errs.append((("switches",), "no free upstream port or directly attached expander for the host"))
        elif self.attach is not None and self.attach not in names:
            errs.append((("attach",), f"not a free host attachment point: {self.attach!r} (free: "
                                      f"{', '.join(names) or 'none'})"))
        return errs


class _Root(BaseModel):
    model_config = ConfigDict(extra="ignore")
    cxl: CXLSpec


def load_cxl(loaded: LoadedConfig) -> CXLSpec:
    """Validate the ``cxl:`` section of a loaded config; the first problem becomes a one-line ConfigError.

    The error names the file and line of the bad value and its key path, e.g.
    ``hw.yaml:14: cxl.switches[0].ports[3].target: points at nothing: ...``.
    """
    data = loaded.data if isinstance(loaded.data, dict) else {}
    try:
        root = _Root.model_validate({"cxl": data.get("cxl")})
    except pydantic.ValidationError as exc:
        raise config_error_from_validation(exc, loaded.sources, {"cxl": data.get("cxl")}) from None
    errs = root.cxl.semantic_errors()
    if errs:
        rel, msg = errs[0]
        path = ("cxl", *rel)
        file, line = loaded.sources.where(path)
        raise ConfigError(msg, file=file, line=line, path=format_key_path(path))
    return root.cxl
