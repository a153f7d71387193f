"""Schema of a cache section (``host.llc:``): geometry, latency, energy."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


def set_geometry_error(key: str, size_kib: int, ways: int, line_bytes: int = 64) -> str | None:
    """Why ``size_kib`` KiB of ``line_bytes`` lines cannot be ``ways``-way sets (None: they can); ``key`` names
    the size in the message."""
    lines = size_kib * 1024 // line_bytes
    if size_kib and (lines < ways or lines % ways):
        return f"{key} {size_kib} is not a whole number of {ways}-way sets of {line_bytes} B lines"
    return None


class CacheSpec(BaseModel):
    """A set-associative write-back, write-allocate cache with LRU replacement."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

    size_kib: int = Field(..., gt=0, description="capacity in KiB")
    ways: int = Field(16, gt=0, description="associativity")
    line_bytes: int = Field(64, gt=0, description="line size in bytes (a power of two)")
    index: Literal["modulo", "xor"] = Field(
        "xor", description="set index: line number modulo sets, or an XOR fold of the upper bits (sliced LLCs)")
    hit_latency_ns: float = Field(20.0, ge=0, description="load-to-use latency of a hit, and the tag check "
                                                          "a miss pays before it leaves for memory")
    access_energy_pJ: float = Field(
        800.0, ge=0, description="energy of one line access (lookup, fill or write-back), pJ")

    @model_validator(mode="after")
    def _geometry(self) -> CacheSpec:
        lb = self.line_bytes
        if lb & (lb - 1):
            raise ValueError(f"line_bytes must be a power of two, got {lb}")
        lines = self.size_kib * 1024 // lb
        if lines % self.ways:
            raise ValueError(f"size_kib {self.size_kib} is not a whole number of {self.ways}-way sets "
                             f"of {lb} B lines")
        return self
