"""The top-level configuration of a system (the YAML a user passes to ``archsim run``).

Each package owns its section's schema (``dram:`` is :class:`archsim.dram.spec.DRAMSpec`); this module composes
them, loads and validates a file with line-numbered errors, and runs the cross-field checks.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from archsim.config import ConfigError, LoadedConfig, format_key_path, load_config, validate
from archsim.dram.spec import DRAMSpec
from archsim.nmp.spec import NMPSpec
from archsim.system.host import HostSpec
from archsim.system.layout import LayoutSpec


class SystemConfig(BaseModel):
    """A machine: its memory system, the host that runs embedding workloads on it, and the table layout.

    (More sections arrive with NMP, CXL, tiers and GPUs.)"""

    model_config = ConfigDict(extra="forbid")

    name: str = ""
    description: str = ""
    dram: DRAMSpec = Field(..., description="the DRAM or HBM memory system")
    host: HostSpec | None = Field(None, description="the CPU host running embedding workloads "
                                                    "(absent: host defaults)")
    layout: LayoutSpec = Field(default_factory=LayoutSpec, description="where embedding tables live")
    nmp: NMPSpec | None = Field(None, description="near-memory processing units in the DRAM (absent: none; "
                                                  "the host gathers and pools every bag)")


def load_system(source: str | Path, overrides: Sequence[str] = ()) -> tuple[SystemConfig, LoadedConfig]:
    """Load, resolve (``extends:``, ``--set``) and validate a system config; raises ConfigError on bad input."""
    loaded = load_config(source, overrides=tuple(overrides))
    cfg = validate(loaded, SystemConfig)
    for rel, msg in cfg.dram.semantic_errors():
        path = ("dram", *rel)
        file, line = loaded.sources.where(path)
        raise ConfigError(msg, file=file, line=line, path=format_key_path(path))
    return cfg, loaded
