"""Schema of the ``nmp:`` section: where the processing units sit and what they cost.

Each parameter carries its source or the assumption behind it in the hwconfigs that use it
(``hwconfigs/recnmp.yaml``); the defaults below are round numbers, not a paper's values.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from archsim.cache.spec import set_geometry_error


class NMPSpec(BaseModel):
    """NMP units at one level of the DRAM: rank (RecNMP), bank group or bank (ReCross)."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

    level: Literal["rank", "bankgroup", "bank", "cross"] = Field(
        "rank", description="where the units that read and pool sit: rank (one per rank, DIMM buffer, "
                            "RecNMP), bankgroup or bank (inside the DRAM die), cross (ReCross: hot rows at "
                            "rank level, cold rows at bank level)")
    cross_hot_level: Literal["rank", "bank"] = Field(
        "rank", description="cross level: where the hot rows go (rank: hot rows at the rank unit and its "
                            "cache, cold rows at bank units; bank: the other way round)")
    hot_fraction: float = Field(
        0.01, ge=0, le=1, description="the most frequently accessed fraction of each table's rows, by "
                                      "profiled frequency: processed at rank level (cross), cached (admit hot)")
    hot_access_share: float | None = Field(
        None, ge=0, le=1, description="instead of hot_fraction: the hottest rows whose profiled accesses stay "
                                      "within this share of each table's accesses (the split of work between "
                                      "the levels, as ReCross's bandwidth-aware partitioning balances it)")
    hot_min_count: int = Field(
        2, ge=1, description="cross level, rank_cache_admit hot: a row is hot only if the profile counted it "
                             "at least this often")
    profile_batches: int = Field(
        4, ge=1, description="cross level, rank_cache_admit hot: batches of the workload profiled (counted) to "
                             "find hot rows")
    bankgroup_adders: bool = Field(
        True, description="bank and cross levels: bank units' partial sums are added per bank group (over the "
                          "group's bus, one burst per nCCD_L) before one per group crosses the rank's bus "
                          "(the reduction tree of TRiM and ReCross); false: every bank's crosses the rank bus")
    clock_mhz: float = Field(1600.0, gt=0, description="clock of the units' pooling datapath")
    lanes: int = Field(16, gt=0, description="fp32 adds per unit clock (pooling throughput)")
    inst_bits: int = Field(79, gt=0, le=1 << 16, description="bits of one NMP instruction (one embedding-row "
                                                              "read) sent over the channel's C/A bus")
    ca_bits_per_cycle: float = Field(  # at least a bit per clock: a fuzzed 5e-324 made instruction times NaN
        24, ge=1, le=1 << 16, description="bits per DRAM clock of the channel pins carrying NMP instructions (C/A, "
                                          "or C/A and DQ as in RecNMP: 2 x 79 bits per clock); fractions of a "
                                          "clock accumulate")
    rank_cache_kib: int = Field(0, ge=0, le=1 << 20,  # a fuzzed 2^40 KiB was a MemoryError
                                description="per-unit cache of embedding lines (RecNMP's RankCache); 0: none")
    rank_cache_admit: Literal["all", "hot"] = Field(
        "all", description="which rows the rank cache keeps: all it reads, or only the profiled hot rows "
                           "(hot_fraction, hot_min_count, profile_batches; RecNMP's LocalityBit from hot-entry "
                           "profiling), the others read around it")
    rank_cache_ways: int = Field(8, gt=0, le=1 << 16, description="associativity of the rank cache (LRU)")
    rank_cache_hit_ns: float = Field(2.5, ge=0, description="rank-cache hit latency")
    rank_cache_energy_pJ: float = Field(
        50.0, ge=0, description="energy of one rank-cache line access (lookup or fill), pJ")
    poolings_per_packet: int = Field(
        0, ge=0, le=16, description="RecNMP packets: the host sends bags in packets of this many poolings "
                                    "(at most 16: the 4-bit PsumTag) and the next packet only when the last "
                                    "one's slowest rank is done; 0: no packets, every bag is sent at once")
    to_memory_ns: float = Field(25.0, ge=0, description="host to the memory controller, one way "
                                                        "(the bag's instructions leave after it)")
    from_memory_ns: float = Field(25.0, ge=0, description="memory controller to the host core, one way")
    host_combine_ns: float = Field(
        0.0, ge=0, description="host time to add one rank's partial sum into the bag's result")
    compute_energy_pJ: float = Field(
        0.9, ge=0, description="energy of one fp32 add in a unit (Horowitz, ISSCC 2014: 0.9 pJ at 45 nm)")
    io_energy_pJ_per_bit: float = Field(
        0.0, ge=0, description="energy per bit moved over the channel (instructions and partial sums)")

    @model_validator(mode="after")
    def _rank_cache_geometry(self) -> NMPSpec:
        err = set_geometry_error("rank_cache_kib", self.rank_cache_kib, self.rank_cache_ways)
        if err:
            raise ValueError(err)
        return self
