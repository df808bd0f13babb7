"""The world: one SimPy environment, its calendar clock, seeded random streams and the trace.

Every device is a SimPy process in one ``World``. Models never read the wall clock or sleep;
they ``yield world.timeout(seconds)``. The same models run in virtual time
(``simpy.Environment``: as fast as the CPU allows, deterministic per seed) or in real time
(``simpy.rt.RealtimeEnvironment``, factor 1, when a serial bridge is attached). Only the
real-time world reads the wall clock, and only to stamp trace events with ``wall``.
"""

from __future__ import annotations

import random
import time
from collections.abc import Generator
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import numpy as np
import simpy
import simpy.rt

from simulator.core.events import TraceEvent
from simulator.core.rng import numpy_stream, stream
from simulator.core.trace import Trace

E = TypeVar("E", bound=TraceEvent)

#: Default calendar origin of a scenario: world time 0 is this instant (UTC).
EPOCH = datetime(2026, 1, 5, 0, 0, 0, tzinfo=UTC)


class World:
    """A discrete-event world.

    Parameters
    ----------
    seed:
        Root of every random stream (:meth:`rng`); same seed, same run.
    start:
        Calendar time (timezone-aware) of world time 0; models that need a date use
        :meth:`clock`.
    realtime:
        Run in wall-clock time (``simpy.rt.RealtimeEnvironment``) with ``factor`` seconds of
        wall time per world second; ``strict=False`` so a slow step delays rather than aborts.
    trace:
        Where observable events go; a fresh in-memory :class:`Trace` by default.
    """

    def __init__(
        self,
        seed: int = 0,
        *,
        start: datetime = EPOCH,
        realtime: bool = False,
        factor: float = 1.0,
        trace: Trace | None = None,
    ) -> None:
        if start.tzinfo is None:
            raise ValueError("World start must be timezone-aware (got a naive datetime)")
        self.seed = int(seed)
        self.start = start
        self.realtime = realtime
        if realtime:
            self.env: simpy.Environment = simpy.rt.RealtimeEnvironment(factor=factor, strict=False)
        else:
            self.env = simpy.Environment()
        self.trace = trace if trace is not None else Trace()
        self._streams: dict[str, random.Random] = {}
        #: :meth:`sleep` may let time pass without a SimPy event when that is exact (below);
        #: False forces every sleep through the event loop (``meterbench run --event-path``)
        self.fast_path = True
        #: sleeps that let time pass directly / that went through a SimPy event
        self.sleeps = {"direct": 0, "event": 0}

    # -- time -------------------------------------------------------------------------------
    @property
    def now(self) -> float:
        """World time in seconds since the scenario start."""
        return float(self.env.now)

    def clock(self, at: float | None = None) -> datetime:
        """Calendar time (UTC) at world time ``at`` (default: now)."""
        return self.start + timedelta(seconds=self.now if at is None else at)

    def timeout(self, delay: float, value: Any = None) -> simpy.events.Timeout:
        """An event that fires ``delay`` seconds (>= 0) from now."""
        return self.env.timeout(max(0.0, delay), value)

    def sleep(self, delay: float) -> Generator[Any, Any, None]:
        """Let ``delay`` s (>= 0; negative counts as 0) pass in the calling process
        (``yield from world.sleep(d)``): the same as ``yield world.timeout(d)``, but without
        a SimPy event when nothing else can happen in between.

        That is exact when (a) the calling process was resumed by one of its own sleeps (so
        no other callback of the resuming event is still to run at the old time) and (b) the
        earliest event in the calendar is later than ``now + d`` (so no other process, and
        not the end of :meth:`run`, acts before the sleep would end): the clock then moves to
        ``now + d`` (the very float SimPy would reach) and the process goes on. Not in a
        real-time world. Counts in :attr:`sleeps`.
        """
        env = self.env
        d = max(0.0, delay)
        if self.fast_path and not self.realtime:
            proc = env.active_process
            queue = env._queue
            t = env._now + d
            if (
                proc is not None
                and getattr(proc._target, "own_sleep", False)
                and (not queue or queue[0][0] > t)
            ):
                env._now = t
                self.sleeps["direct"] += 1
                return
        ev = env.timeout(d)
        ev.own_sleep = True  # type: ignore[attr-defined]  # nobody else waits on it
        self.sleeps["event"] += 1
        yield ev

    def sleep_or(self, delay: float, event: simpy.events.Event) -> Generator[Any, Any, None]:
        """Wait until ``delay`` s (>= 0; negative counts as 0) have passed or ``event`` is
        processed, whichever comes first (``yield from world.sleep_or(d, e)``; afterwards
        ``e.triggered`` tells which): ``yield world.timeout(d) | e`` with ``own_sleep`` set,
        in the same event order, without building and processing the ``Condition``.

        The ``Condition`` is one more event at the instant it fires: the process goes on only
        after the events already due at that instant. So when the timeout wakes the process
        and another event is due at the same time, it waits for one ``timeout(0)`` (scheduled
        where the ``Condition`` would have been); otherwise it goes on at once. ``event``
        wakes it through a new event scheduled where the ``Condition`` would have been, and
        the timeout stays in the calendar without callbacks, as it did. ``event`` must not
        fail (ValueError when it does). ``tests/test_world_sleep_or.py`` compares both.
        """
        env = self.env
        proc = env.active_process
        wake = env.timeout(max(0.0, delay))
        wake.own_sleep = True  # type: ignore[attr-defined]  # only this process waits for it

        def woken(_event: Any) -> None:  # ``event`` was processed: the Condition fires now
            if proc._target is not wake:
                return  # the timeout came first
            if not event._ok:
                raise ValueError("World.sleep_or: the event failed")
            wake.callbacks.remove(proc._resume)
            woke = env.event()
            woke.own_sleep = True  # type: ignore[attr-defined]
            woke.callbacks.append(proc._resume)
            proc._target = woke
            woke.succeed()

        if event.callbacks is None:  # processed already: the Condition fires at once
            wake.callbacks = []  # the timeout stays in the calendar, with nobody waiting
            now = env.event()
            now.own_sleep = True  # type: ignore[attr-defined]
            yield now.succeed()
            return
        event.callbacks.append(woken)
        yield wake
        if event.callbacks is not None:
            event.callbacks.remove(woken)
        if proc._target is wake:  # the timeout woke it: the Condition's own step, if it matters
            queue = env._queue
            if queue and queue[0][0] <= env._now:
                after = env.timeout(0.0)
                after.own_sleep = True  # type: ignore[attr-defined]
                yield after

    def advance(self, delay: float) -> float:
        """Move the clock ``delay`` s (>= 0; negative counts as 0) without a SimPy event, as
        :meth:`sleep` does when that is exact; returns the new time. Only for a caller that
        has proven the same conditions for the whole stretch it jumps over (a readout on the
        exact fast path, :mod:`simulator.mbus.fast_readout`). Counts as a direct sleep.

        Raises RuntimeError (the clock unchanged) if an event is due at or before the new
        time: the caller's proof did not hold (something was scheduled meanwhile).
        """
        env = self.env
        t = env._now + max(0.0, delay)
        queue = env._queue
        if queue and queue[0][0] <= t:
            raise RuntimeError(
                f"World.advance to {t!r} s would jump over an event due at {queue[0][0]!r} s"
            )
        env._now = t
        self.sleeps["direct"] += 1
        return float(t)

    def event(self) -> simpy.events.Event:
        return self.env.event()

    def process(self, generator: Generator) -> simpy.events.Process:
        """Start ``generator`` as a SimPy process of this world."""
        return self.env.process(generator)

    def run(self, until: float | simpy.events.Event | None = None) -> Any:
        """Run until world time ``until`` (seconds), an event, or no events remain."""
        return self.env.run(until=until)

    # -- randomness -------------------------------------------------------------------------
    def rng(self, name: str) -> random.Random:
        """The named random stream (created on first use, then reused)."""
        r = self._streams.get(name)
        if r is None:
            r = self._streams[name] = stream(self.seed, name)
        return r

    def np_rng(self, name: str) -> np.random.Generator:
        """A fresh NumPy generator for ``name`` (for vectorised kernels)."""
        return numpy_stream(self.seed, name)

    # -- trace ------------------------------------------------------------------------------
    def emit(self, event: E, *, at: float | None = None) -> E:
        """Record a typed event (:mod:`simulator.core.events`) now, or at ``at`` <= now (s).

        Sets ``event.t``; in a real-time world also ``event.wall`` (Unix seconds), shifted back
        by ``now - at`` for an event that happened earlier than it is recorded. Returns it.
        """
        now = float(self.env.now)
        t = now if at is None else float(at)
        event.t = t
        if self.realtime:
            event.wall = time.time() - (now - t)
        self.trace.record(event)
        return event
