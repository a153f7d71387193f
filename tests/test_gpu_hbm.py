"""The GPU model's HBM: the H100 (hbm3_5200) and H200 (hbm3e_6250) presets, and the closed-loop loaded-latency
curve measured on the DRAM model (archsim.gpu.hbm_curve) that the GPU model reads its HBM latency from."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from archsim.config import load_config, validate
from archsim.dram.spec import DRAMSpec
from archsim.gpu import hbm_curve
from archsim.gpu.hbm_curve import LatencyCurve, loaded_latency_curve
from archsim.system.config import load_system

GiB = 1 << 30


def load_preset(tmp_path: Path, preset: str) -> DRAMSpec:
    """As a user would: a system file whose ``dram:`` extends the preset (schema and cross-field checks)."""
    path = tmp_path / "system.yaml"
    path.write_text(f"name: t\ndram: {{extends: {preset}}}\n")
    cfg, _ = load_system(path)
    return cfg.dram


def spec_of(preset: str, *overrides: str) -> DRAMSpec:
    return validate(load_config(f"dram/{preset}", list(overrides)), DRAMSpec)


def bus_peak_GBps(spec: DRAMSpec, channels: int) -> float:
    """channels x pseudo-channels x bus bits x data rate (beats per CK = burst_length / nBL) / 8."""
    t = spec.timing.resolved(spec.org.burst_length)
    gbps_per_pin = spec.org.burst_length / t["nBL"] / (spec.timing.tCK_ps * 1e-3)
    return channels * spec.org.pseudo_channels * spec.org.bus_width * gbps_per_pin / 8


# ------------------------------------------------------------------------------------------------ presets
@pytest.mark.parametrize("preset, stacks, peak_GBps, capacity", [
    ("hbm3_5200", 5, 3350.0, 16 * GiB),   # H100 SXM: 80 GB, 3.35 TB/s
    ("hbm3e_6250", 6, 4800.0, 32 * GiB),  # H200: 141 GB, 4.8 TB/s (24 GB stacks, modelled as 32 GiB)
])
def test_preset_peak_bandwidth(tmp_path: Path, preset: str, stacks: int, peak_GBps: float, capacity: int) -> None:
    spec = load_preset(tmp_path, preset)
    assert spec.standard == "HBM3" and spec.semantic_errors() == [] and len(spec.constraints) > 0
    assert spec.org.channels == 16 and spec.org.pseudo_channels == 2 and spec.org.bus_width == 32
    assert spec.org.capacity_bytes == capacity
    channels = 16 * stacks  # 80 / 96: not a power of two, so not settable as org.channels (see the presets)
    assert spec.peak_bandwidth_GBps * stacks == pytest.approx(peak_GBps, rel=5e-3)
    assert bus_peak_GBps(spec, channels) == pytest.approx(peak_GBps, rel=5e-3)
    assert spec.sources["org"] and spec.sources["timing"] and spec.sources["nRFC"]


@pytest.mark.parametrize("preset, tck_ns", [("hbm3_5200", 0.764), ("hbm3e_6250", 0.640)])
def test_preset_timings_are_hbm3_6400_nanoseconds(tmp_path: Path, preset: str, tck_ns: float) -> None:
    """Every n* of hbm3_6400 as ns (n x 0.625) rounded up in the new clock; cycle-based ones kept; nREFI 3.9 us
    rounded down; nRFC from JESD238's tRFC of the stack's channel density (350 ns; 450 ns for 12 Gb)."""
    base = load_preset(tmp_path, "hbm3_6400").timing.resolved(8)
    t = load_preset(tmp_path, preset).timing.resolved(8)
    assert t["tCK_ps"] == round(tck_ns * 1000)
    kept = {"nBL", "nCCD_S", "nCCD_L", "nRTRS", "nAL", "nPPD"}
    special = {"nREFI", "nRFC"}
    for name, n in base.items():
        if name == "tCK_ps":
            continue
        if name in kept:
            assert t[name] == n, name
        elif name not in special:
            assert t[name] == math.ceil(n * 0.625 / tck_ns - 1e-9), name
    assert t["nREFI"] == math.floor(3900 / tck_ns)
    trfc_ns = 450 if preset == "hbm3e_6250" else 350
    assert t["nRFC"] == math.ceil(trfc_ns / tck_ns)


def test_channel_counts_of_the_gpus_are_not_powers_of_two() -> None:
    """The schema takes only powers of two as org.channels: 80 (H100) and 96 (H200) are refused, which is why
    the curve of 80 channels is the 64-channel one scaled (LatencyCurve.scaled)."""
    from archsim.config import ConfigError

    with pytest.raises(ConfigError, match="power of two"):
        spec_of("hbm3_5200", "org.channels=80")


# ------------------------------------------------------------------------------------------------ the curve
SMALL = ("org.channels=4",)  # 8 pseudo-channels, 256 banks: a few tenths of a second a curve


@pytest.fixture(autouse=True)
def _fresh_cache():
    hbm_curve.clear_cache()
    yield
    hbm_curve.clear_cache()


def _cycles(spec: DRAMSpec) -> tuple[dict[str, int], float]:
    return spec.timing.resolved(spec.org.burst_length), spec.timing.tCK_ps / 1000


def test_idle_latency_closed_page_is_the_closed_form() -> None:
    """N = 1, closed page, no refresh: every read finds its bank precharged. The controller issues ACT in the
    cycle after the accept, RD(A) nRCDRD later, and the data's last beat returns nCL + nBL after it:
    (1 + nRCDRD + nCL + nBL) tCK from the accept (tests/test_dram_bursts.py times the same). The loop's latency
    adds the wait for the next clock edge at the accept, under one tCK."""
    spec = spec_of("hbm3_5200", *SMALL, "controller.row_policy=closed", "controller.refresh.policy=none")
    t, tck = _cycles(spec)
    closed = (1 + t["nRCDRD"] + t["nCL"] + t["nBL"]) * tck  # 46 x 0.764 = 35.1 ns
    c = loaded_latency_curve(spec, access_bytes=32, points=(1,), requests_per_point=3000)
    assert c.dram_latencies_ns[0] == pytest.approx(closed, abs=0.1)  # a read now and then waits for nRC
    assert closed <= c.latency_ns(1) <= closed + 1.0
    assert c.latency_ns(1) - c.dram_latencies_ns[0] <= tck + 1e-6


def test_idle_latency_open_page_row_miss_is_the_closed_form() -> None:
    """N = 1, open page (the preset's policy), no refresh, a 64 B read (two 32 B bursts, one row): once every
    bank has a row open, a random read is a row conflict: PRE in the cycle after the accept, ACT nRP later, RD
    nRCDRD later, the second RD max(nCCD_L, nBL) after the first, its data nCL + nBL after it. Only the first
    touch of each of the 64 banks finds it closed (nRP less), 1% of 6000 reads: within 1 ns."""
    spec = spec_of("hbm3_5200", "org.channels=1", "controller.refresh.policy=none")
    t, tck = _cycles(spec)
    ccd = max(t["nCCD_L"], t["nBL"])
    conflict = (1 + t["nRP"] + t["nRCDRD"] + ccd + t["nCL"] + t["nBL"]) * tck  # 72 x 0.764 = 55.0 ns
    c = loaded_latency_curve(spec, access_bytes=64, points=(1,), requests_per_point=6000)
    assert c.dram_latencies_ns[0] == pytest.approx(conflict, abs=1.0)
    assert c.latency_ns(1) == pytest.approx(conflict, abs=1.0)


def test_small_curve_is_monotone_and_below_the_bus_peak() -> None:
    """hbm3_5200 as shipped (open page, refresh) on 4 channels, 64 B reads."""
    spec = spec_of("hbm3_5200", *SMALL)
    t, tck = _cycles(spec)
    points = (1, 4, 16, 64, 256, 1024)
    c = loaded_latency_curve(spec, access_bytes=64, points=points, requests_per_point=2000)
    assert c.outstanding == points and c.peak_GBps == pytest.approx(bus_peak_GBps(spec, 4))
    lat, thr = c.latencies_ns, c.throughputs_GBps
    assert all(a <= b for a, b in zip(lat, lat[1:])), lat
    assert all(a <= b for a, b in zip(thr, thr[1:])), thr
    # as measured too, below saturation (8 pseudo-channels x 32 queue entries = 256 reads)
    raw = c.measured_throughputs_GBps
    assert all(a < b for a, b in zip(raw[:5], raw[1:5])), raw
    assert max(raw) <= c.peak_GBps and max(thr) <= c.peak_GBps
    assert max(raw) > 0.5 * c.peak_GBps  # it does saturate
    # Little's law: the loop latency is N x bytes / throughput; the DRAM's own latency is at most that
    for n, lt, dl, th in c.table():
        assert lt == pytest.approx(n * 64 / th, rel=1e-9)
        assert dl <= lt + 1e-9
    # N = 1: between an idle read to a closed bank and a row conflict plus the mean wait for a refresh
    # (a read finds its rank refreshing nRFC / nREFI of the time and waits half of nRFC on average)
    ccd = max(t["nCCD_L"], t["nBL"])
    closed = (1 + t["nRCDRD"] + ccd + t["nCL"] + t["nBL"]) * tck
    refresh_wait = t["nRFC"] / t["nREFI"] * t["nRFC"] / 2 * tck
    assert closed < c.latency_ns(1) < closed + t["nRP"] * tck + refresh_wait + tck
    # past the read queues' capacity the extra reads wait in front of the DRAM
    assert c.latency_ns(1024) > 1.5 * c.dram_latencies_ns[-1]


def test_a_full_channel_holds_back_no_other_read() -> None:
    """Past the read queues' capacity (8 pseudo-channels x 32 entries = 256 reads), a read for a full channel
    waits in the port for that channel only: the loop outruns an in-order feed (TraceDriver with window N, where
    one read for a full channel holds back every read behind it, as the curve was measured before) and keeps
    every queue full, so the DRAM latency hardly grows from 1,024 to 4,096 reads."""
    import numpy as np

    from archsim.core.sim import Simulator
    from archsim.dram.memory import DRAMSystem
    from archsim.system.trace_driver import TraceDriver

    spec = spec_of("hbm3_5200", *SMALL)
    n = 1024
    c = loaded_latency_curve(spec, access_bytes=64, points=(n, 4 * n), requests_per_point=2000)
    sim = Simulator(0)
    rng = np.random.default_rng(0)
    trace = ((a, False, -1) for a in (rng.integers(0, spec.org.capacity_bytes // 64, 1 << 20) * 64).tolist())
    drv = TraceDriver(sim.env, DRAMSystem(sim, spec), trace, window=n, size=64, direct=False)
    t = 0
    while drv.completed < 3 * n:  # the same warm-up
        t += 100_000
        sim.env.run(until=t)
    done0, span = drv.completed, round(c.windows_ns[0] * 1000)
    sim.env.run(until=t + span)
    in_order_GBps = (drv.completed - done0) * 64 / span * 1000
    assert c.measured_throughputs_GBps[0] > 1.03 * in_order_GBps, (c.measured_throughputs_GBps, in_order_GBps)
    assert c.dram_latencies_ns[1] == pytest.approx(c.dram_latencies_ns[0], rel=0.1)


def test_same_seed_same_curve_and_the_cache() -> None:
    spec = spec_of("hbm3_5200", *SMALL)
    kw = dict(access_bytes=128, points=(1, 32, 256), requests_per_point=1000)
    a = loaded_latency_curve(spec, seed=3, **kw)
    assert loaded_latency_curve(spec, seed=3, **kw) is a  # cached
    hbm_curve.clear_cache()
    b = loaded_latency_curve(spec, seed=3, **kw)
    assert b is not a and b == a  # recomputed, identical
    other = loaded_latency_curve(spec, seed=4, **kw)
    assert other != a  # the seed does pick the addresses
    # a spec that differs in anything is another key
    assert loaded_latency_curve(spec_of("hbm3_5200", *SMALL, "timing.nCL=18"), seed=3, **kw) != a


def _curve() -> LatencyCurve:
    return LatencyCurve(access_bytes=64, outstanding=(1, 10, 100), latencies_ns=(50.0, 60.0, 160.0),
                        dram_latencies_ns=(49.0, 59.0, 100.0), throughputs_GBps=(1.28, 64 / 6, 40.0),
                        measured_throughputs_GBps=(1.28, 64 / 6, 40.0), requests=(1, 1, 1),
                        windows_ns=(1.0, 1.0, 1.0), peak_GBps=50.0, channels=1)


def test_interpolation_and_littles_law_beyond() -> None:
    c = _curve()
    assert c.latency_ns(0.5) == 50.0 and c.latency_ns(1) == 50.0
    assert c.latency_ns(5.5) == pytest.approx(55.0)
    assert c.latency_ns(55) == pytest.approx(110.0)
    assert c.latency_ns(100) == pytest.approx(160.0)
    assert c.latency_ns(200) == pytest.approx(200 * 64 / 40.0)  # 320 ns: saturated at 40 GB/s
    assert c.throughput_GBps(200) == pytest.approx(40.0)
    assert c.throughput_GBps(10) == pytest.approx(64 / 6)
    assert c.throughput_GBps(0) == 0.0
    assert c.throughput_GBps(55) == pytest.approx(55 * 64 / 110.0)
    assert c.dram_latency_ns(1000) == 100.0
    s = c.scaled(1.25)
    assert s.latency_ns(125) == pytest.approx(160.0) and s.throughput_GBps(125) == pytest.approx(50.0)
    assert s.peak_GBps == pytest.approx(62.5)
    with pytest.raises(ValueError):
        c.latency_ns(-1)


def test_monotone_pools_a_dip_past_saturation() -> None:
    """Measurements scattering around a plateau are pooled (weighted mean); latencies follow N x B / thr."""
    lat, thr = hbm_curve._monotone((1, 2, 4, 8), [1.0, 2.0, 1.8, 1.9], [10, 10, 10, 30], 64)
    # 2.0 then 1.8 pool to 1.9 (equal weights), which 1.9 does not undercut
    assert thr == pytest.approx([1.0, 1.9, 1.9, 1.9])
    assert all(a <= b for a, b in zip(thr, thr[1:])) and all(a <= b for a, b in zip(lat, lat[1:]))
    assert lat == pytest.approx([n * 64 / t for n, t in zip((1, 2, 4, 8), thr)])
    # already monotone: unchanged
    lat2, thr2 = hbm_curve._monotone((1, 2), [1.0, 1.5], [1, 1], 64)
    assert thr2 == pytest.approx([1.0, 1.5]) and lat2 == pytest.approx([64.0, 2 * 64 / 1.5])


def test_bad_arguments() -> None:
    spec = spec_of("hbm3_5200", *SMALL)
    with pytest.raises(ValueError):
        loaded_latency_curve(spec, points=(16, 1))
    with pytest.raises(ValueError):
        loaded_latency_curve(spec, access_bytes=48)


def test_curves_are_kept_on_disk(tmp_path, monkeypatch) -> None:
    """A curve measured in one process is read back from ARCHSIM_CACHE_DIR in another (the in-process cache
    cleared here), with every number identical; ARCHSIM_CACHE_DIR=off keeps nothing."""
    monkeypatch.setenv(hbm_curve.CACHE_ENV, str(tmp_path / "c"))
    spec = spec_of("hbm3_5200", *SMALL)
    kw = dict(access_bytes=64, points=(1, 64), requests_per_point=500, seed=11)
    a = loaded_latency_curve(spec, **kw)
    files = list((tmp_path / "c" / "hbm_curves").glob("*.json"))
    assert len(files) == 1
    hbm_curve.clear_cache()
    calls = []
    monkeypatch.setattr(hbm_curve, "_measure_point", lambda *a, **k: calls.append(a) or (0.0, 1.0, 1, 1.0))
    b = loaded_latency_curve(spec, **kw)
    assert b == a and not calls  # read, not measured
    files[0].write_text("{not json")
    hbm_curve.clear_cache()
    monkeypatch.undo()
    monkeypatch.setenv(hbm_curve.CACHE_ENV, str(tmp_path / "c"))
    assert loaded_latency_curve(spec, **kw) == a  # a damaged file is measured again
    monkeypatch.setenv(hbm_curve.CACHE_ENV, "off")
    hbm_curve.clear_cache()
    loaded_latency_curve(spec, **dict(kw, seed=12))
    assert len(list((tmp_path / "c" / "hbm_curves").glob("*.json"))) == 1
