#!/bin/bash
# Which L2 state each counter of the reference's protocol sees: Nsight Compute with its default KERNEL replay
# (every pass replays the marked launch after saving and restoring device memory; caches not flushed, clocks not
# locked, as the reference) on the cases of validation/gpu/data/replay_cases.csv, with the reference's four
# metrics together and with each L2/DRAM metric alone (one pass) or paired. Results:
# $OUT/passes/<set>/ncu_raw.csv and ncu_log.txt (the passes ncu reports).
set -u
OUT=${OUT:-/tmp/out}
HERE=$(cd "$(dirname "$0")" && pwd)
T=gpu__time_duration.sum; L2=lts__t_sector_hit_rate.pct; L1=l1tex__t_sector_hit_rate.pct; D=dram__bytes_read.sum
# CACHE=all: the same with the caches flushed before every pass (SETS picks metric sets by name; CASES another
# cases CSV; EMB_EXTRA_ALLOC_MB, passed to embbag_extra.py: an untouched allocation besides the case's tensors)
CACHE=${CACHE:-none}
for set in "all:$T,$L2,$L1,$D" "l2:$L2" "dram:$D" "l2dram:$L2,$D" "time:$T"; do
  name=${set%%:*}; M=${set#*:}
  case ",${SETS:-all,l2,dram,l2dram,time}," in *",$name,"*) ;; *) continue ;; esac
  R=$OUT/passes/$name; mkdir -p $R
  timeout 200 ncu --kernel-name regex:EmbeddingBag_updateOutput --clock-control none --cache-control $CACHE \
    --metrics "$M" --nvtx --nvtx-include "prof/" -f -o /tmp/pass_$name \
    python3 "$HERE/embbag_extra.py" --ncu --cases-csv "${CASES:-$HERE/data/replay_cases.csv}" --tag ncu_order --out $R \
    > $R/ncu_log.txt 2>&1
  echo "$name rc=$?"
  ncu -i /tmp/pass_$name.ncu-rep --csv --page raw > $R/ncu_raw.csv 2>&1
done
