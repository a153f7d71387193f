"""``archsim bench`` (``make bench``): how fast the simulator runs, in simulated work per wall-clock second.

Two kinds of lines, measured in one process:

- **traces**: the reference DRAM traces (stream, random, Zipf; 100,000 requests each) through one DRAM
  hwconfig (default ``hwconfigs/dram_ddr4_dramsim3.yaml``) at window 0: simulated requests per wall second;
- **workloads**: ``workloads/criteo_zipf.yaml`` on every shipped architecture (:func:`architectures`), each
  with its own small ``num_batches`` / ``batch_size`` (a run of about a second on an idle 2-core machine):
  simulated lookups per wall second, and that rate divided by the random trace's requests per second of the
  same run (``ratio_to_random_dram``), a figure that carries from machine to machine better than either rate.

Each line is the median wall time of ``repeat`` runs. One untimed run of the random trace comes before the
trace lines, and one untimed run of one batch of 4 bags before each architecture's timed runs: they fill the
process-level caches (imports; the GPU models' HBM loaded-latency curve, several seconds once per process and
HBM), so a rate is that of a run in a warm process: building the system, the simulation and its summary. The
result goes to ``results/bench.json`` (keys ``traces`` and ``workloads`` as before; docs/performance.md).
"""

from __future__ import annotations

import json
import os
import statistics
import time
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path
from typing import Any

from archsim.config import InputError

__all__ = ["ARCHITECTURES", "DEFAULT_SIZE", "RANDOM_TRACE", "TRACES", "WORKLOAD", "architectures", "parse_only",
           "run_bench"]

TRACES = ("stream_r_100k", "random_r_100k", "zipf105_row128_100k")
"""The reference DRAM traces (validation/reference/dram/traces/NAME.trace.gz)."""

RANDOM_TRACE = "random_r_100k"
"""The trace line every workload line is divided by (``ratio_to_random_dram``); it runs in every bench."""

WORKLOAD = "criteo_zipf"
"""The workload of every architecture line (workloads/criteo_zipf.yaml: 8 tables x 1M rows, dim 64, pooling 80,
Zipf 1.05): 640 lookups per bag."""

ARCHITECTURES: dict[str, tuple[int, int]] = {
    # name (hwconfigs/NAME.yaml): (num_batches, batch_size) of criteo_zipf, sized for a run of about a second on
    # an idle 2-core machine (the whole bench: about a minute and a half there)
    "cpu_ddr4": (2, 256),  # the compiled host engine (archsim/system/host_engine.py): a full batch
    "cpu_ddr5": (2, 256),
    "recnmp": (2, 256),  # the compiled NMP engine (archsim/nmp/engine.py): full batches
    "recross": (2, 256),
    "cxl_pool": (2, 256),  # the host engine's compiled CXL path (archsim/dram/_cfab.h)
    "pifs_rec": (2, 256),  # the compiled PIFS-Rec engine (archsim/cxl/pifs_engine.py)
    "pifs_recross": (2, 16),
    "evstore": (2, 8),
    "hotline": (2, 16),
    "ssd_only": (2, 16),
    "dram_only": (2, 16),
    "gpu_h100": (1, 512),  # a GPU launch costs about the same for 16 bags as for 512: a GPU-sized batch
    # the other shipped architectures: variants of the above with code paths or sizes of their own
    "recnmp_baseline": (2, 256),
    "cxl_pool_2hosts": (1, 8),
    "pifs_rec_2hosts": (1, 16),
    "gpu_h100x4": (1, 512),
    "gpu_h200": (1, 512),
    "gpu_h100_fae": (1, 256),
    "gpu_h100x4_rowwise": (1, 256),
    "gpu_h100x4_ugache": (1, 256),
}
"""The sized architectures, in the order of the table. :func:`architectures` adds any other shipped hwconfig
that runs a workload (one with a ``host:``), at :data:`DEFAULT_SIZE`; left out are the DRAM-only validation
set-ups (``dram_ddr4_*``, ``dram_hbm2_*``: traces only) and the papers' set-ups (``*_paper*``: one channel, a host
without caches, run by ``archsim validate --papers``; the code paths of recnmp and recross)."""

DEFAULT_SIZE = (1, 8)
"""(num_batches, batch_size) of a shipped architecture that :data:`ARCHITECTURES` does not size (yet)."""

WARMUP = (1, 4)
"""(num_batches, batch_size) of the untimed run before an architecture's timed runs."""


def architectures() -> dict[str, tuple[int, int]]:
    """Every shipped architecture with its (num_batches, batch_size): :data:`ARCHITECTURES` (those shipped), then
    any other shipped hwconfig with a ``host:`` whose name has no ``_paper``, at :data:`DEFAULT_SIZE`."""
    from archsim.config import list_shipped, load_config

    shipped = [h["name"] for h in list_shipped("hwconfig")]
    out = {name: size for name, size in ARCHITECTURES.items() if name in shipped}
    for name in shipped:
        if name in out or "_paper" in name:
            continue
        try:
            data = load_config(name, kind="hwconfig").data
        except InputError:  # a broken shipped file is the tests' business, not the bench's
            continue
        if isinstance(data, dict) and "host" in data:
            out[name] = DEFAULT_SIZE
    return out


def parse_only(text: str | Iterable[str] | None, known: Iterable[str] | None = None) -> list[str] | None:
    """``--only NAME[,NAME]`` (repeatable): the architectures (and trace names) to run, None for all.
    InputError naming the unknown ones and the known names."""
    if text is None:
        return None
    parts = [text] if isinstance(text, str) else list(text)
    names = [n.strip() for part in parts for n in part.split(",") if n.strip()]
    archs = list(known) if known is not None else list(architectures())
    if not names:
        raise InputError("--only: no name given (architectures: " + ", ".join(archs) + ")")
    bad = [n for n in names if n not in archs and n not in TRACES]
    if bad:
        raise InputError(f"--only: unknown name{'s' if len(bad) > 1 else ''} {', '.join(map(repr, bad))} "
                         f"(architectures: {', '.join(archs)}; traces: {', '.join(TRACES)})")
    return list(dict.fromkeys(names))


def _median_run(fn: Callable[[], Any], repeat: int) -> tuple[Any, float, list[float]]:
    walls = []
    res = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        res = fn()
        walls.append(time.perf_counter() - t0)
    return res, statistics.median(walls), walls


def _sig(x: float, digits: int = 4) -> float:
    return float(f"{x:.{digits}g}")


def run_bench(out: str | os.PathLike[str] | None = "results/bench.json", config: str | None = None,
              engine: str | None = None, repeat: int = 3, only: Iterable[str] | None = None,
              echo: Callable[[str], None] | None = print) -> dict[str, Any]:
    """Run the bench; write it to ``out`` (JSON, atomically; None: not written) and return it.

    ``config``: the DRAM hwconfig of the trace lines; ``engine``: ``"c"`` or ``"python"`` (sets
    ``$ARCHSIM_ENGINE`` for this process); ``repeat``: runs per line (median wall time); ``only``: names of
    architectures and traces to run (the random trace always runs: the workload lines are divided by it);
    ``echo``: called with each line of the printed table (None: silent)."""
    from archsim.api import run
    from archsim.core.files import atomic_write_text
    from archsim.dram.controller import ENGINE_ENV, engine_name
    from archsim.validation import REPO_ROOT, reference_dir

    say = echo or (lambda _text: None)
    if repeat < 1:
        raise InputError(f"--repeat: must be >= 1, got {repeat}")
    sizes = architectures()
    names = parse_only(list(only), sizes) if only is not None else None
    archs = [a for a in sizes if names is None or a in names]
    traces = [t for t in TRACES if names is None or t in names or t == RANDOM_TRACE]
    if engine:
        os.environ[ENGINE_ENV] = engine
    cfg = config or str(REPO_ROOT / "hwconfigs" / "dram_ddr4_dramsim3.yaml")
    trace_dir = reference_dir() / "dram" / "traces"
    result: dict[str, Any] = {
        "config": Path(cfg).name, "window": 0, "unit": "simulated requests per wall second",
        "engine": engine_name(), "repeat": repeat, "statistic": "median wall time",
        "date": time.strftime("%Y-%m-%dT%H:%M:%S"), "only": names, "traces": {}}
    run(cfg, trace=trace_dir / f"{RANDOM_TRACE}.trace.gz", window=0)  # untimed: imports, first-call costs
    for name in traces:
        res, wall, walls = _median_run(partial(run, cfg, trace=trace_dir / f"{name}.trace.gz", window=0), repeat)
        rate = res.summary["requests"] / wall
        result["traces"][name] = {"requests": res.summary["requests"], "wall_s": round(wall, 3),
                                  "walls_s": [round(w, 3) for w in walls], "requests_per_s": round(rate)}
        say(f"{name:32s} {res.summary['requests']:>8d} requests {wall:7.2f} s {rate:>10,.0f} req/s")
    ref = result["traces"][RANDOM_TRACE]["requests_per_s"]

    wl = str(REPO_ROOT / "workloads" / f"{WORKLOAD}.yaml")
    result["workload_unit"] = "simulated lookups per wall second"
    result["ratio_reference"] = (f"lookups_per_s / traces.{RANDOM_TRACE}.requests_per_s of this run "
                                 f"({result['config']}, window 0)")
    result["warmup"] = {"num_batches": WARMUP[0], "batch_size": WARMUP[1],
                        "what": "one untimed run per architecture before its timed runs (process-level caches)"}
    result["workloads"] = {}
    for hw in archs:
        nb, bs = sizes[hw]
        hw_path = str(REPO_ROOT / "hwconfigs" / f"{hw}.yaml")
        sets = [f"num_batches={nb}", f"batch_size={bs}"]
        t0 = time.perf_counter()
        run(hw_path, workload=wl, workload_overrides=[f"num_batches={WARMUP[0]}", f"batch_size={WARMUP[1]}"])
        warm = time.perf_counter() - t0
        res, wall, walls = _median_run(partial(run, hw_path, workload=wl, workload_overrides=sets), repeat)
        lookups = int(res.summary["lookups"])
        rate = round(lookups / wall)
        ratio = _sig(rate / ref)
        result["workloads"][f"{hw}/{WORKLOAD}"] = {
            "hwconfig": hw, "workload": WORKLOAD, "workload_overrides": sets, "lookups": lookups,
            "wall_s": round(wall, 3), "walls_s": [round(w, 3) for w in walls], "warmup_wall_s": round(warm, 3),
            "lookups_per_s": rate, "ratio_to_random_dram": ratio}
        say(f"{hw + ' ' + WORKLOAD:32s} {lookups:>8d} lookups  {wall:7.2f} s {rate:>10,.0f} lookups/s "
            f"{ratio:8.4f} x random")
    if out is not None:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out, json.dumps(result, indent=2) + "\n")
        say(f"written {out}")
    return result
