"""The Type-3 expander: idle read = link parts + controller latency + the DRAM model's own idle read, exactly;
the added latency over local DRAM with default parameters lands in Pond's measured range; address handling."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
import simpy

from archsim.config import load_config
from archsim.core.port import call_at
from archsim.core.request import MemRequest
from archsim.core.sim import Simulator
from archsim.cxl import Expander, ExpanderSpec, Link, LinkSpec
from archsim.dram.memory import DRAMSystem
from archsim.dram.spec import DRAMSpec

GiB = 2**30
BASE = 64 * GiB  # the expander's host physical base address


def ddr5() -> DRAMSpec:
    """One DDR5-4800 DIMM (two 32-bit subchannels, 16 GiB) from the shipped preset."""
    return DRAMSpec.model_validate(load_config("ddr5_4800_16gb_x8").data)


def bare_dram_read_ps(addr: int, at_ps: int) -> int:
    """Idle read latency of the DRAM model alone, for the same device address arriving at the same time (the
    DRAM issues commands on its clock edges, so the arrival time matters to the picosecond)."""
    sim = Simulator(0)
    dram = DRAMSystem(sim, ddr5(), "dram")
    req = MemRequest(addr)
    call_at(sim.env, at_ps, lambda ev: dram.submit(req))
    sim.env.run(until=at_ps + 10_000_000)
    assert req.t_done > 0
    return req.t_done - at_ps


def idle_read_through_link(spec: ExpanderSpec, link: LinkSpec, addr: int, t0: int) -> tuple[int, Expander]:
    sim = Simulator(0)
    exp = Expander(sim, "exp0", spec)
    front = Link(sim, "link", link, exp)
    req = MemRequest(addr)
    call_at(sim.env, t0, lambda ev: front.submit(req))
    sim.env.run(until=t0 + 10_000_000)
    assert req.t_done > 0
    return req.t_done - t0, exp


@pytest.mark.parametrize("generation", ["pcie5", "pcie6"])
def test_idle_read_is_link_plus_controller_plus_dram(generation: str) -> None:
    """Through an idle x16 link: port + ser(MemRd) + phy + port + controller + DRAM read + port + ser(data) +
    phy + port, the DRAM part measured on a bare DRAMSystem for the same device address and arrival time."""
    spec = ExpanderSpec(name="exp0", base=BASE, dram=ddr5(), controller_latency_ns=31.7)
    link = LinkSpec(generation=generation, lanes=16)
    gt, enc = (32, Fraction(128, 130)) if generation == "pcie5" else (64, Fraction(1))
    flit_ps = Fraction(link.flit_bytes * 8 * 1000) / (gt * 16 * enc)
    rsp_flits = 2 if link.flit_bytes == 68 else 1  # a 64 B data response alone: H5 + 3 chunks, then 1 (68B)
    port, phy, ctrl = 10_000, 5_000, 31_700
    ser_req, ser_rsp = math.ceil(flit_ps), math.ceil(rsp_flits * flit_ps)
    addr = BASE + 0x1234_5640
    t0 = 7_777
    arrive = t0 + port + ser_req + phy + port + ctrl  # when the request reaches the DRAM
    dram_ps = bare_dram_read_ps(addr - BASE, arrive)
    got, exp = idle_read_through_link(spec, link, addr, t0)
    assert got == port + ser_req + phy + port + ctrl + dram_ps + port + ser_rsp + phy + port
    assert exp.reads == 1


def test_default_expander_adds_pond_latency_over_local_dram() -> None:
    """Held against Pond (ASPLOS 2023, ../shared/reference/papers.md): a CXL memory access costs about 70-90 ns
    more than local DRAM. With default link (x16 PCIe 5, 68B flits) and expander parameters, the idle read
    through the link minus the same DRAM's own idle read lands in [70, 90] ns."""
    spec = ExpanderSpec(name="exp0", base=BASE, dram=ddr5())
    link = LinkSpec()
    addr = BASE + 0x40
    t0 = 0
    total, _ = idle_read_through_link(spec, link, addr, t0)
    arrive = t0 + 2 * 10_000 + 5_000 + math.ceil(link.flit_ps) + 25_000
    local = bare_dram_read_ps(addr - BASE, arrive)
    added_ns = (total - local) / 1000
    assert 70 <= added_ns <= 90, f"added {added_ns} ns over local DRAM, Pond measured 70-90 ns"
    # the parts: 4 port traversals, 2 PHYs, 1 + 2 flits of serialisation and the controller
    assert added_ns * 1000 == 4 * 10_000 + 2 * 5_000 + math.ceil(link.flit_ps) + math.ceil(2 * link.flit_ps) + 25_000


def test_expander_subtracts_its_base_and_refuses_foreign_addresses() -> None:
    """Requests carry host physical addresses; the DRAM decodes ``addr - base``. Addresses outside
    ``[base, base + capacity)`` are an error, and the capacity defaults to the whole DRAM (16 GiB)."""
    sim = Simulator(0)
    exp = Expander(sim, "exp0", ExpanderSpec(name="exp0", base=BASE, dram=ddr5()))
    assert (exp.base, exp.end) == (BASE, BASE + 16 * GiB)
    seen: list[int] = []
    inner_submit = exp.dram.submit

    def spy(req: MemRequest) -> simpy.Event:
        seen.append(req.addr)
        return inner_submit(req)

    exp.dram.submit = spy  # type: ignore[method-assign]
    reqs = [MemRequest(BASE + off, is_write=bool(i % 2)) for i, off in enumerate((0, 0x40, 0x3_FFFF_FFC0))]
    for r in reqs:
        exp.submit(r)
    sim.env.run(until=1_000_000)
    assert seen == [0, 0x40, 0x3_FFFF_FFC0]
    assert all(r.t_done > 0 for r in reqs)
    for bad in (BASE - 64, BASE + 16 * GiB):
        with pytest.raises(ValueError, match="outside"):
            exp.submit(MemRequest(bad))
    exp.finalize()
    assert sim.stats["exp0.reads"] == 2 and sim.stats["exp0.writes"] == 1
    assert sim.stats["exp0.dram.reads"] == 2 and sim.stats["exp0.dram.writes"] == 1
    assert sim.energy.component_pj("system.exp0.dram") > 0


def test_expander_capacity_cannot_exceed_its_dram() -> None:
    spec = ExpanderSpec(name="exp0", capacity="32GiB", dram=ddr5())
    from archsim.cxl import CXLSpec

    errs = CXLSpec(expanders=[spec]).semantic_errors()
    assert errs and errs[0][0] == ("expanders", 0, "capacity")
    assert ExpanderSpec(name="e", capacity="8GiB", dram=ddr5()).size == 8 * GiB
