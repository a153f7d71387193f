"""Workload specs: shipped workloads, defaults, count expansion, extends, overrides, and file:line errors."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from archsim.config import ConfigError, InputError
from archsim.workload.spec import WORKLOADS_DIR, TableInfo, WorkloadSpec, load_workload

BASE = """\
name: w
batch_size: 4
num_batches: 2
tables:
  - name: a
    rows: 1000
    pooling: 3
    dim: 8
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def test_shipped_workloads_load_by_name_and_path():
    spec = load_workload("criteo_zipf")
    assert isinstance(spec, WorkloadSpec)
    assert (spec.name, spec.seed, spec.batch_size, spec.num_batches) == ("criteo_zipf", 0, 256, 100)
    tables = spec.table_list()
    assert [t.name for t in tables] == [f"emb{i}" for i in range(8)]
    for t in tables:
        assert isinstance(t, TableInfo)
        assert (t.rows, t.dim, t.dtype, t.row_bytes) == (1_000_000, 64, "fp32", 256)
        assert t.pooling.dist == "fixed" and t.pooling.value == 80
        assert t.index.dist == "zipf" and t.index.s == 1.05
    u = load_workload(WORKLOADS_DIR / "uniform_small.yaml").table_list()
    assert len(u) == 1 and (u[0].rows, u[0].dim, u[0].row_bytes, u[0].index.dist) == (
        1 << 24,
        16,
        64,
        "uniform",
    )
    assert load_workload("zipf_small").table_list()[1].pooling.range == [1, 16]
    ex = load_workload("trace_example")
    assert ex.trace_format == "archsim" and ex.batch_size == 64 and ex.num_batches == 4
    assert [t.name for t in ex.table_list()] == ["emb0", "emb1"]


def test_defaults_builtins_and_per_table_override(tmp_path):
    f = write(
        tmp_path / "w.yaml",
        """
        batch_size: 2
        defaults:
          rows: 500
          dim: 16
          dtype: fp16
          pooling: {dist: normal, mean: 10, std: 2}
          index: {dist: zipf, s: 0.9}
        tables:
          - {name: x}
          - {name: y, rows: 7, dtype: int8, pooling: [2, 5], index: uniform}
          - {name: z, dim: 3, dtype: BF16, index: {dist: hotset, hot_fraction: 0.1, hot_share: 0.8}}
        """,
    )
    spec = load_workload(f)
    assert spec.name == "w" and spec.num_batches == 100 and spec.seed == 0
    x, y, z = spec.table_list()
    assert (x.rows, x.dim, x.dtype, x.row_bytes, x.pooling.dist, x.index.s) == (
        500,
        16,
        "fp16",
        32,
        "normal",
        0.9,
    )
    assert (y.rows, y.dtype, y.row_bytes, y.pooling.range, y.index.dist) == (7, "int8", 16, [2, 5], "uniform")
    assert (z.dtype, z.row_bytes, z.index.dist, z.index.hot_share) == ("bf16", 6, "hotset", 0.8)
    g = load_workload(write(tmp_path / "g.yaml", "batch_size: 1\ntables:\n  - {rows: 9, dim: 2}\n"))
    (t,) = g.table_list()
    assert (t.name, t.dtype, t.pooling.dist, t.pooling.value, t.index.dist) == (
        "table0",
        "fp32",
        "fixed",
        1,
        "uniform",
    )


def test_count_expansion_names(tmp_path):
    f = write(
        tmp_path / "w.yaml",
        """
        batch_size: 2
        defaults: {rows: 10, dim: 4}
        tables:
          - {name: emb, count: 3}
          - {count: 2}
          - {name: last}
        """,
    )
    assert [t.name for t in load_workload(f).table_list()] == [
        "emb0",
        "emb1",
        "emb2",
        "table3",
        "table4",
        "last",
    ]


@pytest.mark.parametrize(
    "edit, line, path, message",
    [
        (("pooling: 3", "pooling: 0"), 7, "tables[0].pooling", "must be >= 1, got 0"),
        (("pooling: 3", "pooling: -2"), 7, "tables[0].pooling", "must be >= 1, got -2"),
        (("rows: 1000", "rows: 0"), 6, "tables[0].rows", "must be >= 1, got 0"),
        (("rows: 1000", "rows: auto"), 6, "tables[0].rows", "'auto' needs a trace"),
        (("dim: 8", "dim: -1"), 8, "tables[0].dim", "must be >= 1, got -1"),
        (
            ("dim: 8", "dim: 8\n    dtype: fp64"),
            9,
            "tables[0].dtype",
            "unknown dtype (known: fp32, fp16, bf16, int8)",
        ),
        (("dim: 8", "dim: 8\n    index: {dist: zipf, s: 0}"), 9, "tables[0].index.s", "must be > 0, got 0"),
        (("dim: 8", "dim: 8\n    index: {dist: zipf}"), 9, "tables[0].index", "zipf needs its exponent s"),
        (
            ("dim: 8", "dim: 8\n    index: {dist: uniform, s: 1.1}"),
            9,
            "tables[0].index",
            "'s' does not apply",
        ),
        (
            ("dim: 8", "dim: 8\n    index: {dist: hotset, hot_fraction: 1.5, hot_share: 0.5}"),
            9,
            "tables[0].index.hot_fraction",
            "must be in (0, 1), got 1.5",
        ),
        (
            ("dim: 8", "dim: 8\n    index: {dist: hotset, hot_fraction: 0.1, hot_share: 0}"),
            9,
            "tables[0].index.hot_share",
            "must be in (0, 1), got 0",
        ),
        (("dim: 8", "dim: 8\n    index: {dist: pareto}"), 9, "tables[0].index.dist", "input should be"),
        (
            ("pooling: 3", "pooling: {dist: uniform, range: [0, 4]}"),
            7,
            "tables[0].pooling.range",
            "1 <= lo <= hi",
        ),
        (
            ("pooling: 3", "pooling: {dist: normal, mean: 5}"),
            7,
            "tables[0].pooling",
            "normal pooling needs std",
        ),
        (
            ("pooling: 3", "pooling: {dist: empirical, values: [1, 2], weights: [1]}"),
            7,
            "tables[0].pooling",
            "same length",
        ),
        (
            ("pooling: 3", "pooling: {dist: empirical, values: [0, 2], weights: [1, 1]}"),
            7,
            "tables[0].pooling.values[0]",
            "must be >= 1, got 0",
        ),
        (("dim: 8", "dim: 8\n    colour: red"), 9, "tables[0].colour", "unknown key"),
        (("num_batches: 2", "num_batches: 0"), 3, "num_batches", "must be >= 1, got 0"),
        (("    rows: 1000\n", ""), 5, "tables[0]", "rows is required"),
    ],
)
def test_validation_errors_name_file_line_and_key_path(tmp_path, edit, line, path, message):
    text = BASE.replace(*edit)
    assert text != BASE
    f = tmp_path / "x.yaml"
    f.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_workload(f)
    err = info.value
    assert (err.file, err.line, err.path) == (str(f), line, path), str(err)
    assert message in err.message
    assert str(err).startswith(f"{f}:{line}: {path}: ")
    assert "\n" not in str(err)


def test_errors_in_defaults_and_cross_table_checks(tmp_path):
    f = write(
        tmp_path / "d.yaml",
        """
        batch_size: 2
        defaults:
          rows: 10
          pooling: 0
        tables:
          - {dim: 4}
        """,
    )
    with pytest.raises(ConfigError, match=r"d\.yaml:4: defaults\.pooling: must be >= 1, got 0$"):
        load_workload(f)
    f = write(
        tmp_path / "dup.yaml",
        """
        batch_size: 2
        defaults: {rows: 10, dim: 4}
        tables:
          - {name: a}
          - {name: a}
        """,
    )
    with pytest.raises(ConfigError, match=r"dup\.yaml:5: tables\[1\]\.name: duplicate table name 'a'"):
        load_workload(f)
    f = write(tmp_path / "nb.yaml", "tables:\n  - {rows: 10, dim: 4}\n")
    with pytest.raises(ConfigError, match=r"nb\.yaml:\d+: batch_size: is required"):
        load_workload(f)
    f = write(
        tmp_path / "hs.yaml",
        """
        batch_size: 2
        tables:
          - {rows: 1, dim: 4, index: {dist: hotset, hot_fraction: 0.5, hot_share: 0.5}}
        """,
    )
    with pytest.raises(
        ConfigError, match=r"hs\.yaml:3: tables\[0\]\.rows: a hotset table needs at least 2 rows, got 1"
    ):
        load_workload(f)


def test_extends_and_overrides(tmp_path):
    write(
        tmp_path / "base.yaml",
        """
        seed: 5
        batch_size: 8
        defaults:
          rows: 100
          dim: 4
          pooling: 0
        tables:
          - {name: t, count: 2}
        """,
    )
    child = write(
        tmp_path / "sub" / "child.yaml",
        """
        extends: ../base.yaml
        batch_size: 16
        defaults:
          pooling: 2
        """,
    )
    spec = load_workload(child)
    assert (spec.name, spec.seed, spec.batch_size) == ("child", 5, 16)
    assert [(t.name, t.rows, t.pooling.value) for t in spec.table_list()] == [("t0", 100, 2), ("t1", 100, 2)]
    spec = load_workload(child, overrides=["tables[0].count=3", "defaults.index={dist: zipf, s: 1.2}"])
    assert len(spec.table_list()) == 3 and spec.table_list()[2].index.s == 1.2
    # an error in a value inherited from the parent points into the parent
    bad = write(tmp_path / "bad.yaml", "extends: base.yaml\n")
    with pytest.raises(ConfigError, match=r"base\.yaml:6: defaults\.pooling: must be >= 1, got 0"):
        load_workload(bad)
    # an error in an override names the override
    with pytest.raises(ConfigError) as info:
        load_workload(child, overrides=["defaults.pooling=0"])
    assert str(info.value) == "--set defaults.pooling=0: defaults.pooling: must be >= 1, got 0"
    # a shipped workload can be extended by name
    ext = write(tmp_path / "ext.yaml", "extends: criteo_zipf\nbatch_size: 32\n")
    spec = load_workload(ext)
    assert spec.batch_size == 32 and len(spec.table_list()) == 8


def test_unknown_workload_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="workload 'no_such_workload' not found: not a file, not a shipped workload"):
        load_workload("no_such_workload")
    with pytest.raises(ConfigError, match="file not found"):
        load_workload(tmp_path / "nope.yaml")


def test_trace_paths_are_relative_to_the_yaml_file(tmp_path):
    src = WORKLOADS_DIR / "traces" / "zipf_small_4b"
    f = write(tmp_path / "deep" / "t.yaml", f"trace: {src}\n")
    assert load_workload(f).trace_file == src.resolve()
    f = write(tmp_path / "deep" / "missing.yaml", "trace:\n  path: ../gone\n")
    with pytest.raises(ConfigError) as info:
        load_workload(f)
    assert info.value.line == 2 and info.value.path == "trace.path"
    assert str((tmp_path / "gone").resolve()) in str(info.value)
    assert isinstance(info.value, InputError)
    # tables stated in the YAML must match the trace, batch sizes too
    f = write(tmp_path / "n.yaml", f"trace: {src}\ntables:\n  - {{rows: 100000, dim: 8}}\n")
    with pytest.raises(ConfigError, match="has 2 tables, the spec 1"):
        load_workload(f)
    f = write(tmp_path / "b.yaml", f"trace: {src}\nbatch_size: 3\n")
    with pytest.raises(ConfigError, match="b.yaml:2: batch_size: .*re-batching"):
        load_workload(f)
    f = write(tmp_path / "nb.yaml", f"trace: {src}\nnum_batches: 9\n")
    with pytest.raises(ConfigError, match="holds 4 batches, got 9"):
        load_workload(f)
    f = write(
        tmp_path / "ok.yaml",
        f"trace: {src}\nnum_batches: 2\ndefaults: {{dim: 128}}\n"
        "tables:\n  - {name: big, count: 2, dtype: fp16}\n",
    )
    spec = load_workload(f)
    assert spec.num_batches == 2
    assert [(t.name, t.rows, t.dim, t.dtype) for t in spec.table_list()] == [
        ("big0", 100_000, 128, "fp16"),
        ("big1", 100_000, 128, "fp16"),
    ]
