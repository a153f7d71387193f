"""Clock domains: an integer period in picoseconds and the edge arithmetic every component uses."""

from __future__ import annotations


class Clock:
    """A clock of integer period ``period_ps``; edges at 0, P, 2P, ... (simulated time is integer ps)."""

    __slots__ = ("period_ps",)

    def __init__(self, period_ps: int) -> None:
        if not isinstance(period_ps, int) or period_ps <= 0:
            raise ValueError(f"clock period must be a positive integer of picoseconds, got {period_ps!r}")
        self.period_ps = period_ps

    @classmethod
    def from_mhz(cls, freq_mhz: float) -> Clock:
        """The nearest integer-picosecond period to ``freq_mhz``."""
        return cls(round(1e6 / freq_mhz))

    @property
    def freq_mhz(self) -> float:
        return 1e6 / self.period_ps

    def cycle_at_or_after(self, t_ps: int) -> int:
        """Index of the first edge at or after ``t_ps``."""
        return -(-t_ps // self.period_ps)

    def next_edge(self, t_ps: int) -> int:
        """Time of the first edge at or after ``t_ps``."""
        return self.cycle_at_or_after(t_ps) * self.period_ps

    def to_ps(self, cycles: int) -> int:
        return cycles * self.period_ps
