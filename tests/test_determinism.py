"""Issue #12, determinism: the same config and seed give byte-identical results (wall-time columns aside) on
every architecture: two runs in one process, a run in another process (another hash seed), and a sweep on
one process, on two processes and on a Dask LocalCluster of processes."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from archsim.api import run
from archsim.sweep import run_sweep

ROOT = Path(__file__).resolve().parent.parent
ARCHS = ["cpu_ddr4", "recnmp", "recross", "cxl_pool", "pifs_rec", "pifs_recross"]
WORKLOAD = ROOT / "workloads" / "criteo_zipf.yaml"
SETS = ["num_batches=1", "batch_size=4"]
WALL = {"wall_time_s"}  # the only summary column that differs between two runs of the same point


def _summary_without_wall(path: Path) -> str:
    """summary.csv as written, less the wall-time columns."""
    rows = list(csv.reader(io.StringIO(path.read_text())))
    keep = [i for i, name in enumerate(rows[0]) if name not in WALL]
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows([[r[i] for i in keep] for r in rows])
    return buf.getvalue()


def _run(arch: str, out: Path) -> Path:
    res = run(ROOT / "hwconfigs" / f"{arch}.yaml", workload=WORKLOAD, workload_overrides=SETS, seed=7, out=out)
    assert res.out_dir == out
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Each architecture run twice in this process and once in a fresh one with another hash seed."""
    base = tmp_path_factory.mktemp("runs")
    for arch in ARCHS:
        _run(arch, base / "a" / arch)
        _run(arch, base / "b" / arch)
    script = textwrap.dedent(f"""\
        import sys
        from pathlib import Path
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_determinism import ARCHS, _run
        for arch in ARCHS:
            _run(arch, Path({str(base / "c")!r}) / arch)
        """)
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    subprocess.run([sys.executable, "-c", script], check=True, env=env, cwd=ROOT)
    return base


@pytest.mark.parametrize("arch", ARCHS)
def test_same_config_and_seed_give_identical_files(runs, arch):
    a, b, c = (runs / x / arch for x in "abc")
    for other in (b, c):
        assert _summary_without_wall(a / "summary.csv") == _summary_without_wall(other / "summary.csv")
        assert (a / "stats.json").read_bytes() == (other / "stats.json").read_bytes()
        assert (a / "config.yaml").read_bytes() == (other / "config.yaml").read_bytes()
    summary = pd.read_csv(a / "summary.csv")
    assert summary["lookups"][0] == 4 * 8 * 80 and summary["seed"][0] == 7


@pytest.fixture(scope="module")
def dask_client():
    distributed = pytest.importorskip("distributed")
    import logging

    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                       silence_logs=logging.ERROR)
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


def test_sweep_on_every_executor_gives_the_same_table(tmp_path, runs, dask_client):
    spec = tmp_path / "s.yaml"
    spec.write_text(textwrap.dedent(f"""\
        base:
          workload: {WORKLOAD}
          overrides: {{workload.num_batches: 1, workload.batch_size: 4}}
        seed: 7
        axes:
          hwconfig: [{", ".join(str(ROOT / "hwconfigs" / f"{a}.yaml") for a in ARCHS)}]
        """))
    tables = {}
    for name, kwargs in (("serial", {"jobs": 1}), ("processes", {"jobs": 2}), ("dask", {"dask": dask_client})):
        out = tmp_path / name
        df = run_sweep(spec, out=out, progress=False, **kwargs)
        assert (df["status"] == "ok").all(), df["error"]
        assert df.attrs["sweep"]["ran"] == len(ARCHS)
        text = (out / "results.csv").read_text()
        tables[name] = pd.read_csv(io.StringIO(text)).drop(columns=sorted(WALL))
        records = {p.stem: json.loads(p.read_text()) for p in (out / "points").glob("*.json")}
        tables[name + "_records"] = {k: {m: v for m, v in r["summary"].items() if m not in WALL}
                                     for k, r in records.items()}
    for name in ("processes", "dask"):
        pd.testing.assert_frame_equal(tables[name], tables["serial"], check_exact=True)
        assert tables[name + "_records"] == tables["serial_records"]
    # each row is the summary.csv of `archsim run` with the same config and seed
    serial = tables["serial"].set_index("hwconfig")
    for arch in ARCHS:
        one = pd.read_csv(runs / "a" / arch / "summary.csv").drop(columns=sorted(WALL)).iloc[0]
        row = serial.loc[arch]
        for col, value in one.items():  # summary.csv rounds floats to 6 decimals
            got = round(row[col], 6) if isinstance(row[col], float) else row[col]
            assert got == value or (pd.isna(got) and pd.isna(value)), (arch, col, got, value)
