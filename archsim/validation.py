"""Validation against the reference simulators (DRAMsim3, Ramulator 2) on the shared traces.

Each row of ``validation/reference/dram/reference.csv`` names a simulator, a configuration, a trace and a window.
The matching archsim configuration (``hwconfigs/dram_*``) runs the same trace driven the same way, and each
metric is compared with its stated tolerance. ``archsim validate`` prints the table and can write it as
markdown (docs/validation.md is generated this way).
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

# reference configuration name -> archsim hwconfig (relative to the repository root)
CONFIGS = {
    "DDR4_8Gb_x8_3200": "hwconfigs/dram_ddr4_dramsim3.yaml",
    "HBM2_8Gb_x128": "hwconfigs/dram_hbm2_dramsim3.yaml",
    "DDR4_8Gb_x8_3200AA": "hwconfigs/dram_ddr4_ramulator2.yaml",
}

# (metric column, kind, tolerance): kind "rel" = relative error, "abs" = absolute difference
TOLERANCES = {
    "DRAMsim3": [("bandwidth_GBps", "rel", 0.05), ("read_latency_mean_ns", "rel", 0.10),
                 ("row_hit_rate", "abs", 0.03), ("energy_total_nJ", "rel", 0.10)],
    "Ramulator2": [("bandwidth_GBps", "rel", 0.10)],
}

REPO_ROOT = Path(__file__).resolve().parent.parent


def reference_dir() -> Path:
    """The shipped copy of the reference data (``validation/reference``), else ``../shared/reference``."""
    for cand in (REPO_ROOT / "validation" / "reference", REPO_ROOT.parent / "shared" / "reference"):
        if (cand / "dram" / "reference.csv").is_file():
            return cand
    from archsim.config import InputError

    raise InputError("no reference data found (validation/reference/dram/reference.csv)")


@dataclass
class Check:
    case: str
    metric: str
    reference: float
    archsim: float
    error: float
    tolerance: float
    kind: str

    @property
    def ok(self) -> bool:
        return abs(self.error) <= self.tolerance

    def error_text(self) -> str:
        return f"{self.error * 100:+.2f}%" if self.kind == "rel" else f"{self.error:+.4f}"

    def tol_text(self) -> str:
        return f"{self.tolerance * 100:.0f}%" if self.kind == "rel" else f"{self.tolerance:.2f}"


def dram_cases(ref_dir: Path | None = None) -> list[dict[str, str]]:
    """The reference rows (one per simulator, config, trace, window)."""
    ref_dir = ref_dir or reference_dir()
    with open(ref_dir / "dram" / "reference.csv") as f:
        return list(csv.DictReader(f))


def case_name(row: dict[str, str]) -> str:
    return f"{row['simulator']}/{row['config']}/{row['trace']}/w{row['window']}"


def run_case(row: dict[str, str], ref_dir: Path | None = None) -> tuple[dict, list[Check]]:
    """Run one reference case and compare its metrics; returns (archsim summary, checks)."""
    from archsim.api import run

    ref_dir = ref_dir or reference_dir()
    trace = ref_dir / "dram" / "traces" / f"{row['trace']}.trace.gz"
    res = run(REPO_ROOT / CONFIGS[row["config"]], trace=trace, window=int(row["window"]))
    checks = []
    for metric, kind, tol in TOLERANCES[row["simulator"]]:
        if not row.get(metric):
            continue
        ref = float(row[metric])
        got = float(res.summary[metric])
        err = (got / ref - 1.0) if kind == "rel" else (got - ref)
        checks.append(Check(case_name(row), metric, ref, got, err, tol, kind))
    return res.summary, checks


def run_all(select: Callable[[dict[str, str]], bool] | None = None) -> Iterator[Check]:
    for row in dram_cases():
        if select is None or select(row):
            yield from run_case(row)[1]


def markdown_table(checks: list[Check]) -> str:
    lines = ["| case | metric | reference | archsim | error | tolerance | ok |",
             "|---|---|---:|---:|---:|---:|:---:|"]
    for c in checks:
        lines.append(f"| {c.case} | {c.metric} | {c.reference:.6g} | {c.archsim:.6g} | {c.error_text()} "
                     f"| {c.tol_text()} | {'yes' if c.ok else '**no**'} |")
    return "\n".join(lines) + "\n"
