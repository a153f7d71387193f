"""Closed-form cache models used to check the simulated caches.

``che_lru_hit_rate``: Che's approximation for an LRU cache of C items under the independent reference model
(H. Che, Y. Tung, Z. Wang, "Hierarchical Web caching systems: modeling, design and experimental results",
IEEE JSAC 2002). The characteristic time T solves sum_i (1 - exp(-p_i T)) = C; item i is in the cache with
probability 1 - exp(-p_i T), so the hit rate is sum_i p_i (1 - exp(-p_i T)). It is accurate to well under a
point for Zipf popularities and caches of more than a few hundred items (Fricker, Robert, Roberts, ITC 2012).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import brentq


def zipf_probabilities(n: int, s: float) -> np.ndarray:
    """p_k proportional to k^-s for ranks k = 1..n."""
    p = np.arange(1, n + 1, dtype=np.float64) ** -s
    return p / p.sum()


def che_lru_hit_rate(probs: np.ndarray, capacity: int) -> float:
    """Hit rate of an LRU cache of ``capacity`` items for independent requests with popularities ``probs``."""
    p = np.asarray(probs, dtype=np.float64)
    p = p[p > 0]
    if capacity >= len(p):
        return 1.0
    if capacity <= 0:
        return 0.0

    def occupancy(t: float) -> float:
        return float(-np.expm1(-p * t).sum()) - capacity

    hi = 1.0
    while occupancy(hi) < 0:
        hi *= 2
    t = brentq(occupancy, 0.0, hi, xtol=1e-12 * hi, rtol=1e-12)
    return float((p * -np.expm1(-p * t)).sum())
