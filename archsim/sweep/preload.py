"""Everything a sweep point imports on its first run, imported ahead of time: by the forkserver of ``-j N``
sweeps before it forks the worker processes (so each worker's first point starts warm and the imports are done
once, while the runner keys the points), and by Dask workers started with ``dask worker --preload
archsim.sweep.preload``. Importing it has no other effect."""

from __future__ import annotations

import archsim.api  # noqa: F401
import archsim.sweep.worker  # noqa: F401
import archsim.system.builder  # noqa: F401
import archsim.system.embedding  # noqa: F401
import archsim.workload.batches  # noqa: F401
import archsim.workload.spec  # noqa: F401
from archsim.system.registry import load_kinds

load_kinds()  # every component kind (caches, DRAM, NMP, CXL, storage, GPU) registered
