#!/bin/bash
# Runs every GPU measurement of validation/gpu/ on the device machine (one H100), in one call.
# Results: $OUT/results.tgz (folder res/), log: $OUT/log.txt. Each stage has its own timeout so the
# archive is written even when a stage runs long. Never changes clocks or other card settings.
set -u
export PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/out}
RES=/tmp/res
mkdir -p "$RES" "$OUT"
HERE=$(cd "$(dirname "$0")" && pwd)
STAGES=${STAGES:-info,build,chase,tput,ncumb,emb,ncuemb}
has() { [[ ",$STAGES," == *",$1,"* ]]; }
pack() { tar czf "$OUT/results.tgz" -C /tmp res 2>/dev/null; }
T0=$(date +%s)
el() { echo "[t=$(( $(date +%s) - T0 ))s] $*"; }

if has info; then
  el "info"
  { date -u; nvidia-smi; nvidia-smi -q -d CLOCK; nvidia-smi -q -d PERFORMANCE;
    nvidia-smi --query-gpu=name,driver_version,pci.bus_id,clocks.sm,clocks.max.sm,clocks.mem,clocks.max.mem,power.limit --format=csv;
    nvcc --version; python3 -c 'import torch;print(torch.__version__, torch.version.cuda)'; ncu --version; } > $RES/device_info.txt 2>&1
  cat $RES/device_info.txt | head -40
fi
nvidia-smi --query-gpu=timestamp,clocks.sm,clocks.mem,power.draw,temperature.gpu,utilization.gpu,clocks_event_reasons.active --format=csv -lms 500 > $RES/smi_samples.csv 2>&1 &
SMI=$!

MB=/tmp/microbench
if has build; then
  el "build"
  nvcc -O3 -arch=sm_90 -o $MB "$HERE/microbench.cu" || { echo BUILD FAILED; }
  cuobjdump -sass -fun '_Z16rand_read_kernelILi8ELb0EEvPKjyiiyPjPi' $MB > $RES/sass_rand_read_K8.txt 2>&1
  cuobjdump -sass -fun '_Z12chase_kernelILb0EEvPKyyxPyPx' $MB > $RES/sass_chase_ca.txt 2>&1
  grep -c LDG $RES/sass_rand_read_K8.txt
  $MB info $RES
fi
if has chase; then el "chase"; timeout 150 $MB chase $RES; echo "rc=$?"; pack; fi
if has tput; then el "tput"; timeout 120 $MB tput $RES; echo "rc=$?"; pack; fi
if has ncumb; then
  el "ncu microbench"
  M1=gpu__time_duration.sum,dram__bytes_read.sum,lts__t_sectors_op_read.sum,lts__t_sector_hit_rate.pct,l1tex__t_sector_hit_rate.pct,sm__warps_active.avg.pct_of_peak_sustained_active,sm__cycles_elapsed.avg.per_second,dram__throughput.avg.pct_of_peak_sustained_elapsed
  timeout 90 ncu --kernel-name regex:rand_read --clock-control none --cache-control none --metrics $M1 -f -o /tmp/mb $MB ncu \
   || timeout 60 ncu --kernel-name regex:rand_read --clock-control none --cache-control none --metrics gpu__time_duration.sum,dram__bytes_read.sum,lts__t_sector_hit_rate.pct -f -o /tmp/mb $MB ncu
  ncu -i /tmp/mb.ncu-rep --csv --page raw > $RES/ncu_microbench.csv 2>&1
  pack
fi
if has emb; then
  el "embbag timing"
  timeout 200 python3 "$HERE/embbag_extra.py" --out $RES; echo "rc=$?"; pack
fi
if has ncuemb; then
  el "embbag ncu"
  EM=gpu__time_duration.sum,lts__t_sector_hit_rate.pct,l1tex__t_sector_hit_rate.pct,dram__bytes_read.sum,dram__throughput.avg.pct_of_peak_sustained_elapsed
  # sector accounting by operation (EM_MORE=0 to leave it out)
  if [ "${EM_MORE:-1}" = 1 ]; then
    EM=$EM,lts__t_sectors_op_read.sum,lts__t_sectors_op_write.sum,lts__t_sectors_op_read_lookup_hit.sum,lts__t_sectors_op_write_lookup_hit.sum,lts__t_requests_op_read.sum
    EM=$EM,l1tex__t_sectors_pipe_lsu_mem_global_op_ld.sum,l1tex__t_sectors_pipe_lsu_mem_global_op_ld_lookup_hit.sum,l1tex__t_requests_pipe_lsu_mem_global_op_ld.sum,l1tex__t_sectors_pipe_lsu_mem_global_op_st.sum
    EM=$EM,sm__warps_active.avg.pct_of_peak_sustained_active,smsp__inst_executed.sum,sm__cycles_elapsed.avg.per_second
  fi
  NC="ncu --kernel-name regex:EmbeddingBag_updateOutput --clock-control none --cache-control none --metrics $EM"
  timeout 220 $NC --nvtx --nvtx-include "prof/" -f -o /tmp/eb python3 "$HERE/embbag_extra.py" --ncu --out $RES; echo "rc=$?"
  ncu -i /tmp/eb.ncu-rep --csv --page raw > $RES/ncu_embbag.csv 2>&1
  n=$(grep -c EmbeddingBag $RES/ncu_embbag.csv)
  el "ncu embbag kernels profiled: $n"
  if [ "$n" -lt 3 ]; then
    el "NVTX filter gave too few kernels; fallback with --launch-skip, one case a process"
    for c in pers_sorted_nowin pers_sorted_win30 var_dim32_fp32; do
      timeout 60 $NC --launch-skip 14 --launch-count 1 -f -o /tmp/eb_$c python3 "$HERE/embbag_extra.py" --ncu --cases $c --out /tmp/fb_$c
      ncu -i /tmp/eb_$c.ncu-rep --csv --page raw > $RES/ncu_fallback_$c.csv 2>&1
    done
  fi
  timeout 60 ncu -i /tmp/eb.ncu-rep --page source --print-source sass --csv --launch-count 1 > $RES/sass_embbag.csv 2>&1
  head -c 200 $RES/sass_embbag.csv; echo
  pack
fi
kill $SMI 2>/dev/null
nvidia-smi -q -d CLOCK >> $RES/device_info.txt 2>&1
pack
el "done"
ls -la $RES
