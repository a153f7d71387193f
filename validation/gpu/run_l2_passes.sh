#!/bin/bash
# Which L2 state each counter of the reference's protocol sees, counter by counter (fourth session): Nsight
# Compute with kernel replay (every pass replays the marked launch after saving and restoring device memory;
# caches not flushed, clocks not locked, as the reference) on the cases of validation/gpu/data/replay_cases.csv,
# with the L2's raw lookup counters (hits, misses, all sectors) collected alone (one pass, no save or restore),
# together (several passes), beside the reference's four metrics, and under a flushed L2 (CACHE all) and
# application replay (every pass the same steady state). Writes $OUT/l2passes/summary.csv (set, mode, cache,
# passes, case, metric, value), the definition of the hit-rate metric, and the ncu logs.
set -u
OUT=${OUT:-/tmp/out}; R=$OUT/l2passes; mkdir -p $R
HERE=$(cd "$(dirname "$0")" && pwd)
T=gpu__time_duration.sum; L2=lts__t_sector_hit_rate.pct; L1=l1tex__t_sector_hit_rate.pct; D=dram__bytes_read.sum
H=lts__t_sectors_lookup_hit.sum; MS=lts__t_sectors_lookup_miss.sum; S=lts__t_sectors.sum
ncu --query-metrics-mode all --query-metrics --chip gh100 2>&1 | grep -E "^(lts__t_sector_hit_rate|lts__t_sectors_lookup|lts__t_sectors )" > $R/metric_defs.txt
DEFAULT_SETS="ref:kernel:none:$T,$L2,$L1,$D,$H,$MS hm:kernel:none:$H,$MS h:kernel:none:$H m:kernel:none:$MS s:kernel:none:$S
 hms:kernel:none:$H,$MS,$S l2hms:kernel:none:$L2,$H,$MS,$S l2s:kernel:none:$L2,$S dh:kernel:none:$D,$H
 hm_flushed:kernel:all:$H,$MS,$S hm_app:application:none:$H,$MS,$S ref_flushed:kernel:all:$T,$L2,$L1,$D,$H,$MS"
# SETS_SPEC: other sets, name:mode:cache:metrics with the metrics' names or T, L2, L1, D, H, MS, S
for set in ${SETS_SPEC:-$DEFAULT_SETS}; do
  IFS=: read -r name mode cache M <<< "$set"
  M=$(echo ",$M," | sed -e "s/,T,/,$T,/; s/,L2,/,$L2,/; s/,L1,/,$L1,/; s/,D,/,$D,/; s/,H,/,$H,/; s/,MS,/,$MS,/; s/,S,/,$S,/" \
      -e "s/,T,/,$T,/; s/,L2,/,$L2,/; s/,L1,/,$L1,/; s/,D,/,$D,/; s/,H,/,$H,/; s/,MS,/,$MS,/; s/,S,/,$S,/" -e "s/^,//; s/,$//")
  timeout 240 ncu --replay-mode $mode --kernel-name regex:EmbeddingBag_updateOutput --clock-control none \
    --cache-control $cache --metrics "$M" --nvtx --nvtx-include "prof/" -f -o /tmp/slices_$name \
    python3 "$HERE/embbag_extra.py" --ncu --cases-csv "${CASES:-$HERE/data/replay_cases.csv}" --tag ncu_order \
    --out /tmp/slices_out_$name > /tmp/slices_log_$name.txt 2>&1
  echo "$name rc=$?"
  p=$(grep -o -- "- [0-9]* pass" /tmp/slices_log_$name.txt | head -1 | grep -o "[0-9]*")
  echo "== $name ($mode, $cache): $p passes" >> $R/ncu_logs.txt; grep -E "PROF|Error|error" /tmp/slices_log_$name.txt | head -8 >> $R/ncu_logs.txt
  ncu -i /tmp/slices_$name.ncu-rep --csv --page raw > /tmp/slices_raw_$name.csv 2>&1
  python3 - "$name" "$mode" "$cache" "${p:-}" /tmp/slices_raw_$name.csv "$R/summary.csv" /tmp/slices_out_$name/ncu_order.json <<'PY'
import csv, json, os, sys
name, mode, cache, passes, raw, out, order = sys.argv[1:]
rows = list(csv.reader(open(raw)))
names = [r["case"].removeprefix("csv_") for r in json.load(open(order))["rows"]]
hdr = rows[0]
new = not os.path.exists(out)
with open(out, "a", newline="") as f:
    w = csv.writer(f)
    if new:
        w.writerow(["set", "mode", "cache", "passes", "case", "metric", "value"])
    for k, r in enumerate(rows[2:]):
        for i, h in enumerate(hdr):
            if h.startswith(("lts__", "dram__", "gpu__time", "l1tex__")) and h.endswith((".sum", ".pct")):
                w.writerow([name, mode, cache, passes, names[k] if k < len(names) else k, h, r[i]])
PY
done
