#!/usr/bin/env python3
"""EmbeddingBag mechanism cases on a real GPU, for archsim's GPU model (issue #14).

The operation and the index distributions are those of ../shared/reference/gpu/README.md:
``torch.nn.functional.embedding_bag(indices, weight, offsets, mode="sum")`` with fixed pooling;
``uniform`` row ids, or ``zipf<s>`` ranks k in 1..rows drawn with probability proportional to k^-s
(inverse CDF over the exact bounded weights); 8 distinct batches per case, timed runs cycle through them.
The reference cases themselves are NOT measured here; these are new cases for mechanism checks:

* ``pers_*``: L2 persistence. zipf1.05, 10M rows, dim 128 fp32, batch 4096, pooling 20, with the table laid
  out hottest-first (layout ``sorted``: row id = rank - 1, instead of ``perm[rank - 1]``), so that the hottest
  rows are one contiguous region at the start of the table. Without a window, and with a CUDA access-policy
  window over the first W bytes of the table (W = the persisting set-aside of 10/20/30 MiB; hitRatio 1.0,
  hitProp persisting, missProp streaming), set on the stream PyTorch launches on through the CUDA runtime
  (ctypes: cudaDeviceSetLimit(cudaLimitPersistingL2CacheSize), cudaStreamSetAttribute(AccessPolicyWindow)),
  so the kernel that runs is PyTorch's own EmbeddingBag kernel.
* ``micro_*``: the MICRO 2024 artifact configuration: 12 tables of 500,000 rows, dim 128 fp32, pooling 150,
  batch 2048; uniform, zipf1.05 (scattered: perm layout), zipf1.05 hottest-first, and zipf1.05 hottest-first
  with the 60,000 hottest rows of the table being looked up pinned (window set per table before its launch,
  set-aside 30 MiB).
* ``var_*``: dim 32, dim 256 and fp16 variants of the uniform 10M-row, batch 4096, pooling 20 case.

Modes: default = time (CUDA events for the operator, torch.profiler/CUPTI for the kernel's own duration);
``--ncu`` = 14 steady-state launches then one more inside NVTX range ``prof`` for ``ncu --nvtx
--nvtx-include prof/`` (or ``--launch-skip 14 --launch-count 1`` with ``--cases``).
"""
import argparse
import ctypes
import json
import os
import statistics
import sys
import time
import zlib

import numpy as np
import torch
import torch.nn.functional as F

MiB = 1 << 20
KERNEL_KEY = "EmbeddingBag_updateOutputKernel"


def case_list():
    P = dict(group="persistence", rows=10_000_000, dim=128, dtype="float32", batch=4096, pooling=20,
             dist="zipf1.05", layout="sorted", tables=1, setaside_mib=0, window_bytes=0)
    M = dict(group="micro2024", rows=500_000, dim=128, dtype="float32", batch=2048, pooling=150, tables=12,
             setaside_mib=0, window_bytes=0)
    V = dict(group="variants", rows=10_000_000, batch=4096, pooling=20, dist="uniform", layout="-", tables=1,
             setaside_mib=0, window_bytes=0)
    cases = [dict(P, name="pers_sorted_nowin")]
    for w in (10, 20, 30):
        cases.append(dict(P, name=f"pers_sorted_win{w}", setaside_mib=w, window_bytes=w * MiB))
    cases += [
        dict(M, name="micro_uniform", dist="uniform", layout="-"),
        dict(M, name="micro_zipf1.05", dist="zipf1.05", layout="perm"),
        dict(M, name="micro_zipf1.05_sorted", dist="zipf1.05", layout="sorted"),
        dict(M, name="micro_zipf1.05_sorted_pin60k", dist="zipf1.05", layout="sorted", setaside_mib=30,
             window_bytes=60_000 * 128 * 4),
        dict(V, name="var_dim32_fp32", dim=32, dtype="float32"),
        dict(V, name="var_dim256_fp32", dim=256, dtype="float32"),
        dict(V, name="var_dim128_fp16", dim=128, dtype="float16"),
    ]
    # mechanism cases (2026-12-06, second run): the fixed cost of a launch and of a chunk (batch 1, pooling 1),
    # the cost per pooled row (pooling 1/5/40), and the sector accounting of each request type (ncu: L1 and
    # L2 sectors by operation) -- what the model's request structure is checked against
    Mc = dict(V, group="mechanism")
    cases += [dict(Mc, name="mech_b1_p1", rows=1000, batch=1, pooling=1, dim=128, dtype="float32"),
              dict(Mc, name="mech_b64_p1", rows=1000, batch=64, pooling=1, dim=128, dtype="float32")]
    for p in (1, 5, 40):
        cases.append(dict(Mc, name=f"mech_p{p}", pooling=p, dim=128, dtype="float32"))
    cases.append(dict(Mc, name="mech_b1024_p20", batch=1024, pooling=20, dim=128, dtype="float32"))
    # the L2's capacity for rows every SM reads: 50K rows (24.4 MiB, one partition's worth) and 200K rows
    # (97.7 MiB), uniform, batch 4096, pooling 20
    cases.append(dict(Mc, name="mech_u50k", rows=50_000, dim=128, dtype="float32"))
    cases.append(dict(Mc, name="mech_u200k", rows=200_000, dim=128, dtype="float32"))
    # does the persisting set-aside the driver starts with (9,830,400 B read at process start) take capacity
    # from normal accesses? 80K rows (39 MiB) uniform with the limit set to 0 and left as found
    cases.append(dict(Mc, name="mech_u80k_asfound", rows=80_000, dim=128, dtype="float32"))
    cases.append(dict(Mc, name="mech_u80k_limit0", rows=80_000, dim=128, dtype="float32", limit_bytes=0))
    # third run (2026-12-06): the table in pinned host memory, read by the same kernel over PCIe (zero-copy:
    # the weight tensor aliases cudaHostAlloc memory, which UVA maps into the GPU's address space), and
    # counterparts in HBM: the latency of a host read (batch 1: one warp, a chain of dependent row pairs), the
    # throughput over the link (batch 4096), what the L2 keeps of host rows (zipf), 128 B rows (dim 32)
    H = dict(V, group="hostmem", dim=128, dtype="float32", weight_in="host")
    cases += [
        dict(H, name="host_u10m_b1_p256", batch=1, pooling=256),
        dict(H, name="hbm_u10m_b1_p256", batch=1, pooling=256, weight_in="hbm"),
        dict(H, name="host_u10m_b64_p64", batch=64, pooling=64),
        dict(H, name="hbm_u10m_b64_p64", batch=64, pooling=64, weight_in="hbm"),
        dict(H, name="host_u10m_b1024_p20", batch=1024, pooling=20),
        dict(H, name="host_u10m_b4096_p20", batch=4096, pooling=20),
        dict(H, name="host_u10m_b4096_p80", batch=4096, pooling=80),
        dict(H, name="host_u10m_dim32_b4096_p20", dim=32),
        dict(H, name="host_u10m_fp16_b4096_p20", dtype="float16"),
        dict(H, name="host_z10m_b4096_p20", dist="zipf1.05", layout="perm"),
        dict(H, name="host_z1m_b4096_p80", rows=1_000_000, dist="zipf1.05", layout="perm", pooling=80),
        dict(H, name="host_u100k_b4096_p20", rows=100_000),
    ]
    return cases


class _HostAlias:
    """A CUDA view of pinned host memory (zero-copy): with UVA, cudaHostAlloc memory has the same address on
    the device, and torch.as_tensor takes it through the CUDA array interface without copying."""

    def __init__(self, host: torch.Tensor):
        self.host = host  # keeps the pinned buffer alive
        typestr = {torch.float32: "<f4", torch.float16: "<f2"}[host.dtype]
        self.__cuda_array_interface__ = dict(shape=tuple(host.shape), typestr=typestr,
                                             data=(host.data_ptr(), False), version=3, strides=None)


def host_weight(rows, dim, dtype, seed):
    h = torch.empty(rows, dim, dtype=dtype, pin_memory=True)
    h.normal_(generator=torch.Generator().manual_seed(seed))
    a = _HostAlias(h)
    w = torch.as_tensor(a, device="cuda")
    assert w.data_ptr() == h.data_ptr(), "not zero-copy"
    w._host_alias = a
    return w


def copy_bandwidth(out_rows, nbytes=1 << 30, reps=5):
    """Pinned host <-> device copy bandwidth (GB/s), the link's measured ceiling."""
    h = torch.empty(nbytes, dtype=torch.uint8, pin_memory=True)
    d = torch.empty(nbytes, dtype=torch.uint8, device="cuda")
    for name, dst, src in (("h2d", d, h), ("d2h", h, d)):
        ts = []
        for _ in range(reps):
            e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            e0.record()
            dst.copy_(src, non_blocking=True)
            e1.record()
            torch.cuda.synchronize()
            ts.append(e0.elapsed_time(e1) * 1e-3)
        out_rows.append(dict(case=f"copy_{name}", bytes=nbytes, GBps_median=round(nbytes / statistics.median(ts) / 1e9, 2)))
    del h, d


# ------------------------------------------------------------------ CUDA runtime through ctypes
class _APW(ctypes.Structure):
    _fields_ = [("base_ptr", ctypes.c_void_p), ("num_bytes", ctypes.c_size_t), ("hitRatio", ctypes.c_float),
                ("hitProp", ctypes.c_int), ("missProp", ctypes.c_int)]


class _AttrVal(ctypes.Union):
    _fields_ = [("pad", ctypes.c_char * 64), ("accessPolicyWindow", _APW)]


class L2Persist:
    LIMIT_PERSISTING_L2 = 0x06
    ATTR_ACCESS_POLICY_WINDOW = 1
    DEVATTR_MAX_PERSISTING = 108
    DEVATTR_MAX_WINDOW = 109
    NORMAL, STREAMING, PERSISTING = 0, 1, 2

    def __init__(self):
        torch.empty(1, device="cuda")
        cands = []
        with open("/proc/self/maps") as f:
            for line in f:
                p = line.split()[-1]
                if "libcudart.so" in p and p not in cands:
                    cands.append(p)
        cands += ["libcudart.so.13", "libcudart.so", "/usr/local/cuda/lib64/libcudart.so"]
        self.lib, self.path = None, None
        for p in cands:
            try:
                lib = ctypes.CDLL(p)
                lib.cudaStreamSetAttribute  # noqa: B018
            except (OSError, AttributeError):
                continue
            self.lib, self.path = lib, p
            break
        if self.lib is None:
            raise RuntimeError("libcudart not found")
        L = self.lib
        L.cudaGetErrorString.restype = ctypes.c_char_p
        L.cudaDeviceSetLimit.argtypes = [ctypes.c_int, ctypes.c_size_t]
        L.cudaDeviceGetLimit.argtypes = [ctypes.POINTER(ctypes.c_size_t), ctypes.c_int]
        L.cudaStreamSetAttribute.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.POINTER(_AttrVal)]
        L.cudaStreamGetAttribute.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.POINTER(_AttrVal)]
        L.cudaDeviceGetAttribute.argtypes = [ctypes.POINTER(ctypes.c_int), ctypes.c_int, ctypes.c_int]

    def _ck(self, rc, what):
        if rc != 0:
            raise RuntimeError(f"{what}: cuda error {rc} {self.lib.cudaGetErrorString(rc).decode()}")

    def dev_attr(self, a):
        v = ctypes.c_int(0)
        self._ck(self.lib.cudaDeviceGetAttribute(ctypes.byref(v), a, torch.cuda.current_device()), "getattr")
        return v.value

    def set_limit(self, nbytes):
        torch.cuda.synchronize()
        self._ck(self.lib.cudaDeviceSetLimit(self.LIMIT_PERSISTING_L2, nbytes), "cudaDeviceSetLimit")
        return self.get_limit()

    def get_limit(self):
        v = ctypes.c_size_t(0)
        self._ck(self.lib.cudaDeviceGetLimit(ctypes.byref(v), self.LIMIT_PERSISTING_L2), "cudaDeviceGetLimit")
        return v.value

    def set_window(self, stream, base, nbytes, hit_ratio=1.0):
        v = _AttrVal()
        v.accessPolicyWindow.base_ptr = base
        v.accessPolicyWindow.num_bytes = nbytes
        v.accessPolicyWindow.hitRatio = hit_ratio if nbytes else 0.0
        v.accessPolicyWindow.hitProp = self.PERSISTING if nbytes else self.NORMAL
        v.accessPolicyWindow.missProp = self.STREAMING if nbytes else self.NORMAL
        self._ck(self.lib.cudaStreamSetAttribute(ctypes.c_void_p(stream.cuda_stream), self.ATTR_ACCESS_POLICY_WINDOW,
                                                 ctypes.byref(v)), "cudaStreamSetAttribute")

    def get_window(self, stream):
        v = _AttrVal()
        self._ck(self.lib.cudaStreamGetAttribute(ctypes.c_void_p(stream.cuda_stream), self.ATTR_ACCESS_POLICY_WINDOW,
                                                 ctypes.byref(v)), "cudaStreamGetAttribute")
        w = v.accessPolicyWindow
        return dict(base_ptr=w.base_ptr or 0, num_bytes=w.num_bytes, hitRatio=w.hitRatio, hitProp=w.hitProp,
                    missProp=w.missProp)

    def reset(self):
        torch.cuda.synchronize()
        self._ck(self.lib.cudaCtxResetPersistingL2Cache(), "cudaCtxResetPersistingL2Cache")


# ------------------------------------------------------------------ indices
_cdf = {}
try:
    torch.cuda.nvtx.range_push("probe")
    torch.cuda.nvtx.range_pop()
    NVTX_OK = True
except Exception:  # noqa: BLE001
    NVTX_OK = False


def zipf_cdf(rows, s):
    key = (rows, s)
    if key not in _cdf:
        w = np.arange(1, rows + 1, dtype=np.float64) ** (-s)
        c = np.cumsum(w)
        c /= c[-1]
        _cdf[key] = torch.from_numpy(c).cuda()
    return _cdf[key]


def make_batches(case, table, nbatch=8):
    """8 batches of batch*pooling row ids (int64, on the GPU) for one table; the seed depends on
    (rows, dist, table) only, so the sorted and perm layouts share the same ranks."""
    rows, dist = case["rows"], case["dist"]
    seed = zlib.crc32(f"{rows}-{dist}-{table}".encode())
    rng = np.random.default_rng(seed)
    n = case["batch"] * case["pooling"]
    out = []
    if dist == "uniform":
        for _ in range(nbatch):
            out.append(torch.from_numpy(rng.integers(0, rows, size=n, dtype=np.int64)).cuda())
        return out
    assert dist.startswith("zipf")
    s = float(dist[4:])
    cdf = zipf_cdf(rows, s)
    perm = None
    if case["layout"] == "perm":
        perm = torch.from_numpy(np.random.default_rng(seed + 1).permutation(rows).astype(np.int64)).cuda()
    for _ in range(nbatch):
        u = torch.from_numpy(rng.random(n)).cuda()
        ranks = torch.searchsorted(cdf, u, right=True).clamp_(max=rows - 1)  # 0-based rank
        out.append(perm[ranks] if perm is not None else ranks)
    return out


# ------------------------------------------------------------------ one case
def run_case(case, mode, persist, stream, nvtx_tables=None):
    T = case["tables"]
    dtype = dict(float32=torch.float32, float16=torch.float16)[case["dtype"]]
    t0 = time.time()
    gen = torch.Generator(device="cuda")
    gen.manual_seed(zlib.crc32(case["name"].encode()))
    if case.get("weight_in") == "host":
        W = [host_weight(case["rows"], case["dim"], dtype, zlib.crc32(case["name"].encode()) + t) for t in range(T)]
    else:
        W = [torch.randn(case["rows"], case["dim"], device="cuda", dtype=dtype, generator=gen) for _ in range(T)]
    idx = [make_batches(case, t) for t in range(T)]
    B, Pl = case["batch"], case["pooling"]
    offs = torch.arange(0, B * Pl, Pl, device="cuda", dtype=torch.int64)
    uniq = [statistics.mean(torch.unique(b).numel() for b in idx[t]) for t in range(T)]
    info = dict(case=case["name"], setup_s=None)
    # EMB_EXTRA_ALLOC_MB: an allocation the kernel never touches, made after the case's tensors (does Nsight
    # Compute's save and restore of device memory copy it, and what does that leave in the L2?)
    extra_mb = int(os.environ.get("EMB_EXTRA_ALLOC_MB", "0") or 0)
    extra = torch.zeros(extra_mb << 20, dtype=torch.uint8, device="cuda") if extra_mb else None
    info["extra_alloc_mb"] = extra_mb

    win = case["window_bytes"]
    if win:
        info["persist_limit_set"] = persist.set_limit(case["setaside_mib"] * MiB)
    elif case.get("limit_bytes") is not None and persist is not None:  # the set-aside alone, no window
        info["persist_limit_before"] = persist.get_limit()
        info["persist_limit_set"] = persist.set_limit(case["limit_bytes"])

    if win and T == 1:
        persist.set_window(stream, W[0].data_ptr(), win, 1.0)  # once: one table

    def call(t, b):
        if win and T > 1:  # the window follows the table being looked up
            persist.set_window(stream, W[t].data_ptr(), win, 1.0)
        return F.embedding_bag(idx[t][b], W[t], offs, mode="sum")

    with torch.cuda.stream(stream):
        # correctness: first 8 bags of batch 0 against a float64 sum
        out = call(0, 0)
        nb = min(8, B)  # a batch of fewer than 8 bags (the latency cases) checks them all
        ref = W[0][idx[0][0][: nb * Pl]].double().view(nb, Pl, -1).sum(1)
        relerr = ((out[:nb].double() - ref).norm() / ref.norm()).item()
        if win:
            info["window_readback"] = persist.get_window(stream)
            info["window_table0_base"] = W[0].data_ptr()
        torch.cuda.synchronize()
        info["setup_s"] = round(time.time() - t0, 2)
        rows_out = []
        if mode == "ncu":
            # the correctness launch above counts as table 0's first: 14 launches per table before the marked one
            for i in range(1 if T == 1 else 0, 14):
                for t in range(T):
                    call(t, i % 8)
            for t in range(T):
                prof_it = (nvtx_tables is None or t in nvtx_tables) and NVTX_OK
                if prof_it:
                    torch.cuda.nvtx.range_push("prof")
                call(t, 14 % 8)
                if prof_it:
                    torch.cuda.nvtx.range_pop()
                if nvtx_tables is None or t in nvtx_tables:
                    rows_out.append(dict(case=case["name"], table=t))
            torch.cuda.synchronize()
        else:
            for i in range(10):
                for t in range(T):
                    call(t, i % 8)
            NR = 50
            ev = [[(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(T)]
                  for _ in range(NR)]
            step_ev = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(NR)]
            for i in range(NR):
                step_ev[i][0].record(stream)
                for t in range(T):
                    ev[i][t][0].record(stream)
                    call(t, (10 + i) % 8)
                    ev[i][t][1].record(stream)
                step_ev[i][1].record(stream)
            torch.cuda.synchronize()
            op_us = [[ev[i][t][0].elapsed_time(ev[i][t][1]) * 1e3 for i in range(NR)] for t in range(T)]
            step_us = [step_ev[i][0].elapsed_time(step_ev[i][1]) * 1e3 for i in range(NR)]
            # kernel durations from CUPTI through torch.profiler
            trace = f"/tmp/trace_{case['name']}.json"
            with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
                for i in range(NR):
                    for t in range(T):
                        call(t, (10 + NR + i) % 8)
                torch.cuda.synchronize()
            prof.export_chrome_trace(trace)
            with open(trace) as f:
                tr = json.load(f)
            kev = [e for e in tr.get("traceEvents", []) if e.get("cat") == "kernel"]
            names = sorted({e["name"] for e in kev})
            emb = sorted((e for e in kev if KERNEL_KEY in e["name"]), key=lambda e: e["ts"])
            info["kernel_names"] = names
            info["n_embbag_kernels"] = len(emb)
            info["step_us_median"] = statistics.median(step_us)
            kt = [[] for _ in range(T)]
            if len(emb) == NR * T:
                for j, e in enumerate(emb):
                    kt[j % T].append(e["dur"] * 1e3)
            for t in range(T):
                k = sorted(kt[t])
                rows_out.append(dict(
                    case=case["name"], group=case["group"], rows=case["rows"], dim=case["dim"], dtype=case["dtype"],
                    batch=B, pooling=Pl, dist=case["dist"], layout=case["layout"], tables=T, table=t,
                    weight_in=case.get("weight_in", "hbm"),
                    setaside_mib=case["setaside_mib"], window_bytes=win,
                    unique_rows_per_batch=round(uniq[t], 1),
                    op_time_us_median=round(statistics.median(op_us[t]), 3),
                    kernel_time_ns_median=round(statistics.median(k), 1) if k else "",
                    kernel_time_ns_p10=round(k[len(k) // 10], 1) if k else "",
                    kernel_time_ns_p90=round(k[(9 * len(k)) // 10], 1) if k else "",
                    n_kernels=len(k), relerr_vs_fp64=f"{relerr:.2e}"))
    if win:
        persist.set_window(stream, 0, 0)
        persist.reset()
        persist.set_limit(0)
    del W, idx
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    return rows_out, info


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=".")
    ap.add_argument("--ncu", action="store_true", help="steady-state launches + one NVTX-marked launch per case")
    ap.add_argument("--cases", default=os.environ.get("EMB_CASES", ""),
                    help="comma-separated case names or group names (default: all; env EMB_CASES)")
    ap.add_argument("--micro-prof-tables", default="0,5,11")
    ap.add_argument("--cases-csv", default="", help="run the cases of a CSV with the reference's columns instead")
    ap.add_argument("--tag", default="", help="output file stem (default embbag_extra, or ncu_order with --ncu)")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    cases = case_list()
    if args.cases:
        want = set(args.cases.split(","))
        cases = [c for c in cases if c["name"] in want or c["group"] in want]
    if args.cases_csv:  # cases with the reference's columns (rows, dim, dtype, batch, pooling, dist)
        import csv

        cases = []
        with open(args.cases_csv) as f:
            for r in csv.DictReader(f):
                dist = r["dist"]
                cases.append(dict(group="csv", name=f"csv_{r.get('case', len(cases))}", rows=int(r["rows"]),
                                  dim=int(r["dim"]), dtype=r["dtype"], batch=int(r["batch"]),
                                  pooling=int(r["pooling"]), dist=dist, layout="-" if dist == "uniform" else "perm",
                                  tables=1, setaside_mib=0, window_bytes=0))
    props = torch.cuda.get_device_properties(0)
    meta = dict(date=time.strftime("%Y-%m-%d %H:%M:%S %Z"), torch=torch.__version__, cuda=torch.version.cuda,
                gpu=props.name, sm_count=props.multi_processor_count,
                l2_bytes=getattr(props, "L2_cache_size", None), total_mem=props.total_memory)
    try:
        persist = L2Persist()
        meta["cudart"] = persist.path
        meta["max_persisting_l2_bytes"] = persist.dev_attr(L2Persist.DEVATTR_MAX_PERSISTING)
        meta["max_access_policy_window_bytes"] = persist.dev_attr(L2Persist.DEVATTR_MAX_WINDOW)
        meta["persist_limit_at_start"] = persist.get_limit()
    except Exception as e:  # noqa: BLE001
        persist = None
        meta["persist_error"] = repr(e)
    meta["nvtx_ok"] = NVTX_OK
    print(json.dumps(meta), flush=True)
    stream = torch.cuda.Stream()
    mpt = {int(x) for x in args.micro_prof_tables.split(",") if x != ""}
    all_rows, infos = [], []
    for c in cases:
        if c["window_bytes"] and persist is None:
            print(f"skip {c['name']}: no persistence API", flush=True)
            continue
        if c["window_bytes"]:
            c = dict(c)
            maxp = meta["max_persisting_l2_bytes"]
            if c["setaside_mib"] * MiB > maxp:
                c["setaside_mib"] = maxp / MiB
                c["window_bytes"] = min(c["window_bytes"], maxp)
        nv = (mpt if c["tables"] > 1 else None) if args.ncu else None
        try:
            rows, info = run_case(c, "ncu" if args.ncu else "time", persist, stream, nv)
        except Exception as e:  # noqa: BLE001
            print(f"case {c['name']} FAILED: {e!r}", flush=True)
            infos.append(dict(case=c["name"], error=repr(e)))
            continue
        all_rows += rows
        infos.append(info)
        if not args.ncu:
            for r in rows[:3] if len(rows) > 3 else rows:
                print(f"{r['case']:32s} t{r['table']:<2d} uniq {r['unique_rows_per_batch']:>9} op {r['op_time_us_median']:>8} us"
                      f"  kernel {r['kernel_time_ns_median']:>9} ns  err {r['relerr_vs_fp64']}", flush=True)
            if len(rows) > 3:
                print(f"{c['name']:32s} step (all {c['tables']} tables) {info['step_us_median']:.1f} us", flush=True)
        else:
            print(f"ncu-mode {c['name']}: marked {len(rows)} launch(es)", flush=True)
    tag = args.tag or ("ncu_order" if args.ncu else "embbag_extra")
    with open(os.path.join(args.out, tag + ".json"), "w") as f:
        json.dump(dict(meta=meta, cases=infos, rows=all_rows if args.ncu else None), f, indent=1)
    if not args.ncu and all_rows:
        cols = list(all_rows[0].keys())
        if any(c["group"] == "hostmem" for c in cases):
            copies = []
            copy_bandwidth(copies)
            print(json.dumps(copies), flush=True)
            with open(os.path.join(args.out, tag + "_copy.json"), "w") as f:
                json.dump(copies, f, indent=1)
        with open(os.path.join(args.out, tag + ".csv"), "w") as f:
            f.write(",".join(cols) + "\n")
            for r in all_rows:
                f.write(",".join(str(r[k]) for k in cols) + "\n")


if __name__ == "__main__":
    sys.exit(main())
