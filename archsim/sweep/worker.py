"""The function every executor runs for a point: top level and importable, so it pickles by reference and is
safe under spawn, forkserver and Dask workers. It takes and returns plain dicts."""

from __future__ import annotations

import os
import socket
import time
import traceback
from typing import Any

from archsim.api import WallLimitExceeded
from archsim.config import InputError

__all__ = ["PointTimeout", "run_point", "worker_id"]

PointTimeout = WallLimitExceeded
"""A point ran past the sweep's ``timeout`` (``archsim sweep --max-wall``): :class:`archsim.api.WallLimitExceeded`."""


def run_point(task: dict[str, Any]) -> dict[str, Any]:
    """Run one point with :func:`archsim.api.run`; never raises for a failed run.

    ``task``: ``hwconfig, overrides, workload, workload_overrides, trace, window, seed`` (and ``key``, echoed;
    ``timeout``: seconds, ``archsim.api.run``'s ``max_wall``: a SIGALRM timer where the point runs on a
    process's main thread, else a check after each batch of a workload).
    Returns ``{key, status: "ok" | "failed", error, error_kind: None | "input" | "timeout" | "internal",
    summary, config_hash, wall_s, cpu_s, worker}`` (``cpu_s``: the process's CPU seconds meanwhile, all its
    threads; below ``wall_s`` when the point waited for a core; ``worker``: ``HOST:PID`` of the process that ran
    the point); bad input gives the one-line text of the InputError / ConfigError.
    """
    from archsim.api import run

    t0, c0 = time.perf_counter(), time.process_time()
    out: dict[str, Any] = {"key": task.get("key"), "status": "ok", "error": None, "error_kind": None,
                           "summary": None, "config_hash": None}
    timeout = task.get("timeout")
    try:
        res = run(task["hwconfig"], trace=task.get("trace"), window=task.get("window", 0),
                  overrides=list(task.get("overrides", ())), seed=task.get("seed"),
                  workload=task.get("workload"), workload_overrides=list(task.get("workload_overrides", ())),
                  max_wall=timeout or None)
        out["summary"] = {k: _plain(v) for k, v in res.summary.items()}
        out["config_hash"] = res.config_hash
    except InputError as exc:
        out.update(status="failed", error=_one_line(str(exc)), error_kind="input")
    except WallLimitExceeded:
        out.update(status="failed", error=f"timed out after {timeout:g} s", error_kind="timeout")
    except Exception as exc:  # a failed point is recorded, the sweep goes on
        out.update(status="failed", error=_one_line(f"{type(exc).__name__}: {exc}"), error_kind="internal",
                   traceback=traceback.format_exc())
    out["wall_s"] = round(time.perf_counter() - t0, 3)
    out["cpu_s"] = round(time.process_time() - c0, 3)
    out["worker"] = worker_id()
    return out


def worker_id() -> str:
    """``HOST:PID`` of the calling process, recorded with each point it runs (which machine and process ran it;
    read at each call: workers forked from a preloaded forkserver share its imported modules, not its pid)."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _plain(v: Any) -> Any:
    """numpy scalars -> Python scalars (JSON and pickle friendly)."""
    item = getattr(v, "item", None)
    if item is not None and not isinstance(v, int | float | str | bool):
        try:
            return item()
        except (TypeError, ValueError):
            return v
    return v


def _one_line(text: str) -> str:
    return "; ".join(part.strip() for part in str(text).splitlines() if part.strip())
