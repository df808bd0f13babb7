"""Clock-synchronised schedules of the CMi6140 (seed 001 §7.3.2-7.3.3, §7.4).

* Readouts fall on multiples of the readout interval counted from the meter's local midnight
  ("Meter read out is always related to meter's clock at time 00:00:00"): 60 min gives 11:00,
  12:00...; 120 min gives 12:00, 14:00...; an interval that does not divide the day restarts at
  midnight. Intervals longer than a day count from the local epoch day.
* Transmissions are planned at full hours T1 (multiples of the transmit interval from local
  midnight) and sent at a uniformly random time in [T1 + T_offset, T1 + T_offset + T_delay]
  (seed 001 §7.3.3), so a population does not transmit at once.

Functions take and return the meter's **local standard time** as naive datetimes.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

_DAY = timedelta(days=1)
_EPOCH = datetime(1970, 1, 1)


def next_slot(local: datetime, interval_min: int) -> datetime:
    """The first slot strictly after ``local`` for an interval of ``interval_min`` minutes."""
    if interval_min <= 0:
        raise ValueError(f"interval must be positive (got {interval_min} min)")
    step = timedelta(minutes=interval_min)
    if interval_min > 1440:
        k = (local - _EPOCH) // step + 1
        return _EPOCH + k * step
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    k = (local - midnight) // step + 1
    slot = midnight + k * step
    return min(slot, midnight + _DAY)


def transmission_time(
    planned: datetime, offset_min: float, delay_min: float, rng: random.Random
) -> datetime:
    """A random send time in [planned + offset, planned + offset + delay] (seed 001 §7.3.3)."""
    return planned + timedelta(minutes=offset_min + rng.uniform(0.0, delay_min))
