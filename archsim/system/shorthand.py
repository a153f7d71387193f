"""The hwconfig sections users write (``dram:``, ``host:``, ``nmp:``, ``cxl:``, ``hosts:``) expanded into the
system graph (:mod:`archsim.system.graph`).

What a section becomes (names are the components' names in stats and energy)::

    dram:            dram                                  (impl dram)
    cxl.expanders:   cxl.<e>.dram -> cxl.<e>               (dram, cxl_expander with media)
    expanders[].nmp: cxl.<e>.nmp (units in cxl.<e>.dram)   (nmp, the expander's reducer)
    cxl.switches:    cxl.<sw>.port<j>.link -> cxl.<sw>     (cxl_link on every port, cxl_switch)
    cxl:             hdm (interleaving) -> memory          (hdm, router: local DRAM below, CXL windows above)
    host.llc:        llc (or uncore, a delay path)         (cache | delay) -> memory | dram
    nmp:             nmp (units in dram's DIMMs)           (nmp)
    cxl.pifs:        pifs (units in the switch)            (pifs; other hosts: host<i>.pifs, pifs_port)
    host:            host (cores, the embedding operator)  (host) -> llc, near: nmp | pifs
    hosts: N         host<i>.dram, host<i>.llc, ...        host i's own parts, attached at the next free port

The nodes are declared in the order the components were built before the graph existed, so results are
unchanged (tests/test_golden.py).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from archsim.system.config import SystemConfig
from archsim.system.graph import Graph
from archsim.system.host import HostSpec


def _construct(schema: type[BaseModel], src: BaseModel | None = None, /, **extra: Any) -> BaseModel:
    """A node's parameters from an already validated section (no second validation) plus its wiring."""
    values = {k: getattr(src, k) for k in type(src).model_fields if k in schema.model_fields} \
        if src is not None else {}
    values.update(extra)
    full = {k: f.get_default(call_default_factory=True) for k, f in schema.model_fields.items()
            if not f.is_required()}
    full.update(values)
    return schema.model_construct(**full)


def _add(g: Graph, name: str, impl: str, where: tuple, src: BaseModel | None = None, /, **extra: Any) -> None:
    """Node ``name`` of kind ``impl``: its parameters from section ``src`` and the wiring in ``extra``."""
    from archsim.system.registry import kind

    g.add(name, impl, _construct(kind(impl).schema, src, **extra), where)


def expand(cfg: SystemConfig) -> Graph:
    """The graph of a hwconfig written in sections."""
    from archsim.system.kinds import RangeNode

    g = Graph()
    host = cfg.host or HostSpec()
    fabric_links: dict[str, str] = {}
    if cfg.cxl is not None:
        attach = cfg.cxl.attach_points(cfg.hosts)
    for i in range(cfg.hosts):
        pre = f"host{i}." if i else ""
        g.add(f"{pre}dram", "dram", cfg.dram, ("dram",))
        mem = f"{pre}dram"
        if cfg.cxl is not None:
            if i == 0:
                fabric_links = _expand_fabric(g, cfg)
            far = fabric_links[attach[i]]
            link = far
            if cfg.cxl.interleave_bytes is not None:
                _add(g, f"{pre}hdm", "hdm", ("cxl", "interleave_bytes"), to=link, **_interleave(cfg))
                far = f"{pre}hdm"
            local = cfg.dram.org.capacity_bytes
            _add(g, f"{pre}memory", "router", ("cxl",), ranges=[
                _construct(RangeNode, base=0, end=local, to=f"{pre}dram"),
                _construct(RangeNode, base=local, end=1 << 64, to=far)])
            mem = f"{pre}memory"
        if i == 0:
            g.memory_root = mem
        if host.llc is not None:
            path = f"{pre}llc"
            _add(g, path, "cache", ("host", "llc"), host.llc, next=mem, to_next_ns=host.to_memory_ns,
                 from_next_ns=host.from_memory_ns)
        else:
            path = f"{pre}uncore"
            _add(g, path, "delay", ("host",), next=mem, to_next_ns=host.to_memory_ns,
                 from_next_ns=host.from_memory_ns)
        near = None
        if cfg.nmp is not None:
            near = "nmp"
            _add(g, near, "nmp", ("nmp",), cfg.nmp, dimms="dram")
        if cfg.cxl is not None and cfg.cxl.pifs is not None:
            spec = cfg.cxl.pifs
            if i == 0:
                near = "pifs"
                sw = spec.switch or cfg.cxl.switches[0].name
                _add(g, near, "pifs", ("cxl", "pifs"), spec, switch=f"cxl.{sw}", host_link=link,
                     to_host_ns=host.to_memory_ns, from_host_ns=host.from_memory_ns)
            else:
                near = f"{pre}pifs"
                _add(g, near, "pifs_port", ("hosts",), pifs="pifs", link=link, to_host_ns=host.to_memory_ns,
                     from_host_ns=host.from_memory_ns)
        name = f"host{i or ''}"
        _add(g, name, "host", ("host",) if cfg.host is not None else (), host, llc=None, memory=path, near=near)
        g.hosts.append(name)
    apply_components(g, cfg.components)
    return g


class GraphInputError(ValueError):
    """A ``components:`` entry that cannot be a node: ``path`` (key path in the hwconfig) and message."""

    def __init__(self, path: tuple, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


def apply_components(g: Graph, components: dict[str, dict[str, Any]]) -> None:
    """Add the ``components:`` entries to the expanded graph: an entry with a new name is a new node (``impl``
    and the kind's parameters); an entry with the name of an expanded node changes its parameters (its
    wiring, say), keeping its kind. Raises :class:`GraphInputError` for an entry that does not validate."""
    import pydantic

    from archsim.config.loader import _error_message
    from archsim.system.registry import kind

    for name, entry in components.items():
        where = ("components", name)
        if not isinstance(entry, dict):
            raise GraphInputError(where, f"must be a mapping with impl: and the kind's keys, got {entry!r}")
        entry = dict(entry)
        impl = entry.pop("impl", None)
        old = g.nodes.get(name)
        if old is None and impl is None:
            raise GraphInputError(where, "a new component needs impl: (archsim show lists the kinds in use)")
        if old is not None and impl is not None and impl != old.impl:
            raise GraphInputError((*where, "impl"), f"{name!r} is a {old.impl}; a component keeps its kind "
                                                    f"(give the new one another name), got {impl!r}")
        impl = impl if old is None else old.impl
        if not isinstance(impl, str):
            raise GraphInputError((*where, "impl"), f"must be a kind's name, got {impl!r}")
        try:
            k = kind(impl)
        except KeyError as e:
            raise GraphInputError((*where, "impl"), e.args[0]) from None
        base = {f: getattr(old.params, f) for f in type(old.params).model_fields} if old is not None else {}
        try:
            params = k.schema.model_validate({**base, **entry})
        except pydantic.ValidationError as e:
            first = e.errors(include_url=False)[0]
            loc = tuple(p for p in first.get("loc", ()) if p != "[key]")
            raise GraphInputError((*where, *loc), _error_message(first)) from None
        if old is not None:
            old.params = params
            old.where = where
        else:
            g.add(name, impl, params, where)


def _interleave(cfg: SystemConfig) -> dict[str, int]:
    exps = sorted(cfg.cxl.expanders, key=lambda e: e.base)
    return {"base": exps[0].base, "granule_bytes": cfg.cxl.interleave_bytes, "ways": len(exps),
            "way_bytes": exps[0].size}


def _expand_fabric(g: Graph, cfg: SystemConfig, name: str = "cxl") -> dict[str, str]:
    """The ``cxl:`` section's expanders, switches and links; returns attachment point -> host link name."""
    from archsim.cxl.kinds import SwitchPortNode

    spec = cfg.cxl
    for i, e in enumerate(spec.expanders):
        g.add(f"{name}.{e.name}.dram", "dram", e.dram, ("cxl", "expanders", i, "dram"))
        reducer = None
        if e.nmp is not None:  # NMP units in the expander's DIMMs
            reducer = f"{name}.{e.name}.nmp"
            _add(g, reducer, "nmp", ("cxl", "expanders", i, "nmp"), e.nmp, dimms=f"{name}.{e.name}.dram",
                 window_base=e.base)
        _add(g, f"{name}.{e.name}", "cxl_expander", ("cxl", "expanders", i), media=f"{name}.{e.name}.dram",
             reducer=reducer, base=e.base, capacity=e.capacity, controller_latency_ns=e.controller_latency_ns)
    ranges = spec.port_ranges()
    taken: dict[str, int] = {}
    targeted: set[str] = set()
    built: set[str] = set()

    def link_node(lname: str, link_spec, to: str, port: int | None, where) -> None:
        _add(g, lname, "cxl_link", where, link_spec, to=to, port=port)

    def build(si: int) -> None:
        sw = spec.switches[si]
        if sw.name in built:
            return
        built.add(sw.name)
        ports = []
        for j, p in enumerate(sw.ports):
            here = ("cxl", "switches", si, "ports", j)
            if p.role != "downstream":
                ports.append(_construct(SwitchPortNode, role="upstream"))
                continue
            k, idx = spec.lookup(p.target)
            targeted.add(p.target)
            lname = f"{name}.{sw.name}.port{j}.link"
            if k == "expander":
                link_node(lname, p.link, f"{name}.{p.target}", None, here)
            else:
                build(idx)
                child = spec.switches[idx]
                ups = [q for q, pp in enumerate(child.ports) if pp.role == "upstream"]
                n = taken.get(p.target, 0)
                taken[p.target] = n + 1
                link_node(lname, p.link, f"{name}.{p.target}", ups[n], here)
            ports.append(_construct(SwitchPortNode, role="downstream", link=lname, ranges=ranges[(si, j)]))
        _add(g, f"{name}.{sw.name}", "cxl_switch", ("cxl", "switches", si), sw, ports=ports)

    for si in range(len(spec.switches)):
        build(si)
    host_links: dict[str, str] = {}
    for si, sw in enumerate(spec.switches):
        ups = [j for j, p in enumerate(sw.ports) if p.role == "upstream"]
        for j in ups[taken.get(sw.name, 0):]:
            lname = f"{name}.{sw.name}.port{j}.link"
            link_node(lname, sw.ports[j].link, f"{name}.{sw.name}", j, ("cxl", "switches", si, "ports", j))
            host_links[f"{sw.name}.port{j}"] = lname
    for i, e in enumerate(spec.expanders):
        if e.name not in targeted:
            lname = f"{name}.{e.name}.link"
            link_node(lname, e.link, f"{name}.{e.name}", None, ("cxl", "expanders", i, "link"))
            host_links[e.name] = lname
    return host_links
