"""Schema of a cache section (``host.llc:``, the ``cache`` kind): geometry, replacement and write policy,
latency, energy."""

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
    """A set-associative cache: write-back and write-allocate (or read-only), LRU replacement by default
    (``policy``: docs/caches.md)."""

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
    policy: Literal["lru", "lfu", "evlfu", "static_hot", "random"] = Field(
        "lru", description="replacement within a set: lru (least recently used); lfu (fewest hits since the line "
                           "was filled, LRU among ties); evlfu (lfu whose counts are halved every "
                           "evlfu_aging_period lookups, EVStore-style aging); static_hot (the workload's "
                           "profiled hottest lines are pinned, every other line bypasses: static_hot_lines, "
                           "static_hot_profile_batches, static_hot_preload); random (a random way, "
                           "random_seed)")
    write_policy: Literal["write_back", "read_only"] = Field(
        "write_back", description="write_back: writes allocate and dirty lines are written back on eviction; "
                                  "read_only: no line is ever dirty, a write goes around the cache to the next "
                                  "level and invalidates the cache's copy")
    evlfu_aging_period: int | None = Field(
        None, gt=0, description="policy evlfu: lookups to the cache between two halvings of every line's count "
                                "(default 8 x the cache's lines)")
    random_seed: int | None = Field(None, ge=0, description="policy random: seed of the victim draws (default 0)")
    static_hot_lines: int | None = Field(
        None, gt=0, description="policy static_hot: how many of the profile's hottest lines to pin, at most the "
                                "cache's lines (default: as many as fit)")
    static_hot_profile_batches: int | None = Field(
        None, gt=0, description="policy static_hot: the workload's first batches profiled for line counts "
                                "(default 4)")
    static_hot_preload: bool = Field(
        False, description="policy static_hot: the pinned lines are held from the start (a scratchpad loaded "
                           "before the run) instead of being filled on their first miss")

    @model_validator(mode="after")
    def _geometry(self) -> CacheSpec:
        lb = self.line_bytes
        if lb & (lb - 1):
            raise ValueError(f"line_bytes must be a power of two, got {lb}")
        lines = self.size_kib * 1024 // lb
        if lines < self.ways or lines % self.ways:  # fewer lines than ways: a fuzzed 2^40 B line
            raise ValueError(f"size_kib {self.size_kib} is not a whole number of {self.ways}-way sets "
                             f"of {lb} B lines")
        for key, owner in (("evlfu_aging_period", "evlfu"), ("random_seed", "random"),
                           ("static_hot_lines", "static_hot"), ("static_hot_profile_batches", "static_hot")):
            if getattr(self, key) is not None and self.policy != owner:
                raise ValueError(f"{key} is a parameter of policy {owner}, not of {self.policy}")
        if self.static_hot_preload and self.policy != "static_hot":
            raise ValueError(f"static_hot_preload is a parameter of policy static_hot, not of {self.policy}")
        if self.static_hot_lines is not None and self.static_hot_lines > lines:
            raise ValueError(f"static_hot_lines {self.static_hot_lines} is more than the cache's {lines} lines")
        return self

    def policy_args(self) -> dict:
        """The keyword arguments of :func:`archsim.cache.policies.make_tags` for this cache (a static_hot
        profile aside)."""
        return {"aging_period": self.evlfu_aging_period, "seed": self.random_seed or 0,
                "max_lines": self.static_hot_lines, "preload": self.static_hot_preload}
