"""Tests for the shipped DRAM presets: each loads as a system, and its capacity, peak bandwidth and key timings
match the device figures it claims (JEDEC speed bins, vendor data sheets, the reference simulators' presets)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from archsim.dram.power import CommandEnergy
from archsim.dram.spec import DRAMSpec
from archsim.system.config import load_system

GiB = 1 << 30


@dataclass(frozen=True)
class Expected:
    standard: str
    capacity_bytes: int
    capacity_why: str
    peak_GBps: float
    timings_ns: dict[str, float] = field(default_factory=dict)  # timing name -> data-sheet nanoseconds


EXPECTED: dict[str, Expected] = {
    "ddr4_3200_8gb_x8": Expected(
        "DDR4",
        16 * GiB,
        "8 Gb x8: 8 devices on 64 bits = 8 GiB per rank, x 2 ranks",
        25.6,  # 3200 MT/s x 8 B
        {"nCL": 13.75, "nRCD": 13.75, "nRP": 13.75, "nRAS": 32.0, "nWR": 15.0, "nRTP": 7.5, "nFAW": 21.0,
         "nRFC": 350.0, "nREFI": 7800.0},
    ),
    "ddr4_3200_16gb_x8": Expected(
        "DDR4",
        32 * GiB,
        "16 Gb x8 (128K rows): 8 devices = 16 GiB per rank, x 2 ranks (a 32 GB dual-rank module)",
        25.6,
        {"nCL": 13.75, "nRCD": 13.75, "nRP": 13.75, "nRAS": 32.0, "nWR": 15.0, "nRTP": 7.5, "nFAW": 21.0,
         "nRFC": 550.0, "nREFI": 7800.0},
    ),
    "ddr5_4800_16gb_x8": Expected(
        "DDR5",
        16 * GiB,
        "16 Gb x8: 4 devices per 32-bit subchannel = 8 GiB, x 2 subchannels (one single-rank DIMM)",
        38.4,  # 4800 MT/s x 2 subchannels x 4 B
        {"nCL": 16.667, "nRAS": 32.0, "nWR": 30.0, "nRTP": 7.5, "nCCD_L": 5.0, "nRRD_L": 5.0, "nFAW": 13.333,
         "nWTR_S": 2.5, "nWTR_L": 10.0, "nRFC": 295.0, "nREFI": 3900.0},
    ),
    "hbm2_2gbps": Expected(
        "HBM2",
        8 * GiB,
        "8 channels x 16 banks x 32K rows x 2 KB page = 8 x 1 GiB",
        256.0,  # 1024 bits x 2 Gb/s / 8
        {"nCL": 14.0, "nRCD": 14.0, "nRP": 14.0, "nRAS": 34.0, "nRFC": 260.0, "nREFI": 3900.0},
    ),
    "hbm3_6400": Expected(
        "HBM3",
        16 * GiB,
        "8-high stack of 16 Gb dies = 128 Gb: 32 pseudo-channels x 2 SIDs x 16 banks x 16K rows x 1 KB page",
        819.2,  # 1024 bits x 6.4 Gb/s / 8
        {"nCL": 12.5, "nRP": 16.25, "nRC": 45.0, "nFAW": 15.0, "nRFC": 350.0, "nREFI": 3900.0},
    ),
}


def load_preset(tmp_path: Path, preset: str) -> DRAMSpec:
    """Load ``preset`` the way a user would: a system file whose ``dram:`` extends it."""
    path = tmp_path / "system.yaml"
    path.write_text(f"name: t\ndram: {{extends: {preset}}}\n")
    cfg, _ = load_system(path)  # validates the schema and the cross-field checks; raises ConfigError otherwise
    return cfg.dram


@pytest.mark.parametrize("preset", sorted(EXPECTED))
def test_preset_loads_and_validates(tmp_path: Path, preset: str) -> None:
    spec = load_preset(tmp_path, preset)
    assert spec.standard == EXPECTED[preset].standard
    assert spec.semantic_errors() == []
    assert len(spec.constraints) > 0  # the shared table arrived through extends


@pytest.mark.parametrize("preset", sorted(EXPECTED))
def test_capacity(tmp_path: Path, preset: str) -> None:
    exp = EXPECTED[preset]
    assert load_preset(tmp_path, preset).org.capacity_bytes == exp.capacity_bytes, exp.capacity_why


@pytest.mark.parametrize("preset", sorted(EXPECTED))
def test_peak_bandwidth(tmp_path: Path, preset: str) -> None:
    # within 0.5%: DDR5-4800's tCK is the truncated 416 ps (real 416.67 ps), which reads 0.16% fast
    assert load_preset(tmp_path, preset).peak_bandwidth_GBps == pytest.approx(EXPECTED[preset].peak_GBps, rel=5e-3)


@pytest.mark.parametrize("preset", sorted(EXPECTED))
def test_key_timings_within_one_clock(tmp_path: Path, preset: str) -> None:
    spec = load_preset(tmp_path, preset)
    t = spec.timing.resolved(spec.org.burst_length)
    tck_ns = spec.timing.tCK_ps / 1000.0
    for name, ns in EXPECTED[preset].timings_ns.items():
        # one clock of rounding, plus 0.2% for an integer tCK_ps below the real period (DDR5-4800: 416 ps
        # for 416.67 ps, so JEDEC's 708 nCK of tRFC reads 294.5 ns here; it is 295.0 ns on the real clock)
        tol = tck_ns + 2e-3 * ns
        assert abs(t[name] * tck_ns - ns) <= tol, f"{name}: {t[name]} x {tck_ns} ns vs {ns} ns"


@pytest.mark.parametrize("preset", sorted(EXPECTED))
def test_sources_named(tmp_path: Path, preset: str) -> None:
    sources = load_preset(tmp_path, preset).sources
    assert sources
    assert all(isinstance(v, str) and v.strip() for v in sources.values())


def _jesd79_5_nck(t_ps: int, tck_ps: int = 416) -> int:
    """JESD79-5 rounding: tCK truncated to whole ps, a 0.3% correction factor, then round up."""
    return (t_ps * 997 // tck_ps + 1000) // 1000


def test_ddr5_cycle_counts_follow_jesd79_5_rounding(tmp_path: Path) -> None:
    t = load_preset(tmp_path, "ddr5_4800_16gb_x8").timing
    assert t.tCK_ps == 416
    derived = {  # minimum parameters: max(n nCK, t ns)
        "nRAS": _jesd79_5_nck(32_000),
        "nWR": _jesd79_5_nck(30_000),
        "nRTP": max(12, _jesd79_5_nck(7_500)),
        "nCCD_L": max(8, _jesd79_5_nck(5_000)),
        "nRRD_L": max(8, _jesd79_5_nck(5_000)),
        "nFAW": max(32, _jesd79_5_nck(13_333)),
        "nWTR_S": max(4, _jesd79_5_nck(2_500)),
        "nWTR_L": max(16, _jesd79_5_nck(10_000)),
        "nRFC": _jesd79_5_nck(295_000),
    }
    assert derived == {"nRAS": 77, "nWR": 72, "nRTP": 18, "nCCD_L": 12, "nRRD_L": 12, "nFAW": 32,
                       "nWTR_S": 6, "nWTR_L": 24, "nRFC": 708}
    for name, n in derived.items():
        assert getattr(t, name) == n, name
    assert t.nREFI == 3_900_000 // 416  # a maximum interval: rounded down
    assert (t.nCL, t.nRCD, t.nRP, t.nCCD_S, t.nRRD_S) == (40, 39, 39, 8, 8)
    assert t.nCWL == t.nCL - 2
    assert t.nRC == t.nRAS + t.nRP


def test_hbm3_geometry(tmp_path: Path) -> None:
    spec = load_preset(tmp_path, "hbm3_6400")
    org, t = spec.org, spec.timing.resolved(spec.org.burst_length)
    assert org.channels * org.pseudo_channels * org.bus_width == 1024  # bits per stack
    assert org.access_bytes == 32  # BL8 on a 32-bit pseudo-channel
    assert t["nBL"] == 2  # 8 beats at 4 beats per 625 ps clock
    per_pc = org.access_bytes / (t["nBL"] * spec.timing.tCK_ps * 1e-3)  # GB/s
    assert per_pc == pytest.approx(25.6)
    assert per_pc * org.pseudo_channels == pytest.approx(51.2)  # per 64-bit channel
    assert spec.controller.dual_command_issue


@pytest.mark.parametrize("preset", sorted(EXPECTED))
def test_command_energies_positive(tmp_path: Path, preset: str) -> None:
    e = CommandEnergy.from_spec(load_preset(tmp_path, preset))
    for name in ("act", "read", "write", "refresh", "act_standby", "pre_standby"):
        assert getattr(e, name) > 0, name

