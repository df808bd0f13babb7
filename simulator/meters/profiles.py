"""Value profiles: what a simulated meter measures, as functions of simulated time ``t`` (s).

Every profile has ``at(t, clock, rng)`` (the value in the unit of its record's VIF family: Wh,
m3, m3/h, °C, W ...) and ``harmonic()`` (its :class:`~.harmonic.Harmonic` series, or None when
it has none: noise, a counter, the clock). Profiles never read the wall clock; noise comes from
the ``rng`` the caller passes (the meter's own stream).

Measured signals:

* :class:`Constant` a fixed value; :class:`ClockValue` the calendar time (VIF 6D).
* :class:`Wave` ``mean + amplitude * sin(2 pi t / period_s + phase)`` plus uniform noise.
* :class:`Counter` a monotone counter with a daily swing (water, gas, electricity registers).

Derived signals (physically consistent, PROTOCOL.md §4.6 heat and cooling meters):

* :class:`Difference` ``a - b`` (flow/return temperature difference).
* :class:`HeatPower` ``P = rho * c * Q * dT``: Q in m3/h, dT in K, P in W (EN 1434-1 heat
  equation with a constant heat coefficient; the default rho = 988 kg/m3 and
  c = 4181 J/(kg K) are water at 50 °C, so k = rho * c / 3600 = 1147.5 W per m3/h and K;
  EN 1434 lets k vary with temperature by about 2 % over 20-90 °C, which this ignores).
* :class:`Integral` ``start + (1 / per_s) * integral_0^t of(s) ds``: energy in Wh from power
  in W (per_s = 3600), volume in m3 from flow in m3/h (per_s = 3600); exact, from the
  integrand's Fourier series.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from simulator.meters.harmonic import Harmonic

DAY = 86400.0


class Profile(Protocol):
    def at(self, t: float, clock: datetime, rng: random.Random) -> Any: ...

    def harmonic(self) -> Harmonic | None: ...


@dataclass(frozen=True)
class Counter:
    """Monotone counter: ``start + rate * t`` with a daily swing of relative size ``swing``.

    value(t) = start + r*t/3600 + r*swing*(DAY/3600)/(2*pi) * (1 - cos(2*pi*t/DAY)); the
    derivative r*(1 + swing*sin(...)) stays >= 0 for swing <= 1, so the counter never goes
    down. ``rate_per_h`` in the record's family unit per hour.
    """

    start: float
    rate_per_h: float
    swing: float = 0.6

    def at(
        self, t: float, clock: datetime | None = None, rng: random.Random | None = None
    ) -> float:
        if t < 0:
            return max(0.0, self.start + self.rate_per_h * t / 3600.0)
        w = 2 * math.pi / DAY
        base = self.rate_per_h * t / 3600.0
        swing = (
            self.rate_per_h * self.swing * (DAY / 3600.0) / (2 * math.pi) * (1 - math.cos(w * t))
        )
        return self.start + base + swing

    def harmonic(self) -> None:
        return None


@dataclass(frozen=True)
class Wave:
    """``mean + amplitude * sin(2*pi*(t/period_s) + phase)`` plus uniform noise in +-``noise``."""

    mean: float
    amplitude: float = 0.0
    period_s: float = DAY
    phase: float = 0.0
    noise: float = 0.0

    def at(
        self, t: float, clock: datetime | None = None, rng: random.Random | None = None
    ) -> float:
        v = self.mean + self.amplitude * math.sin(2 * math.pi * t / self.period_s + self.phase)
        if self.noise and rng is not None:
            v += rng.uniform(-self.noise, self.noise)
        return v

    def harmonic(self) -> Harmonic | None:
        if self.noise:
            return None
        return Harmonic.sine(self.mean, self.amplitude, self.phase, self.period_s)


@dataclass(frozen=True)
class Constant:
    value: Any

    def at(self, t: float, clock: datetime | None = None, rng: random.Random | None = None) -> Any:
        return self.value

    def harmonic(self) -> Harmonic | None:
        if isinstance(self.value, bool) or not isinstance(self.value, int | float):
            return None
        return Harmonic.constant(self.value, DAY)


@dataclass(frozen=True)
class ClockValue:
    """The simulated calendar time, truncated to the minute (a CP32 date/time has no seconds)."""

    def at(self, t: float, clock: datetime, rng: random.Random | None = None) -> datetime:
        return clock.replace(second=0, microsecond=0, tzinfo=None)

    def harmonic(self) -> None:
        return None


def _series(p: Any, role: str) -> Harmonic:
    h = p.harmonic()
    if h is None:
        raise ValueError(f"{role} must be a noise-free wave, constant or derived from them")
    return h


@dataclass(frozen=True)
class Difference:
    """``a - b`` (e.g. flow temperature - return temperature = temperature difference, K)."""

    a: Any
    b: Any

    def at(self, t: float, clock: datetime | None = None, rng: random.Random | None = None):
        return self.a.at(t, clock, rng) - self.b.at(t, clock, rng)

    def harmonic(self) -> Harmonic:
        return _series(self.a, "a").plus(_series(self.b, "b").scaled(-1.0))


#: Water at 50 °C: density (kg/m3) and specific heat capacity (J/(kg K)).
RHO_WATER_50C = 988.0
C_WATER_50C = 4181.0


@dataclass(frozen=True)
class HeatPower:
    """Thermal power (W) = rho * c * Q * dT / 3600, Q in m3/h, dT in K (see module doc)."""

    flow: Any
    temperature_difference: Any
    rho_kg_m3: float = RHO_WATER_50C
    c_j_kgk: float = C_WATER_50C

    @property
    def k(self) -> float:
        """W per (m3/h * K)."""
        return self.rho_kg_m3 * self.c_j_kgk / 3600.0

    def at(self, t: float, clock: datetime | None = None, rng: random.Random | None = None):
        q = self.flow.at(t, clock, rng)
        dt = self.temperature_difference.at(t, clock, rng)
        return self.k * q * dt

    def harmonic(self) -> Harmonic:
        q = _series(self.flow, "flow")
        return q.times(_series(self.temperature_difference, "temperature_difference")).scaled(
            self.k
        )


@dataclass(frozen=True)
class Integral:
    """``start + integral_0^t of(s) ds / per_s``; the integrand must have a harmonic series.

    Energy (Wh) of power (W) and volume (m3) of flow (m3/h) both use ``per_s = 3600``.
    Never below 0 (a register does not go negative; only reachable for t < 0, history).
    """

    start: float
    of: Any
    per_s: float = 3600.0
    _series: Harmonic = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_series", _series(self.of, "the integrand"))

    def at(self, t: float, clock: datetime | None = None, rng: random.Random | None = None):
        return max(0.0, self.start + self._series.integral(t) / self.per_s)

    def harmonic(self) -> None:
        return None  # grows without bound: not periodic
