"""What the M-Bus master machine asks its driver to do, and what the driver tells it back.

The machine (:class:`~simulator.mbus.procedures.machine.MasterMachine`) never touches a port or
a clock (sans-I/O, in the style of h11/wsproto). A running procedure yields one *command* at a
time; the driver carries it out and answers with one *event*:

=================================  ==========================================================
command                            driver does, then feeds back
=================================  ==========================================================
:class:`Send` (frame, baud)        puts the frame on the line; :class:`Clock` at the end of
                                   its last stop bit
:class:`Listen` (timeout s)        waits up to ``timeout`` s for a first start bit, gathers
                                   the reply until the line is idle; :class:`Heard`
:class:`Wait` (seconds)            lets ``seconds`` pass with nothing sent; :class:`Clock`
:class:`SetBaud` (bit/s)           switches its UART; :class:`Clock`
:class:`Note` (kind, fields)       records a trace event / log line; :class:`Clock`
:class:`Done` (result)             nothing: the procedure is over (plain-data result)
=================================  ==========================================================

Times are the driver's clock in s (world time in the simulation, ``time.monotonic()`` on a
real port); the machine only compares and adds them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from simulator.core.events import TraceEvent


@dataclass(frozen=True, slots=True)
class Send:
    """Transmit ``frame`` (bytes) at ``baud`` bit/s."""

    frame: bytes
    baud: int


@dataclass(frozen=True, slots=True)
class Listen:
    """Receive a reply: first start bit within ``timeout`` s from now.

    ``purge``: the master only clears the line after a reply (a simulated bus records no
    timeout for it); ``window_closed``: the reply window already closed, so a driver that can
    tell the line is quiet (nothing pending, empty input buffer) may answer at once, empty.
    """

    timeout: float
    purge: bool = False
    window_closed: bool = False


@dataclass(frozen=True, slots=True)
class Wait:
    """Idle ``seconds`` (s, > 0) before the next request."""

    seconds: float


@dataclass(frozen=True, slots=True)
class SetBaud:
    """The master's UART moves to ``baud`` bit/s (after an acknowledged baud switch)."""

    baud: int


@dataclass(frozen=True, slots=True)
class Note:
    """A procedure result worth tracing: a typed event (:mod:`simulator.core.events`) without
    time or source; a driver stamps both (``world.emit``) or logs it."""

    event: TraceEvent

    @property
    def kind(self) -> str:
        return self.event.kind

    @property
    def fields(self) -> dict[str, Any]:
        return self.event.fields


@dataclass(frozen=True, slots=True)
class Done:
    """The procedure finished with ``result`` (found addresses, a Readout, True/False...)."""

    result: Any


Command = Send | Listen | Wait | SetBaud | Note | Done


@dataclass(frozen=True, slots=True)
class Clock:
    """The driver's time ``now`` (s) after a Send, Wait, SetBaud or Note."""

    now: float


@dataclass(frozen=True, slots=True)
class Heard:
    """What the master's receiver got for one :class:`Listen` (its reception facts).

    ``data``: the bytes (``b""`` on timeout); ``uart_error``: a parity/framing error in any
    character; ``collision_detected``: the port's current detector fired; ``overload``: the
    port's short-circuit protection was tripped; ``end``: end of the last character (the
    give-up time when empty); ``now``: the driver's time when the reception was over.
    """

    data: bytes
    end: float
    now: float
    uart_error: bool = False
    collision_detected: bool = False
    overload: bool = False

    @property
    def empty(self) -> bool:
        return not self.data

    @property
    def collision(self) -> bool:
        """What a master can tell on its own: UART errors or its current detector fired."""
        return self.collision_detected or self.uart_error

    @property
    def clean(self) -> bool:
        return not self.collision


Event = Clock | Heard
