"""DRAM per-command energy (archsim/dram/power.py): the DDR5 preset's energies by hand from its data-sheet
currents, every shipped preset's energies positive, refusal of currents that would book a negative energy
(one line, file:line and key, exit 2), the ledger's guard, and no negative energy in any golden result."""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path

import pytest
import yaml

from archsim.cli import main
from archsim.config import load_config
from archsim.core.energy import EnergyLedger, NegativeEnergyError
from archsim.dram.power import CommandEnergy, domain_energies, energy_errors
from archsim.dram.spec import DRAMSpec

ROOT = Path(__file__).resolve().parent.parent
PRESETS = ROOT / "archsim" / "config" / "presets" / "dram"
GOLDEN = Path(__file__).resolve().parent / "golden"


def spec_of(preset: str, **power) -> DRAMSpec:
    data = load_config(preset).data
    data["power"] = {**data["power"], **power}
    return DRAMSpec.model_validate(data)


def shipped_presets() -> list[str]:
    """Every preset under archsim/config/presets/dram that is a whole device (has currents)."""
    return sorted(p.stem for p in PRESETS.glob("*.yaml") if "power" in (yaml.safe_load(p.read_text()) or {}))


# ------------------------------------------------------------------------------------------- the DDR5 preset
def test_ddr5_preset_energies_by_hand() -> None:
    """Per rank of 4 x8 devices, tCK 0.416 ns, 32 banks; nRAS 77, nRP 39, nRC 116, nBL 8, nRFC 708. For each
    domain (V; I0, I2N, I3N, I4R, I4W, I5) = VDD (1.1; 103, 92, 142, 318, 345, 277) and VPP (1.8; 8, 7, 7, 9,
    36, 28), with rho = 0:  Irho = I2N + rho (I3N - I2N),  I1 = Irho + (I3N - Irho) / 32,
      ACT+PRE = V (I0 nRC - (I1 nRAS + I2N nRP)) x 4 x tCK      RD = V (I4R - I3N) nBL x 4 x tCK  (WR: I4W)
      REF = V (I5 - I3N) nRFC x 4 x tCK
      background per cycle: V Irho x 4 x tCK with a bank open (+ V (I3N - Irho)/32 x 4 x tCK per open bank),
      V I2N x 4 x tCK with all banks closed;  summed over the two domains (mA x V x ns = pJ)."""
    k = 4 * 0.416
    i1_vdd = 92 + (142 - 92) / 32  # 93.5625
    i1_vpp = 7 + (7 - 7) / 32
    act = 1.1 * (103 * 116 - (i1_vdd * 77 + 92 * 39)) * k + 1.8 * (8 * 116 - (i1_vpp * 77 + 7 * 39)) * k
    read = 1.1 * (318 - 142) * 8 * k + 1.8 * (9 - 7) * 8 * k
    write = 1.1 * (345 - 142) * 8 * k + 1.8 * (36 - 7) * 8 * k
    refresh = 1.1 * (277 - 142) * 708 * k + 1.8 * (28 - 7) * 708 * k
    e = CommandEnergy.from_spec(spec_of("ddr5_4800_16gb_x8"))
    assert e.act == pytest.approx(act, rel=1e-12)
    assert e.read == pytest.approx(read, rel=1e-12)
    assert e.write == pytest.approx(write, rel=1e-12)
    assert e.refresh == pytest.approx(refresh, rel=1e-12)
    assert e.act_standby == pytest.approx((1.1 * 92 + 1.8 * 7) * k, rel=1e-12)  # rho 0: Irho = I2N
    assert e.bank_standby == pytest.approx(1.1 * (142 - 92) / 32 * k, rel=1e-12)
    assert e.pre_standby == pytest.approx((1.1 * 92 + 1.8 * 7) * k, rel=1e-12)
    # the figures the preset's comments quote: 2.46 nJ per ACT, 2.63 nJ per RD, 3.67 nJ per WR, 219 nJ per REF
    assert (round(e.act / 1e3, 2), round(e.read / 1e3, 2), round(e.write / 1e3, 2), round(e.refresh / 1e3)) == (
        2.46, 2.63, 3.67, 219)


def test_ddr5_old_currents_refused_with_the_reason() -> None:
    """The currents the preset had (gem5's transcription, VDD only, rho 1) book a negative ACT energy."""
    old = spec_of("ddr5_4800_16gb_x8", IDD0=122, IDD4R=530, IDD4W=479, VPP=0, IPP0=0, IPP2N=0, IPP3N=0,
                  IPP4R=0, IPP4W=0, IPP5AB=0, rho=1)
    assert CommandEnergy.from_spec(old).act < 0
    assert old.semantic_errors() == [(("power", "IDD0"), (
        "ACT energy would be negative (-0.68 nJ per ACT): IDD0 122 mA is below the tRAS/tRP-weighted standby "
        "current 125.2 mA"))]


def test_rho_one_is_the_classic_formula_bit_for_bit() -> None:
    """With rho 1 and no VPP (every DDR4 preset) the energies are DRAMsim3's expressions, to the last bit."""
    s = spec_of("ddr4_3200_8gb_x8")
    p, t = s.power, s.timing.resolved(s.org.burst_length)
    v = p.VDD * s.org.devices_per_rank * s.timing.tCK_ps / 1000.0
    e = CommandEnergy.from_spec(s)
    assert e.act == v * (p.IDD0 * t["nRC"] - (p.IDD3N * t["nRAS"] + p.IDD2N * t["nRP"]))
    assert e.read == v * (p.IDD4R - p.IDD3N) * t["nBL"]
    assert e.write == v * (p.IDD4W - p.IDD3N) * t["nBL"]
    assert e.refresh == v * (p.IDD5AB - p.IDD3N) * t["nRFC"]
    assert (e.act_standby, e.pre_standby, e.bank_standby) == (v * p.IDD3N, v * p.IDD2N, 0.0)


def test_vpp_domain_adds_its_share() -> None:
    base = spec_of("ddr4_3200_8gb_x8")
    both = spec_of("ddr4_3200_8gb_x8", VPP=2.5, IPP0=4, IPP2N=3, IPP3N=3, IPP4R=3, IPP4W=3, IPP5AB=20)
    t = base.timing.resolved(8)
    k = 8 * 0.625
    a, b = CommandEnergy.from_spec(base), CommandEnergy.from_spec(both)
    assert b.act - a.act == pytest.approx(2.5 * (4 * t["nRC"] - (3 * t["nRAS"] + 3 * t["nRP"])) * k)
    assert b.read == pytest.approx(a.read)  # IPP4R = IPP3N: reads cost nothing on VPP
    assert b.refresh - a.refresh == pytest.approx(2.5 * (20 - 3) * t["nRFC"] * k)
    assert b.pre_standby - a.pre_standby == pytest.approx(2.5 * 3 * k)
    assert [d.domain for d in domain_energies(both)] == ["VDD", "VPP"]
    assert [d.domain for d in domain_energies(base)] == ["VDD"]


# ------------------------------------------------------------------------------------------- every shipped preset
@pytest.mark.parametrize("preset", shipped_presets())
def test_every_shipped_preset_books_positive_energies(preset: str) -> None:
    s = spec_of(preset)
    assert energy_errors(s) == []
    e = CommandEnergy.from_spec(s)
    for name in ("act", "read", "write", "refresh", "act_standby", "pre_standby"):
        assert getattr(e, name) > 0, name
    assert e.bank_standby >= 0 and e.io >= 0
    for d in domain_energies(s):  # no domain books a negative share either
        for name in ("act", "read", "write", "refresh", "act_standby", "bank_standby", "pre_standby"):
            assert getattr(d, name) >= 0, (d.domain, name)


def test_shipped_presets_found() -> None:
    assert {"ddr4_2400_8gb_x8", "ddr4_3200_8gb_x8", "ddr5_4800_16gb_x8", "hbm2_2gbps"} <= set(shipped_presets())


# ------------------------------------------------------------------------------------------- refusal
def _trace(tmp_path: Path) -> Path:
    p = tmp_path / "t.trace"
    p.write_text("".join(f"0x{i * 64:x} R\n" for i in range(50)))
    return p


@pytest.mark.parametrize("power,line,key,text", [
    ("    IDD0: 40\n", 5, "dram.power.IDD0",
     "ACT energy would be negative (-3.35 nJ per ACT): IDD0 40 mA is below the tRAS/tRP-weighted standby "
     "current 47.5 mA"),
    ("    IDD4R: 50\n", 5, "dram.power.IDD4R",
     "RD energy would be negative (-0.048 nJ per RD): IDD4R 50 mA is below the active standby current IDD3N 52 mA"),
    ("    IDD4W: 52\n", 5, "dram.power.IDD4W", "WR energy would be zero: IDD4W 52 mA equals the active standby "
                                              "current IDD3N 52 mA"),
    ("    VPP: 2.5\n    IPP0: 2\n    IPP2N: 3\n    IPP3N: 3\n    IPP5AB: 20\n", 6, "dram.power.IPP0",
     "ACT energy would be negative in the VPP domain (-0.93 nJ per ACT): IPP0 2 mA is below the tRAS/tRP-weighted "
     "standby current 3.0 mA"),
    ("    IPP0: 4\n", 4, "dram.power.VPP", "must be positive when IPP currents are given (IPP0 4 mA)"),
    ("    rho: 0.5\n    IDD3N: 30\n", 6, "dram.power.IDD3N",
     "open banks would book negative background energy: IDD3N 30 mA is below IDD2N 37 mA (rho 0.5)"),
])
def test_negative_energy_refused_one_line_exit_2(tmp_path, capsys, power, line, key, text) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("name: c\ndram:\n  extends: ddr4_3200_8gb_x8\n  power:\n" + power)
    out = tmp_path / "out"
    rc = main(["run", str(cfg), "--trace", str(_trace(tmp_path)), "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert f"{cfg}:{line}: {key}: {text}" in lines[0]
    assert not out.exists()


def test_overridden_energies_are_not_checked() -> None:
    """act_energy_pJ / column_energy_pJ_per_bit replace the IDD figures: bad IDD0/IDD4R are then not booked."""
    s = spec_of("ddr4_3200_8gb_x8", IDD0=40, IDD4R=50, act_energy_pJ=2100, column_energy_pJ_per_bit=14)
    assert energy_errors(s) == []
    assert spec_of("ddr4_3200_8gb_x8", IDD0=40).semantic_errors()[0][0] == ("power", "IDD0")


# ------------------------------------------------------------------------------------------- the ledger's guard
@pytest.mark.parametrize("pj", [-1e-9, -5.0, float("nan"), float("-inf")])
def test_ledger_refuses_negative_bookings(pj: float) -> None:
    led = EnergyLedger()
    with pytest.raises(NegativeEnergyError, match="internal error: system.dram.ch0 booked"):
        led.book("system.dram.ch0", "act", pj)
    with pytest.raises(NegativeEnergyError):
        led.book_n("system.dram.ch0", "act", pj, 3)
    assert len(led) == 0


def test_ledger_accepts_zero_and_positive() -> None:
    led = EnergyLedger()
    led.book("a", "act", 0.0)
    led.book("a", "act", -0.0)
    led.book_n("a", "read", 2.0, 0)
    led.book_n("a", "read", 1.5, 2)
    assert led.get("a", "act") == 0.0 and led.get("a", "read") == 3.0


# ------------------------------------------------------------------------------------------- golden results
def _energy_leaves(obj, path: str = "", inside: bool = False):
    """(path, number) of every number at or below a key naming energy."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _energy_leaves(v, f"{path}.{k}", inside or "energy" in str(k).lower())
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _energy_leaves(v, f"{path}[{i}]", inside)
    elif inside and isinstance(obj, int | float) and not isinstance(obj, bool):
        yield path, obj


@pytest.mark.parametrize("golden", sorted(p.name for p in GOLDEN.glob("*.json.gz")))
def test_golden_results_have_no_negative_energy(golden: str) -> None:
    d = json.loads(gzip.decompress((GOLDEN / golden).read_bytes()))
    leaves = list(_energy_leaves({"summary": d["summary"], "stats": d["stats"]}))
    assert any(p.startswith(".summary.energy") for p, _ in leaves)  # the walk does see the energy columns
    bad = [(p, v) for p, v in leaves if not (math.isfinite(v) and v >= 0)]
    assert bad == []


# ------------------------------------------------------------------------------------------- open-bank cycles
@pytest.mark.parametrize("engine", ["python", "c"])
def test_bank_open_cycles_and_bank_wise_background(monkeypatch, engine) -> None:
    """The bank-wise background (rho < 1) needs the sum over banks of their open cycles: with one bank open it
    equals the rank's active cycles, with four open at once it exceeds them; both engines count it, and the
    background booked is act_standby x active + bank_standby x open bank-cycles + pre_standby x idle."""
    from archsim.core.request import MemRequest
    from archsim.core.sim import Simulator
    from archsim.dram import controller as ctl
    from archsim.dram.memory import DRAMSystem

    if engine == "c" and ctl.CChannelController is None:
        pytest.skip("the compiled engine is not built")
    monkeypatch.setenv("ARCHSIM_ENGINE", engine)
    spec = spec_of("ddr5_4800_16gb_x8")
    e = CommandEnergy.from_spec(spec)
    got = []
    for n in (1, 4):
        sim = Simulator(0)
        mem = DRAMSystem(sim, spec)
        picks, seen = [], set()
        for i in range(1 << 16):
            ch, ra, bg, ba, _ro, _co = mem.mapper.decode(i * 4096)
            if ch == 0 and ra == 0 and (bg, ba) not in seen:
                seen.add((bg, ba))
                picks.append(i * 4096)
                if len(picks) == n:
                    break
        for a in picks:
            mem.submit(MemRequest(a))
        sim.env.run(until=3000 * spec.timing.tCK_ps)
        mem.finalize()
        c0 = mem.channels[0]
        active, idle, opened = c0.rank_active[0], c0.rank_idle[0], c0.bank_open[0]
        assert active + idle == 3000
        bg = sim.energy.get(f"{mem.stats.full_name}.ch0", "background")
        assert bg == pytest.approx(e.act_standby * active + e.bank_standby * opened + e.pre_standby * idle)
        got.append((active, opened))
    (a1, o1), (a4, o4) = got
    assert a1 > 0 and o1 == a1
    assert a4 < o4 <= 4 * a4
