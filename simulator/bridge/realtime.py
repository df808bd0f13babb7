"""Driving a real-time world that talks to a serial port: wake-ups on input, look-ahead on replies.

A :class:`~simulator.core.world.World` built with ``realtime=True`` owns a
``simpy.rt.RealtimeEnvironment`` (factor 1, ``strict=False``). :class:`RealtimeDriver` runs it
instead of ``world.run()`` and adds two things the serial bridge needs, without touching any
model:

* **Wake-up on input.** Between events the driver does not ``sleep``: it waits on its
  ``inbox`` (a thread-safe ``queue.Queue`` fed by the port reader and the byte writer) until
  the next event is due. An item that arrives is handed to its handler as a SimPy event at
  the world time of its ``time.monotonic()`` stamp, so the bridge reacts within the queue's
  wake-up latency (typically 0.05-0.2 ms on Linux), not a polling step.
* **Look-ahead.** While a bridge exchange is in progress (a request was put on the simulated
  bus and the reply is being gathered) the driver processes events without waiting for the
  wall clock, so the world runs *ahead* of it. ``Bus.receive`` returns the whole reply only
  after its last character in world time; running ahead means the reply is known before its
  first character is due on the wire, and the byte writer then puts every character out at
  its modelled instant (world time mapped back to ``time.monotonic()``). After the exchange
  the driver waits for the wall clock to catch up again. The world never lags the wall clock
  by more than its processing time (``strict=False`` lets a slow step delay rather than
  abort).

Mapping: ``world time = env_start + (monotonic - real_start) / factor`` with the
environment's own origin (``RealtimeEnvironment.real_start``).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from typing import Any

import simpy
from simpy.core import Environment, Infinity

from simulator.core.world import World


class RealtimeDriver:
    """Runs ``world`` (which must be real-time) with input wake-ups and bridge look-ahead.

    Raises ``ValueError`` if the world is a virtual-time world.
    """

    def __init__(self, world: World) -> None:
        if not world.realtime:
            raise ValueError("RealtimeDriver needs World(realtime=True)")
        self.world = world
        self.env: simpy.rt.RealtimeEnvironment = world.env  # type: ignore[assignment]
        self.inbox: queue.Queue[tuple[Callable[[Any], None], float, Any]] = queue.Queue()
        self._lookahead = 0
        self.stop_event = threading.Event()
        self.max_lead = 0.0  # largest world-ahead-of-wall lead seen (s), for docs/bench
        # handler items already turned into SimPy events but not yet fired
        self._scheduled: dict[int, tuple[Callable[[Any], None], Any]] = {}

    # -- clock mapping -----------------------------------------------------------------------
    def world_time(self, mono: float) -> float:
        """World time (s) of a ``time.monotonic()`` instant."""
        return self.env.env_start + (mono - self.env.real_start) / self.env.factor

    def mono_time(self, t: float) -> float:
        """``time.monotonic()`` instant of world time ``t`` (s)."""
        return self.env.real_start + (t - self.env.env_start) * self.env.factor

    # -- thread-safe input ------------------------------------------------------------------
    def post(self, handler: Callable[[Any], None], mono: float, item: Any) -> None:
        """From any thread: call ``handler(item)`` inside the world at ``mono``'s world time
        (or at the current world time if that is already later)."""
        self.inbox.put((handler, mono, item))

    # -- look-ahead --------------------------------------------------------------------------
    def hold_lookahead(self) -> None:
        """Let the world run ahead of the wall clock until :meth:`release_lookahead`."""
        self._lookahead += 1

    def release_lookahead(self) -> None:
        self._lookahead = max(0, self._lookahead - 1)

    @property
    def lead(self) -> float:
        """How far (s) the world is currently ahead of the wall clock (negative: behind)."""
        return self.world.now - self.world_time(time.monotonic())

    # -- the loop ---------------------------------------------------------------------------
    def _schedule(self, handler: Callable[[Any], None], mono: float, item: Any) -> None:
        delay = max(0.0, self.world_time(mono) - self.env.now)
        ev = self.env.timeout(delay)
        key = id(ev)
        self._scheduled[key] = (handler, item)

        def fire(_e: Any) -> None:
            if self._scheduled.pop(key, None) is not None:
                handler(item)

        ev.callbacks.append(fire)

    def _drain(self) -> None:
        while True:
            try:
                handler, mono, item = self.inbox.get_nowait()
            except queue.Empty:
                return
            self._schedule(handler, mono, item)

    def drain_into_world(self) -> int:
        """After :meth:`run` returned: hand every item still in the inbox to its handler now,
        so nothing a thread reported (bytes written, a port lost) is missing from the trace.
        Returns how many items were handled."""
        n = 0
        for key in list(self._scheduled):
            handler, item = self._scheduled.pop(key)
            handler(item)
            n += 1
        while True:
            try:
                handler, _mono, item = self.inbox.get_nowait()
            except queue.Empty:
                return n
            handler(item)
            n += 1

    def run(self, until: float | None = None) -> None:
        """Run until world time ``until`` (s), :attr:`stop_event`, or forever.

        Returns when the wall clock reaches ``until`` even if no event is scheduled then.
        """
        env = self.env
        while not self.stop_event.is_set():
            self._drain()
            nxt = env.peek()
            if until is not None and nxt > until:
                nxt = until
                if self.world_time(time.monotonic()) >= until and not self._lookahead:
                    return
            if self._lookahead and nxt is not Infinity:
                self.max_lead = max(self.max_lead, self.lead)
                Environment.step(env)
                continue
            wait = (self.mono_time(nxt) - time.monotonic()) if nxt is not Infinity else 0.5
            if wait > 0:
                try:
                    handler, mono, item = self.inbox.get(timeout=min(wait, 0.25))
                except queue.Empty:
                    continue
                self._schedule(handler, mono, item)
                continue
            if env.peek() <= nxt:
                Environment.step(env)
