"""The top-level configuration of a system (the YAML a user passes to ``archsim run``).

Each package owns its section's schema (``dram:`` is :class:`archsim.dram.spec.DRAMSpec`); this module composes
them, loads and validates a file with line-numbered errors, and runs the cross-field checks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from archsim.config import ConfigError, LoadedConfig, format_key_path, load_config, validate
from archsim.cxl.spec import CXLSpec
from archsim.dram.spec import DRAMSpec
from archsim.nmp.spec import NMPSpec
from archsim.system.host import HostSpec
from archsim.system.layout import LayoutSpec


class SystemConfig(BaseModel):
    """A machine: its memory system, the host that runs embedding workloads on it, and the table layout.

    (More sections arrive with NMP, CXL, tiers and GPUs.)"""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

    name: str = ""
    description: str = ""
    dram: DRAMSpec = Field(..., description="the DRAM or HBM memory system")
    host: HostSpec | None = Field(None, description="the CPU host running embedding workloads "
                                                    "(absent: host defaults)")
    layout: LayoutSpec = Field(default_factory=LayoutSpec, description="where embedding tables live")
    nmp: NMPSpec | None = Field(None, description="near-memory processing units in the DRAM (absent: none; "
                                                  "the host gathers and pools every bag)")
    cxl: CXLSpec | None = Field(None, description="CXL memory behind the host: expanders, switches, links "
                                                  "(absent: none)")
    components: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="components of the system graph by name, added to what the sections "
                                          "above expand into (archsim show prints it): a new name needs impl: "
                                          "and the kind's keys; an expanded component's name changes its keys "
                                          "(rewire it). docs/architecture.md")
    hosts: int = Field(1, ge=1, description="identical hosts pooling the CXL memory, each with its own local "
                                            "DRAM, LLC and batch stream, attached at the fabric's free host "
                                            "ports in order (more than 1 needs cxl:)")

    def semantic_errors(self) -> list[tuple[tuple, str]]:
        """Cross-section problems as (key path, message)."""
        errs: list[tuple[tuple, str]] = [(("dram", *rel), msg) for rel, msg in self.dram.semantic_errors()]
        for name in self.components:  # names become stats groups and dotted paths
            if not name or name != name.strip() or "" in name.split("."):
                errs.append((("components", name), f"a component name must be non-empty, without empty dotted "
                                                    f"parts or surrounding spaces, got {name!r}"))
        if errs:
            return errs
        if self.cxl is not None:
            errs += [(("cxl", *rel), msg) for rel, msg in self.cxl.semantic_errors()]
            if errs:
                return errs
            local = self.dram.org.capacity_bytes
            for i, e in enumerate(self.cxl.expanders):
                if e.base < local:
                    errs.append((("cxl", "expanders", i, "base"),
                                 f"overlaps the host's local DRAM [0, 0x{local:x}); place expanders at or "
                                 f"above 0x{local:x}, got 0x{e.base:x}"))
            pifs = self.cxl.pifs
            if pifs is not None and self.cxl.switches:
                sw = pifs.switch or self.cxl.switches[0].name
                if not self.cxl.attach_point().startswith(f"{sw}.port"):
                    errs.append((("cxl", "pifs", "switch"), f"the host attaches at {self.cxl.attach_point()!r}; "
                                                            f"PIFS units must sit in that switch ({sw!r} is not)"))
        if self.hosts > 1:
            if self.cxl is None:
                errs.append((("hosts",), "several hosts pool CXL memory; this config has no cxl: section"))
            elif len(self.cxl.host_port_names()) < self.hosts:
                errs.append((("hosts",), f"{self.hosts} hosts need {self.hosts} free host ports in the fabric, it "
                                         f"has {len(self.cxl.host_port_names())}"))
            elif self.nmp is not None:
                errs.append((("hosts",), "several hosts with NMP units in their DIMMs are not modelled"))
            elif self.cxl.pifs is not None:
                sw = self.cxl.pifs.switch or (self.cxl.switches[0].name if self.cxl.switches else "")
                bad = [a for a in self.cxl.attach_points(self.hosts) if not a.startswith(f"{sw}.port")]
                if bad:
                    errs.append((("hosts",), f"every host must attach to the PIFS switch {sw!r}; {bad[0]!r} "
                                             f"does not"))
        errs += self._llc_line_errors()
        if self.cxl is not None:
            errs += self._expander_nmp_errors()
        if not errs and self.cxl is not None and self.layout.memory == "cxl":
            errs += self._cxl_reach_errors()
        if self.layout.memory == "cxl" and (self.cxl is None or not self.cxl.expanders):
            errs.append((("layout", "memory"), "cxl needs a cxl: section with at least one expander"))
        # were ValueErrors in the run (found by the fuzzer: layout.memory local with device_per_table)
        if self.layout.policy == "device_per_table" and self.layout.memory != "cxl":
            errs.append((("layout", "policy"), "device_per_table places table t on expander t mod expanders: it "
                                               "needs layout.memory cxl"))
        if self.layout.policy == "channel_per_table" and self.layout.memory != "local":
            errs.append((("layout", "policy"), "channel_per_table places tables in local DRAM channels: with "
                                               "layout.memory cxl use contiguous or device_per_table"))
        if self.nmp is not None and self.layout.memory == "cxl":
            errs.append((("nmp",), "near-memory units in the host's DIMMs cannot reach tables on CXL memory "
                                   "(layout.memory cxl)"))
        return errs


    def _llc_line_errors(self) -> list[tuple[tuple, str]]:
        """An LLC line must lie in one DRAM channel (a fuzzed 128 B line on cpu_ddr4, whose channels interleave
        every 64 B, was a ValueError 'a multi-burst request must stay in one channel' in the run)."""
        llc = self.host.llc if self.host is not None else None
        if llc is None:
            return []
        from archsim.dram.mapping import AddressMapper

        m = AddressMapper(self.dram.org, self.dram.mapping)
        granule = 1 << m.pos["ch"]
        if m.widths["ch"] and llc.line_bytes > granule:
            return [(("host", "llc", "line_bytes"),
                     f"{llc.line_bytes} B lines would span DRAM channels: dram.mapping.order "
                     f"{self.dram.mapping.order} interleaves the channels every {granule} B (at most {granule})")]
        return []

    def _cxl_reach_errors(self) -> list[tuple[tuple, str]]:
        """Tables on CXL memory are spread over every expander: each must be reachable from each host's
        attachment point (a fuzzed cxl_pool without the switch port of exp1 was a ValueError 'address ... is in
        no downstream port's range' in the run)."""
        spec = self.cxl
        ranges = spec.port_ranges()
        for h, point in enumerate(spec.attach_points(self.hosts)):
            si = next((i for i, sw in enumerate(spec.switches) if point.startswith(f"{sw.name}.port")), None)
            if si is not None:
                covered = [r for (s, _), rs in ranges.items() if s == si for r in rs]
            else:
                covered = [(e.base, e.end) for e in spec.expanders if e.name == point]
            for i, e in enumerate(spec.expanders):
                if not any(lo <= e.base and e.end <= hi for lo, hi in covered):
                    who = f"host {h}" if self.hosts > 1 else "the host"
                    return [(("cxl", "expanders", i),
                             f"{e.name!r} is out of {who}'s reach (attached at {point!r}: no port leads from "
                             f"there to it), but layout.memory cxl spreads the tables over every expander")]
        return []

    def _expander_nmp_errors(self) -> list[tuple[tuple, str]]:
        """NMP units in expanders are handed bags by PIFS units in the switch above them."""
        errs: list[tuple[tuple, str]] = []
        with_nmp = [(i, e) for i, e in enumerate(self.cxl.expanders) if e.nmp is not None]
        if not with_nmp:
            return errs
        i, e = with_nmp[0]
        where = ("cxl", "expanders", i, "nmp")
        pifs = self.cxl.pifs
        if pifs is None or pifs.location != "switch":
            errs.append((where, "NMP units in an expander get their bags from PIFS units in the switch above it; "
                                "add cxl.pifs (location switch)"))
        elif pifs.replicate_hot:
            errs.append((("cxl", "pifs", "replicate_hot"), "hot-row copies are read by the switch's units; with NMP "
                                                           "units in the expanders they are not modelled"))
        elif self.layout.memory != "cxl":
            errs.append((where, "NMP units in an expander reduce tables that live there: set layout.memory cxl"))
        elif self.cxl.interleave_bytes is not None:
            errs.append((("cxl", "interleave_bytes"), "NMP units in expanders need each row on one expander; "
                                                      "interleaving across expanders is not modelled with them"))
        return errs


def load_system(source: str | Path, overrides: Sequence[str] = ()) -> tuple[SystemConfig, LoadedConfig]:
    """Load, resolve (``extends:``, ``--set``) and validate a system config; raises ConfigError on bad input."""
    loaded = load_config(source, overrides=tuple(overrides))
    cfg = validate(loaded, SystemConfig)
    for path, msg in magnitude_errors(loaded.data):
        file, line = loaded.sources.where(path)
        raise ConfigError(msg, file=file, line=line, path=format_key_path(path))
    for path, msg in cfg.semantic_errors():
        file, line = loaded.sources.where(path)
        raise ConfigError(msg, file=file, line=line, path=format_key_path(path))
    for path, msg in graph_errors(cfg):
        file, line = loaded.sources.where(path)
        raise ConfigError(msg, file=file, line=line, path=format_key_path(path))
    return cfg, loaded


MAX_NUMBER = 1 << 52
"""No number in a hwconfig may be larger in magnitude: addresses span at most 52 bits (x86-64 physical), counts
and sizes far less; past it, products in the engine's 64-bit picoseconds and addresses overflow."""

UNIT_LIMITS: dict[str, tuple[float, float, str]] = {
    "_ns": (0.0, 1e9, "1e9 ns (one second)"),
    "_ps": (0.0, 1e12, "1e12 ps (one second)"),
    "_mhz": (1e-3, 1e6, "1e6 MHz"),
}
"""By unit suffix of a key: (smallest positive value, largest value, the largest in words). Latencies above one
second and clocks below 1 kHz are no memory system's, and their picoseconds overflow a run (a fuzzed 2^64 ns
latency and a 5e-324 MHz clock were OverflowErrors); a new component's ``*_ns`` key is bounded without edits."""


def magnitude_errors(data: Any, path: tuple = ()) -> list[tuple[tuple, str]]:
    """Numbers of a resolved hwconfig beyond what the simulator represents, as (key path, message): the first
    one found (every section, ``components:`` included; each section's schema has checked its own ranges)."""
    if isinstance(data, dict):
        for k, v in data.items():
            errs = magnitude_errors(v, (*path, k))
            if errs:
                return errs
        return []
    if isinstance(data, list):
        for i, v in enumerate(data):
            errs = magnitude_errors(v, (*path, i))
            if errs:
                return errs
        return []
    if isinstance(data, bool) or not isinstance(data, int | float):
        return []
    if isinstance(data, float) and not math.isfinite(data):
        return [(path, f"input should be a finite number, got {data!r}")]
    if abs(data) > MAX_NUMBER:
        return [(path, f"must be at most 2^52 ({MAX_NUMBER}) in magnitude, got {data!r}")]
    key = str(path[-1]).lower() if path and not isinstance(path[-1], int) else ""
    for suffix, (lo, hi, words) in UNIT_LIMITS.items():
        if key.endswith(suffix):
            if data > hi:
                return [(path, f"must be at most {words}, got {data!r}")]
            if 0 < data < lo:
                return [(path, f"must be at least {lo:g} (or 0 where 0 is allowed), got {data!r}")]
    return []


def graph_errors(cfg: SystemConfig) -> list[tuple[tuple, str]]:
    """Problems of the graph ``cfg`` expands into (``components:`` entries, wiring) as (key path, message)."""
    from archsim.system.shorthand import GraphInputError, expand

    try:
        graph = expand(cfg)
    except GraphInputError as e:
        return [(e.path, e.message)]
    return graph.errors()
