"""floor_index against NumPy's exact floor division, on random times and on the hard cases:
exact multiples of the step, and the neighbouring floats on both sides of them."""

from __future__ import annotations

import numpy as np
import pytest

from simulator.core.numeric import floor_index


@pytest.mark.parametrize("step", [900.0, 3600.0, 86400.0, 0.1, 7.3, 1e-3])
def test_floor_index_equals_floor_divide(step):
    rng = np.random.default_rng(int(step * 1000) % 2**32)
    k = np.arange(-2000, 2000, dtype=float)
    edges = k * step
    t = np.concatenate(
        [
            rng.uniform(-1e5, 1e5, 200_000) * min(step, 1.0),
            edges,
            np.nextafter(edges, np.inf),
            np.nextafter(edges, -np.inf),
            np.nextafter(np.nextafter(edges, -np.inf), -np.inf),
            (k + 1e-12) * step,
            (k - 1e-12) * step,
        ]
    )
    assert np.array_equal(floor_index(t, step), (t // step).astype(np.int64))


def test_floor_index_huge_quotients_fall_back():
    t = np.array([0.0, 2.0**60, 2.0**40 + 0.5, -(2.0**40)])
    assert np.array_equal(floor_index(t, 0.5), (t // 0.5).astype(np.int64))


def test_floor_index_refuses_a_bad_step():
    with pytest.raises(ValueError, match="step must be > 0"):
        floor_index(np.zeros(3), 0.0)
