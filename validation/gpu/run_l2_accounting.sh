#!/bin/bash
# L2 sector accounting of PyTorch's EmbeddingBag kernel by source unit (the SMs' L1s vs the fabric between the
# two L2 partitions) on the mechanism cases, with application replay (every Nsight Compute pass reruns the whole
# script, so each pass sees the same cache history). Results: $OUT/l2acct/ (ncu CSV, the metric list used).
set -u
OUT=${OUT:-/tmp/out}; R=$OUT/l2acct; mkdir -p $R
HERE=$(cd "$(dirname "$0")" && pwd)
# the cases: EMB_CASES (names or groups of embbag_extra.py, default mechanism) or CASES_CSV (a CSV with the
# reference's columns; the reference cases 8, 22 and 26: CASES_CSV=validation/gpu/data/l2_case22_cases.csv);
# CACHE=all flushes the caches before every pass (a cold L2 for the marked launch; default none)
if [ -n "${CASES_CSV:-}" ]; then CASES="--cases-csv $CASES_CSV"; else CASES="--cases ${EMB_CASES:-mechanism}"; fi
ncu --query-metrics --chip gh100 > $R/metrics_gh100.txt 2>&1 || ncu --query-metrics > $R/metrics_gh100.txt 2>&1
WANT="lts__t_sectors lts__t_sectors_lookup_hit lts__t_sectors_lookup_miss lts__t_sectors_srcunit_tex lts__t_sectors_srcunit_tex_lookup_hit lts__t_sectors_srcunit_tex_lookup_miss lts__t_sectors_srcunit_tex_op_read lts__t_sectors_srcunit_tex_op_read_lookup_hit lts__t_sectors_srcunit_tex_op_write lts__t_sectors_srcunit_tex_op_write_lookup_hit lts__t_sectors_srcunit_ltcfabric lts__t_sectors_srcunit_ltcfabric_lookup_hit lts__t_sectors_srcunit_ltcfabric_lookup_miss lts__t_sectors_op_read lts__t_sectors_op_write lts__t_sectors_op_atom lts__t_sectors_op_red lts__t_sectors_srcnode_gpc lts__t_sectors_srcnode_gpc_lookup_hit dram__bytes_read dram__bytes_write"
M="gpu__time_duration.sum,lts__t_sector_hit_rate.pct,l1tex__t_sector_hit_rate.pct"
for w in $WANT; do
  base=${w%.sum}
  if grep -q "^$base " $R/metrics_gh100.txt || grep -q "^$base\b" $R/metrics_gh100.txt; then M="$M,$w.sum"; else echo "no metric $w" >> $R/missing.txt; fi
done
echo "$M" > $R/metrics_used.txt
timeout 400 ncu --replay-mode application --kernel-name regex:EmbeddingBag_updateOutput --clock-control none --cache-control ${CACHE:-none} \
  --metrics "$M" --nvtx --nvtx-include "prof/" -f -o /tmp/l2acct python3 "$HERE/embbag_extra.py" --ncu $CASES --out $R
echo "rc=$?"
ncu -i /tmp/l2acct.ncu-rep --csv --page raw > $R/ncu_l2acct.csv 2>&1
grep -c EmbeddingBag $R/ncu_l2acct.csv
