"""Component kinds of the host side: ``host`` (cores running the embedding operator), ``delay`` (a fixed
on-chip path), ``router`` (a physical memory map by address range), ``hdm`` (the host's decoder of memory
interleaved across CXL expanders)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from archsim.core.port import MemoryPort
from archsim.system.host import DelayPath, HostSpec
from archsim.system.memory_map import AddressRouter, Deinterleave
from archsim.system.registry import ref_list, register


class HostNode(HostSpec):
    """Cores that run embedding batches (``host:`` parameters): they load rows through ``memory`` and hand
    bags to ``near`` (a component that reduces near the data) when it takes their table."""

    memory: str = Field(..., description="the component the cores load through (a cache, a delay path)")
    near: str | None = Field(None, description="a component that gathers and pools bags near the data "
                                               "(absent: the cores pool every bag)")


def _build_host(ctx, node):
    from archsim.system.embedding import EmbeddingOperator

    p = node.params
    near = ctx.get(p.near) if p.near is not None else None
    return EmbeddingOperator(ctx.sim, p, ctx.get(p.memory), ctx.table_map, near_data=near,
                             name=node.name)


register("host", HostNode, _build_host, ref_list("memory", near="reducer"), roles=("driver",))


class DelayNode(BaseModel):
    """A fixed latency each way in front of ``next`` (the on-chip path when there is no cache)."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

    next: str = Field(..., description="the component requests go to")
    to_next_ns: float = Field(0.0, ge=0, description="latency on the way to next")
    from_next_ns: float = Field(0.0, ge=0, description="latency on the way back")


def _build_delay(ctx, node) -> DelayPath:
    p = node.params
    return DelayPath(ctx.sim, node.name, MemoryPort(ctx.get(p.next)), round(p.to_next_ns * 1000),
                     round(p.from_next_ns * 1000))


register("delay", DelayNode, _build_delay, ref_list("next"))


class RangeNode(BaseModel):
    """Addresses ``[base, end)`` go to component ``to``."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

    base: int = Field(..., ge=0)
    end: int = Field(..., gt=0)
    to: str


class RouterNode(BaseModel):
    """A physical memory map: each address range to the component that owns it (non-overlapping)."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

    ranges: list[RangeNode] = Field(..., min_length=1)


def _router_refs(p: RouterNode) -> list[tuple[tuple, str, str]]:
    return [(("ranges", i, "to"), r.to, "memory") for i, r in enumerate(p.ranges)]


def _router_check(p: RouterNode) -> list[tuple[tuple, str]]:
    errs = [(("ranges", i, "end"), f"must be above base 0x{r.base:x}, got 0x{r.end:x}")
            for i, r in enumerate(p.ranges) if r.end <= r.base]
    spans = sorted((r.base, r.end, i) for i, r in enumerate(p.ranges))
    for (lo0, hi0, i0), (lo1, hi1, i1) in zip(spans, spans[1:]):
        if lo1 < hi0:
            errs.append((("ranges", i1), f"[0x{lo1:x}, 0x{hi1:x}) is claimed twice: range {i0} holds "
                                         f"[0x{lo0:x}, 0x{hi0:x})"))
    return errs


def _build_router(ctx, node) -> AddressRouter:
    return AddressRouter(ctx.sim, node.name, [(r.base, r.end, ctx.get(r.to)) for r in node.params.ranges])


register("router", RouterNode, _build_router, _router_refs, check=_router_check)


class HDMNode(BaseModel):
    """The host's HDM decoder of ``ways`` expanders interleaved at ``granule_bytes`` from ``base``: a host
    address becomes the address in the owning expander's window (expander k at ``base + k * way_bytes``)."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

    to: str = Field(..., description="the component decoded requests go to (the host's CXL link)")
    base: int = Field(..., ge=0, description="first byte of the interleaved window")
    granule_bytes: int = Field(..., gt=0, description="interleave granularity")
    ways: int = Field(..., gt=0, description="expanders interleaved")
    way_bytes: int = Field(..., gt=0, description="capacity of each expander")


def hdm_translate(base: int, g: int, n: int, size: int):
    """Host address (int or numpy array) in an interleaved window -> the address in its expander's window."""

    def translate(addr):
        off = addr - base
        chunk = off // g
        return base + (chunk % n) * size + (chunk // n) * g + off % g

    return translate


def _build_hdm(ctx, node) -> Deinterleave:
    p = node.params
    translate = hdm_translate(p.base, p.granule_bytes, p.ways, p.way_bytes)
    if ctx.table_map is not None:  # units in the fabric read the tables at the addresses the decoder gives
        ctx.table_map.translate = translate
    return Deinterleave(ctx.sim, node.name, ctx.get(p.to), translate)


register("hdm", HDMNode, _build_hdm, ref_list("to"))
