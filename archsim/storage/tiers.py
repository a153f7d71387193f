"""A tier manager (component kind ``tier``): embedding rows spread over an ordered list of memories (HBM, DRAM,
CXL memory, an SSD), the host seeing one memory.

The host (or a gather unit) reads a table's rows at the addresses of its layout (``system/layout.py``); the tier
maps each request's address to ``(table, row)``, the row to the tier that holds it and the address inside that
tier's memory, and reads it there. docs/storage.md describes the model; in short:

* **Compact layout per tier.** Tier ``i`` holds rows in slots of ``slot_bytes`` (the widest table's row at the
  tier's precision, times ``unit_rows``) from its ``base``: slot ``s`` at ``base + s x slot_bytes``. The last
  tier keeps every unit at its canonical slot (its global index), so it must hold all of them.
* **Rows, not lines.** A request for any line of a row reads the row's bytes at the tier's precision (whole
  bursts of a DRAM, or one request of any size to a memory without bursts, such as an SSD); the other lines of
  the row that arrive while that read is in flight wait for it (merged), and all complete together. A lookup is
  counted at the request for a row's first line.
* **Placements.** ``static``: the profile's hottest units go to tier 0 until it is full (or holds ``rows``),
  the next to tier 1, ..., every other unit stays in the last tier (FAE, Hotline). ``cache``: the tiers above the
  last are caches (tags from :func:`archsim.cache.policies.make_tags`, one per tier, over unit numbers) over the
  last, the backing tier: a miss reads the unit from the backing tier, completes the waiting requests, then
  fills it into tier 0 (a write of its bytes at tier 0's precision), and the victim of that fill moves into
  tier 1 (a write there) and so on, the last cache's victim dropped (exclusive tiers: a unit is held by one cache
  tier at a time; a hit does not promote). ``shard``: RecShard-style: the profiled units, hottest first, each go
  to the tier with room that minimises ``cost x (expected accesses so far + this unit's)``; the others fill the
  remaining room, cheapest tier first, in unit order (the tiers together must hold every unit).
* **EVStore's layers.** EVCache: a cache tier's ``policy`` (``evlfu``). EVMix: a tier's ``precision``
  (:mod:`archsim.storage.evstore`): more rows fit and fewer bytes are read. EVProx: on a miss in every cache tier,
  a row with a surrogate (built offline from the profile) whose surrogate is cached is served from the
  surrogate's tier (an approximate hit, not filled), within ``max_fraction`` of the lookups.

No per-request process: requests, reads and fills are callbacks (``call_at``, port callbacks).

Abstracted away: writes to tables (inference reads them), the tier manager's index memory and its energy,
dequantisation time, a row's promotion between cache tiers on a hit, EVStore's split of misses between its C1
and C2 caches and its batched C3 key loads (here an exclusive victim hierarchy and an in-memory surrogate map),
migration of rows by a static or shard placement during the run.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right

import numpy as np
import simpy

from archsim.config.errors import ConfigError
from archsim.core.component import Component
from archsim.core.port import MemoryPort, call_at
from archsim.core.request import MemRequest
from archsim.core.stats import Histogram
from archsim.storage.evstore import quant_rel_error, row_bytes_at, surrogates
from archsim.storage.tier_spec import TierNode

__all__ = ["TierManager", "tier_config_error", "memory_extent"]


def tier_config_error(where: tuple, rel: tuple, message: str) -> ConfigError:
    """A :class:`ConfigError` for key ``rel`` of the node at ``where`` (a hwconfig key path); ``key_path`` holds
    the path as a tuple, so the run can name the file and line (``archsim.api``)."""
    from archsim.config import format_key_path

    err = ConfigError(message, path=format_key_path((*where, *rel)))
    err.key_path = (*where, *rel)
    return err


def memory_extent(comp) -> tuple[int, int] | None:
    """The address range ``[lo, hi)`` a memory component serves: its first window, a DRAM's capacity from 0, or
    None when it does not say (then the tier's region is not checked against it)."""
    w = getattr(comp, "windows", None)
    if w is not None:
        ws = w()
        if ws:
            return ws[0]
    spec = getattr(comp, "spec", None)
    org = getattr(spec, "org", None)
    if org is not None and hasattr(org, "capacity_bytes"):
        return 0, org.capacity_bytes
    ext = getattr(comp, "extent", None)
    return ext() if ext is not None else None


class _Op:
    """One read of a unit from one tier, with the requests waiting for it."""

    __slots__ = ("unit", "table", "row", "tier", "slot", "fill", "approx", "dist", "waiters", "starts", "left")

    def __init__(self, unit: int, table: int, row: int, tier: int, slot: int, fill: bool, approx: bool,
                 dist: float, req: MemRequest, first: bool) -> None:
        self.unit = unit
        self.table = table
        self.row = row
        self.tier = tier
        self.slot = slot
        self.fill = fill
        self.approx = approx
        self.dist = dist
        self.waiters = [req]
        self.starts = [req.t_submit] if first else []
        self.left = 0


class TierManager(Component):
    """Rows of the table map's tables over ``mems`` (one memory component per tier of ``spec``, in order)."""

    def __init__(self, sim, name: str, spec: TierNode, mems: list, table_map, where: tuple = ()) -> None:
        super().__init__(sim, name)
        self.spec = spec
        self.where = where
        self.mems = mems
        self.table_map = table_map
        self.tables = tables = table_map.tables
        layout = table_map.layout
        n = len(spec.tiers)
        self.n = n
        self.last = n - 1
        self.cache = spec.placement == "cache"
        # ------------------------------------------------------------------ tables: address -> (table, row)
        for place in layout.tables:
            if place.channel >= 0:
                raise self._error(("tiers",), "a tier reads tables at their layout's addresses; layout.policy "
                                              "channel_per_table is not supported with it")
        order = sorted(range(len(tables)), key=lambda t: layout.tables[t].base)
        self._order = order
        self._bases = [layout.tables[t].base for t in order]
        self._strides = [layout.tables[t].stride for t in order]
        self._nrows = [tables[t].rows for t in order]
        self._line = layout.line_bytes
        ur = spec.unit_rows
        self.unit_rows = ur
        units = [-(-info.rows // ur) for info in tables]
        self._uoff = np.concatenate(([0], np.cumsum(units))).astype(np.int64)
        self._uoff_t = [int(self._uoff[t]) for t in order]  # by address order
        self.total_units = int(self._uoff[-1])
        dims = [info.dim for info in tables]
        # ------------------------------------------------------------------ tiers: bytes, regions, ports
        self.row_b = [[row_bytes_at(d, lv.precision) for d in dims] for lv in spec.tiers]
        self.slot_b = [max(rb) * ur if rb else ur for rb in self.row_b]
        fp32_slot = max(row_bytes_at(d, "fp32") for d in dims) * ur if dims else ur
        self.capacity_gain = [fp32_slot / s for s in self.slot_b]
        self.quant_error = [quant_rel_error(dims, lv.precision, spec.vectors) for lv in spec.tiers]
        self.cap_rows = [lv.capacity // s for lv, s in zip(spec.tiers, self.slot_b)]
        self.base: list[int] = []
        regions: dict[int, list[tuple[int, int, int]]] = {}
        for i, (lv, mem) in enumerate(zip(spec.tiers, mems)):
            ext = memory_extent(mem)
            base = lv.base if lv.base is not None else (ext[0] if ext is not None else 0)
            self.base.append(base)
            if ext is not None and not (ext[0] <= base and base + lv.capacity <= ext[1]):
                raise self._error(("tiers", i, "capacity"),
                                  f"tier {i} [0x{base:x}, 0x{base + lv.capacity:x}) does not fit its memory "
                                  f"{lv.memory!r} [0x{ext[0]:x}, 0x{ext[1]:x}): a tier larger than its memory")
            for j, lo, hi in regions.get(id(mem), []):
                if base < hi and lo < base + lv.capacity:
                    raise self._error(("tiers", i, "base"), f"tier {i} overlaps tier {j} in {lv.memory!r}: give "
                                                            f"the tiers on one memory disjoint bases")
            regions.setdefault(id(mem), []).append((i, base, base + lv.capacity))
            if self.cap_rows[i] == 0:
                raise self._error(("tiers", i, "capacity"), f"{lv.capacity} B holds no unit of "
                                                            f"{self.slot_b[i]} B")
        self.ports = [MemoryPort(m) for m in mems]
        self.grain = [getattr(m, "burst_bytes", None) for m in mems]
        self.lookup_ps = round(spec.lookup_ns * 1000)
        # ------------------------------------------------------------------ counters
        self.lookups = 0
        self.merged = 0
        self.approx = 0
        self.approx_dist = 0.0
        self.found = [0] * n  # lookups served by each tier (merged ones by the tier of the read they joined)
        self.reads = [0] * n  # reads (of a row or a unit) from each tier
        self.bytes_read = [0] * n
        self.bytes_written = [0] * n
        self.fills = [0] * n
        self.evictions = [0] * n
        self.latency = Histogram()  # a lookup: its first line's request to the row's data back
        self.inflight: dict[int, _Op] = {}
        # ------------------------------------------------------------------ placement
        self._placed: dict[int, tuple[int, int]] = {}
        self._cold: list[tuple[int, int, int, int]] = []  # shard: (first unit, end, tier, first slot)
        self._cold_starts: list[int] = []
        self.tags: list = []
        self.surrogate: dict[int, tuple[int, float]] = {}
        self.map_entries = 0
        ranked = counts = None
        if spec.reads_profile:
            ranked, counts = self._profile()
        if self.cache:
            self._init_cache(ranked)
        elif spec.placement == "static":
            self._init_static(ranked)
        else:
            self._init_shard(ranked, counts)
        self.placed_units = [0] * n
        for tier, _slot in self._placed.values():
            self.placed_units[tier] += 1

    # ------------------------------------------------------------------ set-up
    def _error(self, rel: tuple, message: str) -> ConfigError:
        return tier_config_error(self.where, rel, message)

    def _profile(self) -> tuple[np.ndarray, np.ndarray]:
        """The profiled units hottest first (ties: lower unit first) and their lookup counts."""
        tm = self.table_map
        batches = tm.profiled_batches(self.spec.profile_batches) if hasattr(tm, "profiled_batches") else []
        ur = self.unit_rows
        keys = []
        for batch in batches:
            for t, idx in enumerate(batch.indices):
                idx = np.asarray(idx, dtype=np.int64)
                if len(idx):
                    keys.append(self._uoff[t] + (idx // ur if ur > 1 else idx))
        if not keys:
            e = np.empty(0, dtype=np.int64)
            return e, e
        u, c = np.unique(np.concatenate(keys), return_counts=True)
        order = np.lexsort((u, -c))
        return u[order], c[order]

    def _need_all(self, i: int, what: str) -> None:
        need = self.total_units * self.slot_b[i]
        if self.cap_rows[i] < self.total_units:
            raise self._error(("tiers", i, "capacity"),
                              f"the last tier keeps every {what} ({self.total_units} units of {self.slot_b[i]} B = "
                              f"{need} B), more than its capacity {self.spec.tiers[i].capacity} B")

    def _init_static(self, ranked: np.ndarray | None) -> None:
        ranked = ranked if ranked is not None else np.empty(0, dtype=np.int64)
        pos = 0
        for i in range(self.last):
            lv = self.spec.tiers[i]
            k = self.cap_rows[i]
            if lv.rows is not None:
                if lv.rows > k:
                    raise self._error(("tiers", i, "rows"),
                                      f"{lv.rows} rows of {self.slot_b[i]} B ({lv.rows * self.slot_b[i]} B) do not "
                                      f"fit tier {i}'s capacity {lv.capacity} B ({k} rows)")
                k = lv.rows
            take = ranked[pos:pos + k].tolist()
            pos += len(take)
            for s, u in enumerate(take):
                self._placed[u] = (i, s)
        self._need_all(self.last, "unit that is not placed above it at its canonical slot")

    def _init_shard(self, ranked: np.ndarray | None, counts: np.ndarray | None) -> None:
        n = self.n
        if sum(self.cap_rows) < self.total_units:
            raise self._error(("tiers",), f"the tiers hold {sum(self.cap_rows)} units, the tables have "
                                          f"{self.total_units}")
        cost = [lv.cost for lv in self.spec.tiers]
        load = [0.0] * n
        used = [0] * n
        cap = self.cap_rows
        if ranked is not None:
            for u, c in zip(ranked.tolist(), counts.tolist()):
                best, bv = -1, 0.0
                for i in range(n):
                    if used[i] < cap[i]:
                        v = cost[i] * (load[i] + c)
                        if best < 0 or v < bv:
                            best, bv = i, v
                self._placed[u] = (best, used[best])
                used[best] += 1
                load[best] += c
        # the others in unit order (their rank among the units not placed), the cheapest tier's room first
        self._placed_sorted = sorted(self._placed)
        rest = self.total_units - len(self._placed)
        start = 0
        for i in sorted(range(n), key=lambda i: (cost[i], i)):
            room = cap[i] - used[i]
            if room > 0 and start < rest:
                end = min(rest, start + room)
                self._cold.append((start, end, i, used[i]))
                start = end
        self._cold_starts = [c[0] for c in self._cold]
        self.shard_load = load

    def _init_cache(self, ranked: np.ndarray | None) -> None:
        from archsim.cache.policies import make_tags

        last = self.last
        self._need_all(last, "unit (the backing tier)")
        cap_last = self.spec.tiers[last].capacity
        self._slot_of: list[dict[int, int]] = []
        self._free: list[list[int]] = []
        for i in range(last):
            lv = self.spec.tiers[i]
            if lv.capacity > cap_last:
                raise self._error(("tiers", i, "capacity"), f"a cache larger than the tier it caches: {lv.capacity} "
                                                            f"B over tier {last}'s {cap_last} B")
            rows = self.cap_rows[i]
            ways = lv.ways or rows
            if ways > rows:
                raise self._error(("tiers", i, "ways"), f"{ways} ways but the tier holds {rows} units")
            rows -= rows % ways
            self.cap_rows[i] = rows
            policy = lv.policy or "lru"
            profile = ranked.tolist() if policy == "static_hot" else None
            self.tags.append(make_tags(rows, ways, 1, "modulo", policy, aging_period=lv.aging_period,
                                       seed=lv.seed or 0, profile=profile))
            self._slot_of.append({})
            self._free.append(list(range(rows - 1, -1, -1)))
        ev = self.spec.evprox
        if ev is not None and ranked is not None and len(ranked):
            self._init_evprox(ranked, ev)

    def _init_evprox(self, ranked: np.ndarray, ev) -> None:
        """The surrogate map: the profile's ``hot_rows`` hottest units (default: as many as the cache tiers hold)
        are the hot keys; each other profiled row (hottest first, as many as ``map_bytes`` holds) gets its table's nearest hot row."""
        hot_n = ev.hot_rows if ev.hot_rows is not None else sum(self.cap_rows[:self.last])
        hot, cold = ranked[:hot_n], ranked[hot_n:]
        if ev.map_bytes is not None:
            cold = cold[:ev.map_bytes // 8]
        uoff = self._uoff
        th = np.searchsorted(uoff, hot, side="right") - 1
        tc = np.searchsorted(uoff, cold, side="right") - 1
        for t, info in enumerate(self.tables):
            h = np.sort(hot[th == t] - uoff[t])
            c = np.sort(cold[tc == t] - uoff[t])
            kept, sur, dist = surrogates(t, h, c, info.dim, self.spec.vectors, ev.max_distance)
            for k, s, d in zip((kept + uoff[t]).tolist(), (sur + uoff[t]).tolist(), dist.tolist()):
                self.surrogate[k] = (s, d)
        self.map_entries = len(self.surrogate)

    # ------------------------------------------------------------------ where a unit lives
    def home(self, unit: int) -> tuple[int, int]:
        """(tier, slot) of ``unit`` under a static or shard placement, or in the backing tier."""
        p = self._placed.get(unit)
        if p is not None:
            return p
        if self._cold:
            r = unit - bisect_left(self._placed_sorted, unit)  # its rank among the units not placed by cost
            k = bisect_right(self._cold_starts, r) - 1
            start, _end, tier, slot0 = self._cold[k]
            return tier, slot0 + r - start
        return self.last, unit

    def held(self, unit: int) -> int:
        """The cache tier holding ``unit`` (placement cache), or -1."""
        for i, tags in enumerate(self.tags):
            if tags.contains(unit):
                return i
        return -1

    def table_of_unit(self, unit: int) -> int:
        return int(np.searchsorted(self._uoff, unit, side="right")) - 1

    # ------------------------------------------------------------------ face
    def windows(self) -> list[tuple[int, int]]:
        """The host addresses the tables occupy (the memory the host sees)."""
        return [(b, b + s * r) for b, s, r in zip(self._bases, self._strides, self._nrows)]

    def submit(self, req: MemRequest) -> simpy.Event:
        env = self.env
        now = env.now
        req.t_submit = now
        if req.done is None:
            req.done = env.event()
        if req.is_write:
            raise ValueError(f"{self.name}: a tier serves reads of embedding rows (tables are read-only), got {req!r}")
        addr = req.addr
        k = bisect_right(self._bases, addr) - 1
        if k < 0:
            raise ValueError(f"{self.name}: 0x{addr:x} is below every table")
        off = addr - self._bases[k]
        stride = self._strides[k]
        row = off // stride
        if row >= self._nrows[k]:
            raise ValueError(f"{self.name}: 0x{addr:x} is in no table")
        first = off - row * stride < self._line
        ur = self.unit_rows
        u = self._uoff_t[k] + (row // ur if ur > 1 else row)
        op = self.inflight.get(u)
        if op is not None:
            op.waiters.append(req)
            if first:
                self.lookups += 1
                self.merged += 1
                op.starts.append(now)
                if op.approx:
                    self.approx += 1
                    self.approx_dist += op.dist
                else:
                    self.found[op.tier] += 1
            return req.done
        t = self._order[k]
        fill = approx = False
        dist = 0.0
        if self.cache:
            tier = -1
            for i, tags in enumerate(self.tags):
                if tags.lookup(u) if first else tags.contains(u):
                    tier = i
                    break
            if tier >= 0:
                slot = self._slot_of[tier][u]
            else:
                tier, slot = self.last, u
                fill = first
                if first and self.surrogate:
                    s = self.surrogate.get(u)
                    if s is not None and self.approx + 1 <= self.spec.evprox.max_fraction * (self.lookups + 1):
                        j = self.held(s[0])
                        if j >= 0:
                            tier, slot, fill, approx, dist = j, self._slot_of[j][s[0]], False, True, s[1]
        else:
            tier, slot = self.home(u)
        if first:
            self.lookups += 1
            if approx:
                self.approx += 1
                self.approx_dist += dist
            else:
                self.found[tier] += 1
        op = _Op(u, t, row, tier, slot, fill, approx, dist, req, first)
        self.inflight[u] = op
        if self.lookup_ps:
            call_at(env, now + self.lookup_ps, self._issue_ev, op)
        else:
            self._issue(op)
        return req.done

    # ------------------------------------------------------------------ reads and fills
    def _pieces(self, i: int, addr: int, nbytes: int) -> list[tuple[int, int]]:
        g = self.grain[i]
        if g is None:
            return [(addr, nbytes)]
        return [(a * g, g) for a in range(addr // g, (addr + nbytes - 1) // g + 1)]

    def _issue_ev(self, ev: simpy.Event) -> None:
        self._issue(ev.value)

    def _issue(self, op: _Op) -> None:
        i = op.tier
        rb = self.row_b[i][op.table]
        addr = self.base[i] + op.slot * self.slot_b[i]
        ur = self.unit_rows
        if op.fill and ur > 1:
            nbytes = rb * ur  # the whole unit, to fill it
        else:
            nbytes = rb
            if ur > 1:
                addr += (op.row % ur) * rb
        pieces = self._pieces(i, addr, nbytes)
        op.left = len(pieces)
        self.reads[i] += 1
        send = self.ports[i].send
        for a, size in pieces:
            self.bytes_read[i] += size
            send(MemRequest(a, False, size, tag=op), self._piece)

    def _piece(self, ev: simpy.Event) -> None:
        op = ev.value.tag
        op.left -= 1
        if op.left:
            return
        now = self.env.now
        del self.inflight[op.unit]
        rec = self.latency.record
        for t0 in op.starts:
            rec(now - t0)
        for r in op.waiters:
            r.t_done = now
            r.done.succeed(r)
        if op.fill:
            self._fill(0, op.unit, op.table)

    def _fill(self, i: int, unit: int, table: int, write: bool = True) -> None:
        """Hold ``unit`` in cache tier ``i`` (a write of its bytes; ``write`` False: the state only); its victim
        moves one tier down."""
        victim = self.tags[i].fill(unit)
        if victim is not None and victim[0] == unit:  # a static_hot tier bypasses it
            return
        slots = self._slot_of[i]
        if victim is not None:
            v = victim[0]
            slot = slots.pop(v)
        else:
            slot = self._free[i].pop()
        slots[unit] = slot
        if write:
            self.fills[i] += 1
            self.evictions[i] += victim is not None
            nbytes = self.row_b[i][table] * self.unit_rows
            send = self.ports[i].send
            for a, size in self._pieces(i, self.base[i] + slot * self.slot_b[i], nbytes):
                self.bytes_written[i] += size
                send(MemRequest(a, True, size), None)
        if victim is not None and i + 1 < self.last:
            self._fill(i + 1, victim[0], self.table_of_unit(victim[0]), write)

    def replay(self, batches) -> tuple[int, int, int]:
        """Serve the lookups of ``batches`` in order (sample by sample) with the cache tiers' state only: tags, slots and EVProx's
        choices change as in a run, but no time passes, nothing is read or written and no counter of the run
        moves (a harness warming the caches before it measures, or counting hits fast; placement cache only).
        Returns (lookups, exact hits, approximate hits)."""
        if not self.cache:
            return 0, 0, 0
        uoff, ur, tags_all = self._uoff, self.unit_rows, self.tags
        sur = self.surrogate
        maxf = self.spec.evprox.max_fraction if self.spec.evprox is not None else 0.0
        n = hits = approx = 0
        for batch in batches:
            # sample by sample (a request's lookups of every table), as requests arrive
            per = [(int(uoff[t]), np.asarray(idx, dtype=np.int64).tolist(), np.asarray(off).tolist())
                   for t, (idx, off) in enumerate(zip(batch.indices, batch.offsets))]
            for b in range(batch.batch_size):
                for t, (base, rows, off) in enumerate(per):
                    for row in rows[off[b]:off[b + 1]]:
                        u = base + (row // ur if ur > 1 else row)
                        n += 1
                        if any(tags.lookup(u) for tags in tags_all):
                            hits += 1
                            continue
                        if sur:
                            s = sur.get(u)
                            if s is not None and approx + 1 <= maxf * n and self.held(s[0]) >= 0:
                                approx += 1
                                continue
                        self._fill(0, u, t, write=False)
        return n, hits, approx

    # ------------------------------------------------------------------ results
    def counters(self) -> dict[str, float]:
        """The counters so far (a harness can take them at the end of a warm-up and subtract)."""
        out = {"lookups": self.lookups, "merged": self.merged, "approx": self.approx,
               "approx_dist": self.approx_dist}
        for i in range(self.n):
            out[f"found{i}"] = self.found[i]
            out[f"bytes_read{i}"] = self.bytes_read[i]
            out[f"fills{i}"] = self.fills[i]
        return out

    def cache_stats(self) -> dict[str, tuple[int, int]]:
        """``{name: (lookups served by the tiers above the last, lookups)}`` (approximate hits not counted)."""
        return {self.name: (sum(self.found[:self.last]), self.lookups)}

    def _energy_nj(self, i: int) -> float:
        """The energy tier ``i``'s memory booked in the run (all of it, background included), shared between the
        tiers on that memory by the bytes each read and wrote there (equally when none moved any)."""
        mem = self.mems[i]
        full = mem.stats.full_name
        pj = sum(v for c, _k, v in self.sim.energy.items() if c == full or c.startswith(full + "."))
        same = [j for j in range(self.n) if self.mems[j] is mem]
        moved = [self.bytes_read[j] + self.bytes_written[j] for j in same]
        total = sum(moved)
        share = moved[same.index(i)] / total if total else 1 / len(same)
        return pj * share / 1000.0

    def summary(self, end_ps: int) -> dict[str, float]:
        """Lookups, the share served by the tiers above the last (``hit_rate``) and approximately
        (``approx_hit_rate``), lookup latency, and per tier: share of lookups served, bytes read and written,
        energy of its memory (its share by bytes moved), rows held, capacity gained by its precision, quantisation error; EVProx's map
        entries and mean relative error of the surrogates served."""
        n = self.lookups
        nan = float("nan")
        lat = self.latency
        out: dict[str, float] = {
            "lookups": n,
            "hit_rate": sum(self.found[:self.last]) / n if n else 0.0,
            "approx_hit_rate": self.approx / n if n else 0.0,
            "lookup_latency_mean_ns": lat.mean() / 1000 if lat.count else nan,
            "lookup_latency_p50_ns": lat.percentile(50) / 1000 if lat.count else nan,
            "lookup_latency_p99_ns": lat.percentile(99) / 1000 if lat.count else nan,
        }
        for i in range(self.n):
            p = f"tier{i}_"
            out[p + "hit_rate"] = self.found[i] / n if n else 0.0
            out[p + "bytes_read"] = self.bytes_read[i]
            out[p + "bytes_written"] = self.bytes_written[i]
            out[p + "energy_nJ"] = self._energy_nj(i)
            out[p + "rows"] = self.cap_rows[i] * self.unit_rows
            out[p + "capacity_gain"] = self.capacity_gain[i]
            out[p + "quant_rel_error"] = self.quant_error[i]
        if self.spec.evprox is not None:
            out["evprox_map_entries"] = self.map_entries
            out["evprox_rel_error"] = self.approx_dist / self.approx if self.approx else nan
        return out

    def finalize(self, end_ps: int | None = None) -> None:
        s = self.stats
        s.set("lookups", self.lookups)
        s.set("merged", self.merged)
        s.set("approx_hits", self.approx)
        for i in range(self.n):
            c = s.child(f"tier{i}")
            for k, v in (("served", self.found[i]), ("reads", self.reads[i]), ("bytes_read", self.bytes_read[i]),
                         ("bytes_written", self.bytes_written[i]), ("fills", self.fills[i]),
                         ("evictions", self.evictions[i]), ("rows", self.cap_rows[i] * self.unit_rows),
                         ("placed_units", self.placed_units[i])):
                c.set(k, v)
        s.hists["lookup_latency_ps"] = self.latency
