"""Component kind of the storage package: ``ssd`` (an NVMe SSD used as memory).

An ``ssd`` is wired to nothing below it; a cache, a delay path, a router range or a host's ``memory`` may lead
to it::

    components:
      ssd0: {impl: ssd, extends: nvme_tlc_pcie4}
      llc: {next: ssd0}
"""

from __future__ import annotations

from archsim.storage.spec import SSDSpec, ssd_errors
from archsim.storage.ssd import SSD
from archsim.system.registry import register


class SSDNode(SSDSpec):
    """An NVMe SSD (the keys of :class:`archsim.storage.spec.SSDSpec`; presets ``nvme_tlc_pcie4``,
    ``nvme_znand_pcie3``)."""


def _build(ctx, node) -> SSD:
    return SSD(ctx.sim, node.name, node.params)


register("ssd", SSDNode, _build, roles=("memory",), check=ssd_errors)
