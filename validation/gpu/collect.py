#!/usr/bin/env python3
"""Unpack the device run's results.tgz into validation/gpu/data/ and merge the Nsight Compute rows.

usage: python3 validation/gpu/collect.py FILES_AT_DIR

Writes data/embbag_extra_ncu.csv: one row per profiled EmbeddingBag launch (order from ncu_order.json),
and data/microbench_ncu.csv: one row per profiled rand_read launch. Standard library only.
"""
import csv
import io
import json
import os
import shutil
import sys
import tarfile

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "data")


def read_ncu_raw(path):
    """ncu --csv --page raw: header row, units row, one row per kernel."""
    with open(path, newline="") as f:
        text = f.read()
    i = text.find('"ID"')
    if i < 0:
        return [], {}
    rows = list(csv.reader(io.StringIO(text[i:])))
    hdr, units = rows[0], rows[1]
    out = [dict(zip(hdr, r)) for r in rows[2:] if len(r) == len(hdr)]
    return out, dict(zip(hdr, units))


def num(s):
    try:
        return float(str(s).replace(",", ""))
    except ValueError:
        return None


def scale(v, unit, want):
    """convert ncu values to ns / bytes"""
    if v is None:
        return None
    f = {"ns": 1, "us": 1e3, "usecond": 1e3, "msecond": 1e6, "ms": 1e6, "nsecond": 1,
         "byte": 1, "Kbyte": 1e3, "Mbyte": 1e6, "Gbyte": 1e9, "KB": 1e3, "MB": 1e6, "GB": 1e9,
         "hz": 1, "Khz": 1e3, "Mhz": 1e6, "Ghz": 1e9, "cycle/nsecond": 1e9, "cycle/usecond": 1e6,
         "cycle/second": 1}.get(unit, None)
    return v * f if f is not None else v


def main():
    src = sys.argv[1]
    os.makedirs(DATA, exist_ok=True)
    tgz = os.path.join(src, "results.tgz")
    tmp = os.path.join("/tmp", "gpu_collect")
    shutil.rmtree(tmp, ignore_errors=True)
    with tarfile.open(tgz) as t:
        t.extractall(tmp)
    res = os.path.join(tmp, "res")
    for name in os.listdir(res):
        if name.endswith(".ncu-rep"):
            continue
        shutil.copy(os.path.join(res, name), os.path.join(DATA, name))
    if os.path.exists(os.path.join(src, "log.txt")):
        shutil.copy(os.path.join(src, "log.txt"), os.path.join(DATA, "device_log.txt"))

    # EmbeddingBag ncu rows + order
    p = os.path.join(DATA, "ncu_embbag.csv")
    order_p = os.path.join(DATA, "ncu_order.json")
    if os.path.exists(p) and os.path.exists(order_p):
        rows, units = read_ncu_raw(p)
        order = json.load(open(order_p))["rows"] or []
        if len(rows) != len(order):
            print(f"warning: {len(rows)} ncu rows vs {len(order)} marked launches")
        out = []
        for o, r in zip(order, rows):
            g = lambda m: num(r.get(m))  # noqa: E731
            out.append(dict(
                case=o["case"], table=o["table"],
                kernel_time_ns=scale(g("gpu__time_duration.sum"), units.get("gpu__time_duration.sum"), "ns"),
                l2_hit_pct=g("lts__t_sector_hit_rate.pct"),
                l1_hit_pct=g("l1tex__t_sector_hit_rate.pct"),
                dram_read_bytes=scale(g("dram__bytes_read.sum"), units.get("dram__bytes_read.sum"), "byte"),
                dram_util_pct=g("dram__throughput.avg.pct_of_peak_sustained_elapsed"),
                kernel_name=r.get("Kernel Name", "")[:80], grid=r.get("Grid Size"), block=r.get("Block Size")))
        if out:
            with open(os.path.join(DATA, "embbag_extra_ncu.csv"), "w", newline="") as f:
                w = csv.DictWriter(f, fieldnames=list(out[0].keys()))
                w.writeheader()
                w.writerows(out)
            print(f"embbag_extra_ncu.csv: {len(out)} rows")

    p = os.path.join(DATA, "ncu_microbench.csv")
    if os.path.exists(p):
        rows, units = read_ncu_raw(p)
        print(f"ncu_microbench.csv: {len(rows)} kernels; units: "
              + json.dumps({k: v for k, v in units.items() if "__" in k}))


if __name__ == "__main__":
    main()
