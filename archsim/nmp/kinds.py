"""Component kind ``nmp``: near-memory processing units in the DIMMs of a ``dram`` component (RecNMP rank
units, ReCross bank-group and bank units; :class:`archsim.nmp.rank.RankNMP`)."""

from __future__ import annotations

from pydantic import Field

from archsim.nmp.spec import NMPSpec
from archsim.system.registry import ref_list, register


class NMPNode(NMPSpec):
    """NMP units (``nmp:`` parameters) in the DIMMs of ``dimms``."""

    dimms: str = Field(..., description="the dram component whose DIMMs hold the units")
    window_base: int = Field(0, ge=0, description="the host address of the DIMMs' first byte (a CXL "
                                                  "expander's base): bags' row addresses are taken relative to it")


def _build(ctx, node):
    from archsim.nmp.rank import RankNMP

    dimms = ctx.get(node.params.dimms)
    # the units' model of the ranks books the DIMMs' background and refresh energy (the units drive the
    # ranks; counting both models' standby would count the DIMMs twice)
    dimms.book_standby = False
    return RankNMP(ctx.sim, dimms.spec, node.params, ctx.table_map, name=node.name,
                   window_base=node.params.window_base)


register("nmp", NMPNode, _build, ref_list(dimms="dram"), roles=("reducer",))
