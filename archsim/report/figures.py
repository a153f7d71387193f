"""Figures for papers from run and sweep results: line, bar, stacked-bar (energy breakdown) and latency CDFs.

All figures use :func:`archsim.report.plots.paper_style` (serif fonts, 8-9 pt text at a single-column width of
3.4 in, the Okabe-Ito colour-blind-safe palette, markers and line styles that survive greyscale printing) and
are written as both PDF (vector, for the paper) and PNG (for quick looks).

Where several result rows share an x value and hue (other axes of a sweep vary), line and bar plots show the
mean and, as an error bar, the minimum-maximum range over those rows.

Python API::

    from archsim.report import figures as F
    df = F.load_results("results/sweep_small")            # a sweep dir, a CSV/Parquet file, or a run dir
    fig = F.line(df, x="hw.dram.org.channels", y="lookups_per_s", hue="workload.batch_size")
    F.save(fig, "docs/figures/throughput")                # throughput.pdf and throughput.png
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from archsim.config import InputError
from archsim.core.files import atomic_write_with
from archsim.report.plots import OKABE_ITO, paper_style

MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]
LINESTYLES = ["-", "--", "-.", ":"]

#: readable axis labels for common columns (others are shown as they are)
LABELS = {
    "lookups_per_s": "lookups / s",
    "bags_per_s": "bags / s",
    "bandwidth_GBps": "bandwidth (GB/s)",
    "dram_bandwidth_GBps": "DRAM bandwidth (GB/s)",
    "read_latency_mean_ns": "mean read latency (ns)",
    "batch_latency_mean_us": "mean batch latency (us)",
    "batch_latency_p99_us": "p99 batch latency (us)",
    "bag_latency_p99_ns": "p99 bag latency (ns)",
    "energy_per_lookup_nJ": "energy per lookup (nJ)",
    "llc_hit_rate": "LLC hit rate",
    "row_hit_rate": "row-buffer hit rate",
}


def _label(col: str) -> str:
    if col in LABELS:
        return LABELS[col]
    return col.split(".")[-1].replace("_", " ") if col.startswith(("hw.", "workload.")) else col


def load_results(path: str | Path):
    """A DataFrame of results: a sweep directory (results.parquet or results.csv), a CSV or Parquet file, or
    one or more run directories (their summary.csv rows)."""
    import pandas as pd

    p = Path(path)
    if p.is_dir():
        if (p / "results.parquet").exists():
            try:
                return pd.read_parquet(p / "results.parquet")
            except ImportError:
                pass
        if (p / "results.csv").exists():
            return pd.read_csv(p / "results.csv")
        if (p / "summary.csv").exists():
            df = pd.read_csv(p / "summary.csv")
            df["run"] = p.name
            return df
        raise InputError(f"{p}: no results.csv, results.parquet or summary.csv in this directory")
    if not p.exists():
        raise InputError(f"{p}: file not found")
    if p.suffix == ".parquet":
        return pd.read_parquet(p)
    if p.suffix == ".csv":
        return pd.read_csv(p)
    raise InputError(f"{p}: expected a results directory, a .csv or a .parquet file")


def _check_cols(df, cols: Sequence[str], source: str = "results") -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise InputError(f"{source}: no column {missing[0]!r} (columns: {', '.join(map(str, df.columns))})")


def _ok_rows(df):
    return df[df["status"] == "ok"] if "status" in df.columns else df


def _figure(width: float = 3.4, height: float = 2.4):
    paper_style()
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(width, height))


def _groups(df, hue: str | None):
    if hue is None:
        return [(None, df)]
    return list(df.groupby(hue, sort=True))


def line(df, x: str, y: str, hue: str | None = None, logx: bool = False, logy: bool = False, ax=None):
    """y against x, one line per hue value; mean over repeated (x, hue) with a min-max error bar."""
    _check_cols(df, [x, y] + ([hue] if hue else []))
    df = _ok_rows(df)
    fig, ax = _figure() if ax is None else (ax.figure, ax)
    for i, (h, g) in enumerate(_groups(df, hue)):
        agg = g.groupby(x, sort=True)[y].agg(["mean", "min", "max"])
        xs = agg.index.to_numpy()
        err = None
        if (agg["max"] > agg["min"]).any():
            err = [agg["mean"] - agg["min"], agg["max"] - agg["mean"]]
        ax.errorbar(xs, agg["mean"], yerr=err, marker=MARKERS[i % len(MARKERS)], markersize=3.5,
                    linestyle=LINESTYLES[i % len(LINESTYLES)], linewidth=1.2, capsize=2,
                    color=OKABE_ITO[i % len(OKABE_ITO)], label=None if h is None else f"{_fmt(h)}")
    numeric = df[x].dtype.kind in "iuf"
    _decorate(ax, x, y, hue, logx, logy, sorted(df[x].unique()) if numeric else None)
    return fig


def bar(df, x: str, y: str, hue: str | None = None, logy: bool = False, ax=None):
    """Grouped bars: one group per x value, one bar per hue value (mean, min-max error bar)."""
    import numpy as np

    _check_cols(df, [x, y] + ([hue] if hue else []))
    df = _ok_rows(df)
    fig, ax = _figure() if ax is None else (ax.figure, ax)
    xs = sorted(df[x].unique())
    groups = _groups(df, hue)
    width = 0.8 / len(groups)
    pos = np.arange(len(xs))
    hatches = ["", "//", "..", "xx", "\\\\", "oo"]
    for i, (h, g) in enumerate(groups):
        agg = g.groupby(x)[y].agg(["mean", "min", "max"]).reindex(xs)
        err = [agg["mean"] - agg["min"], agg["max"] - agg["mean"]] if (agg["max"] > agg["min"]).any() else None
        ax.bar(pos + (i - (len(groups) - 1) / 2) * width, agg["mean"], width, yerr=err, capsize=2,
               color=OKABE_ITO[i % len(OKABE_ITO)], hatch=hatches[i % len(hatches)], edgecolor="black",
               linewidth=0.4, label=None if h is None else f"{_fmt(h)}")
    ax.set_xticks(pos, [_fmt(v) for v in xs])
    _decorate(ax, x, y, hue, False, logy)
    return fig


def stacked(df, x: str, ys: Sequence[str] | str, ax=None, strip: str | None = None):
    """Stacked bars of the columns ``ys`` (or a glob such as ``energy_per_lookup_dram_*_nJ``) per x value:
    the energy breakdown by component or kind."""
    import numpy as np

    if isinstance(ys, str):
        pattern = ys
        ys = [c for c in df.columns if fnmatch.fnmatchcase(str(c), pattern)]
        if not ys:
            raise InputError(f"results: no column matches {pattern!r}")
    _check_cols(df, [x, *ys])
    df = _ok_rows(df)
    fig, ax = _figure() if ax is None else (ax.figure, ax)
    agg = df.groupby(x, sort=True)[list(ys)].mean()
    agg = agg.fillna(0.0)
    ys = [c for c in ys if (agg[c] != 0).any()] or list(ys)  # a kind that is zero everywhere is not drawn
    pos = np.arange(len(agg.index))
    bottom = np.zeros(len(pos))
    hatches = ["", "//", "..", "xx", "\\\\", "oo", "++", "--"]
    for i, col in enumerate(ys):
        vals = agg[col].to_numpy()
        ax.bar(pos, vals, 0.6, bottom=bottom, color=OKABE_ITO[i % len(OKABE_ITO)], edgecolor="black",
               linewidth=0.4, hatch=hatches[i % len(hatches)], label=_short(col, ys, strip))
        bottom = bottom + vals
    ax.set_xticks(pos, [_fmt(v) for v in agg.index])
    ax.set_xlabel(_label(x))
    ax.set_ylabel(_common_label(ys))
    ax.legend(frameon=False, ncol=1, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.grid(axis="y", linewidth=0.3, alpha=0.6)
    return fig


def cdf(hists: dict[str, Any], xlabel: str = "latency (ns)", scale: float = 1e-3, logx: bool = False, ax=None):
    """Step CDFs of histograms (:class:`~archsim.core.stats.Histogram` or their stored dicts), one per label;
    values are multiplied by ``scale`` (ps to ns by default)."""
    from archsim.core.stats import Histogram

    fig, ax = _figure() if ax is None else (ax.figure, ax)
    for i, (label, h) in enumerate(hists.items()):
        if isinstance(h, dict):
            h = Histogram.from_dict(h.get("_hist", h))
        if not h.count:
            continue
        xs, ys = h.cdf()
        ax.step(xs * scale, ys, where="post", color=OKABE_ITO[i % len(OKABE_ITO)],
                linestyle=LINESTYLES[i % len(LINESTYLES)], linewidth=1.2, label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("fraction")
    ax.set_ylim(0, 1.02)
    if logx:
        ax.set_xscale("log")
    ax.grid(linewidth=0.3, alpha=0.6)
    if len(hists) > 1:
        ax.legend(frameon=False)
    return fig


def run_histogram(run_dir: str | Path, key: str) -> Any:
    """The histogram ``key`` (a dotted stats name, e.g. ``host.bag_latency_ps``) of a run directory."""
    p = Path(run_dir) / "stats.json"
    if not p.exists():
        raise InputError(f"{p}: file not found (a run directory is needed for --kind cdf)")
    node: Any = json.loads(p.read_text())["system"]
    for part in key.removeprefix("system.").split("."):
        if not isinstance(node, dict) or part not in node:
            raise InputError(f"{p}: no histogram {key!r}")
        node = node[part]
    if not isinstance(node, dict) or "_hist" not in node:
        raise InputError(f"{p}: {key!r} is not a histogram")
    return node


def save(fig, base: str | Path) -> list[Path]:
    """Write ``base.pdf`` and ``base.png``; returns the paths."""
    import matplotlib.pyplot as plt

    base = Path(base)
    base.parent.mkdir(parents=True, exist_ok=True)
    out = []
    for ext in ("pdf", "png"):
        p = base.with_suffix(f".{ext}")
        atomic_write_with(p, lambda tmp, ext=ext: fig.savefig(tmp, format=ext, metadata={"CreationDate": None}
                                                              if ext == "pdf" else None))
        out.append(p)
    plt.close(fig)
    return out


# ------------------------------------------------------------------------------------------------------------
def _fmt(v: Any) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def _decorate(ax, x: str, y: str, hue: str | None, logx: bool, logy: bool, xs=None) -> None:
    from matplotlib.ticker import EngFormatter, FixedLocator, FuncFormatter

    ax.set_xlabel(_label(x))
    ax.set_ylabel(_label(y))
    if logx:
        ax.set_xscale("log", base=2)
    if logy:
        ax.set_yscale("log")
    if xs is not None and len(xs) <= 12:
        # ticks at the swept values, written as they are (2, 4, 8 rather than 2^1 or 1e0)
        ax.xaxis.set_major_locator(FixedLocator(list(xs)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: _fmt(float(v))))
        ax.xaxis.set_minor_locator(FixedLocator([]))
    lo, hi = ax.get_ylim()
    if not logy and max(abs(lo), abs(hi)) >= 1e4:
        ax.yaxis.set_major_formatter(EngFormatter(sep=" "))  # 1.5 G rather than an offset 1e9
    ax.grid(linewidth=0.3, alpha=0.6)
    if hue is not None:
        ax.legend(title=_label(hue), frameon=False, title_fontsize=8)


def _short(col: str, cols: Sequence[str], strip: str | None) -> str:
    if strip:
        return col.replace(strip, "")
    import os

    pre = os.path.commonprefix(list(cols))
    suf = os.path.commonprefix([c[::-1] for c in cols])[::-1]
    s = col[len(pre):len(col) - len(suf)] if len(cols) > 1 else col
    return s.replace("_", " ") or col


def _common_label(cols: Sequence[str]) -> str:
    if all(c.startswith("energy_per_lookup") for c in cols):
        return "energy per lookup (nJ)"
    if all(c.startswith("energy") for c in cols):
        return "energy (nJ)"
    return ""
