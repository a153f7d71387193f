"""Component kinds of the storage package: ``ssd`` (an NVMe SSD used as memory), ``tier`` (a tier manager over
an ordered list of memories), ``pcie_link`` (a PCIe link in front of a memory) and ``gather_unit`` (a fixed-rate
gather-and-pool unit, the stand-in for a GPU's embedding kernel near its HBM).

An ``ssd`` is wired to nothing below it; a cache, a delay path, a router range, a tier or a host's ``memory``
may lead to it::

    components:
      ssd0: {impl: ssd, extends: nvme_tlc_pcie4}
      llc: {next: ssd0}

A ``tier`` names its memories under ``tiers[i].memory`` (docs/storage.md, "Tier manager")::

    components:
      ssd0: {impl: ssd, extends: nvme_tlc_pcie4}
      emb:
        impl: tier
        tiers: [{memory: dram, capacity: 64MiB, policy: evlfu}, {memory: ssd0, capacity: 3840GB}]
      uncore: {next: emb}
"""

from __future__ import annotations

from archsim.storage.gather import GatherUnitNode, PCIeLinkNode, build_gather_unit, build_pcie_link
from archsim.storage.spec import SSDSpec, ssd_errors
from archsim.storage.ssd import SSD
from archsim.storage.tier_spec import TierNode, tier_errors
from archsim.system.registry import ref_list, register


class SSDNode(SSDSpec):
    """An NVMe SSD (the keys of :class:`archsim.storage.spec.SSDSpec`; presets ``nvme_tlc_pcie4``,
    ``nvme_znand_pcie3``)."""


def _build(ctx, node) -> SSD:
    return SSD(ctx.sim, node.name, node.params)


register("ssd", SSDNode, _build, roles=("memory",), check=ssd_errors)


def _tier_refs(p: TierNode) -> list[tuple[tuple, str, str]]:
    return [(("tiers", i, "memory"), lv.memory, "memory") for i, lv in enumerate(p.tiers)]


def _build_tier(ctx, node):
    from archsim.storage.tiers import TierManager, tier_config_error

    if ctx.table_map is None:
        raise tier_config_error(node.where, (), "a tier maps embedding rows to its memories and needs a "
                                                "workload's tables; a memory trace cannot drive it")
    mems = [ctx.get(lv.memory) for lv in node.params.tiers]
    return TierManager(ctx.sim, node.name, node.params, mems, ctx.table_map, node.where)


register("tier", TierNode, _build_tier, _tier_refs, roles=("memory",), check=tier_errors,
         doc="tier manager: embedding rows over an ordered list of memories (static, cache, shard; EVStore's "
             "layers)")
register("pcie_link", PCIeLinkNode, build_pcie_link, ref_list("to"), roles=("memory", "link"))
register("gather_unit", GatherUnitNode, build_gather_unit, ref_list("memory", link="link"), roles=("reducer",))
