"""Airtime and duty-cycle accounting against the 868 MHz SRD sub-band limits.

ERC/REC 70-03 Annex 1 (RADIO-NBIOT.md §6.3, figures tagged [R] there):

=============  ==================  ===========  =======================
sub-band       frequencies (MHz)   duty cycle   wM-Bus modes in it
=============  ==================  ===========  =======================
h1.4           868.0 - 868.6       1 %          S1 (868.30 MHz)
h1.5           868.7 - 869.2       0.1 %        T1, C1 (868.95 MHz)
=============  ==================  ===========  =======================

The duty cycle is the fraction of an observation period a transmitter is on air; ETSI
EN 300 220 observes over one hour. The bench counts airtime per meter in fixed one-hour bins
of world time (0-3600 s, 3600-7200 s, ...); a bin whose airtime exceeds the limit is a
violation (a trace event ``duty_cycle`` with ``exceeded=True`` in the event model, a count
in the kernel summary).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from simulator.core.numeric import floor_index

#: Observation period of the duty cycle (s).
OBSERVATION_S = 3600.0


@dataclass(frozen=True)
class SubBand:
    """An SRD sub-band: ``name``, frequency range (MHz) and duty-cycle limit (fraction)."""

    name: str
    f_low_mhz: float
    f_high_mhz: float
    duty_cycle: float

    @property
    def airtime_limit_s(self) -> float:
        """Allowed airtime (s) per observation hour."""
        return self.duty_cycle * OBSERVATION_S


SUB_BANDS = (
    SubBand("h1.4", 868.0, 868.6, 0.01),
    SubBand("h1.5", 868.7, 869.2, 0.001),
)

#: Centre frequency (MHz) per meter-to-other mode (PROTOCOL.md §5.1).
MODE_FREQUENCY_MHZ = {"S1": 868.30, "T1": 868.95, "C1A": 868.95, "C1B": 868.95}


def sub_band(mode: str) -> SubBand:
    """The sub-band a mode transmits in; ``KeyError`` for an unknown mode."""
    f = MODE_FREQUENCY_MHZ[mode]
    for band in SUB_BANDS:
        if band.f_low_mhz <= f <= band.f_high_mhz:
            return band
    raise KeyError(f"mode {mode} at {f} MHz is outside the modelled sub-bands")


@dataclass
class DutyCycleAccount:
    """Airtime of one transmitter per observation hour (event model use).

    :meth:`add` returns ``True`` the first time a bin goes over the limit, so the caller
    records exactly one warning per violating hour.
    """

    band: SubBand
    airtime_s: dict[int, float] = field(default_factory=dict)

    def add(self, t: float, airtime_s: float) -> bool:
        """Book ``airtime_s`` (s) at world time ``t`` (s); True when this tips the hour over."""
        hour = int(t // OBSERVATION_S)
        before = self.airtime_s.get(hour, 0.0)
        after = before + airtime_s
        self.airtime_s[hour] = after
        limit = self.band.airtime_limit_s
        return before <= limit < after

    def worst(self) -> float:
        """Highest duty cycle (fraction) over all hours booked so far."""
        return max(self.airtime_s.values(), default=0.0) / OBSERVATION_S


def hourly_duty_cycle(
    meter: np.ndarray, t_start: np.ndarray, airtime_s: np.ndarray, n_meters: int, hours: int
) -> np.ndarray:
    """Duty cycle (fraction) per meter and hour as an ``(n_meters, hours)`` array (kernel use).

    Each transmission is booked in the hour it starts in, as :class:`DutyCycleAccount` does.
    """
    hour = np.minimum(floor_index(np.asarray(t_start, dtype=float), OBSERVATION_S), hours - 1)
    flat = np.bincount(
        np.asarray(meter, dtype=np.int64) * hours + hour,
        weights=np.asarray(airtime_s, dtype=float),
        minlength=n_meters * hours,
    )
    return flat.reshape(n_meters, hours) / OBSERVATION_S
