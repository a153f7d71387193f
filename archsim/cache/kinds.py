"""Component kind ``cache``: a set-associative cache in front of the component named ``next``."""

from __future__ import annotations

from pydantic import Field

from archsim.cache.component import Cache
from archsim.cache.spec import CacheSpec
from archsim.core.port import MemoryPort
from archsim.system.registry import ref_list, register

#: batches of the workload profiled for a static_hot cache when ``static_hot_profile_batches`` is not given
STATIC_HOT_PROFILE_BATCHES = 4


class CacheNode(CacheSpec):
    """A cache (``cache:`` geometry, replacement and write policy, latency, energy) and its wiring to the next
    level."""

    next: str = Field(..., description="the component misses and write-backs go to")
    to_next_ns: float = Field(0.0, ge=0, description="wire latency from the cache to the next level, one way")
    from_next_ns: float = Field(0.0, ge=0, description="wire latency from the next level back, one way")


def static_hot_profile(ctx, node):
    """The lines a ``static_hot`` cache pins, hottest first: the lookups the workload's first
    ``static_hot_profile_batches`` batches make to lines of the cache's size (the table map's profile,
    host addresses). A run without a workload profile (a memory trace) has none: that is an input error."""
    from archsim.config.errors import ConfigError

    p = node.params
    tm = ctx.table_map
    if tm is None or getattr(tm, "profile", None) is None:
        raise ConfigError("policy static_hot pins the workload's profiled hottest lines, and this run has no "
                          "workload profile (a memory trace has no workload; from Python, pass profile= to "
                          "run_embedding): use another policy, or give a cache its own profile in Python "
                          "(archsim.cache.component.Cache(..., profile=...))",
                          path=".".join(str(k) for k in (*node.where, "policy")))
    return tm.ranked_lines(p.static_hot_profile_batches or STATIC_HOT_PROFILE_BATCHES, p.line_bytes)


def _build(ctx, node) -> Cache:
    p = node.params
    profile = static_hot_profile(ctx, node) if p.policy == "static_hot" else None
    return Cache(ctx.sim, node.name, p, MemoryPort(ctx.get(p.next)), round(p.to_next_ns * 1000),
                 round(p.from_next_ns * 1000), profile=profile)


register("cache", CacheNode, _build, ref_list("next"), roles=("memory",))
