"""The CXL switch: fair sharing under round robin, oldest-first order, routing by address range, config errors
with file:line and key path, cascading latency, and determinism of a whole fabric."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import simpy

from archsim.config import ConfigError, load_config
from archsim.core.component import Component
from archsim.core.port import MemoryPort, call_at
from archsim.core.request import MemRequest
from archsim.core.sim import Simulator
from archsim.cxl import Downstream, Link, LinkSpec, Switch, Upstream, build_fabric, load_cxl

GiB = 2**30


class FixedLatency(Component):
    """A downstream that answers after a fixed latency and never backpressures; it records what it saw."""

    def __init__(self, sim: Simulator, name: str, latency_ps: int) -> None:
        super().__init__(sim, name)
        self.latency_ps = latency_ps
        self.seen: list[MemRequest] = []

    def submit(self, req: MemRequest) -> simpy.Event:
        req.done = self.env.event()
        self.seen.append(req)
        call_at(self.env, self.env.now + self.latency_ps, lambda ev: ev.value.done.succeed(ev.value), req)
        return req.done


def two_hosts_one_device(arbitration: str, dev_ps: int, dev_credits: int, host_links: bool = True):
    sim = Simulator(0)
    dev = FixedLatency(sim, "dev", dev_ps)
    down = Link(sim, "sw.port2.link", LinkSpec(credits=dev_credits), dev)
    sw = Switch(sim, "sw", [Upstream(), Upstream(), Downstream(down, [(0, 1 << 40)])], arbitration=arbitration)
    if host_links:
        fronts = [Link(sim, f"host{h}.link", LinkSpec(credits=128), sw.port(h)) for h in (0, 1)]
    else:
        fronts = [sw.port(0), sw.port(1)]
    return sim, sw, dev, [MemoryPort(f) for f in fronts]


def test_round_robin_shares_one_downstream_port_fairly() -> None:
    """Two hosts stream reads through their own x16 links into one downstream x16 link (the bottleneck): under
    round robin each gets 50% +- 2% of the completions while both are busy, and together they fill the link."""
    sim, sw, dev, ports = two_hosts_one_device("round_robin", dev_ps=50_000, dev_credits=256)
    n = 6000
    done: list[list[int]] = [[], []]
    for i in range(n):
        for h in (0, 1):
            ports[h].send(MemRequest((h * n + i) * 64), lambda ev, h=h: done[h].append(sim.env.now))
    sim.env.run()
    t_end = min(done[0][-1], done[1][-1])  # the first host finishes; until then both compete
    counts = [sum(t <= t_end for t in d) for d in done]
    share = counts[0] / sum(counts)
    assert share == pytest.approx(0.5, abs=0.02)
    # together they reach the downstream link's read bandwidth: 63.015 GB/s x 64 / 76.5 (see test_cxl_link)
    hand = 32 * 128 / 130 / 8 * 16 * 64 / 76.5
    t0 = sorted(done[0] + done[1])[1000]
    got = 64 * sum(t0 < t <= t_end for d in done for t in d) / (t_end - t0) * 1000
    assert got == pytest.approx(hand, rel=0.02)
    sw.finalize()
    assert sim.stats["sw.port2.requests"] == 2 * n
    assert sim.stats["sw.port0.bytes_tx"] == sim.stats["sw.port1.bytes_tx"] == 64 * n
    assert sim.stats["sw.port2.bytes_rx"] == 2 * 64 * n
    assert sim.stats["sw.port0.queue_delay_ps"].count == n


@pytest.mark.parametrize("arbitration", ["round_robin", "oldest_first"])
def test_arbitration_order(arbitration: str) -> None:
    """Host 0 sends a burst of 8 reads at t = 0, host 1 a burst of 8 one ps later, into a downstream link with a
    single credit (one request at a time). Round robin alternates between the hosts after host 0's first
    request; oldest first serves host 0's whole (older) burst, then host 1's."""
    sim, sw, dev, ports = two_hosts_one_device(arbitration, dev_ps=1_000_000, dev_credits=1, host_links=False)
    order: list[tuple[int, int]] = []  # completion order = service order (one request at a time)
    for h, t in ((0, 0), (1, 1)):
        def burst(ev: simpy.Event, h: int = h) -> None:
            for i in range(8):
                ports[h].send(MemRequest((h * 8 + i) * 64, tag=(h, i)), lambda ev: order.append(ev.value.tag))
        call_at(sim.env, t, burst)
    sim.env.run()
    assert len(dev.seen) == 16
    hosts = [h for h, _ in order]
    if arbitration == "round_robin":
        assert hosts == [0] + [1, 0] * 7 + [1]
    else:
        assert hosts == [0] * 8 + [1] * 8
    assert [i for h, i in order if h == 0] == list(range(8))  # each host's own requests stay in order


FABRIC = """\
cxl:
  expanders:
    - {name: exp0, base: 0, capacity: 16GiB, dram: {extends: ddr5_4800_16gb_x8}}
    - {name: exp1, base: 16GiB, capacity: 16GiB, dram: {extends: ddr5_4800_16gb_x8}}
  switches:
    - name: sw0
      ports:
        - {role: upstream}
        - {role: upstream}
        - {role: downstream, target: exp0}
        - {role: downstream, target: exp1}
"""


def load_fabric(tmp_path: Path, text: str, name: str = "hw.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return load_cxl(load_config(path))


def test_routing_by_address_range_reaches_the_right_expander(tmp_path: Path) -> None:
    """Built from a cxl: section: port 2 serves exp0's [0, 16 GiB), port 3 exp1's [16, 32 GiB); each request lands
    on the expander that owns its address, which hands its DRAM the address minus its base."""
    spec = load_fabric(tmp_path, FABRIC)
    sim = Simulator(0)
    fab = build_fabric(sim, spec)
    sw = fab.switches["sw0"]
    assert sw.route(0) == 2 and sw.route(16 * GiB - 1) == 2 and sw.route(16 * GiB) == 3
    with pytest.raises(ValueError, match="no downstream port"):
        sw.route(32 * GiB)
    seen: dict[str, list[int]] = {"exp0": [], "exp1": []}
    for name, exp in fab.expanders.items():
        inner = exp.dram.submit
        exp.dram.submit = lambda r, inner=inner, name=name: (seen[name].append(r.addr), inner(r))[1]
    host = MemoryPort(fab.host_ports["sw0.port0"])
    addrs = [0x1000, 16 * GiB + 0x2000, 0x3_0000_0040, 31 * GiB]
    for a in addrs:
        host.send(MemRequest(a), None)
    sim.env.run(until=5_000_000)
    assert seen == {"exp0": [0x1000, 0x3_0000_0040], "exp1": [0x2000, 15 * GiB]}
    fab.finalize()
    assert sim.stats["cxl.sw0.port2.requests"] == 2 and sim.stats["cxl.sw0.port3.requests"] == 2
    assert sim.stats["cxl.sw0.port2.link.s2m.payload_bytes"] == 128
    assert set(fab.host_ports) == {"sw0.port0", "sw0.port1"}


@pytest.mark.parametrize("edit, where, words", [
    # explicit ranges that overlap
    ("        - {role: downstream, target: exp1, ranges: [{base: 8GiB, size: 16GiB}]}\n",
     "cxl.switches[0].ports[3].ranges[0]", "overlaps"),
    # a port pointing at a device that does not exist
    ("        - {role: downstream, target: exp7}\n", "cxl.switches[0].ports[3].target", "points at nothing"),
    # a flit size the link's generation does not carry
    ("        - {role: downstream, target: exp1, link: {generation: pcie6, flit_bytes: 68}}\n",
     "cxl.switches[0].ports[3].link.flit_bytes", "256"),
    # a downstream port without a device
    ("        - {role: downstream}\n", "cxl.switches[0].ports[3].target", "must name"),
])
def test_bad_configs_give_one_line_errors_with_the_key_path(tmp_path: Path, edit: str, where: str,
                                                            words: str) -> None:
    lines = FABRIC.splitlines(keepends=True)
    assert lines[-1].lstrip().startswith("- {role: downstream, target: exp1}")
    text = "".join(lines[:-1]) + edit
    with pytest.raises(ConfigError) as exc:
        load_fabric(tmp_path, text)
    msg = str(exc.value)
    assert "\n" not in msg
    assert msg.startswith(f"{tmp_path / 'hw.yaml'}:11: {where}: ")
    assert words in msg


def test_overlapping_expanders_behind_one_switch_are_rejected(tmp_path: Path) -> None:
    """Ranges derived from the expanders overlap: the error names the second port's target."""
    text = FABRIC.replace("base: 16GiB", "base: 12GiB")
    with pytest.raises(ConfigError, match=r"hw\.yaml:11: cxl\.switches\[0\]\.ports\[3\]\.target: .*overlaps"):
        load_fabric(tmp_path, text)


def idle_read(levels: int, fwd_ns: float = 20.0) -> int:
    """Latency of one read: host link -> sw0 [-> link -> sw1] -> link -> device (fixed 30 ns)."""
    sim = Simulator(0)
    dev: Component = FixedLatency(sim, "dev", 30_000)
    for k in reversed(range(levels)):
        link = Link(sim, f"l{k}", LinkSpec(), dev)
        dev = Switch(sim, f"sw{k}", [Upstream(), Downstream(link, [(0, GiB)])], forwarding_latency_ns=fwd_ns)
    front = Link(sim, "host", LinkSpec(), dev)
    req = MemRequest(0x40)
    front.submit(req)
    sim.env.run()
    return req.t_done


def test_cascaded_switch_adds_one_forwarding_latency_and_one_link() -> None:
    """A switch below a switch adds exactly its forwarding latency (once each way) and one more link traversal
    (4 port traversals, 2 PHYs, a MemRd flit and a 2-flit data response) to an idle read."""
    flit_ps = 68 * 8 * 1000 * 130 / (32 * 16 * 128)
    link_ps = 4 * 10_000 + 2 * 5_000 + math.ceil(flit_ps) + math.ceil(2 * flit_ps)
    one, two = idle_read(1), idle_read(2)
    assert one == link_ps + 2 * 20_000 + link_ps + 30_000  # host link, switch, device link, device
    assert two - one == 2 * 20_000 + link_ps
    assert idle_read(2, fwd_ns=33.3) - idle_read(1, fwd_ns=33.3) == 2 * 33_300 + link_ps


CASCADE = FABRIC.replace("        - {role: downstream, target: exp1}\n", "        - {role: downstream, target: sw1}\n") + """\
    - name: sw1
      arbitration: oldest_first
      ports:
        - {role: upstream}
        - {role: downstream, target: exp1}
"""


def run_fabric(tmp_path: Path, seed: int) -> tuple[dict, dict, int]:
    """Two hosts issue random reads and writes over a cascaded fabric (addresses from the run's seeded RNG)."""
    spec = load_fabric(tmp_path, CASCADE, "cascade.yaml")
    sim = Simulator(seed)
    fab = build_fabric(sim, spec)
    assert set(fab.host_ports) == {"sw0.port0", "sw0.port1"}
    for h, key in enumerate(("sw0.port0", "sw0.port1")):
        rng = sim.rng_for(f"host{h}")
        port = MemoryPort(fab.host_ports[key])
        lines = rng.integers(0, 32 * GiB // 64, size=1500)
        writes = rng.random(1500) < 0.3
        for line, w in zip(lines.tolist(), writes.tolist(), strict=True):
            port.send(MemRequest(line * 64, bool(w)), None)
    sim.env.run(until=200_000_000)
    fab.finalize()
    return sim.stats.to_dict(raw=True), sim.energy.to_dict(), sim.env.now


def test_same_inputs_give_the_same_stats(tmp_path: Path) -> None:
    a, b = run_fabric(tmp_path, 3), run_fabric(tmp_path, 3)
    assert a == b
    stats = a[0]["cxl"]
    served = stats["exp0"]["reads"] + stats["exp0"]["writes"] + stats["exp1"]["reads"] + stats["exp1"]["writes"]
    assert served == 3000  # everything completed, split over both expanders
    assert stats["sw1"]["port1"]["requests"] == stats["exp1"]["reads"] + stats["exp1"]["writes"] > 0
    assert a[1]["by_kind"]["link"] > 0
    assert run_fabric(tmp_path, 4)[0] != a[0]
