"""PyTorch's EmbeddingBag kernel (``mode="sum"``) on the GPU model, at the level of memory requests per warp.

The kernel (``EmbeddingBag_updateOutputKernel_sum_mean``; validation/gpu/data/sass_embbag.csv) runs blocks of
32 x 8 threads on a grid of 1,024 blocks. Each warp takes a *chunk* (a bag and 32 consecutive columns of it:
``ceil(dim / 32)`` chunks per bag) and strides over the grid's warps to its next chunk. Per chunk it

1. loads the bag's two offsets (one dependent round trip);
2. counts the bag's valid indices: ``pooling`` index loads, ``index_unroll`` of them in flight at a time (all
   lanes read the same 8-byte index: one sector each);
3. gathers: for each index, loads it again (an L1 hit), then the chunk's 32 elements of that row (one
   coalesced load of 32 x element bytes: four sectors for fp32), and adds them; the next row's load depends
   on the index; the compiler's software pipelining of the float build issues three rows' loads, waits for the
   first, then issues the fourth: about two exposed latencies per four rows, so a warp keeps
   ``rows_in_flight`` (2) row loads in flight (``prefetch_distance`` > 0 keeps more; the half-precision build
   issues all four before the first use: ``by_dtype``);
4. stores its 32 pooled columns (not waited for).

What is simulated: every sector request of every warp goes through its SM's L1 and the partitioned L2 (sector
caches, :mod:`archsim.gpu.caches`) in a lockstep order (all resident warps' first request, then their second,
...), which gives each request its level (L1 hit, near or far L2 hit, HBM). The time is then a closed queueing
model per wave of blocks (mean-value analysis): resident warps alternate between waiting on memory and issuing,
the HBM's latency comes from the DRAM model at the number of misses in flight
(:func:`archsim.gpu.hbm_curve.loaded_latency_curve`), the L2 slices and the schedulers queue; each warp's time
is the sum of its own requests' latencies at the current load, a block ends with its slowest warp, and a new
block takes its slot (so the last wave runs at a lighter load).

Abstracted away: instruction-level timing beyond the per-row instruction count, divergence, the index
preparation kernel PyTorch launches before this one, bank conflicts of the L1, TLB misses, and the variance of
each request's latency (a level's latency is its mean at the current load).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from archsim.gpu.caches import SectorCache, set_index
from archsim.gpu.spec import GPUSpec

DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2}

#: request levels; a remote memory's misses (host memory, another GPU's HBM) take level ``REMOTE + its index``
L1, NEAR, FAR, HBM, REMOTE = 0, 1, 2, 3, 4
LEVELS = ("l1", "l2_near", "l2_far", "hbm")


@dataclass(frozen=True)
class RemoteMemory:
    """Memory outside the GPU that the kernel reads in place (zero-copy): host memory over PCIe, as a table
    placed in pinned host memory is read (UVA), or another GPU's HBM over NVLink. Its rows sit at line
    addresses ``[first_line, end_line)`` of the GPU's address space; an L2 miss there is read over the link in
    the GPU's access units and cached in the L2 and L1 like any other line.

    ``idle_ns``: a read's latency from the SM at no load (the on-chip miss path, the link both ways, the memory
    behind it), its address translated already; ``raw_GBps``: the link's rate in the direction of the data;
    ``overhead_bytes``: what each completion adds on the wire (a read request's L2-line miss, at most 128 B,
    comes back as one completion); ``request_ns``: the time each read request occupies the path (the root
    complex) besides its wire time; ``curve``: the loaded latency of the memory behind the link against reads
    in flight (None: fixed). Address translation (an IOMMU): each ``page_bytes`` page a launch reads is
    translated once (``walk_ns`` more latency for the requests that wait on it, ``walk_occupancy_ns`` of the
    translation unit's time). The path is one server: a request occupies it for ``request_ns`` + its wire
    time, a translation for ``walk_occupancy_ns``; its throughput bounds the reads. ``cached_across_launches``
    False: the L2 drops the window's lines when a launch starts (pinned host memory is coherent with the CPU:
    lines read by one kernel are not trusted by the next). Abstracted away: the link's ordering and credit flow
    control, an IOTLB that keeps translations from launch to launch, host DRAM traffic from other agents."""

    name: str
    first_line: int
    end_line: int
    idle_ns: float
    raw_GBps: float
    overhead_bytes: int
    access_bytes: int
    curve: Any = None
    request_ns: float = 0.0
    page_bytes: int = 4096
    walk_ns: float = 0.0
    walk_occupancy_ns: float = 0.0
    cached_across_launches: bool = True

    def service_ns(self, requests: float, nbytes: float, pages: float) -> float:
        """Time the path is busy for ``requests`` reads of ``nbytes`` in all, touching ``pages`` new pages."""
        return (requests * (self.request_ns + self.overhead_bytes / self.raw_GBps) + nbytes / self.raw_GBps
                + pages * self.walk_occupancy_ns)

_ZIPF = re.compile(r"^zipf(\d+(?:\.\d+)?)$")


@dataclass(frozen=True)
class EmbeddingBagCase:
    """One EmbeddingBag call: ``batch`` bags of ``pooling`` indices over a ``rows`` x ``dim`` table of ``dtype``;
    indices ``uniform`` or ``zipf<s>`` (a fixed scattering permutation of the ranks), ``batches`` distinct
    batches cycled (as ../shared/reference/gpu/README.md measures)."""

    rows: int
    dim: int
    dtype: str
    batch: int
    pooling: int
    dist: str
    seed: int = 0
    batches: int = 8

    def __post_init__(self) -> None:
        if self.dtype not in DTYPE_BYTES:
            raise ValueError(f"dtype must be one of {', '.join(DTYPE_BYTES)}, got {self.dtype!r}")
        for k in ("rows", "dim", "batch", "pooling", "batches"):
            v = getattr(self, k)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{k} must be a positive integer, got {v!r}")
        if self.rows >= 1 << 40 or self.batch * self.pooling > 1 << 31:
            raise ValueError("rows must be below 2^40 and batch x pooling at most 2^31")
        m = _ZIPF.match(self.dist)
        if self.dist != "uniform" and (m is None or not float(m.group(1)) > 0):
            raise ValueError(f"dist must be uniform or zipf<s> with s > 0 (e.g. zipf1.05), got {self.dist!r}")

    @property
    def elem_bytes(self) -> int:
        return DTYPE_BYTES[self.dtype]

    @property
    def row_bytes(self) -> int:
        return self.dim * self.elem_bytes

    def sampler(self):
        from archsim.workload.distributions import UniformIndex, ZipfIndex

        if self.dist == "uniform":
            return UniformIndex(self.rows)
        s = float(_ZIPF.match(self.dist).group(1))
        return ZipfIndex(self.rows, s, key=[self.seed, 0x5A17])

    def indices(self, b: int) -> np.ndarray:
        """The indices of batch ``b`` (``batch * pooling``, int64), the same for the same seed."""
        rng = np.random.default_rng([self.seed, b % self.batches])
        return self.sampler().sample(rng, self.batch * self.pooling)


@dataclass
class _Layout:
    """Byte addresses of the tensors (each on its own 2 MiB boundary, as the caching allocator places them)."""

    weight: int
    indices: list[int]
    offsets: list[int]
    output: int
    offset2bag: int
    bag_size: int

    @classmethod
    def of(cls, case: EmbeddingBagCase) -> _Layout:
        def up(x: int) -> int:
            return -(-x // (2 << 20)) * (2 << 20)

        a = up(case.rows * case.row_bytes)
        idx_bytes = up(case.batch * case.pooling * 8)
        off_bytes = up((case.batch + 1) * 8)
        indices = [a + i * idx_bytes for i in range(case.batches)]
        a += case.batches * idx_bytes
        offsets = [a + i * off_bytes for i in range(case.batches)]
        a += case.batches * off_bytes
        out = a
        a += up(case.batch * case.row_bytes)
        o2b = a
        a += idx_bytes
        return cls(0, indices, offsets, out, o2b, a)


@dataclass(frozen=True)
class Launch:
    """One EmbeddingBag launch: the table (``dim`` columns of ``elem_bytes``, rows at ``weight``), the bags
    (``indices`` and ``offsets``, with ``offsets[-1] == len(indices)``) and where each tensor sits.

    A table split between HBM and host memory (FAE, Hotline) gives ``hot``, its rows held in HBM (sorted; the
    i-th of them at ``weight + i x row_bytes``), and ``cold_base``, where the whole table sits in host memory
    (row r at ``cold_base + r x row_bytes``; rows not in ``hot`` are read there). Rows another GPU holds in
    its HBM (one cache across GPUs, UGache) are ``peer`` (sorted; the i-th at ``peer_base + i x row_bytes``,
    a window of the GPU's address space that is another GPU's memory)."""

    dim: int
    elem_bytes: int
    weight: int
    indices: np.ndarray
    offsets: np.ndarray
    index_buf: int
    offset_buf: int
    output: int
    offset2bag: int
    bag_size: int
    hot: np.ndarray | None = None
    cold_base: int | None = None
    peer: np.ndarray | None = None
    peer_base: int | None = None
    dtype: str = "float32"  # the element type the kernel was compiled for (its loop's schedule)

    @property
    def row_bytes(self) -> int:
        return self.dim * self.elem_bytes

    def row_address(self, rows: np.ndarray) -> np.ndarray:
        """Byte address of each of ``rows`` (int64)."""
        rb = self.row_bytes
        if self.cold_base is None:
            return self.weight + rows * rb
        addr = self.cold_base + rows * rb
        for held, base in ((self.peer, self.peer_base), (self.hot, self.weight)):
            if held is None or not len(held):
                continue
            slot = np.searchsorted(held, rows)
            inside = slot < len(held)
            found = np.zeros(len(rows), dtype=bool)
            found[inside] = held[slot[inside]] == rows[inside]
            addr = np.where(found, base + slot * rb, addr)
        return addr


@dataclass
class LaunchStats:
    """Counters of one launch: sector lookups and hits per cache, DRAM bytes, and per-warp request rounds."""

    l1_requests: int = 0
    l1_lookups: int = 0
    l1_hits: int = 0
    l1_store_sectors: int = 0
    l2_lookups: int = 0
    l2_hits: int = 0
    l2_far_hits: int = 0
    dram_read_bytes: int = 0
    remote_read_bytes: list[int] = field(default_factory=list)  # per remote memory
    remote_requests: list[int] = field(default_factory=list)  # line requests that missed the L2 there
    remote_pages: list[int] = field(default_factory=list)  # distinct pages of those requests
    chunks_per_row: int = 1
    rounds: np.ndarray | None = None  # (warps, 4 + remotes): dependent rounds per level
    steps: np.ndarray | None = None   # (warps,): instructions each warp issues
    gather_rounds: np.ndarray | None = None  # (warps, 4 + remotes): of ``rounds``, those of the gather loop
    chunk_steps: np.ndarray | None = None    # (warps,): of ``steps``, the chunks' own (not per row)
    warp_sm: np.ndarray | None = None        # (warps,): the SM each warp's block ran on
    dtype: str = "float32"                   # the launch's element type
    extra: dict[str, Any] = field(default_factory=dict)


ENGINE_ENV = "ARCHSIM_GPU_ENGINE"
"""``python`` forces the reference walk (dictionaries per set); default: the compiled one when it is built."""


def _load_c():
    import ctypes
    import os

    if os.environ.get(ENGINE_ENV, "") == "python":
        return None
    try:
        from archsim.gpu import _csector
    except ImportError:
        return None
    lib = ctypes.CDLL(_csector.__file__)
    fn = lib.gpu_serve
    fn.restype = ctypes.c_int64
    return fn


def age_weights(sm: np.ndarray, per_sm: np.ndarray) -> np.ndarray:
    """Each live warp's share of its SM's wait for issue when the schedulers issue the oldest ready warp first
    (``warp_priority: age``): ``sm`` is the SM of each live warp, oldest first (a warp of an earlier block is
    older), ``per_sm`` the live warps per SM. Of c warps on an SM the k-th oldest (k = 0 .. c - 1) waits
    2k / (c - 1) times the SM's mean: the oldest never waits for another warp, the youngest twice the mean, and
    the mean, set by the SM's issue utilisation, is kept. A lone warp waits the mean."""
    order = np.argsort(sm, kind="stable")
    first = np.cumsum(per_sm) - per_sm
    rank = np.empty(len(sm))
    rank[order] = np.arange(len(sm)) - first[sm[order]]
    c = per_sm[sm]
    return np.where(c > 1, 2.0 * rank / np.maximum(c - 1, 1), 1.0)


def _expected_last(finish: np.ndarray, sd: np.ndarray) -> float:
    """E[max_w (finish_w + sd_w Z_w)], Z_w independent standard normals: when the last warp ends, its time and
    every other's being a sum of random request latencies around the mean the model gives."""
    ok = np.isfinite(finish)
    if not ok.any():
        return 0.0
    f, s = finish[ok], sd[ok]
    top = float(f.max())
    span = 8.0 * float(s.max())
    if span <= 0:
        return top
    lo = top - span
    keep = f + 8.0 * s > lo
    f, s = f[keep], np.maximum(s[keep], 1e-9)
    from scipy.special import log_ndtr

    t = np.linspace(lo, top + span, 201)  # the trapezoid agrees with 801 points to 1e-3 ns
    log_cdf = np.zeros(len(t))
    for i in range(0, len(f), 2048):
        log_cdf += log_ndtr((t[:, None] - f[None, i:i + 2048]) / s[None, i:i + 2048]).sum(axis=1)
    tail = 1.0 - np.exp(log_cdf)
    return lo + float(np.sum((tail[1:] + tail[:-1]) * 0.5 * np.diff(t)))


class _Solved(NamedTuple):
    """The closed loop's fixed point at one population (:meth:`EmbeddingBagModel._latencies`)."""

    lat: np.ndarray     # ns per level
    slowest: np.ndarray  # ns per level, of a gather round's slowest row
    var_one: np.ndarray  # ns^2 per level: variance of a round of one request's latency
    var_gather: np.ndarray  # ns^2 per level: of a gather round's slowest row
    waits_at: Any       # wait per instruction (cycles) of SMs whose warps, times sm_count, are these many
    dep: float          # ns of dependent cycles per round
    row_cpi: float      # cycles per instruction of the rows
    chunk_cpi: float    # cycles per instruction of a chunk's own
    cover_ns: float     # ns of a gather round's latency hidden by its instructions
    stretch: float      # >= 1: a bound, not the loop, sets the pace
    utilisation: float  # the schedulers' issue utilisation


class EmbeddingBagModel:
    """The GPU of ``spec`` running EmbeddingBag launches back to back; its caches persist between launches.

    The caches are walked by the compiled walk (``archsim/gpu/_csector.c``) when it is built, else by the Python
    reference (:class:`archsim.gpu.caches.SectorCache`); both give the same results
    (tests/test_gpu.py)."""

    def __init__(self, spec: GPUSpec, hbm_curve=None, engine: str | None = None,
                 remotes: tuple[RemoteMemory, ...] = ()) -> None:
        self.spec = spec
        self.remotes = tuple(remotes)
        l1, l2 = spec.l1, spec.l2
        self.sectors_per_line = l1.line_bytes // l1.sector_bytes
        self.l1_sets = l1.bytes // (l1.line_bytes * l1.ways)
        self.parts = l2.partitions
        self.pin_bytes = 0
        self._cfn = _load_c() if engine != "python" else None
        if engine == "c" and self._cfn is None:
            raise ValueError("the compiled GPU walk is not built (make builds it)")
        self._pinned = np.zeros(0, dtype=np.int64)
        self._pinned_masks = np.zeros(1, dtype=np.uint32)
        self._make_l1()
        self._make_l2(l2.bytes)
        self._curve = hbm_curve

    @property
    def engine(self) -> str:
        return "c" if self._cfn is not None else "python"

    def _make_l1(self) -> None:
        l1, S = self.spec.l1, self.spec.sm_count
        if self._cfn is not None:
            n = S * self.l1_sets * l1.ways
            self._l1c = (np.full(n, -1, dtype=np.int64), np.zeros(n, dtype=np.uint32), np.zeros(n, dtype=np.uint64))
            if not hasattr(self, "_clocks"):
                self._clocks = np.zeros(2, dtype=np.uint64)  # [L1s' stamp counter, L2's]
            self._clocks[0] = 0
            self.l1 = []
        else:
            self.l1 = [SectorCache(self.l1_sets, l1.ways) for _ in range(S)]

    def _make_l2(self, usable: int) -> None:
        l2 = self.spec.l2
        per = usable // self.parts // (l2.line_bytes * l2.ways)
        self.l2_sets = max(1, per)
        if self._cfn is not None:
            n = self.parts * self.l2_sets * l2.ways
            self._l2c = (np.full(n, -1, dtype=np.int64), np.zeros(n, dtype=np.uint32), np.zeros(n, dtype=np.uint64))
            self.l2 = []
        else:
            self.l2 = [SectorCache(self.l2_sets, l2.ways) for _ in range(self.parts)]

    # -------------------------------------------------------------------------------------------- geometry
    def warps_per_sm(self) -> int:
        return self.spec.warps_per_sm()

    def pin(self, case: EmbeddingBagCase, rows: np.ndarray) -> int:
        """Hold ``rows`` of ``case``'s table in the persisting set-aside (as many as it holds); returns how many.
        The set-aside is taken out of every partition's capacity."""
        l2 = self.spec.l2
        want = len(rows) * case.row_bytes
        aside = min(l2.persisting_max_bytes, -(-want // l2.persisting_quantum_bytes) * l2.persisting_quantum_bytes)
        if aside <= 0:
            return 0
        self.pin_bytes = aside
        self._make_l2(l2.bytes - aside)
        n = min(len(rows), aside // case.row_bytes)
        lb = l2.line_bytes
        lines = []
        for r in np.asarray(rows[:n], dtype=np.int64):
            a = int(r) * case.row_bytes
            lines.extend(range(a // lb, (a + case.row_bytes - 1) // lb + 1))
        if self._cfn is not None:
            self._pinned = np.unique(np.asarray(lines, dtype=np.int64))
            self._pinned_masks = np.zeros(self.parts * len(self._pinned), dtype=np.uint32)
        for part in self.l2:
            part.pin(lines)
        return n

    # ----------------------------------------------------------------------------------------- cache walk
    def _drop_remote_lines(self) -> None:
        """The L2 forgets the lines of remote windows that are not kept from launch to launch."""
        for rm in self.remotes:
            if rm.cached_across_launches:
                continue
            lo, hi = rm.first_line, rm.end_line
            if self._cfn is not None:
                tags, masks, _ = self._l2c
                m = (tags >= lo) & (tags < hi)
                tags[m] = -1
                masks[m] = 0
            else:
                for part in self.l2:
                    for d in part.sets:
                        for line in [x for x in d if lo <= x < hi]:
                            del d[line]

    def _walk(self, ln: Launch, sm_map: np.ndarray | None = None) -> LaunchStats:
        """Send one launch's requests through the caches in lockstep order; per warp, count its dependent
        rounds by level. The L1s start empty (a kernel launch invalidates them; the L2 keeps its lines, but
        for those of remote windows not kept across launches). Block j of a wave runs on SM
        ``block_placement()[j]``, or on ``sm_map`` of that."""
        self._make_l1()
        self._drop_remote_lines()
        spec, k = self.spec, self.spec.kernel.for_dtype(ln.dtype)
        S = spec.sm_count
        wps = self.warps_per_sm()
        bps = wps // k.block_y
        W = k.grid_blocks * k.block_y
        cpb = -(-ln.dim // k.block_x)
        offs = np.asarray(ln.offsets, dtype=np.int64)
        nbags = len(offs) - 1
        lengths = np.diff(offs)
        C = nbags * cpb
        K = -(-C // W)
        eb = ln.elem_bytes
        row_bytes = ln.row_bytes
        idx = np.asarray(ln.indices, dtype=np.int64)
        sb = spec.l1.sector_bytes
        spl = self.sectors_per_line
        st = LaunchStats(dtype=ln.dtype)
        rounds = np.zeros((W, REMOTE + len(self.remotes)), dtype=np.int64)
        steps = np.zeros(W, dtype=np.int64)
        grounds = np.zeros_like(rounds)
        l1c, l2c = self.l1, self.l2
        l1_sets, l2_sets, P = self.l1_sets, self.l2_sets, self.parts
        hbm_unit = spec.hbm_access_bytes
        hbm_sectors = max(1, hbm_unit // sb)
        dup = spec.l2.duplicate_in_near
        part_of_sm = [(sm * P) // S for sm in range(S)]
        full = (1 << spl) - 1
        # l1 lookups, l1 hits, l2 lookups, l2 hits, far hits, dram sectors, l1 load requests, store sectors
        counters = [0, 0, 0, 0, 0, 0, 0, 0]

        remotes = self.remotes
        remote_sectors = [0] * len(remotes)
        remote_requests = [0] * len(remotes)
        remote_pages: list[list[np.ndarray]] = [[] for _ in remotes]

        def serve(sm, lines, masks, out, store) -> None:
            """``_serve``, then the misses to a remote memory's lines take its level (and its bytes)."""
            fetched = np.zeros(len(lines), dtype=np.int64)
            _serve(sm, lines, masks, out, fetched, store)
            if not remotes or store:
                return
            for r, rm in enumerate(remotes):
                m = (out == HBM) & (lines >= rm.first_line) & (lines < rm.end_line)
                if m.any():
                    out[m] = REMOTE + r
                    remote_sectors[r] += int(fetched[m].sum())
                    remote_requests[r] += int(m.sum())
                    if rm.walk_occupancy_ns or rm.walk_ns:
                        remote_pages[r].append(np.unique(lines[m] * spec.l1.line_bytes // rm.page_bytes))

        def request(sm: int, addrs: np.ndarray, nbytes: int, store: bool = False, merge: bool = False
                    ) -> np.ndarray:
            """Levels of one request per warp: warp i asks ``nbytes`` at ``addrs[i]`` from SM ``sm[i]``.
            ``merge``: the warps ask at the same instant, so a warp that finds a line another one of them is
            fetching waits for that fetch (it takes the fetch's level, not a hit's)."""
            first = addrs // sb
            last = (addrs + nbytes - 1) // sb
            lines = first // spl
            nlines = last // spl - lines + 1
            out = np.zeros(len(addrs), dtype=np.int64)
            counters[7 if store else 6] += len(addrs) if not store else int((last - first + 1).sum())
            if np.all(nlines == 1):
                masks = ((1 << (last - first + 1)) - 1) << (first % spl)
                serve(sm, lines, masks, out, store)
                if merge and len(lines) > 1:
                    uniq, inv = np.unique(lines, return_inverse=True)
                    worst = np.zeros(len(uniq), dtype=np.int64)
                    np.maximum.at(worst, inv, out)
                    out = worst[inv]
                return out
            for j in range(int(nlines.max())):  # a request spanning lines: each line's part, worst level
                ln = lines + j
                lo = np.maximum(first, ln * spl)
                hi = np.minimum(last, ln * spl + spl - 1)
                sel = np.nonzero(hi >= lo)[0]
                masks = ((1 << (hi[sel] - lo[sel] + 1)) - 1) << (lo[sel] % spl)
                part = np.zeros(len(sel), dtype=np.int64)
                serve(sm[sel], ln[sel], masks, part, store)
                out[sel] = np.maximum(out[sel], part)
            return out

        cfn = self._cfn
        if cfn is not None:
            import ctypes

            def ptr(a: np.ndarray):
                return a.ctypes.data_as(ctypes.c_void_p)

            l1t, l1m, l1s = self._l1c
            l2t, l2m, l2s = self._l2c
            pos = np.asarray(part_of_sm, dtype=np.int64)
            cnt = np.zeros(6, dtype=np.int64)
            fixed = [ptr(l1t), ptr(l1m), ptr(l1s), ctypes.c_int64(l1_sets), ctypes.c_int64(spec.l1.ways),
                     ptr(l2t), ptr(l2m), ptr(l2s), ctypes.c_int64(l2_sets), ctypes.c_int64(spec.l2.ways),
                     ptr(pos), ctypes.c_int64(int(dup)), ctypes.c_int64(hbm_sectors), ctypes.c_int64(full),
                     ptr(self._clocks), ptr(cnt), ctypes.c_int64(len(self._pinned)), ptr(self._pinned),
                     ptr(self._pinned_masks)]

        def _serve(sm, lines, masks, out, fetched, store) -> None:
            s1 = set_index(lines, l1_sets)
            s2 = set_index(lines, l2_sets)
            home = set_index(lines ^ (lines >> 9), P) if P > 1 else np.zeros(len(lines), dtype=np.int64)
            c = counters
            if cfn is not None:
                args = [np.ascontiguousarray(a, dtype=np.int64) for a in (lines, masks, sm, s1, s2, home)]
                res = np.zeros(len(lines), dtype=np.int64)
                cnt[:] = 0
                cfn(ctypes.c_int64(len(lines)), *[ptr(a) for a in args], ctypes.c_int64(int(store)), ptr(res),
                    *fixed)
                out[:] = res & 15
                fetched[:] = res >> 4
                for j in range(6):
                    c[j] += int(cnt[j])
                return
            for i in range(len(lines)):
                line = int(lines[i])
                want = int(masks[i])
                n = want.bit_count()
                near = part_of_sm[int(sm[i])]
                if not store:
                    c[0] += n
                    miss = l1c[int(sm[i])].access(int(s1[i]), line, want)
                    c[1] += n - miss.bit_count()
                    if not miss:
                        out[i] = L1
                        continue
                else:
                    miss = want
                m = miss.bit_count()
                h = int(home[i])
                s2i = int(s2[i])
                if store:  # a write allocates its sectors (no read): near, and home when that is another
                    l2c[h].access(s2i, line, miss)
                    looks = m * (2 if dup and h != near else 1)
                    if dup and h != near:
                        l2c[near].access(s2i, line, miss)
                    c[2] += looks
                    c[3] += looks
                    out[i] = NEAR
                    continue
                if dup or h == near:
                    # the near partition first; what it lacks is looked up again in the line's home
                    m1 = l2c[near].access(s2i, line, miss)
                    c[2] += m
                    c[3] += m - m1.bit_count()
                    if h == near or not m1:
                        m2, far = m1, 0
                    else:
                        m2 = l2c[h].access(s2i, line, m1)
                        c[2] += m1.bit_count()
                        c[3] += m1.bit_count() - m2.bit_count()
                        far = m1 & ~m2
                else:
                    m2 = l2c[h].access(s2i, line, miss)
                    c[2] += m
                    c[3] += m - m2.bit_count()
                    far = (miss & ~m2) if h != near else 0
                c[4] += far.bit_count()
                if m2:
                    # DRAM moves whole access units: the missing sectors' units are read and filled
                    unit = 0
                    x = m2
                    while x:
                        low = (x & -x).bit_length() - 1
                        blk = ((1 << hbm_sectors) - 1) << (low - low % hbm_sectors)
                        unit |= blk
                        x &= ~blk
                    unit &= full
                    c[5] += unit.bit_count()
                    fetched[i] = unit.bit_count()
                    if unit != m2:
                        l2c[h].access(s2i, line, unit)
                        if dup and h != near:
                            l2c[near].access(s2i, line, unit)
                    out[i] = HBM
                elif far:
                    out[i] = FAR
                else:
                    out[i] = NEAR

        # blocks in waves of S * bps; block j of a wave sits on the SM block_placement gives it
        nblocks = k.grid_blocks
        slots = S * bps
        place = self.block_placement()
        warp_sm = np.zeros(W, dtype=np.int64)
        for w0 in range(0, nblocks, slots):
            blocks = np.arange(w0, min(nblocks, w0 + slots))
            warps = (blocks[:, None] * k.block_y + np.arange(k.block_y)[None, :]).ravel()
            on = place[blocks - w0]
            sm_of = np.repeat(on if sm_map is None else sm_map[on], k.block_y)
            warp_sm[warps] = sm_of
            for kk in range(K):
                c = warps + kk * W
                live = c < C
                if not live.any():
                    break
                wl, cl, sml = warps[live], c[live], sm_of[live]
                bag = cl // cpb
                col0 = (cl % cpb) * k.block_x
                first = col0 == 0
                ncols = np.minimum(k.block_x, ln.dim - col0)
                begin = offs[bag]
                blen = lengths[bag]
                # 1. offsets[bag] and offsets[bag + 1]: two loads, one round
                lv = np.maximum(request(sml, ln.offset_buf + bag * 8, 8, merge=True),
                                request(sml, ln.offset_buf + bag * 8 + 8, 8, merge=True))
                np.add.at(rounds, (wl, lv), 1)
                steps[wl] += k.chunk_instructions
                # 2. the bag-size pass: the bag's index loads, index_unroll at a time
                ibase = ln.index_buf + begin * 8
                maxlen = int(blen.max()) if len(blen) else 0
                for r0 in range(0, maxlen, k.index_unroll):
                    act = blen > r0
                    worst = np.zeros(len(wl), dtype=np.int64)
                    for j in range(r0, min(maxlen, r0 + k.index_unroll)):
                        a = np.nonzero(blen > j)[0]
                        worst[a] = np.maximum(worst[a], request(sml[a], ibase[a] + j * 8, 8, merge=True))
                    np.add.at(rounds, (wl[act], worst[act]), 1)
                # 3. the gather: per row, the index (an L1 hit by now) and the chunk of the row
                group = k.rows_in_flight + k.prefetch_distance
                for j0 in range(0, maxlen, group):
                    act = blen > j0
                    worst = np.zeros(len(wl), dtype=np.int64)
                    nrows = np.zeros(len(wl), dtype=np.int64)
                    for j in range(j0, min(maxlen, j0 + group)):
                        a = np.nonzero(blen > j)[0]
                        request(sml[a], ibase[a] + j * 8, 8)
                        rows = idx[begin[a] + j]
                        addr = ln.row_address(rows) + col0[a] * eb
                        nc = ncols[a]
                        lv = np.zeros(len(a), dtype=np.int64)
                        for n in np.unique(nc):  # a partial last chunk has fewer lanes
                            sel = nc == n
                            lv[sel] = request(sml[a][sel], addr[sel], int(n) * eb)
                        worst[a] = np.maximum(worst[a], lv)
                        nrows[a] += 1
                        # lane 0 of a bag's first chunk records the bag of each index (offset2bag)
                        f = a[first[a]]
                        if len(f):
                            request(sml[f], ln.offset2bag + (begin[f] + j) * 8, 8, store=True)
                    np.add.at(rounds, (wl[act], worst[act]), 1)
                    np.add.at(grounds, (wl[act], worst[act]), 1)
                    steps[wl] += nrows * k.row_instructions
                # 4. the store of the pooled chunk, and of the bag's size (lane 0 of its first chunk)
                oaddr = ln.output + bag * row_bytes + col0 * eb
                for n in np.unique(ncols):
                    sel = ncols == n
                    request(sml[sel], oaddr[sel], int(n) * eb, store=True)
                if first.any():
                    request(sml[first], ln.bag_size + bag[first] * 8, 8, store=True)
        (st.l1_lookups, st.l1_hits, st.l2_lookups, st.l2_hits, st.l2_far_hits, dram_sectors, st.l1_requests,
         st.l1_store_sectors) = counters
        # the instruction and constant fetches of the launch: hits near, and at home when that is the far partition
        fetch = self.spec.kernel.fetch_sectors
        if fetch:
            far = fetch if self.parts > 1 else 0
            st.l2_lookups += fetch + far
            st.l2_hits += fetch + far
            st.l2_far_hits += far
        st.remote_read_bytes = [x * sb for x in remote_sectors]
        st.remote_requests = remote_requests
        st.remote_pages = [len(np.unique(np.concatenate(p))) if p else 0 for p in remote_pages]
        st.chunks_per_row = cpb
        st.dram_read_bytes = (dram_sectors - sum(remote_sectors)) * sb
        st.rounds = rounds
        st.steps = steps
        st.gather_rounds = grounds
        chunks = np.zeros(W, dtype=np.int64)
        if C:
            np.add.at(chunks, np.arange(C) % W, 1)
        st.chunk_steps = chunks * k.chunk_instructions
        st.warp_sm = warp_sm
        return st

    def block_placement(self) -> np.ndarray:
        """The SM of each of a full wave's blocks (S x blocks per SM): ``block_rotation`` taken round and round,
        an SM whose slots are full skipped (measured on an H100: SMs 124 to 131 come twice in its rotation, so
        they fill first), or block j on SM j mod S."""
        S = self.spec.sm_count
        bps = self.warps_per_sm() // self.spec.kernel.block_y
        rot = self.spec.block_rotation
        if rot is None:
            return np.arange(S * bps) % S
        held = np.zeros(S, dtype=np.int64)
        out = []
        i = 0
        while len(out) < S * bps:
            sm = rot[i % len(rot)]
            i += 1
            if held[sm] < bps:
                held[sm] += 1
                out.append(sm)
        return np.array(out, dtype=np.int64)

    # ------------------------------------------------------------------------------------------------ time
    def _curve_for(self):
        if self._curve is None:
            raise ValueError("the GPU model needs its HBM's latency curve (gpu_hbm_curve(spec, stack_spec))")
        return self._curve

    def _latencies(self, population: float, mix: np.ndarray, gmix: np.ndarray, l2_bytes_per_round: float,
                   hbm_units_per_round: float, row_instr_per_round: float, chunk_instr_per_round: float,
                   gather_instr: float,
                   remote_per_round: tuple[tuple[float, float, float, float], ...] = (),
                   dtype: str = "float32") -> _Solved:
        """At ``population`` resident warps (over the GPU) whose rounds have the level mix ``mix`` (fractions
        of all rounds; ``gmix``: of them, the gather loop's), fetch ``l2_bytes_per_round`` past their L1 and
        ``hbm_units_per_round`` HBM accesses, and issue ``row_instr_per_round`` instructions of the rows and
        ``chunk_instr_per_round`` of the chunks each (``gather_instr`` per gather round): the per-level
        latencies (ns), the cycles per instruction and the stretch of every warp's time when a bound, not the
        closed loop, sets the pace (>= 1).

        Mean-value analysis of the closed loop, iterated to its fixed point:
        - a warp's round is its loads' latency plus its instructions' time; in the gather loop, the latency of
          the round's slowest row (a level's loaded latency is its idle one plus an exponential queue, and an
          HBM read's home is the near or the far partition, so the slowest of m rows waits longer than the
          mean), less the time of the instructions the warp issues while they are in flight
          (``gather_overlap``);
        - an instruction takes ``issue_cycles`` (``chunk_issue_cycles`` for a chunk's own) plus
          ``issue_contention`` x U cycles waiting for the scheduler and math pipes, U the schedulers' issue
          utilisation, which the loop's rate sets (its one root, in closed form: ``roots``);
        - the L2 slices queue (M/D/1 on their bandwidth);
        - the HBM's latency is the DRAM model's at the reads in its queues: Little's law over the DRAM's own
          part of a miss's latency (the reads on the on-chip path to and from the memory controllers are not
          in its queues);
        - the rounds can come no faster than the schedulers issue their instructions.
        A remote memory (host memory over PCIe) adds a level: its idle latency, the translation latency for
        the share of requests that wait on one, the loaded latency of the memory behind its link at the reads
        in flight there, the path's queue (M/D/1 on its time per request), and a bound: the rounds can come no
        faster than the path serves their requests, bytes and translations. ``remote_per_round``: per remote
        memory, (requests, bytes, pages, share of requests waiting on a translation) per round; ``dtype``: the
        element type, whose build's loop schedule (``by_dtype``) applies."""
        spec = self.spec
        k = spec.kernel.for_dtype(dtype)
        curve = self._curve_for()
        clk = spec.sm_clock_mhz / 1000  # cycles per ns
        dep = k.step_dependent_cycles / clk
        sched_rate = spec.sm_count * spec.schedulers_per_sm * clk  # instructions per ns, whole GPU
        l2 = spec.l2
        svc = l2.line_bytes / (l2.slice_bytes_per_clock * l2.clock_mhz / 1000)  # ns a slice takes per line
        fixed_hbm = spec.hbm_idle_latency_ns - curve.latency_ns(1)
        rms = self.remotes
        rpr = tuple(remote_per_round) + ((0.0, 0.0, 0.0, 0.0),) * (len(rms) - len(remote_per_round))
        busy = [rm.service_ns(q, b, pg) for rm, (q, b, pg, _) in zip(rms, rpr)]  # ns of the path per round
        lat = np.array([spec.l1.hit_latency_ns, l2.near_hit_ns, l2.far_hit_ns, spec.hbm_idle_latency_ns]
                       + [rm.idle_ns + w * rm.walk_ns for rm, (_, _, _, w) in zip(rms, rpr)])
        c_row0 = k.issue_cycles
        c_chunk0 = k.chunk_issue_cycles if k.chunk_issue_cycles is not None else c_row0
        ipr = row_instr_per_round + chunk_instr_per_round
        pmix = mix - gmix

        idle = lat.copy()
        group = k.rows_in_flight + k.prefetch_distance
        h_m = sum(1.0 / i for i in range(2, group + 1))  # E[max of m exponentials] / mean - 1
        spread = (l2.far_hit_ns - l2.near_hit_ns) * (0.5 - 0.5 ** group) if self.parts > 1 else 0.0

        def slowest(lat_: np.ndarray) -> np.ndarray:
            """Mean latency of a gather round's slowest row, per level: an L2 or HBM level's loaded latency is
            its idle one plus a queue (exponential: many slices and banks), and an HBM read's home is the near
            or the far partition. A remote memory's path is one server that takes a round's requests one after
            the other (its queue is in its mean), so its slowest row is its mean."""
            out = lat_.copy()
            out[NEAR:HBM + 1] += h_m * np.maximum(lat_ - idle, 0.0)[NEAR:HBM + 1]
            out[HBM] += spread
            return out

        a0 = k.gather_overlap * gather_instr * c_row0 / clk  # a gather round's cover at no contention (ns)
        a1 = k.gather_overlap * gather_instr / clk  # and per cycle of contention per instruction
        fixed = dep + (row_instr_per_round * c_row0 + chunk_instr_per_round * c_chunk0) / clk
        slope = ipr / clk

        def round_ns(lat_: np.ndarray, w: np.ndarray) -> np.ndarray:
            """A round's mean time (ns) at each ``w`` cycles of contention per instruction: the prologue's
            latency, the gather's slowest row less the cover of its instructions, and the instructions."""
            return (float(pmix @ lat_) + fixed + slope * w
                    + np.maximum(slowest(lat_)[None, :] - a0 - a1 * w[:, None], 0.0) @ gmix)

        def chain_at(lat_: np.ndarray, wait: float) -> float:
            return float(round_ns(lat_, np.array([wait]))[0])

        x_issue = sched_rate / ipr if ipr > 0 else float("inf")
        # the bound on rounds per ns: the schedulers, and each remote path's time per round
        x_bound = min([x_issue] + [1.0 / t for t in busy if t > 0])

        def roots(pops: np.ndarray, lat_: np.ndarray) -> np.ndarray:
            """The wait per instruction w (cycles) at which the loop's issue rate gives that wait, for every pop
            of ``pops`` warps over the GPU issuing (an SM of n warps: its schedulers see what n x sm_count warps
            give): w = c x U(w), U(w) = min(U_cap, pop x ipr / (sched_rate x chain(w))). In closed form: chain(w)
            is piecewise linear and increasing in w (a row's cover grows with w, a round's instructions faster,
            as the cover is a share of them), so on the piece that holds the root w x chain(w) = c x pop x ipr /
            sched_rate is a quadratic with one positive root; where that passes c x U_cap, U is at its cap."""
            pops = np.asarray(pops, dtype=np.float64)
            c = k.issue_contention
            if not c or ipr <= 0:
                return np.zeros(len(pops))
            slow = slowest(lat_)
            w_cap = c * min(1.0, x_bound * ipr / sched_rate)
            base = float(pmix @ lat_) + fixed
            bps = sorted({float((sl - a0) / a1) for sl, g in zip(slow, gmix)
                          if g > 0 and a1 > 0 and 0.0 < (sl - a0) / a1 < w_cap})
            edges = np.array([0.0] + bps + [w_cap])
            h = edges * round_ns(lat_, edges)  # w x chain(w) at the pieces' edges: increasing
            mid = 0.5 * (edges[:-1] + edges[1:])
            unc = (slow[None, :] - a0 - a1 * mid[:, None] > 0) & (gmix[None, :] > 0)  # levels a piece leaves exposed
            alpha = base + (unc * (slow - a0)[None, :]) @ gmix
            beta = slope - a1 * (unc @ gmix)
            K = c * pops * ipr / sched_rate
            j = np.clip(np.searchsorted(h, K, side="right") - 1, 0, len(mid) - 1)
            w = 2.0 * K / (alpha[j] + np.sqrt(alpha[j] ** 2 + 4.0 * beta[j] * K))
            return np.where(K >= h[-1], w_cap, np.minimum(w, w_cap))

        def contention(lat_: np.ndarray, pop: float = population) -> float:
            """``roots`` at one population."""
            return float(roots(np.array([pop]), lat_)[0])

        for _ in range(500):
            wait = contention(lat)
            chain = chain_at(lat, wait)
            x = min(population / chain, x_bound)  # rounds per ns, whole GPU
            u_2 = min(0.99, x * l2_bytes_per_round / l2.peak_GBps)
            q2 = u_2 / (2 * (1 - u_2)) * svc
            n_hbm = x * hbm_units_per_round * max(0.0, lat[HBM] - fixed_hbm - q2)
            new = [spec.l1.hit_latency_ns, l2.near_hit_ns + q2, l2.far_hit_ns + q2,
                   fixed_hbm + curve.latency_ns(max(1.0, n_hbm)) + q2]
            for r, rm in enumerate(rms):
                q, b, _, w = rpr[r]
                u_r = min(0.99, x * busy[r])
                q_r = u_r / (2 * (1 - u_r)) * (busy[r] / q) if q > 0 else 0.0
                behind = 0.0
                if rm.curve is not None:
                    n_r = x * b / rm.access_bytes * lat[REMOTE + r]
                    behind = rm.curve.latency_ns(max(1.0, n_r)) - rm.curve.latency_ns(1)
                new.append(rm.idle_ns + w * rm.walk_ns + behind + q_r + q2)
            new = np.array(new)
            done = bool(np.all(np.abs(new[1:] - lat[1:]) < 0.01))
            lat = 0.5 * lat + 0.5 * new
            if done:
                break
        wait = contention(lat)
        chain = chain_at(lat, wait)
        stretch = max(1.0, population / x_bound / chain) if x_bound != float("inf") else 1.0
        q = np.zeros(len(lat))
        q[NEAR:HBM + 1] = np.maximum(lat - idle, 0.0)[NEAR:HBM + 1]
        home = np.zeros(len(lat))
        p_far = 1.0 - 0.5 ** group
        if self.parts > 1:
            home[HBM] = (l2.far_hit_ns - l2.near_hit_ns) ** 2
        var_one = q * q + home / 4
        var_gather = q * q * sum(1.0 / (i * i) for i in range(1, group + 1)) + home * p_far * (1 - p_far)
        final = lat.copy()

        def waits_at(pops: np.ndarray) -> np.ndarray:
            """``contention(final, pop)`` for every pop of ``pops`` at once."""
            return roots(pops, final)

        return _Solved(lat, slowest(lat), var_one, var_gather, waits_at,
                       dep, c_row0 + wait, c_chunk0 + wait,
                       a0 + a1 * wait, stretch,
                       min(population / chain, x_bound) * ipr / sched_rate)

    def _time(self, st: LaunchStats) -> tuple[float, dict[str, Any]]:
        """Kernel time (ns) from the per-warp rounds: blocks take slots in order, warps progress at the
        latencies of the current population (re-solved as warps finish)."""
        spec, k = self.spec, self.spec.kernel.for_dtype(st.dtype)
        rounds = st.rounds.astype(np.float64)
        grounds = st.gather_rounds.astype(np.float64)
        prounds = rounds - grounds
        steps = st.steps.astype(np.float64)
        csteps = st.chunk_steps.astype(np.float64)
        rsteps = steps - csteps
        total = rounds.sum(axis=0)
        mix = total / total.sum() if total.sum() else np.eye(len(total))[0]
        nr = total.sum()
        gmix = grounds.sum(axis=0) / nr if nr else np.zeros(len(total))
        ng = grounds.sum()
        row_ipr = float(rsteps.sum() / nr) if nr else 0.0
        chunk_ipr = float(csteps.sum() / nr) if nr else 0.0
        gather_instr = float(rsteps.sum() / ng) if ng else 0.0
        l2_bpr = (st.l1_lookups - st.l1_hits) * self.spec.l1.sector_bytes / nr if nr else 0.0
        hbm_upr = st.dram_read_bytes / self.spec.hbm_access_bytes / nr if nr else 0.0
        rpr = tuple((q / nr, b / nr, pg / nr, min(1.0, pg * st.chunks_per_row / q) if q else 0.0) if nr
                     else (0.0, 0.0, 0.0, 0.0)
                     for q, b, pg in zip(st.remote_requests, st.remote_read_bytes, st.remote_pages))
        nround = rounds.sum(axis=1)
        clk = self.spec.sm_clock_mhz / 1000
        sectors_per_round = l2_bpr / self.spec.l1.sector_bytes
        cap = self.spec.sm_count * self.spec.l1.max_outstanding_sectors / max(1.0, sectors_per_round)
        W = len(steps)
        bps = self.warps_per_sm() // k.block_y
        slots = spec.sm_count * bps
        nblocks = k.grid_blocks
        remaining = np.ones(W)  # fraction of each warp's work left
        work = rounds.sum(axis=1) > 0
        remaining[~work] = 0.0
        started = min(slots, nblocks)
        active = np.zeros(W, dtype=bool)
        active[: started * k.block_y] = True
        block_left = np.array([int(np.count_nonzero(remaining[b * k.block_y:(b + 1) * k.block_y] > 0))
                               for b in range(nblocks)])
        now = 0.0
        cache: dict[int, _Solved] = {}
        per_warp: dict[int, tuple[np.ndarray, ...]] = {}
        sm_wait: dict[int, np.ndarray] = {}
        top_warps = max(spec.max_warps_per_sm, self.warps_per_sm())
        S = spec.sm_count
        warp_sm = st.warp_sm if st.warp_sm is not None else np.arange(W) // k.block_y % S
        c_chunk0 = k.chunk_issue_cycles if k.chunk_issue_cycles is not None else k.issue_cycles
        by_age = k.warp_priority == "age"
        var = np.zeros(W)  # each warp's time's variance (ns^2), from its requests' latencies
        finish = np.full(W, -np.inf)
        # warps' memory ns, instruction ns, warp-ns, instructions issued, ns, contention cycles, prologue memory ns,
        # and the active cycles of the SM sub-partitions (those with a live warp), as a profiler counts them
        acc = [0.0] * 8
        subs = spec.schedulers_per_sm
        next_block = started
        # blocks without work end at once
        free = [b for b in range(started) if block_left[b] == 0]
        while True:
            while free and next_block < nblocks:
                free.pop()
                b = next_block
                next_block += 1
                active[b * k.block_y:(b + 1) * k.block_y] = True
                if block_left[b] == 0:
                    free.append(b)
            ids = np.flatnonzero(active & (remaining > 0))
            n = len(ids)
            if n == 0:
                if next_block >= nblocks:
                    break
                continue
            # the L1s' miss-status holding capacity: warps beyond what their misses fit wait for a slot (the
            # memory sees at most ``cap`` warps; every warp's time stretches by the queue in front of it)
            waiting = n / cap if n > cap else 1.0
            # re-solve when the population moves by a warp per SM (32 warps), or by one warp below 32 (a launch's
            # last warps, a lone bag: the latency at their own load, not at 32 warps')
            m = min(n, cap)
            key = max(1, int(m)) if m < 32 else 32 * int(round(m / 32))
            if key not in cache:
                cache[key] = self._latencies(float(key), mix, gmix, l2_bpr, hbm_upr, row_ipr, chunk_ipr,
                                             gather_instr, rpr, dtype=st.dtype)
            sv = cache[key]
            if key not in per_warp:  # each warp's memory and instruction time, and its variance, at this load
                per_warp[key] = (prounds @ sv.lat + grounds @ np.maximum(sv.slowest - sv.cover_ns, 0.0),
                                 nround * sv.dep + (rsteps * sv.row_cpi + csteps * sv.chunk_cpi) / clk,
                                 prounds @ sv.lat, prounds @ sv.var_one + grounds @ sv.var_gather)
            a_mem, a_ins, a_pro, a_var = per_warp[key]
            t_mem = a_mem[ids]
            # each SM's schedulers serve its own warps: an SM with more live warps than the mean waits longer
            on = warp_sm[ids]
            per_sm = np.bincount(on, minlength=S)
            counts = np.nonzero(np.bincount(per_sm))[0]
            counts = counts[counts > 0]
            uniform = sv.stretch > 1.0 or not k.issue_contention or len(counts) == 1
            if uniform:
                wait_w = np.full(n, sv.row_cpi - k.issue_cycles)
            else:
                # an SM of c warps issues as c x S x key / n warps would, spread over the GPU at this load (to an
                # eighth of a warp per SM)
                eighths = np.minimum(np.rint(8.0 * counts * key / n).astype(np.int64), 8 * top_warps)
                have = sm_wait.get(key, np.zeros(0))
                if int(eighths[-1]) >= len(have):  # solve up to the next whole 8 warps per SM
                    upto = min(8 * top_warps, 64 * (int(eighths[-1]) // 64 + 1))
                    have = np.concatenate([have, sv.waits_at(np.arange(len(have), upto + 1) * S / 8.0)])
                    sm_wait[key] = have
                lut = np.zeros(int(counts[-1]) + 1)
                lut[counts] = have[eighths]
                wait_w = lut[per_sm[on]]
            aged = by_age and bool(k.issue_contention) and n > 1
            if aged:
                wait_w = wait_w * age_weights(on, per_sm)
            if uniform and not aged:  # every warp at the loop's own cycles per instruction
                t_ins = a_ins[ids]
            else:
                t_ins = nround[ids] * sv.dep + (rsteps[ids] * (k.issue_cycles + wait_w)
                                                + csteps[ids] * (c_chunk0 + wait_w)) / clk
            t_w = (t_mem + t_ins) * (sv.stretch * waiting)
            t_left = remaining[ids] * t_w
            dt = float(t_left.min())
            done = t_left <= dt * (1 + 1e-9) + 1e-9
            part = np.where(t_w > 0, dt / np.maximum(t_w, 1e-30), 1.0)
            remaining[ids] -= part
            # what the warps spent this step on, for the averages a profiler reports
            acc[0] += float(part @ t_mem) * sv.stretch * waiting
            acc[1] += float(part @ t_ins) * sv.stretch * waiting
            acc[2] += dt * n
            acc[3] += float(part @ steps[ids])
            acc[7] += dt * clk * float(np.minimum(per_sm, subs).sum())
            acc[4] += dt
            acc[5] += float(part @ (steps[ids] * wait_w))
            acc[6] += float(part @ a_pro[ids]) * sv.stretch * waiting
            var[ids] += part * a_var[ids] * (sv.stretch * waiting) ** 2
            remaining[ids[done]] = 0.0
            now += dt
            finish[ids[done]] = now
            for w in ids[done]:
                b = int(w) // k.block_y
                block_left[b] -= 1
                if block_left[b] == 0:
                    free.append(b)
        full = cache[max(cache)] if cache else None
        end = _expected_last(finish, np.sqrt(var))
        return end + spec.launch_ns, {"mean_last_warp_ns": now, "latency_ns_full": full.lat.tolist() if full else [],
                                      "row_cpi_full": full.row_cpi if full else 0.0,
                                      "chunk_cpi_full": full.chunk_cpi if full else 0.0,
                                      "issue_utilisation_full": full.utilisation if full else 0.0,
                                      "warp_memory_ns": acc[0], "warp_instruction_ns": acc[1],
                                      "mean_warps": acc[2] / acc[4] if acc[4] else 0.0,
                                      "warp_contention_cycles": acc[5], "warp_prologue_memory_ns": acc[6],
                                      "mean_issue_utilisation": acc[3] / acc[7] if acc[7] else 0.0,
                                      "waves": nblocks / slots}

    # ------------------------------------------------------------------------------------------------- run
    def launch_of(self, case: EmbeddingBagCase, b: int, layout: _Layout, table_base: int | None = None) -> Launch:
        """Batch ``b`` of ``case`` as a launch (fixed pooling; its index and offsets tensors are batch
        ``b % case.batches``'s own); ``table_base``: the table is elsewhere (in host memory from there)."""
        i = b % case.batches
        offsets = np.arange(case.batch + 1, dtype=np.int64) * case.pooling
        return Launch(case.dim, case.elem_bytes, layout.weight, case.indices(b), offsets, layout.indices[i],
                      layout.offsets[i], layout.output, layout.offset2bag, layout.bag_size, cold_base=table_base,
                      dtype=case.dtype)

    def time_launch(self, ln: Launch) -> tuple[float, LaunchStats, dict[str, Any]]:
        """Walk one launch through the caches and time it: (kernel ns, counters, details)."""
        st = self._walk(ln)
        t, extra = self._time(st)
        return t, st, extra

    def flush_l2(self) -> None:
        """Empty the L2 (its normal lines; the persisting set-aside keeps its lines)."""
        l2 = self.spec.l2
        usable = l2.bytes - self.pin_bytes
        if self._cfn is not None:
            self._make_l2(usable)
        else:
            pinned = [part.pinned for part in self.l2]
            self._make_l2(usable)
            for part, pins in zip(self.l2, pinned):
                part.pinned = pins

    def run_case(self, case: EmbeddingBagCase, warm_launches: int = 3, flush_l2: bool = False,
                 table_base: int | None = None, replay_lookups: bool = False) -> dict[str, Any]:
        """Warm the caches with ``warm_launches`` launches (batches 0, 1, ... cycling over the case's batches),
        then time the next one; the case's counters and predicted kernel time. ``flush_l2``: empty the L2
        before the timed launch; ``table_base``: the table sits there instead (host memory: a remote memory's
        window). ``replay_lookups``: the L2 hit rate as Nsight Compute's kernel replay assembles it
        (docs/gpu.md, "The measurement protocol"): the timed launch's L2 hits over the L2 lookups of a replay of
        the same launch right after it, its blocks placed on the SMs anew (:data:`REPLAY_SM_SEED`);
        ``pred_l2_hit_pct_launch`` is the launch's own."""
        layout = _Layout.of(case)
        k = self.spec.kernel
        if k.pin_hot_rows:
            self.pin(case, hottest_rows(case, k.pin_hot_rows, warm_launches))
        for b in range(warm_launches):
            self._walk(self.launch_of(case, b, layout, table_base))
        if flush_l2:
            self.flush_l2()
        ln = self.launch_of(case, warm_launches, layout, table_base)
        t, st, extra = self.time_launch(ln)
        lv = st.rounds.sum(axis=0)
        own = 100.0 * st.l2_hits / st.l2_lookups if st.l2_lookups else 0.0
        l2_pct = own
        if replay_lookups:
            again = self._walk(ln, replay_sm_map(self.spec.sm_count))
            l2_pct = 100.0 * st.l2_hits / again.l2_lookups if again.l2_lookups else 0.0
            extra = {**extra, "replay_l2_lookups": again.l2_lookups, "replay_l2_hits": again.l2_hits}
        return {
            "pred_kernel_time_ns": t,
            "pred_l2_hit_pct": l2_pct,
            "pred_l2_hit_pct_launch": own,
            "pred_l1_hit_pct": 100.0 * st.l1_hits / st.l1_lookups if st.l1_lookups else 0.0,
            "pred_dram_read_bytes": st.dram_read_bytes,
            "pred_remote_read_bytes": sum(st.remote_read_bytes),
            "pred_l2_far_hit_pct": 100.0 * st.l2_far_hits / st.l2_lookups if st.l2_lookups else 0.0,
            "l2_hits": st.l2_hits,
            "l2_lookups": st.l2_lookups,
            **{f"rounds_{name}": int(lv[i]) for i, name in enumerate(LEVELS)},
            "warps_per_sm": self.warps_per_sm(),
            **extra,
        }


REPLAY_SM_SEED = 2026
"""Seed of the SM placement of a replayed launch's blocks (:func:`replay_sm_map`)."""


def replay_sm_map(sm_count: int) -> np.ndarray:
    """The SM that takes the blocks the first pass placed on SM ``s``, for a replay of the same launch: one
    fixed random permutation, i.e. a placement independent of the first pass's. The hardware's block
    scheduler keeps no placement from one launch to the next; with the first pass's placement kept, a replay's
    L1 misses would all hit in their near L2 partition, and the replays' measured lookups
    (``lts__t_sectors``, validation/gpu/data/l2_passes_h100) are those of an independent placement."""
    return np.random.default_rng(REPLAY_SM_SEED).permutation(sm_count)


def hottest_rows(case: EmbeddingBagCase, n: int, batches: int) -> np.ndarray:
    """The ``n`` rows looked up most often in the first ``batches`` batches (a profile, as the MICRO 2024
    artifact takes one), most frequent first."""
    if batches < 1:
        batches = 1
    ids = np.concatenate([case.indices(b) for b in range(batches)])
    rows, counts = np.unique(ids, return_counts=True)
    order = np.lexsort((rows, -counts))
    return rows[order][:n]


def gpu_hbm_curve(spec: GPUSpec, stack_spec):
    """The loaded-latency curve of the GPU's HBM: one stack's (``stack_spec``, the dram node ``spec.memory``
    names) measured on the DRAM model, scaled to ``spec.hbm_stacks`` (uniform random misses spread evenly)."""
    from archsim.gpu.hbm_curve import loaded_latency_curve

    return loaded_latency_curve(stack_spec, access_bytes=spec.hbm_access_bytes).scaled(spec.hbm_stacks)


def simulate(spec: GPUSpec, stack_spec, case: EmbeddingBagCase, warm_launches: int = 3,
             flush_l2: bool = False) -> dict[str, Any]:
    """Predicted kernel time and hit rates of ``case`` on a fresh GPU of ``spec`` whose HBM stacks are
    ``stack_spec`` (warmed by earlier launches of the same case's batches)."""
    model = EmbeddingBagModel(spec, hbm_curve=gpu_hbm_curve(spec, stack_spec))
    return model.run_case(case, warm_launches=warm_launches, flush_l2=flush_l2)


__all__ = ["EmbeddingBagCase", "EmbeddingBagModel", "gpu_hbm_curve", "hottest_rows", "replay_sm_map", "simulate"]
