"""The MICRO 2024 artifact's configuration on a GPU hwconfig (docs/gpu.md, "The MICRO 2024 configuration"):
12 tables of 500,000 rows, dim 128 fp32, pooling 150, batch 2,048, the 60,000 hottest rows pinned in the L2.
The tables are alike, so one is simulated; each variant on a fresh GPU after two warm launches of other
batches, the L2 not emptied. Prints the markdown table.

    .venv/bin/python validation/gpu/micro2024.py [hwconfigs/gpu_h100.yaml]
"""

from __future__ import annotations

import sys

from archsim.gpu.embbag import EmbeddingBagCase, EmbeddingBagModel, gpu_hbm_curve
from archsim.gpu.validate import load_gpu

VARIANTS = [
    ("uniform", "uniform", {}),
    ("zipf 1.05", "zipf1.05", {}),
    ("zipf 1.05, 60,000 hottest rows pinned", "zipf1.05", {"pin_hot_rows": 60_000}),
    ("zipf 1.05, software prefetch of 4 more rows (6 in flight)", "zipf1.05", {"prefetch_distance": 4}),
    ("uniform, the same prefetch", "uniform", {"prefetch_distance": 4}),
    ("zipf 1.05, 64 warps per SM (occupancy)", "zipf1.05", {"warps_per_sm": 64}),
    ("zipf 1.05, all three", "zipf1.05", {"pin_hot_rows": 60_000, "prefetch_distance": 4, "warps_per_sm": 64}),
]


def main(config: str = "hwconfigs/gpu_h100.yaml") -> None:
    spec0, hbm = load_gpu(config)
    curve = gpu_hbm_curve(spec0, hbm)
    print("| variant | predicted us | L2 hit % |")
    print("|---|---:|---:|")
    for name, dist, knobs in VARIANTS:
        spec = spec0.model_copy(update={"kernel": spec0.kernel.model_copy(update=knobs)})
        res = EmbeddingBagModel(spec, hbm_curve=curve).run_case(
            EmbeddingBagCase(500_000, 128, "float32", 2048, 150, dist), warm_launches=2)
        print(f"| {name} | {res['pred_kernel_time_ns'] / 1000:.1f} | {res['pred_l2_hit_pct']:.1f} |", flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
