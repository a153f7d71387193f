"""The table map (archsim/system/table_map.py): one place that says where every embedding row lives, resolved
through the system graph to the memory component that holds it."""

from __future__ import annotations

import numpy as np

from archsim.system.builder import run_embedding
from archsim.system.config import load_system
from archsim.validation import REPO_ROOT, SyntheticTable, uniform_batches

HW = REPO_ROOT / "hwconfigs"
ROWS = 1 << 16


def _system(name: str, sets=(), tables: int = 4):
    cfg, _ = load_system(str(HW / f"{name}.yaml"), list(sets))
    tabs = [SyntheticTable(f"t{i}", ROWS, 64) for i in range(tables)]
    system, _ = run_embedding(cfg, tabs, uniform_batches(ROWS, 1, 1, 1, tables=tables))
    return system


def test_rows_on_local_dram_belong_to_it():
    s = _system("cpu_ddr4")
    tm = s.table_map
    comp, addr = tm.owner(2, 100)
    assert comp is s["dram"]
    assert addr == tm.layout.tables[2].base + 100 * tm.stride(2)
    assert tm.lines_per_row(2) == 4 and tm.stride(2) == 256


def test_device_per_table_puts_table_t_on_expander_t():
    """cxl_pool: the host's memory map, the host link, the switch's ports, down to the expander."""
    s = _system("cxl_pool")
    for t in range(4):
        comp, _ = s.table_map.owner(t, ROWS - 1)
        assert comp is s[f"cxl.exp{t}"]


def test_interleaved_rows_follow_the_hdm_decoder():
    """With 4 KiB interleaving, consecutive 4 KiB granules of one table sit on consecutive expanders (16 rows
    of 256 B per granule); the units in the switch read the same device addresses the host's decoder gives."""
    s = _system("cxl_pool", ["layout.policy=contiguous", "cxl.interleave_bytes=4096"], tables=1)
    tm = s.table_map
    owners = [tm.owner(0, r)[0].name for r in range(0, 16 * 8, 16)]
    assert owners == ["cxl.exp0", "cxl.exp1", "cxl.exp2", "cxl.exp3"] * 2
    host, _ = tm.line_addresses(0, np.arange(32))
    dev, _ = tm.line_addresses(0, np.arange(32), device=True)
    assert (host != dev).any() and tm.translate is not None


def test_hot_rows_live_in_the_map():
    cfg, _ = load_system(str(HW / "recross.yaml"))
    tabs = [SyntheticTable("t0", 64, 64)]
    system, _ = run_embedding(cfg, tabs, uniform_batches(64, 4, 40, 1), profile=uniform_batches(64, 4, 40, 1))
    tm = system.table_map
    hot = tm.hot_rows(0)
    assert len(hot) > 0
    rows = np.arange(64)
    assert tm.is_hot(0, rows).sum() == len(hot)
    assert system.nmp.table_map is tm  # the units read the same map
