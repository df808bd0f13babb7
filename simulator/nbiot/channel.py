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
each datagram starting when the one before it ends) are kept as one block, and the blocks are
kept in chunks of at most ``2 x CHUNK`` that keep a bound on their largest inner gap (never
below it: a booking only shrinks inner gaps, so the bound is made exact only where a search
walked a whole chunk for nothing), so finding a gap skips a busy hour in a few steps instead
of walking thousands of bookings (issue 17's 50,000-module cell). The first gap is a property
of the booked time only, so this gives the same starts as one interval per booking; each block
keeps its bookings' ends so that forgetting old bookings removes exactly what it removed before
(``tests/test_nbiot_channel.py`` checks both against the one-interval-per-booking calendar).
"""

from __future__ import annotations

import bisect
import operator
from array import array
from dataclasses import dataclass, field

import numpy as np

#: Blocks per chunk (split at twice this): the gap search walks at most one chunk's blocks
#: one by one, then skips whole chunks whose inner gaps are all too short.
CHUNK = 64


class _Chunk:
    """Consecutive blocks: their starts, ends, the ends of each block's bookings, and a
    bound on the largest gap between two of its blocks (-inf with one block): at least that
    gap, exact when the chunk is built, split or trimmed, or after a search walked it."""

    __slots__ = ("starts", "ends", "pieces", "maxgap")

    def __init__(self, starts: list[float], ends: list[float], pieces: list[list[float]]):
        self.starts, self.ends, self.pieces = starts, ends, pieces
        self.maxgap = float("-inf")
        self.update()

    def update(self) -> None:
        s, e = self.starts, self.ends
        self.maxgap = max(map(operator.sub, s[1:], e[:-1]), default=float("-inf"))


def _gap(ch: _Chunk, j: int) -> float:
    """The gap after block ``j`` of ``ch`` inside it (-inf after its last block)."""
    return ch.starts[j + 1] - ch.ends[j] if j + 1 < len(ch.starts) else float("-inf")


@dataclass
class DataChannel:
    """Booked intervals of one direction's data channel; ``name`` for reports."""

    name: str
    busy_s: float = 0.0  # booked air time
    bookings: int = 0
    # Queueing delays (s): most bookings find the carrier free, so zeros are only counted and
    # the others kept at 8 bytes each (a year of a 2,000-module fleet books ~5.7 M per channel).
    _zero_waits: int = 0
    _queued: array = field(default_factory=lambda: array("d"))
    _chunks: list[_Chunk] = field(default_factory=list)
    _firsts: list[float] = field(default_factory=list)  # each chunk's first start
    _latest: float = 0.0

    @property
    def waits(self) -> np.ndarray:
        """Queueing delay (s) of every booking, zeros first (percentiles, mean and max do not
        depend on the order)."""
        return np.concatenate((np.zeros(self._zero_waits), np.array(self._queued, dtype=float)))

    def blocks(self) -> int:
        """Blocks of touching bookings held now."""
        return sum(len(c.starts) for c in self._chunks)

    def book(self, t: float, air_s: float) -> float:
        """Book ``air_s`` (> 0) carrier-seconds from the first free gap at or after ``t``;
        returns the start (s). Bookings never overlap, so starts and ends are both sorted."""
        start = self._place(t, air_s)
        self.busy_s += air_s
        self.bookings += 1
        if start == t:
            self._zero_waits += 1
        else:
            self._queued.append(start - t)
        if t > self._latest + 3600.0:
            self._forget(t - 3600.0)
        if t > self._latest:
            self._latest = t
        return start

    def _place(self, t: float, air_s: float) -> float:
        chunks = self._chunks
        if not chunks:
            chunks.append(_Chunk([t], [t + air_s], [[t + air_s]]))
            self._firsts.append(t)
            return t
        last = chunks[-1]
        if t >= last.ends[-1]:  # after every booking (a third of them): what the search finds
            self._insert(len(chunks) - 1, len(last.starts), t, t + air_s)
            return t
        c = max(0, bisect.bisect_right(self._firsts, t) - 1)
        ch = chunks[c]
        i = bisect.bisect_right(ch.starts, t)
        start = t
        if i > 0 and ch.ends[i - 1] > start:
            start = ch.ends[i - 1]
        while True:  # the first gap: one block at a time in this chunk, chunks at a time after
            starts = ch.starts
            n = len(starts)
            walk = i == 0 and c > 0 and n and starts[0] < start + air_s
            if walk and ch.maxgap < air_s:
                start = max(start, ch.ends[-1])  # every inner gap is too short
                i = n
                walk = False
            while i < n and starts[i] < start + air_s:
                start = max(start, ch.ends[i])
                i += 1
            if i < n or c + 1 == len(chunks):
                break
            if walk:  # walked all of it for nothing: make its bound exact, to skip it next time
                ch.update()
            c, i = c + 1, 0
            ch = chunks[c]
        self._insert(c, i, start, start + air_s)
        return start

    def _insert(self, c: int, i: int, start: float, end: float) -> None:
        """Book [start, end) before block ``i`` of chunk ``c`` (after every block: i = len)."""
        chunks = self._chunks
        ch = chunks[c]
        starts, ends = ch.starts, ch.ends
        n = len(starts)
        # The usual bookings, without looking for neighbours in other chunks: each branch
        # does what the general code below does for it (same blocks, gaps and chunks).
        if 0 < i < n and starts[i] != end:  # inside a gap of this chunk, not touching the next
            if ends[i - 1] != start:  # a new block
                starts.insert(i, start)
                ends.insert(i, end)
                ch.pieces.insert(i, [end])
                if len(starts) > 2 * CHUNK:
                    self._settle(c)
            else:  # extends the block before
                ends[i - 1] = end
                ch.pieces[i - 1].append(end)
            return
        if 0 < i == n and c + 1 == len(chunks):  # after every block
            prev_end = ends[i - 1]
            if prev_end != start:  # a new last block: a new gap at the chunk's edge
                starts.append(start)
                ends.append(end)
                ch.pieces.append([end])
                if start - prev_end > ch.maxgap:
                    ch.maxgap = start - prev_end
                if n + 1 > 2 * CHUNK:
                    self._settle(c)
            else:  # extends the last block
                ends[i - 1] = end
                ch.pieces[i - 1].append(end)  # no gap of the chunk changed
            return
        # the neighbours: the block before (this chunk or the previous) and the one after
        if i > 0:
            pc, pi = c, i - 1
        elif c > 0:
            pc, pi = c - 1, len(chunks[c - 1].starts) - 1
        else:
            pc = pi = -1
        if i < len(ch.starts):
            nc, ni = c, i
        elif c + 1 < len(chunks):
            nc, ni = c + 1, 0
        else:
            nc = ni = -1
        after = pc >= 0 and chunks[pc].ends[pi] == start
        before = nc >= 0 and chunks[nc].starts[ni] == end
        # A booking only shrinks or removes gaps inside a chunk, so ``maxgap`` stays a bound
        # (at least the largest gap), except for a block added at a chunk's edge: a new gap.
        if after and before:  # fills the gap between two blocks exactly: one block
            prev, nxt = chunks[pc], chunks[nc]
            prev.ends[pi] = nxt.ends[ni]
            prev.pieces[pi].append(end)
            prev.pieces[pi] += nxt.pieces[ni]
            del nxt.starts[ni], nxt.ends[ni], nxt.pieces[ni]
            self._settle(nc)
        elif after:
            prev = chunks[pc]
            prev.ends[pi] = end
            prev.pieces[pi].append(end)
        elif before:
            nxt = chunks[nc]
            nxt.starts[ni] = start
            nxt.pieces[ni].insert(0, end)
            self._firsts[nc] = nxt.starts[0]
        else:
            n = len(ch.starts)
            ch.starts.insert(i, start)
            ch.ends.insert(i, end)
            ch.pieces.insert(i, [end])
            if i == 0 or i == n:  # a new gap at the chunk's edge (not a split one)
                ch.maxgap = max(ch.maxgap, _gap(ch, 0 if i == 0 else n - 1))
            self._settle(c)

    def _settle(self, c: int) -> None:
        """Chunk ``c`` changed size: drop it when empty, split it when too big."""
        ch = self._chunks[c]
        if not ch.starts:
            del self._chunks[c], self._firsts[c]
            return
        self._firsts[c] = ch.starts[0]
        if len(ch.starts) > 2 * CHUNK:
            half = len(ch.starts) // 2
            tail = _Chunk(ch.starts[half:], ch.ends[half:], ch.pieces[half:])
            del ch.starts[half:], ch.ends[half:], ch.pieces[half:]
            ch.update()
            self._chunks.insert(c + 1, tail)
            self._firsts.insert(c + 1, tail.starts[0])

    def _forget(self, before: float) -> None:
        """Drop the bookings that ended before ``before`` (s); a block that straddles it
        keeps its later bookings and starts where the last dropped one ended (they touch)."""
        chunks = self._chunks
        while chunks and chunks[0].ends[-1] < before:
            del chunks[0], self._firsts[0]
        if not chunks:
            return
        ch = chunks[0]
        k = bisect.bisect_left(ch.ends, before)
        del ch.starts[:k], ch.ends[:k], ch.pieces[:k]
        block = ch.pieces[0]
        j = bisect.bisect_left(block, before)
        if j:
            ch.starts[0] = block[j - 1]
            del block[:j]
        ch.update()
        self._firsts[0] = ch.starts[0]

    def utilisation(self, duration_s: float) -> float:
        """Booked air time over ``duration_s`` (0..1; above 1 when bookings run past it)."""
        return self.busy_s / duration_s if duration_s > 0 else 0.0
