"""Trace formats (archsim npz, Meta dlrm_datasets) and the ``archsim trace gen | stats`` commands."""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from archsim.config import ConfigError, InputError
from archsim.workload import cli_trace
from archsim.workload.batches import Batch, iter_batches
from archsim.workload.npz_trace import batch_file, iter_npz, read_batch, read_meta, write_batch, write_trace
from archsim.workload.spec import WORKLOADS_DIR, load_workload
from archsim.workload.trace_stats import trace_stats

EXAMPLE = WORKLOADS_DIR / "traces" / "zipf_small_4b"

SPEC = """\
name: small
seed: 3
batch_size: 16
num_batches: 5
defaults: {dim: 8}
tables:
  - {name: a, rows: 500, pooling: [1, 5], index: {dist: zipf, s: 1.1}}
  - {name: b, rows: 40, dtype: fp16, pooling: 3}
  - {name: c, rows: 7000, dtype: int8, pooling: {dist: empirical, values: [1, 9], weights: [3, 1]}}
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    rc = cli_trace.main(argv)
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


@pytest.fixture
def spec_path(tmp_path: Path) -> Path:
    return write(tmp_path / "small.yaml", SPEC)


# ------------------------------------------------------------------------------------------------------------
# archsim npz format
# ------------------------------------------------------------------------------------------------------------


def test_gen_then_read_gives_identical_batches(tmp_path, spec_path, capsys):
    out = tmp_path / "trace"
    rc, stdout, err = run_cli(["gen", str(spec_path), "--out", str(out)], capsys)
    assert rc == 0 and err == "" and "wrote 5 batches" in stdout
    meta = json.loads((out / "meta.json").read_text())
    assert meta["format"] == "archsim-embedding-trace" and meta["version"] == 1
    assert (meta["batch_size"], meta["num_batches"]) == (16, 5)
    assert meta["tables"] == [
        {"name": "a", "rows": 500, "dim": 8, "dtype": "fp32"},
        {"name": "b", "rows": 40, "dim": 8, "dtype": "fp16"},
        {"name": "c", "rows": 7000, "dim": 8, "dtype": "int8"},
    ]
    with np.load(batch_file(out, 0)) as z:
        assert z["indices"].dtype == np.int64 and z["offsets"].dtype == np.int64
        assert z["offsets"].shape == (3 * 16 + 1,) and z["table_ids"].tolist() == [0, 1, 2]
    original = list(iter_batches(load_workload(spec_path)))
    reader = write(tmp_path / "yaml" / "read.yaml", "trace: ../trace\n")
    spec = load_workload(reader)
    assert (spec.batch_size, spec.num_batches, spec.trace_format) == (16, 5, "archsim")
    assert [(t.name, t.rows, t.dtype, t.row_bytes) for t in spec.table_list()] == [
        ("a", 500, "fp32", 32),
        ("b", 40, "fp16", 16),
        ("c", 7000, "int8", 8),
    ]
    read = list(iter_batches(spec))
    assert len(read) == 5
    assert all(x.equals(y) and x.index == y.index for x, y in zip(original, read))
    # --batches and --seed
    rc, _, _ = run_cli(["gen", str(spec_path), "--out", str(out), "--batches", "2", "--seed", "9"], capsys)
    assert rc == 0 and sorted(p.name for p in out.iterdir()) == [
        "batch_00000.npz",
        "batch_00001.npz",
        "meta.json",
    ]
    again = list(iter_npz(out))
    assert len(again) == 2 and again[0].equals(next(iter_batches(load_workload(spec_path), seed=9)))


def test_single_npz_file_with_and_without_meta(tmp_path, spec_path):
    spec = load_workload(spec_path)
    b = next(iter_batches(spec))
    plain = tmp_path / "one.npz"
    write_batch(plain, b)
    meta = read_meta(plain)
    assert meta["single"] and meta["batch_size"] == 16 and len(meta["tables"]) == 3
    assert read_batch(plain).equals(b)
    st = trace_stats(plain)  # rows unknown: taken as the largest index + 1
    assert st["batches"] == 1 and st["tables"][1]["rows"] == int(b.indices[1].max()) + 1
    with_meta = tmp_path / "meta.npz"
    write_batch(
        with_meta,
        b,
        meta={
            "batch_size": 16,
            "num_batches": 1,
            "tables": [
                {"name": t.name, "rows": t.rows, "dim": t.dim, "dtype": t.dtype} for t in spec.table_list()
            ],
        },
    )
    y = write(tmp_path / "y.yaml", "trace: meta.npz\n")
    s2 = load_workload(y)
    assert [t.rows for t in s2.table_list()] == [500, 40, 7000] and s2.num_batches == 1
    (only,) = list(iter_batches(s2))
    assert only.equals(b)


def test_table_ids_select_tables_and_missing_tables_have_empty_bags(tmp_path):
    f = tmp_path / "sub.npz"
    # two blocks of 2 bags: table 2, then table 0
    np.savez(
        f,
        indices=np.array([5, 6, 7, 1], dtype=np.int64),
        offsets=np.array([0, 1, 3, 3, 4]),
        table_ids=np.array([2, 0], dtype=np.int32),
    )
    b = read_batch(f, num_tables=3)
    assert b.batch_size == 2
    assert b.indices[2].tolist() == [5, 6, 7] and b.offsets[2].tolist() == [0, 1, 3]
    assert b.indices[0].tolist() == [1] and b.offsets[0].tolist() == [0, 0, 1]
    assert b.indices[1].size == 0 and b.offsets[1].tolist() == [0, 0, 0]


def test_truncated_npz_raises_input_error_naming_the_file(tmp_path, spec_path, capsys):
    out = tmp_path / "trace"
    assert run_cli(["gen", str(spec_path), "--out", str(out)], capsys)[0] == 0
    victim = batch_file(out, 2)
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) // 2])
    batches = iter_npz(out)
    next(batches), next(batches)
    with pytest.raises(InputError) as info:
        next(batches)
    assert str(victim) in str(info.value) and "\n" not in str(info.value)
    rc, _, err = run_cli(["stats", str(out)], capsys)
    assert rc == 2 and err.count("\n") == 1 and str(victim) in err


def test_corrupt_inputs_raise_input_errors(tmp_path, spec_path, capsys):
    with pytest.raises(InputError, match="trace not found"):
        list(iter_npz(tmp_path / "nothing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no meta.json"):
        read_meta(tmp_path / "empty")
    out = tmp_path / "trace"
    assert run_cli(["gen", str(spec_path), "--out", str(out), "--quiet"], capsys)[0] == 0
    batch_file(out, 4).unlink()
    with pytest.raises(InputError, match=r"batch_00004\.npz: trace file not found"):
        list(iter_npz(out))
    (out / "meta.json").write_text("{not json")
    with pytest.raises(InputError, match=r"meta\.json: cannot read trace metadata"):
        read_meta(out)
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"PK\x03\x04 this is not a zip archive")
    with pytest.raises(InputError, match="garbage.npz: cannot read trace batch"):
        read_batch(garbage)
    bad = tmp_path / "bad.npz"
    np.savez(bad, indices=np.array([0, 99]), offsets=np.array([0, 1, 2]), table_ids=np.array([0]))
    with pytest.raises(
        InputError, match=r"bad\.npz: malformed trace batch: table 0: index 99 outside \[0, 50\)"
    ):
        read_batch(bad, rows=[50])
    np.savez(bad, indices=np.array([0, 1]), offsets=np.array([0, 2, 1]), table_ids=np.array([0]))
    with pytest.raises(InputError, match="offsets must start at 0, never decrease"):
        read_batch(bad)
    np.savez(bad, indices=np.array([0, 1]), offsets=np.array([0, 2]))
    with pytest.raises(InputError, match=r"bad\.npz: cannot read trace batch: .*table_ids"):
        read_batch(bad)


def test_write_trace_refuses_a_foreign_directory(tmp_path):
    d = tmp_path / "mine"
    d.mkdir()
    (d / "notes.txt").write_text("keep me")
    b = Batch(index=0, batch_size=1, indices=[np.array([0])], offsets=[np.array([0, 1])])
    with pytest.raises(InputError, match="not an archsim trace directory"):
        write_trace(d, [b], [])
    assert (d / "notes.txt").read_text() == "keep me"


def test_gen_overwrites_an_interrupted_or_older_trace(tmp_path, spec_path, capsys):
    out = tmp_path / "trace"
    out.mkdir()
    (out / "batch_00000.npz.tmp").write_bytes(b"half")
    (out / "batch_00007.npz").write_bytes(b"stale")
    assert run_cli(["gen", str(spec_path), "--out", str(out), "--quiet"], capsys)[0] == 0
    assert sorted(p.name for p in out.iterdir()) == [f"batch_0000{i}.npz" for i in range(5)] + ["meta.json"]


def test_stats_batches_option_generates_that_many(spec_path):
    st = trace_stats(spec_path, num_batches=7)
    assert st["batches"] == 7 and st["tables"][1]["bags"] == 7 * 16
    assert trace_stats(EXAMPLE, num_batches=9)["batches"] == 4  # a trace has what it has


def test_shipped_example_trace():
    files = list(EXAMPLE.iterdir())
    assert sum(f.stat().st_size for f in files) < 200 * 1024
    spec = load_workload("trace_example")
    batches = list(iter_batches(spec))
    assert len(batches) == 4 and all(b.batch_size == 64 and b.num_tables == 2 for b in batches)
    # it is what `archsim trace gen zipf_small --batches 4` writes
    source = load_workload("zipf_small", overrides=["num_batches=4"])
    assert all(x.equals(y) for x, y in zip(iter_batches(source), batches))


# ------------------------------------------------------------------------------------------------------------
# CLI
# ------------------------------------------------------------------------------------------------------------


def test_stats_cli_prints_a_table_and_writes_json(tmp_path, spec_path, capsys):
    js = tmp_path / "st.json"
    rc, out, err = run_cli(["stats", str(spec_path), "--json", str(js), "--batches", "3"], capsys)
    assert rc == 0 and err == ""
    for word in ("small", "lookups", "zipf s", "unique/batch", "top 1%", "a", "b", "c"):
        assert word in out
    st = json.loads(js.read_text())
    assert st["batches"] == 3 and [t["name"] for t in st["tables"]] == ["a", "b", "c"]
    assert st["tables"][1]["lookups"] == 3 * 16 * 3 and st["tables"][1]["pooling_mean"] == 3


def test_cli_parser_wiring():
    p = argparse.ArgumentParser(prog="archsim")
    sub = p.add_subparsers(dest="cmd", required=True)
    cli_trace.add_trace_parser(sub)
    args = p.parse_args(
        ["trace", "gen", "x.yaml", "--out", "d", "--batches", "3", "--seed", "4", "--set", "a=1"]
    )
    assert (args.cmd, args.trace_cmd, args.spec, args.out, args.batches, args.seed, args.overrides) == (
        "trace",
        "gen",
        "x.yaml",
        "d",
        3,
        4,
        ["a=1"],
    )
    assert args.trace_func is cli_trace.cmd_trace_gen
    args = p.parse_args(["trace", "stats", "w.yaml"])
    assert args.trace_func is cli_trace.cmd_trace_stats and args.format == "auto"


@pytest.mark.parametrize("case", ["bad_pooling", "missing_spec", "missing_trace", "bad_batches", "bad_set"])
def test_cli_bad_input_one_line_exit_2(tmp_path, capsys, case):
    spec = write(tmp_path / "w.yaml", SPEC.replace("pooling: 3", "pooling: 0"))
    argv = ["gen", str(spec), "--out", str(tmp_path / "out")]
    expect = f"{spec}:8: tables[1].pooling: must be >= 1, got 0"
    if case == "missing_spec":
        argv[1] = str(tmp_path / "nope.yaml")
        expect = f"{tmp_path / 'nope.yaml'}: file not found"
    elif case == "missing_trace":
        argv = ["stats", str(tmp_path / "gone.npz")]
        expect = f"{tmp_path / 'gone.npz'}: trace not found"
    elif case == "bad_batches":
        argv += ["--batches", "0"]
        expect = "--batches: must be 1 to 1,000,000,000, got 0"
    elif case == "bad_set":
        spec.write_text(SPEC)
        argv += ["--set", "tables[0].index.s=-1"]
        expect = "--set tables[0].index.s=-1: tables[0].index.s: must be > 0, got -1"
    rc, _, err = run_cli(argv, capsys)
    assert rc == 2
    assert err.strip().splitlines() == [f"archsim: error: {expect}"]
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------------------------------------
# Meta dlrm_datasets format
# ------------------------------------------------------------------------------------------------------------


def _dlrm_arrays(tables: int = 3, samples: int = 10, seed: int = 0):
    """(indices, offsets, lengths) as in dlrm_datasets: table-major bags, offsets of T*B+1, lengths [T, B]."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(0, 5, size=(tables, samples))
    offsets = np.concatenate(([0], np.cumsum(lengths.ravel())))
    indices = np.concatenate(
        [rng.integers(0, 100 * (t + 1), size=int(lengths[t].sum())) for t in range(tables)]
    )
    return indices, offsets, lengths


def test_dlrm_reader_with_torch(tmp_path):
    torch = pytest.importorskip("torch")
    from archsim.workload.dlrm_trace import dlrm_info, iter_dlrm

    indices, offsets, lengths = _dlrm_arrays()
    f = tmp_path / "fbgemm_t3_bs10.pt"
    torch.save((torch.from_numpy(indices), torch.from_numpy(offsets), torch.from_numpy(lengths)), f)
    gz = tmp_path / "fbgemm_t3_bs10.pt.gz"
    gz.write_bytes(gzip.compress(f.read_bytes()))
    info = dlrm_info(f)
    assert (info.num_tables, info.batch_size, info.num_lookups) == (3, 10, int(lengths.sum()))
    for path in (f, gz):
        batches = list(iter_dlrm(path, batch_size=4))
        assert [b.batch_size for b in batches] == [4, 4, 2]
        for t in range(3):
            got = np.concatenate([b.indices[t] for b in batches])
            want = indices[offsets[t * 10] : offsets[(t + 1) * 10]]
            assert np.array_equal(got, want)
            assert np.array_equal(np.concatenate([b.lengths(t) for b in batches]), lengths[t])
            assert all(b.offsets[t][0] == 0 and b.offsets[t].size == b.batch_size + 1 for b in batches)
    # through a workload YAML: a subset of the tables, rows: auto
    y = write(
        tmp_path / "d.yaml",
        """
        trace: {path: fbgemm_t3_bs10.pt.gz, tables: [2, 0]}
        batch_size: 5
        defaults: {dim: 16, rows: auto}
        tables:
          - {name: late}
          - {name: first, rows: 100}
        """,
    )
    spec = load_workload(y)
    assert spec.trace_format == "dlrm" and spec.num_batches == 2
    rows2 = int(indices[offsets[20] : offsets[30]].max()) + 1
    assert [(t.name, t.rows) for t in spec.table_list()] == [("late", rows2), ("first", 100)]
    b0, b1 = list(iter_batches(spec))
    assert np.array_equal(np.concatenate([b0.indices[0], b1.indices[0]]), indices[offsets[20] : offsets[30]])
    st = trace_stats(f)
    assert [t["lookups"] for t in st["tables"]] == [int(x) for x in lengths.sum(axis=1)]
    # rows too small for the indices
    bad = write(
        tmp_path / "bad.yaml",
        "trace: fbgemm_t3_bs10.pt\nbatch_size: 10\ntables:\n  - {count: 3, rows: 2, dim: 4}\n",
    )
    with pytest.raises(InputError, match=r"fbgemm_t3_bs10\.pt: table 0: index \d+ outside \[0, 2\)"):
        list(iter_batches(load_workload(bad)))
    # not a dlrm file
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(3)}, other)
    with pytest.raises(InputError, match="not a dlrm_datasets file"):
        dlrm_info(other)


def test_dlrm_without_torch_says_how_to_get_it(tmp_path, monkeypatch):
    from archsim.workload import dlrm_trace

    f = tmp_path / "fbgemm_t856_bs65536_0.pt"
    f.write_bytes(b"PK\x03\x04 not really")
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch -> ImportError
    monkeypatch.setattr(dlrm_trace, "_CACHE", {})
    with pytest.raises(InputError) as info:
        dlrm_trace.load_dlrm(f)
    assert str(info.value) == f"reading {f} needs PyTorch: pip install torch"
    y = write(tmp_path / "d.yaml", f"trace: {f.name}\ntables:\n  - {{rows: 10, dim: 4}}\n")
    with pytest.raises(InputError, match="needs PyTorch: pip install torch"):
        load_workload(y)
    with pytest.raises(ConfigError, match="trace not found"):
        load_workload(write(tmp_path / "m.yaml", "trace: missing.pt\ntables:\n  - {rows: 10, dim: 4}\n"))
