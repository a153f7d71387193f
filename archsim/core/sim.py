"""The simulator: one SimPy environment (time in integer picoseconds), one seeded RNG, stats and energy."""

from __future__ import annotations

import numpy as np
import simpy

from archsim.core.energy import EnergyLedger
from archsim.core.stats import Stats


class Simulator:
    """Holds what every component of one run shares.

    All randomness flows from ``rng`` (a ``numpy.random.Generator`` seeded by ``seed``); components take
    independent streams with :meth:`rng_for` so adding a component does not shift another's numbers.
    """

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self.env = simpy.Environment()
        self.stats = Stats("system")
        self.energy = EnergyLedger()
        self._seed_seq = np.random.SeedSequence(seed)

    def rng_for(self, name: str) -> np.random.Generator:
        """A generator for component ``name``, derived from the run seed and the name only."""
        key = [ord(c) for c in name]
        return np.random.default_rng(np.random.SeedSequence([self.seed, *key]))

    @property
    def now_ps(self) -> int:
        return int(self.env.now)
