"""Configuration schema of a GPU (component kind ``gpu``): SMs, L1, the partitioned L2, the HBM below them, and
the EmbeddingBag kernel's launch shape.

Every number has a range and a description; the shipped configs (``hwconfigs/gpu_h100.yaml``,
``hwconfigs/gpu_h200.yaml``) name the source of each value. docs/gpu.md describes the model.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["GPUSpec", "L1Spec", "L2Spec", "EmbeddingBagKernelSpec", "KernelDtypeSchedule"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


def _pow2(v: int) -> bool:
    return v > 0 and not v & (v - 1)


class L1Spec(_Strict):
    """An SM's L1 data cache: 128-byte lines of four 32-byte sectors, filled sector by sector."""

    bytes: int = Field(..., gt=0, le=1 << 24, description="data capacity left to L1 after the shared-memory "
                                                         "carve-out (B, at most 16 MiB)")
    ways: int = Field(..., ge=1, le=1024, description="associativity")
    line_bytes: int = Field(128, description="line (tag) size, B: a power of two, 32 to 1024")
    sector_bytes: int = Field(32, description="sector size, B: the unit filled and counted (a power of two "
                                              "dividing line_bytes)")
    hit_latency_ns: float = Field(..., ge=0, le=10_000, description="load-to-use latency of a hit (ns)")
    max_outstanding_sectors: int = Field(
        ..., ge=1, le=1 << 20, description="sector misses an SM keeps in flight (its miss-status holding "
                                          "capacity); loads beyond it wait for a completion")

    @model_validator(mode="after")
    def _geometry(self) -> L1Spec:
        if not _pow2(self.line_bytes) or not 32 <= self.line_bytes <= 1024:
            raise ValueError(f"line_bytes must be a power of two from 32 to 1024, got {self.line_bytes}")
        if not _pow2(self.sector_bytes) or self.line_bytes % self.sector_bytes:
            raise ValueError(f"sector_bytes must be a power of two dividing line_bytes {self.line_bytes}, "
                             f"got {self.sector_bytes}")
        lines = self.bytes // self.line_bytes
        if lines < self.ways or lines % self.ways or self.bytes % self.line_bytes:
            raise ValueError(f"bytes {self.bytes} is not a whole number of {self.ways}-way sets of "
                             f"{self.line_bytes} B lines")
        return self


class L2Spec(_Strict):
    """The L2 shared by all SMs: ``partitions`` halves, each caching for the SMs attached to it."""

    bytes: int = Field(..., gt=0, le=1 << 32, description="total capacity (B) over all partitions")
    partitions: int = Field(2, ge=1, le=8, description="L2 partitions; an SM is attached to one (its near "
                                                       "partition) and reaches the others through the "
                                                       "crossbar")
    ways: int = Field(..., ge=1, le=1024, description="associativity of each partition")
    line_bytes: int = Field(128, description="line (tag) size, B")
    sector_bytes: int = Field(32, description="sector size, B")
    slices: int = Field(..., ge=1, le=4096, description="slices over all partitions (address-hashed); each "
                                                        "serves slice_bytes_per_clock")
    slice_bytes_per_clock: int = Field(..., ge=1, le=4096, description="bytes a slice returns per L2 clock")
    clock_mhz: float = Field(..., gt=0, le=10_000, description="L2 clock (MHz)")
    near_hit_ns: float = Field(..., ge=0, le=10_000, description="load-to-use latency of a hit in the near "
                                                                 "partition, unloaded (ns)")
    far_hit_ns: float = Field(..., ge=0, le=10_000, description="load-to-use latency of a hit found only in a "
                                                                "far partition, unloaded (ns)")
    duplicate_in_near: bool = Field(
        True, description="a line an SM reads from a far partition or from memory is also filled into the "
                          "SM's near partition (the partitions 'localise' data for their SMs); false: one "
                          "copy, in the line's home partition")
    persisting_max_bytes: int = Field(0, ge=0, le=1 << 32, description="largest set-aside for persisting "
                                                                        "accesses (cudaLimitPersistingL2CacheSize)")
    persisting_quantum_bytes: int = Field(1, ge=1, le=1 << 32, description="the set-aside is rounded up to a "
                                                                           "multiple of this")

    @model_validator(mode="after")
    def _geometry(self) -> L2Spec:
        for k in ("line_bytes", "sector_bytes"):
            if not _pow2(getattr(self, k)):
                raise ValueError(f"{k} must be a power of two, got {getattr(self, k)}")
        if self.line_bytes % self.sector_bytes:
            raise ValueError(f"sector_bytes {self.sector_bytes} must divide line_bytes {self.line_bytes}")
        part = self.bytes // self.partitions
        lines = part // self.line_bytes
        if self.bytes % self.partitions or part % self.line_bytes or lines < self.ways or lines % self.ways:
            raise ValueError(f"bytes {self.bytes} is not {self.partitions} partitions of whole {self.ways}-way "
                             f"sets of {self.line_bytes} B lines")
        if self.far_hit_ns < self.near_hit_ns:
            raise ValueError(f"far_hit_ns {self.far_hit_ns} is below near_hit_ns {self.near_hit_ns}")
        if self.persisting_max_bytes > self.bytes:
            raise ValueError(f"persisting_max_bytes {self.persisting_max_bytes} is more than the L2's "
                             f"{self.bytes} B")
        return self

    @property
    def peak_GBps(self) -> float:
        return self.slices * self.slice_bytes_per_clock * self.clock_mhz / 1000


class KernelDtypeSchedule(_Strict):
    """What the compiler does differently for one element type: the gather loop's schedule and length (from
    that build's SASS). A key left out keeps the kernel's own value."""

    rows_in_flight: int | None = Field(None, ge=1, le=64, description="row loads the gather loop issues before "
                                                                      "its first use of one")
    row_instructions: int | None = Field(None, ge=1, le=10_000, description="instructions a warp issues per "
                                                                            "pooled row")
    gather_overlap: float | None = Field(None, ge=0.0, le=1.0, description="share of a gather round's "
                                                                          "instructions issued while its row "
                                                                          "loads are in flight")


class EmbeddingBagKernelSpec(_Strict):
    """PyTorch's ``EmbeddingBag_updateOutputKernel_sum_mean``: launch shape, resources, and the instruction
    counts of its loops (from its SASS, validation/gpu/data/sass_embbag.csv)."""

    block_x: int = Field(32, ge=1, le=1024, description="threads across the embedding dimension (one warp)")
    block_y: int = Field(8, ge=1, le=32, description="warps per block, one (bag, 32-column chunk) each")
    grid_blocks: int = Field(1024, ge=1, le=1 << 31, description="blocks in the grid (the warps stride over "
                                                                 "the chunks)")
    registers_per_thread: int = Field(40, ge=1, le=255, description="registers the compiled kernel takes "
                                                                     "(limits resident blocks)")
    warps_per_sm: int | None = Field(None, ge=1, le=64, description="occupancy override: resident warps per SM "
                                                                     "(default: what registers and limits allow)")
    index_unroll: int = Field(16, ge=1, le=64, description="index loads the bag-size pass issues at once")
    row_instructions: int = Field(29, ge=1, le=10_000, description="instructions a warp issues per pooled row "
                                                                   "(the index check and the gather loop)")
    chunk_instructions: int = Field(250, ge=0, le=100_000, description="instructions a warp issues per chunk "
                                                                       "besides its rows (set-up, offsets, "
                                                                       "the store)")
    step_dependent_cycles: int = Field(
        24, ge=0, le=10_000, description="cycles of the dependent chain from a row's data to the next row's "
                                         "load being issued (FFMA, address arithmetic, issue)")
    issue_cycles: float = Field(
        1.0, ge=0.0, le=1000.0, description="cycles a warp of the gather loop takes per instruction when no other "
                                            "warp competes for its scheduler (issue, fixed-latency dependencies, "
                                            "dispatch, branches)")
    chunk_issue_cycles: float | None = Field(
        None, ge=0.0, le=1000.0, description="the same for a chunk's own instructions (set-up, offsets, index "
                                             "check, stores; default: issue_cycles)")
    issue_contention: float = Field(
        0.0, ge=0.0, le=1000.0, description="cycles a warp waits per instruction for its scheduler and math "
                                            "pipes, times the schedulers' issue utilisation U (0 to 1)")
    warp_priority: Literal["equal", "age"] = Field(
        "equal", description="how an SM's schedulers share the wait for issue among its warps: equal (each waits "
                             "the SM's mean) or age (the oldest ready warp issues first: of c live warps the k-th "
                             "oldest waits 2k / (c - 1) times the mean, the same mean in all)")
    gather_overlap: float = Field(
        0.0, ge=0.0, le=1.0, description="share of a gather round's instructions the warp issues while the "
                                         "round's row loads are in flight (they hide that much of the latency)")
    rows_in_flight: int = Field(2, ge=1, le=64, description="row loads a warp of the gather loop has in flight: "
                                                            "PyTorch's loop, unrolled and software-pipelined by "
                                                            "the compiler, issues two rows' loads before the "
                                                            "first add (SASS)")
    prefetch_distance: int = Field(0, ge=0, le=64, description="software prefetch: further rows of a bag loaded "
                                                               "ahead of use, on top of rows_in_flight (the MICRO "
                                                               "2024 paper's optimisation; 0: PyTorch's kernel)")
    by_dtype: dict[Literal["float32", "float16", "bfloat16"], KernelDtypeSchedule] = Field(
        default_factory=dict,
        description="per element type, the loop's schedule where the compiled kernel differs (the half-precision "
                    "build converts each element and issues its four rows' loads at once)")
    pin_hot_rows: int = Field(0, ge=0, le=1 << 40, description="rows of the table (the hottest, by profile) "
                                                               "held in the L2's persisting set-aside")
    fetch_sectors: int = Field(
        28400, ge=0, le=1 << 40,
        description="L2 sectors a launch reads for the GPCs besides the SMs' L1 misses (the kernel's instruction "
                    "and constant fetches); each is looked up in the near partition and, with two partitions, "
                    "again in its home over the fabric, and hits. Measured on an H100 as Nsight Compute's "
                    "lts__t_sectors_srcnode_gpc minus lts__t_sectors_srcunit_tex: 27,400 to 28,700 on five "
                    "cases with the L2 flushed (validation/gpu/data/l2_cold_accounting_h100)")

    def for_dtype(self, dtype: str) -> EmbeddingBagKernelSpec:
        """The kernel as compiled for ``dtype``: ``by_dtype[dtype]``'s keys over this one's."""
        sched = self.by_dtype.get(dtype)  # type: ignore[call-overload]
        if sched is None:
            return self
        return self.model_copy(update={key: v for key, v in sched.model_dump().items() if v is not None})


class GPUSpec(_Strict):
    """A GPU: ``sm_count`` SMs at ``sm_clock_mhz``, per-SM L1, a partitioned L2, HBM from the DRAM model."""

    sm_count: int = Field(..., ge=1, le=1024, description="streaming multiprocessors")
    sm_clock_mhz: float = Field(..., gt=0, le=10_000, description="SM clock while the kernel runs (MHz)")
    schedulers_per_sm: int = Field(4, ge=1, le=16, description="warp schedulers (SM sub-partitions), each "
                                                               "issuing one instruction per clock")
    max_warps_per_sm: int = Field(64, ge=1, le=256, description="resident warps an SM can hold")
    max_blocks_per_sm: int = Field(32, ge=1, le=256, description="resident blocks an SM can hold")
    registers_per_sm: int = Field(65536, ge=1024, le=1 << 22, description="32-bit registers per SM")
    l1: L1Spec
    l2: L2Spec
    memory: str = Field(..., description="the dram node of one HBM stack (e.g. {impl: dram, extends: "
                                         "hbm3_5200}); the GPU has hbm_stacks of them")
    hbm_stacks: int = Field(..., ge=1, le=64, description="HBM stacks; lines are spread evenly over them")
    hbm_idle_latency_ns: float = Field(
        ..., gt=0, le=100_000, description="load-to-use latency of a lone load that misses the L2 (ns, a "
                                           "pointer chase over cold lines): the DRAM model's own idle read "
                                           "latency plus the on-chip miss path, which the model adds as a "
                                           "fixed delay")
    hbm_access_bytes: int = Field(64, description="bytes the memory moves per L2 miss at least (a power of two, "
                                                  "32 to 256)")
    launch_ns: float = Field(0.0, ge=0, le=1e9, description="fixed time a kernel adds to its blocks' time: "
                                                            "launch, block dispatch, teardown (ns)")
    block_rotation: list[int] | None = Field(
        None, min_length=1, max_length=4096,
        description="the order in which the block dispatcher hands a launch's first blocks to the SMs: a rotation "
                    "of SM numbers (an SM may come more than once), taken round and round, an SM whose slots are "
                    "full skipped (default: block j on SM j mod sm_count)")
    kernel: EmbeddingBagKernelSpec = Field(default_factory=EmbeddingBagKernelSpec)

    @model_validator(mode="after")
    def _checks(self) -> GPUSpec:
        if self.block_rotation is not None:
            bad = [s for s in self.block_rotation if not 0 <= s < self.sm_count]
            if bad:
                raise ValueError(f"block_rotation names SM {bad[0]}, outside 0 to {self.sm_count - 1}")
            missing = sorted(set(range(self.sm_count)) - set(self.block_rotation))
            if missing:
                raise ValueError(f"block_rotation leaves out SM {missing[0]} (every SM must take blocks)")
        if not _pow2(self.hbm_access_bytes) or not 32 <= self.hbm_access_bytes <= 256:
            raise ValueError(f"hbm_access_bytes must be a power of two from 32 to 256, got {self.hbm_access_bytes}")
        if self.l2.partitions > self.sm_count:
            raise ValueError(f"l2.partitions {self.l2.partitions} is more than sm_count {self.sm_count}")
        if self.kernel.block_y > self.max_warps_per_sm:
            raise ValueError(f"kernel.block_y {self.kernel.block_y} warps do not fit max_warps_per_sm "
                             f"{self.max_warps_per_sm}")
        return self

    def warps_per_sm(self) -> int:
        """Resident warps per SM for the kernel: whole blocks, limited by warps, blocks and registers."""
        k = self.kernel
        threads = k.block_x * k.block_y
        by_regs = self.registers_per_sm // (k.registers_per_thread * threads)
        limit = min(self.max_blocks_per_sm, self.max_warps_per_sm // k.block_y)
        if k.warps_per_sm is not None:  # occupancy set by hand (a build with fewer registers, launch bounds)
            blocks = min(limit, k.warps_per_sm // k.block_y)
        else:
            blocks = min(limit, by_regs)
        return max(1, blocks) * k.block_y

