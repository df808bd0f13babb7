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
booking can fall between earlier bookings: the calendar keeps the booked time sorted and
forgets bookings that ended an hour before a request that comes more than an hour after every
earlier one, to keep memory flat.

Bookings that touch (one ends exactly where the next starts: what a saturated carrier makes,
each datagram starting when the one before it ends) are kept as one block, so finding a gap
skips a busy hour in one step instead of walking thousands of bookings (issue 17's 50,000-module
cell). The first gap is a property of the booked time only, so blocks give the same starts as
one interval per booking; each block keeps its bookings' ends so that forgetting old bookings
removes exactly what it removed before (``tests/test_nbiot_channel.py`` checks both against
the one-interval-per-booking calendar).
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
    # blocks of touching bookings: start, end and the ends of the bookings in it (ascending)
    _starts: list[float] = field(default_factory=list)
    _ends: list[float] = field(default_factory=list)
    _pieces: list[list[float]] = field(default_factory=list)
    _latest: float = 0.0

    def book(self, t: float, air_s: float) -> float:
        """Book ``air_s`` (> 0) carrier-seconds from the first free gap at or after ``t``;
        returns the start (s). Bookings never overlap, so starts and ends are both sorted."""
        starts, ends, pieces = self._starts, self._ends, self._pieces
        i = bisect.bisect_right(starts, t)
        start = t
        if i > 0 and ends[i - 1] > start:
            start = ends[i - 1]
        n = len(starts)
        while i < n and starts[i] < start + air_s:
            start = max(start, ends[i])
            i += 1
        end = start + air_s
        after = i > 0 and ends[i - 1] == start  # touches the block before
        before = i < n and starts[i] == end  # touches the block after
        if after and before:  # fills the gap between two blocks exactly: one block
            ends[i - 1] = ends[i]
            pieces[i - 1].append(end)
            pieces[i - 1] += pieces[i]
            del starts[i], ends[i], pieces[i]
        elif after:
            ends[i - 1] = end
            pieces[i - 1].append(end)
        elif before:
            starts[i] = start
            pieces[i].insert(0, end)
        else:
            starts.insert(i, start)
            ends.insert(i, end)
            pieces.insert(i, [end])
        self.busy_s += air_s
        self.waits.append(start - t)
        if t > self._latest + 3600.0:
            self._forget(t - 3600.0)
        self._latest = max(self._latest, t)
        return start

    def _forget(self, before: float) -> None:
        """Drop the bookings that ended before ``before`` (s); a block that straddles it
        keeps its later bookings and starts where the last dropped one ended (they touch)."""
        k = bisect.bisect_left(self._ends, before)
        del self._starts[:k], self._ends[:k], self._pieces[:k]
        if self._pieces:
            block = self._pieces[0]
            j = bisect.bisect_left(block, before)
            if j:
                self._starts[0] = block[j - 1]
                del block[:j]

    def utilisation(self, duration_s: float) -> float:
        """Booked air time over ``duration_s`` (0..1; above 1 when bookings run past it)."""
        return self.busy_s / duration_s if duration_s > 0 else 0.0
