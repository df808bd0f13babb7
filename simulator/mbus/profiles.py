"""Value profiles: what a simulated meter measures, as functions of simulated time.

A slave's data records are :class:`RecordSpec` items: a DIF/VIF coding plus a profile that
gives the value (in the unit of the VIF family, e.g. Wh for VIF 06, m3 for VIF 13) at world
time ``t``. Profiles never read the wall clock; noise comes from the slave's own stream.

* :class:`Counter`: a monotone counter (energy, volume) that grows ``rate_per_h`` per hour on
  average, with a daily usage swing (more by day than by night); never decreases.
* :class:`Wave`: a daily sine around ``mean`` (flow/return temperature, power, flow) plus
  optional uniform noise.
* :class:`Constant`: a fixed value (fabrication number, error flags = 0).
* :class:`ClockValue`: the calendar time of the simulated clock (VIF 6D date/time record).

:data:`TEMPLATES` maps a medium name (``heat``, ``water``, ``electricity``, ``gas``,
``cooling``) to a builder of its record list and its medium code (PROTOCOL.md §4.6).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from simulator.mbus.records import DataRecord

DAY = 86400.0


class Profile(Protocol):
    def at(self, t: float, clock: datetime, rng: random.Random) -> Any: ...


@dataclass(frozen=True)
class Counter:
    """Monotone counter: ``start + rate * t`` with a daily swing of relative size ``swing``.

    value(t) = start + r*t/3600 + r*swing*(DAY/3600)/(2*pi) * (1 - cos(2*pi*t/DAY)) shifted so
    the peak use is in the afternoon; the derivative r*(1 + swing*sin(...)) stays >= 0 for
    swing <= 1, so the counter never goes down. Units: those of the record's VIF family.
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


@dataclass(frozen=True)
class Wave:
    """``mean + amplitude * sin(2*pi*(t/period) + phase)`` plus uniform noise in +-``noise``."""

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


@dataclass(frozen=True)
class Constant:
    value: Any

    def at(self, t: float, clock: datetime | None = None, rng: random.Random | None = None) -> Any:
        return self.value


@dataclass(frozen=True)
class ClockValue:
    """The simulated calendar time, truncated to the minute (a CP32 date/time has no seconds)."""

    def at(self, t: float, clock: datetime, rng: random.Random | None = None) -> datetime:
        return clock.replace(second=0, microsecond=0, tzinfo=None)


@dataclass(frozen=True)
class RecordSpec:
    """One data record of a simulated meter.

    ``vif``/``vife``/``data_field`` are the EN 13757-3 coding (PROTOCOL.md §4.4-4.5);
    ``scale`` is the VIF's resolution in the family unit (e.g. 1000 Wh for VIF 06, 0.001 m3
    for VIF 13) so values are quantised the way a meter's register is; ``age_s`` makes a
    historical value (storage number > 0): the profile is taken at ``t - age_s``;
    ``telegram`` is the index of the telegram it belongs to in a multi-telegram meter.
    """

    quantity: str
    vif: int
    data_field: int
    profile: Any
    scale: float = 1.0
    vife: tuple[int, ...] = ()
    storage: int = 0
    tariff: int = 0
    function: str = "instantaneous"
    age_s: float = 0.0
    telegram: int = 0

    def value(self, t: float, clock: datetime, rng: random.Random) -> Any:
        v = self.profile.at(t - self.age_s, clock, rng)
        if isinstance(v, float | int) and not isinstance(v, bool) and self.data_field != 0x5:
            return quantise(v, self.scale)
        return v

    def build(self, t: float, clock: datetime, rng: random.Random) -> DataRecord:
        return DataRecord.from_value(
            self.vif,
            self.value(t, clock, rng),
            data_field=self.data_field,
            vife=self.vife,
            function=self.function,
            storage=self.storage,
            tariff=self.tariff,
        )


def quantise(value: float, scale: float) -> int | float:
    """Truncate ``value`` to a whole number of ``scale`` steps (a register counts whole units)."""
    steps = math.floor(value / scale + 1e-9)
    if scale >= 1:
        return int(steps * round(scale))
    digits = max(0, -math.floor(math.log10(scale)))
    return round(steps * scale, digits)


@dataclass
class Template:
    """A medium's records: ``medium`` code (PROTOCOL.md §4.6) and a record-list builder
    ``build(rng, telegrams) -> list[RecordSpec]``."""

    medium: int
    build: Callable[[random.Random, int], list[RecordSpec]]
    description: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


MONTH = 30 * DAY


def _history(spec: RecordSpec, telegrams: int, per_telegram: int) -> list[RecordSpec]:
    """Monthly historical values of ``spec`` (storage 1, 2, ...) for telegrams 1..n-1."""
    out = []
    storage = 1
    for tg in range(1, telegrams):
        for _ in range(per_telegram):
            out.append(
                RecordSpec(
                    spec.quantity,
                    spec.vif,
                    spec.data_field,
                    spec.profile,
                    spec.scale,
                    spec.vife,
                    storage=storage,
                    age_s=storage * MONTH,
                    telegram=tg,
                )
            )
            storage += 1
    return out


def heat_records(rng: random.Random, telegrams: int = 1) -> list[RecordSpec]:
    """Heat meter: energy (kWh), volume (0.01 m3), power (W), flow (l/h), flow/return
    temperature (0.1 C), temperature difference (0.01 K), date/time, error flags."""
    energy = RecordSpec(
        "energy", 0x06, 0x4, Counter(rng.uniform(1e6, 5e7), rng.uniform(500, 3000)), scale=1000
    )
    volume = RecordSpec(
        "volume", 0x14, 0x4, Counter(rng.uniform(10, 500), rng.uniform(0.01, 0.08)), scale=0.01
    )
    recs = [
        energy,
        volume,
        RecordSpec("power", 0x2B, 0x2, Wave(rng.uniform(800, 2500), 600, noise=50), scale=1),
        RecordSpec(
            "volume_flow", 0x3B, 0x2, Wave(rng.uniform(0.5, 2.5), 0.3, noise=0.05), scale=0.001
        ),
        RecordSpec(
            "flow_temperature", 0x5A, 0x2, Wave(rng.uniform(60, 75), 4, noise=0.3), scale=0.1
        ),
        RecordSpec(
            "return_temperature", 0x5E, 0x2, Wave(rng.uniform(35, 45), 3, noise=0.3), scale=0.1
        ),
        RecordSpec("temperature_difference", 0x61, 0x2, Wave(25, 2, noise=0.2), scale=0.01),
        RecordSpec("date_time", 0x6D, 0x4, ClockValue()),
        RecordSpec("error_flags", 0xFD, 0x1, Constant(0), vife=(0x17,)),
    ]
    if telegrams > 1:
        recs += _history(energy, telegrams, 4) + _history(volume, telegrams, 0)
    return recs


def water_records(rng: random.Random, telegrams: int = 1) -> list[RecordSpec]:
    """Water meter: volume (litre), flow (l/h), date/time, error flags."""
    volume = RecordSpec(
        "volume", 0x13, 0x4, Counter(rng.uniform(5, 900), rng.uniform(0.005, 0.03)), scale=0.001
    )
    recs = [
        volume,
        RecordSpec(
            "volume_flow", 0x3B, 0x2, Wave(rng.uniform(0.01, 0.03), 0.008, noise=0.001), scale=0.001
        ),
        RecordSpec("date_time", 0x6D, 0x4, ClockValue()),
        RecordSpec("error_flags", 0xFD, 0x1, Constant(0), vife=(0x17,)),
    ]
    if telegrams > 1:
        recs += _history(volume, telegrams, 6)
    return recs


def electricity_records(rng: random.Random, telegrams: int = 1) -> list[RecordSpec]:
    """Electricity meter: energy (Wh, 48-bit), power (W), date/time."""
    energy = RecordSpec("energy", 0x03, 0x6, Counter(rng.uniform(1e6, 9e7), rng.uniform(200, 4000)))
    recs = [
        energy,
        RecordSpec("power", 0x2B, 0x4, Wave(rng.uniform(300, 3000), 400, noise=30)),
        RecordSpec("date_time", 0x6D, 0x4, ClockValue()),
    ]
    if telegrams > 1:
        recs += _history(energy, telegrams, 6)
    return recs


def gas_records(rng: random.Random, telegrams: int = 1) -> list[RecordSpec]:
    """Gas meter: volume (0.01 m3, 8-digit BCD), date/time."""
    volume = RecordSpec(
        "volume", 0x14, 0xC, Counter(rng.uniform(100, 9000), rng.uniform(0.05, 0.4)), scale=0.01
    )
    recs = [volume, RecordSpec("date_time", 0x6D, 0x4, ClockValue())]
    if telegrams > 1:
        recs += _history(volume, telegrams, 6)
    return recs


TEMPLATES: dict[str, Template] = {
    "heat": Template(0x04, heat_records, "heat meter, volume at return (outlet)"),
    "water": Template(0x07, water_records, "water meter"),
    "warm_water": Template(0x06, water_records, "warm water 30-90 C"),
    "cold_water": Template(0x16, water_records, "cold water"),
    "electricity": Template(0x02, electricity_records, "electricity meter"),
    "gas": Template(0x03, gas_records, "gas meter"),
    "cooling": Template(0x0A, heat_records, "cooling meter, volume at outlet"),
}
