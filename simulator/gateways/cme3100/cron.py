"""Cron patterns as the CMe3100 reads them (seed 002 §6.39.1, seed 003 §6.1).

A pattern has five fields, ``minute hour day-of-month month day-of-week``, each ``*``, a
number, a range ``a-b``, a step ``*/n`` or ``a-b/n``, or a comma list of those; months and
days of week may be names (``jan``, ``mon``; day 0 and 7 are Sunday). Seed 002 adds:

- ``?`` before a field picks one random value of that field once, when the pattern is read
  (``?1-30 0 * * *``: one random minute of the first 30); the bench draws it from the
  ``rng`` passed in (a ``world.rng`` stream), so runs stay deterministic;
- ``|`` joins patterns: the schedule fires when any of them does.

Day-of-month and day-of-week both restrict (AND), as seed 002's Table 10 says
(``* 12 16 * mon``: "every Monday if the day is the 16th"), unlike Vixie cron's OR.
A sixth field is accepted as the year: seed 003's CAD example writes
``configuration.server.cron=15 0 * * * *``.

This is the bench's own small parser (no dependency); errors are :class:`CronError` naming
the field and the bad text.
"""

from __future__ import annotations

import calendar
import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from simulator.core.text import decimal

FIELDS = ("minute", "hour", "day of month", "month", "day of week", "year")
BOUNDS = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7), (1970, 2199))
MONTHS = {
    m: i + 1
    for i, m in enumerate(
        ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
    )
}
DAYS = {d: i for i, d in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])}
_MONTH_DAYS = {m: calendar.monthrange(2000, m)[1] for m in range(1, 13)}  # 2000: leap year

#: How far :meth:`CronSchedule.next_after` looks by default: one 28-year weekday cycle and a
#: week, so every pattern :meth:`CronSchedule.parse` accepts without a year fires within it.
HORIZON_DAYS = 366 * 28 + 7


class CronError(ValueError):
    """A cron pattern that cannot be read; says which field and what is wrong."""


def _value(text: str, index: int, pattern: str) -> int:
    names = MONTHS if index == 3 else DAYS if index == 4 else {}
    low = text.lower()
    if low in names:
        return names[low]
    v = decimal(text)
    if v is None:
        raise CronError(f"cron {pattern!r}: {FIELDS[index]} {text!r} is not a number")
    lo, hi = BOUNDS[index]
    if not lo <= v <= hi:
        raise CronError(f"cron {pattern!r}: {FIELDS[index]} {v} is outside {lo}-{hi}")
    return v


def _field(text: str, index: int, pattern: str, rng: random.Random) -> frozenset[int]:
    pick = text.startswith("?")
    if pick:
        text = text[1:] or "*"
    lo, hi = BOUNDS[index]
    values: set[int] = set()
    for part in text.split(","):
        if not part:
            raise CronError(f"cron {pattern!r}: empty item in {FIELDS[index]}")
        base, _, step_text = part.partition("/")
        step = 1
        if step_text:
            step = decimal(step_text) or 0
            if step == 0:
                raise CronError(
                    f"cron {pattern!r}: {FIELDS[index]} step {step_text!r} "
                    "must be a positive number"
                )
        if base == "*":
            a, b = lo, hi
        elif "-" in base:
            a_text, _, b_text = base.partition("-")
            a, b = _value(a_text, index, pattern), _value(b_text, index, pattern)
            if a > b:
                raise CronError(f"cron {pattern!r}: {FIELDS[index]} range {base} runs backwards")
        else:
            a = _value(base, index, pattern)
            b = hi if step_text else a
        values.update(range(a, b + 1, step))
    if index == 4 and 7 in values:
        values = (values - {7}) | {0}
    if pick:
        values = {rng.choice(sorted(values))}
    return frozenset(values)


@dataclass(frozen=True)
class _Pattern:
    minute: frozenset[int]
    hour: frozenset[int]
    dom: frozenset[int]
    month: frozenset[int]
    dow: frozenset[int]
    year: frozenset[int] | None

    def day_matches(self, d: datetime) -> bool:
        return (
            d.month in self.month
            and d.day in self.dom
            and (d.isoweekday() % 7) in self.dow
            and (self.year is None or d.year in self.year)
        )

    def reachable(self) -> bool:
        """True if some calendar day matches (31 February never comes; 29 February on a
        Monday does, every 28 years or so). Days of month and months alone decide unless
        weekdays or years restrict: then the 28-year weekday cycle from 2000 (or the given
        years) is searched."""
        pairs = [(m, d) for m in self.month for d in self.dom if d <= _MONTH_DAYS[m]]
        if not pairs:
            return False
        if self.dow == frozenset(range(7)) and self.year is None:
            return True
        years = sorted(self.year) if self.year is not None else range(2000, 2028)
        for y in years:
            for m, d in pairs:
                if (m, d) == (2, 29) and not calendar.isleap(y):
                    continue
                if date(y, m, d).isoweekday() % 7 in self.dow:
                    return True
        return False

    def next_after(self, t: datetime, horizon_days: int) -> datetime | None:
        day = t.replace(hour=0, minute=0, second=0, microsecond=0)
        for _ in range(horizon_days + 1):
            if self.day_matches(day):
                for h in sorted(self.hour):
                    for m in sorted(self.minute):
                        cand = day.replace(hour=h, minute=m)
                        if cand > t:
                            return cand
            day += timedelta(days=1)
        return None


@dataclass(frozen=True)
class CronSchedule:
    """A parsed pattern (or ``|``-joined patterns); :meth:`next_after` gives the next firing."""

    text: str
    patterns: tuple[_Pattern, ...]

    @classmethod
    def parse(cls, text: str, rng: random.Random | None = None) -> CronSchedule:
        """Parse ``text``; ``rng`` draws the ``?`` picks (default: seeded from the text)."""
        if not isinstance(text, str) or not text.strip():
            raise CronError("cron pattern is empty")
        rng = rng or random.Random(text)
        patterns = []
        for part in text.split("|"):
            fields = part.split()
            if len(fields) not in (5, 6):
                raise CronError(
                    f"cron {part.strip()!r}: {len(fields)} fields, expected 5 "
                    "(minute hour day month weekday) or 6 (+ year)"
                )
            parsed = [_field(f, i, part.strip(), rng) for i, f in enumerate(fields)]
            pattern = _Pattern(*parsed[:5], parsed[5] if len(parsed) == 6 else None)
            if not pattern.reachable():
                raise CronError(
                    f"cron {part.strip()!r} never fires: no calendar day has that day of month, month"
                    f"{', weekday' if pattern.dow != frozenset(range(7)) else ''}"
                    f"{' and year' if pattern.year is not None else ''} (e.g. 31 February)"
                )
            patterns.append(pattern)
        return cls(text.strip(), tuple(patterns))

    def next_after(self, t: datetime, horizon_days: int = HORIZON_DAYS) -> datetime:
        """The first firing strictly after ``t`` (whole minutes, same tzinfo).

        Raises :class:`CronError` if none falls within ``horizon_days``.
        """
        hits = [h for p in self.patterns if (h := p.next_after(t, horizon_days)) is not None]
        if not hits:
            raise CronError(f"cron {self.text!r} never fires within {horizon_days} days of {t}")
        return min(hits)

    def __str__(self) -> str:
        return self.text
