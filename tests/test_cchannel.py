"""The compiled channel engine (archsim/dram/_cchannel.c) against the Python reference, bit for bit.

Three ways of running a trace are compared: the Python :class:`ChannelController` fed by the TraceDriver's
SimPy process (the reference), the compiled controller fed by the same process (every request a MemRequest
with its own done event), and, for a single channel, the compiled controller running the driver's loop
itself (direct feed: no request objects, no per-request events). Every stats counter and histogram, the
energy ledger, the end time and each request's (t_accept, t_done) must be identical. The exact-timing tests
of test_dram_timing.py and the skip-idle test run on both engines as well.
"""

from __future__ import annotations

import gzip
import itertools
import random
from pathlib import Path

import pytest
import simpy
import test_dram_skip_exact
import test_dram_timing

from archsim.core.request import MemRequest
from archsim.core.sim import Simulator
from archsim.dram import controller as ctl_mod
from archsim.dram.controller import CChannelController, ChannelController, engine_name, make_controller
from archsim.dram.memory import DRAMSystem
from archsim.system.config import load_system
from archsim.system.trace_driver import TraceDriver
from archsim.workload import trace as trace_mod
from archsim.workload.trace import _parse_line, iter_trace

pytestmark = pytest.mark.skipif(CChannelController is None, reason="the compiled engine is not built")

ROOT = Path(__file__).resolve().parent.parent
TRACES = ROOT / "validation/reference/dram/traces"
DDR4 = "hwconfigs/dram_ddr4_dramsim3.yaml"
HBM2 = "hwconfigs/dram_hbm2_dramsim3.yaml"
RAM2 = "hwconfigs/dram_ddr4_ramulator2.yaml"
CONFIGS = [DDR4, HBM2, RAM2]
CPU4 = "hwconfigs/cpu_ddr4.yaml"  # its memory: 8 DDR4 channels, lines interleaved over channels
CPU5 = "hwconfigs/cpu_ddr5.yaml"  # 16 DDR5 subchannels
TRACE_NAMES = ["stream_r_100k", "random_r_100k", "random_rw_100k", "zipf105_row128_100k"]


def _simulate(monkeypatch, cfg_path, records, window, engine, direct, overrides=(), skip_idle=True):
    """Run ``records`` through ``cfg_path``; returns everything that must not depend on the engine."""
    monkeypatch.setenv("ARCHSIM_ENGINE", engine)
    cfg, _ = load_system(ROOT / cfg_path, overrides=list(overrides))
    sim = Simulator(0)
    mem = DRAMSystem(sim, cfg.dram)
    kind = CChannelController if engine == "c" else ChannelController
    assert all(type(ch) is kind for ch in mem.channels)
    for ch in mem.channels:
        ch.skip_idle = skip_idle
    drv = TraceDriver(sim.env, mem, iter(records), window=window, cycle_ps=cfg.dram.timing.tCK_ps,
                      direct=direct, record=True)
    assert drv.direct == bool(direct is None and engine == "c")
    sim.env.run(until=drv.finished)
    end = drv.last_done_ps
    mem.finalize(end)
    return {
        "end": end, "now": sim.env.now, "offered": drv.offered, "completed": drv.completed,
        "times": drv.request_times(), "stats": sim.stats.to_dict(raw=True), "energy": sim.energy.to_dict(),
        "summary": mem.summary(end),
    }


def _compare(monkeypatch, cfg_path, records, window, overrides=(), skip_idle=True):
    records = list(records)
    ref = _simulate(monkeypatch, cfg_path, records, window, "python", False, overrides, skip_idle)
    assert ref["completed"] == ref["offered"] == len(records)
    assert ref["end"] > 0
    for direct in (False, None):
        got = _simulate(monkeypatch, cfg_path, records, window, "c", direct, overrides, skip_idle)
        for key in ref:
            assert got[key] == ref[key], f"{key} differs (direct={direct})"


def _prefix(name: str, n: int) -> list[tuple[int, bool, int]]:
    return list(itertools.islice(iter_trace(TRACES / f"{name}.trace.gz"), n))


# ------------------------------------------------------------------------------------------- reference traces
@pytest.mark.parametrize("window", [1, 8, 0])
@pytest.mark.parametrize("trace", TRACE_NAMES)
@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda p: Path(p).stem)
def test_reference_traces_identical(monkeypatch, cfg, trace, window):
    _compare(monkeypatch, cfg, _prefix(trace, 10000 if window else 16000), window)


# ------------------------------------------------------------------------------------------- controller variants
VARIANTS = [
    (DDR4, ["dram.controller.row_policy=closed"]),
    (DDR4, ["dram.controller.merge_reads=false"]),
    (DDR4, ["dram.controller.refresh.staggered=false"]),
    (DDR4, ["dram.controller.refresh.policy=none"]),
    (DDR4, ["dram.controller.write_high_watermark=0.25", "dram.controller.write_low_watermark=0.1"]),
    (DDR4, ["dram.controller.cmd_queue=2", "dram.controller.row_hit_cap=0", "dram.controller.read_queue=8"]),
    (DDR4, ["dram.controller.dual_command_issue=true", "dram.mapping.xor_bank=true"]),
    (HBM2, ["dram.controller.dual_command_issue=false", "dram.controller.row_policy=closed"]),
    (RAM2, ["dram.controller.row_policy=closed"]),
    (RAM2, ["dram.controller.merge_reads=true", "dram.controller.refresh.staggered=true"]),
    (RAM2, ["dram.controller.dual_command_issue=true", "dram.controller.write_queue=4"]),
    # several channels in one shared loop (direct feed and driver process)
    (DDR4, ["dram.org.channels=4", "dram.controller.refresh.staggered=false"]),
    (RAM2, ["dram.org.channels=4"]),
]


@pytest.mark.parametrize("window", [0, 3])
@pytest.mark.parametrize("cfg,overrides", VARIANTS, ids=lambda v: Path(v).stem if isinstance(v, str) else
                         "+".join(o.rsplit(".", 1)[-1] for o in v))
def test_controller_variants_identical(monkeypatch, cfg, overrides, window):
    records = _prefix("random_rw_100k", 2500) + _prefix("zipf105_row128_100k", 2500)
    _compare(monkeypatch, cfg, records, window, overrides)


def _open_loop_trace(seed: int, n: int, gap: int = 30000) -> list[tuple[int, bool, int]]:
    """Requests with a cycle column: bursts, equal cycles, and idle gaps (up to ``gap`` cycles: several
    refresh intervals by default)."""
    rng = random.Random(seed)
    out, cycle = [], 20000  # the first request after several refresh intervals: the idle channel catches up
    hot = [rng.randrange(1 << 28) * 64 for _ in range(16)]
    for i in range(n):
        r = rng.random()
        cycle += 0 if r < 0.3 else rng.randrange(1, 40) if r < 0.97 else rng.randrange(gap // 6, gap)
        addr = rng.choice(hot) if rng.random() < 0.3 else rng.randrange(1 << 28) * 64
        out.append((addr, rng.random() < 0.3, cycle if i % 50 != 25 else -1))
    return out


@pytest.mark.parametrize("window", [0, 2])
@pytest.mark.parametrize("cfg", CONFIGS + [CPU5], ids=lambda p: Path(p).stem)
def test_open_loop_cycle_column_identical(monkeypatch, cfg, window):
    _compare(monkeypatch, cfg, _open_loop_trace(7, 3000), window)


def test_tick_every_cycle_identical(monkeypatch):
    records = _open_loop_trace(11, 500, gap=4000)
    for cfg in CONFIGS:
        _compare(monkeypatch, cfg, records, 0, skip_idle=False)


# ------------------------------------------------------------------------------------------- submit interface
def _host_like(monkeypatch, cfg_path, engine, n=3000):
    """Requests submitted through DRAMSystem's public face with their own done events (as a host model does),
    from several processes; each done event must fire at exactly t_done."""
    monkeypatch.setenv("ARCHSIM_ENGINE", engine)
    cfg, _ = load_system(ROOT / cfg_path)
    sim = Simulator(0)
    env = sim.env
    mem = DRAMSystem(sim, cfg.dram)
    rng = random.Random(5)
    reqs, fired, events = [], [], []

    def on_done(ev):
        fired.append((ev.value.tag, env.now))

    def client(k):
        for i in range(n // 3):
            yield env.timeout(rng.randrange(0, 3000))
            r = MemRequest(rng.randrange(1 << 27) * 64, rng.random() < 0.25, tag=(k, i))
            r.done = env.event() if i % 2 else None  # pre-set events and events made by submit()
            while not mem.can_accept(r):
                yield mem.space_event(r)
            ev = mem.submit(r)
            assert ev is r.done
            ev.callbacks.append(on_done)
            reqs.append(r)
            events.append(ev)

    procs = [env.process(client(k)) for k in range(3)]
    env.run(until=simpy.AllOf(env, procs))
    env.run(until=simpy.AllOf(env, events))
    mem.finalize()
    assert sorted(fired) == sorted((r.tag, r.t_done) for r in reqs)
    return ([(r.tag, r.t_submit, r.t_accept, r.t_done, r.added_cycle) for r in reqs], fired, env.now,
            sim.stats.to_dict(raw=True), sim.energy.to_dict())


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda p: Path(p).stem)
def test_submit_interface_identical(monkeypatch, cfg):
    assert _host_like(monkeypatch, cfg, "c") == _host_like(monkeypatch, cfg, "python")


def _event_order(monkeypatch, cfg_path, engine, seed, n=2500, overrides=()):
    """Every event the memory emits, in the order SimPy processes it, with clients whose behaviour depends on
    that order. Lock-step starts (one request per channel to the same bank, row and column at the same
    instant) make channels complete at the same picosecond; each completion callback takes the next address
    from one shared list (so the order of equal-time completions decides which channel gets what); a
    process with timeouts on cycle edges, and a callback scheduled at each completion's picosecond before it
    fires, interleave foreign events of equal time. Returns the log, the requests' times and the stats."""
    monkeypatch.setenv("ARCHSIM_ENGINE", engine)
    cfg, _ = load_system(ROOT / cfg_path, overrides=list(overrides))
    sim = Simulator(0)
    env = sim.env
    mem = DRAMSystem(sim, cfg.dram)
    nch = len(mem.channels)
    tck = mem.tck
    rng = random.Random(seed)
    log, reqs = [], []
    pool = []
    for i in range(n):
        if i % 5 == 0:  # a burst to the same bank, row and column of every channel
            base = rng.randrange(1 << 26) * 64 & ~(mem._ch_m << mem._ch_s)
            pool.extend(base | (k << mem._ch_s) for k in rng.sample(range(nch), nch))
        else:
            pool.append(rng.randrange(1 << 27) * 64)
    pool.reverse()
    waiting = []  # (req) blocked on a full queue, in order

    def send(tag):
        if not pool:
            return
        r = MemRequest(pool.pop(), rng.random() < 0.2, tag=tag)
        if waiting or not mem.can_accept(r):
            waiting.append(r)
            if len(waiting) == 1:
                mem.space_event(r).callbacks.append(on_space)
            return
        submit(r)

    def submit(r):
        ev = mem.submit(r)
        reqs.append(r)
        ev.callbacks.append(on_done)

    def on_space(ev):
        log.append(("space", env.now))
        while waiting:
            if not mem.can_accept(waiting[0]):
                mem.space_event(waiting[0]).callbacks.append(on_space)
                return
            submit(waiting.pop(0))

    def on_done(ev):
        r = ev.value
        log.append(("done", r.tag, env.now))
        send(r.tag + 1000)
        if r.tag % 3 == 0:  # a foreign event at this picosecond, after the ones already queued
            later = env.event()
            later.callbacks.append(lambda e, t=r.tag: log.append(("later", t, env.now)))
            later.succeed()

    def edges():
        for i in range(4 * n):
            yield env.timeout(tck * rng.choice([1, 1, 2, 7]) - env.now % tck)
            log.append(("edge", env.now))
            if i % 11 == 0:
                send(i)

    def lockstep():
        for i in range(n // (4 * nch) + 1):
            yield env.timeout(rng.randrange(50) * tck)
            for k in range(nch):
                send(10**7 + i * nch + k)

    procs = [env.process(edges()), env.process(lockstep())]
    env.run(until=simpy.AllOf(env, procs))
    while waiting or any(r.t_done < 0 for r in reqs):  # (refresh keeps the channels' wake-ups going)
        env.run(until=simpy.AllOf(env, [r.done for r in reqs]))
    mem.finalize()
    assert len(reqs) > n // 2 and all(r.t_done >= r.t_accept >= 0 for r in reqs)
    times = [(r.tag, r.addr, r.t_submit, r.t_accept, r.t_done) for r in reqs]
    return log, times, env.now, sim.stats.to_dict(raw=True), sim.energy.to_dict()


@pytest.mark.parametrize("cfg,overrides", [(HBM2, ()), (CPU4, ()), (CPU5, ()), (RAM2, ["dram.org.channels=4"]),
                                           (CPU4, ["dram.controller.row_policy=closed"])],
                         ids=["hbm2", "cpu_ddr4", "cpu_ddr5", "ramulator2_4ch", "cpu_ddr4_closed"])
def test_event_order_identical_across_channels(monkeypatch, cfg, overrides):
    """The shared loop of a multi-channel memory emits its events in the reference's order (per-channel
    wake-ups): equal-time completions of different channels, space notifications and foreign events."""
    got = _event_order(monkeypatch, cfg, "c", 3, overrides=overrides)
    ref = _event_order(monkeypatch, cfg, "python", 3, overrides=overrides)
    done = [e for e in ref[0] if e[0] == "done"]
    ties = len(done) - len({e[2] for e in done})
    assert ties > len(done) // 10  # many completions share their picosecond with another
    for a, b, what in zip(got, ref, ("log", "times", "end", "stats", "energy")):
        assert a == b, what


def test_issue_hook_sees_every_command(monkeypatch):
    """The compiled engine's ``_issue`` hook logs the same command stream as the reference's ``_issue``."""
    logs = {}
    for engine in ("python", "c"):
        monkeypatch.setenv("ARCHSIM_ENGINE", engine)
        cfg, _ = load_system(ROOT / DDR4)
        sim = Simulator(0)
        mem = DRAMSystem(sim, cfg.dram)
        ch = mem.channels[0]
        log = logs[engine] = []
        issue = ch._issue

        def traced(cmd, fb, req, c, log=log, issue=issue):
            log.append((cmd, fb, c))
            issue(cmd, fb, req, c)

        ch._issue = traced
        drv = TraceDriver(sim.env, mem, iter(_prefix("random_rw_100k", 2000)), window=4,
                          cycle_ps=cfg.dram.timing.tCK_ps)
        sim.env.run(until=drv.finished)
    assert len(logs["c"]) > 4000
    assert logs["c"] == logs["python"]


# ------------------------------------------------------------------------------------------- existing exact tests
def _cases(module):
    """(id, function, kwargs) for every test function of ``module``, its parametrizations expanded."""
    out = []
    for name in sorted(dir(module)):
        fn = getattr(module, name)
        if not name.startswith("test_") or not callable(fn):
            continue
        grids = [[{}]]
        for mark in getattr(fn, "pytestmark", []):
            if mark.name != "parametrize":
                continue
            names, values = mark.args[0], mark.args[1]
            names = [n.strip() for n in names.split(",")] if isinstance(names, str) else list(names)
            grid = []
            for v in values:
                if hasattr(v, "marks") and hasattr(v, "values"):  # pytest.param(...)
                    v = v.values
                elif len(names) == 1:
                    v = (v,)
                grid.append(dict(zip(names, v)))
            grids.append(grid)
        for combo in itertools.product(*grids):
            kw = {}
            for part in combo:
                kw.update(part)
            out.append((f"{name}[{','.join(f'{k}={v}' for k, v in kw.items())}]", fn, kw))
    return out


EXACT_CASES = _cases(test_dram_timing) + _cases(test_dram_skip_exact)


@pytest.mark.parametrize("engine", ["python", "c"])
@pytest.mark.parametrize("case", EXACT_CASES, ids=[c[0] for c in EXACT_CASES])
def test_exact_timing_cases_on_both_engines(monkeypatch, engine, case):
    _, fn, kwargs = case
    monkeypatch.setenv("ARCHSIM_ENGINE", engine)
    monkeypatch.chdir(ROOT)
    fn(**kwargs)


def test_exact_cases_were_collected():
    names = {c[0].split("[")[0] for c in EXACT_CASES}
    assert {"test_read_to_closed_bank", "test_fifth_activate_waits_for_tfaw", "test_hbm2_dual_command_issue",
            "test_skipping_idle_cycles_is_exact"} <= names
    assert len(EXACT_CASES) >= 25


# ------------------------------------------------------------------------------------------- engine selection
def test_engine_selection(monkeypatch):
    spec = load_system(ROOT / DDR4)[0].dram
    env = simpy.Environment()
    monkeypatch.delenv("ARCHSIM_ENGINE", raising=False)
    assert engine_name() == "c"
    assert type(make_controller(env, spec, 0)) is CChannelController
    monkeypatch.setenv("ARCHSIM_ENGINE", "python")
    assert type(make_controller(env, spec, 0)) is ChannelController
    assert type(make_controller(env, spec, 0, engine="c")) is CChannelController
    monkeypatch.setenv("ARCHSIM_ENGINE", "fortran")
    with pytest.raises(ValueError, match="unknown channel engine"):
        make_controller(env, spec, 0)
    monkeypatch.setattr(ctl_mod, "_cchannel", None)
    monkeypatch.delenv("ARCHSIM_ENGINE")
    assert engine_name() == "python"  # not built: the reference, silently


def test_direct_feed_only_when_safe(monkeypatch):
    monkeypatch.setenv("ARCHSIM_ENGINE", "c")
    cfg = load_system(ROOT / DDR4)[0]
    sim = Simulator(0)
    mem = DRAMSystem(sim, cfg.dram)
    mem.submit = mem.submit  # wrapped (here: shadowed) submit: the driver must go through it
    assert not TraceDriver(sim.env, mem, iter([(0, False, -1)])).direct
    sim = Simulator(0)
    hbm = DRAMSystem(sim, load_system(ROOT / HBM2)[0].dram)  # several channels: one shared loop, fed directly
    assert TraceDriver(sim.env, hbm, iter([(0, False, -1)]), direct=True).direct
    with pytest.raises(ValueError, match="direct feed"):  # a source is attached already
        TraceDriver(sim.env, hbm, iter([(0, False, -1)]), direct=True)
    sim = Simulator(0)
    hbm = DRAMSystem(sim, load_system(ROOT / HBM2)[0].dram)
    hbm.submit(MemRequest(1 << 20))  # used: the driver is not its only client
    with pytest.raises(ValueError, match="direct feed"):
        TraceDriver(sim.env, hbm, iter([(0, False, -1)]), direct=True)


def test_shared_loop_membership(monkeypatch):
    """A DRAMSystem's compiled channels share one loop; share_loop refuses what it cannot run exactly."""
    monkeypatch.setenv("ARCHSIM_ENGINE", "c")
    spec = load_system(ROOT / HBM2)[0].dram
    sim = Simulator(0)
    mem = DRAMSystem(sim, spec)
    loop = mem._loop
    assert loop.channels == tuple(mem.channels) and all(ch._loop is loop for ch in mem.channels)
    alone = make_controller(sim.env, spec, 0)
    assert alone._loop.channels == (alone,)  # a channel made on its own has a loop of its own
    with pytest.raises(ValueError, match="twice"):
        ctl_mod.share_loop([alone, alone])
    with pytest.raises(ValueError, match="not given"):
        ctl_mod.share_loop(mem.channels[:2])  # their loop runs the other six as well
    with pytest.raises(ValueError, match="one environment"):
        ctl_mod.share_loop([alone, make_controller(simpy.Environment(), spec, 1)])
    mem.submit(MemRequest(0))
    with pytest.raises(ValueError, match="idle"):
        ctl_mod.share_loop(mem.channels)
    assert loop.wake_time is not None and mem.channels[0].wake_cycle < ctl_mod._NEVER


# ------------------------------------------------------------------------------------------- trace reader
def _reference_records(path):
    name = str(path)
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", encoding="ascii", errors="replace") as f:
        for lineno, line in enumerate(f, 1):
            rec = _parse_line(line, name, lineno)
            if rec is not None:
                yield rec


@pytest.mark.parametrize("chunk", [7, 64, 1 << 18])
def test_trace_reader_fast_path_matches_reference(tmp_path, monkeypatch, chunk):
    monkeypatch.setattr(trace_mod, "_CHUNK", chunk)
    rng = random.Random(chunk)
    forms = ["0x{a:x} R", "0x{a:X} w", "{a} READ {c}", "0X{a:x}\tWRITE\t{c}", "LD 0x{a:x}", "st {a}",
             "  0x{a:x}   ld  ", "0x{a:x} ST {c}", "# comment {a}", "", "   ", "0x{a:x} R {c}\r",
             "0x_{a:x} R", "0x{a:x} R 1_0", "{big} W", "0x{a:x}\x0bR", "0x{a:x} r 0{c}", "# caf\u00e9 {a}"]
    lines = []
    for _ in range(3000):
        f = rng.choice(forms)
        # {big}: the largest address, 20 digits, so the reference parser reads it
        lines.append(f.format(a=rng.randrange(1 << 40), c=rng.randrange(10**6), big=(1 << 64) - 1))
    p = tmp_path / "t.trace"
    p.write_bytes(("\n".join(lines) + rng.choice(["", "\n", "\r\n"])).encode("utf-8"))
    assert list(iter_trace(p)) == list(_reference_records(p))
    # a malformed line is reported with the reference's message and line number
    bad = tmp_path / "bad.trace.gz"
    with gzip.open(bad, "wt") as f:
        f.write("\n".join(lines[:1000]) + "\n0x40 READ -3\n")
    with pytest.raises(Exception) as e_fast:
        list(iter_trace(bad))
    with pytest.raises(Exception) as e_ref:
        list(_reference_records(bad))
    assert str(e_fast.value) == str(e_ref.value) and ":1001: malformed" in str(e_ref.value)


@pytest.mark.parametrize("engine", ["c", "python"])
def test_unified_queue_with_zero_low_watermark_serves_every_read(tmp_path, monkeypatch, engine):
    """Ramulator 2's unified queue left write mode only below the low watermark: at write_low_watermark 0
    that never held, and reads waiting behind an empty write buffer waited forever (a hang the fuzz campaign
    found). An empty write buffer now always ends write mode; above 0 nothing changes."""
    from archsim.api import run

    monkeypatch.setenv("ARCHSIM_ENGINE", engine)
    import numpy as np

    rng = np.random.default_rng(5)
    lines = [f"{int(a) << 6:#x} {'WRITE' if i % 3 == 0 else 'READ'} {i}"
             for i, a in enumerate(rng.integers(0, 1 << 20, size=400))]
    trace = tmp_path / "t.trace"
    trace.write_text("\n".join(lines) + "\n")
    res = run(ROOT / "hwconfigs" / "dram_ddr4_ramulator2.yaml", trace=trace, max_wall=60,
              overrides=["dram.controller.write_low_watermark=0"])
    assert res.summary["requests"] == 400


def test_direct_feed_is_not_used_for_accesses_larger_than_a_burst():
    """The compiled loop serves each trace record as one burst; a driver asked for larger accesses takes the
    generic path (which splits them into bursts) instead of silently serving one burst each."""
    import pytest

    from archsim.config import load_config
    from archsim.core.sim import Simulator
    from archsim.dram.memory import DRAMSystem
    from archsim.dram.spec import DRAMSpec
    from archsim.system.trace_driver import TraceDriver

    spec = DRAMSpec.model_validate(load_config("hbm3_6400", kind="dram").data)
    sim = Simulator(0)
    mem = DRAMSystem(sim, spec)
    drv = TraceDriver(sim.env, mem, iter([(0, False, -1)]), size=2 * mem.burst_bytes)
    assert not drv.direct
    with pytest.raises(ValueError, match="one burst"):
        TraceDriver(sim.env, DRAMSystem(Simulator(0), spec), iter([]), size=2 * mem.burst_bytes, direct=True)
