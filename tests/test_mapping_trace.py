"""Address mapping (both spellings, XOR bank hash) and the trace readers (formats, cycle column)."""

from __future__ import annotations

import gzip
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from archsim.config import InputError
from archsim.core.sim import Simulator
from archsim.dram.mapping import AddressMapper, parse_order
from archsim.dram.memory import DRAMSystem
from archsim.dram.spec import Mapping
from archsim.system.config import load_system
from archsim.system.trace_driver import TraceDriver
from archsim.workload.trace import iter_trace

DDR4, _ = load_system("hwconfigs/dram_ddr4_dramsim3.yaml")
ORG = DDR4.dram.org


def test_dramsim3_order_field_positions():
    m = AddressMapper(ORG, Mapping(order="rochrababgco"))
    # 64 B bursts: 6 offset bits; then co (7 = log2(1024/8)), bg 2, ba 2, ra 1, ch 0, ro 16 (LSB up)
    assert (m.pos["co"], m.pos["bg"], m.pos["ba"], m.pos["ra"], m.pos["ro"]) == (6, 13, 15, 17, 18)
    assert m.total_bits == 34 and m.capacity_bytes == ORG.capacity_bytes == 16 << 30


def test_ramulator_order_matches_its_linear_mapper():
    # Ramulator 2 RoBaRaCoCh, DDR4 8Gb x8, 2 ranks: col [12:6], rank [13], bg [15:14], bank [17:16], row [33:18]
    assert parse_order("RoBaRaCoCh") == ["ro", "ba", "bg", "ra", "co", "ch"]
    m = AddressMapper(ORG, Mapping(order="RoBaRaCoCh"))
    assert (m.pos["co"], m.pos["ra"], m.pos["bg"], m.pos["ba"], m.pos["ro"]) == (6, 13, 14, 16, 18)


@pytest.mark.parametrize("order,msg", [("rochrabaco", "lacks field(s) bg"), ("rochrababgcoco", "appears twice"),
                                       ("rochrababgxx", "unknown field 'xx'"), ("RoBaRaCoXy", "unknown field 'Xy'"),
                                       ("ro-ch", "neither DRAMsim3")])
def test_bad_orders(order, msg):
    with pytest.raises(ValueError, match=re.escape(msg)):
        parse_order(order)


@given(st.integers(0, (1 << 34) - 1), st.booleans(), st.sampled_from(["rochrababgco", "RoBaRaCoCh", "robgbarachco"]))
def test_encode_decode_round_trip(addr, xor, order):
    m = AddressMapper(ORG, Mapping(order=order, xor_bank=xor))
    addr &= ~63
    assert m.encode(*m.decode(addr)) == addr


def test_xor_bank_spreads_row_strided_accesses():
    plain = AddressMapper(ORG, Mapping(order="rochrababgco"))
    xor = AddressMapper(ORG, Mapping(order="rochrababgco", xor_bank=True))
    addrs = [plain.encode(0, 0, 0, 0, row, 0) for row in range(16)]  # same bank, 16 rows
    assert len({plain.decode(a)[2:4] for a in addrs}) == 1
    assert len({xor.decode(a)[2:4] for a in addrs}) == 16


def test_trace_formats(tmp_path):
    p = tmp_path / "t.trace.gz"
    with gzip.open(p, "wt") as f:
        f.write("# comment\n0x40 R\n0x80 W\nLD 0xc0\nST 256\n0x1000 READ 7\n0x2000 WRITE 9\n\n")
    assert list(iter_trace(p)) == [(0x40, False, -1), (0x80, True, -1), (0xC0, False, -1), (256, True, -1),
                                   (0x1000, False, 7), (0x2000, True, 9)]


@pytest.mark.parametrize("line", ["0x40", "0x40 X", "LD", "0x40 READ -3", "hello R", "0x40 R 1 2"])
def test_malformed_lines_name_file_and_line(tmp_path, line):
    p = tmp_path / "bad.trace"
    p.write_text(f"0x0 R\n{line}\n")
    with pytest.raises(InputError, match=rf"{p}:2: malformed trace line"):
        list(iter_trace(p))


def test_cycle_column_is_an_earliest_issue_time(tmp_path):
    """Open loop: a request is not offered before its cycle; with idle memory its latency is unloaded."""
    p = tmp_path / "t.trace"
    p.write_text("0x0 READ 100\n0x40 READ 5000\n")
    sim = Simulator(0)
    mem = DRAMSystem(sim, DDR4.dram)
    tck = DDR4.dram.timing.tCK_ps
    done = []
    orig = mem.submit

    def submit(req):
        ev = orig(req)
        ev.callbacks.append(lambda e: done.append((req.t_submit, req.t_accept, req.t_done)))
        return ev

    mem.submit = submit
    drv = TraceDriver(sim.env, mem, iter_trace(p), window=0, cycle_ps=tck)
    sim.env.run(until=drv.finished)
    assert [d[0] for d in done] == [100 * tck, 5000 * tck]
    assert [d[1] for d in done] == [101 * tck, 5001 * tck]
