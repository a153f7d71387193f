"""Builds the component graph of a hwconfig: memory, the host's path to it, the embedding operator.

The graph (gem5-style: each part replaceable without touching the others)::

    cores --> LLC (or a fixed on-chip delay) --> MemoryPort --> DRAMSystem (channels, controllers)
    embedding operator --GatherReduce--> near-data units (``nmp:``: rank-level units, each with its own
                                          controller over its rank)

CXL fabrics and tiers attach here as they are added.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from archsim.cache.component import Cache
from archsim.core.component import Component
from archsim.core.port import MemoryPort
from archsim.core.sim import Simulator
from archsim.cxl import Fabric, build_fabric
from archsim.dram.memory import DRAMSystem
from archsim.system.config import SystemConfig
from archsim.system.embedding import EmbeddingOperator
from archsim.system.host import DelayPath, HostSpec
from archsim.system.layout import TableLayout


@dataclass
class HostSystem:
    """The built graph of a host with DRAM: what a run drives and finalizes."""

    sim: Simulator
    dram: DRAMSystem
    port: MemoryPort
    path: Component
    llc: Cache | None
    operator: EmbeddingOperator
    layout: TableLayout
    nmp: Component | None = None
    fabric: Fabric | None = None
    pifs: Component | None = None
    peers: list[HostSystem] = field(default_factory=list)  # the other hosts of a pooled fabric (host 0 holds)

    @property
    def operators(self) -> list[EmbeddingOperator]:
        """Every host's embedding operator, host 0 first."""
        return [self.operator, *(p.operator for p in self.peers)]

    def finalize(self, end_ps: int) -> None:
        for peer in self.peers:
            peer.finalize(end_ps)
        self.operator.finalize()
        if self.nmp is not None:
            self.nmp.finalize(end_ps)
        if self.pifs is not None:
            self.pifs.finalize(end_ps)
        if self.llc is not None:
            self.llc.finalize()
        if self.fabric is not None:
            self.fabric.finalize()
        self.dram.finalize(end_ps)


def build_layout(cfg: SystemConfig, tables: list) -> TableLayout:
    """The table layout of ``tables`` in the memory of ``cfg`` (check ``.fits`` before running)."""
    from archsim.dram.mapping import AddressMapper

    org = cfg.dram.org
    mapper = AddressMapper(org, cfg.dram.mapping)
    line = cfg.host.llc.line_bytes if cfg.host and cfg.host.llc else 64
    regions = None
    if cfg.layout.memory == "cxl":
        regions = cfg.cxl.windows()
    return TableLayout(cfg.layout, [t.row_bytes for t in tables], [t.rows for t in tables], line, mapper,
                       org.logical_channels, org.capacity_bytes, regions)


def build_host_system(sim: Simulator, cfg: SystemConfig, tables: list, layout: TableLayout,
                      hot_rows: list | None = None, index: int = 0, fabric: Fabric | None = None,
                      shared_pifs: Component | None = None) -> HostSystem:
    """The graph of ``cfg`` for ``tables``; ``hot_rows`` (per table, cross-level NMP) from
    :func:`archsim.nmp.placement.profile_hot_rows`. ``index``: which of ``cfg.hosts`` identical hosts (host i
    > 0 names its parts ``host<i>.*`` and attaches at the i-th free port of ``fabric``, the shared one)."""
    host = cfg.host or HostSpec()
    pre = f"host{index}." if index else ""
    # with near-memory units the units' model of the ranks books the DIMMs' background and refresh energy
    # (the units drive the ranks; counting both models' standby would count the DIMMs twice)
    dram = DRAMSystem(sim, cfg.dram, name=f"{pre}dram", book_standby=cfg.nmp is None)
    mem: Component = dram
    if cfg.cxl is not None:  # local DRAM below, the CXL windows above it, one physical address space
        from archsim.system.memory_map import AddressRouter

        if fabric is None:
            fabric = build_fabric(sim, cfg.cxl)
        link = fabric.host_ports[cfg.cxl.attach_points(cfg.hosts)[index]]
        far: Component = link
        if cfg.cxl.interleave_bytes is not None:
            from archsim.system.memory_map import Deinterleave

            far = Deinterleave(sim, f"{pre}hdm", link, cfg.cxl.deinterleave)
        mem = AddressRouter(sim, f"{pre}memory", [(0, cfg.dram.org.capacity_bytes, dram),
                                                  (cfg.dram.org.capacity_bytes, 1 << 64, far)])
    port = MemoryPort(mem)
    to_ps = round(host.to_memory_ns * 1000)
    from_ps = round(host.from_memory_ns * 1000)
    llc = None
    if host.llc is not None:
        llc = Cache(sim, f"{pre}llc", host.llc, port, to_ps, from_ps)
        path: Component = llc
    else:
        path = DelayPath(sim, f"{pre}uncore", port, to_ps, from_ps)
    nmp = None
    if cfg.nmp is not None:
        from archsim.nmp.rank import RankNMP

        nmp = RankNMP(sim, cfg.dram, cfg.nmp, layout, tables, hot_rows=hot_rows)
    pifs = near = None
    if cfg.cxl is not None and cfg.cxl.pifs is not None:
        from archsim.cxl.pifs import PIFS, HostFront, PIFSHostPort

        if shared_pifs is not None:  # another host of the pool: the same units, its own link
            near = PIFSHostPort(shared_pifs, HostFront(link, to_ps, from_ps))
        else:
            spec = cfg.cxl.pifs
            sw_name = spec.switch or cfg.cxl.switches[0].name
            switch = fabric.switches[sw_name]
            pifs = near = PIFS(sim, spec, switch, link, [o.target for o in switch._outputs], layout, tables, to_ps,
                               from_ps, hot_rows=hot_rows, translate=cfg.cxl.deinterleave)
    op = EmbeddingOperator(sim, host, path, layout, tables, near_data=nmp or near, name=f"host{index or ''}")
    return HostSystem(sim, dram, port, path, llc, op, layout, nmp, fabric if index == 0 else None, pifs)


def run_embedding(cfg: SystemConfig, tables: list, batches, seed: int = 0,
                  progress=None, profile=None, more_batches: list | None = None) -> tuple[HostSystem, int]:
    """Build the host system of ``cfg`` for ``tables``, run ``batches`` (an iterable of Batch) on it and
    finalize it; returns the system and the simulated end time in ps. Raises ValueError if the tables do not
    fit the memory. ``profile``: a second, independent iterable of the same batches, for cross-level NMP's
    hot-row profile (default: none; the profile is then empty). With ``cfg.hosts`` > 1 (hosts pooling CXL
    memory) ``more_batches`` holds the batch streams of hosts 1, 2, ...; the hosts share the tables (read-only)
    and the fabric, and the run ends when every host has finished its stream."""
    layout = build_layout(cfg, tables)
    if not layout.fits:
        raise ValueError(f"tables need {layout.bytes_needed} B, memory holds {layout.capacity} B")
    sim = Simulator(seed)
    hot = None
    from archsim.nmp.placement import profile_hot_rows

    if cfg.nmp is not None and (cfg.nmp.level == "cross" or cfg.nmp.rank_cache_admit == "hot"):
        hot = profile_hot_rows(profile or (), tables, cfg.nmp.hot_fraction, cfg.nmp.profile_batches,
                               cfg.nmp.hot_min_count, cfg.nmp.hot_access_share)
    pifs = cfg.cxl.pifs if cfg.cxl is not None else None
    if pifs is not None and (pifs.buffer_admit == "hot" or pifs.replicate_hot):
        hot = profile_hot_rows(profile or (), tables, pifs.hot_fraction, pifs.profile_batches)
    system = build_host_system(sim, cfg, tables, layout, hot)
    streams = list(more_batches or ())
    if len(streams) != cfg.hosts - 1:
        raise ValueError(f"{cfg.hosts} hosts need {cfg.hosts - 1} more batch streams, got {len(streams)}")
    for i in range(1, cfg.hosts):
        system.peers.append(build_host_system(sim, cfg, tables, layout, hot, index=i, fabric=system.fabric,
                                              shared_pifs=system.pifs))
    procs = [sim.env.process(system.operator.run(batches, progress))]
    procs += [sim.env.process(p.operator.run(b)) for p, b in zip(system.peers, streams)]
    sim.env.run(until=sim.env.all_of(procs))
    end_ps = max(op.end_ps for op in system.operators)
    system.finalize(end_ps)
    return system, end_ps
