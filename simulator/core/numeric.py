"""Exact array arithmetic that NumPy does slowly.

``np.floor_divide`` on float arrays takes an exact ``fmod`` route (about 20 ns per element on
the bench machine): on the 10^6-10^7 reception and telegram times of a city run the window and
hour indices cost more than the statistics they feed. :func:`floor_index` gives the same
integers from ``floor(t / step)`` and redoes the exact division only where the two can differ.
"""

from __future__ import annotations

import numpy as np

#: Quotients closer than this to an integer are redone with ``//``; it covers the rounding of
#: ``t / step`` (at most a few units in the last place) while quotients stay below 2**28.
_NEAR = 1e-6
_MAX_QUOTIENT = float(2**28)


def floor_index(t: np.ndarray, step: float) -> np.ndarray:
    """``(t // step).astype(np.int64)`` for a float array ``t`` (e.g. times in s) and a step
    ``> 0`` (e.g. a window in s), the same integers, several times faster.

    ``floor(t / step)`` differs from ``t // step`` (the floor of the exact quotient) only where
    the rounded quotient lies within a few units in the last place of an integer; those
    elements (quotient within :data:`_NEAR` of an integer) are recomputed with ``//``. Falls
    back to ``//`` throughout when a quotient reaches 2**28. Raises ``ValueError`` for a step
    that is not positive.
    """
    step = float(step)
    if not step > 0:
        raise ValueError(f"floor_index: step must be > 0 (got {step})")
    t = np.asarray(t, dtype=float)
    q = t / step
    if q.size and not float(np.max(np.abs(q))) < _MAX_QUOTIENT:
        return (t // step).astype(np.int64)
    whole = np.floor(q)
    frac = q - whole
    near = np.nonzero((frac < _NEAR) | (frac > 1.0 - _NEAR))[0]
    out = whole.astype(np.int64)
    if near.size:
        out[near] = (t[near] // step).astype(np.int64)
    return out
