#!/bin/bash
# Where a warp's time goes in PyTorch's EmbeddingBag kernel (fourth session): Nsight Compute's warp-state sections
# (stall reasons per issued instruction, warps resident per cycle), with the caches flushed before every pass
# (--cache-control all: each pass a launch with a cold L2, the model's --protocol cold), on
# validation/gpu/data/stall_cases.csv (or CASES). The long-scoreboard stall (waiting on L1TEX: the loads) per
# dependent round of a warp is the loads' mean latency as the warps see it. Writes $OUT/stalls/summary.csv (case,
# metric, value) and the ncu log.
set -u
OUT=${OUT:-/tmp/out}; R=$OUT/stalls; mkdir -p $R
HERE=$(cd "$(dirname "$0")" && pwd)
timeout 400 ncu --replay-mode kernel --kernel-name regex:EmbeddingBag_updateOutput --clock-control none \
  --cache-control all --section WarpStateStats --section LaunchStats --section Occupancy \
  --metrics gpu__time_duration.sum,lts__t_sector_hit_rate.pct,dram__bytes_read.sum,smsp__inst_executed.sum,smsp__inst_issued.sum,smsp__warps_active.sum,smsp__cycles_active.sum,sm__cycles_elapsed.avg,smsp__warps_launched.sum \
  --nvtx --nvtx-include "prof/" -f -o /tmp/stalls \
  python3 "$HERE/embbag_extra.py" --ncu --cases-csv "${CASES:-$HERE/data/stall_cases.csv}" --tag ncu_order \
  --out /tmp/stalls_out > $R/ncu_log.txt 2>&1
echo "rc=$?"
ncu -i /tmp/stalls.ncu-rep --csv --page raw > /tmp/stalls_raw.csv 2>&1
python3 - /tmp/stalls_raw.csv /tmp/stalls_out/ncu_order.json $R/summary.csv <<'PY'
import csv, json, sys
raw, order, out = sys.argv[1:]
rows = list(csv.reader(open(raw)))
hdr = rows[0]
names = [r["case"].removeprefix("csv_") for r in json.load(open(order))["rows"]]
with open(out, "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["case", "metric", "value"])
    for k, r in enumerate(rows[2:]):
        for i, h in enumerate(hdr):
            if h.startswith(("smsp__", "sm__", "lts__t_sector_hit", "dram__bytes_read.sum", "gpu__time_duration.sum",
                             "launch__", "achieved_occupancy")) and r[i] not in ("", "n/a"):
                w.writerow([names[k] if k < len(names) else k, h, r[i].replace(",", "")])
PY
wc -l $R/summary.csv
