"""Per-command DRAM energy from IDD currents, the Micron / DRAMPower method (as DRAMsim3 applies it).

Per rank (``devices`` chips), with VDD in volts, currents in mA and times in cycles of tCK:

- ACT+PRE pair: VDD * (IDD0 * nRC - (IDD3N * nRAS + IDD2N * nRP)) * devices
- RD burst:     VDD * (IDD4R - IDD3N) * nBL * devices      WR burst: the same with IDD4W
- REF (all-bank): VDD * (IDD5AB - IDD3N) * nRFC * devices
- background per cycle: VDD * IDD3N * devices while any bank of the rank is open (active standby),
  VDD * IDD2N * devices while all are closed (precharge standby).

mA x V x cycles becomes pJ by multiplying by tCK in ns (``energy_time_basis: ns``); DRAMsim3 omits that factor
(``cycle``), which the DRAMsim3 validation configurations select. Abstracted away: power-down and self-refresh
currents (the controllers never enter them), IDD2P/IDD3P/IDD6, I/O and termination power, VPP.
"""

from __future__ import annotations

from dataclasses import dataclass

from archsim.dram.spec import DRAMSpec


@dataclass(frozen=True)
class CommandEnergy:
    """Energy in pJ of each command, and of one background cycle, for one rank."""

    act: float
    read: float
    write: float
    refresh: float
    act_standby: float
    pre_standby: float
    io: float = 0.0  # per column command: one burst of data over the channel

    @classmethod
    def from_spec(cls, spec: DRAMSpec) -> CommandEnergy:
        p = spec.power
        t = spec.timing.resolved(spec.org.burst_length)
        dev = spec.org.devices_per_rank
        scale = 1.0 if p.energy_time_basis == "cycle" else spec.timing.tCK_ps / 1000.0
        v = p.VDD * dev * scale
        bits = spec.org.access_bytes * 8
        col = p.column_energy_pJ_per_bit
        return cls(
            act=p.act_energy_pJ if p.act_energy_pJ is not None
            else v * (p.IDD0 * t["nRC"] - (p.IDD3N * t["nRAS"] + p.IDD2N * t["nRP"])),
            read=col * bits if col is not None else v * (p.IDD4R - p.IDD3N) * t["nBL"],
            write=col * bits if col is not None else v * (p.IDD4W - p.IDD3N) * t["nBL"],
            refresh=v * (p.IDD5AB - p.IDD3N) * t["nRFC"],
            act_standby=v * p.IDD3N,
            pre_standby=v * p.IDD2N,
            io=p.io_energy_pJ_per_bit * spec.org.access_bytes * 8,
        )
