"""Sweeps: a YAML spec of axes over a base run, executed serially, on local processes or on Dask, with a
result store keyed by the resolved config's hash (resume, no repeated work). See docs/sweeps.md.

    from archsim.sweep import run_sweep
    df = run_sweep("examples/sweep_small.yaml", jobs=2)          # a pandas.DataFrame, one row per point

The module itself is callable as the design's ``archsim.sweep(spec, executor=...)``: ``executor`` is None
(serial), an int (that many local processes), ``"processes"`` (one per CPU), ``"local"`` or
``"tcp://HOST:PORT"`` (Dask), a ``concurrent.futures.Executor`` or a ``distributed.Client``.
"""

from __future__ import annotations

import os
import sys
import types
from typing import Any

from archsim.sweep.runner import run_sweep
from archsim.sweep.spec import Point, Sweep, expand_points, load_sweep
from archsim.sweep.store import ResultStore

__all__ = ["Point", "ResultStore", "Sweep", "expand_points", "load_sweep", "run_sweep", "sweep"]


def sweep(spec: str | os.PathLike[str] | Sweep, executor: Any = None, **kwargs: Any):
    """``archsim.sweep(spec, executor=...)``: :func:`run_sweep` with the executor in one argument."""
    kwargs.setdefault("progress", False)
    if executor is None or executor == "serial":
        return run_sweep(spec, **kwargs)
    if isinstance(executor, int) and not isinstance(executor, bool):
        return run_sweep(spec, jobs=executor, **kwargs)
    if executor == "processes":
        return run_sweep(spec, jobs=0, **kwargs)
    if isinstance(executor, str):
        return run_sweep(spec, dask=executor, **kwargs)
    return run_sweep(spec, executor=executor, **kwargs)


class _CallableModule(types.ModuleType):
    def __call__(self, spec: str | os.PathLike[str] | Sweep, executor: Any = None, **kwargs: Any):
        return sweep(spec, executor=executor, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
