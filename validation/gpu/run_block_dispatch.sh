#!/bin/bash
# Block dispatch and launch overhead on the device machine (issue #14; docs/gpu.md "Time"):
#   bash validation/gpu/run_block_dispatch.sh     ($OUT receives block_dispatch.csv and block_starts_*.csv)
# Never changes clocks or other card settings.
set -u
OUT=${OUT:-/tmp/out}
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm --format=csv > "$OUT/block_dispatch_info.txt" 2>&1
nvcc -O3 -arch=sm_90 -o /tmp/block_dispatch "$HERE/block_dispatch.cu" && timeout 240 /tmp/block_dispatch "$OUT"
echo "rc=$?"
