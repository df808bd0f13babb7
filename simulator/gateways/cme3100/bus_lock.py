"""Who drives the CMe3100's M-Bus master now: one job at a time (docs/cme3100.md "Readout
modes").

Scheduled rounds, manual readouts, readout job retries and continuous readout share one
master on one bus; an M-Bus exchange cannot be shared. A job takes the bus with
:meth:`BusLock.acquire` and hands it on with :meth:`BusLock.release`; waiters are served by
``priority`` (lower first: rounds and manual jobs 0, continuous readout 1), then in arrival
order. An uncontended acquire creates no SimPy event, so a gateway whose jobs never overlap
runs exactly as it would without the lock.
"""

from __future__ import annotations

import heapq
from collections.abc import Generator
from itertools import count
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from simulator.core.world import World

ROUND, CONTINUOUS = 0, 1


class BusLock:
    """The master's turn-taking in ``world`` (module doc)."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.holder: str | None = None
        self._queue: list[tuple[int, int, str, Any]] = []
        self._seq = count()

    @property
    def waiting(self) -> int:
        return len(self._queue)

    def acquire(self, who: str, priority: int = ROUND) -> Generator:
        """Take the bus for ``who`` (a generator for ``yield from``), waiting if needed."""
        if self.holder is None and not self._queue:
            self.holder = who
            return
        granted = self.world.event()
        heapq.heappush(self._queue, (priority, next(self._seq), who, granted))
        yield granted

    def release(self) -> None:
        """Give the bus to the first waiter, or free it."""
        if self._queue:
            _, _, who, granted = heapq.heappop(self._queue)
            self.holder = who
            granted.succeed()
        else:
            self.holder = None

    def pass_turn(self, who: str, priority: int = ROUND) -> Generator:
        """Between two steps of a job: let a waiter of the same or a higher priority go first,
        then take the bus back (a Transparent M-Bus request interleaves between two meters of
        a round: 002 §6.26 "may disturb readouts"; continuous readout does not)."""
        if self._queue and self._queue[0][0] <= priority:
            self.release()
            yield from self.acquire(who, priority)
