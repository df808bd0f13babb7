"""The cell's shared data channels (NPUSCH up, NPDSCH down): air time as a booked resource.

Model (bench, documented in docs/nbiot.md "Shared capacity"):

* One NB-IoT carrier per direction. A datagram occupies the channel for its air time at the
  module's CE level (:class:`.network.Radio`: peak rate / repetitions), so a CE2 module with
  32 repetitions uses 32 times the channel time of a CE0 module for the same bytes: capacity
  per coverage level falls with the repetitions, as in TR 45.820's capacity evaluation.
* A datagram uses a share of the carrier for its air time: NPUSCH allocates 1, 3, 6 or 12
  subcarriers (TS 36.211 §10.1.2.3 [R]); the bench gives CE0 all 12, CE1 3 and CE2 1
  (``ul_carrier_share``), so a slow CE2 transmission leaves most of the carrier to others.
  NPDSCH always uses the whole carrier. The calendar books the carrier-seconds a datagram
  needs (air time x share) first come, first served: the wait is the time until the work
  booked before it has been served (a fluid approximation of the eNB scheduler).
* A datagram that finds the channel booked waits for the first gap long enough (first come,
  first served in booking order, no pre-emption). The wait is the queueing delay; the booked
  time over the run is the utilisation.

Modules compute their timelines ahead of the simulation clock (see :mod:`.network`), so a
booking can fall between earlier bookings: the calendar keeps the booked intervals sorted and
forgets intervals an hour behind the latest request to keep memory flat.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field


@dataclass
class DataChannel:
    """Booked intervals of one direction's data channel; ``name`` for reports."""

    name: str
    busy_s: float = 0.0  # booked air time
    waits: list[float] = field(default_factory=list)  # queueing delay per booking (s)
    _starts: list[float] = field(default_factory=list)
    _ends: list[float] = field(default_factory=list)
    _latest: float = 0.0

    def book(self, t: float, air_s: float) -> float:
        """Book ``air_s`` carrier-seconds from the first free gap at or after ``t``; returns
        the start (s). Bookings never overlap, so starts and ends are both sorted."""
        i = bisect.bisect_right(self._starts, t)
        start = t
        if i > 0 and self._ends[i - 1] > start:
            start = self._ends[i - 1]
        while i < len(self._starts) and self._starts[i] < start + air_s:
            start = max(start, self._ends[i])
            i += 1
        self._starts.insert(i, start)
        self._ends.insert(i, start + air_s)
        self.busy_s += air_s
        self.waits.append(start - t)
        if t > self._latest + 3600.0:  # forget what ended an hour before this request
            k = bisect.bisect_left(self._ends, t - 3600.0)
            del self._starts[:k], self._ends[:k]
        self._latest = max(self._latest, t)
        return start

    def utilisation(self, duration_s: float) -> float:
        """Booked air time over ``duration_s`` (0..1; above 1 when bookings run past it)."""
        return self.busy_s / duration_s if duration_s > 0 else 0.0
