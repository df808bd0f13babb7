"""One meter's rows of the CMe3100 value database, stored as columns (issue 15: memory).

A year of 250 hourly meters is 2.2 M readouts. Held as :class:`Readout` objects they took
~310-375 bytes each (the object, a datetime, a float, a tuple and a bytes object). Here a row
is ~95 bytes with a 52-byte telegram (28 bytes and the telegram, plus the arrays' spare room):

- world time (s) and read time (:func:`~.headend.time_key`, integer us) in two 8-byte arrays;
- the telegram bytes in one buffer per meter, with each row's end offset (8 bytes);
- a 4-byte index into a :class:`RowKinds` table of the ``(status, position, primary
  address, status byte, message, telegram count)`` tuples the database has seen: they repeat
  (a few per meter). Rows of several telegrams keep their frame lengths in a dict.

:class:`MeterRows` is a read-only ``Sequence[Readout]``: indexing builds the :class:`Readout`
again, equal to the one stored (same fields, same types). The newest 48-96 rows are also kept
as the stored objects (reports read new rows; the newest keeps ``decoded``, the reader's
cache the next report uses), so a report builds only older rows; a stored row goes into the
columns when it leaves that list, ~48 at a time. Readers that bisect by read time call
:meth:`MeterRows.count_read_through` (a bisect in C over the time keys, no object per probe).
Rows go in time order; the oldest are dropped (:meth:`MeterRows.drop`) and compacted away in
batches, so a meter at its storage limit pays O(1) a row.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from operator import attrgetter
from typing import Any, overload

from simulator.gateways.cme3100.headend import time_key
from simulator.gateways.cme3100.readout import Readout

#: Origin of the stored read-time keys (:func:`~.headend.time_key`).
_EPOCH = datetime(1970, 1, 1)
#: Dropped rows are compacted away once they are this share of the stored ones (memory held
#: by dropped rows <= 1/8; each compaction moves ~8 live rows per dropped one: O(1) a row).
_COMPACT_SHARE = 8
#: ... and at least this many (a small meter's arrays are not moved at every drop).
_COMPACT_MIN = 64
#: The newest rows are also kept as the stored objects, between this many and twice as many
#: (readers read new rows: a daily report of hourly readouts 24 a meter; ~20 kB a meter)
_RECENT = 48
_US = timedelta(microseconds=1)

#: One row's repeated fields: status, position, primary address, status byte, message,
#: telegram count.
Kind = tuple[Any, int | None, int | None, int | None, str, int]


class RowKinds:
    """The distinct :data:`Kind` tuples of one database, each stored once (rows hold an
    index). Keyed with the status's type too: ``"ok"`` and ``ReadoutStatus.OK`` are equal
    but a row gives back the one it was stored with."""

    def __init__(self) -> None:
        self.kinds: list[Kind] = []
        self._index: dict[tuple, int] = {}

    def index(self, kind: Kind) -> int:
        key = (type(kind[0]), *kind)
        i = self._index.get(key)
        if i is None:
            i = self._index[key] = len(self.kinds)
            self.kinds.append(kind)
        return i


class MeterRows(Sequence[Readout]):
    """The rows of ``meter`` in time order (module doc); ``kinds`` is the database's shared
    :class:`RowKinds`. Stored with :meth:`append`, dropped oldest first with :meth:`drop`.

    A stored row is first only an object in the recent list; rows go into the columns
    ~48 at a time (a store touches one list, not six arrays: a long run's caches are cold).
    Physical rows ``[0, P)`` are in the columns, ``[P, P + U)`` (U ``_unpacked``) only in
    the recent list, whose objects are the newest physical rows."""

    __slots__ = (
        "meter", "_kinds", "_at", "_key", "_kind", "_end", "_blob", "_off", "_head", "_base",
        "_split", "_recent", "_memo", "_unpacked", "_ordered",
    )  # fmt: skip

    def __init__(self, meter: str, kinds: RowKinds) -> None:
        self.meter = meter
        self._kinds = kinds
        self._at = array("d")  # world time (s)
        self._key = array("q")  # read time, time_key (us since 1970, naive)
        self._kind = array("I")  # index into kinds
        self._end = array("q")  # end of the row's telegram bytes (absolute offset)
        self._blob = bytearray()  # the telegrams, row after row
        self._off = 0  # absolute offset of _blob[0] (= the start of physical row 0)
        self._head = 0  # physical index of the first row not dropped
        self._base = 0  # rows compacted away (absolute row number of physical row 0)
        self._split: dict[int, tuple[int, ...]] = {}  # absolute row -> frame lengths (2+)
        self._recent: list[Readout] = []  # the newest rows as stored (module doc)
        self._memo: tuple = ((), None, 0)  # the last row's kind, its status type, its index
        self._unpacked = 0  # the newest rows not yet in the columns
        #: read times never went back: the rows are sorted by read time as well as by world
        #: time, so a bisect over columns then recent objects is the bisect over all rows
        self._ordered = True

    # -- writing ------------------------------------------------------------------------------
    def append(self, r: Readout) -> None:
        """Store ``r`` as the newest row (the caller checks the world-time order)."""
        recent = self._recent
        if recent and r.read_at < recent[-1].read_at:
            self._ordered = False
        recent.append(r)
        self._unpacked += 1
        if len(recent) > 2 * _RECENT:
            self._pack()
            del recent[:_RECENT]

    def _pack(self) -> None:
        """Put the unpacked rows into the columns."""
        recent, n_new = self._recent, self._unpacked
        at, key, kinds, end, blob = self._at, self._key, self._kind, self._end, self._blob
        memo, index, off = self._memo, self._kinds.index, self._off
        row = self._base + len(at)  # absolute row number
        for r in recent[len(recent) - n_new :]:
            frames = r.telegrams
            n = len(frames)
            if n == 1:
                blob += frames[0]
            elif n:
                self._split[row] = tuple(len(f) for f in frames)
                for f in frames:
                    blob += f
            at.append(r.at)
            key.append((r.read_at - _EPOCH) // _US)  # time_key: a Readout's time is naive
            kind = (r.status, r.position, r.primary_address, r.status_byte, r.message, n)
            if kind != memo[0] or type(kind[0]) is not memo[1]:  # rows mostly repeat a kind
                memo = (kind, type(kind[0]), index(kind))
            kinds.append(memo[2])
            end.append(off + len(blob))
            row += 1
        self._memo = memo
        self._unpacked = 0

    def drop(self, n: int) -> None:
        """Drop the ``n`` oldest rows (``0 <= n <= len(self)``)."""
        if not 0 <= n <= len(self):
            raise ValueError(f"meter {self.meter}: cannot drop {n} of {len(self)} rows")
        self._head += n
        packed = min(self._head, len(self._at))  # dropped rows that are in the columns
        if packed >= _COMPACT_MIN and packed * _COMPACT_SHARE >= len(self._at) + self._unpacked:
            start = self._end[packed - 1]  # the first kept row's telegrams start here
            del self._at[:packed], self._key[:packed], self._kind[:packed], self._end[:packed]
            del self._blob[: start - self._off]
            self._off = start
            self._base += packed
            self._head -= packed
            if self._split:
                self._split = {k: v for k, v in self._split.items() if k >= self._base}

    # -- reading ------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._at) + self._unpacked - self._head

    @overload
    def __getitem__(self, i: int) -> Readout: ...
    @overload
    def __getitem__(self, i: slice) -> list[Readout]: ...
    def __getitem__(self, i: int | slice) -> Readout | list[Readout]:
        head, n = self._head, len(self)
        if isinstance(i, slice):
            lo, hi, step = i.indices(n)
            recent = self._recent
            j = lo - n + len(recent)  # row lo in recent (the stored objects)
            if step == 1 and j >= 0:
                return recent[j : j + hi - lo] if hi > lo else []
            return [self._row(head + k) for k in range(lo, hi, step)]
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"meter {self.meter}: row {i} of {n}")
        return self._row(head + i)

    def __iter__(self) -> Iterator[Readout]:
        return map(self._row, range(self._head, len(self._at) + self._unpacked))

    def newest(self) -> Readout | None:
        """The newest row as stored (None without rows)."""
        return self._recent[-1] if len(self) else None

    def read_at(self, i: int) -> datetime:
        """Read time of row ``i`` (no :class:`Readout` built)."""
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"meter {self.meter}: row {i} of {n}")
        p = self._head + i % n
        return _EPOCH + self._key[p] * _US if p < len(self._key) else self._row(p).read_at

    def count_read_through(self, t: datetime) -> int:
        """How many rows were read at or before ``t`` (``bisect_right`` by ``read_at``)."""
        if self._unpacked and not self._ordered:
            self._pack()  # unsorted: only the one bisect over all rows gives the same answer
        return self._count(self._key, (t - _EPOCH) // _US, t, _read_at, bisect_right)

    def span(self, since: float | None, until: float | None) -> tuple[int, int]:
        """Row indices ``[lo, hi)`` with ``since <= at <= until`` (world s, either open)."""
        # world times never go back (the database refuses an older one): sorted
        lo = 0 if since is None else self._count(self._at, since, since, _at_of, bisect_left)
        hi = (
            len(self)
            if until is None
            else self._count(self._at, until, until, _at_of, bisect_right)
        )
        return lo, max(lo, hi)

    def _count(self, column: array, x: Any, x_obj: Any, of: Any, bisect: Any) -> int:
        """``bisect`` of the kept rows: in ``column`` (``x``), on in the unpacked objects
        (``x_obj``, key ``of``) when every kept column row is before it. Exact for sorted
        rows, and for any rows when all are packed (the old list's probe sequence)."""
        head, packed = self._head, len(column)
        if head < packed:
            i = bisect(column, x, head)
            if i < packed or not self._unpacked:
                return i - head
        recent = self._recent
        start = len(recent) - self._unpacked + max(0, head - packed)
        return max(packed, head) - head + bisect(recent, x_obj, start, key=of) - start

    def latest_value(self) -> Readout | None:
        """The newest row that carries telegrams, or None."""
        for r in reversed(self._unpacked_rows()):
            if r.telegrams:
                return r
        kinds, kind = self._kinds.kinds, self._kind
        for p in range(len(kind) - 1, self._head - 1, -1):
            if kinds[kind[p]][5]:
                return self._row(p)
        return None

    def time_keys(self, status: str) -> list[int]:
        """The read-time keys (:func:`~.headend.time_key`) of the rows with ``status``."""
        kinds, head = self._kinds.kinds, self._head
        has = [k[0] == status for k in kinds]
        keys = [t for t, k in zip(self._key[head:], self._kind[head:], strict=True) if has[k]]
        keys += [time_key(r.read_at) for r in self._unpacked_rows() if r.status == status]
        return keys

    def cells(self) -> Iterator[tuple]:
        """Each row as ``(at, meter, read_at, position, status, status_byte, telegram
        count)``, oldest first, without building a :class:`Readout` (readouts.csv)."""
        kinds, meter = self._kinds.kinds, self.meter
        head, epoch, us = self._head, _EPOCH, _US
        for at, key, k in zip(self._at[head:], self._key[head:], self._kind[head:], strict=True):
            status, position, _primary, byte, _message, n = kinds[k]
            yield at, meter, epoch + key * us, position, status, byte, n
        for r in self._unpacked_rows():
            yield r.at, meter, r.read_at, r.position, r.status, r.status_byte, len(r.telegrams)

    def _unpacked_rows(self) -> list[Readout]:
        """The kept rows that are not in the columns yet."""
        skip = max(0, self._head - len(self._at))  # dropped before they were packed
        return self._recent[len(self._recent) - self._unpacked + skip :]

    def _row(self, p: int) -> Readout:
        """Physical row ``p``: the stored object if it is a recent one, else built again."""
        j = p - len(self._at) - self._unpacked + len(self._recent)
        if j >= 0:
            return self._recent[j]
        status, position, primary, byte, message, n = self._kinds.kinds[self._kind[p]]
        telegrams: tuple[bytes, ...] = ()
        if n:
            start = (self._end[p - 1] if p else self._off) - self._off
            data = bytes(self._blob[start : self._end[p] - self._off])
            if n == 1:
                telegrams = (data,)
            else:
                cuts, at = [], 0
                for length in self._split[self._base + p]:
                    cuts.append(data[at : at + length])
                    at += length
                telegrams = tuple(cuts)
        read_at = _EPOCH + self._key[p] * _US
        return Readout(
            self.meter, read_at, telegrams, status, position, primary, self._at[p], byte, message
        )


def count_read_through(rows: Sequence[Readout], t: datetime) -> int:
    """How many of ``rows`` (in read-time order) were read at or before ``t``: a bisect on
    the time keys for :class:`MeterRows`, on ``read_at`` for any other sequence."""
    if type(rows) is MeterRows:
        return rows.count_read_through(t)
    return bisect_right(rows, t, key=_read_at)


def read_at(rows: Sequence[Readout], i: int) -> datetime:
    """``rows[i].read_at`` without building a :class:`MeterRows` row."""
    return rows.read_at(i) if type(rows) is MeterRows else rows[i].read_at


_read_at = attrgetter("read_at")  # bisect keys (C, no Python call per probe)
_at_of = attrgetter("at")
