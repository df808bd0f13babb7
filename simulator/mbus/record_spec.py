"""One data record of a simulated meter: its EN 13757-3 coding and its value profile."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property, lru_cache
from typing import Any

from simulator.mbus.errors import RecordError
from simulator.mbus.records import DataRecord, RecordEncoder


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
    subunit: int = 0

    def value(self, t: float, clock: datetime, rng: random.Random) -> Any:
        v = self.profile.at(t - self.age_s, clock, rng)
        if isinstance(v, float | int) and not isinstance(v, bool) and self.data_field != 0x5:
            return quantise(v, self.scale)
        return v

    def build(self, t: float, clock: datetime, rng: random.Random) -> DataRecord:
        """The record at world time ``t`` (s); ``RecordError`` if the value does not fit."""
        return DataRecord.from_value(self.vif, self.value(t, clock, rng), **self._coding)

    def wire(self, t: float, clock: datetime, rng: random.Random) -> bytes:
        """``build(t, clock, rng).to_bytes()``, from the coding's precomputed DIB/VIB (the
        same bytes and errors, the same random draws; a slave's RSP_UD hot path)."""
        enc = self._encoder
        if enc is None:
            return self.build(t, clock, rng).to_bytes()
        return enc.wire(self.value(t, clock, rng))

    @cached_property
    def _coding(self) -> dict[str, Any]:
        """How the record is coded, besides its VIF (what build() and the encoder share)."""
        return {
            "data_field": self.data_field,
            "vife": self.vife,
            "function": self.function,
            "storage": self.storage,
            "tariff": self.tariff,
            "subunit": self.subunit,
        }

    @cached_property
    def _encoder(self) -> RecordEncoder | None:
        try:
            return RecordEncoder(self.vif, **self._coding)
        except RecordError:
            return None  # variable length or invalid: build() raises or handles it


def quantise(value: float, scale: float) -> int | float:
    """Truncate ``value`` to a whole number of ``scale`` steps (a register counts whole units)."""
    steps = math.floor(value / scale + 1e-9)
    if scale >= 1:
        return int(steps * round(scale))
    return round(steps * scale, _digits(scale))


@lru_cache(maxsize=64)
def _digits(scale: float) -> int:
    # Decimal places of a resolution below 1 (0.01 -> 2); scales are few per run.
    return max(0, -math.floor(math.log10(scale)))
