"""Hypothesis strategies: one :class:`~.case.Case` per draw, for each input kind (:data:`STRATEGIES`).

Every case starts from a seed of :mod:`.corpus` and applies one or a few edits of :mod:`.mutations` to its
content (the YAML tree, the text, the bytes) and/or its command line (``--set`` / ``--workload-set``,
arguments). Runs are kept small: a hwconfig or workload run is 1 batch of 2 bags (``--workload-set``; a
workload is also shrunk to that before it is mutated, so ``trace stats`` / ``trace gen`` see its mutated sizes),
a sweep's axes are cut to 2 points before it is mutated (and a mutant with more than 4 points is only dry-run),
a memory trace holds 32 requests, an embedding trace 2 or 4 batches.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import numpy as np
from hypothesis import strategies as st

from . import corpus
from . import mutations as M
from .case import Case

SMALL_RUN = ["--workload-set", "num_batches=1", "--workload-set", "batch_size=2"]
# --max-wall: a mutant that grows the run (num_batches = 2^31 after the shrinking overrides) is a valid long run,
# no hang; exit 4 (stopped) is an accepted outcome of run
RUN_OUT = ["--out", "out/run", "--quiet", "--max-wall", "20"]
RUN_RESULT = "out/run/summary.csv"
DEEP = "__fuzz_deep__"


def _values_for(original: Any) -> st.SearchStrategy:
    return st.one_of(st.sampled_from(M.NUMBERS), st.sampled_from(M.WRONG_TYPES),
                     st.sampled_from(M.derived(original)), st.integers(min_value=-(2**70), max_value=2**70),
                     st.floats(), st.text(max_size=12))


def _dump(data: Any, deep: str | None = None) -> bytes:
    text = M.dump(data)
    if deep is not None:  # deep nesting is spliced in as flow text (the YAML dumper itself would recurse)
        text = text.replace(DEEP, deep)
    return text.encode("utf-8")


# ------------------------------------------------------------------------------------------------------------
# Edits of a YAML tree, of text, of extends:, of --set
# ------------------------------------------------------------------------------------------------------------


@st.composite
def tree_edit(draw, data: Any) -> tuple[Any, str, str | None]:
    """One edit of a parsed YAML tree: (new tree, description, deep-nesting text or None)."""
    paths = M.tree_paths(data)
    op = draw(st.sampled_from(["set"] * 8 + ["delete"] * 2 + ["rename", "unknown", "unknown", "deep", "root"]))
    if op == "root" or not paths:
        value = draw(st.sampled_from(M.WRONG_TYPES + M.NUMBERS))
        return value, f"whole document replaced by {value!r}", None
    path = draw(st.sampled_from(paths))
    where = M.dotted(path)
    if op == "set":
        value = draw(_values_for(M.get(data, path)))
        return M.set_value(data, path, value), f"{where} = {value!r}", None
    if op == "delete":
        return M.delete(data, path), f"{where} deleted", None
    if op == "rename":
        new = draw(st.sampled_from(M.UNKNOWN_KEYS + [str(path[-1]).upper(), str(path[-1]) + "s"]))
        return M.rename(data, path, new), f"{where} renamed to {new!r}", None
    if op == "unknown":
        parent = draw(st.sampled_from(M.containers(data)))
        key = draw(st.sampled_from(M.UNKNOWN_KEYS))
        value = draw(st.sampled_from(M.WRONG_TYPES + M.NUMBERS))
        return M.add_key(data, parent, key, value), f"unknown key {M.dotted(parent + (key,))!r} = {value!r}", None
    depth = draw(st.sampled_from([30, 100, 300, 1000, 3000]))
    bracket = draw(st.sampled_from(["[]", "{}"]))
    deep = (bracket[0] + ("a: " if bracket == "{}" else "")) * depth + "1" + bracket[1] * depth
    return M.set_value(data, path, DEEP), f"{where} = {depth} nested {bracket}", deep


@st.composite
def text_edit(draw, data: bytes, text: str) -> tuple[bytes, str]:
    """One edit of a file's bytes: truncation, spliced snippets, tabs, NUL, garbage, encodings..."""
    op = draw(st.sampled_from(["truncate", "splice", "splice", "tabify", "reindent", "drop_line", "dup_line",
                               "garbage", "nul", "encoding", "crlf", "whole", "flip"]))
    n = max(len(data), 1)
    if op == "truncate":
        pos = draw(st.integers(0, n))
        return data[:pos], f"truncated to {pos} of {len(data)} bytes"
    if op == "splice":
        snippet = draw(st.sampled_from(M.SNIPPETS))
        pos = draw(st.integers(0, n))
        return M.splice(data, pos, snippet.encode("utf-8", "surrogatepass")), f"{snippet!r} inserted at byte {pos}"
    line = draw(st.integers(0, 200))
    if op == "tabify":
        return M.tabify(data, line), f"indentation of line {line % len(M.lines_of(data)) + 1} made a tab"
    if op == "reindent":
        delta = draw(st.sampled_from([-4, -2, -1, 1, 2, 3]))
        return M.reindent(data, line, delta), f"line {line % len(M.lines_of(data)) + 1} re-indented by {delta}"
    if op == "drop_line":
        return M.drop_line(data, line), f"line {line % len(M.lines_of(data)) + 1} deleted"
    if op == "dup_line":
        return M.duplicate_line(data, line), f"line {line % len(M.lines_of(data)) + 1} duplicated"
    if op == "garbage":
        junk = draw(st.binary(min_size=1, max_size=64))
        pos = draw(st.integers(0, n))
        return M.splice(data, pos, junk), f"{len(junk)} random bytes inserted at byte {pos}"
    if op == "nul":
        pos = draw(st.integers(0, n))
        return M.splice(data, pos, b"\x00"), f"NUL byte at {pos}"
    if op == "encoding":
        enc = draw(st.sampled_from(M.ENCODINGS))
        return M.encode(text, enc), f"encoded as {enc}"
    if op == "crlf":
        style = draw(st.sampled_from([b"\r\n", b"\r"]))
        return data.replace(b"\n", style), f"line ends {style!r}"
    if op == "whole":
        doc = draw(st.sampled_from(M.WHOLE_DOCUMENTS))
        return doc, f"whole file replaced by {doc[:40]!r}{'...' if len(doc) > 40 else ''}"
    pos = draw(st.integers(0, n))
    byte = draw(st.integers(0, 255))
    return M.corrupt(data, pos, byte), f"byte {pos} set to {byte:#04x}"


@st.composite
def extends_edit(draw, data: Any, case_rel: str) -> tuple[Any, dict[str, bytes], str]:
    """``extends:`` cycles and bad parents: (new tree, extra files, description). ``case_rel`` is the mutant's
    sandbox path; extra files are written next to it."""
    folder, name = case_rel.rsplit("/", 1)
    other = "_fuzz_b.yaml"
    mappings = M.containers(data) if isinstance(data, dict) else []
    op = draw(st.sampled_from(["self", "pair", "triple", "nested_self", "missing", "unknown_preset", "type",
                               "list_with_self", "non_mapping_parent", "binary_parent", "directory",
                               "other_kind", "empty_parent"]))
    files: dict[str, bytes] = {}
    at: tuple = ()
    if op == "nested_self" and len(mappings) > 1:
        at = draw(st.sampled_from(mappings[1:]))
    if op in ("self", "nested_self"):
        ref: Any = name
    elif op == "pair":
        ref = other
        files[f"{folder}/{other}"] = f"extends: {name}\n".encode()
    elif op == "triple":
        ref = other
        files[f"{folder}/{other}"] = b"extends: _fuzz_c.yaml\n"
        files[f"{folder}/_fuzz_c.yaml"] = f"description: c\nextends: [{name}]\n".encode()
    elif op == "missing":
        ref = draw(st.sampled_from(["_nope.yaml", "../nope/x.yaml", "_nope.yml", "sub/../_nope.yaml"]))
    elif op == "unknown_preset":
        ref = draw(st.sampled_from(["ddr4_3200", "nope", "ddr4_3200_16gb_x8_typo", " ", "systems/", "../",
                                    "~", "ddr4*", "dram/"]))
    elif op == "type":
        ref = draw(st.sampled_from([42, 1.5, True, None, [], {}, [None], [1, 2], {"a": 1}, ["ok", 3], [[name]]]))
    elif op == "list_with_self":
        old = data.get("extends") if isinstance(data, dict) else None
        ref = ([old] if isinstance(old, str) else []) + [name]
    elif op == "non_mapping_parent":
        ref = other
        files[f"{folder}/{other}"] = draw(st.sampled_from([b"- a\n- b\n", b"42\n", b"'text'\n", b"[1, {a: 2}]\n"]))
    elif op == "binary_parent":
        ref = other
        files[f"{folder}/{other}"] = draw(st.sampled_from([b"\x00\x01\x02", b"\xff\xfe\x00a", b"a: \x00\n"]))
    elif op == "empty_parent":
        ref = other
        files[f"{folder}/{other}"] = b""
    elif op == "directory":
        ref = draw(st.sampled_from([".", "..", "traces", "_fuzz_dir.yaml"]))
        files[f"{folder}/_fuzz_dir.yaml/"] = b""
    else:  # a parent of another kind
        ref = draw(st.sampled_from(["../workloads/zipf_small.yaml", "../hwconfigs/cpu_ddr4.yaml",
                                    "../examples/sweep_small.yaml", "../workloads/trace_example.yaml"]))
    new = copy.deepcopy(data) if isinstance(data, dict) else {}
    (M.get(new, at) if at else new)["extends"] = ref
    return new, files, f"{M.dotted(at + ('extends',))} = {ref!r} ({op})"


MISSING_KEYS = ["nonexistent.key", "typo", "nope.deeper.still", "name.sub", "tables[99].rows", "tables.x",
                "a[0]", "dram.org.nope", "host.llc.nope", "defaults.index.nope", "x" * 300]
MALFORMED = ["", "=", "=1", "noequals", "a..b=1", ".a=1", "a.=1", "a[x]=1", "a[-1]=1", "a[]=1", "a]=1",
             "dram.org.channels=[", "dram.org.channels={a: ", "x=!!binary AAAA", "x=*alias", "x=&a", "x=\x00",
             "x=" + "[" * 500 + "]" * 500, "dram.org.channels=1e400", "x=!!python/name:os.system",
             "name=\t", "seed=- 1", "dram.org.channels=0x10", "dram.org.channels=1_0", "a.b.c=\u00e9"]


@st.composite
def override_edit(draw, data: Any) -> tuple[str, str]:
    """One ``KEY.PATH=VALUE`` override: an existing key with a bad value, a key that names nothing, or a
    malformed override. Returns (text, description)."""
    paths = M.tree_paths(data)
    op = draw(st.sampled_from(["existing"] * 4 + ["missing", "below_existing", "malformed"]))
    if op == "existing" and paths:
        path = draw(st.sampled_from(paths))
        value = draw(_values_for(M.get(data, path)))
        text = f"{M.dotted(path)}={M.yaml_scalar(value)}"
        return text, f"set {text!r}"
    if op == "below_existing" and paths:
        path = draw(st.sampled_from(paths))
        text = f"{M.dotted(path)}.{draw(st.sampled_from(['nope', 'x', '0']))}=1"
        return text, f"set {text!r} (names nothing)"
    if op == "malformed":
        text = draw(st.sampled_from(MALFORMED))
        return text, f"malformed set {text[:60]!r}"
    text = draw(st.sampled_from(MISSING_KEYS)) + "=" + draw(st.sampled_from(["1", "x", "[]", "{}", "null"]))
    return text, f"set {text[:60]!r} (names nothing)"


@st.composite
def yaml_content(draw, seed_data: Any, seed_text: str, case_rel: str, shrunk: bool
                 ) -> tuple[dict[str, bytes], list[str]]:
    """The mutant file (and its extra files) of a YAML seed; ``shrunk``: ``seed_data`` differs from the text
    (text edits then act on its dump). Returns (files, descriptions)."""
    style = draw(st.sampled_from(["tree"] * 6 + ["text"] * 3 + ["extends", "none"]))
    files: dict[str, bytes] = {}
    notes: list[str] = []
    data = seed_data
    deep = None
    if style == "tree":
        for _ in range(draw(st.integers(1, 3))):
            data, note, d = draw(tree_edit(data))
            deep = deep or d
            notes.append(note)
            if not isinstance(data, dict):
                break
        files[case_rel] = _dump(data, deep)
    elif style == "text":
        base = _dump(data) if shrunk else seed_text.encode()
        text = base.decode()
        content, note = draw(text_edit(base, text))
        if draw(st.integers(0, 3)) == 0:  # sometimes two edits
            content, note2 = draw(text_edit(content, text))
            note += "; " + note2
        files[case_rel] = content
        notes.append(note)
    elif style == "extends":
        data, extra, note = draw(extends_edit(data, case_rel))
        files[case_rel] = _dump(data)
        files.update(extra)
        notes.append(note)
    else:
        files[case_rel] = _dump(data) if shrunk else seed_text.encode()
    return files, notes


def _overrides(draw, data: Any, flag: str, notes: list[str], p_none: int = 2) -> list[str]:
    """0-2 overrides (none with probability about 1 - 1/p_none)."""
    argv: list[str] = []
    if draw(st.integers(0, p_none)) == 0:
        for _ in range(draw(st.integers(1, 2))):
            text, note = draw(override_edit(data))
            argv += [flag, text]
            notes.append(f"{flag} {note}")
    return argv


# ------------------------------------------------------------------------------------------------------------
# The four kinds
# ------------------------------------------------------------------------------------------------------------


def _generated_workloads() -> list[corpus.Seed]:
    return [s for s in corpus.workloads() if isinstance(s.data, dict) and "trace" not in s.data]


@st.composite
def hwconfig_cases(draw) -> Case:
    """A mutated hwconfig, run on 1 batch of 2 bags of a shipped workload, on a memory trace, or shown."""
    seed = draw(st.sampled_from(corpus.hwconfigs()))
    rel = "hwconfigs/_fuzz.yaml"
    files, notes = draw(yaml_content(seed.data, seed.text, rel, shrunk=False))
    config = rel
    if draw(st.integers(0, 24)) == 0:  # the config argument itself
        config = draw(st.sampled_from(["hwconfigs/_missing.yaml", "hwconfigs", "", "cpu_ddr", seed.name.upper(),
                                       "workloads/zipf_small.yaml", "examples/sweep_small.yaml", "-", " ",
                                       "hwconfigs/_fuzz.yaml/x", "default", "systems/", "npz"]))
        notes.append(f"config argument {config!r}")
    over = _overrides(draw, seed.data, "--set", notes)
    command = draw(st.sampled_from(["run"] * 6 + ["run-trace", "show"]))
    results = [RUN_RESULT]
    if command == "run":
        wl = draw(st.sampled_from(_generated_workloads()))
        argv = ["run", config, "--workload", wl.rel, *SMALL_RUN, *over, *RUN_OUT]
    elif command == "run-trace":
        name, text = draw(st.sampled_from(sorted(corpus.memory_traces().items())))
        files[f"traces/{name}.trace"] = text.encode()
        argv = ["run", config, "--trace", f"traces/{name}.trace", *over, *RUN_OUT]
    else:
        argv = ["show", config, *over, "--dot", "out/graph.dot"]
        results = ["out/graph.dot"]
    return Case("hwconfig", seed.name, command, argv, files, mutations=notes, results=results)


def _shrink_workload(data: Any) -> Any:
    if isinstance(data, dict) and "trace" not in data:
        data = dict(data, num_batches=1, batch_size=2)
    return data


@st.composite
def workload_cases(draw) -> Case:
    """A mutated workload (shrunk to 1 batch of 2 bags first), run on a shipped hwconfig, or through
    ``trace stats`` / ``trace gen``."""
    seed = draw(st.sampled_from(corpus.workloads()))
    rel = "workloads/_fuzz.yaml"
    data = _shrink_workload(seed.data)
    files, notes = draw(yaml_content(data, seed.text, rel, shrunk=data is not seed.data))
    spec = rel
    if draw(st.integers(0, 24)) == 0:
        spec = draw(st.sampled_from(["workloads/_missing.yaml", "workloads", "", "zipf_smal", "hwconfigs/cpu_ddr4.yaml",
                                     "workloads/traces/zipf_small_4b/meta.json", "criteo_zipf", "-"]))
        notes.append(f"workload argument {spec!r}")
    command = draw(st.sampled_from(["run"] * 5 + ["trace-stats", "trace-gen"]))
    trace_based = isinstance(seed.data, dict) and "trace" in seed.data
    if command == "run":
        hw = draw(st.sampled_from(corpus.hwconfigs()))
        over = _overrides(draw, data, "--workload-set", notes)
        # 1 batch of 2 bags whatever the mutant says (its num_batches and batch_size are fuzzed through
        # trace stats / trace gen, whose --batches bounds the work)
        over = [*(["--workload-set", "num_batches=1"] if trace_based else SMALL_RUN), *over]
        extra: list[str] = []
        if draw(st.integers(0, 9)) == 0:
            seed_arg = draw(st.sampled_from(["-1", str(2**64), str(2**32), "0", "x", "1e3", str(-(2**63))]))
            extra = ["--seed", seed_arg]
            notes.append(f"--seed {seed_arg}")
        argv = ["run", hw.rel, "--workload", spec, *over, *extra, *RUN_OUT]
        results = [RUN_RESULT]
    else:
        over = _overrides(draw, data, "--set", notes)
        batches = draw(st.sampled_from(["1"] * 4 + ["0", "-1", str(2**64), "x"]))
        extra = []
        if draw(st.integers(0, 9)) == 0:
            seed_arg = draw(st.sampled_from(["-1", str(2**64), "0", "x"]))
            extra = ["--seed", seed_arg]
            notes.append(f"--seed {seed_arg}")
        if command == "trace-stats":
            argv = ["trace", "stats", spec, "--batches", batches, *over, *extra, "--json", "out/stats.json"]
            results = ["out/stats.json"]
        else:
            argv = ["trace", "gen", spec, "--out", "out/gen", "--batches", batches, *over, *extra, "--quiet"]
            results = ["out/gen/meta.json"]
    if "--batches" in argv and argv[argv.index("--batches") + 1] != "1":
        notes.append(f"--batches {argv[argv.index('--batches') + 1]}")
    return Case("workload", seed.name, command, argv, files, mutations=notes, results=results)


def _shrink_axis(v: Any, keep: int) -> Any:
    if isinstance(v, list):
        return v[:keep]
    if isinstance(v, dict):
        if set(v) == {"values"} and isinstance(v["values"], list):
            return {"values": v["values"][:keep]}
        if set(v) == {"log2"} and isinstance(v["log2"], dict) and "start" in v["log2"]:
            s = v["log2"]["start"]
            return {"log2": {"start": s, "stop": s * (2 if keep > 1 else 1)}}
        if "start" in v and "stop" in v:
            step = v.get("step", 1)
            return dict(v, stop=v["start"] + (step if keep > 1 else 0))
    return v


def shrink_sweep(data: Any) -> Any:
    """Cut a sweep spec to 2 points of 1 batch of 2 bags (the first axis keeps 2 values, the others 1)."""
    if not isinstance(data, dict):
        return data
    data = copy.deepcopy(data)
    first = True
    for key in list(data.get("axes") or {}):
        data["axes"][key] = _shrink_axis(data["axes"][key], 2 if first else 1)
        first = False
    zips = data.get("zip")
    for group in ([zips] if isinstance(zips, dict) else zips or []):
        for key in list(group):
            group[key] = _shrink_axis(group[key], 1)
    base = data.get("base")
    if isinstance(base, dict) and (base.get("workload") or "workload" in (data.get("axes") or {})):
        over = dict(base.get("overrides") or {})
        over["workload.num_batches"] = 1
        if "workload.batch_size" not in (data.get("axes") or {}):
            over["workload.batch_size"] = 2
        base["overrides"] = over
    return data


AXIS_KEYS = ["hw.nonexistent.key", "workload.nope", "hw.", "workload.", "hw", "hw.dram..org", "seed",
             "hwconfig", "workload", "nope", "", "hw.dram.org.channels", "workload.batch_size",
             "hw.dram.org.channels[0]", "hw.host.cores", "workload.tables[0].rows", "trace", "window",
             "workload.defaults.index.s", "hw.name", "workload.name", "hw.extends", "workload.extends"]
AXIS_VALUES = [[1], [2, 4], [], [None], [True], ["abc"], [M.NAN], [M.INF], [2**64], [-1], [0], [1.5],
               "abc", 5, None, {}, {"start": 1, "stop": 2}, {"start": 0, "stop": 2**64},
               {"start": 1, "stop": 2, "step": 0}, {"start": 2, "stop": 1}, {"start": 0, "stop": 1e308, "step": 1e-300},
               {"start": 1, "stop": 3, "step": 0.5}, {"log2": {"start": 0, "stop": 8}},
               {"log2": {"start": 3, "stop": 8}}, {"log2": {"start": 1, "stop": 2**64}}, {"log2": {"start": -2, "stop": 2}},
               {"log2": [1, 2]}, {"values": []}, {"values": [1, 2]}, {"values": 3}, {"start": "a", "stop": 2},
               {"start": True, "stop": 2}, {"start": 1, "stop": 2, "extra": 1}, ["cpu_ddr4", "nope"],
               ["../hwconfigs/_fuzz_missing.yaml"], [[1, 2]], [{"a": 1}], ["zipf_small"], ["criteo_zipf", 3]]
CONSTRAINTS = ["1/0 > 0", "channels / 0 > 1", "channels ** 1000000 > 0", "(", "channels and", "", " ",
               "__import__('os').system('true')", "channels.__class__", "open('x')", "[c for c in 'ab']",
               "lambda: 1", "nope > 1", "channels > 'a'", "channels * 1e308 * 10 > 0", "x" * 2000,
               "channels if 1 else 2", "channels < 2 < 3", "not channels", "-channels", "channels[0]",
               "channels == channels", "batch_size % 0", "2 ** 2 ** 2 ** 2 ** 2 > 0", "1e999 > 0",
               "channels >> 100000", "channels << 100000000 > 0", "True", "None", "'a' * 10**9",
               "s > 0.5", "s != s", "abs(channels) > 0", "channels @ 2"]


@st.composite
def sweep_edit(draw, data: dict) -> tuple[Any, str]:
    """An edit that knows sweep specs: axes, zip groups, constraints, base paths, timeouts."""
    data = copy.deepcopy(data)
    op = draw(st.sampled_from(["axis", "axis", "zip", "constraint", "constraint", "base", "timeout"]))
    if op == "axis":
        key = draw(st.sampled_from(AXIS_KEYS))
        value = draw(st.sampled_from(AXIS_VALUES))
        axes = data.get("axes") if isinstance(data.get("axes"), dict) else {}
        data["axes"] = dict(axes, **{key: value})
        return data, f"axes[{key!r}] = {value!r}"
    if op == "zip":
        groups = draw(st.sampled_from([{"workload.batch_size": [2, 4], "seed": [1]},
                                       {"hw.dram.org.channels": [1, 2], "workload.batch_size": [2, 4]},
                                       [], [{}], {"seed": []}, [{"seed": [1, 2]}, {"seed": [3, 4]}],
                                       "x", [[1, 2]], {"hw.host.cores": {"start": 1, "stop": 2}}]))
        data["zip"] = groups
        return data, f"zip = {groups!r}"
    if op == "constraint":
        text = draw(st.sampled_from(CONSTRAINTS))
        data["constraints"] = list(data.get("constraints") or []) + [text] if draw(st.booleans()) else [text]
        return data, f"constraint {text[:60]!r}"
    if op == "base":
        key = draw(st.sampled_from(["hwconfig", "workload", "trace", "window", "overrides"]))
        value = draw(st.sampled_from(["nope", "../hwconfigs/_missing.yaml", "/", "", ".", "..",
                                      "../workloads/zipf_small.yaml", "../hwconfigs/cpu_ddr4.yaml",
                                      "../traces/ramulator.trace", "../workloads/traces/zipf_small_4b",
                                      "cpu_ddr4", "zipf_small", 3, None, -1, 2**64, [], {"hw.nope": 1},
                                      {"workload.nope.x": 1}, {"nope": 1}, {"hw.dram.org.channels": "x"},
                                      {"seed": 1}, {"workload.num_batches": 2**64}]))
        base = data.get("base") if isinstance(data.get("base"), dict) else {}
        data["base"] = dict(base, **{key: value})
        return data, f"base.{key} = {value!r}"
    value = draw(st.sampled_from([1e-9, 1e-3, 0.0, -1, M.INF, 2**64, "1s", True]))
    data["timeout"] = value
    return data, f"timeout = {value!r}"


@st.composite
def sweep_cases(draw) -> Case:
    """A mutated sweep spec (shrunk to 2 points first), run in this process (at most 4 points) or dry-run."""
    seed = draw(st.sampled_from(corpus.sweeps()))
    rel = "examples/_fuzz.yaml"
    data = shrink_sweep(seed.data)
    files: dict[str, bytes] = {}
    notes: list[str] = []
    if draw(st.integers(0, 2)) == 0 and isinstance(data, dict):
        for _ in range(draw(st.integers(1, 2))):
            data, note = draw(sweep_edit(data))
            notes.append(note)
        files[rel] = _dump(data)
    else:
        files, notes = draw(yaml_content(data, seed.text, rel, shrunk=True))
    files["traces/ramulator.trace"] = corpus.memory_traces()["ramulator"].encode()  # base.trace may name it
    dry = draw(st.integers(0, 3)) == 0
    # --max-wall: a mutant that drops the shrinking overrides runs full-size points, which is no hang
    argv = ["sweep", rel, "--dry-run"] if dry else ["sweep", rel, "--out", "out/sweep", "--quiet", "--max-wall", "4"]
    return Case("sweep", seed.name, "sweep-dry-run" if dry else "sweep", argv, files, mutations=notes,
                results=[] if dry else ["out/sweep/results.csv"], max_points=4)


# ---- traces ------------------------------------------------------------------------------------------------


@st.composite
def memory_trace_edit(draw, text: str) -> tuple[bytes, str]:
    """An edit of a memory trace: a bad field, an extra or missing one, a garbage line, or a byte edit."""
    lines = text.split("\n")
    body = [i for i, ln in enumerate(lines) if ln and not ln.startswith("#")]
    op = draw(st.sampled_from(["address", "address", "op", "cycle", "extra_field", "drop_field", "garbage_line",
                               "long_line", "bytes", "only_comments", "separator"]))
    i = draw(st.sampled_from(body))
    toks = lines[i].split()
    if op == "address":
        bad = draw(st.sampled_from(M.BAD_ADDRESSES))
        toks[1 if toks[0] in ("LD", "ST") else 0] = bad
        note = f"address {bad[:40]!r} on line {i + 1}"
    elif op == "op":
        bad = draw(st.sampled_from(M.BAD_OPS))
        toks[0 if toks[0] in ("LD", "ST") else 1] = bad
        note = f"op {bad!r} on line {i + 1}"
    elif op == "cycle":
        bad = draw(st.sampled_from(M.BAD_CYCLES))
        toks = toks[:2] + [bad] if toks[0] not in ("LD", "ST") else toks + [bad]
        note = f"cycle {bad[:40]!r} on line {i + 1}"
    elif op == "extra_field":
        toks = toks + draw(st.sampled_from([["1"], ["x"], ["1", "2"], ["#c"]]))
        note = f"extra field on line {i + 1}"
    elif op == "drop_field":
        toks = toks[:-1]
        note = f"last field dropped on line {i + 1}"
    elif op == "garbage_line":
        junk = draw(st.text(max_size=30))
        lines.insert(i, junk)
        return "\n".join(lines).encode("utf-8", "surrogatepass"), f"line {junk!r} inserted at {i + 1}"
    elif op == "long_line":
        toks = [toks[0] + "0" * draw(st.sampled_from([100, 10_000, 300_000]))] + toks[1:]
        note = f"address of line {i + 1} padded to a long line"
    elif op == "only_comments":
        return "\n".join(ln for ln in lines if not ln or ln.startswith("#")).encode(), "every request removed"
    elif op == "separator":
        sep = draw(st.sampled_from(["\t", ",", ";", "  ", "\x00", "\u00a0", "\x0b"]))
        lines[i] = sep.join(toks)
        return "\n".join(lines).encode(), f"fields of line {i + 1} separated by {sep!r}"
    else:
        base = text.encode()
        return draw(text_edit(base, text))
    lines[i] = " ".join(toks)
    return "\n".join(lines).encode("utf-8", "surrogatepass"), note


@st.composite
def gzip_edit(draw, data: bytes) -> tuple[bytes, str]:
    """Gzip the trace, then maybe break the gzip: truncated, a corrupt byte, garbage, two members, empty."""
    op = draw(st.sampled_from(["plain_gzip", "truncate", "corrupt", "garbage", "members", "empty", "header",
                               "trailing"]))
    gz = M.gzip_bytes(data)
    if op == "plain_gzip":
        return gz, "gzipped"
    if op == "truncate":
        pos = draw(st.integers(0, len(gz) - 1))
        return gz[:pos], f"gzipped and truncated to {pos} of {len(gz)} bytes"
    if op == "corrupt":
        pos = draw(st.integers(10, len(gz) - 1))
        byte = draw(st.integers(0, 255))
        return M.corrupt(gz, pos, byte), f"gzipped, byte {pos} set to {byte:#04x}"
    if op == "garbage":
        junk = draw(st.binary(min_size=1, max_size=200))
        return M.gzip_bytes(junk), "gzip of random bytes"
    if op == "members":
        return gz + gz, "two gzip members"
    if op == "empty":
        return M.gzip_bytes(b""), "gzip of an empty file"
    if op == "header":
        return gz[:10], "a gzip header only"
    junk = draw(st.binary(min_size=1, max_size=16))
    return gz + junk, f"gzipped with {len(junk)} trailing bytes"


@st.composite
def memory_trace_cases(draw) -> Case:
    """A mutated memory trace run on a shipped hwconfig (``run --trace``), maybe with odd --window/--seed."""
    name, text = draw(st.sampled_from(sorted(corpus.memory_traces().items())))
    notes: list[str] = []
    content = text.encode()
    if draw(st.integers(0, 5)) != 0:
        content, note = draw(memory_trace_edit(text))
        notes.append(note)
    rel = "traces/_fuzz.trace"
    if draw(st.integers(0, 3)) == 0:
        content, note = draw(gzip_edit(content))
        notes.append(note)
        rel = draw(st.sampled_from(["traces/_fuzz.trace.gz", "traces/_fuzz.trace"]))
    files = {rel: content}
    trace_arg = rel
    if draw(st.integers(0, 19)) == 0:
        trace_arg = draw(st.sampled_from(["traces/_missing.trace", "traces", "", "npz",
                                          "workloads/traces/zipf_small_4b/batch_00000.npz"]))
        notes.append(f"trace argument {trace_arg!r}")
    hw = draw(st.sampled_from(corpus.hwconfigs()))
    extra: list[str] = []
    if draw(st.integers(0, 5)) == 0:
        flag = draw(st.sampled_from(["--window", "--seed"]))
        value = draw(st.sampled_from(["-1", "0", "1", "3", str(2**64), str(2**63), "1e3", "x", str(-(2**64))]))
        extra = [flag, value]
        notes.append(f"{flag} {value}")
    argv = ["run", hw.rel, "--trace", trace_arg, *extra, *RUN_OUT]
    return Case("trace", f"memory:{name}", "run-trace", argv, files, mutations=notes, results=[RUN_RESULT])


def _array_edits(arrays: dict[str, np.ndarray], rows: int) -> list[tuple[str, Any]]:
    idx, off, tid = arrays["indices"], arrays["offsets"], arrays["table_ids"]
    i64 = np.iinfo(np.int64)
    return [
        ("indices", np.where(np.arange(idx.size) == 0, -1, idx)),
        ("indices", np.full_like(idx, rows)),
        ("indices", np.full_like(idx, i64.max)),
        ("indices", np.full_like(idx, i64.min)),
        ("indices", idx.astype(np.uint64) + np.uint64(2**63)),
        ("indices", idx.astype(np.float64)),
        ("indices", np.full(idx.shape, np.nan)),
        ("indices", idx.reshape(1, -1)),
        ("indices", idx[:0]),
        ("indices", idx[:-1]),
        ("indices", idx.astype(np.int8)),
        ("indices", np.array(["a"] * idx.size)),
        ("indices", idx.astype(bool)),
        ("indices", np.array(3)),
        ("offsets", off[::-1].copy()),
        ("offsets", off[:-1]),
        ("offsets", off + 1),
        ("offsets", np.concatenate([off, off[-1:]])),
        ("offsets", off.astype(np.float32)),
        ("offsets", np.full_like(off, i64.max)),
        ("offsets", np.where(np.arange(off.size) == 1, i64.max, off)),
        ("offsets", np.where(np.arange(off.size) == 1, -5, off)),
        ("offsets", off[:1]),
        ("offsets", off[:0]),
        ("offsets", off.astype(np.uint64)),
        ("table_ids", tid[:0]),
        ("table_ids", np.zeros_like(tid)),
        ("table_ids", tid - 1),
        ("table_ids", tid + 100),
        ("table_ids", np.full_like(tid, np.iinfo(tid.dtype).max)),
        ("table_ids", tid.astype(np.float64)),
        ("table_ids", tid[:1]),
        ("table_ids", np.concatenate([tid, tid])),
        ("table_ids", tid.reshape(1, -1)),
        ("table_ids", np.array(2**40, dtype=np.int64)),
    ]


@st.composite
def npz_edit(draw, seed: str) -> tuple[dict[str, bytes | None], str, int]:
    """An edit of an npz trace directory (under ``npz/_fuzz``): meta.json or a batch file. Returns (files,
    description, the batch edited or -1)."""
    meta = corpus.npz_meta(seed)
    nb = int(meta["num_batches"])
    rows = int(meta["tables"][0]["rows"])
    target = draw(st.sampled_from(["meta"] * 3 + ["batch"] * 5 + ["files"]))
    d = "npz/_fuzz"
    if target == "meta":
        text = json.dumps(meta, indent=1)
        if draw(st.booleans()):
            data, note, _ = draw(tree_edit(meta))
            return {f"{d}/meta.json": json.dumps(data, indent=1).encode()}, f"meta.json: {note}", -1
        content, note = draw(text_edit(text.encode(), text))
        return {f"{d}/meta.json": content}, f"meta.json: {note}", -1
    b = draw(st.integers(0, nb - 1))
    bf = f"{d}/batch_{b:05d}.npz"
    if target == "files":
        op = draw(st.sampled_from(["no_meta", "no_batch", "batch_dir", "meta_dir", "extra_batch", "empty_meta"]))
        files: dict[str, bytes | None] = {
            "no_meta": {f"{d}/meta.json": None}, "no_batch": {bf: None}, "batch_dir": {bf: None, bf + "/": b""},
            "meta_dir": {f"{d}/meta.json": None, f"{d}/meta.json/": b""},
            "extra_batch": {f"{d}/batch_{nb:05d}.npz": b"garbage"}, "empty_meta": {f"{d}/meta.json": b""}}[op]
        return files, f"{op} (batch {b})", b
    arrays = corpus.npz_batch(seed, b)
    op = draw(st.sampled_from(["array"] * 6 + ["missing", "extra", "object", "bytes", "truncate", "corrupt",
                               "empty", "not_npy", "uncompressed", "meta_member"]))
    if op == "array":
        name, value = draw(st.sampled_from(_array_edits(arrays, rows)))
        new = dict(arrays, **{name: value})
        return {bf: corpus.npz_bytes(new)}, f"batch {b}: {name} = {np.asarray(value).dtype}{list(np.shape(value))} " \
               f"{np.asarray(value).ravel()[:3].tolist()}...", b
    if op == "missing":
        name = draw(st.sampled_from(sorted(arrays)))
        new = {k: v for k, v in arrays.items() if k != name}
        return {bf: corpus.npz_bytes(new)}, f"batch {b}: array {name} missing", b
    if op == "extra":
        return {bf: corpus.npz_bytes(dict(arrays, extra=np.arange(3)))}, f"batch {b}: an extra array", b
    if op == "object":
        name = draw(st.sampled_from(sorted(arrays)))
        obj = np.empty(2, dtype=object)
        obj[:] = [1, "a"]
        return {bf: corpus.npz_bytes(dict(arrays, **{name: obj}))}, f"batch {b}: {name} an object array", b
    if op == "uncompressed":
        return {bf: corpus.npz_bytes(arrays, compressed=False)}, f"batch {b}: not compressed (valid)", b
    if op == "meta_member":
        value = draw(st.sampled_from(["{", "[]", "{\"tables\": 1}", "null", json.dumps(meta)]))
        return {bf: corpus.npz_bytes(dict(arrays, meta=np.array(value)))}, f"batch {b}: meta member {value[:30]!r}", b
    raw = (corpus.seed_dir(seed) / f"batch_{b:05d}.npz").read_bytes()
    if op == "bytes":
        content, note = draw(text_edit(raw, ""))
        return {bf: content}, f"batch {b}: {note}", b
    if op == "truncate":
        pos = draw(st.integers(0, len(raw) - 1))
        return {bf: raw[:pos]}, f"batch {b}: truncated to {pos} of {len(raw)} bytes", b
    if op == "corrupt":
        pos = draw(st.integers(0, len(raw) - 1))
        byte = draw(st.integers(0, 255))
        return {bf: M.corrupt(raw, pos, byte)}, f"batch {b}: byte {pos} set to {byte:#04x}", b
    if op == "empty":
        return {bf: b""}, f"batch {b}: empty file", b
    member = draw(st.sampled_from([b"", b"garbage", b"\x93NUMPY\x01\x00\xff\xff{", b"\x93NUMPY\x09\x00"]))
    return {bf: corpus.zip_bytes({"indices.npy": member, "offsets.npy": member, "table_ids.npy": member})}, \
        f"batch {b}: zip of non-npy members {member[:12]!r}", b


WORKLOAD_ON_TRACE = b"name: fuzz_trace\ntrace: ../npz/_fuzz\n"


@st.composite
def npz_trace_cases(draw) -> Case:
    """A mutated embedding trace, read by ``run --workload`` (a workload with ``trace:``), ``trace stats`` or
    ``trace gen``."""
    seed = draw(st.sampled_from(sorted(corpus.npz_traces())))
    files: dict[str, bytes | None] = {}
    notes: list[str] = []
    batch = -1
    if draw(st.integers(0, 7)) != 0:
        files, note, batch = draw(npz_edit(seed))
        notes.append(note)
    files["workloads/_fuzz_wl.yaml"] = WORKLOAD_ON_TRACE
    command = draw(st.sampled_from(["run"] * 3 + ["trace-stats", "trace-stats-file", "trace-gen"]))
    big = corpus.npz_meta(seed)["num_batches"] * corpus.npz_meta(seed)["batch_size"] > 64
    if command == "run":
        hw = draw(st.sampled_from(corpus.hwconfigs()))
        one = ["--workload-set", "num_batches=1"] if big and batch <= 0 else []
        argv = ["run", hw.rel, "--workload", "workloads/_fuzz_wl.yaml", *one, *RUN_OUT]
        results = [RUN_RESULT]
    elif command == "trace-stats":
        argv = ["trace", "stats", "npz/_fuzz", "--json", "out/stats.json"]
        results = ["out/stats.json"]
    elif command == "trace-stats-file":
        argv = ["trace", "stats", f"npz/_fuzz/batch_{max(batch, 0):05d}.npz", "--json", "out/stats.json"]
        results = ["out/stats.json"]
    else:
        argv = ["trace", "gen", "workloads/_fuzz_wl.yaml", "--out", "out/gen", "--quiet"]
        results = ["out/gen/meta.json"]
    return Case("trace", f"npz:{seed}", command, argv, files, copies={"npz/_fuzz": seed}, mutations=notes,
                results=results)


def trace_cases() -> st.SearchStrategy[Case]:
    """Memory traces (3 in 5) and embedding traces (2 in 5)."""
    return st.one_of(memory_trace_cases(), memory_trace_cases(), memory_trace_cases(), npz_trace_cases(),
                     npz_trace_cases())


STRATEGIES = {"hwconfig": hwconfig_cases, "workload": workload_cases, "sweep": sweep_cases, "trace": trace_cases}
"""Input kind -> a function returning its case strategy."""
