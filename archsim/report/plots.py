"""Figures in a paper style: serif fonts, readable sizes, a colour-blind-safe palette (Okabe-Ito)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from archsim.core.files import atomic_write_with

OKABE_ITO = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]


def paper_style() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({
        "font.family": "serif", "font.size": 9, "axes.labelsize": 9, "legend.fontsize": 8,
        "xtick.labelsize": 8, "ytick.labelsize": 8, "axes.spines.top": False, "axes.spines.right": False,
        "axes.prop_cycle": matplotlib.cycler(color=OKABE_ITO), "figure.dpi": 200, "savefig.bbox": "tight",
    })


def latency_cdf_png(result: Any, path: str | Path) -> Path:
    """Read-latency CDF of a memory-trace run, from the stored histogram."""
    from archsim.core.stats import Histogram

    paper_style()
    import matplotlib.pyplot as plt

    raw = result.stats["system"]
    hist = None
    node = raw.get("dram", {})
    h = node.get("read_latency_ps")
    if isinstance(h, dict) and "_hist" in h:
        hist = Histogram.from_dict(h["_hist"])
    fig, ax = plt.subplots(figsize=(3.4, 2.4))
    if hist is not None and hist.count:
        xs, ys = hist.cdf()
        ax.step(xs / 1000.0, ys, where="post")
    ax.set_xlabel("read latency (ns)")
    ax.set_ylabel("fraction of reads")
    ax.set_ylim(0, 1.02)
    ax.set_title(result.name, fontsize=9)
    path = Path(path)
    atomic_write_with(path, lambda tmp: fig.savefig(tmp, format=path.suffix.lstrip(".") or "png"))
    plt.close(fig)
    return path
