"""Component kind ``gpu``: a GPU that takes a host's embedding bags (role ``reducer``) and runs each table's bags
of a batch as one EmbeddingBag launch on its model (:mod:`archsim.gpu.embbag`).

Wiring: ``host: {near: gpu0}`` hands the GPU every table; ``memory`` names the dram node of one HBM stack (the
GPU has ``hbm_stacks`` of them; its curve of latency against reads in flight comes from that node's spec,
:mod:`archsim.gpu.hbm_curve`); ``link`` (optional) a ``pcie_link`` over which each launch's indices and offsets
go to the GPU before it and the pooled vectors come back after it. The tables live in the GPU's HBM, one after
another from address 0, each on a 2 MiB boundary; a workload whose tables do not fit is refused.

Launches run one after another on one stream: a launch starts when its bags have arrived and the previous
launch has ended. The caches persist from launch to launch (the next batch finds the previous one's rows).

Abstracted away: the HBM's command-level traffic (the dram node is not sent requests: its curve stands for it,
and the GPU reports its own DRAM bytes and bandwidth), HBM and SM energy, the index-preparation kernel PyTorch
launches first, host-side launch latency beyond the config's ``launch_ns``, more than one GPU (issue #14, item 4).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Literal

import numpy as np
import simpy
from pydantic import BaseModel, ConfigDict, Field

from archsim.core.component import Component
from archsim.core.port import call_at, finish_at
from archsim.core.request import GatherReduce
from archsim.gpu.embbag import EmbeddingBagModel, Launch, gpu_hbm_curve
from archsim.gpu.spec import GPUSpec
from archsim.system.registry import ref_list, register
from archsim.workload.spec import DTYPE_BYTES

_ALIGN = 2 << 20


class GPUNode(GPUSpec):
    """A GPU running EmbeddingBag (the ``gpu`` kind's node): the GPU's parameters, plus its wiring."""

    link: str | None = Field(None, description="a pcie_link between the host and the GPU: indices out, pooled "
                                               "vectors back (absent: the bags are on the GPU already)")


class GPUComponent(Component):
    """Bags in, one launch per (batch, table), pooled vectors out."""

    def __init__(self, sim, name: str, spec: GPUNode, hbm_spec, table_map, link=None) -> None:
        super().__init__(sim, name)
        self.spec = spec
        self.link = link
        self.table_map = table_map
        self.hbm_spec = hbm_spec
        self.model = EmbeddingBagModel(spec, hbm_curve=gpu_hbm_curve(spec, hbm_spec))
        self.capacity = hbm_spec.org.capacity_bytes * spec.hbm_stacks
        self.tables = table_map.tables
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

    def assign(self, tables) -> None:
        """Hold ``tables`` (indices into the workload's tables) in the HBM, one after another from address 0,
        each on a 2 MiB boundary; the launches' buffers follow them."""
        self.owned = sorted(int(t) for t in tables)
        self.bases: dict[int, int] = {}
        a = 0
        for t in self.owned:
            info = self.tables[t]
            self.bases[t] = a
            a += -(-info.rows * info.row_bytes // _ALIGN) * _ALIGN
        self.buffers = a  # index, offsets, output, offset2bag, bag_size buffers of the launches, from here

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
        ln = Launch(info.dim, eb, self.bases[t], idx, offsets, ib, ob, out, o2b, bs)
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
        }

    def finalize(self, end_ps: int | None = None) -> None:
        s = self.stats
        for k, v in self.summary(end_ps or 0).items():
            s.set(k, v)


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
    gpu = GPUComponent(ctx.sim, node.name, p, mem.spec, ctx.table_map, link)
    sharded = ctx.graph is not None and any(
        n.impl == "gpu_shard" and node.name in n.params.members for n in ctx.graph.nodes.values())
    need = gpu.buffers
    if need > gpu.capacity and not sharded:  # a gpu_shard gives it its share of the tables instead
        raise tier_config_error(node.where, ("hbm_stacks",),
                                f"the workload's tables take {need} B, more than the {p.hbm_stacks} HBM stacks' "
                                f"{gpu.capacity} B (several GPUs and host-memory tiers: not yet modelled)")
    return gpu


register("gpu", GPUNode, _build, ref_list(memory="dram", link="link"), roles=("reducer",),
         doc="a GPU (SMs, L1, partitioned L2, HBM) running PyTorch's EmbeddingBag, one launch per batch and table")


class GPUShardNode(BaseModel):
    """Several GPUs sharing a workload's tables, each table whole on one GPU (table-wise sharding)."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

    members: list[str] = Field(..., min_length=1, max_length=64, description="the gpu nodes, in order")
    policy: Literal["round_robin", "balanced"] = Field(
        "balanced", description="round_robin: table t on GPU t mod n; balanced: each table (largest expected "
                                "traffic first) on the GPU with the least traffic so far, among those its bytes "
                                "fit (RecShard-style: traffic = lookups per batch x row bytes, from the "
                                "workload's pooling, not from a profile)")


class GPUShard(Component):
    """Hands each table's bags to the GPU that holds the table."""

    def __init__(self, sim, name: str, members: list[GPUComponent], owner: list[int]) -> None:
        super().__init__(sim, name)
        self.members = members
        self.owner = owner

    def accepts_table(self, t: int) -> bool:
        return 0 <= t < len(self.owner)

    def submit(self, gr: GatherReduce) -> simpy.Event:
        return self.members[self.owner[gr.table]].submit(gr)

    def summary(self, end_ps: int) -> dict[str, float]:
        return {"gpus": len(self.members), "tables": len(self.owner)}

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
    owner = shard_tables(tables, [g.capacity for g in gpus], p.policy)
    if owner is None:
        total = sum(t.rows * t.row_bytes for t in tables)
        raise tier_config_error(node.where, ("members",),
                                f"the workload's tables ({total} B) cannot be placed whole on {len(gpus)} GPUs of "
                                f"{', '.join(str(g.capacity) for g in gpus)} B (policy {p.policy}; a table larger "
                                f"than one GPU is not yet modelled)")
    for i, g in enumerate(gpus):
        g.assign([t for t, o in enumerate(owner) if o == i])
    return GPUShard(ctx.sim, node.name, gpus, owner)


register("gpu_shard", GPUShardNode, _build_shard, ref_list(members="reducer"), roles=("reducer",),
         doc="several gpus, each table whole on one of them (table-wise sharding, round-robin or balanced)")
