"""The CXL link: bandwidth of long streams against the flit arithmetic done by hand, exact idle latency in ps,
credits (Little's law), and the flit-size check of the link spec.

Flit facts used by hand below (CXL 3.2 specification): a 68B flit is 2 B protocol ID + 4 slots of 16 B + 2 B CRC;
slot 0 of a protocol flit is a header slot, an all-data flit carries 4 data chunks (§4.2.2, §6.2.1). H5 carries
two S2M DRS headers, H4 one M2S RwD header; at most 2 M2S Req per 68B flit (§4.2.5, Tables 4-7/4-8). A standard
256B flit is 2 B header + 14 B H-slot + 14 G-slots of 16 B + 2 B credit return + 8 B CRC + 6 B FEC (§4.3.2,
§6.2.3.1.1); H15 carries 2 DRS headers, G15 three (Tables 4-14/4-15). PCIe 5: 32 GT/s, 128b/130b; PCIe 6: 64 GT/s,
1b/1b (Table 6-4).
"""

from __future__ import annotations

import math
from fractions import Fraction

import pydantic
import pytest
import simpy

from archsim.config import ConfigError, load_config
from archsim.core.component import Component
from archsim.core.port import MemoryPort, call_at
from archsim.core.request import MemRequest
from archsim.core.sim import Simulator
from archsim.cxl import Link, LinkSpec, load_cxl


class FixedLatency(Component):
    """A tiny downstream that answers every request after a fixed latency and never backpressures."""

    def __init__(self, sim: Simulator, name: str, latency_ps: int) -> None:
        super().__init__(sim, name)
        self.latency_ps = latency_ps
        self.inflight = 0
        self.max_inflight = 0
        self.seen: list[tuple[int, int, bool]] = []  # (time, addr, is_write)

    def submit(self, req: MemRequest) -> simpy.Event:
        req.done = self.env.event()
        self.inflight += 1
        self.max_inflight = max(self.max_inflight, self.inflight)
        self.seen.append((self.env.now, req.addr, req.is_write))
        call_at(self.env, self.env.now + self.latency_ps, self._done, req)
        return req.done

    def _done(self, ev: simpy.Event) -> None:
        self.inflight -= 1
        ev.value.done.succeed(ev.value)


def stream(spec: LinkSpec, n: int, write: bool = False, stub_ps: int = 1000) -> tuple[list[int], Link, Simulator]:
    """Offer ``n`` 64 B requests at time 0 through a MemoryPort; returns completion times in order."""
    sim = Simulator(0)
    link = Link(sim, "link", spec, FixedLatency(sim, "stub", stub_ps))
    port = MemoryPort(link)
    done: list[int] = []
    for i in range(n):
        port.send(MemRequest(i * 64, write), lambda ev: done.append(sim.env.now))
    sim.env.run()
    link.finalize()
    return done, link, sim


def steady_GBps(done: list[int], skip: int = 2000) -> float:
    """Data bandwidth (10^9 B/s) between the ``skip``-th and the last completion (past the pipeline fill)."""
    return 64 * (len(done) - 1 - skip) / (done[-1] - done[skip]) * 1000


def test_read_stream_pcie5_x16_68B_reaches_hand_bandwidth() -> None:
    """20,000 reads over x16 PCIe 5 with 68B flits; the S2M direction (data responses) is the bottleneck."""
    lane_GBps = 32 * 128 / 130 / 8  # 32 GT/s, 128b/130b, 8 bits per byte: 3.938 GB/s per lane
    link_GBps = lane_GBps * 16  # 63.015 GB/s of flit bytes per direction
    # S2M: one H5 header slot carries 2 DRS headers, each 64 B read is 4 data chunks: 9 slots per 2 reads,
    # 4 slots per flit -> 9/8 flit per read.
    wire_bytes_per_read = 68 * (1 + 2 * 4) / 2 / 4  # 76.5 B on the wire per 64 B of data
    hand = link_GBps * 64 / wire_bytes_per_read  # 52.72 GB/s
    # M2S: at most 2 MemRd per 68B flit -> 34 B per read, far below the link: not the bottleneck.
    assert link_GBps / 34 * 64 > hand
    n = 20_000
    done, link, sim = stream(LinkSpec(generation="pcie5", lanes=16, credits=256), n)
    got = steady_GBps(done)
    assert got == pytest.approx(hand, rel=0.02)
    s2m = sim.stats["link.s2m"]
    assert s2m["payload_bytes"] == 64 * n
    assert s2m["flits"] == pytest.approx(n * 9 / 8, rel=0.001)
    assert s2m["wire_bytes"] == s2m["flits"] * 68
    # energy: pJ/bit x line bits (flit bytes x 8 x 130/128) of both directions
    bits = (sim.stats["link.m2s.flits"] + s2m["flits"]) * 68 * 8 * 130 / 128
    assert sim.energy.get("system.link", "link") == pytest.approx(5.0 * bits)


def test_read_stream_pcie6_x16_256B_reaches_hand_bandwidth() -> None:
    """20,000 reads over x16 PCIe 6 with standard 256B flits."""
    link_GBps = 64 * 16 / 8  # 64 GT/s PAM4, 1b/1b: 128 GB/s per direction
    # per flit: H-slot takes 2 DRS headers; the 14 G-slots hold 4 data chunks per read and the other headers,
    # 3 per G15 slot: 4x + (x - 2)/3 = 14 -> x = 44/13 reads per flit.
    reads_per_flit = Fraction(14 * 3 + 2, 4 * 3 + 1)
    assert reads_per_flit == Fraction(44, 13)
    hand = link_GBps * 64 / (256 / float(reads_per_flit))  # 108.31 GB/s
    done, link, sim = stream(LinkSpec(generation="pcie6", lanes=16, credits=512), 20_000)
    assert steady_GBps(done) == pytest.approx(hand, rel=0.02)
    assert sim.stats["link.s2m.flits"] == pytest.approx(20_000 * 13 / 44, rel=0.002)


@pytest.mark.parametrize("generation", ["pcie5", "pcie6"])
def test_write_stream_reaches_hand_bandwidth(generation: str) -> None:
    """Writes load the M2S direction. 68B: an H4 RwD header slot and 4 data chunks per write, one RwD per flit:
    5 slots -> 5/4 flit = 85 B per 64 B written. 256B: the H-slot takes one RwD header (H14), the 14 G-slots
    take 4 chunks per write and the other headers (G14, one each): 4x + (x - 1) = 14 -> 3 writes per flit."""
    if generation == "pcie5":
        hand = 32 * 128 / 130 / 8 * 16 * 64 / (68 * 5 / 4)  # 47.45 GB/s
    else:
        hand = 64 * 16 / 8 * 64 * 3 / 256  # 96.0 GB/s
    n = 20_000
    done, link, sim = stream(LinkSpec(generation=generation, lanes=16, credits=512), n, write=True)
    assert steady_GBps(done) == pytest.approx(hand, rel=0.02)
    assert sim.stats["link.m2s.payload_bytes"] == 64 * n
    assert sim.stats["link.s2m.msgs_s2m_ndr"] == n


@pytest.mark.parametrize("generation, lanes, write", [("pcie5", 16, False), ("pcie5", 8, True),
                                                      ("pcie6", 16, False), ("pcie6", 4, True)])
def test_idle_request_latency_is_the_sum_of_its_parts(generation: str, lanes: int, write: bool) -> None:
    """One request on an idle link: port + ser(request) + phy + port + downstream + port + ser(response) + phy +
    port, exactly, in ps. Serialisation is of the whole flits that carry the message alone: 68B: a MemRd 1 flit,
    a 64 B data response (H5 + 3 chunks, then 1 more chunk) 2 flits, a MemWr likewise 2, a completion 1;
    256B: every one of them fits one flit."""
    spec = LinkSpec(generation=generation, lanes=lanes, port_latency_ns=7.3, phy_latency_ns=4.1)
    gt, enc = (32, Fraction(128, 130)) if generation == "pcie5" else (64, Fraction(1))
    flit_ps = Fraction(spec.flit_bytes * 8 * 1000) / (gt * lanes * enc)  # flit bits / (Gb/s) -> ps
    if spec.flit_bytes == 68:
        req_flits, rsp_flits = (2, 1) if write else (1, 2)
    else:
        req_flits, rsp_flits = 1, 1
    port, phy, stub = 7300, 4100, 12_345
    expected = (port + math.ceil(req_flits * flit_ps) + phy + port + stub
                + port + math.ceil(rsp_flits * flit_ps) + phy + port)
    sim = Simulator(0)
    link = Link(sim, "link", spec, FixedLatency(sim, "stub", stub))
    req = MemRequest(0x1000, write)
    t0 = 1_000_003  # an arbitrary start, not aligned to anything
    call_at(sim.env, t0, lambda ev: link.submit(req))
    sim.env.run()
    assert req.t_done - t0 == expected
    assert link.idle_latency_ps(stub, write) == expected


def test_credits_bound_outstanding_and_give_littles_law_throughput() -> None:
    """credits = 4 and a slow device (2 us): never more than 4 requests inside the link, and the throughput is
    credits / round trip (Little's law), the round trip being the idle read latency."""
    spec = LinkSpec(credits=4)
    stub_ps = 2_000_000
    n = 400
    done, link, sim = stream(spec, n, stub_ps=stub_ps)
    stub = link.port.mem
    assert stub.max_inflight == 4
    assert link.max_outstanding == 4
    flit_ps = Fraction(68 * 8 * 1000 * 130, 32 * 16 * 128)
    rtt_ps = 4 * 10_000 + 2 * 5_000 + math.ceil(flit_ps) + math.ceil(2 * flit_ps) + stub_ps
    little = 4 / rtt_ps  # requests per ps
    got = (n - 4) / (done[-1] - done[3])
    assert got == pytest.approx(little, rel=0.03)
    assert got <= little * 1.0001  # queueing can only lengthen the round trip


def test_link_refuses_without_credit_and_signals_space() -> None:
    """can_accept is False when the credits are used; space_event fires when a response brings one back."""
    sim = Simulator(0)
    link = Link(sim, "link", LinkSpec(credits=1), FixedLatency(sim, "stub", 1000))
    first = MemRequest(0)
    link.submit(first)
    second = MemRequest(64)
    assert not link.can_accept(second)
    with pytest.raises(RuntimeError):
        link.submit(second)
    fired: list[int] = []
    link.space_event(second).callbacks.append(lambda ev: fired.append(sim.env.now))
    sim.env.run()
    assert fired == [first.t_done]
    assert link.can_accept(second)


def test_unsupported_flit_size_is_rejected_naming_the_key(tmp_path) -> None:
    """PCIe 6 runs only in FLIT mode with 256B flits: a 68B flit is refused, by the model and by the loader."""
    with pytest.raises(pydantic.ValidationError) as exc:
        LinkSpec(generation="pcie6", flit_bytes=68)
    assert exc.value.errors()[0]["loc"] == ("flit_bytes",)
    with pytest.raises(pydantic.ValidationError):
        LinkSpec(flit_bytes=128)
    assert LinkSpec(generation="pcie5", flit_bytes=256).flit_bytes == 256  # PCIe Flit mode at 32 GT/s
    path = tmp_path / "hw.yaml"
    path.write_text("cxl:\n  expanders:\n    - name: exp0\n      dram: {extends: ddr5_4800_16gb_x8}\n"
                    "      link:\n        generation: pcie6\n        flit_bytes: 68\n")
    with pytest.raises(ConfigError) as cerr:
        load_cxl(load_config(path))
    msg = str(cerr.value)
    assert "\n" not in msg
    assert msg.startswith(f"{path}:7: cxl.expanders[0].link.flit_bytes: ")
    assert "256" in msg


def test_validation_rows_of_the_cxl_models() -> None:
    """archsim validate's CXL rows (archsim.validation.model_checks): link bandwidth within 2% of the flit
    arithmetic on PCIe 5 and 6, a direct expander's added idle latency inside Pond's 70-90 ns."""
    from archsim.validation import cxl_expander_latency_check, cxl_link_checks

    checks = [*cxl_link_checks(), cxl_expander_latency_check()]
    assert len(checks) == 3 and all(c.ok for c in checks), checks
    assert 70_000 <= checks[2].archsim <= 90_000
