"""Component kind ``gpu``: a GPU that takes a host's embedding bags (role ``reducer``) and runs each table's bags
of a batch as one EmbeddingBag launch on its model (:mod:`archsim.gpu.embbag`).

Wiring: ``host: {near: gpu0}`` hands the GPU every table; ``memory`` names the dram node of one HBM stack (the
GPU has ``hbm_stacks`` of them; its curve of latency against reads in flight comes from that node's spec,
:mod:`archsim.gpu.hbm_curve`); ``link`` (optional) a ``pcie_link`` over which each launch's indices and offsets
go to the GPU before it and the pooled vectors come back after it. The tables live in the GPU's HBM, one after
another from address 0, each on a 2 MiB boundary; a workload whose tables do not fit is refused, unless
``placement`` puts them in host memory: ``host`` (every row in pinned host memory behind ``link``, read by the
kernel in place over PCIe: zero-copy, as a UVA-mapped table is) or ``hot_in_hbm`` (FAE, Hotline: the rows a
profile of the workload's first batches looks up most, as many as ``hbm_bytes`` holds, in HBM; the rest in host
memory, read in place). The host-memory reads are a level of the kernel's memory model
(:class:`archsim.gpu.embbag.RemoteMemory`): the on-chip miss path, the link's latency and serialisation both
ways, and the loaded latency of the DRAM the link leads to; the link's bandwidth bounds them.

Launches run one after another on one stream: a launch starts when its bags have arrived and the previous
launch has ended. The caches persist from launch to launch (the next batch finds the previous one's rows).

Abstracted away: the HBM's command-level traffic (the dram node is not sent requests: its curve stands for it,
and the GPU reports its own DRAM bytes and bandwidth), HBM and SM energy, the index-preparation kernel PyTorch
launches first, host-side launch latency beyond the config's ``launch_ns``; of the energy, all but the HBM reads
(one activation per access unit, as random rows need, and its bursts' read and I/O energy, from the stack's
power model) and the link's bits: the SMs, the caches, the HBM's writes, the background of the stacks but the
one the dram node books; with a split placement, the lookup
that maps a row to its HBM slot or its host address (fbgemm's cache-location load: one 4-byte load per index,
not simulated), and the host DRAM traffic of the kernel's reads (the host's DRAM node is not sent them: its
latency curve stands for it).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Literal

import numpy as np
import simpy
from pydantic import BaseModel, ConfigDict, Field, field_validator

from archsim.core.component import Component
from archsim.core.port import call_at, finish_at
from archsim.core.request import GatherReduce
from archsim.gpu.embbag import EmbeddingBagModel, Launch, RemoteMemory, gpu_hbm_curve
from archsim.gpu.spec import GPUSpec
from archsim.system.registry import ref_list, register
from archsim.workload.spec import DTYPE_BYTES

#: the workload's element types by the names PyTorch's kernels are built for (a build's loop: ``kernel.by_dtype``)
TORCH_DTYPE = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}

_ALIGN = 2 << 20
HOST_BASE = 1 << 52
"""Where host memory starts in the GPU's address space (the model's: tables in host memory sit from here)."""
PEER_BASE = 1 << 51
"""Where the other GPUs' memories start in a GPU's address space (rows they cache for it, UGache)."""


class GPUPlacement(BaseModel):
    """Where a GPU's tables live: HBM, pinned host memory, or the hottest rows in HBM and the rest in host
    memory (FAE, VLDB 2022; Hotline, ISCA 2024)."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

    policy: Literal["hbm", "host", "hot_in_hbm"] = Field(
        "hbm", description="hbm: every table in HBM (refused when they do not fit); host: every table in pinned "
                           "host memory behind the GPU's link, read in place by the kernel (zero-copy); "
                           "hot_in_hbm: the profile's most looked-up rows in HBM (up to hbm_bytes), the rest "
                           "in host memory, read in place")
    hbm_bytes: int | None = Field(None, gt=0, description="hot_in_hbm: HBM bytes for the hottest rows (an integer "
                                                          "or e.g. '16GiB'; default: the HBM's capacity less "
                                                          "reserve_bytes)")
    reserve_bytes: int = Field(4 << 30, ge=0, description="HBM kept for the launches' buffers and the framework "
                                                          "(hot_in_hbm: hbm_bytes + reserve_bytes must fit the HBM)")
    profile_batches: int = Field(4, ge=1, le=1 << 20, description="hot_in_hbm: the workload's first batches "
                                                                  "counted to rank the rows (FAE samples its input)")
    l2_keeps_host_lines: bool = Field(False, description="the L2 keeps lines of host memory from one launch to "
                                                         "the next (false, as measured on an H100 with pinned "
                                                         "memory: validation/gpu/README.md)")

    @field_validator("hbm_bytes", "reserve_bytes", mode="before")
    @classmethod
    def _bytes(cls, v):
        from archsim.cxl.spec import parse_bytes

        return v if v is None else parse_bytes(v)


class GPUNode(GPUSpec):
    """A GPU running EmbeddingBag (the ``gpu`` kind's node): the GPU's parameters, plus its wiring."""

    link: str | None = Field(None, description="a pcie_link between the host and the GPU: indices out, pooled "
                                               "vectors back (absent: the bags are on the GPU already); with a "
                                               "placement in host memory, also the kernel's reads of host rows")
    placement: GPUPlacement = Field(default_factory=GPUPlacement,
                                    description="where the tables live (policy hbm, host or hot_in_hbm)")

    @property
    def reads_profile(self) -> bool:
        """hot_in_hbm ranks rows by the workload's profile (the builder hands the table map one)."""
        return self.placement.policy == "hot_in_hbm"


def host_remote(spec: GPUSpec, link_spec, host_dram_spec, hbm_curve, first_line: int, end_line: int,
                keep_lines: bool = False) -> RemoteMemory:
    """Host memory behind a PCIe link (``link_spec``: a pcie_link node's parameters; ``host_dram_spec``: the
    dram node it leads to), as the GPU's kernel reads it in place. Idle latency: the on-chip miss path (the
    GPU's idle HBM latency less its DRAM's own), a read request TLP down the link and a completion of one access
    unit back (each: serialisation + the link's ``latency_ns``), the host DRAM's idle read (its closed-loop
    curve, measured on the DRAM model as the HBM's is); the IOMMU's walk for a page not yet translated. The
    host's path serves each request (``read_request_ns`` + its completion's wire time) and each translation
    (``iommu_walk_occupancy_ns``) one after another. ``keep_lines``: the L2 keeps host lines from launch to
    launch."""
    from archsim.gpu.hbm_curve import loaded_latency_curve
    from archsim.storage.pcie import PCIeLink

    lk = PCIeLink(link_spec)
    ab = spec.hbm_access_bytes
    curve = loaded_latency_curve(host_dram_spec, access_bytes=ab, points=(1, 16, 64, 256, 1024))
    on_chip = spec.hbm_idle_latency_ns - hbm_curve.latency_ns(1)
    wire_ns = (lk.serialisation_ps(0) + lk.serialisation_ps(ab) + 2 * lk.latency_ps) / 1000
    raw = 1000 / float(link_spec.ps_per_byte)
    return RemoteMemory("host", first_line, end_line, on_chip + wire_ns + curve.latency_ns(1), raw,
                        link_spec.tlp_overhead_bytes, ab, curve, request_ns=link_spec.read_request_ns,
                        page_bytes=link_spec.iommu_page_bytes, walk_ns=link_spec.iommu_walk_ns,
                        walk_occupancy_ns=link_spec.iommu_walk_occupancy_ns, cached_across_launches=keep_lines)


def ranked_profile(table_map, tables, batches: int, row_range: dict[int, tuple[int, int]] | None = None
                   ) -> np.ndarray:
    """The (table, row) pairs the workload's first ``batches`` batches look up, hottest first (ties: lower
    table, then lower row), as a 2 x K array; ``row_range``: per table, only rows ``[lo, hi)``, numbered from
    ``lo`` (a row-wise shard's own)."""
    got = table_map.profiled_batches(batches) if hasattr(table_map, "profiled_batches") else []
    keys = []
    for batch in got:
        for t in tables:
            idx = np.asarray(batch.indices[t], dtype=np.int64)
            if row_range and t in row_range:
                lo, hi = row_range[t]
                idx = idx[(idx >= lo) & (idx < hi)] - lo
            if len(idx):
                keys.append(np.stack([np.full(len(idx), t, dtype=np.int64), idx]))
    if not keys:
        return np.zeros((2, 0), dtype=np.int64)
    uniq, counts = np.unique(np.concatenate(keys, axis=1), axis=1, return_counts=True)
    return uniq[:, np.lexsort((uniq[1], uniq[0], -counts))]


def rows_by_table(pairs: np.ndarray, tables) -> dict[int, np.ndarray]:
    """The rows of (table, row) ``pairs`` per table of ``tables``, sorted."""
    return {t: np.sort(pairs[1][pairs[0] == t]) for t in tables}


class GPUComponent(Component):
    """Bags in, one launch per (batch, table), pooled vectors out."""

    def __init__(self, sim, name: str, spec: GPUNode, hbm_spec, table_map, link=None) -> None:
        super().__init__(sim, name)
        self.spec = spec
        self.link = link
        self.table_map = table_map
        self.hbm_spec = hbm_spec
        curve = gpu_hbm_curve(spec, hbm_spec)
        self.capacity = hbm_spec.org.capacity_bytes * spec.hbm_stacks
        self.tables = table_map.tables
        self.policy = spec.placement.policy
        self.host_bytes = 0
        remotes: tuple[RemoteMemory, ...] = ()
        if self.policy != "hbm":
            lb = spec.l1.line_bytes
            end = HOST_BASE + sum(-(-t.rows * t.row_bytes // _ALIGN) * _ALIGN for t in self.tables)
            remotes = (host_remote(spec, link.spec, link.port.mem.spec, curve, HOST_BASE // lb, -(-end // lb),
                                   spec.placement.l2_keeps_host_lines),)
        self.model = EmbeddingBagModel(spec, hbm_curve=curve, remotes=remotes)
        self.host_read_bytes = 0
        self.peer_read_bytes = 0
        self.peer: dict[int, np.ndarray] = {}
        self.peer_base: dict[int, int] = {}
        self.peers_on = False
        self.curve = curve
        self.remotes = remotes
        self.row_range: dict[int, tuple[int, int]] = {}
        self.assign(range(len(self.tables)))
        self.pending: dict[tuple[int, int], list[GatherReduce]] = defaultdict(list)
        self.busy_until = 0
        self.launches = 0
        self.kernel_ps = 0
        self.bags = 0
        self.lookups = 0
        self.l1 = [0, 0]
        self.l2 = [0, 0]
        self.dram_bytes = 0

    def local_rows(self, t: int) -> int:
        """Rows of table ``t`` this GPU holds (a row-wise shard's share, or all)."""
        lo, hi = self.row_range.get(t, (0, self.tables[t].rows))
        return hi - lo

    def assign(self, tables, row_range: dict[int, tuple[int, int]] | None = None) -> None:
        """Hold ``tables`` (indices into the workload's tables): in the HBM, one after another from address 0,
        each on a 2 MiB boundary (policy hbm); or whole in host memory from :data:`HOST_BASE`, with the hottest
        rows (hot_in_hbm) in the HBM from address 0. The launches' buffers follow in the HBM. ``row_range``: per
        table, the rows ``[lo, hi)`` this GPU holds (row-wise sharding; its bags' rows come shifted by ``lo``)."""
        self.owned = sorted(int(t) for t in tables)
        self.row_range = dict(row_range or {})
        self.bases: dict[int, int] = {}
        self.cold: dict[int, int] = {}
        self.hot: dict[int, np.ndarray] = {}
        if self.policy != "hbm":
            h = HOST_BASE
            for t in self.owned:
                info = self.tables[t]
                self.cold[t] = h
                h += -(-self.local_rows(t) * info.row_bytes // _ALIGN) * _ALIGN
            self.host_bytes = h - HOST_BASE
            self.hot = self._hottest() if self.policy == "hot_in_hbm" else {}
        a = 0
        for t in self.owned:
            info = self.tables[t]
            self.bases[t] = a
            n = self.local_rows(t) if self.policy == "hbm" else len(self.hot.get(t, ()))
            a += -(-n * info.row_bytes // _ALIGN) * _ALIGN
        self.buffers = a  # index, offsets, output, offset2bag, bag_size buffers of the launches, from here

    def share_cache(self, hot: dict[int, np.ndarray], peer: dict[int, np.ndarray], peer_remote: RemoteMemory) -> None:
        """One cache across GPUs (UGache): ``hot`` rows (per table, sorted) in this GPU's HBM, ``peer`` rows in
        the other GPUs' HBM (read over NVLink through ``peer_remote``); the rest stay in host memory."""
        self.hot = {t: r for t, r in hot.items() if len(r)}
        self.peer = {t: r for t, r in peer.items() if len(r)}
        a = PEER_BASE
        self.peer_base = {}
        for t in sorted(self.peer):
            self.peer_base[t] = a
            a += -(-len(self.peer[t]) * self.tables[t].row_bytes // _ALIGN) * _ALIGN
        a = 0
        for t in self.owned:
            self.bases[t] = a
            a += -(-len(self.hot.get(t, ())) * self.tables[t].row_bytes // _ALIGN) * _ALIGN
        self.buffers = a
        self.peers_on = True
        self.remotes = (self.remotes[0], peer_remote)
        self.model = EmbeddingBagModel(self.spec, hbm_curve=self.curve, remotes=self.remotes)

    def hbm_budget(self) -> int:
        """HBM bytes for the hottest rows (hot_in_hbm)."""
        p = self.spec.placement
        return p.hbm_bytes if p.hbm_bytes is not None else max(0, self.capacity - p.reserve_bytes)

    def _hottest(self) -> dict[int, np.ndarray]:
        """The owned tables' rows the profile looks up most (ties: lower table, then lower row), as many as the
        HBM budget holds (each table's share on its own 2 MiB boundary); per table, sorted."""
        ranked = ranked_profile(self.table_map, self.owned, self.spec.placement.profile_batches, self.row_range)
        rb = np.array([t.row_bytes for t in self.tables], dtype=np.int64)
        budget = self.hbm_budget() - len(self.owned) * _ALIGN  # each table's share rounds up to 2 MiB
        hot = rows_by_table(ranked[:, np.cumsum(rb[ranked[0]]) <= budget], self.owned)
        return {t: r for t, r in hot.items() if len(r)}

    def accepts_table(self, t: int) -> bool:
        return t in self.bases

    def submit(self, gr: GatherReduce) -> simpy.Event:
        env = self.env
        gr.t_submit = env.now
        if gr.done is None:
            gr.done = env.event()
        key = (id(gr.tag), gr.table)
        first = key not in self.pending
        self.pending[key].append(gr)
        if first:  # after the host has handed over every bag of this table and batch (same instant)
            call_at(env, env.now, self._launch, key)
        return gr.done

    def _launch(self, ev: simpy.Event) -> None:
        key = ev.value
        bags = self.pending.pop(key)
        t = key[1]
        info = self.tables[t]
        eb = DTYPE_BYTES[info.dtype]
        idx = np.concatenate([np.asarray(g.rows, dtype=np.int64) for g in bags]) if bags else np.zeros(0, np.int64)
        offsets = np.zeros(len(bags) + 1, dtype=np.int64)
        offsets[1:] = np.cumsum([len(g.rows) for g in bags])
        n, nb = len(idx), len(bags)
        a = self.buffers

        def take(nbytes: int) -> int:
            nonlocal a
            base = a
            a += -(-max(nbytes, 1) // _ALIGN) * _ALIGN
            return base

        ib, ob = take(8 * n), take(8 * (nb + 1))
        out, o2b, bs = take(nb * info.dim * eb), take(8 * n), take(8 * nb)
        ln = Launch(info.dim, eb, self.bases[t], idx, offsets, ib, ob, out, o2b, bs, hot=self.hot.get(t),
                    cold_base=self.cold.get(t), peer=self.peer.get(t), peer_base=self.peer_base.get(t),
                    dtype=TORCH_DTYPE.get(info.dtype, info.dtype))
        kernel_ns, st, _ = self.model.time_launch(ln)
        now = self.env.now
        arrive = now
        if self.link is not None:  # the indices and offsets cross to the GPU
            arrive = self.link.message(True, now, 8 * (n + nb + 1), "command")
        start = max(arrive, self.busy_until)
        end = start + round(kernel_ns * 1000)
        self.busy_until = end
        self.launches += 1
        self.kernel_ps += end - start
        self.bags += nb
        self.lookups += n
        self.l1[0] += st.l1_lookups
        self.l1[1] += st.l1_hits
        self.l2[0] += st.l2_lookups
        self.l2[1] += st.l2_hits
        self.dram_bytes += st.dram_read_bytes
        if st.remote_read_bytes:
            self.host_read_bytes += st.remote_read_bytes[0]
            self.peer_read_bytes += sum(st.remote_read_bytes[1:])
        done_at = end
        if self.link is not None:
            call_at(self.env, end, self._send_back, (bags, nb * info.dim * eb))
            return
        for g in bags:
            finish_at(self.env, g, done_at)

    def _send_back(self, ev: simpy.Event) -> None:
        bags, nbytes = ev.value
        t = self.link.message(False, self.env.now, nbytes, "pooled")
        for g in bags:
            finish_at(self.env, g, t)

    def summary(self, end_ps: int) -> dict[str, float]:
        return {
            "tables": len(self.owned), "launches": self.launches, "bags": self.bags, "lookups": self.lookups,
            "kernel_time_us": self.kernel_ps / 1e6,
            "l1_hit_rate": self.l1[1] / self.l1[0] if self.l1[0] else 0.0,
            "l2_hit_rate": self.l2[1] / self.l2[0] if self.l2[0] else 0.0,
            "hbm_read_bytes": self.dram_bytes,
            "hbm_read_GBps": self.dram_bytes / (self.kernel_ps * 1e-3) if self.kernel_ps else 0.0,
            **({"hot_rows": sum(len(h) for h in self.hot.values()), "host_read_bytes": self.host_read_bytes,
                "host_read_GBps": self.host_read_bytes / (self.kernel_ps * 1e-3) if self.kernel_ps else 0.0}
               if self.policy != "hbm" else {}),
            **({"peer_rows": sum(len(h) for h in self.peer.values()), "peer_read_bytes": self.peer_read_bytes,
                "peer_read_GBps": self.peer_read_bytes / (self.kernel_ps * 1e-3) if self.kernel_ps else 0.0}
               if self.peers_on else {}),
        }

    def finalize(self, end_ps: int | None = None) -> None:
        s = self.stats
        for k, v in self.summary(end_ps or 0).items():
            s.set(k, v)
        if self.dram_bytes:  # the HBM reads: one activation per access unit (random rows), its bursts' energy
            from archsim.dram.power import CommandEnergy

            ce = CommandEnergy.from_spec(self.hbm_spec)
            ab = self.spec.hbm_access_bytes
            units = self.dram_bytes // ab
            bursts = units * max(1, ab // self.hbm_spec.org.access_bytes)
            self.sim.energy.book_n(s.full_name, "act", ce.act, units)
            self.sim.energy.book_n(s.full_name, "read", ce.read + ce.io, bursts)
        if self.host_read_bytes and self.link is not None:  # the kernel's host reads on the link's wires
            lk, ab = self.link.link, self.spec.hbm_access_bytes
            units = self.host_read_bytes // ab
            bits = 8 * units * (lk.wire_bytes(ab) + lk.wire_bytes(0))
            self.sim.energy.book(s.full_name, "link", self.link.spec.energy_pJ_per_bit * bits)


def _build(ctx, node) -> GPUComponent:
    from archsim.dram.memory import DRAMSystem
    from archsim.storage.gather import PCIeHop
    from archsim.storage.tiers import tier_config_error

    p = node.params
    if ctx.table_map is None:
        raise tier_config_error(node.where, (), "a gpu runs EmbeddingBag on a workload's tables and needs a "
                                                "workload")
    mem = ctx.get(p.memory)
    if not isinstance(mem, DRAMSystem):
        raise tier_config_error(node.where, ("memory",), f"{p.memory!r} is no dram node (one HBM stack)")
    link = ctx.get(p.link) if p.link is not None else None
    if link is not None and not isinstance(link, PCIeHop):
        raise tier_config_error(node.where, ("link",), f"{p.link!r} is no pcie_link")
    pl = p.placement
    if pl.policy != "hbm":
        if link is None or not isinstance(link.port.mem, DRAMSystem):
            raise tier_config_error(node.where, ("placement", "policy"),
                                    f"policy {pl.policy} reads rows from host memory: the gpu needs a link (a "
                                    f"pcie_link to a dram node)")
        cap = p.hbm_stacks * mem.spec.org.capacity_bytes
        if pl.policy == "hot_in_hbm" and (pl.hbm_bytes or 0) + pl.reserve_bytes > cap:
            raise tier_config_error(node.where, ("placement", "hbm_bytes" if pl.hbm_bytes else "reserve_bytes"),
                                    f"hbm_bytes {pl.hbm_bytes or 0} + reserve_bytes {pl.reserve_bytes} exceed the "
                                    f"{p.hbm_stacks} HBM stacks' {cap} B")
    gpu = GPUComponent(ctx.sim, node.name, p, mem.spec, ctx.table_map, link)
    sharded = ctx.graph is not None and any(
        n.impl == "gpu_shard" and node.name in n.params.members for n in ctx.graph.nodes.values())
    need = gpu.buffers
    if need > gpu.capacity and not sharded:  # a gpu_shard gives it its share of the tables instead
        raise tier_config_error(node.where, ("hbm_stacks",),
                                f"the workload's tables take {need} B, more than the {p.hbm_stacks} HBM stacks' "
                                f"{gpu.capacity} B (placement: host or hot_in_hbm puts them in host memory; "
                                f"gpu_shard spreads them over several GPUs)")
    if gpu.host_bytes:
        host_cap = link.port.mem.spec.org.capacity_bytes
        if gpu.host_bytes > host_cap:
            raise tier_config_error(node.where, ("placement", "policy"),
                                    f"the tables take {gpu.host_bytes} B of host memory, more than the "
                                    f"{link.port.mem.name!r} node's {host_cap} B")
    return gpu


register("gpu", GPUNode, _build, ref_list(memory="dram", link="link"), roles=("reducer",),
         doc="a GPU (SMs, L1, partitioned L2, HBM) running PyTorch's EmbeddingBag, one launch per batch and table")


class GPUShardNode(BaseModel):
    """Several GPUs sharing a workload's tables, each table whole on one GPU (table-wise sharding)."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

    members: list[str] = Field(..., min_length=1, max_length=64, description="the gpu nodes, in order")
    policy: Literal["round_robin", "balanced", "row_wise", "ugache"] = Field(
        "balanced", description="round_robin: table t on GPU t mod n; balanced: each table (largest expected "
                                "traffic first) on the GPU with the least traffic so far, among those its bytes "
                                "fit (RecShard-style: traffic = lookups per batch x row bytes, from the "
                                "workload's pooling, not from a profile); row_wise: every table split into n "
                                "contiguous row ranges, one per GPU (TorchRec's row-wise sharding): each GPU "
                                "pools its rows of every bag, the host adds the n partial vectors; ugache: one "
                                "cache across the GPUs (UGache, SOSP 2023): every GPU takes a 1/n share of each "
                                "batch's bags, the profile's hottest rows are replicated in every GPU's HBM, the "
                                "next ones partitioned over them and read by the others over NVLink, the rest "
                                "read from host memory (the members' placement must be host)")
    cache_bytes: int | None = Field(None, gt=0, description="ugache: HBM bytes each GPU gives the cache (an "
                                                            "integer or e.g. '16GiB'; required)")
    replicate_fraction: float = Field(0.5, ge=0, le=1, description="ugache: the share of each GPU's cache that "
                                                                   "holds replicated rows (the hottest)")
    profile_batches: int = Field(4, ge=1, le=1 << 20, description="ugache: the workload's first batches counted "
                                                                  "to rank the rows")
    nvlink_GBps: float = Field(450.0, gt=0, le=1e6, description="ugache: NVLink bandwidth into each GPU, one "
                                                                "direction (H100 SXM5: 18 links x 25 GB/s)")
    nvlink_latency_ns: float = Field(250.0, ge=0, le=1e6, description="ugache: latency one way through NVLink "
                                                                      "and the NVSwitch (an assumption, as the PCIe "
                                                                      "links' 250 ns; not measured)")

    @field_validator("cache_bytes", mode="before")
    @classmethod
    def _bytes(cls, v):
        from archsim.cxl.spec import parse_bytes

        return v if v is None else parse_bytes(v)

    @property
    def reads_profile(self) -> bool:
        return self.policy == "ugache"


class _Parts:
    """A bag split over row-wise shards: done when its last part is."""

    __slots__ = ("gr", "left")

    def __init__(self, gr: GatherReduce, left: int) -> None:
        self.gr = gr
        self.left = left


class GPUShard(Component):
    """Hands each table's bags to the GPU that holds the table (table-wise), or each bag's rows to the GPUs
    that hold them (row-wise: every GPU gets every bag, with its own rows, and pools a partial vector; the bag
    is done when the last partial vector is back at the host, whose adds of the partial vectors are not
    timed)."""

    def __init__(self, sim, name: str, members: list[GPUComponent], ntables: int, owner: list[int] | None = None,
                 rows_per_shard: list[int] | None = None) -> None:
        """``owner``: the GPU of each table (table-wise); ``rows_per_shard``: each table's rows per GPU
        (row-wise); neither: every n-th bag of a table to each GPU (data parallel, one cache across them)."""
        super().__init__(sim, name)
        self.members = members
        self.owner = owner
        self.rows_per_shard = rows_per_shard
        self.data_parallel = owner is None and rows_per_shard is None
        self.ntables = ntables
        self.next_gpu = [0] * ntables

    def accepts_table(self, t: int) -> bool:
        return 0 <= t < self.ntables

    def submit(self, gr: GatherReduce) -> simpy.Event:
        if self.data_parallel:  # bag k of a table to GPU k mod n
            g = self.next_gpu[gr.table]
            self.next_gpu[gr.table] = (g + 1) % len(self.members)
            return self.members[g].submit(gr)
        if self.rows_per_shard is None:
            return self.members[self.owner[gr.table]].submit(gr)
        env = self.env
        gr.t_submit = env.now
        if gr.done is None:
            gr.done = env.event()
        k = self.rows_per_shard[gr.table]
        rows = np.asarray(gr.rows, dtype=np.int64)
        shard = rows // k
        parts = _Parts(gr, len(self.members))
        for g, gpu in enumerate(self.members):
            sub = GatherReduce(gr.table, rows[shard == g] - g * k, gr.dim, gr.dtype, gr.row_bytes, gr.op,
                               tag=gr.tag)
            gpu.submit(sub).callbacks.append(lambda ev, p=parts: self._part_done(p))
        return gr.done

    def _part_done(self, parts: _Parts) -> None:
        parts.left -= 1
        if not parts.left:
            finish_at(self.env, parts.gr, self.env.now)

    def summary(self, end_ps: int) -> dict[str, float]:
        return {"gpus": len(self.members), "tables": self.ntables}

    def finalize(self, end_ps: int | None = None) -> None:
        self.stats.set("gpus", len(self.members))


def _mean_pooling(p) -> float:
    """Expected lookups per bag of a pooling spec."""
    if p.dist == "fixed":
        return float(p.value)
    if p.dist == "uniform":
        lo, hi = p.range
        return (lo + hi) / 2
    if p.dist == "normal":
        return float(p.mean)
    w = sum(p.weights)
    return sum(v * x for v, x in zip(p.values, p.weights)) / w if w else 1.0


def shard_tables(tables: list, capacities: list[int], policy: str) -> list[int] | None:
    """The GPU of each table (None when some table fits no GPU). ``balanced``: tables by expected traffic
    (mean pooling x row bytes), largest first, each to the GPU with the least traffic so far among those with
    room; ``round_robin``: table t on GPU t mod n (None if that overfills one)."""
    n = len(capacities)
    size = [-(-t.rows * t.row_bytes // _ALIGN) * _ALIGN for t in tables]
    left = list(capacities)
    owner = [-1] * len(tables)
    if policy == "round_robin":
        for i in range(len(tables)):
            g = i % n
            if size[i] > left[g]:
                return None
            left[g] -= size[i]
            owner[i] = g
        return owner
    traffic = [_mean_pooling(t.pooling) * t.row_bytes for t in tables]
    load = [0.0] * n
    for i in sorted(range(len(tables)), key=lambda i: (-traffic[i], -size[i], i)):
        fits = [g for g in range(n) if size[i] <= left[g]]
        if not fits:
            return None
        g = min(fits, key=lambda g: (load[g], g))
        left[g] -= size[i]
        load[g] += traffic[i]
        owner[i] = g
    return owner


def _build_shard(ctx, node) -> GPUShard:
    from archsim.storage.tiers import tier_config_error

    p = node.params
    if ctx.table_map is None:
        raise tier_config_error(node.where, (), "a gpu shard runs a workload's tables and needs a workload")
    gpus = []
    for i, m in enumerate(p.members):
        g = ctx.get(m)
        if not isinstance(g, GPUComponent):
            raise tier_config_error(node.where, ("members", i), f"{m!r} is no gpu")
        gpus.append(g)
    if len(set(p.members)) != len(p.members):
        raise tier_config_error(node.where, ("members",), "a gpu is listed twice")
    tables = ctx.table_map.tables
    if p.policy == "row_wise":
        n = len(gpus)
        per = [-(-t.rows // n) for t in tables]
        for g, gpu in enumerate(gpus):
            gpu.assign(range(len(tables)), {t: (min(g * k, t_.rows), min((g + 1) * k, t_.rows))
                                            for t, (k, t_) in enumerate(zip(per, tables))})
            if gpu.buffers > gpu.capacity:
                raise tier_config_error(node.where, ("members", g),
                                        f"{p.members[g]}'s row-wise share of the tables takes {gpu.buffers} B, "
                                        f"more than its {gpu.capacity} B of HBM (more GPUs, or placement "
                                        f"hot_in_hbm on the gpus)")
        return GPUShard(ctx.sim, node.name, gpus, len(tables), rows_per_shard=per)
    if p.policy == "ugache":
        return _build_ugache(ctx, node, gpus)
    owner = shard_tables(tables, [g.capacity for g in gpus], p.policy)
    if owner is None:
        total = sum(t.rows * t.row_bytes for t in tables)
        raise tier_config_error(node.where, ("members",),
                                f"the workload's tables ({total} B) cannot be placed whole on {len(gpus)} GPUs of "
                                f"{', '.join(str(g.capacity) for g in gpus)} B (policy {p.policy}; a table larger "
                                f"than one GPU is not yet modelled)")
    for i, g in enumerate(gpus):
        g.assign([t for t, o in enumerate(owner) if o == i])
    return GPUShard(ctx.sim, node.name, gpus, len(tables), owner=owner)


def ugache_placement(ranked: np.ndarray, row_bytes: np.ndarray, n: int, budget: int,
                     replicate_fraction: float) -> tuple[np.ndarray, list[np.ndarray]]:
    """Of (table, row) pairs ranked hottest first (2 x K, :func:`ranked_profile`): the replicated ones (the
    hottest, up to ``replicate_fraction`` x ``budget`` bytes, on every GPU) and, per GPU, its partition (the
    next ones, dealt round robin, up to the rest of each GPU's budget); indices into ``ranked``."""
    cum = np.cumsum(row_bytes[ranked[0]])
    rep = int(np.searchsorted(cum, replicate_fraction * budget, side="right"))
    left = budget - (cum[rep - 1] if rep else 0)
    parts = []
    for g in range(n):
        mine = np.arange(rep + g, ranked.shape[1], n)
        parts.append(mine[np.cumsum(row_bytes[ranked[0][mine]]) <= left])
    return np.arange(rep), parts


def _build_ugache(ctx, node, gpus: list[GPUComponent]) -> GPUShard:
    from archsim.storage.tiers import tier_config_error

    p = node.params
    for i, g in enumerate(gpus):
        if g.policy != "host":
            raise tier_config_error(node.where, ("members", i), f"{p.members[i]}: policy ugache needs members whose "
                                                                f"placement is host (the rows outside the cache)")
    if p.cache_bytes is None:
        raise tier_config_error(node.where, ("cache_bytes",), "policy ugache needs cache_bytes (HBM per GPU)")
    tables = ctx.table_map.tables
    n = len(gpus)
    budget = p.cache_bytes - len(tables) * _ALIGN
    for i, g in enumerate(gpus):
        if p.cache_bytes + g.spec.placement.reserve_bytes > g.capacity:
            raise tier_config_error(node.where, ("cache_bytes",),
                                    f"cache_bytes {p.cache_bytes} + {p.members[i]}'s reserve_bytes "
                                    f"{g.spec.placement.reserve_bytes} exceed its {g.capacity} B of HBM")
    ts = range(len(tables))
    ranked = ranked_profile(ctx.table_map, ts, p.profile_batches)
    rb = np.array([t.row_bytes for t in tables], dtype=np.int64)
    rep, parts = ugache_placement(ranked, rb, n, max(0, budget), p.replicate_fraction)
    hot_all = [rows_by_table(ranked[:, np.concatenate([rep, parts[g]])], ts) for g in range(n)]
    peer_all = [rows_by_table(ranked[:, np.concatenate([rep[:0]] + [parts[h] for h in range(n) if h != g])], ts)
                for g in range(n)]
    for g, gpu in enumerate(gpus):
        spec = gpu.spec
        lb = spec.l1.line_bytes
        peer_bytes = sum(len(r) * tables[t].row_bytes + _ALIGN for t, r in peer_all[g].items())
        peer = RemoteMemory("peer", PEER_BASE // lb, -(-(PEER_BASE + peer_bytes) // lb),
                            spec.hbm_idle_latency_ns + 2 * p.nvlink_latency_ns, p.nvlink_GBps, 0,
                            spec.hbm_access_bytes, None, cached_across_launches=False)
        gpu.share_cache(hot_all[g], peer_all[g], peer)
        if gpu.buffers > gpu.capacity:
            raise tier_config_error(node.where, ("cache_bytes",), f"{p.members[g]}'s cache takes {gpu.buffers} B, "
                                                                  f"more than its {gpu.capacity} B of HBM")
    return GPUShard(ctx.sim, node.name, gpus, len(tables))


register("gpu_shard", GPUShardNode, _build_shard, ref_list(members="reducer"), roles=("reducer",),
         doc="several gpus, each table whole on one of them (table-wise sharding, round-robin or balanced)")
