"""The one face every component shows: ``submit(req) -> simpy.Event``.

A component accepts requests, charges time to them, counts them in its ``stats`` and books energy in the
run's ledger. Queues are bounded: ``can_accept(req)`` says whether ``submit`` would take the request now, and
``space_event(req)`` is an event that fires when that may have changed (upstream waits on it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import simpy

if TYPE_CHECKING:
    from archsim.core.sim import Simulator


class Component:
    """Base class: a named node of the system graph with stats and access to the run's ledger."""

    def __init__(self, sim: Simulator, name: str) -> None:
        self.sim = sim
        self.env: simpy.Environment = sim.env
        self.name = name
        self.stats = sim.stats.child(name)

    def can_accept(self, req: Any) -> bool:
        return True

    def space_event(self, req: Any) -> simpy.Event:
        """An event that fires when ``can_accept(req)`` may have become true."""
        ev = self.env.event()
        ev.succeed()
        return ev

    def queue_key(self, req: Any) -> Any:
        """Which of the component's queues ``req`` waits for (requests to different queues do not block
        each other upstream); one queue unless a component says otherwise."""
        return 0

    def submit(self, req: Any) -> simpy.Event:  # pragma: no cover - interface
        raise NotImplementedError

    def finalize(self, end_ps: int | None = None) -> None:
        """Called once at the end of a run (``end_ps``: its simulated end): flush counters into stats, book
        energy that accrues over time."""
