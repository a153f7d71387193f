"""The function every executor runs for a point: top level and importable, so it pickles by reference and is
safe under spawn, forkserver and Dask workers. It takes and returns plain dicts."""

from __future__ import annotations

import signal
import threading
import time
import traceback
from typing import Any

from archsim.config import InputError

__all__ = ["PointTimeout", "run_point"]


def run_point(task: dict[str, Any]) -> dict[str, Any]:
    """Run one point with :func:`archsim.api.run`; never raises for a failed run.

    ``task``: ``hwconfig, overrides, workload, workload_overrides, trace, window, seed`` (and ``key``, echoed;
    ``timeout``: seconds, enforced with SIGALRM where the point runs on a process's main thread).
    Returns ``{key, status: "ok" | "failed", error, error_kind: None | "input" | "timeout" | "internal",
    summary, config_hash, wall_s}``; bad input gives the one-line text of the InputError / ConfigError.
    """
    from archsim.api import run

    t0 = time.perf_counter()
    out: dict[str, Any] = {"key": task.get("key"), "status": "ok", "error": None, "error_kind": None,
                           "summary": None, "config_hash": None}
    timeout = task.get("timeout")
    on_main = threading.current_thread() is threading.main_thread()
    alarm = bool(timeout) and hasattr(signal, "setitimer") and on_main
    old_handler: Any = None
    try:
        if alarm:
            old_handler = signal.signal(signal.SIGALRM, _on_alarm)
            _ALARM["armed"] = True
            # the alarm repeats every 50 ms: an exception raised where Python ignores it (a weakref or __del__
            # callback run by the garbage collector) is raised again at the next tick
            signal.setitimer(signal.ITIMER_REAL, float(timeout), 0.05)
        res = run(task["hwconfig"], trace=task.get("trace"), window=task.get("window", 0),
                  overrides=list(task.get("overrides", ())), seed=task.get("seed"),
                  workload=task.get("workload"), workload_overrides=list(task.get("workload_overrides", ())))
        out["summary"] = {k: _plain(v) for k, v in res.summary.items()}
        out["config_hash"] = res.config_hash
    except InputError as exc:
        out.update(status="failed", error=_one_line(str(exc)), error_kind="input")
    except PointTimeout:
        _ALARM["armed"] = False
        out.update(status="failed", error=f"timed out after {timeout:g} s", error_kind="timeout")
    except Exception as exc:  # a failed point is recorded, the sweep goes on
        out.update(status="failed", error=_one_line(f"{type(exc).__name__}: {exc}"), error_kind="internal",
                   traceback=traceback.format_exc())
    finally:
        if alarm:
            _ALARM["armed"] = False
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old_handler)
    out["wall_s"] = round(time.perf_counter() - t0, 3)
    return out


class PointTimeout(BaseException):
    """A point ran past the sweep's ``timeout`` (a BaseException, so no ``except Exception`` swallows it)."""


_ALARM = {"armed": False}


def _on_alarm(signum: int, frame: Any) -> None:
    if _ALARM["armed"]:
        raise PointTimeout("ran past the sweep's timeout")


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
