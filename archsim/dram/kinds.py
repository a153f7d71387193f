"""Component kind ``dram``: a DRAM or HBM memory system (:class:`archsim.dram.memory.DRAMSystem`).

Its parameters are a ``dram:`` section (:class:`archsim.dram.spec.DRAMSpec`, ``extends:`` a preset); it is
wired to nothing below it.
"""

from __future__ import annotations

from archsim.dram.memory import DRAMSystem
from archsim.dram.spec import DRAMSpec
from archsim.system.registry import register


def _build(ctx, node) -> DRAMSystem:
    return DRAMSystem(ctx.sim, node.params, name=node.name)


register("dram", DRAMSpec, _build, roles=("memory", "dram"),
         doc="DRAM or HBM: channels, ranks, banks, an FR-FCFS controller per channel")
