#!/bin/bash
# Per-SM and per-SM-sub-partition counters of PyTorch's EmbeddingBag kernel (sixth session, issue #14; docs/gpu.md
# "What remains off"): Nsight Compute with --print-metric-instances values, so every counter comes back as its
# 132 (SM) or 528 (SMSP) instance values, with the caches flushed before every pass (--cache-control all: the
# model's cold protocol), on validation/gpu/data/sm_instance_cases.csv (or CASES). It shows which SMs end a
# launch late and how their time goes with the warps each received. Writes $OUT/sm_instances/raw.csv.gz (ncu's
# raw page with instance values), order.json and the ncu log. Never changes clocks or other card settings.
set -u
OUT=${OUT:-/tmp/out}; R=$OUT/sm_instances; mkdir -p $R
HERE=$(cd "$(dirname "$0")" && pwd)
BASE=gpu__time_duration.sum,smsp__cycles_active.sum,smsp__warps_launched.sum,smsp__inst_executed.sum,smsp__warps_active.sum,smsp__issue_active.sum,sm__cycles_active.sum,sm__warps_launched.sum
STALL=smsp__warps_issue_stalled_long_scoreboard.sum,smsp__warps_issue_stalled_math_pipe_throttle.sum,smsp__warps_issue_stalled_not_selected.sum,smsp__warps_issue_stalled_wait.sum,l1tex__t_sectors_pipe_lsu_mem_global_op_ld.sum,l1tex__t_sectors_pipe_lsu_mem_global_op_ld_lookup_hit.sum
run() {
  timeout 300 ncu --replay-mode kernel --kernel-name regex:EmbeddingBag_updateOutput --clock-control none \
    --cache-control all --metrics "$1" --nvtx --nvtx-include "prof/" -f -o /tmp/sm_instances \
    python3 "$HERE/embbag_extra.py" --ncu --cases-csv "${CASES:-$HERE/data/sm_instance_cases.csv}" --tag ncu_order \
    --out /tmp/sm_instances_out > $R/ncu_log.txt 2>&1
}
run "$BASE,$STALL" || { echo "stall metrics refused; base set only" >> $R/ncu_log.txt; run "$BASE"; }
echo "rc=$?"
cp /tmp/sm_instances_out/ncu_order.json $R/order.json
ncu -i /tmp/sm_instances.ncu-rep --csv --page raw --print-metric-instances values 2> $R/export.err | gzip > $R/raw.csv.gz
ls -la $R
