"""The fuzzing campaign: ``python -m tests.fuzz.campaign`` (``make fuzz``).

Draws N cases per input kind with hypothesis (:mod:`.strategies`), runs them in parallel (worker processes,
each forking a child per case, :mod:`.harness`), classifies each (:mod:`.classify`), and writes a JSON report
(counts per kind and outcome; the bug classes, with the first few cases of each saved under
``CASES_DIR/<n>-<kind>/``: ``case.json`` and the input files), then prints a table.

    python -m tests.fuzz.campaign --cases 10000 --jobs 0 --out results/fuzz.json
    python -m tests.fuzz.campaign --replay results/fuzz/cases/0001-hwconfig    # run a saved case again
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, Verbosity, given, settings
from hypothesis import seed as hypothesis_seed

from .case import KINDS, Case
from .classify import BUGS, OUTCOMES, classify, signature
from .harness import Sandbox, run_case
from .strategies import STRATEGIES

KEEP = 3
"""Cases kept (and saved) per bug class."""


def generate(kind: str, n: int, on_case, seed: int | None = None, derandomize: bool = False) -> None:
    """Draw ``n`` cases of ``kind`` with hypothesis and call ``on_case(case)`` on each (generation only: a
    failing case is recorded by the caller, not shrunk)."""

    @settings(max_examples=n, database=None, phases=[Phase.generate], derandomize=derandomize, deadline=None,
              suppress_health_check=list(HealthCheck), verbosity=Verbosity.quiet)
    @given(STRATEGIES[kind]())
    def body(case: Case) -> None:
        on_case(case)

    if seed is not None and not derandomize:
        body = hypothesis_seed(seed)(body)
    body()


def new_summary() -> dict[str, Any]:
    return {"cases": 0, "outcomes": Counter(), "commands": Counter(), "wall_s": 0.0, "failures": {}, "samples": {},
            "harness_errors": []}


def record(summary: dict[str, Any], case: Case, res, outcome: str, detail: str, keep: int = KEEP) -> None:
    """Count one case; keep the first ``keep`` failing cases of each bug class."""
    summary["cases"] += 1
    summary["outcomes"][outcome] += 1
    summary["commands"][case.command] += 1
    summary["wall_s"] += res.wall_s
    samples = summary["samples"].setdefault(outcome, [])
    if len(samples) < keep:
        samples.append(f"{case.describe()[:300]} -> {detail[:300]}")
    if outcome in BUGS:
        sig = signature(case, res, outcome, detail)
        entry = summary["failures"].setdefault(sig, {"kind": case.kind, "outcome": outcome, "count": 0,
                                                     "examples": []})
        entry["count"] += 1
        if len(entry["examples"]) < keep:
            entry["examples"].append({"case": case, "detail": detail, "rc": res.rc, "stderr": res.stderr[-4000:],
                                      "crash_log": res.crash_log[-6000:], "wall_s": res.wall_s})


def run_cases(kind: str, n: int, sandbox: Sandbox, seed: int | None = None, derandomize: bool = False,
              timeout: float = 30.0, keep: int = KEEP) -> dict[str, Any]:
    """Generate and run ``n`` cases of ``kind`` in ``sandbox`` (sequentially); the summary of the chunk."""
    summary = new_summary()

    def on_case(case: Case) -> None:
        res = run_case(case, sandbox, timeout=timeout)
        outcome, detail = classify(case, res)
        record(summary, case, res, outcome, detail, keep)

    try:
        generate(kind, n, on_case, seed=seed, derandomize=derandomize)
    except Exception as e:  # noqa: BLE001 - a bug of the fuzzer itself: keep the chunk's cases, report it
        summary["harness_errors"].append(f"{kind} seed {seed}: {type(e).__name__}: {e}"[:500])
    return summary


def merge(total: dict[str, Any], part: dict[str, Any], keep: int = KEEP) -> None:
    total["cases"] += part["cases"]
    total["outcomes"].update(part["outcomes"])
    total["commands"].update(part["commands"])
    total["wall_s"] += part["wall_s"]
    total["harness_errors"] += part["harness_errors"]
    for outcome, samples in part["samples"].items():
        total["samples"][outcome] = (total["samples"].get(outcome, []) + samples)[:keep]
    for sig, entry in part["failures"].items():
        mine = total["failures"].setdefault(sig, {**entry, "count": 0, "examples": []})
        mine["count"] += entry["count"]
        mine["examples"] = (mine["examples"] + entry["examples"])[:keep]


# ------------------------------------------------------------------------------------------------------------
# Parallel workers
# ------------------------------------------------------------------------------------------------------------

_SANDBOX: Sandbox | None = None


def _init_worker(root: str) -> None:
    global _SANDBOX
    _SANDBOX = Sandbox(Path(root) / f"worker-{os.getpid()}")


def _chunk(task: tuple[str, int, int, float]) -> tuple[str, dict[str, Any]]:
    kind, n, seed, timeout = task
    assert _SANDBOX is not None
    return kind, run_cases(kind, n, _SANDBOX, seed=seed, timeout=timeout)


def campaign(cases: int, jobs: int, seed: int, timeout: float, kinds=KINDS, chunk: int = 200,
             progress=None) -> dict[str, dict[str, Any]]:
    """Run ``cases`` cases of each kind over ``jobs`` worker processes; the summary per kind."""
    tasks = []
    for k, kind in enumerate(kinds):
        parts = max(1, math.ceil(cases / chunk))
        for i in range(parts):
            n = cases // parts + (1 if i < cases % parts else 0)
            if n:
                tasks.append((kind, n, seed * 7919 + k * 1_000_003 + i, timeout))
    totals = {kind: new_summary() for kind in kinds}
    root = tempfile.mkdtemp(prefix="archsim-fuzz-")
    try:
        ctx = multiprocessing.get_context("fork")
        with ctx.Pool(jobs, initializer=_init_worker, initargs=(root,)) as pool:
            for kind, part in pool.imap_unordered(_chunk, tasks):
                merge(totals[kind], part)
                if progress:
                    progress(kind, totals)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return totals


# ------------------------------------------------------------------------------------------------------------
# Report
# ------------------------------------------------------------------------------------------------------------


def save_case(case: Case, dest: Path, extra: dict[str, Any]) -> None:
    """``dest/case.json`` and the input files under ``dest/files/`` (replayable with ``--replay``)."""
    dest.mkdir(parents=True, exist_ok=True)
    info = {**case.to_json(), **extra, "deleted": [], "dirs": []}
    for rel, data in case.files.items():
        if rel.endswith("/"):
            info["dirs"].append(rel)
        elif data is None:
            info["deleted"].append(rel)
        else:
            p = dest / "files" / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(data)
    (dest / "case.json").write_text(json.dumps(info, indent=1, default=repr) + "\n")


def load_case(src: Path) -> Case:
    info = json.loads((src / "case.json").read_text())
    files: dict[str, bytes | None] = {}
    for rel in info["files"]:
        p = src / "files" / rel
        if p.is_file():
            files[rel] = p.read_bytes()
    files.update({rel: None for rel in info.get("deleted", [])})
    files.update({rel: b"" for rel in info.get("dirs", [])})
    return Case(info["kind"], info["seed"], info["command"], info["argv"], files, copies=info.get("copies", {}),
                mutations=info.get("mutations", []), results=info.get("results", []),
                max_points=info.get("max_points"))


def report(totals: dict[str, dict[str, Any]], cases_dir: Path | None, meta: dict[str, Any]) -> dict[str, Any]:
    """The JSON report; saves the kept cases of each bug class under ``cases_dir``."""
    kinds = {}
    bugs = []
    for kind, t in totals.items():
        inputs = sum(v for k, v in t["outcomes"].items() if k.startswith("input-error-"))
        kinds[kind] = {"cases": t["cases"], "outcomes": dict(sorted(t["outcomes"].items(),
                                                                    key=lambda kv: OUTCOMES.index(kv[0]))),
                       "bugs": sum(v for k, v in t["outcomes"].items() if k in BUGS),
                       "input_errors": inputs,
                       "input_errors_with_file_line": t["outcomes"].get("input-error-file-line", 0),
                       "commands": dict(t["commands"]), "case_seconds": round(t["wall_s"], 1),
                       "samples": t["samples"], "harness_errors": t["harness_errors"]}
        for sig, entry in t["failures"].items():
            bugs.append({"signature": sig, **{k: v for k, v in entry.items() if k != "examples"},
                         "examples": entry["examples"]})
    if cases_dir is not None:
        shutil.rmtree(cases_dir, ignore_errors=True)
    n = 0
    for bug in sorted(bugs, key=lambda b: (BUGS.index(b["outcome"]), -b["count"])):
        examples = []
        for ex in bug["examples"]:
            n += 1
            case: Case = ex["case"]
            entry = {"argv": case.argv, "seed": case.seed, "mutations": case.mutations, "detail": ex["detail"],
                     "stderr": ex["stderr"][-1500:]}
            if cases_dir is not None:
                dest = cases_dir / f"{n:04d}-{case.kind}"
                save_case(case, dest, {"outcome": bug["outcome"], "signature": bug["signature"],
                                       "detail": ex["detail"], "rc": ex["rc"], "stderr": ex["stderr"],
                                       "crash_log": ex["crash_log"], "wall_s": ex["wall_s"]})
                entry["saved"] = str(dest)
            examples.append(entry)
        bug["examples"] = examples
    bugs.sort(key=lambda b: (BUGS.index(b["outcome"]), -b["count"]))
    return {**meta, "kinds": kinds, "bug_classes": bugs}


def table(rep: dict[str, Any]) -> str:
    """The counts per kind and outcome (outcomes that occurred), then the bug classes."""
    kinds = rep["kinds"]
    cols = [o for o in OUTCOMES if any(k["outcomes"].get(o) for k in kinds.values())]
    head = ["kind", "cases", *cols, "file:line"]
    rows = [[kind, str(k["cases"]), *(str(k["outcomes"].get(o, 0)) for o in cols),
             f"{k['input_errors_with_file_line']}/{k['input_errors']}"] for kind, k in kinds.items()]
    tot = ["total", str(sum(k["cases"] for k in kinds.values())),
           *(str(sum(k["outcomes"].get(o, 0) for k in kinds.values())) for o in cols),
           f"{sum(k['input_errors_with_file_line'] for k in kinds.values())}/"
           f"{sum(k['input_errors'] for k in kinds.values())}"]
    rows.append(tot)
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    fmt = "  ".join(("{:<" if i == 0 else "{:>") + f"{w}}}" for i, w in enumerate(widths))
    out = [fmt.format(*head), fmt.format(*["-" * w for w in widths])]
    out += [fmt.format(*r) for r in rows]
    for kind, k in kinds.items():
        for e in k.get("harness_errors", []):
            out.append(f"fuzzer error ({kind}; the rest of its chunk was not run): {e}")
    bugs = rep["bug_classes"]
    out.append("")
    out.append(f"{len(bugs)} bug classes" + (":" if bugs else ""))
    for b in bugs:
        out.append(f"  {b['count']:6d}  {b['kind']:8s}  {b['signature']}")
        if b["examples"]:
            ex = b["examples"][0]
            out.append(f"          e.g. archsim {' '.join(_shell(a) for a in ex['argv'])}")
            out.append(f"               {'; '.join(ex['mutations'])[:200]}")
            if ex.get("saved"):
                out.append(f"               saved in {ex['saved']}")
    return "\n".join(out)


def _shell(a: str) -> str:
    import shlex

    return shlex.quote(a) if a else "''"


def replay(src: Path, timeout: float) -> int:
    case = load_case(src)
    sandbox = Sandbox()
    try:
        res = run_case(case, sandbox, timeout=timeout)
        outcome, detail = classify(case, res)
        print(f"{case.describe()}\nargv: archsim {' '.join(_shell(a) for a in case.argv)}\nsandbox: {sandbox.root}")
        print(f"exit {res.rc} in {res.wall_s} s: {outcome}\n{detail}\n--- stderr ---\n{res.stderr}")
        if res.crash_log:
            print(f"--- crash log ---\n{res.crash_log}")
    finally:
        sandbox.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.fuzz.campaign", description=__doc__.split("\n\n")[0])
    p.add_argument("--cases", type=int, default=int(os.environ.get("FUZZ_CASES", 10_000)),
                   help="cases per input kind (default $FUZZ_CASES or 10000)")
    p.add_argument("--jobs", "-j", type=int, default=int(os.environ.get("FUZZ_JOBS", 0)),
                   help="worker processes (default $FUZZ_JOBS, 0: one per CPU)")
    p.add_argument("--kinds", default=",".join(KINDS), help=f"comma-separated subset of {','.join(KINDS)}")
    p.add_argument("--seed", type=int, default=int(os.environ.get("FUZZ_SEED", 0)), help="campaign seed")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds before a case counts as a hang")
    p.add_argument("--out", default="results/fuzz.json", help="JSON report")
    p.add_argument("--cases-dir", default="results/fuzz/cases", help="where failing cases are saved")
    p.add_argument("--replay", metavar="CASE_DIR", help="run one saved case again and show what it does")
    args = p.parse_args(argv)
    if args.replay:
        return replay(Path(args.replay), args.timeout)
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    bad = [k for k in kinds if k not in KINDS]
    if bad:
        p.error(f"unknown kind {bad[0]!r} (known: {', '.join(KINDS)})")
    jobs = args.jobs or os.cpu_count() or 1
    t0 = time.perf_counter()

    def progress(kind: str, totals: dict[str, dict[str, Any]]) -> None:
        done = sum(t["cases"] for t in totals.values())
        nbugs = sum(sum(v for k, v in t["outcomes"].items() if k in BUGS) for t in totals.values())
        print(f"\r{done}/{args.cases * len(kinds)} cases, {nbugs} contract violations, "
              f"{time.perf_counter() - t0:.0f} s", end="", file=sys.stderr, flush=True)

    totals = campaign(args.cases, jobs, args.seed, args.timeout, kinds=kinds, progress=progress)
    print(file=sys.stderr)
    meta = {"date": time.strftime("%Y-%m-%dT%H:%M:%S"), "cases_per_kind": args.cases, "jobs": jobs,
            "seed": args.seed, "timeout_s": args.timeout, "wall_s": round(time.perf_counter() - t0, 1)}
    rep = report(totals, Path(args.cases_dir), meta)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(rep, indent=1, default=repr) + "\n")
    print(table(rep))
    print(f"\nreport: {args.out}; failing cases: {args.cases_dir}/ (replay one: python -m tests.fuzz.campaign "
          f"--replay DIR)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
