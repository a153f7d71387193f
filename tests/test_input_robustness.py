"""Issue #12, input robustness: hostile or corrupt input is exit 2 and one line on stderr naming the file (and
the line and key path where there is one), never an internal error, a hang or a partly written run directory.

YAML (control characters, encodings, nesting, size, alias expansion), memory traces (64-bit addresses, cycles,
the memory's capacity, corrupt gzip), archsim .npz and dlrm traces, override labels (``--set``,
``--workload-set``) and the wording of validation errors."""

from __future__ import annotations

import gzip
import json
import random
import shutil
import subprocess
import sys
import types
import zipfile
from pathlib import Path

import numpy as np
import pytest

from archsim.config import ConfigError, InputError, load_config, load_yaml, parse_override
from archsim.workload import trace as trace_mod
from archsim.workload.trace import MAX_TRACE_CYCLE, AddressSpace, _parse_line, iter_trace

ROOT = Path(__file__).resolve().parents[1]
CPU = ROOT / "hwconfigs" / "cpu_ddr4.yaml"
DDR4 = ROOT / "hwconfigs" / "dram_ddr4_dramsim3.yaml"  # 16 GiB: 2 ranks x 16 banks x 64K rows x 8 KiB
NPZ = ROOT / "workloads" / "traces" / "zipf_small_4b"
WL = ["--workload", "criteo_zipf", "--workload-set", "num_batches=1", "--workload-set", "batch_size=4"]


def _refused(tmp_path: Path, args: list[str], *words: str) -> str:
    """Run ``archsim run ARGS``: exit 2, exactly one stderr line holding ``words``, no traceback, nothing
    written; returns the line."""
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, "-m", "archsim.cli", "run", *map(str, args), "--quiet", "--out", str(out)],
                       capture_output=True, text=True, cwd=tmp_path, timeout=120)
    lines = r.stderr.splitlines()
    assert r.returncode == 2, r.stderr
    assert len(lines) == 1, r.stderr
    line = lines[0]
    assert line.startswith("archsim: error: ") and "Traceback" not in r.stderr and "internal error" not in line
    for w in words:
        assert w in line, line
    assert not out.exists()
    return line


def _line_of(text: str, marker: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if marker in line)


# ------------------------------------------------------------------------------------------------------------
# YAML: characters and encodings
# ------------------------------------------------------------------------------------------------------------


def test_nul_byte_in_yaml_names_file_and_line(tmp_path):
    text = CPU.read_text()
    cfg = tmp_path / "nul.yaml"
    cfg.write_bytes(text.encode() + b'extra: "a\x00b"\n')
    n = len(text.splitlines()) + 1
    _refused(tmp_path, [cfg, *WL], f"{cfg}:{n}: NUL character U+0000 at column 10 is not allowed in YAML")


def test_control_character_in_yaml_names_its_line(tmp_path):
    cfg = tmp_path / "bel.yaml"
    cfg.write_bytes(b"name: x\ndescription: ring\x07\n")
    _refused(tmp_path, [cfg, *WL], f"{cfg}:2: control character U+0007")


def test_latin1_bytes_name_the_line(tmp_path):
    cfg = tmp_path / "latin1.yaml"
    cfg.write_bytes(b"name: x\ndescription: caf\xe9\n")
    _refused(tmp_path, [cfg, *WL], f"{cfg}:2: not UTF-8 text: byte 0xe9 at column 17")


def test_utf16_is_refused(tmp_path):
    cfg = tmp_path / "utf16.yaml"
    cfg.write_bytes("name: x\n".encode("utf-16"))  # with its byte-order mark
    _refused(tmp_path, [cfg, *WL], f"{cfg}:1: not UTF-8 text")


def test_binary_garbage_is_refused(tmp_path):
    cfg = tmp_path / "garbage.yaml"
    cfg.write_bytes(bytes(range(256)) * 8)
    _refused(tmp_path, [cfg, *WL], f"{cfg}:", "a binary file")


def test_utf8_bom_is_accepted(tmp_path):
    plain = tmp_path / "plain.yaml"
    bom = tmp_path / "bom.yaml"
    plain.write_bytes(CPU.read_bytes())
    bom.write_bytes(b"\xef\xbb\xbf" + CPU.read_bytes())
    assert load_yaml(bom)[0] == load_yaml(plain)[0]
    assert load_yaml(bom)[1].get(("dram",))[1] == load_yaml(plain)[1].get(("dram",))[1]


# ------------------------------------------------------------------------------------------------------------
# YAML: nesting, size, aliases
# ------------------------------------------------------------------------------------------------------------


def test_deep_nesting_is_refused_with_the_limit(tmp_path):
    cfg = tmp_path / "deep.yaml"
    cfg.write_text("name: x\na: " + "[" * 5000 + "]" * 5000 + "\n")
    _refused(tmp_path, [cfg, *WL], f"{cfg}:2: nested deeper than 100 levels")


def test_nesting_limit_is_100_levels(tmp_path):
    """The top-level mapping is the first level."""
    ok = tmp_path / "ok.yaml"
    ok.write_text("a: " + "[" * 99 + "]" * 99 + "\n")
    load_yaml(ok)
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: " + "[" * 100 + "]" * 100 + "\n")
    with pytest.raises(ConfigError, match="nested deeper than 100 levels"):
        load_yaml(bad)


def test_deep_nesting_through_aliases_is_refused(tmp_path):
    cfg = tmp_path / "alias_deep.yaml"
    cfg.write_text("a: &a " + "[" * 60 + "]" * 60 + "\nb: &b " + "[" * 60 + "*a" + "]" * 60 + "\n")
    with pytest.raises(ConfigError, match=r":2: nested deeper than 100 levels through aliases"):
        load_yaml(cfg)


def test_deep_set_value_is_refused(tmp_path):
    value = "[" * 200 + "]" * 200
    _refused(tmp_path, [CPU, "--set", f"name={value}", *WL], f"--set name={value}: name: nested deeper than 100")


def test_billion_laughs_is_refused_quickly(tmp_path):
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, 12):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    cfg = tmp_path / "laughs.yaml"
    cfg.write_text("\n".join(lines) + "\n")
    _refused(tmp_path, [cfg, *WL], f"{cfg}:", "aliases expand the document to more than 1,000,000 values")


def test_ordinary_aliases_and_merge_keys_still_work(tmp_path):
    cfg = tmp_path / "alias.yaml"
    cfg.write_text("base: &b {x: 1, y: [1, 2]}\nc: *b\nd:\n  <<: *b\n  x: 2\n")
    data, _ = load_yaml(cfg)
    assert data["c"] == {"x": 1, "y": [1, 2]} and data["d"] == {"x": 2, "y": [1, 2]}


def test_huge_yaml_is_refused(tmp_path):
    cfg = tmp_path / "huge.yaml"
    with open(cfg, "w") as f:
        f.write("name: x\n")
        f.write(("# " + "x" * 1021 + "\n") * (16 * 1024 + 1))
    _refused(tmp_path, [cfg, *WL], f"{cfg}: larger than 16 MiB")


def test_line_break_in_a_set_value_stays_on_one_line(tmp_path):
    _refused(tmp_path, [CPU, "--set", "name=[\n", *WL], "error: --set name=[\\n: name: invalid value: ")


def test_control_character_in_a_set_value_is_refused():
    with pytest.raises(ConfigError, match=r"^--set name=a\\x07: name: invalid value: control character U\+0007"):
        parse_override("name=a\x07")


# ------------------------------------------------------------------------------------------------------------
# Memory traces
# ------------------------------------------------------------------------------------------------------------


def _trace(tmp_path: Path, text: str, name: str = "t.trace") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_address_beyond_64_bits(tmp_path):
    t = _trace(tmp_path, "0x40 R\n0xfffffffffffffffff R\n")
    _refused(tmp_path, [DDR4, "--trace", t], f"{t}:2: address 0xfffffffffffffffff does not fit in 64 bits")


@pytest.mark.parametrize("cycle", ["99999999999999999999999", str(MAX_TRACE_CYCLE + 1)])
def test_cycle_beyond_the_limit(tmp_path, cycle):
    t = _trace(tmp_path, f"0x40 READ 1\n0x40 READ {cycle}\n")
    _refused(tmp_path, [DDR4, "--trace", t], f"{t}:2: cycle {cycle} is beyond the limit of 2^40 = 1099511627776")


@pytest.mark.parametrize("window", [str(2**64), "-1"])
def test_window_past_the_engine_limit_is_refused(tmp_path, window):
    """Fuzz cases 0005/0006 (``--window 18446744073709551616``): 'OverflowError: int too big to convert' in the
    trace driver (the engine holds the window in 64 bits), an internal error. ``run --window`` and the API's
    ``run(window=...)`` now take 0 to archsim.api.MAX_WINDOW (2^32), as a sweep's ``base.window`` does."""
    from archsim.api import MAX_WINDOW, run

    t = _trace(tmp_path, "0x40 R\n0x80 W\n")
    line = _refused(tmp_path, [DDR4, "--trace", t, "--window", window])
    assert line == f"archsim: error: --window: must be 0 to 4,294,967,296, got {window}"
    assert MAX_WINDOW == 2**32
    for bad in (int(window), 2**32 + 1, 1.5, True, "8"):
        with pytest.raises(InputError, match=r"^window: must be 0 to 4,294,967,296, got "):
            run(DDR4, trace=t, window=bad)
    assert run(DDR4, trace=t, window=2**32).summary["sim_time_ns"] > 0  # the bound itself runs


def test_address_beyond_the_dram_capacity(tmp_path):
    t = _trace(tmp_path, "0x40 R\n# comment\n0x7ffffffffff R\n")
    _refused(tmp_path, [DDR4, "--trace", t],
             f"{t}:3: address 0x7ffffffffff is beyond the memory's capacity of 17179869184 bytes (16 GiB)")


def test_address_beyond_a_memory_map(tmp_path):
    t = _trace(tmp_path, "0x40 R\n0x4c00000040 R\n0x7fffffffffffff W\n")  # local DRAM, an expander, nothing
    _refused(tmp_path, ["cxl_pool", "--trace", t],
             f"{t}:3: address 0x7fffffffffffff is beyond the memory's capacity of 343597383680 bytes")


def test_capacity_bound_is_exact(tmp_path):
    space = AddressSpace.of_capacity(1 << 34)
    t = _trace(tmp_path, f"0x{(1 << 34) - 64:x} R\n{(1 << 34) - 1} W\n")
    assert list(iter_trace(t, space)) == [((1 << 34) - 64, False, -1), ((1 << 34) - 1, True, -1)]
    t = _trace(tmp_path, f"0x40 R\n0x{1 << 34:x} R\n")
    with pytest.raises(InputError, match=rf"{t}:2: address 0x400000000 is beyond the memory's capacity"):
        list(iter_trace(t, space))


def test_address_in_a_hole_of_the_memory_map(tmp_path):
    space = AddressSpace.of_windows([(0, 0x1000), (0x4000, 0x5000)], "memory")
    t = _trace(tmp_path, "0x40 R\n0x4040 R\n0x2000 R\n")
    with pytest.raises(InputError) as info:
        list(iter_trace(t, space))
    assert str(info.value) == (f"{t}:3: address 0x2000 is outside every window of the memory map memory "
                               "(0x0-0xfff, 0x4000-0x4fff)")


@pytest.mark.parametrize("chunk", [7, 1 << 18])
def test_fast_parser_bounds_match_the_reference(tmp_path, monkeypatch, chunk):
    """The compiled parser stops at out-of-bounds lines; the reference (with the same space) decides."""
    monkeypatch.setattr(trace_mod, "_CHUNK", chunk)
    rng = random.Random(chunk)
    spaces = [AddressSpace.of_capacity(1 << 20), AddressSpace.of_windows([(0, 1 << 16), (1 << 18, 1 << 20)]),
              AddressSpace.of_windows([(1 << 10, 1 << 20)])]
    for space in spaces:
        lines = []
        for _ in range(2000):
            a = rng.randrange(1 << 20)
            lines.append(rng.choice([f"0x{a:x} R", f"{a} WRITE {rng.randrange(1 << 30)}", f"LD 0x{a:x}", "# c"]))
        p = tmp_path / "ok.trace"
        inside = [line for line in lines if line.startswith("#") or space.contains(_parse_line(line, "p", 1)[0])]
        p.write_text("\n".join(inside) + "\n")
        ref = [r for i, line in enumerate(inside, 1) if (r := _parse_line(line, str(p), i, space)) is not None]
        assert list(iter_trace(p, space)) == ref
        bads = ["0x100000 R", f"0x400 READ {MAX_TRACE_CYCLE + 1}", f"0x{1 << 64:x} R", f"{(1 << 64) - 1} W"]
        if len(space.windows) > 1:
            bads.append("0x10000 W")  # in the hole
        if space.windows[0][0] > 0:
            bads.append("LD 0x40")  # below the first window
        for bad in bads:
            q = tmp_path / "bad.trace"
            q.write_text("\n".join(inside[:500] + [bad] + inside[500:]) + "\n")
            with pytest.raises(InputError) as fast:
                list(iter_trace(q, space))
            with pytest.raises(InputError) as slow:
                _parse_line(bad, str(q), 501, space)
            assert str(fast.value) == str(slow.value)


def test_corrupt_gzip_trace(tmp_path):
    t = tmp_path / "t.trace.gz"
    t.write_bytes(gzip.compress(b"0x40 R\n" * 1000)[:20] + bytes(range(200)))
    _refused(tmp_path, [DDR4, "--trace", t], f"{t}: cannot read trace: ")


def test_truncated_gzip_trace(tmp_path):
    t = tmp_path / "t.trace.gz"
    t.write_bytes(gzip.compress(b"0x40 R\n" * 1000)[:-12])
    _refused(tmp_path, [DDR4, "--trace", t], f"{t}: cannot read trace: ")


def test_binary_trace_without_line_breaks(tmp_path):
    t = tmp_path / "t.trace"
    t.write_bytes(b"\x01\xff" * (1 << 20))
    _refused(tmp_path, [DDR4, "--trace", t], f"{t}:1: a line longer than 1048576 characters")


# ------------------------------------------------------------------------------------------------------------
# archsim .npz traces
# ------------------------------------------------------------------------------------------------------------


def _npz_workload(tmp_path: Path, mutate) -> tuple[Path, Path]:
    tr = tmp_path / "tr"
    shutil.copytree(NPZ, tr)
    mutate(tr)
    wl = tmp_path / "wl.yaml"
    wl.write_text("name: x\ntrace: tr\n")
    return wl, tr


def _rewrite(file: Path, **arrays) -> None:
    z = dict(np.load(file))
    z.update(arrays)
    np.savez_compressed(file, **z)


def _meta(tr: Path, fn) -> None:
    m = json.loads((tr / "meta.json").read_text())
    fn(m)
    (tr / "meta.json").write_text(json.dumps(m))


_B0 = "batch_00000.npz"
_IDX = np.load(NPZ / _B0)["indices"]


def _zip_of_non_npy(file: Path) -> None:
    """A zip whose members (the npz names) are not .npy arrays: np.load returns their raw bytes."""
    with zipfile.ZipFile(file, "w") as z:
        for name in ("indices.npy", "offsets.npy", "table_ids.npy"):
            z.writestr(name, b"garbage")


def _patch_central_dir(file: Path, offset: int, value: bytes) -> None:
    """Overwrite bytes at ``offset`` in every central-directory entry of a zip (flags: 8, method: 10)."""
    b = bytearray(file.read_bytes())
    i = b.find(b"PK\x01\x02")
    while i >= 0:
        b[i + offset : i + offset + len(value)] = value
        i = b.find(b"PK\x01\x02", i + 4)
    file.write_bytes(bytes(b))


@pytest.mark.parametrize("mutate, where, words", [
    (lambda tr: (tr / _B0).write_bytes(bytes(range(256))), _B0, "not an .npz archive"),
    (lambda tr: (tr / _B0).write_bytes((tr / _B0).read_bytes()[:300]), _B0, "cannot read trace batch"),
    (lambda tr: (tr / _B0).write_bytes((lambda b: b[:200] + bytes(100) + b[300:])((tr / _B0).read_bytes())),
     _B0, "cannot read trace batch"),
    (lambda tr: _rewrite(tr / _B0, indices=_IDX.astype(np.float64)), _B0, "'indices' must be a 1-D integer array"),
    (lambda tr: _rewrite(tr / _B0, indices=-_IDX - 1), _B0, "table 0: index -"),
    (lambda tr: _rewrite(tr / _B0, indices=_IDX + 10**6), _B0, "outside [0, 100000)"),
    (lambda tr: _rewrite(tr / _B0, indices=_IDX.astype(np.uint64) + np.uint64(2**63)), _B0,
     "more than a 64-bit signed integer holds"),
    (lambda tr: _rewrite(tr / _B0, table_ids=np.array([0, 5], dtype=np.int32)), _B0, "table_ids must be distinct"),
    (lambda tr: _meta(tr, lambda m: m.update(batch_size=32)), _B0, "64 bags per table, but the trace's batch_size"),
    (lambda tr: _meta(tr, lambda m: m["tables"][0].update(dim="abc")), "meta.json", "tables[0].dim must be"),
    (lambda tr: _meta(tr, lambda m: m["tables"][0].update(dtype="fp7")), "meta.json", "tables[0].dtype must be"),
    (lambda tr: _meta(tr, lambda m: m["tables"][0].update(rows=True)), "meta.json", "tables[0].rows must be"),
    (lambda tr: _meta(tr, lambda m: m["tables"][1].update(name="emb0")), "meta.json", "is the name of tables[0]"),
    (lambda tr: (tr / "meta.json").write_text("[" * 100000 + "]" * 100000), "meta.json", "JSON nested too deeply"),
    (lambda tr: (tr / "batch_00002.npz").unlink(), "batch_00002.npz", "meta.json lists 4 batches"),
    (lambda tr: _zip_of_non_npy(tr / _B0), _B0, "is not a .npy array"),
    (lambda tr: _patch_central_dir(tr / _B0, 8, b"\x01"), _B0, "cannot read trace batch"),
    (lambda tr: _patch_central_dir(tr / _B0, 10, b"\x63\x00"), _B0, "cannot read trace batch"),
], ids=["garbage", "truncated", "corrupt-zip", "float-indices", "negative-index", "index-beyond-rows",
        "uint64-index", "table-id", "batch-size", "meta-dim", "meta-dtype", "meta-rows-bool", "meta-dup-name",
        "meta-deep", "missing-batch", "non-npy-members", "zip-encrypted-flag", "zip-unknown-method"])
def test_corrupt_npz_trace(tmp_path, mutate, where, words):
    wl, tr = _npz_workload(tmp_path, mutate)
    _refused(tmp_path, [CPU, "--workload", wl], f"{tr / where}: ", words)


def test_single_npz_of_non_npy_members(tmp_path):
    """A single-batch .npz (read_meta's path) whose members are not .npy arrays."""
    _zip_of_non_npy(tmp_path / "b.npz")
    wl = tmp_path / "wl.yaml"
    wl.write_text("name: x\ntrace: b.npz\n")
    _refused(tmp_path, [CPU, "--workload", wl], f"{tmp_path / 'b.npz'}: cannot read trace batch: ",
             "is not a .npy array")


def test_nul_byte_in_the_trace_path_names_the_key(tmp_path):
    wl = tmp_path / "wl.yaml"
    wl.write_text('name: x\ntrace: "tr\\0x"\n')
    _refused(tmp_path, [CPU, "--workload", wl], f"{wl}:2: trace.path: ", "NUL byte")


# ------------------------------------------------------------------------------------------------------------
# dlrm_datasets traces
# ------------------------------------------------------------------------------------------------------------


def test_corrupt_dlrm_file(tmp_path):
    f = tmp_path / "fbgemm_t2_bs4_0.pt"
    f.write_bytes(bytes(range(256)))
    wl = tmp_path / "wl.yaml"
    wl.write_text(f"name: x\ntrace: {f.name}\ntables:\n  - {{rows: 10, dim: 4, count: 2}}\n")
    _refused(tmp_path, [CPU, "--workload", wl], str(f))  # "cannot read dlrm trace", or "needs PyTorch"


class _FakeTensor:
    def __init__(self, a):
        self.a = np.asarray(a)
        self.shape = self.a.shape

    def dim(self):
        return self.a.ndim

    def numpy(self):
        return self.a


def _fake_torch(monkeypatch, payload):
    from archsim.workload import dlrm_trace

    torch = types.SimpleNamespace(Tensor=_FakeTensor, load=lambda *a, **k: payload)
    monkeypatch.setattr(dlrm_trace, "_import_torch", lambda file: torch)
    monkeypatch.setattr(dlrm_trace, "_CACHE", {})
    return dlrm_trace


def test_dlrm_float_indices_are_refused(tmp_path, monkeypatch):
    dlrm = _fake_torch(monkeypatch, (_FakeTensor([0.5, 1.5]), _FakeTensor([0, 1, 2]), _FakeTensor([[1, 1]])))
    f = tmp_path / "t.pt"
    f.write_bytes(b"x")
    with pytest.raises(InputError, match=rf"^{f}: not a dlrm_datasets file: indices must hold integers"):
        dlrm.dlrm_info(f)


def test_dlrm_decreasing_offsets_and_negative_indices_are_refused(tmp_path, monkeypatch):
    f = tmp_path / "t.pt"
    f.write_bytes(b"x")
    dlrm = _fake_torch(monkeypatch, (_FakeTensor([3, 1, 2, 0]), _FakeTensor([0, 3, 1, 4]),
                                     _FakeTensor([[3, 1, 2]])))
    with pytest.raises(InputError, match=rf"^{f}: table 0: offsets of samples 0..2 decrease"):
        list(dlrm.iter_dlrm(f, batch_size=3))
    dlrm = _fake_torch(monkeypatch, (_FakeTensor([3, -1, 2, 0]), _FakeTensor([0, 1, 2, 4]),
                                     _FakeTensor([[1, 1, 2]])))
    with pytest.raises(InputError, match=rf"^{f}: table 0: index -1 is negative"):
        dlrm.dlrm_info(f).rows([0])


# ------------------------------------------------------------------------------------------------------------
# Overrides: which option, which value
# ------------------------------------------------------------------------------------------------------------


def test_workload_set_errors_name_workload_set(tmp_path):
    line = _refused(tmp_path, [CPU, "--workload", "criteo_zipf", "--workload-set", "defaults.dim=abc"])
    assert line.startswith("archsim: error: --workload-set defaults.dim=abc: defaults.dim: "), line


def test_workload_set_trace_path_is_relative_to_the_working_directory(tmp_path, monkeypatch):
    """A path given on the command line is the user's (relative to the working directory), not the file's."""
    from archsim.workload.spec import load_workload

    wl = tmp_path / "wl.yaml"
    wl.write_text("name: x\n")
    monkeypatch.chdir(ROOT)
    loaded = load_config(wl, ["trace=workloads/traces/zipf_small_4b"], kind="workload",
                         override_label="--workload-set")
    assert load_workload(loaded).trace_file == NPZ
    with pytest.raises(ConfigError, match=r"^--workload-set trace=nowhere: trace\.path: trace not found"):
        load_workload(load_config(wl, ["trace=nowhere"], kind="workload", override_label="--workload-set"))


def test_a_mapping_check_failing_on_a_set_value_blames_the_set(tmp_path):
    _refused(tmp_path, [CPU, "--set", "host.llc.ways=7", *WL],
             "error: --set host.llc.ways=7: host.llc: size_kib 61440 is not a whole number of 7-way sets")


def test_tables_too_big_for_the_memory_blames_the_workload_set(tmp_path):
    _refused(tmp_path, [CPU, *WL, "--workload-set", "defaults.rows=10000000000"],
             "error: --workload-set defaults.rows=10000000000: tables: the tables need")


# ------------------------------------------------------------------------------------------------------------
# Validation messages: plain words, the value once, the line of a mapping that lacks a key
# ------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("opt, value, words", [
    ("--set", "host.llc=[1, 2]", "host.llc: must be a mapping (KEY: value), got a list"),
    ("--set", "dram=null", "dram: must be a mapping (KEY: value), got None"),
    ("--set", "dram.org.ranks=[2]", "dram.org.ranks: input should be a valid integer, got a list"),
    ("--set", "dram.org.channels=3", "dram.org.channels: must be a power of two, got 3"),
    ("--workload-set", "tables=[1]", "tables[0]: must be a mapping (KEY: value), got 1"),
    ("--workload-set", "tables={}", "tables: must be a list, got a mapping"),
    ("--workload-set", "batch_size=''", "batch_size: input should be a valid integer, got ''"),
])
def test_validation_messages_in_plain_words(tmp_path, opt, value, words):
    line = _refused(tmp_path, [CPU, *WL, opt, value], f"{opt} {value}: {words}")
    assert line.count("got") == 1 and "instance of" not in line and "_type" not in line, line


def test_missing_key_names_the_line_of_its_mapping(tmp_path):
    text = DDR4.read_text()
    cfg = tmp_path / "noext.yaml"
    cfg.write_text("".join(line for line in text.splitlines(True) if "extends:" not in line))
    _refused(tmp_path, [cfg, *WL], f"{cfg}:{_line_of(text, 'dram:')}: dram.standard: required key missing")


def test_missing_top_level_key_names_the_first_line(tmp_path):
    cfg = tmp_path / "nodram.yaml"
    cfg.write_text("# a comment\nname: x\n")
    _refused(tmp_path, [cfg, *WL], f"{cfg}:2: dram: required key missing")


def test_missing_rows_of_a_table_names_the_table(tmp_path):
    wl = tmp_path / "wl.yaml"
    wl.write_text("name: w\nbatch_size: 4\nnum_batches: 1\ntables:\n  - name: a\n    dim: 4\n")
    _refused(tmp_path, [CPU, "--workload", wl], f"{wl}:5: tables[0]: rows is required")


@pytest.mark.parametrize("hw", sorted(p.stem for p in (ROOT / "hwconfigs").glob("*.yaml")))
def test_a_memory_trace_runs_on_every_shipped_hwconfig(tmp_path, hw):
    """A trace drives any hwconfig's memory (NMP units in expanders stay idle: pifs_recross used to fail with an
    AttributeError, its units wanted a table map); one that needs a workload (a tier manager) says so in one
    line, exit 2."""
    trace = tmp_path / "t.trace"
    trace.write_text("0x40 R\n0x1000 W\n0x2000 R\n")
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, "-m", "archsim.cli", "run", hw, "--trace", str(trace), "--quiet",
                        "--out", str(out)], capture_output=True, text=True, timeout=120)
    if r.returncode == 2:
        assert len(r.stderr.splitlines()) == 1 and "workload" in r.stderr, r.stderr
        assert not out.exists()
    else:
        assert r.returncode == 0, r.stderr
        assert "3" in (out / "summary.csv").read_text()
