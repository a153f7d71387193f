"""archsim: a memory-system simulator for recommendation-model embedding lookups.

The Python API: ``archsim.run(config, trace=... | workload=..., overrides=(), seed=None) -> Result``,
``archsim.load_config(path)`` and ``archsim.sweep(spec, executor=...) -> pandas.DataFrame``; imported lazily
so the command line starts fast.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["run", "load_config", "sweep", "__version__"]


def __getattr__(name: str) -> Any:
    if name == "run":
        from archsim.api import run

        return run
    if name == "load_config":
        from archsim.system.config import load_system

        return load_system
    if name == "sweep":
        import importlib

        return importlib.import_module("archsim.sweep")
    raise AttributeError(name)
