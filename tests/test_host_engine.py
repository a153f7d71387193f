"""Issue #15: the fast paths of whole-system runs give the results of the reference paths, bit for bit.

``ARCHSIM_HOST_ENGINE=python`` runs the reference: SimPy's own event loop (no dropping of the request <-> done
event cycles), a ``MemRequest`` and a ``simpy.Event`` per line the host cores load, ``call_at`` as a
``simpy.Event``, the Python LRU tag array. The default (``fast``) runs archsim's event loop, the cores' line
loads as ``Light`` completions into the LLC (or the on-chip delay path), the compiled LRU tag array. Both must
give the same stats tree, energy and summary on every kind of system that the fast paths touch.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from archsim.api import run
from archsim.cache import policies
from archsim.cache.set_assoc import SetAssocCache
from archsim.core.port import Light
from archsim.core.sim import HOST_ENGINE_ENV, Environment, Simulator, host_engine_name

ROOT = Path(__file__).resolve().parent.parent
WORKLOAD = ROOT / "workloads" / "criteo_zipf.yaml"


def _result(arch: str, sets: list[str], extra: list[str] = ()) -> str:
    res = run(ROOT / "hwconfigs" / f"{arch}.yaml", workload=WORKLOAD, workload_overrides=sets, overrides=extra)
    summary = {k: v for k, v in res.summary.items() if k != "wall_time_s"}
    return json.dumps({"summary": summary, "stats": res.stats}, sort_keys=True, default=str)


@pytest.mark.parametrize("arch,sets,extra", [
    ("cpu_ddr4", ["num_batches=2", "batch_size=24"], []),  # LLC, 8 DRAM channels
    ("cpu_ddr4", ["num_batches=1", "batch_size=16"], ["host.llc.policy=lfu"]),  # Python tags, fast cores
    ("cpu_ddr4", ["num_batches=1", "batch_size=16"], ["host.llc.write_policy=read_only"]),
    ("cpu_ddr4", ["num_batches=1", "batch_size=16"], ["host.bag_schedule=static"]),
    ("cpu_ddr4", ["num_batches=1", "batch_size=16"], ["host.llc=null"]),  # the on-chip delay path
    ("cxl_pool", ["num_batches=1", "batch_size=8"], []),  # LLC over links, a switch and expanders
    ("recross", ["num_batches=1", "batch_size=16"], []),  # NMP units: rank caches (LRU tags), ports
    ("pifs_rec", ["num_batches=1", "batch_size=8"], []),
    ("evstore", ["num_batches=1", "batch_size=8"], []),  # tiers over an SSD, delay path, no LLC
    # the compiled host engine (cores, LLC and port inside the DRAM loop): full read queues (the port's waits
    # for space), other DRAM standards and hosts
    ("cpu_ddr4", ["num_batches=2", "batch_size=16"], ["dram.controller.read_queue=2"]),
    ("cpu_ddr4", ["num_batches=1", "batch_size=16"],
     ["dram.controller.read_queue=3", "host.bag_schedule=static", "host.fill_buffers=3"]),
    ("cpu_ddr5", ["num_batches=1", "batch_size=16"], []),
    ("recnmp_baseline", ["num_batches=1", "batch_size=16"], []),
    ("dram_only", ["num_batches=1", "batch_size=8"], []),  # tiers: the Python fast paths
    ("hotline", ["num_batches=1", "batch_size=8"], []),
    # the host engine's compiled CXL path (links, switch, expanders): credits, ingress buffer, arbitration, the
    # expanders' DRAM queues and controller delay
    ("cxl_pool", ["num_batches=2", "batch_size=16"], []),
    ("cxl_pool", ["num_batches=1", "batch_size=16"],
     ["cxl.switches.0.ports.0.link.credits=3", "cxl.switches.0.ports.1.link.credits=2",
      "cxl.switches.0.queue_depth=2"]),
    ("cxl_pool", ["num_batches=1", "batch_size=16"],
     ["cxl.switches.0.arbitration=oldest_first", "cxl.switches.0.crossbar_slot_ns=7",
      "cxl.expanders.0.dram.controller.read_queue=1", "cxl.expanders.1.controller_latency_ns=0",
      "cxl.switches.0.ports.0.link.flit_bytes=256"]),
    # the compiled PIFS-Rec engine (the switch's units and the fabric they read through)
    ("pifs_rec", ["num_batches=2", "batch_size=16"], []),
    ("pifs_rec", ["num_batches=1", "batch_size=16"],
     ["cxl.pifs.buffer_admit=hot", "cxl.pifs.buffer_kib=64", "cxl.switches.0.ports.0.link.credits=2",
      "cxl.switches.0.ports.1.link.credits=1", "cxl.switches.0.queue_depth=2"]),
    ("pifs_rec", ["num_batches=1", "batch_size=16"],
     ["cxl.pifs.buffer_kib=0", "cxl.switches.0.arbitration=oldest_first", "cxl.switches.0.crossbar_slot_ns=9",
      "cxl.expanders.0.dram.controller.read_queue=1"]),
    ("pifs_rec_2hosts", ["num_batches=1", "batch_size=8"], []),  # two hosts: the Python paths
    # the compiled NMP engine (rank, bank-group and bank units inside the DRAM loop)
    ("recnmp", ["num_batches=2", "batch_size=16"], []),  # rank units, rank caches
    ("recross", ["num_batches=2", "batch_size=16"], []),  # cross level: hot rows at rank, cold at bank units
    ("recross", ["num_batches=1", "batch_size=16"], ["nmp.cross_hot_level=bank", "nmp.bankgroup_adders=false"]),
    ("recnmp", ["num_batches=1", "batch_size=16"], ["nmp.level=bankgroup", "dram.controller.read_queue=2"]),
    ("recnmp", ["num_batches=1", "batch_size=16"], ["nmp.level=bank"]),
    ("recnmp", ["num_batches=1", "batch_size=16"],
     ["nmp.rank_cache_admit=hot", "nmp.hot_fraction=0.05", "dram.controller.read_queue=3"]),
    ("recnmp", ["num_batches=1", "batch_size=16"], ["nmp.rank_cache_kib=0"]),
    ("recnmp", ["num_batches=1", "batch_size=16"], ["nmp.poolings_per_packet=4"]),  # packets: Python units
    ("recross_paper", ["num_batches=1", "batch_size=16"], []),
])
def test_fast_paths_match_the_reference(monkeypatch, arch: str, sets: list[str], extra: list[str]) -> None:
    monkeypatch.setenv(HOST_ENGINE_ENV, "python")
    ref = _result(arch, sets, extra)
    monkeypatch.setenv(HOST_ENGINE_ENV, "fast")
    assert _result(arch, sets, extra) == ref


def _shipped_with_a_host() -> list[str]:
    """Every shipped hwconfig that runs a workload (a ``host:``), the papers' set-ups included."""
    from archsim.config import list_shipped, load_config

    out = []
    for h in list_shipped("hwconfig"):
        data = load_config(h["name"], kind="hwconfig").data
        if isinstance(data, dict) and "host" in data:
            out.append(h["name"])
    return out


@pytest.mark.parametrize("arch", _shipped_with_a_host())
def test_every_shipped_hwconfig_matches_the_reference(monkeypatch, arch: str) -> None:
    """Issue #15: the fast paths and the compiled engines give the reference's results on every shipped
    hwconfig (one batch of 4 bags, seed 0; the larger comparisons above exercise each engine's corners)."""
    monkeypatch.setenv(HOST_ENGINE_ENV, "python")
    ref = _result(arch, ["num_batches=1", "batch_size=4"])
    monkeypatch.setenv(HOST_ENGINE_ENV, "fast")
    assert _result(arch, ["num_batches=1", "batch_size=4"]) == ref


def _attached(monkeypatch, module=None) -> list:
    """Record what a compiled engine's ``attach`` is called with and the loop it returns: ``module`` is the
    engine's (default the host engine's, archsim.system.host_engine)."""
    if module is None:
        from archsim.system import host_engine as module

    seen = []
    attach = module.attach

    def spy(component):
        loop = attach(component)
        seen.append((component, loop))
        return loop

    monkeypatch.setattr(module, "attach", spy)
    return seen


@pytest.mark.parametrize("arch,extra,engine", [
    ("cpu_ddr4", [], True), ("cpu_ddr5", [], True), ("recnmp_baseline", [], True),
    ("cpu_ddr4", ["host.llc.policy=lfu"], False), ("cpu_ddr4", ["host.llc=null"], False), ("recross", [], False),
    ("dram_only", [], False), ("hotline", [], False), ("cxl_pool", [], True),
])
def test_compiled_host_engine_attaches_where_it_applies(monkeypatch, arch: str, extra: list[str],
                                                        engine: bool) -> None:
    """The engine runs the LLC-over-DRAM hosts (so the comparisons above are not vacuous) and nothing else; its
    counters reach the Python objects, and the LLC it drives refuses other requests."""
    monkeypatch.setenv(HOST_ENGINE_ENV, "fast")
    seen = _attached(monkeypatch)
    run(ROOT / "hwconfigs" / f"{arch}.yaml", workload=WORKLOAD, workload_overrides=["num_batches=1", "batch_size=8"],
        overrides=extra)
    loops = [loop for _op, loop in seen if loop is not None]
    assert bool(loops) == engine
    if not engine:
        return
    op = seen[0][0]
    if arch == "cxl_pool":  # the compiled CXL path: every miss crossed the links, the switch and an expander
        link1, sw, outs = op._fabric
        misses = op.mem.tags.misses - op.mem.merged
        assert link1.m2s.messages == link1.s2m.messages == sw._in_ports[0].requests == misses > 0
        assert sum(exp.reads for _link, exp in outs) == sum(o.requests for o in sw._outputs) == misses
        assert sw._in_ports[0].queue_delay.count == misses
    assert op.mem.accesses == op.lines > 0
    assert op.mem.port.sent == op.mem.tags.misses - op.mem.merged > 0
    assert op.line_latency.count == op.lines and op.bag_latency.count == op.bags
    with pytest.raises(RuntimeError, match="compiled host engine"):
        op.mem.read_light(0, 64, Light())


@pytest.mark.parametrize("arch,extra,engine", [
    ("recnmp", [], True), ("recross", [], True), ("recnmp", ["nmp.level=bank"], True),
    ("recnmp", ["nmp.rank_cache_admit=hot", "nmp.hot_fraction=0.05"], True),
    ("recnmp", ["nmp.poolings_per_packet=4"], False),
])
def test_compiled_nmp_engine_attaches_where_it_applies(monkeypatch, arch: str, extra: list[str],
                                                       engine: bool) -> None:
    """The NMP engine runs the units of a host's RecNMP or ReCross memory (so the comparisons above are not
    vacuous), not RecNMP's packets; the units' counters reach the Python objects."""
    from archsim.nmp import engine as nmp_engine

    monkeypatch.setenv(HOST_ENGINE_ENV, "fast")
    seen = _attached(monkeypatch, nmp_engine)
    res = run(ROOT / "hwconfigs" / f"{arch}.yaml", workload=WORKLOAD,
              workload_overrides=["num_batches=1", "batch_size=8"], overrides=extra)
    assert len(seen) == 1 and (seen[0][1] is not None) == engine
    nmp = seen[0][0]
    lines = sum(u.lines for u in nmp.units)
    served = sum(u.cache.hits + u.cache.merged for u in nmp.units if u.cache is not None)
    # 4 lines a row: read, or served by a rank cache or a read in flight
    assert lines + served == res.summary["lookups"] * 4 > 0
    assert nmp.instructions >= res.summary["lookups"] and nmp.partials > 0


@pytest.mark.parametrize("arch,engine", [("pifs_rec", True), ("pifs_rec_2hosts", False), ("pifs_recross", False)])
def test_compiled_pifs_engine_attaches_where_it_applies(monkeypatch, arch: str, engine: bool) -> None:
    """The PIFS-Rec engine runs a single host's units in the switch (not two hosts', not units in the
    expanders); the counts it writes back add up: every line a unit read crossed its port's link and reached an
    expander, and every bag's command and pooled vector crossed the host link."""
    from archsim.cxl import pifs_engine

    monkeypatch.setenv(HOST_ENGINE_ENV, "fast")
    seen = _attached(monkeypatch, pifs_engine)
    res = run(ROOT / "hwconfigs" / f"{arch}.yaml", workload=WORKLOAD,
              workload_overrides=["num_batches=1", "batch_size=8"])
    assert any(loop is not None for _p, loop in seen) == engine
    if not engine:
        return
    p = seen[0][0]
    link1, sw, outs = p._fabric
    lines = sum(u.lines for u in p.units)
    assert sum(exp.reads for _lk, exp in (o for o in outs if o is not None)) == lines > 0
    assert sum(lk.m2s.messages for lk, _x in (o for o in outs if o is not None)) == lines
    assert p.bags == res.summary["bags"] and link1.s2m.by_type["s2m_drs"] == p.bags * 4  # 256 B pooled vectors
    assert p.partials >= p.bags and p.result_bytes == p.bags * 256


def test_compiled_host_engine_waits_for_queue_space(monkeypatch) -> None:
    """With two read-queue entries a channel the port holds misses back (MemoryPort's per-channel wait): the
    engine's drain path runs (and the parametrized comparison above holds it to the reference)."""
    monkeypatch.setenv(HOST_ENGINE_ENV, "fast")
    seen = _attached(monkeypatch)
    run(ROOT / "hwconfigs" / "cpu_ddr4.yaml", workload=WORKLOAD, workload_overrides=["num_batches=1", "batch_size=16"],
        overrides=["dram.controller.read_queue=2"])
    op, loop = seen[0]
    assert loop is not None and op.mem.port.stalled > 0


def test_engine_selection(monkeypatch) -> None:
    monkeypatch.delenv(HOST_ENGINE_ENV, raising=False)
    assert host_engine_name() == "fast" and isinstance(Simulator().env, Environment)
    monkeypatch.setenv(HOST_ENGINE_ENV, "python")
    assert host_engine_name() == "python" and type(Simulator().env) is not Environment
    assert type(policies.make_tags(64 * 64, 4, 64, "xor")) is SetAssocCache
    monkeypatch.setenv(HOST_ENGINE_ENV, "turbo")
    with pytest.raises(ValueError, match="fast or python"):
        host_engine_name()


def test_event_loop_matches_simpy() -> None:
    """archsim's loop: the same order of equal-time events (priority, then insertion), until= a time and an
    event, StopSimulation's leftover callbacks, failed events, and the done <-> request cycle dropped."""
    import simpy

    def trace(env_cls):
        env = env_cls()
        log = []

        def proc(name, delays):
            for d in delays:
                yield env.timeout(d)
                log.append((env.now, name))

        for i in range(4):
            env.process(proc(f"p{i}", [3, 0, 2, 5][i:] + [1, 1]))
        ev = env.event()
        ev._ok, ev._value = True, None
        ev.callbacks.append(lambda e: log.append((env.now, "cb1")))
        ev.callbacks.append(lambda e: log.append((env.now, "cb2")))
        env.schedule(ev, simpy.events.URGENT, 3)
        env.run(until=4)
        log.append(("until", env.now))
        stop = env.timeout(2, value="v")
        assert env.run(until=stop) == "v"
        halt = env.timeout(1, value="h")  # a callback raising StopSimulation, one left after it
        halt.callbacks += [simpy.core.StopSimulation.callback, lambda e: log.append((env.now, "left"))]
        log.append(("stopped", env.run()))
        env.run()
        failed = env.event()
        failed.fail(RuntimeError("boom"))
        with pytest.raises(RuntimeError, match="boom"):
            env.run()
        return log

    assert trace(Environment) == trace(simpy.Environment)

    env = Environment()

    class Req:
        done = None

    r = Req()
    r.done = env.event()
    r.done.succeed(r)
    light = Light.__new__(Light)
    light.callbacks = [lambda e: None]
    light.value = 3
    env.schedule(light, simpy.events.NORMAL, 1)
    env.run()
    assert r.done is None  # the cycle is gone once the event was processed


def test_compiled_lru_tags_match_the_reference() -> None:
    """The compiled LRU tag array answers every call as SetAssocCache does (hits, victims and their dirty bits,
    invalidations, set index, counters, the order of lines in a set)."""
    _ctags = pytest.importorskip("archsim.cache._ctags")
    rng = random.Random(5)
    for _ in range(60):
        ways = rng.choice([1, 2, 4, 12, 16])
        nsets = rng.choice([1, 3, 8, 1280])
        lb = rng.choice([1, 64])
        index = rng.choice(["modulo", "xor"])
        a = SetAssocCache(nsets * ways * lb, ways, lb, index)
        b = _ctags.LRUTags(nsets * ways * lb, ways, lb, index)
        assert (b.nsets, b.ways, b.line_shift, b.capacity_lines, b.policy) == (nsets, ways, a.line_shift,
                                                                              a.capacity_lines, "lru")
        span = rng.choice([20, 3000, 1 << 40])
        for _ in range(1500):
            line = rng.randrange(span)
            k = rng.random()
            if k < 0.5:
                w = rng.random() < 0.2
                assert a.lookup(line, w) == b.lookup(line, write=w)
            elif k < 0.9:
                d = rng.random() < 0.3
                va, vb = a.fill(line, d), b.fill(line, dirty=d)
                assert (va is None) == (vb is None) and (va is None or (va[0], bool(va[1])) == vb)
            elif k < 0.95:
                va, vb = a.invalidate(line), b.invalidate(line)
                assert (va is None) == (vb is None) and (va is None or (va[0], bool(va[1])) == vb)
            else:
                assert a.contains(line) == b.contains(line) and a.set_of(line) == b.set_of(line)
        assert a.stats() == b.stats()
        for i in range(min(nsets, 40)):
            assert [(line, bool(d)) for line, d in (a.sets[i] or {}).items()] == b.set_lines(i)
    for bad in (dict(size_bytes=64 * 3, ways=2), dict(size_bytes=64, ways=0),
                dict(size_bytes=256, ways=2, line_bytes=48), dict(size_bytes=256, ways=2, index="hash")):
        with pytest.raises(ValueError) as ea:
            SetAssocCache(**bad)
        with pytest.raises(ValueError) as eb:
            _ctags.LRUTags(**bad)
        assert str(ea.value) == str(eb.value)


@pytest.mark.parametrize("ps_per_row", [1000, 200_000])
def test_compiled_host_engine_with_a_near_data_table(monkeypatch, ps_per_row: int) -> None:
    """A near-data component that takes one table while the engine gathers the others: the batch ends with its
    last bag whichever side that is (fast near data, and near data slower than the host), as on the Python
    path."""
    from test_workload_run import CPU, ZIPF, PoolingUnit

    from archsim.system.builder import build_host_system, build_layout
    from archsim.system.config import load_system
    from archsim.workload.batches import iter_batches
    from archsim.workload.spec import load_workload

    def result(engine: str) -> tuple:
        monkeypatch.setenv(HOST_ENGINE_ENV, engine)
        cfg, _ = load_system(CPU)
        wl = load_workload(ZIPF, ["num_batches=3"])
        tables = wl.table_list()
        sim = Simulator(0)
        system = build_host_system(sim, cfg, tables, build_layout(cfg, tables))
        system.operator.near_data = PoolingUnit(sim, table=1, ps_per_row=ps_per_row)
        sim.env.run(sim.env.process(system.operator.run(iter_batches(wl))))
        op = system.operator
        op.finalize()
        hists = [(h.count, h.mean(), h.percentile(99), h.max) for h in (op.bag_latency, op.batch_latency, op.line_latency)]
        return op._hloop is not None, sim.env.now, hists, op.mem.accesses, op.mem.merged, op.mem.tags.hits

    fast, ref = result("fast"), result("python")
    assert fast[0] and not ref[0]
    assert fast[1:] == ref[1:]
