"""The outcome of a fuzz case, judged against the error contract (docs/reliability.md).

Bad input: exit status 2 and exactly one line on stderr, ``archsim: error: FILE:LINE: KEY.PATH: message`` when
a location exists, and no result written. Exit 1 with ``archsim: internal error:`` is a bug, so is a raw
Python traceback, a hang, a crash (a signal), and any other shape of stderr on exit 2. Exit 0 is fine when the
mutant is still valid, but its result may hold no nan/inf and no negative energy. ``archsim sweep`` exits 1
when points failed, 4 when they only ran past their time limit: that is fine when each failure is bad input or
a timeout (they are in the table); ``archsim run --max-wall`` exits 4 when it stopped the run.
"""

from __future__ import annotations

import csv
import json
import math
import re
from pathlib import Path
from typing import Any

from .case import Case
from .harness import RunResult

BUGS = ("hang", "crash", "traceback", "internal-error", "result-written-after-error", "bad-stderr",
        "nan-or-inf-in-result", "negative-energy-in-result", "missing-result", "other-exit")
"""Outcomes that break the contract, most severe first."""

FINE = ("input-error-file-line", "input-error-file", "input-error-override", "input-error-no-location",
        "ok-points-failed", "ok-stopped", "ok-with-stderr", "ok")
"""Outcomes within the contract: bad input reported (by how precisely it is located), or a valid run."""

OUTCOMES = BUGS + FINE

_ERROR = re.compile(r"^archsim: error: (?P<msg>.*)$")
_FILE_LINE = re.compile(r"^(?P<file>[^:]+|[^ ]+?):(?P<line>\d+): ")
_FILE_EXT = (".yaml", ".yml", ".json", ".npz", ".gz", ".trace", ".csv", ".pt")


def _location(msg: str) -> str:
    """How an input error names its place: ``file-line``, ``file``, ``override`` or ``no-location``."""
    if _FILE_LINE.match(msg):
        return "file-line"
    head = msg.split(": ", 1)[0]
    if head.startswith(("--set ", "--workload-set ")) or head in ("--set", "--workload-set"):
        return "override"
    if " " not in head.strip() and ("/" in head or head.endswith(_FILE_EXT)):
        return "file"
    return "no-location"


def _bad_values(path: Path) -> tuple[list[str], list[str]]:
    """Non-finite values and negative energies in a result file (CSV or JSON): (nan/inf keys, energy keys)."""
    nonfinite: list[str] = []
    negative: list[str] = []

    def check(key: str, v: Any) -> None:
        if isinstance(v, str):
            last = key.rsplit(".", 1)[-1].split("[", 1)[0].lower()
            if last.endswith(("name", "description")):  # text the user wrote ('nan' is a fine name)
                return
            t = v.strip().lower()
            if t in ("nan", "inf", "-inf", "+inf", "infinity", "-infinity"):
                nonfinite.append(key)
                return
            try:
                v = float(t)
            except ValueError:
                return
        if isinstance(v, bool) or not isinstance(v, int | float):
            return
        if not math.isfinite(v):
            nonfinite.append(key)
        elif v < 0 and "energy" in key.lower():
            negative.append(key)

    def walk(x: Any, key: str) -> None:
        if isinstance(x, dict):
            for k, v in x.items():
                walk(v, f"{key}.{k}" if key else str(k))
        elif isinstance(x, list):
            for i, v in enumerate(x):
                walk(v, f"{key}[{i}]")
        else:
            check(key, x)

    try:
        if path.suffix == ".csv":
            with open(path, newline="") as f:
                for row in csv.DictReader(f):
                    for k, v in row.items():
                        if k not in ("error", "traceback"):
                            check(str(k), v)
        elif path.suffix == ".json":
            walk(json.loads(path.read_text()), "")
    except (OSError, ValueError, UnicodeDecodeError):
        pass
    return nonfinite, negative


def _points(root: Path) -> list[dict[str, Any]]:
    recs = []
    for p in sorted((root / "out").rglob("points/*.json")):
        try:
            recs.append(json.loads(p.read_text()))
        except (OSError, ValueError):
            pass
    return recs


def classify(case: Case, res: RunResult) -> tuple[str, str]:
    """(outcome, detail): the outcome is one of :data:`OUTCOMES`; the detail is the evidence (a message)."""
    err = res.stderr.strip()
    lines = re.split(r"\r\n|\r|\n", err) if err else []  # what a terminal shows as lines (not U+0085, U+2028)
    root = res.sandbox or Path(".")
    if res.hung:
        return "hang", f"no exit after {res.wall_s:.0f} s"
    if res.signal is not None:
        return "crash", f"killed by signal {res.signal}; {err[-300:]}"
    if "Traceback (most recent call last)" in err:
        return "traceback", lines[-1] if lines else ""
    internal = [ln for ln in lines if ln.startswith("archsim: internal error:")]
    if internal:
        return "internal-error", internal[0]
    written = [r for r in case.results if (root / r).exists()]
    if res.rc == 2:
        if written:
            return "result-written-after-error", f"{', '.join(written)} after: {err[:300]}"
        m = _ERROR.match(lines[0]) if len(lines) == 1 else None
        if m is None:
            return "bad-stderr", err[:500]
        return "input-error-" + _location(m.group("msg")), m.group("msg")
    if res.rc == 4 and case.argv[:1] != ["sweep"]:  # run --max-wall stopped the run (cli.EXIT_STOPPED)
        if len(lines) > 1:
            return "bad-stderr", err[:500]
        return _result_check(case, res, "ok-stopped", err[:300])
    if res.rc in (1, 4) and case.argv[:1] == ["sweep"]:  # 1: points failed, 4: only by their time limit
        recs = _points(root)
        bad = [r for r in recs if r.get("status") != "ok" and r.get("error_kind") not in ("input", "timeout")]
        if bad:
            return "internal-error", f"sweep point: {bad[0].get('error')}"
        if not recs:
            return "other-exit", f"exit 1 and no failed point: {err[:300]}"
        detail = "; ".join(sorted({f"{r.get('error_kind')}: {r.get('error')}" for r in recs
                                   if r.get("status") != "ok"}))[:500]
        return _result_check(case, res, "ok-points-failed", detail)
    if res.rc != 0:
        return "other-exit", f"exit {res.rc}: {err[:300]}"
    if err and not res.dry_run:
        return _result_check(case, res, "ok-with-stderr", err[:300])
    return _result_check(case, res, "ok", "")


def _result_check(case: Case, res: RunResult, outcome: str, detail: str) -> tuple[str, str]:
    root = res.sandbox or Path(".")
    if not res.dry_run and outcome == "ok":
        missing = [r for r in case.results if not (root / r).exists()]
        if missing:
            return "missing-result", f"exit 0 without {', '.join(missing)}"
    for rel in res.out_files:
        p = root / rel
        if p.suffix not in (".csv", ".json") or not p.is_file():
            continue
        nonfinite, negative = _bad_values(p)
        if nonfinite:
            return "nan-or-inf-in-result", f"{rel}: {', '.join(nonfinite[:5])}"
        if negative:
            return "negative-energy-in-result", f"{rel}: {', '.join(negative[:5])}"
    return outcome, detail


# ------------------------------------------------------------------------------------------------------------
# Signatures: failures grouped into bug classes
# ------------------------------------------------------------------------------------------------------------

_NORMALIZE = [
    (re.compile(r"/[^\s:'\"]+"), "PATH"),
    (re.compile(r"'[^']*'|\"[^\"]*\""), "'S'"),
    (re.compile(r"0x[0-9a-fA-F]+"), "N"),
    (re.compile(r"-?\d+(\.\d+)?([eE][-+]?\d+)?"), "N"),
    (re.compile(r"\s+"), " "),
]


def normalize(text: str) -> str:
    for pat, rep in _NORMALIZE:
        text = pat.sub(rep, text)
    return text.strip()[:160]


def _innermost_frame(log: str) -> str:
    """``archsim/x/y.py:function`` of the deepest archsim frame of a traceback."""
    frames = re.findall(r'File "([^"]*archsim/[^"]*)", line \d+, in (\S+)', log)
    frames = [(f, fn) for f, fn in frames if "/tests/" not in f]
    if not frames:
        return ""
    f, fn = frames[-1]
    return f"{f[f.rfind('archsim/'):]}:{fn}"


def signature(case: Case, res: RunResult, outcome: str, detail: str) -> str:
    """A short key that groups failures of the same cause: the exception, where it was raised, the command."""
    if outcome == "internal-error" and detail.startswith("sweep point: "):
        return f"{outcome}: in a sweep point: {normalize(detail.removeprefix('sweep point: '))[:100]} [{case.command}]"
    if outcome in ("traceback", "internal-error"):
        text = detail.removeprefix("archsim: internal error: ").split(" (a bug;")[0]
        where = _innermost_frame(res.crash_log or res.stderr)
        return f"{outcome}: {normalize(text.split(':', 1)[0])} at {where or '?'} [{case.command}]"
    if outcome == "hang":
        return f"hang [{case.command}]: {normalize(case.mutations[0] if case.mutations else case.seed)}"
    return f"{outcome} [{case.command}]: {normalize(detail)[:100]}"
