"""The seeds a campaign mutates, found by glob so that a new shipped file is fuzzed without edits:

- ``hwconfigs/*.yaml``, ``workloads/*.yaml`` and ``examples/sweep_*.yaml`` (parsed as archsim parses YAML);
- memory traces: small ones written here, one per accepted line form (``archsim/workload/trace.py``);
- embedding traces: every ``workloads/traces/*/meta.json`` directory (the npz format,
  ``archsim/workload/npz_trace.py``) and a tiny one written here (2 batches of 4 bags).
"""

from __future__ import annotations

import functools
import io
import json
import os
import random
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from archsim.config.loader import _Loader  # archsim's YAML reading (1e9 is a float)

REPO = Path(__file__).resolve().parents[2]
SANDBOX_DIRS = ("hwconfigs", "workloads", "examples")
"""Repository directories mirrored (as links) into every sandbox, so relative paths resolve as shipped."""


@dataclass(frozen=True)
class Seed:
    """A shipped YAML file: ``rel`` its path in the repository (and in a sandbox), ``data`` as parsed."""

    name: str
    rel: str
    text: str
    data: Any


def _yaml_seeds(pattern: str) -> tuple[Seed, ...]:
    seeds = []
    for p in sorted(REPO.glob(pattern)):
        text = p.read_text()
        seeds.append(Seed(p.stem, str(p.relative_to(REPO)), text, yaml.load(text, Loader=_Loader)))
    return tuple(seeds)


@functools.cache
def hwconfigs() -> tuple[Seed, ...]:
    return _yaml_seeds("hwconfigs/*.yaml")


@functools.cache
def workloads() -> tuple[Seed, ...]:
    return _yaml_seeds("workloads/*.yaml")


@functools.cache
def sweeps() -> tuple[Seed, ...]:
    return _yaml_seeds("examples/sweep_*.yaml")


# ------------------------------------------------------------------------------------------------------------
# Memory traces
# ------------------------------------------------------------------------------------------------------------

_LINE_FORMS = {
    "ramulator": lambda a, w, c: f"0x{a:x} {'W' if w else 'R'}",
    "ldst": lambda a, w, c: f"{'ST' if w else 'LD'} 0x{a:x}",
    "dramsim3": lambda a, w, c: f"0x{a:x} {'WRITE' if w else 'READ'} {c}",
    "decimal": lambda a, w, c: f"{a} {'W' if w else 'R'}",
}


@functools.cache
def memory_traces() -> dict[str, str]:
    """Small valid memory traces (name -> text), one per line form: 32 requests, a comment and a blank line."""
    out = {}
    for name, form in _LINE_FORMS.items():
        rng = random.Random(name)
        lines = [f"# {name} trace written by tests/fuzz/corpus.py", ""]
        cycle = 0
        for _ in range(32):
            cycle += rng.randrange(0, 8)
            lines.append(form(rng.randrange(0, 1 << 24) * 64, rng.random() < 0.3, cycle))
        out[name] = "\n".join(lines) + "\n"
    return out


# ------------------------------------------------------------------------------------------------------------
# Embedding traces (npz)
# ------------------------------------------------------------------------------------------------------------

TINY_NPZ = "tiny_2b"


def _tiny_trace(out: Path) -> None:
    """2 batches of 4 bags over 2 tables of 1000 rows, pooling 1..4, in the archsim npz format."""
    rng = np.random.default_rng(0)
    tables = [{"name": f"t{i}", "rows": 1000, "dim": 16, "dtype": "fp32"} for i in range(2)]
    out.mkdir(parents=True, exist_ok=True)
    for b in range(2):
        lengths = rng.integers(1, 5, size=8)
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        indices = rng.integers(0, 1000, size=int(offsets[-1])).astype(np.int64)
        np.savez_compressed(out / f"batch_{b:05d}.npz", indices=indices, offsets=offsets,
                            table_ids=np.arange(2, dtype=np.int32))
    meta = {"format": "archsim-embedding-trace", "version": 1, "name": "tiny", "batch_size": 4,
            "num_batches": 2, "tables": tables}
    (out / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")


@functools.cache
def npz_traces() -> dict[str, Path]:
    """Embedding trace directories (name -> directory): the shipped ones and :data:`TINY_NPZ`."""
    found = {p.parent.name: p.parent for p in sorted(REPO.glob("workloads/traces/*/meta.json"))}
    cache = Path(tempfile.gettempdir()) / f"archsim-fuzz-seeds-{os.getuid()}" / TINY_NPZ
    if not (cache / "meta.json").is_file():
        tmp = Path(tempfile.mkdtemp(prefix=".tiny-", dir=cache.parent if cache.parent.exists() else None))
        _tiny_trace(tmp)
        cache.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(tmp, cache)
        except OSError:  # another process wrote it first
            pass
    found[TINY_NPZ] = cache
    return found


def seed_dir(name: str) -> Path:
    """The directory of an embedding trace seed."""
    return npz_traces()[name]


@functools.cache
def npz_batch(name: str, i: int = 0) -> dict[str, np.ndarray]:
    """The arrays of batch ``i`` of a trace seed."""
    with np.load(seed_dir(name) / f"batch_{i:05d}.npz") as z:
        return {k: np.asarray(z[k]) for k in z.files}


@functools.cache
def npz_meta(name: str) -> dict[str, Any]:
    return json.loads((seed_dir(name) / "meta.json").read_text())


def npz_bytes(arrays: dict[str, Any], compressed: bool = True) -> bytes:
    """An .npz file holding ``arrays`` (any values numpy takes)."""
    buf = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buf, **arrays)
    return buf.getvalue()


def zip_bytes(members: dict[str, bytes]) -> bytes:
    """A zip archive of raw members (for npz files whose members are not .npy arrays)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()
