"""Component kinds of the CXL fabric: ``cxl_link``, ``cxl_switch``, ``cxl_expander``, and PIFS-Rec's
processing units in a switch (``pifs``; ``pifs_port``: another host's door to the same units).

Wiring: a link leads ``to`` a component (an expander, or upstream port ``port`` of a switch); a switch's
downstream ports name their links (``ports[j].link``) and the address ranges routed there (default: every
window below the link); an expander names its ``media`` (the memory behind its controller).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from archsim.cxl.expander import Expander
from archsim.cxl.link import Link
from archsim.cxl.pifs import PIFS, HostFront, PIFSHostPort
from archsim.cxl.spec import LinkSpec, PIFSSpec, _Strict
from archsim.cxl.switch import Downstream, Switch, Upstream
from archsim.system.registry import ref_list, register


def windows_below(comp) -> list[tuple[int, int]]:
    """The host address windows reachable through ``comp`` (a link, a switch port, an expander)."""
    windows = getattr(comp, "windows", None)
    if windows is None:
        raise ValueError(f"{comp.name}: no address window below it; give the switch port's ranges")
    return windows()


class LinkNode(LinkSpec):
    """A CXL link (``link:`` parameters) to component ``to``."""

    to: str = Field(..., description="the component at the link's far end (an expander, a switch)")
    port: int | None = Field(None, ge=0, description="when ``to`` is a switch: which of its upstream ports")


def _build_link(ctx, node) -> Link:
    p = node.params
    down = ctx.get(p.to)
    if p.port is not None:
        down = down.port(p.port)
    return Link(ctx.sim, node.name, p, down)


register("cxl_link", LinkNode, _build_link, ref_list("to"), roles=("memory", "link"))


class SwitchPortNode(_Strict):
    """One port of a switch: ``upstream`` (a host or a parent switch's link arrives) or ``downstream`` (leads
    through ``link`` to a device, for the host address ``ranges``)."""

    role: Literal["upstream", "downstream"]
    link: str | None = Field(None, description="downstream: the link leaving this port")
    ranges: list[tuple[int, int]] | None = Field(None, description="downstream: [base, end) ranges routed "
                                                                   "here; default: every window below the link")


class SwitchNode(_Strict):
    """A CXL switch: ports, per-port ingress queues, a crossbar with an arbitration policy."""

    ports: list[SwitchPortNode] = Field(..., min_length=2)
    queue_depth: int = Field(32, gt=0)
    arbitration: Literal["round_robin", "oldest_first"] = "round_robin"
    forwarding_latency_ns: float = Field(20.0, ge=0)
    crossbar_slot_ns: float = Field(0.5, gt=0)


def _switch_refs(p: SwitchNode) -> list[tuple[tuple, str, str]]:
    return [(("ports", j, "link"), q.link, "link") for j, q in enumerate(p.ports) if q.link is not None]


def _switch_check(p: SwitchNode) -> list[tuple[tuple, str]]:
    errs: list[tuple[tuple, str]] = []
    for j, q in enumerate(p.ports):
        if q.role == "downstream" and q.link is None:
            errs.append((("ports", j, "link"), "a downstream port must name the link leaving it"))
        if q.role == "upstream" and (q.link is not None or q.ranges is not None):
            errs.append((("ports", j), "an upstream port takes no link or ranges (the link arriving names it)"))
    if errs:
        return errs
    spans = sorted((lo, hi, j) for j, q in enumerate(p.ports) for lo, hi in (q.ranges or ()))
    for (lo0, hi0, j0), (lo1, hi1, j1) in zip(spans, spans[1:]):
        if lo1 < hi0:
            errs.append((("ports", j1, "ranges"), f"[0x{lo1:x}, 0x{hi1:x}) overlaps port {j0}'s "
                                                  f"[0x{lo0:x}, 0x{hi0:x})"))
    return errs


def _build_switch(ctx, node) -> Switch:
    p = node.params
    ports: list[Upstream | Downstream] = []
    for q in p.ports:
        if q.role == "upstream":
            ports.append(Upstream())
        else:
            link = ctx.get(q.link)
            ports.append(Downstream(link, q.ranges if q.ranges is not None else windows_below(link)))
    return Switch(ctx.sim, node.name, ports, queue_depth=p.queue_depth, arbitration=p.arbitration,
                  forwarding_latency_ns=p.forwarding_latency_ns, crossbar_slot_ns=p.crossbar_slot_ns)


register("cxl_switch", SwitchNode, _build_switch, _switch_refs, roles=("memory", "switch"), check=_switch_check)


class ExpanderNode(_Strict):
    """A CXL Type-3 memory expander: a device controller in front of its ``media``."""

    media: str = Field(..., description="the memory behind the controller (a dram component)")
    reducer: str | None = Field(None, description="units that gather and pool bags in the media (an nmp "
                                                  "component over it); absent: the expander only serves reads")
    base: int = Field(0, ge=0, description="host physical address of the expander's first byte")
    capacity: int | None = Field(None, gt=0, description="bytes exposed; default: the media's capacity")
    controller_latency_ns: float = Field(25.0, ge=0)


def _build_expander(ctx, node) -> Expander:
    p = node.params
    return Expander(ctx.sim, node.name, p, media=ctx.get(p.media),
                    reducer=ctx.get(p.reducer) if p.reducer is not None else None)


register("cxl_expander", ExpanderNode, _build_expander, ref_list(media="dram", reducer="reducer"),
         roles=("memory", "reducer"))


class PIFSNode(PIFSSpec):
    """PIFS-Rec units in ``switch``, one per downstream port; commands and pooled vectors use ``host_link``."""

    switch: str = Field(..., description="the switch that holds the units")  # type: ignore[assignment]
    host_link: str = Field(..., description="the link from the host into the switch")
    to_host_ns: float = Field(0.0, ge=0, description="the host's on-chip path to its root port, one way")
    from_host_ns: float = Field(0.0, ge=0, description="the way back")


def _build_pifs(ctx, node) -> PIFS:
    p = node.params
    switch = ctx.get(p.switch)
    return PIFS(ctx.sim, p, switch, ctx.get(p.host_link), switch.output_targets(), ctx.table_map,
                round(p.to_host_ns * 1000), round(p.from_host_ns * 1000), name=node.name)


register("pifs", PIFSNode, _build_pifs, ref_list(switch="switch", host_link="link"),
         roles=("reducer", "reduce_units"))


class PIFSPortNode(_Strict):
    """Another host's door to the PIFS units ``pifs``: its commands and results travel on ``link``."""

    pifs: str
    link: str
    to_host_ns: float = Field(0.0, ge=0)
    from_host_ns: float = Field(0.0, ge=0)


def _build_pifs_port(ctx, node) -> PIFSHostPort:
    p = node.params
    return PIFSHostPort(ctx.get(p.pifs), HostFront(ctx.get(p.link), round(p.to_host_ns * 1000),
                                                   round(p.from_host_ns * 1000)))


register("pifs_port", PIFSPortNode, _build_pifs_port, ref_list(pifs="reduce_units", link="link"),
         roles=("reducer",))
