#!/bin/bash
# The reference's 12 EmbeddingBag cases (validation/reference/gpu/h100_embedding_bag.csv: rows, dim, dtype, batch,
# pooling, dist) under Nsight Compute with APPLICATION replay: every pass reruns the whole script, so the kernel
# time, the L2 hit rate and the DRAM bytes of the marked launch (the 15th, after 14 steady-state launches) all
# come from the same cache history (kernel replay, the reference's protocol, restores memory between passes and
# leaves the L2 in another state for some of them: docs/gpu.md, "The measurement protocol").
# Results: $OUT/l2ref/ncu_l2ref.csv (raw page) and ncu_order.json.
set -u
OUT=${OUT:-/tmp/out}; R=$OUT/l2ref; mkdir -p $R
HERE=$(cd "$(dirname "$0")" && pwd)
M=gpu__time_duration.sum,lts__t_sector_hit_rate.pct,l1tex__t_sector_hit_rate.pct,dram__bytes_read.sum
timeout 480 ncu --replay-mode application --kernel-name regex:EmbeddingBag_updateOutput --clock-control none \
  --cache-control none --metrics "$M" --nvtx --nvtx-include "prof/" -f -o /tmp/l2ref \
  python3 "$HERE/embbag_extra.py" --ncu --cases-csv "$HERE/../reference/gpu/h100_embedding_bag.csv" --tag ncu_order --out $R
echo "rc=$?"
ncu -i /tmp/l2ref.ncu-rep --csv --page raw > $R/ncu_l2ref.csv 2>&1
grep -c EmbeddingBag $R/ncu_l2ref.csv
