"""Periodic signals as finite Fourier series, closed under sum, product and integration.

A :class:`Harmonic` is ``c0 + sum_k (a_k cos(k w t) + b_k sin(k w t))`` with
``w = 2 pi / period_s``. A daily wave (flow, temperature) is one; the product of two (heat
power = k * flow * temperature difference) is one again, with the sum and difference
frequencies; its integral from 0 to t has a closed form. That is how an energy register can be
*exactly* the integral of its power without numeric integration at every readout.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Harmonic:
    """Fourier coefficients: ``terms[k] = (a_k, b_k)``; ``terms[0] = (c0, 0)``; t in s."""

    period_s: float
    terms: dict[int, tuple[float, float]] = field(default_factory=dict)

    @classmethod
    def constant(cls, value: float, period_s: float) -> Harmonic:
        return cls(period_s, {0: (float(value), 0.0)})

    @classmethod
    def sine(cls, mean: float, amplitude: float, phase: float, period_s: float) -> Harmonic:
        """``mean + amplitude * sin(w t + phase)``."""
        return cls(
            period_s,
            {0: (mean, 0.0), 1: (amplitude * math.sin(phase), amplitude * math.cos(phase))},
        )

    def _same_period(self, other: Harmonic) -> None:
        if self.period_s != other.period_s:
            raise ValueError(f"periods differ: {self.period_s} s and {other.period_s} s")

    def scaled(self, factor: float) -> Harmonic:
        return Harmonic(
            self.period_s, {k: (a * factor, b * factor) for k, (a, b) in self.terms.items()}
        )

    def plus(self, other: Harmonic) -> Harmonic:
        self._same_period(other)
        out = dict(self.terms)
        for k, (a, b) in other.terms.items():
            a0, b0 = out.get(k, (0.0, 0.0))
            out[k] = (a0 + a, b0 + b)
        return Harmonic(self.period_s, out)

    def times(self, other: Harmonic) -> Harmonic:
        """The product, by cos i cos j = (cos(i-j) + cos(i+j))/2 and the like."""
        self._same_period(other)
        out: dict[int, list[float]] = {}

        def cos(k: int, v: float) -> None:
            out.setdefault(abs(k), [0.0, 0.0])[0] += v

        def sin(k: int, v: float) -> None:
            if k:
                out.setdefault(abs(k), [0.0, 0.0])[1] += v if k > 0 else -v

        for i, (ai, bi) in self.terms.items():
            for j, (aj, bj) in other.terms.items():
                cos(i - j, ai * aj / 2)
                cos(i + j, ai * aj / 2)
                cos(i - j, bi * bj / 2)
                cos(i + j, -bi * bj / 2)
                sin(i + j, bi * aj / 2)
                sin(i - j, bi * aj / 2)
                sin(i + j, ai * bj / 2)
                sin(i - j, -ai * bj / 2)
        return Harmonic(self.period_s, {k: (a, b) for k, (a, b) in out.items()})

    def at(self, t: float) -> float:
        w = 2 * math.pi / self.period_s
        v = 0.0
        for k, (a, b) in self.terms.items():
            v += a if k == 0 else a * math.cos(k * w * t) + b * math.sin(k * w * t)
        return v

    def integral(self, t: float) -> float:
        """``integral from 0 to t`` of the signal (unit of the signal times s)."""
        w = 2 * math.pi / self.period_s
        v = 0.0
        for k, (a, b) in self.terms.items():
            if k == 0:
                v += a * t
            else:
                kw = k * w
                v += a * math.sin(kw * t) / kw + b * (1 - math.cos(kw * t)) / kw
        return v
