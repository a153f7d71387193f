"""`archsim run HWCONFIG --workload SPEC` end to end: columns, determinism, bad input, near-data hand-off."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import simpy

from archsim.cli import main
from archsim.core.component import Component
from archsim.core.request import GatherReduce, complete_at
from archsim.core.sim import Simulator
from archsim.system.builder import build_host_system, build_layout
from archsim.system.config import load_system
from archsim.workload.batches import iter_batches
from archsim.workload.spec import load_workload

ROOT = Path(__file__).resolve().parents[1]
CPU = str(ROOT / "hwconfigs" / "cpu_ddr4.yaml")
ZIPF = str(ROOT / "workloads" / "zipf_small.yaml")


def _run(args, capsys):
    rc = main(args)
    out, err = capsys.readouterr()
    return rc, out, err


def _summary(d: Path) -> dict[str, str]:
    with open(d / "summary.csv") as f:
        return next(csv.DictReader(f))


def test_columns_and_determinism(tmp_path, capsys):
    rows = []
    for i, seed in enumerate(("7", "7", "8")):
        out = tmp_path / f"r{i}"
        rc, _, err = _run(["run", CPU, "--workload", ZIPF, "--workload-set", "num_batches=4", "--seed", seed,
                           "--out", str(out), "--quiet"], capsys)
        assert rc == 0, err
        rows.append(_summary(out))
    for col in ("config_hash", "seed", "sim_time_ns", "wall_time_s", "lookups", "bags", "batches",
                "lookups_per_s", "bags_per_s", "batch_latency_mean_us", "batch_latency_p50_us",
                "batch_latency_p95_us", "batch_latency_p99_us", "bag_latency_p50_ns", "bag_latency_p95_ns",
                "bag_latency_p99_ns", "energy_per_lookup_nJ", "llc_hit_rate", "dram_bandwidth_GBps",
                "dram_ch7_bandwidth_GBps", "energy_per_lookup_dram_act_nJ", "energy_per_lookup_llc_sram_nJ",
                "energy_per_lookup_host_compute_nJ"):
        assert col in rows[0], col
    a, b, c = ({k: v for k, v in r.items() if k != "wall_time_s"} for r in rows)
    assert a == b
    assert a != c and a["lookups"] != c["lookups"]
    assert int(a["batches"]) == 4 and int(a["bags"]) == 4 * 2 * 64
    assert (tmp_path / "r0" / "stats.json").read_text() == (tmp_path / "r1" / "stats.json").read_text()


def test_shipped_trace_example_runs(tmp_path, capsys):
    rc, _, err = _run(["run", CPU, "--workload", str(ROOT / "workloads" / "trace_example.yaml"),
                       "--out", str(tmp_path / "t"), "--quiet"], capsys)
    assert rc == 0, err
    s = _summary(tmp_path / "t")
    assert int(s["batches"]) == 4 and float(s["lookups_per_s"]) > 0


def _bad(tmp_path, capsys, args, expect: str) -> None:
    out = tmp_path / "bad"
    rc, _, err = _run(["run", CPU, *args, "--out", str(out), "--quiet"], capsys)
    assert rc == 2
    assert expect in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not out.exists()


def test_table_too_big_for_memory(tmp_path, capsys):
    _bad(tmp_path, capsys, ["--workload", ZIPF, "--workload-set", "defaults.rows=20000000000"],
         "--workload-set defaults.rows=20000000000: tables: the tables need 4768.37 GiB but cpu_ddr4 holds 256.00 GiB")


def test_pooling_zero(tmp_path, capsys):
    wl = tmp_path / "w.yaml"
    wl.write_text("batch_size: 4\nnum_batches: 1\ntables:\n  - rows: 100\n    dim: 16\n    pooling: 0\n")
    _bad(tmp_path, capsys, ["--workload", str(wl)], f"{wl}:6: tables[0].pooling: must be >= 1, got 0")


def test_missing_and_truncated_trace(tmp_path, capsys):
    wl = tmp_path / "w.yaml"
    wl.write_text("trace: nowhere/\n")
    _bad(tmp_path, capsys, ["--workload", str(wl)], "nowhere")
    src = ROOT / "workloads" / "traces" / "zipf_small_4b"
    dst = tmp_path / "tr"
    shutil.copytree(src, dst)
    f = sorted(dst.glob("*.npz"))[1]
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    wl.write_text("trace: tr\n")
    _bad(tmp_path, capsys, ["--workload", str(wl)], f.name)


class PoolingUnit(Component):
    """A near-data unit that accepts one table's bags and pools each in a fixed time per row."""

    def __init__(self, sim: Simulator, table: int, ps_per_row: int) -> None:
        super().__init__(sim, "pu")
        self.table = table
        self.ps_per_row = ps_per_row
        self.bags = 0

    def accepts_table(self, t: int) -> bool:
        return t == self.table

    def submit(self, gr: GatherReduce) -> simpy.Event:
        assert isinstance(gr, GatherReduce) and gr.table == self.table
        self.bags += 1
        gr.done = self.env.event()
        complete_at(self.env, gr.done, gr, self.env.now + self.ps_per_row * len(gr.rows))
        return gr.done


def test_gather_reduce_goes_to_a_component_that_accepts_it():
    cfg, _ = load_system(CPU)
    wl = load_workload(ZIPF, ["num_batches=2"])
    tables = wl.table_list()
    sim = Simulator(0)
    system = build_host_system(sim, cfg, tables, build_layout(cfg, tables))
    unit = PoolingUnit(sim, table=1, ps_per_row=1000)
    system.operator.near_data = unit
    batches = list(iter_batches(wl))
    sim.env.run(sim.env.process(system.operator.run(iter(batches))))
    op = system.operator
    assert unit.bags == op.near_data_bags == 2 * 64
    # only table 0's rows (128 B = 2 lines each) were gathered by the host
    assert op.lines == 2 * sum(int(np.diff(b.offsets[0]).sum()) for b in batches)
    assert op.bags == 2 * 2 * 64 and op.batches == 2
