"""The bridge's reader thread: bytes from the port, time-stamped, handed to the world.

Reading a serial port blocks, and the SimPy loop must not block, so one thread reads and puts
:class:`PortEvent` items into a ``queue.Queue``; the real-time driver
(:mod:`simulator.bridge.realtime`) waits on that queue between world events and wakes the
bridge at once. Each chunk is stamped with ``time.monotonic()`` (mapped to world time) and
``time.time()`` (for the trace's ``wall``) as soon as ``read`` returns.

When the port vanishes (USB unplug, socket dropped, pty closed by the master program) the
reader reports ``"gone"`` once, retries :meth:`Transport.reopen` with exponential back-off
(``backoff`` s doubling up to ``backoff_max`` s) and reports ``"back"`` when it works again.
Nothing is raised out of the thread.

Each event carries the transport's connection number (:attr:`Transport.session`) as the
reader knew it when it read, so the bridge can tell which master the bytes came from; a
``"gone"`` event carries the bytes the transport threw away at the hang-up (``data``).
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass
from typing import Literal

from simulator.bridge.transports import PortGone, Transport


@dataclass(frozen=True)
class PortEvent:
    """``kind``: "rx" (``data`` arrived), "gone" (``reason``; ``data``: unread bytes the
    transport dropped), "back" (reopened); ``session``: the transport's connection number."""

    kind: Literal["rx", "gone", "back"]
    mono: float
    wall: float
    data: bytes = b""
    reason: str = ""
    session: int = 0


class PortReader:
    """Reads ``transport`` in a daemon thread into ``inbox`` until :meth:`stop`."""

    def __init__(
        self,
        transport: Transport,
        inbox: queue.Queue,
        *,
        poll: float = 0.05,
        backoff: float = 0.05,
        backoff_max: float = 2.0,
    ) -> None:
        self.transport = transport
        self.inbox = inbox
        self.poll = poll
        self.backoff = backoff
        self.backoff_max = backoff_max
        self._stop = threading.Event()
        self.connected = True
        #: ``time.monotonic()`` since when the port has been gone (None while connected) and
        #: the reason of the last loss, for callers that wait on the port (the lab bench)
        self.gone_since: float | None = None
        self.last_gone_reason = ""
        self._thread = threading.Thread(target=self._run, name="bridge-reader", daemon=True)

    def start(self) -> PortReader:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5.0)

    def _put(self, kind: str, data: bytes = b"", reason: str = "", session: int = -1) -> None:
        if session < 0:
            session = getattr(self.transport, "session", 0)
        self.inbox.put(PortEvent(kind, time.monotonic(), time.time(), data, reason, session))  # type: ignore[arg-type]

    def _run(self) -> None:
        while not self._stop.is_set():
            # the connection the bytes belong to: taken before the read (a TCP read refuses
            # to read from a client the reader was not told about, see tcp_service)
            session = getattr(self.transport, "session", 0)
            try:
                data = self.transport.read(self.poll)
            except PortGone as exc:
                self.connected = False
                self.gone_since = time.monotonic()
                self.last_gone_reason = str(exc)
                self._put("gone", getattr(exc, "dropped", b""), str(exc), session)
                self._reconnect()
                continue
            if data:
                # stamp first: the stamp is the arrival time the framer and the trace use
                self._put("rx", data, session=session)

    def _reconnect(self) -> None:
        delay = self.backoff
        while not self._stop.wait(delay):
            try:
                self.transport.reopen()
            except PortGone as exc:
                self.last_gone_reason = str(exc)
                delay = min(delay * 2, self.backoff_max)
                continue
            self.connected = True
            self.gone_since = None
            self._put("back")
            return
