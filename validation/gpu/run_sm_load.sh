#!/bin/bash
# How a launch's time depends on the warps each SM holds (sixth session, issue #14): sm_load.cu (an EmbeddingBag of
# PyTorch's shape with per-warp %globaltimer stamps, SM and warp slot) at 128 to 1,584 bags of n10's table, then
# PyTorch's own kernel on the same batch sizes under Nsight Compute (run_warp_stalls.sh on
# data/sm_load_cases.csv: the sub-partitions' active cycles, min, mean and max). $OUT receives sm_load.csv,
# sm_load_warps.tgz (sm_load_warps_<bags>.csv) and stalls/. Never changes clocks or other card settings.
set -u
OUT=${OUT:-/tmp/out}
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm --format=csv > "$OUT/sm_load_info.txt" 2>&1
mkdir -p /tmp/sm_load_out
nvcc -O3 -arch=sm_90 -Xptxas -v -o /tmp/sm_load "$HERE/sm_load.cu" > "$OUT/sm_load_build.txt" 2>&1 && timeout 200 /tmp/sm_load /tmp/sm_load_out
echo "rc=$?"
cp /tmp/sm_load_out/sm_load.csv "$OUT/"
tar czf "$OUT/sm_load_warps.tgz" -C /tmp/sm_load_out $(cd /tmp/sm_load_out && ls sm_load_warps_*.csv)
CASES="$HERE/data/sm_load_cases.csv" bash "$HERE/run_warp_stalls.sh"
