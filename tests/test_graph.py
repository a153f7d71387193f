"""The system graph: the registry, the builder that knows no kind, wiring errors, ``archsim show``, a new kind
added by registration alone, and memory traces driven through the graph's memory root."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import simpy
from pydantic import BaseModel, ConfigDict, Field

from archsim.api import run
from archsim.core.component import Component
from archsim.core.port import MemoryPort, call_at
from archsim.core.request import MemRequest
from archsim.core.sim import Simulator
from archsim.system import graph as G
from archsim.system.config import load_system
from archsim.system.registry import kind, kinds, ref_list, register
from archsim.system.shorthand import expand
from archsim.system.trace_driver import TraceDriver
from archsim.validation import REPO_ROOT

HW = REPO_ROOT / "hwconfigs"


def test_builder_names_no_kind():
    """graph.py builds whatever the registry holds: no kind's name appears in it."""
    src = (REPO_ROOT / "archsim" / "system" / "graph.py").read_text()
    names = [k.impl for k in kinds()]
    assert {"dram", "cache", "host", "cxl_link", "cxl_switch", "cxl_expander", "nmp", "pifs"} <= set(names)
    for impl in names:
        assert f'"{impl}"' not in src and f"'{impl}'" not in src, impl


@pytest.mark.parametrize("hw", sorted(p.stem for p in HW.glob("*.yaml")))
def test_every_shipped_hwconfig_expands_to_a_sound_graph(hw):
    cfg, _ = load_system(str(HW / f"{hw}.yaml"))
    g = expand(cfg)
    assert g.errors() == []
    order = g.order()
    assert sorted(order) == sorted(g.nodes)
    pos = {n: i for i, n in enumerate(order)}
    for a, b, _ in g.edges():
        assert pos[b] < pos[a]  # downstream first
    assert len(g.hosts) == cfg.hosts and g.memory_root in g.nodes


def test_pifs_pool_graph_wiring():
    cfg, _ = load_system(str(HW / "pifs_rec_2hosts.yaml"))
    g = expand(cfg)
    edges = set((a, b) for a, b, _ in g.edges())
    assert ("host", "llc") in edges and ("host", "pifs") in edges and ("llc", "memory") in edges
    assert ("memory", "cxl.sw0.port0.link") in edges and ("host1.memory", "cxl.sw0.port1.link") in edges
    assert ("host1.pifs", "pifs") in edges and ("pifs", "cxl.sw0") in edges
    assert ("cxl.sw0.port2.link", "cxl.exp0") in edges and ("cxl.exp0", "cxl.exp0.dram") in edges
    assert g.hosts == ["host", "host1"]


def _delay_graph(wiring: dict[str, str]) -> G.Graph:
    g = G.Graph()
    schema = kind("delay").schema
    for name, nxt in wiring.items():
        g.add(name, "delay", schema(next=nxt), ("components", name))
    return g


def test_wiring_errors_name_the_key():
    errs = _delay_graph({"a": "b", "b": "nowhere"}).errors()
    assert errs == [(("components", "b", "next"), "'nowhere' names no component")]
    errs = _delay_graph({"a": "b", "b": "c", "c": "a"}).errors()
    assert len(errs) == 1 and errs[0][1] == "components wired in a cycle: a -> b -> c -> a"
    errs = _delay_graph({"a": "a"}).errors()
    assert errs[0][1] == "'a' is wired to itself"


# ------------------------------------------------------------------------ a new kind by registration alone
class DelayLineNode(BaseModel):
    """A fixed delay each way in front of ``next`` (docs/architecture.md's worked example)."""

    model_config = ConfigDict(extra="forbid")
    next: str
    delay_ns: float = Field(..., ge=0)


class DelayLine(Component):
    def __init__(self, sim, name: str, port: MemoryPort, delay_ps: int) -> None:
        super().__init__(sim, name)
        self.port, self.delay_ps = port, delay_ps

    def submit(self, req) -> simpy.Event:
        req.t_submit = self.env.now
        if req.done is None:
            req.done = self.env.event()
        inner = MemRequest(req.addr, req.is_write, req.size, tag=req)  # the memory completes its own copy
        call_at(self.env, self.env.now + self.delay_ps, lambda ev: self.port.send(inner, self._back))
        return req.done

    def _back(self, ev) -> None:
        req = ev.value.tag
        call_at(self.env, self.env.now + self.delay_ps, lambda e: req.done.succeed(req))


def _build_delay_line(ctx, node):
    return DelayLine(ctx.sim, node.name, MemoryPort(ctx.get(node.params.next)), round(node.params.delay_ns * 1000))


def test_a_new_kind_is_one_registration():
    """Register a delay line, wire it in front of a DDR4 channel: a read costs the DRAM's idle latency plus
    exactly twice the delay (12.6 ns: a whole number of the channel's 630 ps clocks, so the read meets the
    same clock phase)."""
    register("delay_line_test", DelayLineNode, _build_delay_line, ref_list("next"))
    cfg, _ = load_system(str(HW / "dram_ddr4_dramsim3.yaml"))

    def one_read(with_line: bool) -> int:
        g = G.Graph()
        g.add("dram", "dram", cfg.dram)
        root = "dram"
        if with_line:
            g.add("wires", "delay_line_test", DelayLineNode(next="dram", delay_ns=12.6))
            root = "wires"
        g.memory_root = root
        sim = Simulator(0)
        system = G.build(sim, g)
        drv = TraceDriver(sim.env, system.memory_root, iter([(0x1000, False, 0)]), cycle_ps=630, direct=False)
        sim.env.run(until=drv.finished)
        return drv.last_done_ps

    assert one_read(True) - one_read(False) == 2 * 12_600


# ------------------------------------------------------------------------ traces through the graph
def _trace(tmp_path: Path, base: int, n: int, gap: int = 4) -> Path:
    p = tmp_path / "t.trace"
    p.write_text("".join(f"0x{base + i * 64:x} READ {i * gap}\n" for i in range(n)))
    return p


def test_trace_through_cxl_pool_crosses_the_fabric(tmp_path):
    """Addresses in the first expander's window reach it through the host link, the switch and its port link;
    addresses below go to local DRAM."""
    far = run(str(HW / "cxl_pool.yaml"), trace=_trace(tmp_path, 256 << 30, 500), window=0)
    s = far.summary
    assert s["requests"] == 500 and s["cxl_exp0_dram_reads"] == 500 and s["dram_reads"] == 0
    assert s["energy_link_nJ"] > 0
    near = run(str(HW / "cxl_pool.yaml"), trace=_trace(tmp_path, 0, 500), window=0)
    assert near.summary["dram_reads"] == 500 and near.summary["cxl_exp0_dram_reads"] == 0
    assert "energy_link_nJ" not in near.summary or near.summary["energy_link_nJ"] == 0


def test_trace_one_read_through_the_fabric_costs_its_parts(tmp_path):
    """One idle read at an expander address: the local read's latency plus the fabric's parts (the same sum
    as tests/test_cxl_system.py checks for a host load), within one DRAM clock."""
    from archsim.system.graph import build

    cfg, _ = load_system(str(HW / "cxl_pool.yaml"))
    far = run(str(HW / "cxl_pool.yaml"), trace=_trace(tmp_path, 256 << 30, 1), window=0).summary
    near = run(str(HW / "cxl_pool.yaml"), trace=_trace(tmp_path, 0, 1), window=0).summary
    system = build(Simulator(0), expand(cfg).below("memory"))
    host_link, down = system["cxl.sw0.port0.link"], system["cxl.sw0.port1.link"]
    parts = (host_link.idle_latency_ps(0) + down.idle_latency_ps(0) + 2 * system["cxl.sw0"].fwd_ps
             + system["cxl.exp0"].controller_ps)
    diff_ps = (far["read_latency_mean_ns"] - near["read_latency_mean_ns"]) * 1000
    assert abs(diff_ps - parts) <= cfg.dram.timing.tCK_ps


def test_show_prints_the_graph_and_dot(tmp_path):
    dot = tmp_path / "g.dot"
    r = subprocess.run([sys.executable, "-m", "archsim.cli", "show", str(HW / "pifs_rec.yaml"), "--dot", str(dot)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    cfg, _ = load_system(str(HW / "pifs_rec.yaml"))
    g = expand(cfg)
    lines = r.stdout.splitlines()
    assert lines[0].startswith("pifs_rec: ") and len(lines) == 2 + len(g.nodes)  # header, nodes, "written"
    assert re.search(r"^host\s+host\s+memory -> llc, near -> pifs \[host\]$", r.stdout, re.M)
    text = dot.read_text()
    assert text.startswith("digraph") and all(f'"{n}"' in text for n in g.nodes)
    assert text.count("->") == len(list(g.edges()))


# ------------------------------------------------------------------------ components: in a hwconfig
def _with_components(tmp_path: Path, body: str) -> Path:
    p = tmp_path / "g.yaml"
    p.write_text(f"extends: {HW / 'cpu_ddr4.yaml'}\nname: g\ncomponents:\n{body}\n")
    return p


def test_components_add_and_rewire(tmp_path):
    """A delay hop of 10 ns each way between the LLC and DRAM: every miss pays 20 ns more."""
    p = _with_components(tmp_path, "  hop: {impl: delay, next: dram, to_next_ns: 10, from_next_ns: 10}\n"
                                   "  llc: {next: hop}")
    cfg, _ = load_system(str(p))
    g = expand(cfg)
    assert {(a, b) for a, b, _ in g.edges()} == {("hop", "dram"), ("llc", "hop"), ("host", "llc")}
    sets = ["num_batches=1", "batch_size=8"]
    wl = str(REPO_ROOT / "workloads" / "criteo_zipf.yaml")
    hop = run(str(p), workload=wl, workload_overrides=sets).summary
    base = run(str(HW / "cpu_ddr4.yaml"), workload=wl, workload_overrides=sets).summary
    assert hop["lookups"] == base["lookups"]
    assert hop["load_latency_mean_ns"] > base["load_latency_mean_ns"]


@pytest.mark.parametrize("body, key, words", [
    ("  llc: {next: nowhere}", "components.llc.next", "'nowhere' names no component"),
    ("  llc: {next: host}", "components.llc.next", "'host' is a host, which cannot serve as the memory of a cache"),
    ("  x: {impl: warp_drive}", "components.x.impl", "unknown impl 'warp_drive'"),
    ("  x: {impl: delay, next: dram, to_next_ns: -3}", "components.x.to_next_ns", "greater than or equal to 0"),
    ("  llc: {impl: delay}", "components.llc.impl", "'llc' is a cache; a component keeps its kind"),
    ("  x: {next: dram}", "components.x", "a new component needs impl:"),
    ("  x: {impl: router, ranges: [{base: 0, end: 4096, to: dram}, {base: 1024, end: 8192, to: dram}]}",
     "components.x.ranges[1]", "is claimed twice"),
    ("  a: {impl: delay, next: b}\n  b: {impl: delay, next: a}", "components.a", "wired in a cycle: a -> b -> a"),
])
def test_bad_components_are_one_line_with_file_line_and_key(tmp_path, body, key, words):
    p = _with_components(tmp_path, body)
    r = subprocess.run([sys.executable, "-m", "archsim.cli", "show", str(p)], capture_output=True, text=True)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and f"{p}:4: {key}: " in lines[0] and words in lines[0], lines


def test_docs_worked_example_is_under_40_lines_and_runs(tmp_path):
    """docs/architecture.md's delay line, taken from the page as written: under 40 lines, and a hwconfig
    using it by name runs."""
    text = (REPO_ROOT / "docs" / "architecture.md").read_text()
    code = re.search(r"Nothing else is edited:\n\n```python\n(.*?)```", text, re.S).group(1)
    assert len(code.splitlines()) < 40
    exec(compile(code, "kinds_delay_line.py", "exec"), {"__name__": "kinds_delay_line"})
    p = _with_components(tmp_path, "  wires: {impl: delay_line, next: dram, delay_ns: 12.6}\n  llc: {next: wires}")
    res = run(str(p), workload=str(REPO_ROOT / "workloads" / "criteo_zipf.yaml"),
              workload_overrides=["num_batches=1", "batch_size=4"])
    assert res.summary["lookups"] == 4 * 8 * 80


def test_switch_ports_without_ranges_route_what_their_links_reach(tmp_path):
    """A switch written under components: with no port ranges routes each port the windows its link reaches
    (the expander's window): the same run as cxl_pool's ranges from the cxl: section."""
    p = tmp_path / "sw.yaml"
    ports = "\n".join(f"        - {{role: downstream, link: cxl.sw0.port{j}.link}}" for j in range(1, 5))
    p.write_text(f"extends: {HW / 'cxl_pool.yaml'}\nname: g\ncomponents:\n  cxl.sw0:\n    ports:\n"
                 f"        - {{role: upstream}}\n{ports}\n")
    cfg, _ = load_system(str(p))
    g = expand(cfg)
    assert all(q.ranges is None for q in g.nodes["cxl.sw0"].params.ports)
    sets = ["num_batches=1", "batch_size=4"]
    wl = str(REPO_ROOT / "workloads" / "criteo_zipf.yaml")
    a = run(str(p), workload=wl, workload_overrides=sets).summary
    b = run(str(HW / "cxl_pool.yaml"), workload=wl, workload_overrides=sets).summary
    for k in ("batch_latency_mean_us", "cxl_exp0_bandwidth_GBps", "cxl_exp3_bandwidth_GBps", "energy_total_nJ"):
        assert a[k] == b[k], k
    sim = Simulator(0)
    system = G.build(sim, g.below("memory"))
    assert system["cxl.sw0.port1.link"].windows() == [(256 << 30, 272 << 30)]
    assert system["cxl.sw0.port0.link"].windows() == [(b, b + (16 << 30)) for b in range(256 << 30, 320 << 30,
                                                                                          16 << 30)]


def test_an_empty_component_name_is_refused(tmp_path):
    """A component renamed to '' (10,000-case campaign) was a ValueError in the stats tree; now one line."""
    from archsim.config.errors import ConfigError
    from archsim.system.config import load_system

    hw = tmp_path / "hw.yaml"
    root = Path(__file__).resolve().parents[1]
    hw.write_text(f"extends: {root / 'hwconfigs' / 'cpu_ddr4.yaml'}\ncomponents:\n  '': {{impl: delay, next: dram}}\n")
    with pytest.raises(ConfigError, match="component name must be non-empty"):
        load_system(str(hw))
