"""The core summary columns (docs/metrics.md): the same on every system, generated from the built graph; one
definition of bag latency; the showcase (``python -m archsim.report.demo``)."""

from __future__ import annotations

import csv
import math
import subprocess
import sys

import pytest

from archsim.api import run
from archsim.system.builder import run_embedding
from archsim.system.config import load_system
from archsim.system.metrics import CORE_COLUMNS
from archsim.validation import REPO_ROOT, SyntheticTable, uniform_batches

SYSTEMS = ("cpu_ddr4", "recnmp", "recross", "cxl_pool", "pifs_rec")
TINY = ["num_batches=1", "batch_size=16"]


@pytest.fixture(scope="module")
def tiny() -> dict[str, dict]:
    return {hw: run(hw, workload="criteo_zipf", workload_overrides=TINY).summary for hw in SYSTEMS}


@pytest.mark.parametrize("hw", SYSTEMS)
def test_core_columns_filled_on_every_system(tiny, hw) -> None:
    s = tiny[hw]
    for col in CORE_COLUMNS:
        assert col in s, f"{hw}: no column {col}"
        assert isinstance(s[col], int | float) and math.isfinite(s[col]), f"{hw}: {col} = {s[col]!r}"
    assert s["mem_bandwidth_GBps"] > 0 and s["mem_bytes"] > 0
    assert 0.0 <= s["llc_hit_rate"] <= 1.0  # every one of the five has an LLC
    media = [c for c in s if c.startswith("mem_") and c.endswith("_bandwidth_GBps") and c != "mem_bandwidth_GBps"
             and c != "mem_peak_bandwidth_GBps"]
    assert media and math.isclose(sum(s[c] for c in media), s["mem_bandwidth_GBps"], rel_tol=1e-9)


def test_memory_bandwidth_below_peak_and_counted_once(tiny) -> None:
    for hw, s in tiny.items():
        assert 0 < s["mem_bandwidth_GBps"] <= s["mem_peak_bandwidth_GBps"], hw
    # the NMP units read the same DIMMs as the host: one medium, no second column for their model
    for hw in ("recnmp", "recross"):
        s = tiny[hw]
        assert s["mem_dram_bandwidth_GBps"] == s["mem_bandwidth_GBps"]
        assert not any(c.startswith("mem_nmp") for c in s)
        assert s["dram_bandwidth_GBps"] == 0.0  # the host's channel view: the host itself read nothing
        assert 0.0 < s["nmp_rank_cache_hit_rate"] <= 1.0  # a cache inside a component is listed too
    # the tables sit on the expanders: their DRAM moved the data
    for hw in ("cxl_pool", "pifs_rec"):
        s = tiny[hw]
        assert sum(s[f"mem_cxl_exp{i}_dram_bandwidth_GBps"] for i in range(4)) > 0.99 * s["mem_bandwidth_GBps"]


def test_link_bytes_by_kind(tiny) -> None:
    for hw in ("cpu_ddr4", "recnmp", "recross"):
        assert tiny[hw]["bytes_link_total"] == 0.0
    pool, pifs = tiny["cxl_pool"], tiny["pifs_rec"]
    for s in (pool, pifs):
        parts = sum(s[f"bytes_link_{k}"] for k in ("request", "data", "command", "partial", "pooled", "padding"))
        assert math.isclose(parts, s["bytes_link_total"], rel_tol=1e-12)
        assert s["bytes_link_padding"] >= 0
    assert pool["bytes_link_command"] == pool["bytes_link_pooled"] == 0.0  # the host reads lines
    assert pifs["bytes_link_command"] > 0 and pifs["bytes_link_pooled"] > 0  # commands down, vectors up
    assert pifs["bytes_link_partial"] == 0.0  # units in the switch: the switch adds the partial sums
    assert pifs["bytes_link_total"] < pool["bytes_link_total"]


def test_link_bytes_sum_to_the_wire_bytes() -> None:
    res = run("pifs_rec", workload="criteo_zipf", workload_overrides=TINY)
    wire = 0
    links = res.stats["system"]["cxl"]["sw0"]
    for j in range(5):
        lk = links[f"port{j}"]["link"]
        wire += lk["m2s"]["wire_bytes"] + lk["s2m"]["wire_bytes"]
    assert math.isclose(res.summary["bytes_link_total"], wire, rel_tol=1e-12)


def test_no_negative_energy(tiny) -> None:
    for hw, s in tiny.items():
        for k, v in s.items():
            if k.startswith("energy"):
                assert v >= 0.0, f"{hw}: {k} = {v}"
        static = s["energy_per_lookup_background_nJ"] + s["energy_per_lookup_refresh_nJ"]
        assert math.isclose(s["energy_per_lookup_dynamic_nJ"] + static, s["energy_per_lookup_nJ"], rel_tol=1e-9)
        assert s["energy_per_lookup_io_nJ"] > 0, f"{hw}: DRAM I/O booked on every system"


@pytest.mark.parametrize("hw", SYSTEMS)
def test_one_bag_on_an_idle_system_takes_its_batch_latency(hw) -> None:
    """Bag latency starts at the bag's first memory read: a core's first load, or a near-data unit's first read
    referred back to the host by its command's idle flight; on an idle system that is the batch's start."""
    cfg, _ = load_system(str(REPO_ROOT / "hwconfigs" / f"{hw}.yaml"))
    rows = 1 << 16
    tabs = [SyntheticTable("t0", rows, 64)]
    system, _ = run_embedding(cfg, tabs, uniform_batches(rows, 1, 8, 1, tables=1))
    op = system.operator
    assert op.bag_latency.count == 1 and op.batch_latency.count == 1
    assert op.bag_latency.max == op.batch_latency.max > 0
    assert (op.near_data_bags == 1) == (hw in ("recnmp", "recross", "pifs_rec"))


def test_bag_latency_excludes_the_wait_for_the_units() -> None:
    """Many bags handed to the units at once: each counts from its own first read, not from the batch's start."""
    cfg, _ = load_system(str(REPO_ROOT / "hwconfigs" / "pifs_rec.yaml"), ["cxl.pifs.buffer_kib=0"])
    rows = 1 << 16
    tabs = [SyntheticTable("t0", rows, 64)]
    system, _ = run_embedding(cfg, tabs, uniform_batches(rows, 64, 20, 1, tables=1))
    op = system.operator
    assert op.bag_latency.min < 0.5 * op.batch_latency.max
    assert op.bag_latency.max <= op.batch_latency.max


def test_demo_writes_table_and_figure(tmp_path) -> None:
    out = tmp_path / "demo"
    r = subprocess.run([sys.executable, "-m", "archsim.report.demo", "--batches", "1", "--batch-size", "8",
                        "-j", "1", "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    with open(out / "summary.csv") as f:
        rows = list(csv.DictReader(f))
    from archsim.report.demo import SYSTEMS as DEMO

    assert len(rows) == len(DEMO) >= 5
    assert list(rows[0])[0] == "system"
    assert [r["hwconfig"] for r in rows] == [hw for hw, _ in DEMO]
    for row in rows:
        for col in CORE_COLUMNS:
            assert row[col] not in ("", "nan"), (row["system"], col)
    assert (out / "compare.png").stat().st_size > 10_000
    assert (out / "compare.pdf").exists()
    assert "PIFS-Rec" in r.stdout


@pytest.mark.parametrize("hw", SYSTEMS)
def test_energy_columns_add_up(tiny, hw) -> None:
    """The ledger's kinds add up to the total per lookup; dynamic + background + refresh is the total too; the
    paper checks read the kinds without the derived columns (array, dynamic), so nothing is counted twice."""
    from archsim.validation_papers import _point

    s = tiny[hw]
    p = _point(s)
    assert "dynamic" not in p.energy_nJ and "array" not in p.energy_nJ
    assert sum(p.energy_nJ.values()) == pytest.approx(s["energy_per_lookup_nJ"], rel=1e-9)
    assert p.total_nJ == s["energy_per_lookup_nJ"]
    parts = (s["energy_per_lookup_dynamic_nJ"] + s["energy_per_lookup_background_nJ"]
             + s["energy_per_lookup_refresh_nJ"])
    assert parts == pytest.approx(s["energy_per_lookup_nJ"], rel=1e-9)
