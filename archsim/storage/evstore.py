"""The numbers behind EVStore's EVMix and EVProx layers (Kurniawan et al., ASPLOS 2023), computed on vectors drawn
with a fixed seed (:class:`archsim.storage.tier_spec.VectorSpec`): the simulator moves no embedding values, so
the error figures come from these draws, not from a trained model.

- **EVMix** (:func:`row_bytes_at`, :func:`quant_rel_error`): a row of ``dim`` elements stored at fp16 takes
  ``2 dim`` bytes, at int8 ``dim + 4`` and at int4 ``ceil(dim / 2) + 4`` (symmetric per-row quantisation: one
  fp32 scale ``max|v| / 127`` or ``/ 7`` per row; EVStore's own int8/int4 files map the fixed range [-1, 1]
  instead and carry no scale). The error is the mean over rows of ``||v - q(v)|| / ||v||``.
- **EVProx** (:func:`surrogates`): for each cold key, the hot key of the same table whose vector is nearest in
  L2 (EVStore builds its key -> surrogate-key map offline by Euclidean or cosine distance), kept if the relative
  distance ``||v - s|| / ||v||`` is within the bound.
"""

from __future__ import annotations

import numpy as np

from archsim.storage.tier_spec import PRECISION_BITS, VectorSpec

__all__ = ["SCALE_BYTES", "row_bytes_at", "quantise", "quant_rel_error", "table_vectors", "surrogates"]

SCALE_BYTES = 4  #: the fp32 scale an int8 or int4 row carries


def row_bytes_at(dim: int, precision: str) -> int:
    """Bytes of a row of ``dim`` elements stored at ``precision`` (scale included)."""
    b = -(-dim * PRECISION_BITS[precision] // 8)
    return b + SCALE_BYTES if precision in ("int8", "int4") else b


def quantise(v: np.ndarray, precision: str) -> np.ndarray:
    """``v`` (rows x dim, float32) stored at ``precision`` and read back as float32."""
    v = np.asarray(v, dtype=np.float32)
    if precision == "fp32":
        return v.copy()
    if precision == "fp16":
        return v.astype(np.float16).astype(np.float32)
    qmax = 127 if precision == "int8" else 7
    scale = np.abs(v).max(axis=1, keepdims=True) / qmax
    scale[scale == 0] = 1.0
    q = np.clip(np.rint(v / scale), -qmax, qmax)
    return (q * scale).astype(np.float32)


def quant_rel_error(dims: list[int], precision: str, vec: VectorSpec) -> float:
    """Mean relative L2 error of rows drawn from N(0, ``vec.std``) (``vec.samples`` per table of each dim in
    ``dims``, fixed seed) stored at ``precision``."""
    if precision == "fp32" or not dims:
        return 0.0
    errs = []
    for t, dim in enumerate(dims):
        rng = np.random.default_rng([vec.seed, 1, t])
        v = rng.normal(0.0, vec.std, (vec.samples, dim)).astype(np.float32)
        d = np.linalg.norm(v - quantise(v, precision), axis=1) / np.linalg.norm(v, axis=1)
        errs.append(float(d.mean()))
    return float(np.mean(errs))


def table_vectors(t: int, rows: np.ndarray, dim: int, vec: VectorSpec) -> np.ndarray:
    """Vectors (float64) of ``rows`` (sorted, distinct) of table ``t``: each row its cluster's centre
    (``row mod clusters``) plus N(0, std x noise), or N(0, std) with ``clusters: 0``. The draws follow the rows'
    order, so a row's vector depends on the set asked for; the set is fixed by the config and its seed."""
    rng = np.random.default_rng([vec.seed, 2, t])
    if vec.clusters == 0:
        return rng.normal(0.0, vec.std, (len(rows), dim))
    centres = rng.normal(0.0, vec.std, (vec.clusters, dim))
    return centres[np.asarray(rows) % vec.clusters] + rng.normal(0.0, vec.std * vec.noise, (len(rows), dim))


def surrogates(t: int, hot: np.ndarray, cold: np.ndarray, dim: int, vec: VectorSpec,
               max_distance: float, block: int = 4096) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For the ``cold`` rows of table ``t``, the nearest of its ``hot`` rows: ``(cold rows kept, their surrogate
    rows, relative distances)``, only those within ``max_distance``."""
    if not len(hot) or not len(cold):
        e = np.empty(0, dtype=np.int64)
        return e, e, np.empty(0)
    rows = np.concatenate([hot, cold])
    order = np.argsort(rows, kind="stable")
    vecs = np.empty((len(rows), dim))
    vecs[order] = table_vectors(t, rows[order], dim, vec)
    h, c = vecs[:len(hot)], vecs[len(hot):]
    hn = (h * h).sum(axis=1)
    best = np.empty(len(cold), dtype=np.int64)
    dist = np.empty(len(cold))
    for lo in range(0, len(cold), block):
        cb = c[lo:lo + block]
        d2 = hn[None, :] - 2.0 * cb @ h.T  # + |c|^2, the same for every hot row
        j = d2.argmin(axis=1)
        best[lo:lo + block] = j
        diff = cb - h[j]
        dist[lo:lo + block] = np.linalg.norm(diff, axis=1) / np.linalg.norm(cb, axis=1)
    keep = dist <= max_distance
    return cold[keep], hot[best[keep]], dist[keep]
