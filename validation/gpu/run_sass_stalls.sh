#!/bin/bash
# Where in the kernel a warp waits (fourth session, for the time model's overlap question: docs/gpu.md, "Two fixes
# tried"): Nsight Compute's warp-state sampling per SASS instruction (SourceCounters) with the L2 flushed before
# every pass, on validation/gpu/data/sass_stall_cases.csv (or CASES): at which instruction the samples of each
# stall reason fall (the FFMA waiting on its row's load, the row's load waiting on its index...). Writes
# $OUT/sass_stalls/<case>.csv.gz (ncu --page source --print-source sass, one launch each) and the log.
set -u
OUT=${OUT:-/tmp/out}; R=$OUT/sass_stalls; mkdir -p $R
HERE=$(cd "$(dirname "$0")" && pwd)
timeout 400 ncu --replay-mode kernel --kernel-name regex:EmbeddingBag_updateOutput --clock-control none \
  --cache-control all --section SourceCounters --section WarpStateStats \
  --metrics gpu__time_duration.sum --import-source no \
  --nvtx --nvtx-include "prof/" -f -o /tmp/sass_stalls \
  python3 "$HERE/embbag_extra.py" --ncu --cases-csv "${CASES:-$HERE/data/sass_stall_cases.csv}" --tag ncu_order \
  --out /tmp/sass_stalls_out > $R/ncu_log.txt 2>&1
echo "rc=$?"
names=$(python3 -c "import json; print(' '.join(r['case'].removeprefix('csv_') for r in json.load(open('/tmp/sass_stalls_out/ncu_order.json'))['rows']))")
i=0
for name in $names; do
  ncu -i /tmp/sass_stalls.ncu-rep --page source --csv --print-source sass --launch-skip $i --launch-count 1 \
    2>> $R/export.err | gzip > $R/$name.csv.gz
  i=$((i + 1))
done
# if the import does not filter by launch, one file with every launch's source page
if [ "$(zcat $R/*.csv.gz | wc -l)" -lt 100 ]; then
  rm -f $R/*.csv.gz
  ncu -i /tmp/sass_stalls.ncu-rep --page source --csv --print-source sass 2>> $R/export.err | gzip > $R/all.csv.gz
fi
ls -la $R
