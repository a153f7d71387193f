#!/bin/bash
# Run-to-run spread of the L2 hit rate under one cache history: validation/gpu/run_l2_refcases.sh (Nsight Compute,
# application replay, the 15th launch) on the cases of validation/gpu/data/repeat_cases.csv (case 22: 512 bags,
# a 42 MB set close to the L2's size; case 8 as a control), REPEAT times, each a fresh process (fresh allocations,
# so the rows land on other physical pages). Results: $OUT/repeat<k>/l2ref/ncu_l2ref.csv.
set -u
OUT=${OUT:-/tmp/out}
HERE=$(cd "$(dirname "$0")" && pwd)
M=gpu__time_duration.sum,lts__t_sector_hit_rate.pct,l1tex__t_sector_hit_rate.pct,dram__bytes_read.sum
for k in $(seq 1 ${REPEAT:-3}); do
  R=$OUT/repeat$k/l2ref; mkdir -p $R
  timeout 150 ncu --replay-mode application --kernel-name regex:EmbeddingBag_updateOutput --clock-control none \
    --cache-control none --metrics "$M" --nvtx --nvtx-include "prof/" -f -o /tmp/l2rep$k \
    python3 "$HERE/embbag_extra.py" --ncu --cases-csv "$HERE/data/repeat_cases.csv" --tag ncu_order --out $R
  echo "run $k rc=$?"
  ncu -i /tmp/l2rep$k.ncu-rep --csv --page raw > $R/ncu_l2ref.csv 2>&1
  nvidia-smi --query-gpu=name --format=csv,noheader > $OUT/repeat$k/gpu.txt
done
