"""The CPU host: cores that gather embedding rows line by line and pool them, an optional last-level cache.

Each core streams the cache lines of the bags it is given and keeps at most ``fill_buffers`` line misses in
flight (the L1 line-fill buffers that bound a core's memory-level parallelism); a line that returns frees its
buffer and the core issues the next line at once, of the same bag or of its next one (out-of-order cores overlap
bags). Pooling is a serial resource per core: each arriving line costs ``ceil(elements / lanes)`` core cycles,
``lanes = vector_units * vector_bits / 32`` fp32 adds per cycle, after the line arrives and after the
previous pooling work; a bag is done when its last line is pooled.

Abstracted away: private L1/L2 caches (embedding rows of large tables miss them), TLBs and page walks, the
reorder-buffer limit (the fill buffers bind first for gathers), hardware prefetchers, the store of the pooled
vector, the mesh's contention (a fixed latency each way between a core and the memory controllers).
"""

from __future__ import annotations

from typing import Literal

import simpy
from pydantic import BaseModel, ConfigDict, Field

from archsim.cache.spec import CacheSpec
from archsim.core.component import Component
from archsim.core.port import Light, MemoryPort, call_at, finish_at, schedule_light
from archsim.core.request import MemRequest
from archsim.core.sim import Simulator


class HostSpec(BaseModel):
    """The ``host:`` section of a hwconfig."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

    # upper bounds: far beyond any socket, and what the engine's 64-bit picoseconds and a bounded build take
    # (fuzzed 2^64 cores hung; a 2^64 ns latency or a 5e-324 MHz clock were OverflowErrors)
    cores: int = Field(16, gt=0, le=1 << 16, description="cores running the embedding operator")
    clock_mhz: float = Field(2400.0, ge=1, le=1e6, description="core clock")
    fill_buffers: int = Field(12, gt=0, le=1 << 16,
                              description="line misses in flight per core (L1 line-fill buffers)")
    vector_bits: int = Field(512, gt=0, le=1 << 16, description="SIMD register width in bits")
    vector_units: int = Field(2, gt=0, le=1 << 10, description="SIMD add pipes per core")
    to_memory_ns: float = Field(25.0, ge=0, le=1e9, description="core (or LLC miss) to memory controller, one way")
    from_memory_ns: float = Field(25.0, ge=0, le=1e9, description="memory controller to core, one way")
    bag_schedule: Literal["dynamic", "static"] = Field(
        "dynamic", description="dynamic: a core takes the next bag when it has issued its current one; "
                               "static: bag i goes to core i mod cores")
    llc: CacheSpec | None = Field(None, description="shared last-level cache (absent: none)")
    pool_op_energy_pJ: float = Field(
        0.9, ge=0, description="energy of one fp32 add in pooling, pJ (Horowitz, ISSCC 2014: 0.9 pJ at 45 nm)")

    @property
    def lanes(self) -> int:
        return max(1, self.vector_units * self.vector_bits // 32)


class DelayPath(Component):
    """A fixed latency each way in front of a memory port (the on-chip path when there is no LLC)."""

    def __init__(self, sim: Simulator, name: str, port: MemoryPort, to_ps: int, from_ps: int) -> None:
        super().__init__(sim, name)
        self.port = port
        self.to_ps = to_ps
        self.from_ps = from_ps

    def submit(self, req: MemRequest) -> simpy.Event:
        req.t_submit = self.env.now
        done = req.done
        if done is None:
            done = req.done = self.env.event()
        inner = MemRequest(req.addr, req.is_write, req.size, tag=req)
        call_at(self.env, self.env.now + self.to_ps, self._send, inner)
        return done

    def read_light(self, addr: int, size: int, ev: Light) -> None:
        """:meth:`submit` of a read carried by a :class:`~archsim.core.port.Light` (the host cores' line loads,
        issue #15): the same events at the same times, in the same order; ``ev`` fires when the line is back."""
        env = self.env
        now = env._now
        ev.t_submit = now
        inner = MemRequest(addr, False, size, tag=ev)
        call_at(env, now + self.to_ps, self._send, inner)

    def _send(self, ev: simpy.Event) -> None:
        self.port.send(ev.value, self._back)

    def _back(self, ev: simpy.Event) -> None:
        req = ev.value.tag
        if req.__class__ is Light:  # read_light's: scheduled as finish_at schedules req.done
            schedule_light(self.env, req, self.env.now + self.from_ps)
            return
        finish_at(self.env, req, self.env.now + self.from_ps)
