"""Mean and Student t confidence interval of a figure over a point's seeds.

The interval is ``mean ± t(1 - (1 - level)/2, n - 1) · s / sqrt(n)`` with ``s`` the sample
standard deviation (n - 1 in the denominator): the runs of a point differ only in their seed,
so they are independent draws of the figure. Student's t is exact for normal figures and a
fair approximation for means of a few seeds; with one seed there is no interval.

The t quantile is found by bisection on the exact CDF for whole degrees of freedom
(Abramowitz & Stegun 26.7.3-26.7.4), so no statistics package is needed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


def t_two_sided_probability(t: float, df: int) -> float:
    """P(|T| <= t) for Student's T with ``df`` >= 1 degrees of freedom (A&S 26.7.3/4)."""
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {df}")
    theta = math.atan(t / math.sqrt(df))
    c, s = math.cos(theta), math.sin(theta)
    if df % 2 == 1:
        term, total = c, c if df > 1 else 0.0  # cos, then (2/3)cos^3, (2·4)/(3·5)cos^5 ...
        for k in range(2, df - 1, 2):
            term *= k / (k + 1) * c * c
            total += term
        return 2.0 / math.pi * (theta + s * total)
    term, total = 1.0, 1.0  # 1, (1/2)cos^2, (1·3)/(2·4)cos^4 ...
    for k in range(1, df - 2, 2):
        term *= k / (k + 1) * c * c
        total += term
    return s * total


def t_quantile(level: float, df: int) -> float:
    """``t`` with P(|T| <= t) = ``level`` (e.g. 0.95 -> 12.706 for df = 1, 2.262 for df = 9)."""
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    lo, hi = 0.0, 1.0
    while t_two_sided_probability(hi, df) < level:
        hi *= 2.0
    for _ in range(200):
        mid = (lo + hi) / 2
        if t_two_sided_probability(mid, df) < level:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-12 * hi:
            break
    return (lo + hi) / 2


@dataclass(frozen=True)
class Estimate:
    """``n`` values: their ``mean``, sample standard deviation ``sd`` and the ``half`` width of
    the ``level`` confidence interval (NaN for n < 2; sd and half are 0 when all values agree)."""

    n: int
    mean: float
    sd: float
    half: float
    level: float

    @property
    def low(self) -> float:
        return self.mean - self.half

    @property
    def high(self) -> float:
        return self.mean + self.half


def estimate(values: Sequence[float], level: float = 0.95) -> Estimate:
    """Mean and Student t interval of ``values`` (see the module doc). ValueError when empty."""
    n = len(values)
    if n == 0:
        raise ValueError("no values")
    mean = math.fsum(values) / n
    if n == 1:
        return Estimate(1, mean, math.nan, math.nan, level)
    sd = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))
    return Estimate(n, mean, sd, t_quantile(level, n - 1) * sd / math.sqrt(n), level)
