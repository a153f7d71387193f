#!/bin/bash
# The reference's EmbeddingBag cases (rows, dim, dtype, batch, pooling, dist of
# validation/reference/gpu/h100_embedding_bag.csv) timed on whatever GPU the device machine has (an H200 for
# this script's purpose): CUPTI kernel durations, median of 50 launches cycling 8 batches after 10 warm ones
# (embbag_extra.py's protocol, not Nsight Compute's). A check of gpu_h200.yaml's predictions, nothing fitted.
set -u
OUT=${OUT:-/tmp/out}
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm,clocks.max.mem --format=csv > "$OUT/gpu_info.txt" 2>&1
cat "$OUT/gpu_info.txt"
timeout 400 python3 "$HERE/embbag_extra.py" --cases-csv "$HERE/../reference/gpu/h100_embedding_bag.csv" \
  --tag refcases --out "$OUT"
echo "rc=$?"
