"""Configuration schema of a tier manager (component kind ``tier``): the ordered memories it spreads embedding rows
over, their capacities and precisions, the placement, and EVStore's layers (EVCache: a cache tier's ``policy``;
EVMix: a tier's ``precision``; EVProx: ``evprox``). docs/storage.md describes the model::

    components:
      emb:
        impl: tier
        placement: cache                 # upper tiers cache the last one (static | cache | shard)
        tiers:
          - {memory: dram, capacity: 8MiB, precision: int8, policy: evlfu}
          - {memory: ssd0, capacity: 3840GB}
        evprox: {max_fraction: 0.05}

Cross-field rules that need only the node are :func:`tier_errors` (the kind's ``check``); those that need the
workload's tables or the memories' sizes are checked when the tier is built (:mod:`archsim.storage.tiers`).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from archsim.cxl.spec import parse_bytes

__all__ = ["PRECISION_BITS", "TierLevel", "EVProxSpec", "VectorSpec", "TierNode", "tier_errors"]

#: bits per element of each precision a tier may store rows in (EVMix)
PRECISION_BITS: dict[str, int] = {"fp32": 32, "fp16": 16, "int8": 8, "int4": 4}
POLICIES = ("lru", "lfu", "evlfu", "static_hot", "random")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


class TierLevel(_Strict):
    """One tier: a region of a memory component holding rows at a precision."""

    memory: str = Field(..., description="the memory component (a graph node of role memory: a dram, an ssd, a "
                                         "pcie_link or cxl link to a memory, ...) that holds this tier's rows")
    capacity: int = Field(..., gt=0, description="bytes of the memory this tier may use (> 0; an integer or "
                                                 "e.g. '64MiB')")
    base: int | None = Field(None, ge=0, description="address in the memory of the tier's first byte (default: "
                                                     "the start of the memory's window, 0 for a DRAM); two tiers "
                                                     "on one memory need disjoint regions")
    precision: Literal["fp32", "fp16", "int8", "int4"] = Field(
        "fp32", description="EVMix: the precision rows are stored in here: fp32 (4 B/element), fp16 (2 B), int8 "
                            "(1 B) or int4 (0.5 B), the last two with one fp32 scale per row (symmetric per-row "
                            "quantisation); a row takes fewer bytes, so more rows fit and fewer bytes are read")
    policy: Literal["lru", "lfu", "evlfu", "static_hot", "random"] | None = Field(
        None, description="placement cache, a tier above the last: replacement (EVCache): lru, lfu, evlfu "
                          "(EVStore's EvLFU: frequency with aging), static_hot (the profile's hottest rows "
                          "pinned), random (default lru)")
    ways: int | None = Field(None, gt=0, description="placement cache: associativity of the tier's tags "
                                                     "(default: fully associative, as EVStore's hash maps)")
    aging_period: int | None = Field(None, gt=0, description="policy evlfu: lookups between two halvings of "
                                                             "every count (default 8 x the tier's rows)")
    seed: int | None = Field(None, ge=0, description="policy random: seed of the victim draws (default 0)")
    rows: int | None = Field(None, gt=0, description="placement static, a tier above the last: how many of the "
                                                     "profile's hottest rows it holds (default: as many as fit); "
                                                     "must fit its capacity")
    cost: float = Field(1.0, gt=0, description="placement shard: the relative cost of one access here (RecShard's "
                                               "per-device cost; the greedy balances cost x expected accesses)")

    @field_validator("capacity", "base", mode="before")
    @classmethod
    def _bytes(cls, v: Any) -> Any:
        return v if v is None else parse_bytes(v)


class VectorSpec(_Strict):
    """The embedding vectors the quantisation error (EVMix) and the surrogate search (EVProx) are computed on:
    rows of the table's dimension drawn with a fixed seed. Each of a table's rows belongs to cluster
    ``row mod clusters`` and is its cluster's centre (N(0, std)) plus N(0, std x noise): trained embeddings of
    similar items lie close together (the locality EVProx relies on); ``clusters: 0`` draws every row
    independently from N(0, std)."""

    std: float = Field(0.01, gt=0, le=1e6, description="standard deviation of an element (fp32)")
    clusters: int = Field(64, ge=0, le=1_000_000, description="clusters per table (0: independent rows)")
    noise: float = Field(0.25, ge=0, le=100, description="a row's spread about its cluster's centre, relative "
                                                         "to std")
    samples: int = Field(256, ge=1, le=100_000, description="rows per table the quantisation error is "
                                                            "measured on")
    seed: int = Field(0, ge=0, description="seed of the draws")


class EVProxSpec(_Strict):
    """EVProx: a surrogate map built offline from the profile. Each cold key the profile saw (a row outside its
    ``hot_rows`` hottest) gets the hot key of its table whose vector is closest, if it lies within
    ``max_distance``; on a miss whose surrogate is cached the surrogate is served (an approximate hit), while
    approximate hits stay within ``max_fraction`` of the lookups."""

    max_fraction: float = Field(0.05, ge=0, le=1, description="the most approximate hits may be of the lookups "
                                                              "so far (0 to 1): the accuracy budget")
    max_distance: float = Field(0.5, gt=0, le=100, description="relative L2 distance ||v - s|| / ||v|| beyond "
                                                               "which a key gets no surrogate")
    hot_rows: int | None = Field(None, gt=0, description="how many of the profile's hottest rows are surrogate "
                                                         "candidates (default: as many as the cache tiers hold)")
    map_bytes: int | None = Field(None, gt=0, description="memory for the map, 8 B per entry (key and surrogate, "
                                                          "4 B each): the hottest cold keys first (default: every "
                                                          "cold key of the profile)")

    @field_validator("map_bytes", mode="before")
    @classmethod
    def _bytes(cls, v: Any) -> Any:
        return v if v is None else parse_bytes(v)


class TierNode(_Strict):
    """A tier manager over an ordered list of memories (fastest first); the host sees one memory holding the
    tables at their layout's addresses."""

    tiers: list[TierLevel] = Field(..., min_length=1, description="the memories, fastest first")
    placement: Literal["static", "cache", "shard"] = Field(
        "cache", description="static: the profile's hottest rows that fit go to tier 0, the next to tier 1, ..., "
                             "the rest to the last tier (FAE, Hotline); cache: the tiers above the last cache it "
                             "(filled on a miss, victims moved one tier down); shard: rows spread over the tiers "
                             "as devices by expected access cost, capacity respected (RecShard)")
    unit_rows: int = Field(1, ge=1, le=65536, description="rows per placement unit (1: the embedding row; "
                                                         "28 rows of 144 B: about a 4 KiB page)")
    profile_batches: int = Field(4, ge=1, description="the workload's first batches profiled for row counts "
                                                      "(static, shard, static_hot, evprox)")
    lookup_ns: float = Field(0.0, ge=0, le=1e6, description="the tier manager's own time per request (its index "
                                                            "lookup), before the memory is read")
    evprox: EVProxSpec | None = Field(None, description="EVProx approximate hits (placement cache; absent: off)")
    vectors: VectorSpec = Field(default_factory=VectorSpec, description="vectors for the EVMix error figure "
                                                                        "and the EVProx search")

    @property
    def reads_profile(self) -> bool:
        """Whether building the tier needs the workload's profile (the builder hands it the first batches)."""
        return (self.placement != "cache" or self.evprox is not None
                or any(t.policy == "static_hot" for t in self.tiers))


def tier_errors(p: TierNode) -> list[tuple[tuple, str]]:
    """Rules that need only the node, as (key path inside the node, message)."""
    errs: list[tuple[tuple, str]] = []
    n = len(p.tiers)
    last = n - 1
    if p.placement == "cache" and n < 2:
        errs.append((("tiers",), "placement cache needs a tier to cache and one below it (at least 2 tiers)"))
    for i, t in enumerate(p.tiers):
        if t.policy is not None and (p.placement != "cache" or i == last):
            where = "placement " + p.placement if p.placement != "cache" else "the last (backing) tier"
            errs.append((("tiers", i, "policy"), f"a replacement policy is for the tiers that cache; {where} has "
                                                  f"none"))
        for key, policy in (("aging_period", "evlfu"), ("seed", "random")):
            if getattr(t, key) is not None and (t.policy or "lru") != policy:
                errs.append((("tiers", i, key), f"is a parameter of policy {policy}, not of {t.policy or 'lru'}"))
        if t.ways is not None and (p.placement != "cache" or i == last):
            errs.append((("tiers", i, "ways"), "only a caching tier has ways"))
        if t.rows is not None and (p.placement != "static" or i == last):
            errs.append((("tiers", i, "rows"), "rows is for placement static's tiers above the last"))
        if t.cost != 1.0 and p.placement != "shard":
            errs.append((("tiers", i, "cost"), "cost is for placement shard"))
    if p.evprox is not None and p.placement != "cache":
        errs.append((("evprox",), "EVProx serves a cached surrogate on a miss: it needs placement cache"))
    if p.evprox is not None and p.unit_rows != 1:
        errs.append((("evprox",), "EVProx maps rows to rows: it needs unit_rows 1"))
    return errs
