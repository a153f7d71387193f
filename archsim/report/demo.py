"""The showcase (``make demo``): a Criteo-like workload on six systems, one table and one figure.

    python -m archsim.report.demo --out results/demo [--batches N] [--batch-size B] [-j JOBS]

Runs ``workloads/criteo_zipf.yaml`` (``--batches`` batches of ``--batch-size`` bags per table) on

=============  =================================================================================
``cpu_ddr4``   the CPU baseline: 40 cores, 60 MB LLC, 8 channels of DDR4-3200
``recnmp``     the same socket with RecNMP rank-level units (and rank caches) in its DIMMs
``recross``    ReCross: hot rows pooled at rank level, cold rows by units in the DRAM banks
``cxl_pool``   a DDR5 host with its tables on four CXL expanders behind a switch (Pond-style pooling)
``pifs_rec``   the same fabric with PIFS-Rec units in the switch, one per downstream port
``pifs_recross`` PIFS-Rec units in the switch over expanders whose DIMMs hold ReCross units (composed)
=============  =================================================================================

and writes into ``--out``: ``summary.csv`` (one row per system, ``system`` first, then every summary column;
the core columns of docs/metrics.md are filled on every row), ``compare.png`` and ``compare.pdf`` (batch
latency p50/p99, memory bandwidth, energy per lookup by what it paid for), ``runs/<system>/`` (each run's
config.yaml, stats.json and summary.csv); the table goes to stdout. The points run in parallel (``-j``).
"""

from __future__ import annotations

import argparse
import csv
import io
import math
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from archsim.core.files import atomic_write_text

#: (hwconfig, label in the table and the figure), in the order shown
SYSTEMS: tuple[tuple[str, str], ...] = (
    ("cpu_ddr4", "CPU (DDR4)"),
    ("recnmp", "RecNMP"),
    ("recross", "ReCross"),
    ("cxl_pool", "CXL pool"),
    ("pifs_rec", "PIFS-Rec"),
    ("pifs_recross", "PIFS+ReCross"),
)
WORKLOAD = "criteo_zipf"
BATCHES = 4
BATCH_SIZE = 96

#: energy per lookup by what it paid for: (label, summary columns added up); one colour each, the same on every
#: system. The groups add up to energy_per_lookup_nJ (any other kind goes to "other").
ENERGY_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("DRAM array (act, read, write)", ("energy_per_lookup_array_nJ",)),
    ("DRAM background + refresh", ("energy_per_lookup_background_nJ", "energy_per_lookup_refresh_nJ")),
    ("DRAM I/O", ("energy_per_lookup_io_nJ",)),
    ("CXL links", ("energy_per_lookup_link_nJ",)),
    ("caches (SRAM)", ("energy_per_lookup_sram_nJ",)),
    ("compute (pooling adds)", ("energy_per_lookup_compute_nJ",)),
)


def _run_one(point: tuple[str, int, int, int | None, str | None]) -> dict[str, Any]:
    from archsim.api import run

    hw, batches, batch_size, seed, out = point
    sets = [f"num_batches={batches}", f"batch_size={batch_size}"]
    res = run(hw, workload=WORKLOAD, workload_overrides=sets, seed=seed, out=out)
    return res.summary


def run_systems(batches: int = BATCHES, batch_size: int = BATCH_SIZE, jobs: int = 2, out: Path | None = None,
                seed: int | None = None, systems=SYSTEMS) -> list[dict[str, Any]]:
    """One summary row per system (``system`` and ``hwconfig`` first), in the order of ``systems``."""
    points = [(hw, batches, batch_size, seed, str(out / "runs" / hw) if out is not None else None)
              for hw, _ in systems]
    if jobs > 1:
        with ProcessPoolExecutor(max_workers=min(jobs, len(points))) as pool:
            # the slowest first, so that two workers finish together
            slow = ("cxl_pool", "pifs_rec", "pifs_recross")
            order = sorted(range(len(points)), key=lambda i: points[i][0] not in slow)
            futs = {i: pool.submit(_run_one, points[i]) for i in order}
            rows = [futs[i].result() for i in range(len(points))]
    else:
        rows = [_run_one(p) for p in points]
    return [{"system": label, "hwconfig": hw} | row for (hw, label), row in zip(systems, rows)]


def write_summary(rows: list[dict[str, Any]], path: Path) -> Path:
    """``summary.csv``: one row per system, the union of the columns in order of first appearance."""
    from archsim.report.output import _fmt

    cols: list[str] = []
    for r in rows:
        cols += [c for c in r if c not in cols]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(cols)
    for r in rows:
        w.writerow([_fmt(r[c]) if c in r else "" for c in cols])
    return atomic_write_text(path, buf.getvalue())


def energy_groups(row: dict[str, Any]) -> dict[str, float]:
    """Energy per lookup (nJ) of ``row`` by :data:`ENERGY_GROUPS`, plus ``other`` (the rest of the total)."""
    out = {label: sum(float(row.get(c) or 0.0) for c in cols) for label, cols in ENERGY_GROUPS}
    rest = float(row["energy_per_lookup_nJ"]) - sum(out.values())
    out["other"] = rest if rest > 1e-9 * float(row["energy_per_lookup_nJ"]) else 0.0
    return out


def figure(rows: list[dict[str, Any]]):
    """Three panels side by side, one horizontal bar (group) per system, systems top to bottom in the given
    order: batch latency p50 and p99, memory bandwidth, energy per lookup stacked by :data:`ENERGY_GROUPS`."""
    import numpy as np

    from archsim.report.plots import OKABE_ITO, paper_style

    paper_style()
    import matplotlib.pyplot as plt

    n = len(rows)
    pos = np.arange(n)
    fig, axes = plt.subplots(1, 3, figsize=(7.0, 0.42 * n + 0.9), sharey=True,
                             gridspec_kw={"wspace": 0.12, "width_ratios": [1, 1, 1.25]})
    edge = {"edgecolor": "black", "linewidth": 0.4}
    small = {"fontsize": 7, "va": "center"}

    ax = axes[0]
    h = 0.38
    p50 = [r["batch_latency_p50_us"] for r in rows]
    p99 = [r["batch_latency_p99_us"] for r in rows]
    ax.barh(pos - h / 2, p50, h, color="#7f7f7f", label="p50", **edge)
    ax.barh(pos + h / 2, p99, h, color="#e0e0e0", hatch="////", label="p99", **edge)
    ax.set_xlabel("batch latency (µs)")
    ax.legend(frameon=False, loc="best", handlelength=1.2, fontsize=7)

    ax = axes[1]
    bw = [r["mem_bandwidth_GBps"] for r in rows]
    ax.barh(pos, bw, 0.6, color="#a6a6a6", **edge)
    for y, v in zip(pos, bw):
        ax.text(v, y, f" {v:.0f}", ha="left", **small)
    ax.set_xlabel("memory bandwidth (GB/s)")

    ax = axes[2]
    groups = [energy_groups(r) for r in rows]
    labels = [g for g, _ in ENERGY_GROUPS] + (["other"] if any(g["other"] for g in groups) else [])
    hatches = ["", "////", "....", "xxxx", "\\\\\\\\", "", ""]
    left = np.zeros(n)
    for i, label in enumerate(labels):
        vals = np.array([g[label] for g in groups])
        ax.barh(pos, vals, 0.6, left=left, color=OKABE_ITO[i % len(OKABE_ITO)], hatch=hatches[i % 7],
                label=label, **edge)
        left += vals
    for y, v in zip(pos, left):
        ax.text(v, y, f" {v:.0f}", ha="left", **small)
    ax.set_xlabel("energy per lookup (nJ)")

    axes[0].set_yticks(pos, [r["system"] for r in rows])
    axes[0].invert_yaxis()  # the first system on top
    for ax, tag in zip(axes, "abc"):
        ax.tick_params(axis="y", length=0)
        ax.grid(axis="x", linewidth=0.3, alpha=0.6)
        ax.set_axisbelow(True)
        ax.margins(x=0.16)
        ax.set_xlim(left=0)
        ax.set_title(f"({tag})", fontsize=9, loc="left")
    handles, hl = axes[2].get_legend_handles_labels()
    fig.legend(handles, hl, loc="upper center", ncol=3, frameon=False, fontsize=7.5,
               bbox_to_anchor=(0.5, -0.02), handlelength=1.6, columnspacing=1.2)
    return fig


def print_table(rows: list[dict[str, Any]], title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=title)
    cols = [
        ("system", "system", None),
        ("Glookup\n/s", "lookups_per_s", 1e9),
        ("batch\np50 µs", "batch_latency_p50_us", 1),
        ("batch\np99 µs", "batch_latency_p99_us", 1),
        ("bag\np50 µs", "bag_latency_p50_ns", 1e3),
        ("memory\nGB/s", "mem_bandwidth_GBps", 1),
        ("links\nMB", "bytes_link_total", 1e6),
        ("energy\nnJ/lookup", "energy_per_lookup_nJ", 1),
        ("of which\ndynamic", "energy_per_lookup_dynamic_nJ", 1),
        ("back-\nground", "energy_per_lookup_background_nJ", 1),
        ("\nrefresh", "energy_per_lookup_refresh_nJ", 1),
    ]
    for head, _, scale in cols:
        t.add_column(head, justify="left" if scale is None else "right", no_wrap=True)
    for r in rows:
        cells = []
        for _, key, scale in cols:
            v = r.get(key)
            if scale is None:
                cells.append(str(v))
            elif v is None or (isinstance(v, float) and math.isnan(v)):
                cells.append("-")
            else:
                x = v / scale
                cells.append(f"{x:.3g}" if abs(x) < 100 else f"{x:,.0f}")
        t.add_row(*cells)
    Console(width=max(Console().width, 120)).print(t)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m archsim.report.demo", description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="results/demo", help="output directory (default results/demo)")
    ap.add_argument("--batches", type=int, default=BATCHES, help=f"batches (default {BATCHES})")
    ap.add_argument("--batch-size", type=int, default=BATCH_SIZE, help=f"bags per table and batch "
                                                                         f"(default {BATCH_SIZE})")
    ap.add_argument("-j", "--jobs", type=int, default=2, help="systems run in parallel (default 2)")
    ap.add_argument("--seed", type=int, default=None, help="the workload's seed (default: its own)")
    args = ap.parse_args(argv)
    if args.batches < 1 or args.batch_size < 1 or args.jobs < 1:
        ap.error("--batches, --batch-size and --jobs must be at least 1")
    from archsim.report.figures import save

    out = Path(args.out)
    t0 = time.perf_counter()
    rows = run_systems(args.batches, args.batch_size, args.jobs, out, args.seed)
    write_summary(rows, out / "summary.csv")
    save(figure(rows), out / "compare")
    wall = time.perf_counter() - t0
    print_table(rows, f"{WORKLOAD}: {args.batches} batches of {args.batch_size} bags x 8 tables")
    print(f"results: {out}/summary.csv, {out}/compare.png (.pdf), {out}/runs/ ({wall:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
