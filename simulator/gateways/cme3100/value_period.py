"""Which stored readouts a push report carries: Value Period and Value Interval (seed 002
§6.32.2-6.32.3, CME3100.md §5.1 and Gaps #8), and the accounting that makes every value
either delivered or named as lost.

**Value Period.**

- *Auto* (default): every value of a meter not yet delivered, looking back at most
  :data:`AUTO_MAX_READOUTS` (180) readouts of that meter from the send time (002 §6.32.2:
  "all previously unsent meter values up to a max limit of 180 meter readouts"; for a regular
  schedule that is Gaps #8's "180 x readout period"). The 180 are the meter's last stored
  readouts, failed ones included (they are readouts, only without values). An unsent value
  older than that can never be sent any more: it is *lost*, and :class:`Selection.lost` names
  it once.
- *Fixed* ``N`` minutes/hours/days/weeks/months: every value read in ``(send - N, send]``,
  delivered before or not ("regardless of older unsent values", 002 §6.32.2; the G1 capture
  shows recent readings sent again). The half-open window makes a daily report with
  ``1 day`` carry each hourly value once. Values sent again are counted in
  :class:`Selection.resent`; unsent values older than the window are lost. Months are calendar
  months (day clamped: 31 Mar - 1 month = 28/29 Feb); a week is 7 days.

**Value Interval** (002 §6.32.3, Gaps #8): ``all`` values, or one per ``15min``, ``1h``,
``1day``, ``1week``, ``1month``. Intervals are aligned to the local clock (quarter hours,
whole hours, midnight, Monday 00:00 since Localisation's week starts on Monday (004 §6.36),
the 1st of the month). The bench keeps the **first** value read in each interval (the reading
nearest the interval start, what a billing cut-off wants); the others are *thinned*: not
delivered by design, counted, never lost.

**Accounting** (:class:`DeliveryLedger`, one per report slot): :meth:`~DeliveryLedger.select`
is pure (what a report built now would carry); :meth:`~DeliveryLedger.settle` records the
outcome. After a successful report every value read up to its send time is settled
(delivered, lost or thinned); after a failed one only the values now out of reach are. So the
next report after an outage carries every unsent value once (Auto), and nothing disappears
silently. Per meter the ledger keeps one time: everything read at or before it is settled.
That needs each meter's readouts in read-time order, stored no later than they are read
(the value database's job).
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from simulator.gateways.cme3100.meter_rows import count_read_through, read_at
from simulator.gateways.cme3100.readout import Readout

AUTO_MAX_READOUTS = 180
PERIOD_UNITS = ("minute", "hour", "day", "week", "month")
INTERVALS = ("all", "15min", "1h", "1day", "1week", "1month")


class ValuePeriodError(ValueError):
    """A bad Value Period / Value Interval, or a ledger used out of order."""


def months_back(t: datetime, n: int) -> datetime:
    """``t`` minus ``n`` calendar months, the day clamped to the target month's length."""
    month0 = t.year * 12 + (t.month - 1) - n
    year, month = divmod(month0, 12)
    day = min(t.day, calendar.monthrange(year, month + 1)[1])
    return t.replace(year=year, month=month + 1, day=day)


@dataclass(frozen=True)
class ValuePeriod:
    """Auto (``amount`` None; at most ``max_readouts`` back per meter) or fixed ``amount``
    ``unit`` back from the send time (``unit`` one of :data:`PERIOD_UNITS`)."""

    amount: int | None = None
    unit: str = "day"
    max_readouts: int = AUTO_MAX_READOUTS

    def __post_init__(self) -> None:
        if self.amount is not None and (not isinstance(self.amount, int) or self.amount < 1):
            raise ValuePeriodError(f"Value Period amount must be an int >= 1, got {self.amount!r}")
        if self.unit not in PERIOD_UNITS:
            raise ValuePeriodError(f"Value Period unit {self.unit!r}: one of {PERIOD_UNITS}")
        if not isinstance(self.max_readouts, int) or self.max_readouts < 1:
            raise ValuePeriodError(f"max_readouts must be an int >= 1, got {self.max_readouts!r}")

    @classmethod
    def auto(cls, max_readouts: int = AUTO_MAX_READOUTS) -> ValuePeriod:
        return cls(None, max_readouts=max_readouts)

    @classmethod
    def fixed(cls, amount: int, unit: str) -> ValuePeriod:
        return cls(amount, unit.rstrip("s") if unit.endswith("s") else unit)

    @property
    def is_auto(self) -> bool:
        return self.amount is None

    def start(self, at: datetime) -> datetime:
        """The exclusive lower bound of a fixed period sent at ``at``."""
        if self.amount is None:
            raise ValuePeriodError("an Auto Value Period has no fixed start")
        if self.unit == "month":
            return months_back(at, self.amount)
        scale = {"minute": 1, "hour": 60, "day": 1440, "week": 10080}[self.unit]
        return at - timedelta(minutes=self.amount * scale)


def interval_start(t: datetime, interval: str) -> datetime | None:
    """Start of the Value Interval holding ``t`` (None for ``all``): see the module doc."""
    if interval == "all":
        return None
    if interval == "15min":
        return t.replace(minute=t.minute - t.minute % 15, second=0, microsecond=0)
    if interval == "1h":
        return t.replace(minute=0, second=0, microsecond=0)
    day = t.replace(hour=0, minute=0, second=0, microsecond=0)
    if interval == "1day":
        return day
    if interval == "1week":
        return day - timedelta(days=day.weekday())  # Monday (004 §6.36: week starts Monday)
    if interval == "1month":
        return day.replace(day=1)
    raise ValuePeriodError(f"Value Interval {interval!r}: one of {INTERVALS}")


@dataclass(frozen=True)
class Selection:
    """What a report built at ``at`` carries and what it settles.

    ``values``: the readouts it carries (by meter, then read time); ``resent``: those of them
    already delivered by an earlier report (fixed Value Period only); ``lost``: unsent values
    now out of reach, never to be delivered; ``thinned``: values the Value Interval drops
    inside the period (settled if the report succeeds); ``thinned_out``: dropped ones before
    the period (settled either way).
    """

    at: datetime
    values: tuple[Readout, ...]
    resent: tuple[Readout, ...]
    lost: tuple[Readout, ...]
    thinned: tuple[Readout, ...]
    thinned_out: tuple[Readout, ...]
    generation: int
    _settle_ok: tuple[tuple[str, datetime], ...] = field(repr=False, default=())
    _settle_failed: tuple[tuple[str, datetime], ...] = field(repr=False, default=())


@dataclass
class DeliveryLedger:
    """The delivery state of one push report slot (module doc). Counters: ``delivered``
    (values delivered for the first time), ``resent``, ``thinned``; ``lost`` names every lost
    value as ``(meter, read_at)`` in the order they were found."""

    period: ValuePeriod = field(default_factory=ValuePeriod.auto)
    interval: str = "all"
    delivered: int = 0
    resent: int = 0
    thinned: int = 0
    lost: list[tuple[str, datetime]] = field(default_factory=list)
    _settled: dict[str, datetime] = field(default_factory=dict, repr=False)
    _generation: int = field(default=0, repr=False)

    def __post_init__(self) -> None:
        if self.interval not in INTERVALS:
            raise ValuePeriodError(f"Value Interval {self.interval!r}: one of {INTERVALS}")

    def settled_through(self, meter: str) -> datetime | None:
        """Every value of ``meter`` read at or before this time is settled (None: none yet)."""
        return self._settled.get(meter)

    def select(self, readouts: Mapping[str, Sequence[Readout]], at: datetime) -> Selection:
        """What a report built at ``at`` carries; ``readouts`` maps each meter to its stored
        readouts in read-time order. Pure: nothing changes until :meth:`settle`.
        Raises :class:`ValuePeriodError` if a meter's readouts are out of order."""
        values: list[Readout] = []
        resent: list[Readout] = []
        lost: list[Readout] = []
        thinned: list[Readout] = []
        thinned_out: list[Readout] = []
        ok_marks: list[tuple[str, datetime]] = []
        failed_marks: list[tuple[str, datetime]] = []
        for meter in sorted(readouts):
            seq = readouts[meter]
            hi = count_read_through(seq, at)
            if hi == 0:
                continue
            settled = self._settled.get(meter)
            lo = 0 if settled is None else count_read_through(seq, settled)
            if self.period.is_auto:
                window = max(0, hi - self.period.max_readouts)
                first_carried = max(lo, window)
                cut = read_at(seq, window - 1) if window > 0 else None
            else:
                cut = self.period.start(at)
                window = count_read_through(seq, cut)
                first_carried = window
            every = self.interval == "all"  # every value picked: no per-index lookups
            picks = {} if every else self._picks(seq, min(lo, window), hi)
            # the rows both loops read (and the one before, and the newest), taken once: the
            # value database builds each older row it gives
            c0 = max(0, min(lo - 1, first_carried, hi - 1))  # lo > hi: the clock was set back
            chunk = seq[c0:hi]
            for i in range(lo, hi):
                r = chunk[i - c0]
                if i and r.read_at <= (prev := chunk[i - 1 - c0].read_at):
                    raise ValuePeriodError(
                        f"meter {meter}: readout at {r.read_at} stored after {prev}"
                    )
                if not r.telegrams:  # not a value (r.is_value)
                    continue
                before = i < window
                if not (every or picks[i]):
                    (thinned_out if before else thinned).append(r)
                elif before:
                    lost.append(r)
            for i in range(first_carried, hi):
                r = chunk[i - c0]
                if r.telegrams and (every or picks[i]):
                    values.append(r)
                    if i < lo:
                        resent.append(r)
            if cut is not None and cut > (settled or datetime.min):
                failed_marks.append((meter, cut))
            ok_marks.append((meter, max(chunk[-1].read_at, settled or datetime.min)))
        return Selection(
            at,
            tuple(values),
            tuple(resent),
            tuple(lost),
            tuple(thinned),
            tuple(thinned_out),
            self._generation,
            tuple(ok_marks),
            tuple(failed_marks),
        )

    def _picks(self, seq: Sequence[Readout], start: int, hi: int) -> dict[int, bool]:
        """For each index in ``[start, hi)``: is it the first value of its Value Interval?"""
        picks: dict[int, bool] = {}
        prev: datetime | None = None
        for j in range(start - 1, -1, -1):  # the interval of the value just before the range
            if seq[j].is_value:
                prev = interval_start(seq[j].read_at, self.interval)
                break
        for i in range(start, hi):
            if not seq[i].is_value:
                continue
            bucket = interval_start(seq[i].read_at, self.interval)
            picks[i] = bucket != prev
            prev = bucket
        return picks

    def settle(self, selection: Selection, delivered: bool) -> None:
        """Record the outcome of the report built from ``selection`` (its last attempt):
        ``delivered`` True marks its values delivered. Lost values are recorded either way.
        Raises :class:`ValuePeriodError` for a selection older than the last settle."""
        if selection.generation != self._generation:
            raise ValuePeriodError(
                f"selection of generation {selection.generation} is stale "
                f"(ledger at {self._generation}): select again after each settle"
            )
        self._generation += 1
        self.lost.extend(r.key for r in selection.lost)
        self.thinned += len(selection.thinned_out)
        marks = selection._settle_ok if delivered else selection._settle_failed
        if delivered:
            self.delivered += len(selection.values) - len(selection.resent)
            self.resent += len(selection.resent)
            self.thinned += len(selection.thinned)
        for meter, t in marks:
            if t > self._settled.get(meter, datetime.min):
                self._settled[meter] = t


def by_meter(readouts: Iterable[Readout]) -> dict[str, list[Readout]]:
    """Group readouts per meter in read-time order (a stand-in for the value database)."""
    out: dict[str, list[Readout]] = {}
    for r in sorted(readouts, key=lambda r: (r.meter, r.read_at)):
        out.setdefault(r.meter, []).append(r)
    return out
