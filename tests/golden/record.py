"""Record (or check) the golden results of every shipped hwconfig: the regression guard of refactors.

Each hwconfig runs a small Criteo-like workload (criteo_zipf, 1 batch of 32 bags) and, when it has no host
section of its own, a 2,000-request slice of the reference stream trace too. The summary row (wall time aside)
and the whole stats.json are stored under ``tests/golden/<case>.json.gz`` as canonical JSON; the test
(`tests/test_golden.py`) runs the same cases and compares byte for byte.

    python tests/golden/record.py            # rewrite every golden file
    python tests/golden/record.py --check    # compare, print the first difference per case

A change that moves results on purpose (a model fix) re-records in the same commit and says in its message
which columns moved and why.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).resolve().parent
WORKLOAD = ROOT / "workloads" / "criteo_zipf.yaml"
WORKLOAD_SETS = ["num_batches=1", "batch_size=32"]
TRACE_REQUESTS = 2000
VOLATILE = ("wall_time_s",)


def _clean(v):
    if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
        return None
    if isinstance(v, dict):
        return {str(k): _clean(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_clean(x) for x in v]
    return v


def cases() -> list[tuple[str, Path, str]]:
    """(case name, hwconfig, mode) for every shipped hwconfig; mode ``workload`` or ``trace``."""
    out = []
    for hw in sorted((ROOT / "hwconfigs").glob("*.yaml")):
        out.append((f"{hw.stem}__criteo", hw, "workload"))
        if hw.stem.startswith("dram_"):
            out.append((f"{hw.stem}__trace", hw, "trace"))
    return out


def _trace_slice(tmp: Path) -> Path:
    src = ROOT / "validation" / "reference" / "dram" / "traces" / "stream_r_100k.trace.gz"
    dst = tmp / "stream_2k.trace"
    with gzip.open(src, "rt") as f, open(dst, "w") as g:
        for i, line in enumerate(f):
            if i >= TRACE_REQUESTS:
                break
            g.write(line)
    return dst


def result_of(hw: Path, mode: str, tmp: Path) -> dict:
    """The canonical result of one case: summary (volatile columns dropped) and stats."""
    from archsim.api import run

    if mode == "trace":
        res = run(str(hw), trace=_trace_slice(tmp), window=0)
    else:
        res = run(str(hw), workload=str(WORKLOAD), workload_overrides=WORKLOAD_SETS)
    summary = {k: v for k, v in res.summary.items() if k not in VOLATILE}
    stats = dict(res.stats)
    stats["run"] = {k: (Path(v).name if k in ("trace", "workload") else v) for k, v in stats["run"].items()}
    return _clean({"summary": summary, "stats": stats})


def canonical(obj: dict) -> bytes:
    return json.dumps(obj, sort_keys=True, indent=0).encode()


def load(case: str) -> dict | None:
    p = GOLDEN / f"{case}.json.gz"
    if not p.exists():
        return None
    return json.loads(gzip.decompress(p.read_bytes()))


def first_difference(a, b, path: str = "") -> str | None:
    """The key path of the first difference between two JSON values, with both values."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if k not in a or k not in b:
                return f"{path}.{k}: only in {'recorded' if k in a else 'new'}"
            d = first_difference(a[k], b[k], f"{path}.{k}")
            if d:
                return d
        return None
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return f"{path}: length {len(a)} != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            d = first_difference(x, y, f"{path}[{i}]")
            if d:
                return d
        return None
    return None if a == b and type(a) is type(b) else f"{path}: recorded {a!r}, now {b!r}"


def main(argv: list[str] | None = None) -> int:
    import tempfile

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="compare with the recorded files instead of writing")
    ap.add_argument("--only", default="", help="substring of case names")
    args = ap.parse_args(argv)
    bad = 0
    with tempfile.TemporaryDirectory() as td:
        for case, hw, mode in cases():
            if args.only not in case:
                continue
            now = result_of(hw, mode, Path(td))
            if args.check:
                old = load(case)
                d = "no recorded file" if old is None else first_difference(old, json.loads(canonical(now)))
                print(f"{case:44s} {'ok' if d is None else d}")
                bad += d is not None
            else:
                (GOLDEN / f"{case}.json.gz").write_bytes(gzip.compress(canonical(now), mtime=0))
                print(f"recorded {case}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
