"""The CMe3100's own clock: world time plus RTC drift, stepped by NTP sync or by hand
(seed 002 §6.3.1, Table 11; CME3100.md §10 and Gaps #13; docs/cme3100.md "Time").

The world clock is true time (what the NTP server says). The gateway's RTC runs
``rtc_drift_ppm`` parts per million fast (negative: slow), so its reading at world second
``w`` is ``L0 + (w - w0) * (1 + ppm * 1e-6)`` seconds after the scenario start, where
``(w0, L0)`` is the last step. Local time is that reading as a naive ``datetime`` (UTC in
this model: no time zone or DST yet).

A **step** (an NTP sync whose difference is at least the accepted difference, or a step the
scenario injects) sets a new ``(w0, L0)``. Schedules fire on this clock (:class:`Ticker`),
on local wall time (Gaps #13): a forward step skips the ticks it jumps over; a backward step
repeats none (a ticker never fires at or before its last firing).

With a drift of 0 and no steps the clock reads exactly the world clock, float for float:
``world_s(L) = w0 + (L - L0) / (1 + r)`` with ``w0 = L0 = 0`` and ``r = 0`` is ``L``.
"""

from __future__ import annotations

from collections.abc import Generator
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import simpy

from simulator.gateways.cme3100.cron import CronSchedule

if TYPE_CHECKING:
    from simulator.core.world import World

#: Seed 002 Table 11: the RTC drifts "< 2 s/day" (also "worst ~1 min/month"): 23.1 ppm.
MANUAL_DRIFT_PPM = 2.0 / 86_400 * 1e6


class ClockError(ValueError):
    """A clock input that makes no sense (a drift of -1e6 ppm or beyond, a target the clock
    never reaches)."""


class GatewayClock:
    """The gateway's RTC in ``world`` (module doc); ``drift_ppm`` > 0 runs fast."""

    def __init__(self, world: World, drift_ppm: float = 0.0) -> None:
        if not drift_ppm > -1e6:
            raise ClockError(f"RTC drift {drift_ppm!r} ppm: must be > -1e6 ppm")
        self.world = world
        self.rate = 1.0 + drift_ppm * 1e-6
        self._w0 = 0.0  # world s of the last step
        self._l0 = 0.0  # local s (since the scenario start) at that step
        self._start: datetime | None = None
        self._naive_start = datetime.min
        self._sleepers: dict[simpy.Process, None] = {}  # insertion-ordered: deterministic
        #: every step so far: (world s, step s, reason)
        self.steps: list[tuple[float, float, str]] = []

    # -- reading ------------------------------------------------------------------------------
    def local_s(self, at: float | None = None) -> float:
        """The clock's reading at world second ``at`` (default now), s since the scenario
        start. Times before the last step read on the current segment."""
        w = self.world.now if at is None else at
        return self._l0 + (w - self._w0) * self.rate

    def local(self, at: float | None = None) -> datetime:
        """Local wall time (naive) at world second ``at`` (default now)."""
        start = self.world.start
        if start is not self._start:  # the naive start, worked out once per world start
            self._start, self._naive_start = start, start.replace(tzinfo=None)
        return self._naive_start + timedelta(seconds=self.local_s(at))

    def offset_s(self) -> float:
        """Clock minus true time now (s): what an NTP sync measures."""
        return self.local_s() - self.world.now

    def world_s(self, local: datetime) -> float:
        """The world second at which the clock will read ``local`` (on the current segment)."""
        target = (local - self.world.start.replace(tzinfo=None)).total_seconds()
        return self._w0 + (target - self._l0) / self.rate

    # -- stepping -----------------------------------------------------------------------------
    def step(self, seconds: float, reason: str) -> None:
        """Set the clock ``seconds`` forward (negative: back) now; wakes every :meth:`sleep`
        so its schedule is looked at again."""
        now = self.world.now
        self._l0, self._w0 = self.local_s(now) + seconds, now
        self.steps.append((now, seconds, reason))
        self.wake()

    def set_drift(self, drift_ppm: float) -> None:
        """A new drift from now on (the reading does not jump)."""
        if not drift_ppm > -1e6:
            raise ClockError(f"RTC drift {drift_ppm!r} ppm: must be > -1e6 ppm")
        now = self.world.now
        self._l0, self._w0 = self.local_s(now), now
        self.rate = 1.0 + drift_ppm * 1e-6
        self.wake()

    def wake(self) -> None:
        """Interrupt every :meth:`sleep` (in the order they began) so it looks again."""
        sleepers, self._sleepers = self._sleepers, {}
        for proc in sleepers:
            if proc.is_alive:
                proc.interrupt("clock changed")

    def sleep(self, until: datetime) -> Generator:
        """Wait (in a SimPy process) until the clock reads ``until``; returns True when it
        did, False when a step came first (the caller looks at its schedule again)."""
        world = self.world
        proc = world.env.active_process
        assert proc is not None, "GatewayClock.sleep runs inside a world process"
        self._sleepers[proc] = None
        try:
            yield world.timeout(self.world_s(until) - world.now)
        except simpy.Interrupt:
            return False
        finally:
            self._sleepers.pop(proc, None)
        return True


class Ticker:
    """The firings of ``schedule`` on ``clock`` (module doc: after a step, missed ticks are
    skipped and none repeats). ``last`` is the local time of the last firing."""

    def __init__(self, clock: GatewayClock, schedule: CronSchedule) -> None:
        self.clock, self.schedule = clock, schedule
        self.last: datetime | None = None

    def next(self) -> Generator:
        """Wait for the next firing (a generator for ``yield from``) -> its local time."""
        while True:
            now = self.clock.local()
            base = now if self.last is None or now > self.last else self.last
            tick = self.schedule.next_after(base)
            if (yield from self.clock.sleep(tick)):
                self.last = tick
                return tick

    def passed(self, since: datetime) -> int:
        """Firings after ``since`` up to now on the clock (the ones a long round missed)."""
        n, t, now = 0, since, self.clock.local()
        while (t := self.schedule.next_after(t)) <= now:
            n += 1
        return n
