"""Loaded read latency of an HBM (or any DRAM) configuration against the number of reads outstanding.

The GPU model (issue #14) does not simulate its HBM command by command for every run: it asks, once per HBM
configuration, how long a read takes when N reads are outstanding, and what bandwidth that gives. This module
measures that curve on the command-level DRAM model (:class:`~archsim.dram.memory.DRAMSystem`) with a closed
loop: N uniform random, aligned reads of ``access_bytes`` in flight, each completion replaced at once by a new
read (its callback sends the next one: no SimPy process per read).

The reads go through a :class:`~archsim.core.port.MemoryPort`: a read whose channel's read queue is full waits
in the port, in that channel's line (``DRAMSystem.queue_key``), and reads to the other channels pass it. That is
what a GPU's memory partitions do (each has its own queue of L2 misses; one full channel does not stop the
others). An in-order feed (:class:`~archsim.system.trace_driver.TraceDriver`, which the curve used before)
blocks every read behind one for a full channel (head-of-line): past the queues' capacity it saturated one
hbm3_5200 stack at 516 GB/s (2.58 TB/s for the H100's five stacks, against the 2.80 TB/s an H100 reads of
random 128 B lines); with per-channel waiting the same stack reaches 554 GB/s (2.77 TB/s). Up to about the
queues' capacity (N = 1,024 per stack: 32 pseudo-channels x 32 entries) the two feeds give the same curve.

What it abstracts: only the DRAM side is here (the controllers' queues and scheduling, the bank and bus timing,
refresh). The GPU's on-chip network, its L2 slices and the L2-miss path to the memory controllers are not: the
GPU model adds their fixed idle latency on top of :meth:`LatencyCurve.latency_ns`. The reads are independent and
uniform over the whole capacity (no row locality beyond one access's own bursts), reads only, no writes.

How a point is measured. The loop starts empty at time 0 (all N reads enter at once); until 3N reads have
completed is warm-up. Then completions are counted over a window of whole refresh periods (``nREFI`` x ``tCK``,
in which every rank refreshes once; ``periods`` of them, extended by whole periods until ``requests_per_point``
reads completed in it). The model refreshes all-bank with every channel in step, and the bandwidth falls while a
rank refreshes, feed or no feed: the loop's reads gather on the refreshing rank (the others' reads complete and
are replaced by random ones, of which that rank gets its share and keeps them), and once they fill a channel's
read queue the other rank idles too. On an hbm3_5200 stack with 4,096 or 12,288 reads outstanding the
completions fall for about 450 ns of every nREFI / ranks (1,950 ns) to half the plateau on average and a quarter
at the lowest (with the in-order feed: to a tenth); so a window of a fraction of a period would over- or
under-sample those dips. Over the window [T0, T1):

- throughput: bytes of the reads completed in the window / (T1 - T0);
- DRAM latency: the mean accept-to-done latency in the DRAM controllers, as Little's law over the window
  (time-integral of the reads accepted and not yet done, divided by the completion rate; exact in steady
  state, and free of the bias of averaging only the reads that finished inside the window);
- loop latency, :meth:`LatencyCurve.latency_ns`: N x access_bytes / throughput, from the moment a slot frees
  (the GPU issues its next miss) to the data. It exceeds the DRAM latency by less than one clock (a read is
  accepted at the next clock edge) while the controllers' read queues take the N reads, and grows past it once
  they are full: then reads wait in the port, in front of the DRAM.

Accesses larger than one burst (64 B or 128 B on HBM3's 32 B pseudo-channel bursts) are one request of
``access_bytes``: ``DRAMSystem.submit`` serves it as consecutive bursts (one queue entry per burst, in one bank
and row, split in C by the compiled engine), the read completing with its last burst.

Results are cached in the process, keyed by the spec's JSON and every argument: a second call is free. They are
also kept on disk (``$ARCHSIM_CACHE_DIR``, default ``$XDG_CACHE_HOME/archsim`` or ``~/.cache/archsim``;
``ARCHSIM_CACHE_DIR=off`` turns it off), keyed by the same, by the feed (:data:`FEED`) and by a digest of the
sources of the DRAM engine, the port and this module, so another process (a sweep's point, ``make bench``) reads
the curve instead of measuring it again (a third of a short GPU run): the same numbers, as JSON keeps every
float exactly.
"""

from __future__ import annotations

import bisect
from array import array
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from archsim.core.port import MemoryPort
from archsim.core.request import MemRequest
from archsim.core.sim import Simulator, fewer_gc_passes
from archsim.dram.memory import DRAMSystem
from archsim.dram.spec import DRAMSpec

DEFAULT_POINTS: tuple[int, ...] = (1, 16, 64, 256, 1024, 2048, 4096, 8192, 12288)
"""Reads outstanding at which the curve is measured (an H100 keeps up to about 10^4 misses in flight)."""

DEFAULT_REQUESTS = 20_000
"""Fewest reads completed in a point's measurement window: the mean latency at N = 1 to about 0.1 ns (a read
finds its bank closed, open on another row or refreshing: 38 to 60 ns and more on hbm3_5200). From about
N = 4,096 on one hbm3_5200 stack (32 pseudo-channels) the one refresh period of the window holds more reads
than this anyway. With it the default points take about 3 s on one stack of hbm3_5200 or hbm3e_6250 (64 B
reads, about 375,000 of them simulated with the warm-ups; 2 cores shared with other jobs)."""

DEFAULT_PERIODS = 1
"""Refresh periods (nREFI x tCK: every rank refreshes once) in a measurement window, at least."""

WARMUP_LOOPS = 3
"""Warm-up: until this many times N reads have completed (the loop starts with all N entering at once)."""

FEED = "port"
"""How the loop feeds the DRAM, part of the disk cache's key: ``port``, per-channel waiting in a
:class:`~archsim.core.port.MemoryPort` (a curve stored by the in-order feed of before has another key, so it
is measured again)."""

_CHUNK = 1 << 15


@dataclass(frozen=True)
class LatencyCurve:
    """Closed-loop read latency and bandwidth of a memory against the reads outstanding.

    Per measured point: ``outstanding`` (N, increasing); ``measured_throughputs_GBps`` (10^9 B/s, as measured);
    ``throughputs_GBps``, the same made monotone (see :func:`_monotone`: past saturation the measurements
    scatter by under a percent around the plateau); ``latencies_ns``, the loop's mean latency from those,
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
        are one stack's 16 channels measured and scaled by 5. The channels are independent: a read for a full
        channel waits for that channel only (the measurement's per-channel waiting)."""
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
    """A digest of the sources a curve's numbers depend on (the DRAM engine, the port and the request and
    event loop it runs on, this module)."""
    if not _CODE_DIGEST:
        import hashlib
        from pathlib import Path

        root = Path(__file__).resolve().parents[1]
        h = hashlib.sha256()
        files = sorted((root / "dram").glob("*.py")) + sorted((root / "dram").glob("*.[ch]")) + [
            root / "core" / "port.py", root / "core" / "request.py", root / "core" / "sim.py",
            Path(__file__).resolve()]
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
    return d / (hashlib.sha256(repr((key, FEED, _code_digest())).encode()).hexdigest()[:32] + ".json")


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
    saturation scatter around the plateau (an hbm3_5200 stack: 553.5 to 555.0 GB/s from N = 4,096 to 12,288;
    by 3% with the in-order feed the curve had before). First the throughputs are fitted by weighted isotonic
    regression (pool adjacent violators, weighted by the windows' lengths: a run of points that dips is replaced
    by the bytes over the time of its windows together); then a latency N x size / throughput below the previous
    point's is raised to it (the throughput lowered to match, still above the previous point's, as N is larger).
    Points that are monotone stay as measured."""
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


def _addresses(rng: np.random.Generator, capacity: int, size: int) -> Iterator[int]:
    """Endless uniform random addresses of reads of ``size`` bytes aligned to ``size``."""
    slots = capacity // size
    while True:
        yield from (rng.integers(0, slots, _CHUNK, dtype=np.int64) * size).tolist()


def _measure_point(spec: DRAMSpec, n: int, size: int, min_requests: int, periods: int,
                   seed: int) -> tuple[float, float, int, float]:
    """(DRAM latency ns, GB/s, reads in the window, window ns) with ``n`` reads in flight.

    The closed loop: ``n`` reads sent into a :class:`~archsim.core.port.MemoryPort` on the DRAM system at time
    0; each completion's callback sends the next read at once, in the completed read's slot (``tag``). The port
    passes a read to its channel's controller when that has room, and otherwise parks it in the channel's line
    (``DRAMSystem.queue_key``): reads to other channels go on. No SimPy process: the completions' callbacks
    drive the loop, and only the completed reads' (accept, done) times are kept."""
    sim = Simulator(0)
    mem = DRAMSystem(sim, spec, name="hbm")
    env = sim.env
    send = MemoryPort(mem).send
    nxt = _addresses(np.random.default_rng([seed, n]), spec.org.capacity_bytes, size).__next__
    live: list[MemRequest | None] = [None] * n  # the read in each slot
    accepted = array("q")  # t_accept and t_done of every read completed, in the order of completion
    finished = array("q")
    acc_append, fin_append = accepted.append, finished.append

    def on_done(ev) -> None:  # a read is back: the next one leaves at once, in its slot
        old = ev.value
        acc_append(old.t_accept)
        fin_append(env._now)
        req = MemRequest(nxt(), False, size, old.tag)
        live[req.tag] = req
        send(req, on_done)

    for i in range(n):
        req = live[i] = MemRequest(nxt(), False, size, i)
        send(req, on_done)
    period = spec.timing.nREFI * spec.timing.tCK_ps
    step = max(1, period // 16)
    t = 0
    with fewer_gc_passes():
        while len(finished) < WARMUP_LOOPS * n:  # warm-up
            t += step
            env.run(until=t)
        t0 = t
        done_at_t0 = len(finished)
        t += periods * period
        env.run(until=t)
        while len(finished) - done_at_t0 < min_requests:
            t += period
            env.run(until=t)
    t1 = t
    span = t1 - t0
    acc = np.frombuffer(accepted, dtype=np.int64)
    done = np.frombuffer(finished, dtype=np.int64)
    completed = int(np.count_nonzero(done >= t0))  # all completed before t1
    if completed == 0:
        raise RuntimeError(f"no read completed in {span} ps with {n} outstanding")
    # the time-integral of the reads in the DRAM (accepted, not done) over [t0, t1): those completed, and
    # those accepted and still in flight at t1 (a read still waiting in the port is not in the DRAM; one sent
    # just before t1 is accepted at the next clock edge, which may be t1 or later)
    in_flight_ps = int((np.clip(done, t0, t1) - np.clip(acc, t0, t1)).sum())
    in_flight_ps += sum(t1 - min(max(r.t_accept, t0), t1) for r in live if r.t_accept >= 0)
    rate = completed / span  # reads per ps
    dram_latency_ns = in_flight_ps / span / rate / 1000
    throughput = completed * size / span * 1000  # GB/s (B/ps x 1000)
    return dram_latency_ns, throughput, completed, span / 1000
