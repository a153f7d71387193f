"""Component kind ``cache``: a set-associative cache in front of the component named ``next``."""

from __future__ import annotations

from pydantic import Field

from archsim.cache.component import Cache
from archsim.cache.spec import CacheSpec
from archsim.core.port import MemoryPort
from archsim.system.registry import ref_list, register


class CacheNode(CacheSpec):
    """A cache (``cache:`` geometry, latency, energy) and its wiring to the next level."""

    next: str = Field(..., description="the component misses and write-backs go to")
    to_next_ns: float = Field(0.0, ge=0, description="wire latency from the cache to the next level, one way")
    from_next_ns: float = Field(0.0, ge=0, description="wire latency from the next level back, one way")


def _build(ctx, node) -> Cache:
    p = node.params
    return Cache(ctx.sim, node.name, p, MemoryPort(ctx.get(p.next)), round(p.to_next_ns * 1000),
                 round(p.from_next_ns * 1000))


register("cache", CacheNode, _build, ref_list("next"), roles=("memory",))
