"""CXL fabric: links (lanes, flits, credits), switches (ports, crossbar, arbitration), Type-3 memory expanders.

Each piece is a :class:`~archsim.core.component.Component` with the ``submit(req) -> Event`` face, so a fabric is
composed by wrapping: a host submits into a :class:`Link`, whose downstream is a :class:`Switch` upstream port or
an :class:`Expander`; a switch's downstream ports lead through links to expanders or to further switches.
:func:`build_fabric` composes the whole ``cxl:`` section (:class:`CXLSpec`). Model and sources: docs/cxl.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from archsim.core.component import Component
from archsim.core.sim import Simulator
from archsim.cxl.expander import Expander
from archsim.cxl.flit import FLIT_68B, FLIT_256B, FlitFormat, flit_format
from archsim.cxl.link import Link
from archsim.cxl.spec import CXLSpec, ExpanderSpec, LinkSpec, PortSpec, RangeSpec, SwitchSpec, load_cxl
from archsim.cxl.switch import Downstream, Switch, Upstream

__all__ = [
    "CXLSpec", "ExpanderSpec", "LinkSpec", "PortSpec", "RangeSpec", "SwitchSpec", "load_cxl",
    "FLIT_68B", "FLIT_256B", "FlitFormat", "flit_format",
    "Link", "Switch", "Upstream", "Downstream", "Expander", "Fabric", "build_fabric",
]


@dataclass
class Fabric:
    """The components of a built ``cxl:`` section.

    ``host_ports`` maps each attachment point a host can submit into to its link: ``"<switch>.port<j>"`` for the
    upstream ports of switches no other switch leads to, ``"<expander>"`` for expanders attached directly.
    """

    expanders: dict[str, Expander] = field(default_factory=dict)
    switches: dict[str, Switch] = field(default_factory=dict)
    links: list[Link] = field(default_factory=list)
    host_ports: dict[str, Link] = field(default_factory=dict)

    def finalize(self) -> None:
        """Finalize every component (stats and energy)."""
        for comp in (*self.links, *self.switches.values(), *self.expanders.values()):
            comp.finalize()


def build_fabric(sim: Simulator, spec: CXLSpec, name: str = "cxl") -> Fabric:
    """Build the components of ``spec`` (validated, without :meth:`CXLSpec.semantic_errors`) under ``name``.

    A switch port's ``link`` is the link on that port: for a downstream port the link to its device; for an
    upstream port that a host attaches to, the link from the host. A cascaded switch's upstream port is reached
    through its parent's downstream link (its own ``link`` entry is not used); a parent's ports take the child's
    upstream ports in order.
    """
    errs = spec.semantic_errors()
    if errs:
        rel, msg = errs[0]
        raise ValueError(f"{name}.{'.'.join(str(p) for p in rel)}: {msg}")
    fab = Fabric()
    for e in spec.expanders:
        fab.expanders[e.name] = Expander(sim, f"{name}.{e.name}", e)
    ranges = spec.port_ranges()
    taken: dict[str, int] = {}  # switch name -> upstream ports given to parents
    targeted: set[str] = set()

    def build(si: int) -> Switch:
        sw = spec.switches[si]
        if sw.name in fab.switches:
            return fab.switches[sw.name]
        downstream: dict[int, tuple[Component, list[tuple[int, int]]]] = {}
        for j, p in enumerate(sw.ports):
            if p.role != "downstream":
                continue
            assert p.target is not None
            kind, idx = spec.lookup(p.target)
            targeted.add(p.target)
            if kind == "expander":
                device: Component = fab.expanders[p.target]
            else:
                child = build(idx)
                k = taken.get(p.target, 0)
                taken[p.target] = k + 1
                device = child.port(child.upstream_ports[k])
            link = Link(sim, f"{name}.{sw.name}.port{j}.link", p.link, device)
            fab.links.append(link)
            downstream[j] = (link, ranges[(si, j)])
        switch = Switch.from_spec(sim, f"{name}.{sw.name}", sw, downstream)
        fab.switches[sw.name] = switch
        return switch

    for si in range(len(spec.switches)):
        build(si)
    for sw in spec.switches:
        switch = fab.switches[sw.name]
        for j in switch.upstream_ports[taken.get(sw.name, 0):]:
            link = Link(sim, f"{name}.{sw.name}.port{j}.link", sw.ports[j].link, switch.port(j))
            fab.links.append(link)
            fab.host_ports[f"{sw.name}.port{j}"] = link
    for e in spec.expanders:
        if e.name not in targeted:
            link = Link(sim, f"{name}.{e.name}.link", e.link, fab.expanders[e.name])
            fab.links.append(link)
            fab.host_ports[e.name] = link
    return fab
