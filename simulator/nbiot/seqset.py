"""A set of readout sequence numbers kept as sorted runs of consecutive integers.

A module's ledger (which readouts reached the server, which it dropped by age) grows by one
integer per readout: a Python ``set`` of a year's hourly readouts of 2,000 modules holds
17.5 M ints (about a gigabyte). Deliveries come in telegrams of consecutive sequence numbers, so
the same set is a handful of runs ``[lo, hi)``: memory follows the number of gaps, not of
readouts. Membership, size and iteration answer as the ``set`` did
(tests/test_nbiot_seqset.py checks this over random delivery orders).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator


class SeqSet:
    """Integers held as disjoint, non-touching half-open runs ``[lo, hi)`` in ascending order.

    ``add``, ``update`` and ``|=`` insert; ``in``, ``len`` and iteration (ascending) read.
    """

    __slots__ = ("_los", "_his", "_n")

    def __init__(self, items: Iterable[int] = ()) -> None:
        self._los: list[int] = []
        self._his: list[int] = []
        self._n = 0
        self.update(items)

    def __contains__(self, x: object) -> bool:
        i = bisect.bisect_right(self._los, x) - 1  # type: ignore[arg-type]
        return i >= 0 and x < self._his[i]  # type: ignore[operator]

    def __len__(self) -> int:
        return self._n

    def __iter__(self) -> Iterator[int]:
        for lo, hi in zip(self._los, self._his, strict=True):
            yield from range(lo, hi)

    def __ior__(self, items: Iterable[int]) -> SeqSet:
        self.update(items)
        return self

    def runs(self) -> int:
        """Runs held (the memory in use is proportional to it)."""
        return len(self._los)

    def count_in(self, lo: int, hi: int) -> int:
        """How many of the integers ``lo <= x < hi`` are held."""
        los, his = self._los, self._his
        i = bisect.bisect_right(his, lo)  # first run ending after lo
        j = bisect.bisect_left(los, hi)  # runs i..j-1 start before hi
        return sum(max(0, min(his[k], hi) - max(los[k], lo)) for k in range(i, j))

    def count_not_in(self, other: SeqSet) -> int:
        """``len(self - other)``: how many held here are not held in ``other``."""
        return self._n - sum(
            other.count_in(lo, hi) for lo, hi in zip(self._los, self._his, strict=True)
        )

    def add(self, x: int) -> None:
        self.add_run(x, x + 1)

    def update(self, items: Iterable[int]) -> None:
        """Insert ``items`` (any iterable of ints, duplicates allowed)."""
        distinct = items if isinstance(items, set | frozenset) else set(items)
        if not distinct:
            return
        lo, hi = min(distinct), max(distinct) + 1
        if hi - lo == len(distinct):  # the usual telegram: one run
            self.add_run(lo, hi)
            return
        xs = sorted(distinct)
        lo = prev = xs[0]
        for x in xs[1:]:
            if x != prev + 1:
                self.add_run(lo, prev + 1)
                lo = x
            prev = x
        self.add_run(lo, prev + 1)

    def add_run(self, lo: int, hi: int) -> None:
        """Insert the integers ``lo <= x < hi`` (nothing when ``hi <= lo``)."""
        if hi <= lo:
            return
        los, his = self._los, self._his
        if not his or lo > his[-1]:  # after every run
            los.append(lo)
            his.append(hi)
            self._n += hi - lo
            return
        if lo == his[-1]:  # the next telegram in order: the last run grows
            his[-1] = hi
            self._n += hi - lo
            return
        if los[-1] <= lo and hi <= his[-1]:  # held already (a duplicate delivery): no change
            return
        i = bisect.bisect_left(his, lo)  # first run ending at or after lo (touching counts)
        j = bisect.bisect_right(los, hi)  # runs i..j-1 overlap or touch [lo, hi)
        if i == j:
            los.insert(i, lo)
            his.insert(i, hi)
            self._n += hi - lo
            return
        held = sum(max(0, min(his[k], hi) - max(los[k], lo)) for k in range(i, j))
        new_lo, new_hi = min(lo, los[i]), max(hi, his[j - 1])
        los[i:j] = [new_lo]
        his[i:j] = [new_hi]
        self._n += hi - lo - held
