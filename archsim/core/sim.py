"""The simulator: one SimPy environment (time in integer picoseconds), one seeded RNG, stats and energy."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import simpy

from archsim.config.errors import InputError
from archsim.core.energy import EnergyLedger
from archsim.core.stats import Stats


def check_seed(seed: object) -> int:
    """A run or workload seed: an integer >= 0 (numpy's SeedSequence takes no other); bad input otherwise
    (``archsim run --seed -1`` was a ValueError from numpy, an internal error)."""
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise InputError(f"seed: must be an integer >= 0, got {seed!r}")
    return int(seed)


class Simulator:
    """Holds what every component of one run shares.

    All randomness flows from ``rng`` (a ``numpy.random.Generator`` seeded by ``seed``); components take
    independent streams with :meth:`rng_for` so adding a component does not shift another's numbers.
    """

    def __init__(self, seed: int = 0) -> None:
        self.seed = check_seed(seed)
        self.env = simpy.Environment()
        self.stats = Stats("system")
        self.energy = EnergyLedger()
        self._seed_seq = np.random.SeedSequence(seed)
        #: compiled DRAM systems by clock period: their channels share one cycle loop (archsim/dram/memory.py)
        self.dram_loop_groups: dict[int, list] = {}

    def rng_for(self, name: str) -> np.random.Generator:
        """A generator for component ``name``, derived from the run seed and the name only."""
        key = [ord(c) for c in name]
        return np.random.default_rng(np.random.SeedSequence([self.seed, *key]))

    @property
    def now_ps(self) -> int:
        return int(self.env.now)


@contextmanager
def fewer_gc_passes(gen0: int = 20000) -> Iterator[None]:
    """Run a simulation with the cyclic garbage collector's first generation threshold raised.

    A run allocates millions of short-lived request objects while holding hundreds of thousands of live
    ones (queued requests, pending events); at CPython's default threshold (700) the collector scans the
    young generations thousands of times per second for cycles that are rare here. Measured on recross with
    criteo_zipf, 2 batches: 13.2 s at the default, 10.0 s at 20,000 (peak memory 186 -> 242 MB).
    The previous thresholds are restored on exit; results do not depend on it.
    """
    old = gc.get_threshold()
    gc.set_threshold(gen0, 20, 50)
    try:
        yield
    finally:
        gc.set_threshold(*old)
