"""One user of a module's radio at a time, without a SimPy event where none is needed.

The module's processes (transmissions, standalone LwM2M Updates, mobile-terminated requests)
take turns on the radio. ``simpy.Resource(capacity=1)`` did this with two events per use: the
granted Request (an event at the same time, which the process waits for) and the Release. A
fleet makes millions of uses, nearly all on a free radio. :class:`RadioLock` keeps the event
order of the Resource and drops what changes nothing:

* a free radio is granted as the Request was, an event at the same time, through
  :meth:`~simulator.core.world.World.sleep` ``(0)``: no event when that is exact (nothing
  else is due before the process would go on);
* a release with nobody waiting is only a flag (the Resource's Release event then had nothing
  to do); with a waiter, the Release event and then the grant are events as before, and a
  request made in between finds the oldest waiter granted first (the Resource's put queue).

``tests/test_nbiot_radio_lock.py`` runs free and contended uses against ``simpy.Resource``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Generator
from typing import Any

from simulator.core.world import World


class RadioLock:
    """The radio of one module (``world``: its :class:`~simulator.core.world.World`).

    ``with lock.request() as use: yield from use.acquire(); ...``, as with a SimPy resource:
    the radio is released when the block ends (a request never granted leaves the queue).
    """

    __slots__ = ("world", "busy", "waiting")

    def __init__(self, world: World) -> None:
        self.world = world
        self.busy = False
        self.waiting: deque[Any] = deque()  # events of the waiting requests, oldest first

    def request(self) -> _Use:
        return _Use(self)

    def release(self) -> None:
        """The radio is free; the oldest waiting request gets it after the Release event."""
        self.busy = False
        if self.waiting:
            release = self.world.env.timeout(0)
            release.callbacks.append(self._on_release)

    def _on_release(self, _event: Any) -> None:
        if not self.busy and self.waiting:
            self._grant()

    def _grant(self) -> None:
        self.busy = True
        self.waiting.popleft().succeed()


class _Use:
    """One request for the radio (a context manager, as ``simpy.Resource.request()``)."""

    __slots__ = ("lock", "event", "granted")

    def __init__(self, lock: RadioLock) -> None:
        self.lock, self.event, self.granted = lock, None, False

    def __enter__(self) -> _Use:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.granted:
            self.lock.release()
        elif self.event is not None and self.event in self.lock.waiting:
            self.lock.waiting.remove(self.event)

    def acquire(self) -> Generator[Any, Any, None]:
        """Wait (``yield from``) until the radio is this request's."""
        lock = self.lock
        if not lock.busy and not lock.waiting:
            lock.busy = self.granted = True
            yield from lock.world.sleep(0.0)  # the granted Request's event, when it matters
            return
        if not lock.busy:  # released, its Release event still to come: the oldest goes first
            lock._grant()
        self.event = lock.world.event()
        lock.waiting.append(self.event)
        yield self.event
        self.granted = True
