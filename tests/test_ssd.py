"""The NVMe SSD model (archsim/storage, kind ``ssd``): closed forms by hand from the presets' values, exact to the
picosecond where the model is deterministic (docs/storage.md lists the formulas), within 3% at saturation."""

from __future__ import annotations

import subprocess
import sys
from fractions import Fraction
from math import ceil
from pathlib import Path

import numpy as np
import pydantic
import pytest

from archsim.api import run
from archsim.config.loader import find_preset, load_config
from archsim.core.port import MemoryPort
from archsim.core.request import MemRequest
from archsim.core.sim import Simulator
from archsim.storage import SSD, SSDSpec
from archsim.system.config import load_system
from archsim.system.registry import kind
from archsim.system.shorthand import expand
from archsim.validation import REPO_ROOT

HW = REPO_ROOT / "hwconfigs"
KiB = 1024


def preset(name: str, **changes) -> SSDSpec:
    data = load_config(str(find_preset(name))).data
    data.pop("description", None)
    data.update(changes)
    return SSDSpec.model_validate(data)


def drive(name: str = "nvme_tlc_pcie4", **changes) -> tuple[Simulator, SSD]:
    sim = Simulator(0)
    return sim, SSD(sim, "ssd", preset(name, **changes))


def read(ssd: SSD, addr: int, size: int = 4 * KiB, write: bool = False) -> MemRequest:
    req = MemRequest(addr, write, size)
    ssd.submit(req)
    return req


# ------------------------------------------------------------------------ the presets' figures, by hand
# PCIe: ps per byte on x lanes of a generation (128b/130b): 8000 / (GT/s x lanes x 128/130)
PCIE4_X4 = Fraction(8000 * 130, 16 * 4 * 128)  # 126.953125 ps/B
PCIE3_X4 = Fraction(8000 * 130, 8 * 4 * 128)  # 253.90625 ps/B
TLP = 24  # bytes a TLP adds (4 framing + 16 header + 4 LCRC), Max_Payload_Size 256
SQE = 64 + TLP  # the submission-queue entry on the wire
CQE = 16 + TLP  # the completion-queue entry


def data_wire(n: int) -> int:
    return n + ceil(n / 256) * TLP


def ch_ps(nbytes: int, mtps: int) -> int:
    """ps ``nbytes`` take on an 8-bit channel of ``mtps`` MT/s."""
    return ceil(Fraction(nbytes * 10**6, mtps))


TLC = dict(ppb=PCIE4_X4, link_ps=250_000, ctl_ps=15_000_000, tR=60_000_000, mtps=1200, tPROG=700_000_000,
           channels=8, dies=8)
ZNAND = dict(ppb=PCIE3_X4, link_ps=250_000, ctl_ps=5_000_000, tR=3_000_000, mtps=800, tPROG=100_000_000,
             channels=8, dies=16)


def qd1_read_ps(p: dict, nbytes: int = 4 * KiB, ch_bytes: int | None = None) -> int:
    """SQE down + latency + controller + tR + channel transfer + data and CQE up + latency."""
    return (ceil(SQE * p["ppb"]) + p["link_ps"] + p["ctl_ps"] + p["tR"] + ch_ps(ch_bytes or nbytes, p["mtps"])
            + ceil((data_wire(nbytes) + CQE) * p["ppb"]) + p["link_ps"])


@pytest.mark.parametrize("name, p, total", [("nvme_tlc_pcie4", TLC, 79_498_335),
                                            ("nvme_znand_pcie3", ZNAND, 14_790_001)])
def test_qd1_4k_read_is_controller_tR_transfer_and_link_exactly(name, p, total):
    """TLC: 11,172 (SQE) + 250,000 + 15,000,000 + 60,000,000 + 3,413,334 (4096 B at 1.2 GB/s) + 573,829 (4480 B of
    data TLPs + 40 B CQE at 7.877 GB/s) + 250,000 = 79,498,335 ps. Z-NAND: 22,344 + 250,000 + 5,000,000 + 3,000,000
    + 5,120,000 + 1,147,657 + 250,000 = 14,790,001 ps (inside the SZ985's 12-20 us)."""
    assert qd1_read_ps(p) == total
    sim, ssd = drive(name)
    req = read(ssd, 7 * 16 * KiB + 4 * KiB)  # page 7, its second 4 KiB
    sim.env.run()
    assert req.t_done == total
    assert ssd.idle_read_latency_ps(req.addr, req.size) == total
    s = ssd.summary(total)
    assert s["read_latency_mean_ns"] == total / 1000 and s["page_reads"] == 1


@pytest.mark.parametrize("name, p", [("nvme_tlc_pcie4", TLC), ("nvme_znand_pcie3", ZNAND)])
def test_qd1_iops_is_one_over_latency(name, p):
    sim, ssd = drive(name)
    rng = np.random.default_rng(3)
    addrs = iter((rng.integers(0, ssd.spec.capacity // (4 * KiB), 40) * 4 * KiB).tolist())
    ends = []

    def next_one(ev=None):
        if ev is not None:
            ends.append(sim.env.now)
        a = next(addrs, None)
        if a is not None:
            ssd.submit(MemRequest(a, False, 4 * KiB)).callbacks.append(next_one)

    next_one()
    sim.env.run()
    lat = qd1_read_ps(p)
    assert ends == [lat * (i + 1) for i in range(40)]
    assert ssd.summary(ends[-1])["iops"] == pytest.approx(1e12 / lat, rel=1e-12)


# ------------------------------------------------------------------------ saturation
def closed_loop(ssd: SSD, addrs: list[int], qd: int, size: int = 4 * KiB) -> int:
    """Keep ``qd`` reads outstanding until ``addrs`` are all read; returns the last completion (ps)."""
    it = iter(addrs)
    last = [0]

    def issue(ev=None):
        if ev is not None:
            last[0] = ssd.env.now
        a = next(it, None)
        if a is not None:
            ssd.submit(MemRequest(a, False, size)).callbacks.append(issue)

    for _ in range(qd):
        issue()
    ssd.env.run()
    return last[0]


def spread_pages(ssd: SSD, n: int, seed: int = 0) -> list[int]:
    """Random pages, every die visited once per round of ``dies`` reads (rounds in random die order)."""
    rng = np.random.default_rng(seed)
    C, D = ssd.spec.channels, ssd.spec.dies_per_channel
    pages = ssd.spec.capacity // ssd.spec.page_bytes
    out: list[int] = []
    while len(out) < n:
        for u in rng.permutation(C * D):  # die u: lpn = ch + C * die + C * D * k
            k = int(rng.integers(0, pages // (C * D)))
            out.append(((u % C) + C * (u // C) + C * D * k) * ssd.spec.page_bytes)
    return out[:n]


def test_iops_saturate_at_the_die_limit():
    """64 dies, each busy tR + transfer per 4 KiB read: 64 / (60 us + 3.413334 us) = 1.0093M IOPS (the rated 1M of
    the class); channels (8 / 3.41 us = 2.34M) and link (1 / 573.8 ns = 1.74M) are not the limit."""
    sim, ssd = drive()
    limit = 64 * 1e12 / (TLC["tR"] + ch_ps(4 * KiB, 1200))
    assert limit == pytest.approx(1.0093e6, rel=1e-4)
    n = 20_000
    end = closed_loop(ssd, spread_pages(ssd, n), qd=512)
    s = ssd.summary(end)
    assert s["iops"] == pytest.approx(limit, rel=0.03) and s["iops"] <= limit
    assert s["die_utilization"] > 0.97


def test_iops_saturate_at_the_channel_limit_when_it_is_lower():
    """Whole pages over the channel (channel_transfer: page): a 16 KiB transfer takes 13.653334 us, so the 8 buses
    carry 8 / 13.65 us = 586K reads/s, below the dies' 64 / (60 + 13.65 us) = 869K."""
    sim, ssd = drive(channel_transfer="page")
    x = ch_ps(16 * KiB, 1200)
    limit = 8 * 1e12 / x
    assert limit < 64 * 1e12 / (TLC["tR"] + x)
    end = closed_loop(ssd, spread_pages(ssd, 20_000), qd=512)
    s = ssd.summary(end)
    assert s["iops"] == pytest.approx(limit, rel=0.03) and s["iops"] <= limit
    assert s["channel_utilization"] > 0.97


def test_iops_saturate_at_the_link_for_the_znand_drive():
    """Z-NAND: dies (128 / 8.12 us = 15.8M) and channels (8 / 5.12 us = 1.56M) outrun PCIe 3.0 x4, which carries
    one read's 4480 B of data TLPs and 40 B CQE in 1.1477 us: 871K IOPS (the drive is rated 750K)."""
    sim, ssd = drive("nvme_znand_pcie3")
    limit = 1e12 / float((data_wire(4 * KiB) + CQE) * PCIE3_X4)
    assert limit == pytest.approx(871_340, rel=1e-4)
    end = closed_loop(ssd, spread_pages(ssd, 20_000), qd=256)
    s = ssd.summary(end)
    assert s["iops"] == pytest.approx(limit, rel=0.03) and s["iops"] <= limit


def test_bandwidth_never_above_the_link_or_the_channels():
    """128 KiB reads (8 pages on 8 channels) at depth 64: the link's payload rate (7.877 GB/s x 256/280 =
    7.20 GB/s) binds, below the channels' 9.6 GB/s; the drive is rated 7.0 GB/s."""
    sim, ssd = drive()
    rng = np.random.default_rng(1)
    addrs = (rng.integers(0, ssd.spec.capacity // (128 * KiB), 3000) * 128 * KiB).tolist()
    end = closed_loop(ssd, addrs, qd=64, size=128 * KiB)
    s = ssd.summary(end)
    link_peak = ssd.spec.link.payload_GBps
    assert link_peak == pytest.approx(7.2016, rel=1e-4)
    assert s["bandwidth_GBps"] <= link_peak and s["link_up_GBps"] <= link_peak
    assert s["bandwidth_GBps"] <= ssd.spec.channels * ssd.spec.channel_GBps
    assert s["bandwidth_GBps"] == pytest.approx(link_peak, rel=0.03)
    assert s["page_reads"] == 3000 * 8


# ------------------------------------------------------------------------ dies and channels
def two_reads(lpn_a: int, lpn_b: int) -> tuple[int, int]:
    sim, ssd = drive()
    a, b = read(ssd, lpn_a * 16 * KiB), read(ssd, lpn_b * 16 * KiB)
    sim.env.run()
    return a.t_done, b.t_done


def test_two_reads_to_one_die_serialise():
    """Pages 3 and 3 + 64 are on channel 3, die 0: the second's tR starts when the first's data have left the
    die, so it completes tR + transfer later."""
    first, second = two_reads(3, 3 + 8 * 8)
    assert first == qd1_read_ps(TLC)
    assert second - first == TLC["tR"] + ch_ps(4 * KiB, 1200)


def test_reads_to_dies_of_one_channel_overlap_tR_but_serialise_the_transfer():
    """Pages 3 and 11: channel 3, dies 0 and 1. Both sense at once; the second's transfer waits for the first's."""
    first, second = two_reads(3, 11)
    assert first == qd1_read_ps(TLC)
    assert second - first == ch_ps(4 * KiB, 1200)


def test_reads_on_two_channels_overlap_up_to_the_link():
    """Pages 3 and 4 (channels 3 and 4) run side by side; their data share the link's up direction, so the second
    completes one read's worth of up-link bytes later (its SQE was 11 ns behind, within the first's data)."""
    first, second = two_reads(3, 4)
    up = data_wire(4 * KiB) + CQE
    assert second - first == ceil(2 * up * PCIE4_X4) - ceil(up * PCIE4_X4)


def test_independent_plane_reads_let_one_die_sense_two_pages():
    """With independent plane reads, pages 3 and 3 + 64 (die 0 of channel 3, planes 0 and 1) only share the
    channel."""
    sim, ssd = drive(independent_plane_reads=True)
    a, b = read(ssd, 3 * 16 * KiB), read(ssd, (3 + 64) * 16 * KiB)
    sim.env.run()
    assert b.t_done - a.t_done == ch_ps(4 * KiB, 1200)


def test_striping_is_channel_then_die_then_plane():
    sim, ssd = drive()
    page = 16 * KiB
    assert [ssd.locate(i * page) for i in (0, 1, 7, 8, 9, 63, 64, 127, 128)] == [
        (0, 0, 0), (1, 0, 0), (7, 0, 0), (0, 1, 0), (1, 1, 0), (7, 7, 0), (0, 0, 1), (7, 7, 1), (0, 0, 0)]


# ------------------------------------------------------------------------ sizes
@pytest.mark.parametrize("addr, size, pages, moved", [
    (0, 64, 1, [512]),  # a 64 B line: one 512 B sector
    (1000, 144, 1, [1024]),  # a 144 B row across a sector boundary: two sectors
    (16 * KiB - 72, 144, 2, [512, 512]),  # a row across a page boundary: two pages on channels 0 and 1
    (16 * KiB - 2 * KiB, 4 * KiB, 2, [2 * KiB, 2 * KiB]),  # a 4 KiB block across a page boundary
    (0, 64 * KiB, 4, [16 * KiB] * 4),  # four whole pages on four channels
])
def test_requests_of_any_size_split_at_page_boundaries(addr, size, pages, moved):
    """Each page senses in parallel on its own channel; its sectors cross its channel; the data TLPs of every part
    and then the CQE go up: SQE + L + ctl + tR + transfer(part) + up(all parts' data + CQE) + L."""
    sim, ssd = drive()
    req = read(ssd, addr, size)
    sim.env.run()
    up = ceil((sum(data_wire(m) for m in moved) + CQE) * PCIE4_X4)
    expect = (ceil(SQE * PCIE4_X4) + 250_000 + TLC["ctl_ps"] + TLC["tR"] + ch_ps(moved[0], 1200) + up + 250_000)
    assert req.t_done == expect
    assert ssd.page_reads == pages
    assert ssd.link.up.payload_bytes == sum(moved) + 16  # the data, then the 16 B CQE


def test_a_whole_page_crosses_the_channel_when_configured():
    sim, ssd = drive(channel_transfer="page")
    req = read(ssd, 0, 64)
    sim.env.run()
    assert req.t_done == qd1_read_ps(TLC, nbytes=512, ch_bytes=16 * KiB)


def test_a_write_programs_its_page():
    """A 16 KiB write: SQE then 16 KiB of data TLPs down, L, controller, the data cross the channel into the die,
    tPROG, the CQE up, L."""
    sim, ssd = drive()
    req = read(ssd, 5 * 16 * KiB, 16 * KiB, write=True)
    sim.env.run()
    down = ceil((SQE + data_wire(16 * KiB)) * PCIE4_X4)
    assert req.t_done == (down + 250_000 + TLC["ctl_ps"] + ch_ps(16 * KiB, 1200) + TLC["tPROG"]
                          + ceil(CQE * PCIE4_X4) + 250_000)
    assert ssd.page_programs == 1 and ssd.page_reads == 0 and ssd.writes == 1


# ------------------------------------------------------------------------ queues
def test_requests_beyond_the_queue_depth_wait_in_the_host():
    sim, ssd = drive(queue_depth=4)
    reqs = [read(ssd, i * 16 * KiB) for i in range(10)]  # ten channels' worth of pages, all at once
    assert not ssd.can_accept(MemRequest(0)) and len(ssd.host_q) == 6
    sim.env.run()
    assert ssd.slots.peak == 4 and ssd.host_waits == 6 and all(r.t_done > 0 for r in reqs)
    assert ssd.can_accept(MemRequest(0))
    # through a port, upstream waits instead (the drive never holds more than 4)
    sim, ssd = drive(queue_depth=4)
    port = MemoryPort(ssd)
    done = []
    for i in range(10):
        port.send(MemRequest(i * 16 * KiB, False, 4 * KiB), lambda ev: done.append(ev.value.t_done))
    sim.env.run()
    assert len(done) == 10 and ssd.slots.peak == 4 and ssd.host_waits == 0 and port.stalled == 6


def test_bad_requests_are_refused():
    sim, ssd = drive()
    with pytest.raises(ValueError, match="outside"):
        ssd.submit(MemRequest(ssd.spec.capacity - 32, False, 64))
    with pytest.raises(ValueError, match="positive"):
        ssd.submit(MemRequest(0, False, 0))


# ------------------------------------------------------------------------ energy
def test_energy_is_page_operations_plus_idle_power():
    sim, ssd = drive()
    end = closed_loop(ssd, spread_pages(ssd, 300), qd=32)
    w = read(ssd, 0, 32 * KiB, write=True)  # two pages programmed
    sim.env.run()
    end = w.t_done
    ssd.finalize(end)
    led = sim.energy
    me = ssd.stats.full_name
    assert ssd.page_reads == 300 and ssd.page_programs == 2
    assert led.get(me, "read") == pytest.approx(300 * 15_000e3)
    assert led.get(me, "write") == pytest.approx(2 * 57_153e3)
    assert led.get(me, "background") == pytest.approx(5.0 * end)  # W x ps = pJ
    assert led.total_pj() == pytest.approx(300 * 15_000e3 + 2 * 57_153e3 + 5.0 * end)
    assert all(v >= 0 for _, _, v in led.items())


# ------------------------------------------------------------------------ in a hwconfig
def _hw(tmp_path: Path, body: str) -> Path:
    p = tmp_path / "hw.yaml"
    p.write_text(f"extends: {HW / 'cpu_ddr4.yaml'}\nname: cpu_ssd\ncomponents:\n{body}\n")
    return p


def test_an_ssd_component_serves_a_host(tmp_path):
    """The LLC's misses go to the drive instead of DRAM; its columns are in the summary as ssd0_*."""
    p = _hw(tmp_path, "  ssd0: {impl: ssd, extends: nvme_tlc_pcie4}\n  llc: {next: ssd0}")
    cfg, _ = load_system(str(p))
    g = expand(cfg)
    assert ("llc", "ssd0") in {(a, b) for a, b, _ in g.edges()} and g.errors() == []
    assert kind("ssd").roles == frozenset({"memory"})
    res = run(str(p), workload=str(REPO_ROOT / "workloads" / "criteo_zipf.yaml"),
              workload_overrides=["num_batches=1", "batch_size=2"])
    s = res.summary
    assert s["lookups"] == 2 * 8 * 80
    assert s["ssd0_reads"] > 0 and s["dram_reads"] == 0
    assert s["ssd0_page_reads"] == s["ssd0_reads"]  # 64 B lines, never across a page
    assert s["ssd0_read_latency_mean_ns"] >= qd1_read_ps(TLC, nbytes=512) / 1000  # a 64 B line moves one sector
    assert s["energy_per_lookup_ssd0_read_nJ"] == pytest.approx(15_000 * s["ssd0_page_reads"] / s["lookups"])
    assert s["load_latency_mean_ns"] > 79_000
    assert s["bytes_link_data"] > 0
    r = subprocess.run([sys.executable, "-m", "archsim.cli", "show", str(p)], capture_output=True, text=True)
    assert r.returncode == 0 and "ssd0" in r.stdout and " ssd " in r.stdout


# ------------------------------------------------------------------------ schema
@pytest.mark.parametrize("entry, key, words", [
    ("tR_us: -5", "components.ssd0.tR_us", "input should be greater than 0, got -5"),
    ("channels: 0", "components.ssd0.channels", "input should be greater than or equal to 1, got 0"),
    ("page_bytes: 12288", "components.ssd0.page_bytes", "must be a power of two from 512 to 65536, got 12288"),
    ("queue_depth: 0", "components.ssd0.queue_depth", "input should be greater than or equal to 1, got 0"),
    ("tR_us: '60'", "components.ssd0.tR_us", "input should be a valid number, got '60'"),
    ("dies_per_channel: 8.0", "components.ssd0.dies_per_channel", "input should be a valid integer, got 8.0"),
    ("idle_power_W: .inf", "components.ssd0.idle_power_W", "input should be a finite number"),
    ("independent_plane_reads: 1", "components.ssd0.independent_plane_reads", "input should be a valid boolean"),
    ("link: {generation: pcie4, lanes: 3}", "components.ssd0.link.lanes", "input should be 1, 2, 4, 8 or 16"),
    ("link: {generation: pcie6, lanes: 4}", "components.ssd0.link.generation", "'pcie3', 'pcie4' or 'pcie5'"),
    ("sector_bytes: 32768", "components.ssd0.sector_bytes", "a sector must fit a page: 32768 > page_bytes 16384"),
    ("capacity: 1000000", "components.ssd0.capacity", "must be a whole number of 16384 B pages, got 1000000"),
    ("capacity: '3.84TB'", "components.ssd0.capacity", "must be a byte count"),
    ("tr_us: 60", "components.ssd0.tr_us", "unknown key"),
])
def test_bad_values_are_one_line_errors_with_the_key(tmp_path, entry, key, words):
    p = _hw(tmp_path, f"  ssd0: {{impl: ssd, extends: nvme_tlc_pcie4, {entry}}}")
    r = subprocess.run([sys.executable, "-m", "archsim.cli", "show", str(p)], capture_output=True, text=True)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1, lines
    assert f"{p}:4: {key}: " in lines[0] and words in lines[0], lines


def test_a_node_without_a_preset_needs_the_drive_figures():
    with pytest.raises(pydantic.ValidationError) as e:
        SSDSpec.model_validate({"capacity": 1 << 30})
    missing = {err["loc"][0] for err in e.value.errors() if err["type"] == "missing"}
    assert {"tR_us", "channels", "page_bytes", "link", "queue_depth", "idle_power_W"} <= missing
    assert "base" not in missing and "sector_bytes" not in missing


def test_presets_are_listed_with_a_description():
    from archsim.config import list_presets

    names = {p["name"]: p for p in list_presets()}
    for n in ("nvme_tlc_pcie4", "nvme_znand_pcie3"):
        assert names[n]["path"] == f"storage/{n}.yaml" and "NVMe" in names[n]["description"]
