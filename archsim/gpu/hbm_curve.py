"""Loaded read latency of an HBM (or any DRAM) configuration against the number of reads outstanding.

The GPU model (issue #14) does not simulate its HBM command by command for every run: it asks, once per HBM
configuration, how long a read takes when N reads are outstanding, and what bandwidth that gives. This module
measures that curve on the command-level DRAM model (:class:`~archsim.dram.memory.DRAMSystem`) with a closed
loop: N uniform random, aligned reads of ``access_bytes`` in flight, each completion replaced at once by a new
read (:class:`~archsim.system.trace_driver.TraceDriver` with ``window=N``).

What it abstracts: only the DRAM side is here (the controllers' queues and scheduling, the bank and bus timing,
refresh). The GPU's on-chip network, its L2 slices and the L2-miss path to the memory controllers are not: the
GPU model adds their fixed idle latency on top of :meth:`LatencyCurve.latency_ns`. The reads are independent and
uniform over the whole capacity (no row locality beyond one access's own bursts), reads only, no writes.

How a point is measured. The loop starts empty at time 0 (all N reads enter at once); until 3N reads have
completed is warm-up. Then completions are counted over a window of whole refresh periods (``nREFI`` x ``tCK``,
in which every rank refreshes once; ``periods`` of them, extended by whole periods until ``requests_per_point``
reads completed in it). The model refreshes all-bank with every channel in step, and with the driver's
head-of-line blocking (below) the whole loop stalls while a rank refreshes (the bandwidth falls to about a third
for 350 ns every nREFI / ranks), so a window of a fraction of a period would over- or under-sample those stalls.
Over the window [T0, T1):

- throughput: bytes of the reads completed in the window / (T1 - T0);
- DRAM latency: the mean accept-to-done latency in the DRAM controllers, as Little's law over the window
  (time-integral of the reads accepted and not yet done, divided by the completion rate; exact in steady
  state, and free of the bias of averaging only the reads that finished inside the window);
- loop latency, :meth:`LatencyCurve.latency_ns`: N x access_bytes / throughput, from the moment a slot frees
  (the GPU issues its next miss) to the data. It exceeds the DRAM latency by less than one clock (a read is
  accepted at the next clock edge) while the controllers' read queues take the N reads, and grows past it once
  they are full: then reads wait in front of the DRAM. The driver offers reads in order, so one read for a full
  channel holds back the reads behind it (head-of-line), as a single in-order miss queue would; a GPU's
  per-partition queues would not, so past the queues' capacity this is pessimistic.

Accesses larger than one burst (64 B or 128 B on HBM3's 32 B pseudo-channel bursts) go through the driver's
generic path, which honours ``size`` (one queue entry per burst at consecutive addresses, in one bank and row,
the read completing with its last burst). The compiled engine's direct feed (``TraceDriver`` on an unused
``DRAMSystem``, several times faster) serves every trace record as ONE burst whatever ``size`` says, so it is
used only for single-burst reads.

Results are cached in the process, keyed by the spec's JSON and every argument: a second call is free. They are
also kept on disk (``$ARCHSIM_CACHE_DIR``, default ``$XDG_CACHE_HOME/archsim`` or ``~/.cache/archsim``;
``ARCHSIM_CACHE_DIR=off`` turns it off), keyed by the same and by a digest of the DRAM engine's and this
module's sources, so another process (a sweep's point, ``make bench``) reads the curve instead of measuring it
again (a third of a short GPU run): the same numbers, as JSON keeps every float exactly.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from archsim.core.sim import Simulator
from archsim.dram.memory import DRAMSystem
from archsim.dram.spec import DRAMSpec
from archsim.system.trace_driver import TraceDriver

DEFAULT_POINTS: tuple[int, ...] = (1, 16, 64, 256, 1024, 2048, 4096, 8192, 12288)
"""Reads outstanding at which the curve is measured (an H100 keeps up to about 10^4 misses in flight)."""

DEFAULT_REQUESTS = 20_000
"""Fewest reads completed in a point's measurement window: the mean latency at N = 1 to about 0.1 ns (a read
finds its bank closed, open on another row or refreshing: 38 to 60 ns and more on hbm3_5200). From about
N = 1024 on 64 channels the one refresh period of the window holds more reads than this anyway. With it the
default points take 12-17 s on 64 channels of hbm3_5200 (64 B or 128 B reads, 2 cores shared with other jobs;
the generic driver path does about 40,000 reads a second)."""

DEFAULT_PERIODS = 1
"""Refresh periods (nREFI x tCK: every rank refreshes once) in a measurement window, at least."""

WARMUP_LOOPS = 3
"""Warm-up: until this many times N reads have completed (the loop starts with all N entering at once)."""

_CHUNK = 1 << 15


@dataclass(frozen=True)
class LatencyCurve:
    """Closed-loop read latency and bandwidth of a memory against the reads outstanding.

    Per measured point: ``outstanding`` (N, increasing); ``measured_throughputs_GBps`` (10^9 B/s, as measured);
    ``throughputs_GBps``, the same made monotone (see :func:`_monotone`: past saturation the measurements
    scatter by a percent or two around the plateau); ``latencies_ns``, the loop's mean latency from those,
    N x ``access_bytes`` / throughput; ``dram_latencies_ns`` (mean accept-to-done latency in the DRAM, as
    measured); ``requests`` (reads completed in the window) and ``windows_ns`` (its length). ``peak_GBps``: the data-bus peak of the memory (:attr:`DRAMSpec.peak_bandwidth_GBps`);
    ``channels``: its ``org.channels``.
    """

    access_bytes: int
    outstanding: tuple[float, ...]
    latencies_ns: tuple[float, ...]
    dram_latencies_ns: tuple[float, ...]
    throughputs_GBps: tuple[float, ...]
    measured_throughputs_GBps: tuple[float, ...]
    requests: tuple[int, ...]
    windows_ns: tuple[float, ...]
    peak_GBps: float
    channels: int

    def latency_ns(self, outstanding: float) -> float:
        """Mean read latency in ns with ``outstanding`` reads in flight.

        Piecewise linear between the measured points; below the first, the first point's latency (the idle
        latency when that is N = 1); beyond the last, Little's law at the last point's throughput
        (``outstanding`` x ``access_bytes`` / throughput: the memory is saturated, the extra reads queue).
        """
        return _interp(self.outstanding, self.latencies_ns, outstanding,
                       lambda x: x * self.access_bytes / self.throughputs_GBps[-1])

    def dram_latency_ns(self, outstanding: float) -> float:
        """Mean accept-to-done latency inside the DRAM, piecewise linear; the last point's beyond it (the
        controllers' queues are full there, so it no longer grows)."""
        return _interp(self.outstanding, self.dram_latencies_ns, outstanding, lambda x: self.dram_latencies_ns[-1])

    def throughput_GBps(self, outstanding: float) -> float:
        """Bandwidth in GB/s with ``outstanding`` reads in flight: Little's law on :meth:`latency_ns`
        (``outstanding`` x ``access_bytes`` / latency), so the two always agree: the measured value at each
        point, the last point's beyond it, increasing in between."""
        if outstanding <= 0:
            return 0.0
        return outstanding * self.access_bytes / self.latency_ns(outstanding)

    def scaled(self, factor: float) -> LatencyCurve:
        """The curve of ``factor`` times as many channels of the same kind, uniform random reads spreading over
        all: N x factor outstanding see the latency of N here, and factor times the bandwidth.

        The DRAM schema takes only powers of two as ``org.channels``, so the H100's 80 channels (5 stacks)
        are 64 channels measured and scaled by 1.25. The channels are independent but for the driver's
        head-of-line blocking, which couples them once their queues fill."""
        if factor <= 0:
            raise ValueError(f"factor must be positive, got {factor}")
        return LatencyCurve(
            access_bytes=self.access_bytes,
            outstanding=tuple(n * factor for n in self.outstanding),
            latencies_ns=self.latencies_ns,
            dram_latencies_ns=self.dram_latencies_ns,
            throughputs_GBps=tuple(t * factor for t in self.throughputs_GBps),
            measured_throughputs_GBps=tuple(t * factor for t in self.measured_throughputs_GBps),
            requests=self.requests,
            windows_ns=self.windows_ns,
            peak_GBps=self.peak_GBps * factor,
            channels=round(self.channels * factor),
        )

    def table(self) -> list[tuple[float, float, float, float]]:
        """(N, latency ns, DRAM latency ns, GB/s) per point."""
        return list(zip(self.outstanding, self.latencies_ns, self.dram_latencies_ns, self.throughputs_GBps))


def _interp(xs: tuple[float, ...], ys: tuple[float, ...], x: float, beyond) -> float:
    if x < 0:
        raise ValueError(f"outstanding must be >= 0, got {x}")
    if x <= xs[0]:
        return ys[0]
    if x >= xs[-1]:
        return beyond(x)
    i = bisect.bisect_right(xs, x) - 1
    f = (x - xs[i]) / (xs[i + 1] - xs[i])
    return ys[i] + f * (ys[i + 1] - ys[i])


_CACHE: dict[tuple, LatencyCurve] = {}
CACHE_ENV = "ARCHSIM_CACHE_DIR"


def _disk_dir():
    """The on-disk cache's folder, or None when it is off."""
    import os
    from pathlib import Path

    d = os.environ.get(CACHE_ENV)
    if d is not None and d.strip().lower() in ("", "off", "0", "none"):
        return None
    if not d:
        d = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"),
                         "archsim")
    return Path(d) / "hbm_curves"


_CODE_DIGEST: list[str] = []


def _code_digest() -> str:
    """A digest of the sources a curve's numbers depend on (the DRAM engine, the trace driver, this module)."""
    if not _CODE_DIGEST:
        import hashlib
        from pathlib import Path

        root = Path(__file__).resolve().parents[1]
        h = hashlib.sha256()
        files = sorted((root / "dram").glob("*.py")) + sorted((root / "dram").glob("*.[ch]")) + [
            root / "system" / "trace_driver.py", Path(__file__).resolve()]
        for f in files:
            h.update(f.name.encode())
            h.update(f.read_bytes())
        _CODE_DIGEST.append(h.hexdigest()[:16])
    return _CODE_DIGEST[0]


def _disk_path(key: tuple):
    import hashlib

    d = _disk_dir()
    if d is None:
        return None
    return d / (hashlib.sha256(repr((key, _code_digest())).encode()).hexdigest()[:32] + ".json")


def _disk_load(key: tuple) -> LatencyCurve | None:
    import json

    path = _disk_path(key)
    if path is None or not path.is_file():
        return None
    try:
        d = json.loads(path.read_text())
        return LatencyCurve(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})
    except (OSError, ValueError, TypeError):
        return None  # unreadable or from another layout: measure again


def _disk_store(key: tuple, curve: LatencyCurve) -> None:
    import dataclasses
    import json

    from archsim.core.files import atomic_write_text

    path = _disk_path(key)
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(dataclasses.asdict(curve)))
    except OSError:
        pass  # a read-only home: no disk cache


def loaded_latency_curve(dram_spec: DRAMSpec, access_bytes: int = 64,
                         points: tuple[int, ...] = DEFAULT_POINTS,
                         requests_per_point: int = DEFAULT_REQUESTS, seed: int = 0, *,
                         periods: int = DEFAULT_PERIODS) -> LatencyCurve:
    """Measure the closed-loop read latency curve of ``dram_spec`` (see the module doc); cached.

    ``access_bytes``: bytes of each read, a power of two; reads are aligned to it and uniform over the
    capacity. ``points``: reads outstanding, increasing. ``requests_per_point``: fewest reads completed in a
    point's measurement window; ``periods``: fewest refresh periods in it. ``seed``: the addresses (the same
    seed gives the same curve). The GPU model reads :meth:`LatencyCurve.latency_ns` and
    :meth:`LatencyCurve.throughput_GBps` at the misses it has in flight.
    """
    points = tuple(int(n) for n in points)
    if not points or any(n < 1 for n in points) or list(points) != sorted(set(points)):
        raise ValueError(f"points must be increasing positive integers, got {points}")
    if access_bytes < 1 or access_bytes & (access_bytes - 1):
        raise ValueError(f"access_bytes must be a power of two, got {access_bytes}")
    if access_bytes > dram_spec.org.capacity_bytes:
        raise ValueError(f"access_bytes {access_bytes} exceeds the capacity {dram_spec.org.capacity_bytes}")
    if requests_per_point < 1 or periods < 1:
        raise ValueError("requests_per_point and periods must be >= 1")
    key = (dram_spec.model_dump_json(), access_bytes, points, requests_per_point, seed, periods)
    hit = _CACHE.get(key)
    if hit is None:
        hit = _disk_load(key)
        if hit is not None:
            _CACHE[key] = hit
    if hit is not None:
        return hit
    rows = [_measure_point(dram_spec, n, access_bytes, requests_per_point, periods, seed)
            for n in points]
    measured = [r[1] for r in rows]
    lat, thr = _monotone(points, measured, [r[3] for r in rows], access_bytes)
    curve = LatencyCurve(
        access_bytes=access_bytes,
        outstanding=points,
        latencies_ns=tuple(lat),
        dram_latencies_ns=tuple(r[0] for r in rows),
        throughputs_GBps=tuple(thr),
        measured_throughputs_GBps=tuple(measured),
        requests=tuple(r[2] for r in rows),
        windows_ns=tuple(r[3] for r in rows),
        peak_GBps=dram_spec.peak_bandwidth_GBps,
        channels=dram_spec.org.channels,
    )
    _CACHE[key] = curve
    _disk_store(key, curve)
    return curve


def _monotone(points: tuple[int, ...], thr: list[float], weights: list[float],
              size: int) -> tuple[list[float], list[float]]:
    """Loop latencies and throughputs, both non-decreasing in N, from measured throughputs.

    A closed loop's bandwidth does not fall and its latency does not shrink as N grows; measurements past
    saturation scatter around the plateau (the head-of-line blocking of the driver varies with where the
    refreshes fall). First the throughputs are fitted by weighted isotonic regression (pool adjacent
    violators, weighted by the windows' lengths: a run of points that dips is replaced by the bytes over the
    time of its windows together); then
    a latency N x size / throughput below the previous point's is raised to it (the throughput lowered to
    match, still above the previous point's, as N is larger). Points that are monotone stay as measured."""
    blocks: list[list[float]] = []  # [weighted sum, weight, count]
    for t, w in zip(thr, weights):
        blocks.append([t * w, float(w), 1])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] > blocks[-1][0] / blocks[-1][1]:
            s, w2, c = blocks.pop()
            blocks[-1][0] += s
            blocks[-1][1] += w2
            blocks[-1][2] += c
    fitted = [b[0] / b[1] for b in blocks for _ in range(b[2])]
    lat: list[float] = []
    for n, t in zip(points, fitted):
        lat.append(max(n * size / t, lat[-1] if lat else 0.0))
    return lat, [n * size / x for n, x in zip(points, lat)]


def clear_cache() -> None:
    """Forget the cached curves."""
    _CACHE.clear()


def _addresses(rng: np.random.Generator, capacity: int, size: int) -> Iterator[tuple[int, bool, int]]:
    """An endless trace of uniform random reads of ``size`` bytes aligned to ``size``."""
    slots = capacity // size
    while True:
        for a in (rng.integers(0, slots, _CHUNK, dtype=np.int64) * size).tolist():
            yield (a, False, -1)


def _measure_point(spec: DRAMSpec, n: int, size: int, min_requests: int, periods: int,
                   seed: int) -> tuple[float, float, int, float]:
    """(DRAM latency ns, GB/s, reads in the window, window ns) with ``n`` reads in flight."""
    sim = Simulator(0)
    mem = DRAMSystem(sim, spec, name="hbm")
    rng = np.random.default_rng([seed, n])
    # the direct feed serves each record as one burst whatever ``size`` says: only for single-burst reads
    drv = TraceDriver(sim.env, mem, _addresses(rng, spec.org.capacity_bytes, size), window=n, size=size,
                      record=True, direct=None if size <= mem.burst_bytes else False)
    period = spec.timing.nREFI * spec.timing.tCK_ps
    step = max(1, period // 16)
    env = sim.env
    t = 0
    while drv.completed < WARMUP_LOOPS * n:  # warm-up
        t += step
        env.run(until=t)
    t0 = t
    done_at_t0 = drv.completed
    t += periods * period
    env.run(until=t)
    while drv.completed - done_at_t0 < min_requests:
        t += period
        env.run(until=t)
    t1 = t
    times = np.asarray(drv.request_times(), dtype=np.int64)
    acc, done = times[:, 0], times[:, 1]
    done = np.where(done < 0, np.iinfo(np.int64).max, done)  # still in flight at t1
    span = t1 - t0
    completed = int(np.count_nonzero((done >= t0) & (done < t1)))
    if completed == 0:
        raise RuntimeError(f"no read completed in {span} ps with {n} outstanding")
    in_flight_ps = int((np.clip(done, t0, t1) - np.clip(acc, t0, t1)).sum())  # integral of reads in the DRAM
    rate = completed / span  # reads per ps
    dram_latency_ns = in_flight_ps / span / rate / 1000
    throughput = completed * size / span * 1000  # GB/s (B/ps x 1000)
    return dram_latency_ns, throughput, completed, span / 1000
