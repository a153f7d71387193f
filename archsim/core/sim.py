"""The simulator: one SimPy environment (time in integer picoseconds), one seeded RNG, stats and energy."""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator
from contextlib import contextmanager
from heapq import heappop

import numpy as np
import simpy
from simpy.core import EmptySchedule, StopSimulation
from simpy.events import Event, EventPriority

from archsim.config.errors import InputError
from archsim.core.energy import EnergyLedger
from archsim.core.stats import Stats


def check_seed(seed: object) -> int:
    """A run or workload seed: an integer >= 0 (numpy's SeedSequence takes no other); bad input otherwise
    (``archsim run --seed -1`` was a ValueError from numpy, an internal error)."""
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise InputError(f"seed: must be an integer >= 0, got {seed!r}")
    return int(seed)


#: ``ARCHSIM_HOST_ENGINE=python`` runs the reference paths of issue #15's speed-ups: SimPy's own event loop
#: and the host's per-line events (docs/performance.md, "Profile per architecture")
HOST_ENGINE_ENV = "ARCHSIM_HOST_ENGINE"


def host_engine_name() -> str:
    """``fast`` (default) or ``python`` (the reference paths), from :data:`HOST_ENGINE_ENV`."""
    name = os.environ.get(HOST_ENGINE_ENV, "fast").strip().lower() or "fast"
    if name not in ("fast", "python"):
        raise ValueError(f"{HOST_ENGINE_ENV} must be fast or python, got {name!r}")
    return name


class Environment(simpy.Environment):
    """``simpy.Environment`` with the same events in the same order, run by a tighter loop.

    :meth:`run` is SimPy's ``run`` with ``step`` inlined (one Python call less per event) and one addition:
    a processed event whose value is a request whose ``done`` is that event (``MemRequest``, ``GatherReduce``:
    ``req.done`` fires with ``req`` as its value) drops that back reference, so the pair is freed by reference
    counting instead of waiting for the cyclic garbage collector (which took a fifth of a host run's time).
    Nothing in archsim reads ``req.done`` after it fired (a request is never submitted twice). Event order,
    ``StopSimulation`` and failed events behave as in SimPy.
    """

    def run(self, until=None):
        if until is not None:
            if not isinstance(until, Event):
                at = until if isinstance(until, int) else float(until)
                if at <= self.now:
                    raise ValueError(f"until ({at}) must be greater than the current simulation time")
                until = Event(self)
                until._ok = True
                until._value = None
                self.schedule(until, simpy.events.URGENT, at - self.now)
            elif until.callbacks is None:
                return until.value
            until.callbacks.append(StopSimulation.callback)
        try:
            self._loop()
        except StopSimulation as exc:
            return exc.args[0]
        except EmptySchedule:
            if until is not None:
                assert not until.triggered
                raise RuntimeError(f'No scheduled events left but "until" event was not triggered: {until}') \
                    from None
        return None

    def _loop(self) -> None:
        queue = self._queue
        pop = heappop
        while True:
            try:
                self._now, _, _, event = pop(queue)
            except IndexError:
                raise EmptySchedule from None
            callbacks, event.callbacks = event.callbacks, None
            try:
                for callback in callbacks:
                    callback(event)
            except StopSimulation:
                event.callbacks = callbacks[callbacks.index(callback) + 1:]
                self.schedule(event, EventPriority(-1))
                raise
            if not event._ok:
                if not hasattr(event, "_defused"):
                    exc = type(event._value)(*event._value.args)
                    exc.__cause__ = event._value
                    raise exc
                continue
            value = event._value
            if value is not None and getattr(value, "done", None) is event:
                value.done = None


class Simulator:
    """Holds what every component of one run shares.

    All randomness flows from ``rng`` (a ``numpy.random.Generator`` seeded by ``seed``); components take
    independent streams with :meth:`rng_for` so adding a component does not shift another's numbers.
    """

    def __init__(self, seed: int = 0) -> None:
        self.seed = check_seed(seed)
        self.env = simpy.Environment() if host_engine_name() == "python" else Environment()
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
