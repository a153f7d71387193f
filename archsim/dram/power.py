"""Per-command DRAM energy from data-sheet currents: the Micron / DRAMPower method, one supply domain at a time.

A data sheet gives, per device, the currents of a few measurement loops on the core supply VDD (IDD0, IDD2N,
IDD3N, IDD4R, IDD4W, IDD5B) and, for DDR4 and DDR5, on the wordline supply VPP (IPP0, IPP2N, ...; 2.5 V on
DDR4, 1.8 V on DDR5). Each command's energy is the current of its loop minus the standby current that the
background already books, times the time the loop takes, summed over the domains (DRAMPower 5
``Calculation_DDR5::calcEnergy`` loops over VDD and VPP with the same equations; Ramulator 2's DDR5 power model
does the same). Per rank (``devices`` chips), with V in volts, currents in mA and times in cycles of tCK, for
each domain (V, I0, I2N, I3N, I4R, I4W, I5) = (VDD, IDD0, IDD2N, ...) and (VPP, IPP0, IPP2N, ...):

- ACT+PRE pair: V * (I0 * nRC - (I1 * nRAS + I2N * nRP)) * devices
- RD burst:     V * (I4R - I3N) * nBL * devices      WR burst: the same with I4W
- REF (all-bank): V * (I5 - I3N) * nRFC * devices
- background per cycle: V * I2N * devices while all banks of the rank are closed (precharge standby); while any
  is open, V * Irho * devices for the rank plus V * (I3N - Irho) / banks * devices per open bank
  (active standby)

with DRAMPower's bank-wise factor rho (``power.rho``): Irho = I2N + rho * (I3N - I2N) is the rank-level part of
the active-standby current, I1 = Irho + (I3N - Irho) / banks the current with one bank open. With rho = 1 (the
default) Irho = I1 = I3N and the ACT+PRE pair is the classic V * (I0 * nRC - (I3N * nRAS + I2N * nRP)) of
Micron's TN-41-01 / TN-40-07, DRAMsim3 (``act_energy_inc``) and DRAMPower (E_act + E_pre with its defaults
rho = 1, I_beta = I0): all four agree on it, and it is the formula the DDR4 presets are validated with.

It is the energy of the ACT-PRE loop above the background booked meanwhile, so it is negative when I0 is below
the tRAS/tRP-weighted standby current (I1 nRAS + I2N nRP) / nRC: a physically impossible figure, which
:func:`energy_errors` reports so that such a configuration is refused before it runs. DDR5 data sheets measure
IDD3N with all 32 banks open while IDD0 cycles one bank, and on Micron's 16 Gb DDR5 IDD0 lies below that weighted
current unless most of IDD3N - IDD2N is drawn per open bank (rho near 0); see the DDR5 preset.

mA x V x cycles becomes pJ by multiplying by tCK in ns (``energy_time_basis: ns``); DRAMsim3 omits that factor
(``cycle``), which the DRAMsim3 validation configurations select. Abstracted away: power-down and self-refresh
currents (the controllers never enter them), IDD2P/IDD3P/IDD6, I/O and termination power (VDDQ) except the
optional ``io_energy_pJ_per_bit``.
"""

from __future__ import annotations

from dataclasses import dataclass

from archsim.dram.spec import DRAMSpec

#: (domain, voltage key, I0, I2N, I3N, I4R, I4W, I5) keys of the Power spec, VDD first.
DOMAINS = (
    ("VDD", "VDD", "IDD0", "IDD2N", "IDD3N", "IDD4R", "IDD4W", "IDD5AB"),
    ("VPP", "VPP", "IPP0", "IPP2N", "IPP3N", "IPP4R", "IPP4W", "IPP5AB"),
)


@dataclass(frozen=True)
class DomainEnergy:
    """One supply domain's share, in pJ per rank, of each command and of one background cycle."""

    domain: str
    act: float
    read: float
    write: float
    refresh: float
    act_standby: float   # per cycle with any bank of the rank open (rank-level part)
    bank_standby: float  # per open bank and cycle (0 with rho = 1)
    pre_standby: float   # per cycle with all banks closed
    keys: tuple[str, ...]             # the Power keys of (I0, I2N, I3N, I4R, I4W, I5)
    currents: tuple[float, ...]       # their values, mA
    i_one_bank: float                 # I1: active-standby current with one bank open, mA


def domain_energies(spec: DRAMSpec) -> list[DomainEnergy]:
    """The per-domain energies of ``spec``'s IDD/IPP currents (VDD, then VPP when it is modelled), ignoring the
    ``act_energy_pJ``/``column_energy_pJ_per_bit`` overrides."""
    p = spec.power
    t = spec.timing.resolved(spec.org.burst_length)
    dev = spec.org.devices_per_rank
    banks = spec.org.banks
    scale = 1.0 if p.energy_time_basis == "cycle" else spec.timing.tCK_ps / 1000.0
    out = []
    for name, vkey, *keys in DOMAINS:
        if name == "VPP" and p.VPP <= 0:
            continue
        i0, i2n, i3n, i4r, i4w, i5 = (getattr(p, k) for k in keys)
        v = getattr(p, vkey) * dev * scale
        if p.rho == 1.0:  # exactly the classic model (no rounding of I3N through rho)
            i_rho = i1 = i3n
            bank = 0.0
        else:
            i_rho = i2n + p.rho * (i3n - i2n)
            i1 = i_rho + (i3n - i_rho) / banks
            bank = v * (i3n - i_rho) / banks
        out.append(DomainEnergy(
            domain=name,
            act=v * (i0 * t["nRC"] - (i1 * t["nRAS"] + i2n * t["nRP"])),
            read=v * (i4r - i3n) * t["nBL"],
            write=v * (i4w - i3n) * t["nBL"],
            refresh=v * (i5 - i3n) * t["nRFC"],
            act_standby=v * i_rho,
            bank_standby=bank,
            pre_standby=v * i2n,
            keys=tuple(keys),
            currents=(i0, i2n, i3n, i4r, i4w, i5),
            i_one_bank=i1,
        ))
    return out


@dataclass(frozen=True)
class CommandEnergy:
    """Energy in pJ of each command, and of one background cycle, for one rank: the sum over supply domains."""

    act: float
    read: float
    write: float
    refresh: float
    act_standby: float
    pre_standby: float
    io: float = 0.0  # per column command: one burst of data over the channel
    bank_standby: float = 0.0  # per open bank and cycle, on top of act_standby (rho < 1)

    @classmethod
    def from_spec(cls, spec: DRAMSpec) -> CommandEnergy:
        p = spec.power
        doms = domain_energies(spec)

        def total(attr: str) -> float:
            x = getattr(doms[0], attr)
            for d in doms[1:]:
                x += getattr(d, attr)
            return x

        bits = spec.org.access_bytes * 8
        col = p.column_energy_pJ_per_bit
        return cls(
            act=p.act_energy_pJ if p.act_energy_pJ is not None else total("act"),
            read=col * bits if col is not None else total("read"),
            write=col * bits if col is not None else total("write"),
            refresh=total("refresh"),
            act_standby=total("act_standby"),
            pre_standby=total("pre_standby"),
            io=p.io_energy_pJ_per_bit * spec.org.access_bytes * 8,
            bank_standby=total("bank_standby"),
        )


def _nj(pj: float) -> str:
    nj = pj * 1e-3
    return f"{nj:.2f}" if abs(nj) >= 0.1 else f"{nj:.2g}"


def energy_errors(spec: DRAMSpec) -> list[tuple[str, str]]:
    """(power key, message) for each command energy that ``spec``'s currents make negative in some domain, or
    zero in all where it must be positive (ACT, RD, WR, REF); empty when every booked energy is physical.
    Energies replaced by ``act_energy_pJ``/``column_energy_pJ_per_bit`` are not checked (they are not booked)."""
    p = spec.power
    t = spec.timing.resolved(spec.org.burst_length)
    doms = domain_energies(spec)
    checks = []  # (command, CommandEnergy attribute, index of its current in DomainEnergy.keys)
    if p.act_energy_pJ is None:
        checks.append(("ACT", "act", 0))
    if p.column_energy_pJ_per_bit is None:
        checks += [("RD", "read", 3), ("WR", "write", 4)]
    checks.append(("REF", "refresh", 5))

    def reference(d: DomainEnergy, cmd: str) -> str:
        """The standby current a command's current is compared with, in words."""
        if cmd == "ACT":
            w = (d.i_one_bank * t["nRAS"] + d.currents[1] * t["nRP"]) / t["nRC"]
            return f"the tRAS/tRP-weighted standby current {w:.1f} mA" + ("" if p.rho == 1.0 else f" (rho {p.rho:g})")
        return f"the active standby current {d.keys[2]} {d.currents[2]:g} mA"

    errs: list[tuple[str, str]] = []
    for cmd, attr, idx in checks:
        neg = [d for d in doms if getattr(d, attr) < 0]
        for d in neg:
            where = "" if d.domain == "VDD" else " in the VPP domain"
            key = d.keys[idx]
            errs.append((key, f"{cmd} energy would be negative{where} ({_nj(getattr(d, attr))} nJ per {cmd}): "
                              f"{key} {d.currents[idx]:g} mA is below {reference(d, cmd)}"))
        if not neg and sum(getattr(d, attr) for d in doms) <= 0:
            d = doms[0]
            key = d.keys[idx]
            errs.append((key, f"{cmd} energy would be zero: {key} {d.currents[idx]:g} mA equals {reference(d, cmd)}"))
    for d in doms:
        if d.bank_standby < 0:
            where = "" if d.domain == "VDD" else " in the VPP domain"
            errs.append((d.keys[2], f"open banks would book negative background energy{where}: {d.keys[2]} "
                                    f"{d.currents[2]:g} mA is below {d.keys[1]} {d.currents[1]:g} mA (rho {p.rho:g})"))
    return errs
