#!/bin/bash
# Zero-copy host reads and peer (NVLink) reads on the device machine, in one call (issue #14, item 4):
#   bash validation/gpu/run_remote.sh      (on a machine with one or two GPUs; $OUT receives the results)
# remote_read.cu: pointer chase and random 128-byte line reads from local HBM, pinned host memory and, with two
# GPUs, the other GPU's HBM; embbag_extra.py --cases hostmem: PyTorch's EmbeddingBag on a table in pinned host
# memory (and HBM counterparts), and the pinned copy bandwidth. Never changes clocks or other card settings.
set -u
OUT=${OUT:-/tmp/out}
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$OUT"
{ nvidia-smi --query-gpu=name,pci.bus_id,pcie.link.gen.current,pcie.link.width.current --format=csv;
  nvidia-smi topo -m; lscpu | head -20; } > "$OUT/remote_info.txt" 2>&1
head -8 "$OUT/remote_info.txt"
nvcc -O3 -arch=sm_90 -o /tmp/remote_read "$HERE/remote_read.cu" && timeout 240 /tmp/remote_read "$OUT"
echo "rc=$?"
timeout 300 python3 "$HERE/embbag_extra.py" --cases hostmem --tag hostmem --out "$OUT"
echo "rc=$?"
