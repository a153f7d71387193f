"""Composition (hwconfigs/pifs_recross.yaml): PIFS-Rec units in the switch hand each port's rows of a bag to the
ReCross units in that expander's DIMMs and combine the expanders' partial sums. One bag, counted by hand."""

from __future__ import annotations

import pytest

from archsim.system.builder import run_embedding
from archsim.system.config import load_system
from archsim.validation import REPO_ROOT, SyntheticTable, uniform_batches

HW = str(REPO_ROOT / "hwconfigs" / "pifs_recross.yaml")
ROWS = 1 << 16


@pytest.mark.parametrize("pooling", [1, 20, 40])
def test_one_bag_link_bytes_by_hand(pooling):
    """A bag of ``pooling`` rows of a 64-dim fp32 table (table 0: expander exp0 behind port 1). By hand:
    the command is a 16 B header and 4 B per index, once on the host link and once on port 1's link; the
    expander's partial sum (64 x 4 B) comes up port 1's link and the pooled vector (64 x 4 B) up the host
    link; no line crosses any link, nothing crosses ports 2-4."""
    cfg, _ = load_system(HW)
    system, _ = run_embedding(cfg, [SyntheticTable("t0", ROWS, 64)], uniform_batches(ROWS, 1, pooling, 1))
    c = system.components
    command = 16 + 4 * pooling
    host, port1 = c["cxl.sw0.port0.link"], c["cxl.sw0.port1.link"]
    assert (host.m2s.payload_bytes, host.s2m.payload_bytes) == (command, 256)
    assert (port1.m2s.payload_bytes, port1.s2m.payload_bytes) == (command, 256)
    for j in (2, 3, 4):
        lk = c[f"cxl.sw0.port{j}.link"]
        assert lk.m2s.payload_bytes == lk.s2m.payload_bytes == 0
    nmp = c["cxl.exp0.nmp"]
    assert sum(u.lines for u in nmp.units) == pooling * 4  # the DIMM's units read each 256 B row once
    assert c["cxl.exp0"].bags == 1 and c["cxl.exp0"].reads == 0  # a bag, no line reads
    assert sum(u.lines for u in system.pifs.units) == 0 and system.operator.lines == 0
    op = system.operator
    assert op.bags == 1 and op.lookups == pooling


def test_bag_spread_over_expanders_is_combined_in_the_switch():
    """Four tables, one bag each (device_per_table puts table t on expander t): each expander gets its own
    table's rows as one command and returns one partial sum; the combiner adds the four."""
    cfg, _ = load_system(HW)
    tabs = [SyntheticTable(f"t{i}", ROWS, 64) for i in range(4)]
    system, _ = run_embedding(cfg, tabs, uniform_batches(ROWS, 1, 10, 1, tables=4))
    c = system.components
    for j in range(1, 5):
        lk = c[f"cxl.sw0.port{j}.link"]
        assert (lk.m2s.payload_bytes, lk.s2m.payload_bytes) == (16 + 40, 256)
        assert c[f"cxl.exp{j - 1}"].bags == 1
    assert system.pifs.partials == 4
    assert c["cxl.sw0.port0.link"].s2m.payload_bytes == 4 * 256


def test_rows_are_reduced_at_rank_and_bank_level_in_the_expander():
    """With a profile, the hot rows (hot_access_share 0.2 of the accesses) go to the rank units, the cold ones
    to the bank units of the expander's DIMM: both levels read (a 64-row table, so rows repeat in the profile;
    the rank units' cache serves repeats of hot rows, so together they read at most every line once)."""
    cfg, _ = load_system(HW)
    tab = [SyntheticTable("t0", 64, 64)]
    system, _ = run_embedding(cfg, tab, uniform_batches(64, 1, 40, 1), profile=uniform_batches(64, 4, 40, 1))
    units = system.components["cxl.exp0.nmp"].units
    rank = sum(u.lines for u in units if u.sub < 0)
    bank = sum(u.lines for u in units if u.sub >= 0)
    assert rank > 0 and bank > 0 and rank + bank <= 40 * 4
