"""A port into a component with bounded queues: requests the component cannot take yet wait here, in order.

Upstream code (a cache, a core) sends requests with a completion callback and does not deal with backpressure
itself. Requests wait per queue of the downstream component (``queue_key``: a DRAM system's channel), so a full
channel does not hold back requests to the others; within a queue the order of arrival is kept.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from heapq import heappush
from typing import Any

import simpy

from archsim.core.component import Component


class Light:
    """A completion scheduled without a ``simpy.Event`` (issue #15): what SimPy's event loop needs of an event
    (``callbacks``, ``_ok``, ``_value``) and what the callbacks read (``value``, ``tag``, ``t_submit``), in slots.
    :func:`schedule_light` puts it in the queue exactly where ``Event.succeed`` or ``env.schedule`` would (same
    time, priority and insertion id), so the order of events is unchanged. It is a read (``is_write``) to code
    that asks."""

    __slots__ = ("callbacks", "value", "tag", "t_submit")
    _ok = True
    _value = None
    is_write = False


def schedule_light(env: simpy.Environment, ev: Light, when_ps: int) -> None:
    """Schedule ``ev`` at ``when_ps`` (>= now) with NORMAL priority: ``env.schedule(ev, NORMAL, when_ps - now)``
    inlined (the same arithmetic, so a float time lands on the same value)."""
    now = env._now
    heappush(env._queue, (now + (when_ps - now), 1, next(env._eid), ev))


def call_at(env: simpy.Environment, when_ps: int, fn: Callable[[Any], Any], value: Any = None) -> None:
    """Call ``fn(ev)`` at absolute time ``when_ps`` (>= now) with ``ev.value == value``; no process, no Timeout.
    ``ev`` is a :class:`Light` (a ``simpy.Event`` before issue #15: the same place in the queue)."""
    ev = Light.__new__(Light)
    ev.callbacks = [fn]
    ev.value = value
    now = env._now
    heappush(env._queue, (now + (when_ps - now), 1, next(env._eid), ev))


class Slots:
    """``limit`` places (link credits, buffer entries) of which ``used`` are taken, and the one event upstream
    waits on for a place to free up (:meth:`Component.space_event`)."""

    __slots__ = ("env", "limit", "used", "peak", "_space")

    def __init__(self, env: simpy.Environment, limit: int) -> None:
        self.env = env
        self.limit = limit
        self.used = 0
        self.peak = 0
        self._space: simpy.Event | None = None

    def free(self) -> bool:
        return self.used < self.limit

    def space_event(self) -> simpy.Event:
        """Fires when a place frees up (at once if one is free now)."""
        if self.used < self.limit:
            ev = self.env.event()
            ev.succeed()
            return ev
        if self._space is None:
            self._space = self.env.event()
        return self._space

    def take(self) -> None:
        self.used += 1
        if self.used > self.peak:
            self.peak = self.used

    def give(self) -> None:
        self.used -= 1
        sp = self._space
        if sp is not None:
            self._space = None
            sp.succeed()


def finish_at(env: simpy.Environment, req: Any, when_ps: int,
              first: Callable[[simpy.Event], Any] | None = None) -> None:
    """Complete ``req`` at ``when_ps`` (>= now): its ``done`` event fires then with ``req`` as its value, and
    ``req.t_done`` is ``when_ps``. ``first(ev)`` runs just before the event's other callbacks (bookkeeping at
    completion time, such as returning a credit). One scheduled event, instead of a timer whose callback
    triggers ``done``."""
    ev = req.done
    req.t_done = when_ps
    if first is not None:
        ev.callbacks.insert(0, first)
    ev._ok = True
    ev._value = req
    env.schedule(ev, simpy.events.NORMAL, when_ps - env.now)


class MemoryPort:
    """Sends requests into ``mem``, holding back those it cannot accept until it signals space."""

    def __init__(self, mem: Component) -> None:
        self.mem = mem
        self.env = mem.env
        self.waiting: dict[Any, deque] = {}
        self.sent = 0
        self.stalled = 0

    def send(self, req: Any, on_done: Callable[[simpy.Event], Any] | None) -> None:
        """Submit ``req``; ``on_done(ev)`` is called when it completes (``ev.value`` is the request)."""
        mem = self.mem
        ok = mem.can_accept(req)
        key = mem.queue_key(req)
        q = self.waiting.get(key)
        if ok and not q:  # earlier requests to this queue waiting keep their place in line
            ev = mem.submit(req)  # _submit, inlined
            self.sent += 1
            if on_done is not None:
                ev.callbacks.append(on_done)
            return
        if q is None:
            q = self.waiting[key] = deque()
        q.append((req, on_done))
        self.stalled += 1
        if len(q) == 1:
            mem.space_event(req).callbacks.append(lambda _ev, k=key: self._drain(k))

    def _submit(self, req: Any, on_done: Callable[[simpy.Event], Any] | None) -> None:
        ev = self.mem.submit(req)
        self.sent += 1
        if on_done is not None:
            ev.callbacks.append(on_done)

    def _drain(self, key: Any) -> None:
        q = self.waiting[key]
        mem = self.mem
        while q:
            req, on_done = q[0]
            if not mem.can_accept(req):
                mem.space_event(req).callbacks.append(lambda _ev, k=key: self._drain(k))
                return
            q.popleft()
            self._submit(req, on_done)
