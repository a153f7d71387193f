"""Makes docs/figures/cpu_ddr4_channels.{png,pdf} and docs/figures/cpu_ddr4_energy.{png,pdf}.

    python examples/fig_cpu_ddr4.py [-j 2]

Runs examples/sweep_fig_cpu.yaml (12 points; finished points are reused from results/sweep_fig_cpu/), then
plots lookups per second against DDR4 channels for three Zipf exponents, and the energy per lookup split by
component and kind at Zipf s = 1.0.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from archsim.report import figures as F
from archsim.sweep import run_sweep

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-j", type=int, default=2)
    ap.add_argument("--out", default=str(ROOT / "docs" / "figures"))
    args = ap.parse_args()
    df = run_sweep(HERE / "sweep_fig_cpu.yaml", jobs=args.j, out=ROOT / "results" / "sweep_fig_cpu")
    out = Path(args.out)
    fig = F.line(df, x="hw.dram.org.channels", y="lookups_per_s", hue="workload.defaults.index.s", logx=True)
    fig.axes[0].get_legend().set_title("Zipf s")
    print(F.save(fig, out / "cpu_ddr4_channels"))
    one = df[df["workload.defaults.index.s"] == 1.0]
    fig = F.stacked(one, x="hw.dram.org.channels", ys="energy_per_lookup_*_*_nJ")
    print(F.save(fig, out / "cpu_ddr4_energy"))


if __name__ == "__main__":
    main()
