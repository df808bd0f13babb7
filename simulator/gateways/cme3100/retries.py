"""How often and how far apart a failed push report is retried (seed 002 §6.32.1, §6.33).

**Adaptive Retries** (on by default) size the retries to the report schedule so that all of
them end before the next report is due (002 §6.32.1, Table 9):

===========================  ===========  ======================
report schedule period       max retries  seconds between tries
===========================  ===========  ======================
1-15 min                     1            0
16-60 min                    2            300
61 min-23 h                  3            500
> 23 h                       6            3600
===========================  ===========  ======================

The table gives whole minutes; the bench bands any period by the band's upper bound
(:data:`ADAPTIVE_BANDS`): ``period <= 15 min`` -> row 1, ``15 min < period <= 60 min`` -> row 2,
``60 min < period <= 23 h`` -> row 3, ``period > 23 h`` -> row 4. So 15.5 min is banded with
16-60 min and 23 h + 1 s with > 23 h. A period below one minute (not a cron schedule) is row 1.
Rounding up is safe for the manual's purpose: row 2 needs 2 x 300 s = 10 min < 15.5 min.

The period of a cron schedule is the *shortest* gap between consecutive firings among the
next :data:`PERIOD_FIRINGS` firings (stopping once the firings span :data:`PERIOD_SPAN`, but
always at least two): for a regular pattern that is its interval, for an irregular one
(``0 5 * * *|8 10 * * *|22 17 * * *``) the tightest gap, the one where retries must still fit.

**Disabled**: the report's own retry settings (console only, 002 §6.32.1) if it has any, else
the job settings of Services > Job settings (002 §6.33): ``retries`` and ``offset`` (s),
separately for scheduled and manual jobs. Their defaults are not shown in the manuals; the
bench uses 3 retries / 60 s for scheduled jobs and 0 for manual ones (CME3100.md Gaps #10).
A manual send (Save & Send test report) always uses the manual job settings.

Spacing is counted from the end of the failed attempt (an attempt that times out has used its
timeout already): :meth:`RetryPlan.attempt_starts`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from simulator.gateways.cme3100.cron import CronSchedule

MINUTE = 60.0
HOUR = 3600.0

#: (upper bound of the period in s, inclusive; max retries; s between attempts), 002 Table 9.
ADAPTIVE_BANDS: tuple[tuple[float, int, float], ...] = (
    (15 * MINUTE, 1, 0.0),
    (60 * MINUTE, 2, 300.0),
    (23 * HOUR, 3, 500.0),
    (float("inf"), 6, 3600.0),
)
#: How many firings of a cron schedule are looked at for its period, and over what span.
PERIOD_FIRINGS = 64
PERIOD_SPAN = timedelta(days=31)


class RetryError(ValueError):
    """Bad retry input (a non-positive period, negative retries or offset)."""


@dataclass(frozen=True)
class RetryPlan:
    """``count`` retries after the first attempt, ``spacing_s`` seconds after each failure;
    ``source`` says where the numbers come from (``"adaptive"``, ``"report"``, ``"job"``)."""

    count: int
    spacing_s: float
    source: str = "adaptive"

    def __post_init__(self) -> None:
        if not isinstance(self.count, int) or self.count < 0:
            raise RetryError(f"retries must be an int >= 0, got {self.count!r}")
        if self.spacing_s < 0:
            raise RetryError(f"retry spacing must be >= 0 s, got {self.spacing_s!r}")

    @property
    def attempts(self) -> int:
        """Attempts in all: the first one and the retries."""
        return 1 + self.count

    def attempt_starts(self, first_s: float, durations_s: tuple[float, ...] = ()) -> list[float]:
        """Start times (s) of every attempt if all fail: the first at ``first_s``, each next
        one ``spacing_s`` after the end of the one before; ``durations_s[i]`` is how long
        attempt ``i`` took (missing = 0 s)."""
        starts = [float(first_s)]
        for i in range(self.count):
            took = durations_s[i] if i < len(durations_s) else 0.0
            starts.append(starts[-1] + took + self.spacing_s)
        return starts


@dataclass(frozen=True)
class JobSettings:
    """Services > Job settings (002 §6.33.1): retries and retry offset (s) for scheduled and
    manual jobs. Defaults: CME3100.md Gaps #10 (the manuals show none)."""

    scheduled_retries: int = 3
    scheduled_offset_s: float = 60.0
    manual_retries: int = 0
    manual_offset_s: float = 60.0

    def plan(self, manual: bool = False) -> RetryPlan:
        if manual:
            return RetryPlan(self.manual_retries, self.manual_offset_s, "job")
        return RetryPlan(self.scheduled_retries, self.scheduled_offset_s, "job")


def adaptive_plan(period_s: float) -> RetryPlan:
    """Table 9's row for a report schedule period of ``period_s`` seconds (> 0); banding as
    the module doc says. Raises :class:`RetryError` for a period <= 0."""
    if not period_s > 0:
        raise RetryError(f"report schedule period must be > 0 s, got {period_s!r}")
    for upper, count, spacing in ADAPTIVE_BANDS:
        if period_s <= upper:
            return RetryPlan(count, spacing, "adaptive")
    raise AssertionError("unreachable: the last band is unbounded")


def retry_plan(
    period_s: float,
    adaptive: bool = True,
    job: JobSettings | None = None,
    report: RetryPlan | None = None,
    manual: bool = False,
) -> RetryPlan:
    """The retries of one push report (002 §6.32.1, §6.33).

    ``period_s``: the report schedule's period (s, see :func:`schedule_period_s`);
    ``adaptive``: Adaptive Retries on; ``report``: the report's own console settings, if any;
    ``job``: the job settings (default :class:`JobSettings`); ``manual``: a manual send.
    """
    job = job or JobSettings()
    if manual:
        return job.plan(manual=True)
    if adaptive:
        return adaptive_plan(period_s)
    if report is not None:
        return RetryPlan(report.count, report.spacing_s, "report")
    return job.plan()


def schedule_period_s(schedule: CronSchedule, after: datetime) -> float:
    """The period (s) of ``schedule`` seen from ``after``: the shortest gap between
    consecutive firings among the next :data:`PERIOD_FIRINGS` (at least two, at most
    :data:`PERIOD_SPAN` past the first unless only two fit). Raises
    :class:`~simulator.gateways.cme3100.cron.CronError` if the schedule fires fewer than
    twice within the cron parser's horizon."""
    firings = [schedule.next_after(after)]
    firings.append(schedule.next_after(firings[0]))
    while len(firings) < PERIOD_FIRINGS and firings[-1] - firings[0] < PERIOD_SPAN:
        firings.append(schedule.next_after(firings[-1]))
    return min((b - a).total_seconds() for a, b in zip(firings, firings[1:], strict=False))
