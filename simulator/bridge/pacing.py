"""Writing bytes at modelled instants: the bridge's byte pacer.

Ptys and USB-serial adapters do not pace bytes (a pty delivers a whole write at once), so the
bridge writes each reply byte itself at the instant the model gives it: character ``i`` of a
reply starts at its ``RxChar.t`` (world time), mapped to ``time.monotonic()``; on an ideal
wire consecutive characters are one character time (11/baud s, EN 13757-2 8E1) apart.

:class:`PacedWriter` owns one thread that sleeps until each byte is due and writes it, then
reports what was written with the actual monotonic and wall-clock (Unix) instants, so the
trace shows when bytes really left. ``time.sleep`` on Linux wakes within about 0.1 ms; the
bench measures the resulting reply delays (benches/bench_bridge.py, docs/bridge.md).

Sessions: a submission may name the transport connection it is for (``port_session``): every
byte is written with it, so the transport refuses it once that master has gone
(:class:`~simulator.bridge.transports.SessionEnded`). :meth:`PacedWriter.cancel` drops at once
every submission of sessions before a given one, including one waiting for its due instant,
so a dead master's reply never holds up the next master's.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from simulator.bridge.transports import PortGone, SessionEnded, Transport

CHAR_BITS = 11

#: How often (s) a writer waiting for a due instant looks whether its session was cancelled.
CANCEL_POLL = 0.005


def char_times(start: float, count: int, baud: int) -> list[float]:
    """Start instants (s) of ``count`` back-to-back characters from ``start`` at ``baud`` bit/s."""
    step = CHAR_BITS / baud
    return [start + i * step for i in range(count)]


@dataclass
class Written:
    """What the writer did with one submission (handed to ``on_written`` from its thread).

    ``mono``/``wall``: actual write instants (``time.monotonic()`` / Unix s) per written
    byte; ``data`` holds only the bytes written; ``error`` says why the rest was not;
    ``session``: the caller's session number given at :meth:`PacedWriter.submit`;
    ``unwritten``: the bytes not written; ``cancelled``: dropped because the session ended
    (cancelled, or the transport refused: :class:`~simulator.bridge.transports.SessionEnded`).
    """

    tag: str
    data: bytes
    due: list[float]
    mono: list[float] = field(default_factory=list)
    wall: list[float] = field(default_factory=list)
    error: str | None = None
    session: int = 0
    unwritten: bytes = b""
    cancelled: bool = False


class PacedWriter:
    """Writes submitted bytes on ``transport`` at their due ``time.monotonic()`` instants.

    ``on_written(Written)`` is called from the writer thread after each submission (keep it
    cheap and thread-safe, e.g. ``queue.put``). Bytes already late are written at once, in
    order; they are never dropped unless the transport is gone (then ``Written.error`` is set).
    """

    def __init__(self, transport: Transport, on_written: Callable[[Written], None]) -> None:
        self.transport = transport
        self.on_written = on_written
        self._jobs: queue.Queue[_Job | None] = queue.Queue()
        self._min_session = 0
        self._thread = threading.Thread(target=self._run, name="bridge-writer", daemon=True)
        self._thread.start()

    def submit(
        self,
        data: bytes,
        due: Sequence[float],
        tag: str = "",
        *,
        session: int = 0,
        port_session: int | None = None,
    ) -> None:
        """Queue ``data``; byte ``i`` is written at monotonic instant ``due[i]``.

        ``session``: the caller's session number (for :meth:`cancel`); ``port_session``: the
        transport connection the bytes are for (None: whichever is current).
        Raises ``ValueError`` if ``due`` and ``data`` differ in length.
        """
        if len(due) != len(data):
            raise ValueError(f"{len(data)} bytes but {len(due)} due instants")
        self._jobs.put(_Job(tag, bytes(data), list(due), session, port_session))

    def cancel(self, before: int) -> None:
        """Drop every submission of a session numbered below ``before`` (reported with
        ``cancelled``), without waiting for its due instants."""
        self._min_session = max(self._min_session, before)

    def idle(self) -> bool:
        """True when nothing is queued (a submission being written counts as queued)."""
        return self._jobs.unfinished_tasks == 0

    def join(self, timeout: float = 5.0) -> bool:
        """Wait until everything submitted has been written (or failed); True if idle."""
        end = time.monotonic() + timeout
        while not self.idle():
            if time.monotonic() > end:
                return False
            time.sleep(0.001)
        return True

    def stop(self) -> None:
        self._jobs.put(None)
        self._thread.join(timeout=5.0)

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                self._jobs.task_done()
                return
            done = Written(job.tag, b"", job.due, session=job.session)
            written = bytearray()
            write_args = {} if job.port_session is None else {"session": job.port_session}
            try:
                for value, at in zip(job.data, job.due, strict=True):
                    if not self._wait_until(at, job.session):
                        done.cancelled = True
                        done.error = f"session {job.session} ended"
                        break
                    self.transport.write(bytes((value,)), **write_args)
                    done.mono.append(time.monotonic())
                    done.wall.append(time.time())
                    written.append(value)
            except SessionEnded as exc:
                done.cancelled = True
                done.error = str(exc)
            except PortGone as exc:
                done.error = str(exc)
            done.data = bytes(written)
            done.unwritten = job.data[len(written) :]
            try:
                self.on_written(done)
            finally:
                self._jobs.task_done()

    def _wait_until(self, at: float, session: int) -> bool:
        """Sleep until monotonic ``at``; False once ``session`` is cancelled (seen within
        :data:`CANCEL_POLL` s). ``time.sleep`` keeps the due instants sharp: a wait on an event
        woke up to 3 ms late under load (benches/bench_bridge.py)."""
        while True:
            if session < self._min_session:
                return False
            delay = at - time.monotonic()
            if delay <= 0:
                return True
            time.sleep(min(delay, CANCEL_POLL))


@dataclass(frozen=True)
class _Job:
    tag: str
    data: bytes
    due: list[float]
    session: int
    port_session: int | None
