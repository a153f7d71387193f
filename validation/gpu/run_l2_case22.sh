#!/bin/bash
# L2 sector accounting by source unit (run_l2_accounting.sh) of reference cases 8, 22 and 26 under application
# replay: where the hits of case 22 (512 bags: 52.5% measured, 29.8% predicted) come from. Results: $OUT/l2c22/.
set -u
OUT=${OUT:-/tmp/out}; R=$OUT/l2c22; mkdir -p $R
HERE=$(cd "$(dirname "$0")" && pwd)
ncu --query-metrics --chip gh100 > $R/metrics_gh100.txt 2>&1 || ncu --query-metrics > $R/metrics_gh100.txt 2>&1
WANT="lts__t_sectors lts__t_sectors_lookup_hit lts__t_sectors_lookup_miss lts__t_sectors_srcunit_tex lts__t_sectors_srcunit_tex_lookup_hit lts__t_sectors_srcunit_tex_lookup_miss lts__t_sectors_srcunit_tex_op_read lts__t_sectors_srcunit_tex_op_read_lookup_hit lts__t_sectors_srcunit_tex_op_write lts__t_sectors_srcunit_tex_op_write_lookup_hit lts__t_sectors_srcunit_ltcfabric lts__t_sectors_srcunit_ltcfabric_lookup_hit lts__t_sectors_srcunit_ltcfabric_lookup_miss lts__t_sectors_op_read lts__t_sectors_op_write lts__t_sectors_op_atom lts__t_sectors_op_red lts__t_sectors_srcnode_gpc lts__t_sectors_srcnode_gpc_lookup_hit dram__bytes_read dram__bytes_write"
M="gpu__time_duration.sum,lts__t_sector_hit_rate.pct,l1tex__t_sector_hit_rate.pct"
for w in $WANT; do
  base=${w%.sum}
  if grep -q "^$base " $R/metrics_gh100.txt || grep -q "^$base\b" $R/metrics_gh100.txt; then M="$M,$w.sum"; else echo "no metric $w" >> $R/missing.txt; fi
done
echo "$M" > $R/metrics_used.txt
timeout 400 ncu --replay-mode application --kernel-name regex:EmbeddingBag_updateOutput --clock-control none --cache-control none \
  --metrics "$M" --nvtx --nvtx-include "prof/" -f -o /tmp/l2c22 python3 "$HERE/embbag_extra.py" --ncu --cases-csv "$HERE/data/l2_case22_cases.csv" --out $R
echo "rc=$?"
ncu -i /tmp/l2c22.ncu-rep --csv --page raw > $R/ncu_l2c22.csv 2>&1
grep -c EmbeddingBag $R/ncu_l2c22.csv
