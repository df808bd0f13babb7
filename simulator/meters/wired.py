"""Wired slave templates: the shipped meter types with a ``[wired]`` identity.

The meter models are data: one file per type in ``simulator/meters/data/*.toml`` (records,
DIF/VIF coding, value profiles, golden telegrams), loaded by :mod:`simulator.meters`. This
module keeps the names the wired code has always imported:

* :data:`TEMPLATES` maps a template name (``heat``, ``water``, ``warm_water``, ``cold_water``,
  ``electricity``, ``gas``, ``cooling``, ...) to its :class:`~simulator.meters.types.MeterType`
  (``.medium``: the medium code, PROTOCOL.md §4.6; ``.build(rng, telegrams)``: the records).
* :class:`RecordSpec` and the profile classes, from :mod:`simulator.meters`.
"""

from __future__ import annotations

import random

from simulator.mbus.record_spec import RecordSpec, quantise
from simulator.meters.profiles import (
    DAY,
    ClockValue,
    Constant,
    Counter,
    Difference,
    HeatPower,
    Integral,
    Profile,
    Wave,
)
from simulator.meters.types import TypeView

__all__ = [
    "DAY",
    "TEMPLATES",
    "ClockValue",
    "Constant",
    "Counter",
    "Difference",
    "HeatPower",
    "Integral",
    "Profile",
    "RecordSpec",
    "Wave",
    "heat_records",
    "quantise",
    "water_records",
]

TEMPLATES = TypeView("wired")


def heat_records(rng: random.Random, telegrams: int = 1) -> list[RecordSpec]:
    """The ``heat`` template's records (energy, volume, power, flow, temperatures ...)."""
    return TEMPLATES["heat"].build(rng, telegrams)


def water_records(rng: random.Random, telegrams: int = 1) -> list[RecordSpec]:
    """The ``water`` template's records (volume, flow, date/time, error flags)."""
    return TEMPLATES["water"].build(rng, telegrams)
