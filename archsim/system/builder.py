"""Runs embedding workloads on a system graph: the table layout, the hot-row profile, the build
(:mod:`archsim.system.shorthand` expands a hwconfig's sections into the graph of
:mod:`archsim.system.graph`), the hosts' batch streams, finalization.
"""

from __future__ import annotations

from archsim.cache.component import Cache
from archsim.core.sim import Simulator
from archsim.cxl import Fabric
from archsim.dram.memory import DRAMSystem
from archsim.system.config import SystemConfig
from archsim.system.graph import System
from archsim.system.layout import TableLayout


class HostSystem(System):
    """A built graph that runs embedding workloads on its hosts. The properties name the components of
    the shorthand sections (``host``, ``llc``, ``dram``, ``nmp``, ``pifs``, the ``cxl.*`` fabric) for the
    summary and for tests; a graph without them returns None."""

    @property
    def operator(self):
        return self.hosts[0]

    @property
    def operators(self) -> list:
        """Every host's embedding operator, host 0 first."""
        return list(self.hosts)

    @property
    def llc(self) -> Cache | None:
        return self.get("llc")

    @property
    def dram(self) -> DRAMSystem:
        return self.get("dram")

    @property
    def nmp(self):
        return self.get("nmp")

    @property
    def pifs(self):
        return self.get("pifs")

    @property
    def fabric(self) -> Fabric | None:
        """The ``cxl.*`` components as a :class:`Fabric` (None without a ``cxl:`` section)."""
        from archsim.cxl import Expander, Link, Switch

        fab = Fabric()
        for name, comp in self.components.items():
            if not name.startswith("cxl."):
                continue
            short = name[4:]
            if isinstance(comp, Expander):
                fab.expanders[short] = comp
            elif isinstance(comp, Switch):
                fab.switches[short] = comp
            elif isinstance(comp, Link):
                fab.links.append(comp)
        if not fab.links:
            return None
        for node in self.graph.nodes.values():
            if node.impl == "cxl_link" and self.components[node.name] in fab.links:
                tgt = node.params.to[4:]
                if tgt in fab.switches and node.params.port is not None \
                        and node.name == f"cxl.{tgt}.port{node.params.port}.link":
                    fab.host_ports[f"{tgt}.port{node.params.port}"] = self.components[node.name]
                elif tgt in fab.expanders and node.name == f"cxl.{tgt}.link":
                    fab.host_ports[tgt] = self.components[node.name]
        fab.links.sort(key=_link_order(self))
        return fab


def _link_order(system: HostSystem):
    order = {n: i for i, n in enumerate(system.components)}
    return lambda link: order[link.name]


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


def _pins_profiled_lines(cfg: SystemConfig) -> bool:
    """Whether a component of ``cfg``'s graph reads the workload's profile: a cache that pins profiled lines
    (``policy: static_hot``), or a node whose parameters say so (``reads_profile``: a tier's placement)."""
    if not (cfg.host is not None and cfg.host.llc is not None and cfg.host.llc.policy == "static_hot") \
            and not cfg.components:
        return False
    from archsim.system.shorthand import expand

    return any((n.impl == "cache" and getattr(n.params, "policy", "lru") == "static_hot")
               or getattr(n.params, "reads_profile", False) for n in expand(cfg).nodes.values())


def build_host_system(sim: Simulator, cfg: SystemConfig, tables: list, layout: TableLayout,
                      hot_rows: list | None = None, profile=None) -> HostSystem:
    """The graph of ``cfg`` (its sections expanded, :mod:`archsim.system.shorthand`) built for ``tables``
    laid out by ``layout``; ``hot_rows`` (per table, for units that treat hot rows apart) from
    :func:`archsim.nmp.placement.profile_hot_rows`; ``profile``: the workload's batches for caches that pin
    profiled lines (``policy: static_hot``)."""
    from archsim.system.graph import BuildContext, build
    from archsim.system.shorthand import expand
    from archsim.system.table_map import TableMap

    graph = expand(cfg)
    errs = graph.errors()
    if errs:
        raise ValueError(f"{errs[0][0]}: {errs[0][1]}")
    table_map = TableMap(layout, tables, hot_rows, profile=profile)
    system = build(sim, graph, BuildContext(sim, table_map))
    return HostSystem(sim, graph, system.components, table_map)


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

    cache_profile = None
    if profile is not None and _pins_profiled_lines(cfg):  # a static_hot cache reads the same batches too
        import itertools

        profile, cache_profile = itertools.tee(profile)

    nmps = [cfg.nmp] + ([e.nmp for e in cfg.cxl.expanders] if cfg.cxl is not None else [])
    for nmp in nmps:  # the NMP units' (all expanders' units share the first one's profile settings)
        if nmp is not None and (nmp.level == "cross" or nmp.rank_cache_admit == "hot"):
            hot = profile_hot_rows(profile or (), tables, nmp.hot_fraction, nmp.profile_batches,
                                   nmp.hot_min_count, nmp.hot_access_share)
            break
    pifs = cfg.cxl.pifs if cfg.cxl is not None else None
    if pifs is not None and (pifs.buffer_admit == "hot" or pifs.replicate_hot):
        hot = profile_hot_rows(profile or (), tables, pifs.hot_fraction, pifs.profile_batches)
    if cache_profile is not None:
        profile = None  # the units are done with their copy: the tee keeps nothing more for it
    streams = list(more_batches or ())
    if len(streams) != cfg.hosts - 1:
        raise ValueError(f"{cfg.hosts} hosts need {cfg.hosts - 1} more batch streams, got {len(streams)}")
    system = build_host_system(sim, cfg, tables, layout, hot, cache_profile)
    procs = [sim.env.process(system.hosts[0].run(batches, progress))]
    procs += [sim.env.process(h.run(b)) for h, b in zip(system.hosts[1:], streams)]
    sim.env.run(until=sim.env.all_of(procs))
    end_ps = max(op.end_ps for op in system.operators)
    system.finalize(end_ps)
    return system, end_ps
