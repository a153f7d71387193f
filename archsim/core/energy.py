"""Energy ledger: energy booked by (component, kind).

Units: every amount is in **picojoules** (floats) internally and in :meth:`EnergyLedger.to_dict`; reports
convert to nanojoules (:func:`pj_to_nj`, :meth:`EnergyLedger.summary_nj`, the ``energy_<kind>_nJ`` columns of
summary.csv).

``component`` is the dotted name of the component in the graph (``system.dram.ch0.rank1``); ``kind`` a short
string naming what the energy paid for: ``act``, ``pre``, ``read``, ``write``, ``refresh``, ``background``,
``io``, ``compute``, ``sram``, ... (the set is open). Booking is one dict update keyed by the
``(component, kind)`` tuple, cheap enough for every DRAM command.
"""

from __future__ import annotations

from typing import Any

__all__ = ["EnergyLedger", "NegativeEnergyError", "pj_to_nj", "ENERGY_KINDS"]

#: The kinds in common use (documentation only; any short string is accepted).
ENERGY_KINDS: tuple[str, ...] = (
    "act",
    "pre",
    "read",
    "write",
    "refresh",
    "background",
    "io",
    "compute",
    "sram",
)


class NegativeEnergyError(RuntimeError):
    """A component booked a negative (or NaN) energy: an internal error, never a user's value (configurations
    whose figures would give one are refused when they are loaded, e.g. :func:`archsim.dram.power.energy_errors`)."""


def _refuse(component: str, kind: str, pj: float) -> None:
    raise NegativeEnergyError(f"internal error: {component} booked {pj!r} pJ of {kind!r} energy "
                              "(energy is never negative; this is a bug in the model that booked it)")


def pj_to_nj(pj: float) -> float:
    """Convert picojoules to nanojoules."""
    return pj * 1e-3


class EnergyLedger:
    """Energy in pJ booked by ``(component dotted name, kind)``.

    >>> led = EnergyLedger()
    >>> led.book("dram.ch0", "act", 2.5)
    >>> led.book_n("dram.ch0", "read", 1.5, 4)
    >>> led.total_pj()
    8.5
    """

    __slots__ = ("_pj",)

    def __init__(self) -> None:
        self._pj: dict[tuple[str, str], float] = {}

    # ------------------------------------------------------------------ booking (hot path)
    def book(self, component: str, kind: str, pj: float) -> None:
        """Book ``pj`` picojoules to ``component`` under ``kind``; a negative or NaN amount raises
        :class:`NegativeEnergyError` (a bug in the caller)."""
        if not pj >= 0.0:
            _refuse(component, kind, pj)
        key = (component, kind)
        d = self._pj
        d[key] = d.get(key, 0.0) + pj

    def book_n(self, component: str, kind: str, pj_each: float, n: int) -> None:
        """Book ``n`` events of ``pj_each`` picojoules each (the same guard as :meth:`book`)."""
        if not pj_each * n >= 0.0:
            _refuse(component, kind, pj_each * n)
        key = (component, kind)
        d = self._pj
        d[key] = d.get(key, 0.0) + pj_each * n

    # ------------------------------------------------------------------ queries
    def get(self, component: str, kind: str) -> float:
        """Energy booked to exactly ``(component, kind)``, in pJ (0.0 if none)."""
        return self._pj.get((component, kind), 0.0)

    def items(self) -> list[tuple[str, str, float]]:
        """All entries as ``(component, kind, pJ)``, sorted by component then kind."""
        return [(c, k, v) for (c, k), v in sorted(self._pj.items())]

    def total_pj(self) -> float:
        """Total energy in pJ."""
        return float(sum(v for _, _, v in self.items()))

    def by_kind(self) -> dict[str, float]:
        """Kind -> total pJ over all components (keys sorted)."""
        out: dict[str, float] = {}
        for _, k, v in self.items():
            out[k] = out.get(k, 0.0) + v
        return dict(sorted(out.items()))

    def by_component(self) -> dict[str, float]:
        """Component -> total pJ over all kinds (keys sorted)."""
        out: dict[str, float] = {}
        for c, _, v in self.items():
            out[c] = out.get(c, 0.0) + v
        return out

    def component_pj(self, prefix: str, kind: str | None = None) -> float:
        """Energy of ``prefix`` and every component below it in the dotted tree, in pJ.

        ``component_pj("system.dram")`` counts ``system.dram`` and ``system.dram.ch0`` but not
        ``system.dramcache``. With ``kind`` only that kind is counted.
        """
        below = prefix + "."
        total = 0.0
        for c, k, v in self.items():
            if (c == prefix or c.startswith(below)) and (kind is None or k == kind):
                total += v
        return total

    def __len__(self) -> int:
        return len(self._pj)

    def __bool__(self) -> bool:
        return bool(self._pj)

    # ------------------------------------------------------------------ reporting
    def to_dict(self) -> dict[str, Any]:
        """JSON-safe nested form, all amounts in pJ::

            {"unit": "pJ", "total": T,
             "by_kind": {kind: pJ}, "by_component": {component: pJ},
             "components": {component: {kind: pJ}}}
        """
        components: dict[str, dict[str, float]] = {}
        for c, k, v in self.items():
            components.setdefault(c, {})[k] = v
        return {
            "unit": "pJ",
            "total": self.total_pj(),
            "by_kind": self.by_kind(),
            "by_component": self.by_component(),
            "components": components,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EnergyLedger:
        """Rebuild a ledger from :meth:`to_dict` output (reads ``components``; unit must be pJ)."""
        unit = d.get("unit", "pJ")
        if unit != "pJ":
            raise ValueError(f"energy ledger unit must be 'pJ', got {unit!r}")
        led = cls()
        for c, kinds in d.get("components", {}).items():
            for k, v in kinds.items():
                led._pj[(c, k)] = float(v)
        return led

    def summary_nj(self) -> dict[str, float]:
        """summary.csv columns: ``energy_total_nJ`` then ``energy_<kind>_nJ`` for each kind, in nJ."""
        out = {"energy_total_nJ": pj_to_nj(self.total_pj())}
        for k, v in self.by_kind().items():
            out[f"energy_{k}_nJ"] = pj_to_nj(v)
        return out

    # ------------------------------------------------------------------ merge
    def merge(self, other: EnergyLedger) -> EnergyLedger:
        """Add ``other``'s bookings into this ledger in place; returns ``self``."""
        d = self._pj
        for key, v in other._pj.items():
            d[key] = d.get(key, 0.0) + v
        return self

    def copy(self) -> EnergyLedger:
        """An independent copy."""
        led = EnergyLedger()
        led._pj = dict(self._pj)
        return led

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, EnergyLedger):
            return NotImplemented
        return self._pj == other._pj

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"EnergyLedger(entries={len(self._pj)}, total={self.total_pj():.6g} pJ)"
