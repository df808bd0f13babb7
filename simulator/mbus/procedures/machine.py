"""One M-Bus master as an I/O-free state machine: link timing and the single exchanges.

:class:`MasterMachine` holds what a master remembers between requests (when the next request
may start, its baud rate, the end of its last frame) and offers every master procedure as a
generator of :mod:`~simulator.mbus.procedures.commands`: it yields ``Send``/``Listen``/``Wait``/
``SetBaud``/``Note`` and is fed ``Clock``/``Heard``; :class:`Procedure` steps one such
generator (``.command`` now, ``feed(event)`` -> next command, ``Done(result)`` at the end).
The SimPy driver (:class:`simulator.mbus.master.Master`) and the blocking serial driver
(:class:`simulator.bridge.serial_master.SerialMaster`) only carry the commands out.

Timing (seed 002 §6.25.2): a request starts no earlier than ``init_idle`` after a SND_NKE,
``collision_idle`` after a reception with a detected collision, else ``request_idle``, each
counted from the end of the reception (or of the timeout). A collision is *detected* when
the reception has a UART error or the port's current detector fired, or when the master
concludes one from the content: more than a single E5 to a selection, or a search probe's
REQ_UD2 answered by an undecodable telegram or followed by more bytes. A master never sees
how many slaves really answered.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable
from functools import lru_cache
from typing import Any, TypeVar

from simulator.core.events import TraceEvent
from simulator.mbus.address import SecondaryAddress, SecondaryMask
from simulator.mbus.frames import (
    ADDR_BROADCAST,
    ADDR_NETWORK,
    SND_NKE,
    SND_UD,
    LongFrame,
    ShortFrame,
)
from simulator.mbus.procedures import readout, search
from simulator.mbus.procedures.commands import (
    Clock,
    Command,
    Done,
    Event,
    Heard,
    Listen,
    Note,
    Send,
    SetBaud,
    Wait,
)
from simulator.mbus.procedures.settings import MasterSettings
from simulator.mbus.wire import BAUD_BY_CI, char_time, response_window

T = TypeVar("T")
#: A running procedure: yields commands, is sent events, returns its result.
Proc = Generator[Command, Event, T]

E5 = b"\xe5"


class MasterMachine:
    """The state of one M-Bus master with ``settings`` at ``baud`` bit/s (no I/O, no clock).

    ``now`` is the driver's time as of the last event fed (s); a driver sets it (and ``baud``)
    with :meth:`sync` before it starts a procedure.
    """

    def __init__(self, settings: MasterSettings | None = None, *, baud: int = 2400) -> None:
        self.settings = settings or MasterSettings()
        self.baud = baud
        self.now = 0.0
        self.next_free = float("-inf")
        self.last_tx_end = float("-inf")
        self.overloaded = False  # the last reception found the port's protection tripped

    def sync(self, now: float, baud: int) -> None:
        """The driver's clock (s) and line rate (bit/s) before a procedure starts."""
        self.now = now
        self.baud = baud

    # -- one exchange ---------------------------------------------------------------------
    def _clock(self, event: Event) -> None:
        self.now = event.now

    def note(self, event: TraceEvent) -> Proc[None]:
        """Hand a typed trace event (time and source left to the driver) to the driver."""
        self._clock((yield Note(event)))

    def send(self, frame: bytes) -> Proc[None]:
        """Wait out the idle time, then transmit ``frame``."""
        if self.next_free > self.now:
            self._clock((yield Wait(self.next_free - self.now)))
        self._clock((yield Send(frame, self.baud)))
        self.last_tx_end = self.now

    def listen(self, timeout: float, **how: Any) -> Proc[Heard]:
        heard = yield Listen(timeout, **how)
        assert isinstance(heard, Heard), f"Listen must be answered with Heard, got {heard!r}"
        self._clock(heard)
        self.overloaded = heard.overload
        return heard

    def request(
        self,
        frame: bytes,
        *,
        reply: bool = True,
        settings: MasterSettings | None = None,
        init: bool = False,
    ) -> Proc[Heard | None]:
        """Send ``frame`` after the idle time and (if ``reply``) receive the answer.

        Returns the :class:`Heard` (``None`` when ``reply`` is False) and sets when the next
        request may start (module doc; ``init``: this was a SND_NKE).
        """
        s = settings or self.settings
        yield from self.send(frame)
        tx_end = self.now
        if not reply:
            self.next_free = tx_end + (s.init_idle if init else s.request_idle)
            return None
        rx = yield from self.listen(s.response_timeout)
        end = rx.end if not rx.empty else self.now
        idle = s.collision_idle if rx.collision else s.request_idle
        self.next_free = end + idle
        if init:
            self.next_free = max(self.next_free, tx_end + s.init_idle)
        return rx

    def purge(self) -> Proc[bool]:
        """Listen until the reply window of the last request has surely closed; True if more
        bytes came (then collision idle applies)."""
        baud = self.baud
        until = self.last_tx_end + response_window(baud)[1] + char_time(baud)
        wait = until - self.now
        rx = yield from self.listen(
            max(wait, 0.0) + 2 * char_time(baud), purge=True, window_closed=wait <= 0
        )
        if not rx.empty:
            self.collision_idle(rx)
        return not rx.empty

    def collision_idle(self, rx: Heard) -> None:
        """The master concluded a collision from ``rx``: no request before collision idle."""
        self.next_free = max(self.next_free, rx.end + self.settings.collision_idle)

    # -- primitives -------------------------------------------------------------------------
    def snd_nke(self, address: int, settings: MasterSettings | None = None) -> Proc[bool]:
        """SND_NKE to ``address`` (broadcast 255: no reply awaited); True if a clean E5 came."""
        frame = ShortFrame(SND_NKE, address).to_bytes()
        rx = yield from self.request(
            frame, reply=address != ADDR_BROADCAST, settings=settings, init=True
        )
        return rx is not None and rx.clean and rx.data == E5

    def initialise(self) -> Proc[bool]:
        """SND_NKE to 255 (every slave resets its FCB state; nobody answers), then init idle."""
        return (yield from self.snd_nke(ADDR_BROADCAST))

    def select(
        self, mask: SecondaryAddress | SecondaryMask | str, settings: MasterSettings | None = None
    ) -> Proc[str]:
        """Select by secondary address/mask (SND_UD CI 52 to 253), with selection retries.

        Returns ``"single"`` (one clean E5), ``"collision"`` (garbled reply or detected
        collision) or ``"none"`` (no answer after ``selection_retries + 1`` attempts).
        """
        s = settings or self.settings
        frame = select_frame(SecondaryMask.parse(mask) if isinstance(mask, str) else mask)
        for _ in range(s.selection_retries + 1):
            rx = yield from self.request(frame, settings=s)
            if rx.empty:
                continue
            if rx.collision or rx.data != E5:
                self.collision_idle(rx)
                return "collision"
            return "single"
        return "none"

    def set_primary(self, target: int, new: int) -> Proc[bool]:
        """SND_UD CI 51 ``01 7A <new>`` (set primary address); True on a clean E5."""
        frame = LongFrame(SND_UD, target, 0x51, bytes([0x01, 0x7A, new])).to_bytes()
        rx = yield from self.request(frame)
        return rx.clean and rx.data == E5

    def switch_baud(self, target: int, baud: int) -> Proc[bool]:
        """Baud switch (control frame CI B8..BF): E5 at the old rate, then the master follows.

        Raises ``KeyError`` for a rate without a CI (PROTOCOL.md §2.6).
        """
        ci = {v: k for k, v in BAUD_BY_CI.items()}[baud]
        frame = LongFrame(SND_UD, target, ci).to_bytes()
        rx = yield from self.request(frame, reply=target != ADDR_BROADCAST)
        self._clock((yield SetBaud(baud)))
        self.baud = baud
        return rx is None or (rx.clean and rx.data == E5)

    # -- procedures (readout.py, search.py) --------------------------------------------------
    def read(
        self,
        target: int | SecondaryAddress | SecondaryMask,
        *,
        settings: MasterSettings | None = None,
    ) -> Proc[readout.Readout]:
        """Read one meter -> :class:`~simulator.mbus.procedures.readout.Readout`."""
        return readout.read(self, target, settings or self.settings)

    def scan_primary(self, addresses: Iterable[int] = range(0, 251)) -> Proc[list[int]]:
        """Primary scan -> the addresses that answered."""
        return search.scan_primary(self, addresses)

    def search_secondary(self, mask: str = "FFFFFFFFFFFFFFFF") -> Proc[list[SecondaryAddress]]:
        """Secondary search by digit descent -> the addresses found, in discovery order."""
        return search.search_secondary(self, mask)


@lru_cache(maxsize=4096)
def select_frame(target: SecondaryAddress | SecondaryMask) -> bytes:
    """The selection frame (SND_UD to 253, CI 52, EN 13757-3) for ``target``: built once
    per address or mask (a readout by secondary address sends one each time)."""
    mask = SecondaryMask.of(target) if isinstance(target, SecondaryAddress) else target
    return LongFrame(SND_UD, ADDR_NETWORK, 0x52, mask.to_bytes()).to_bytes()


class Procedure:
    """Steps one procedure generator: ``command`` is what to do now; :meth:`feed` answers it.

    After the last command, ``command`` is :class:`Done` with the result (also ``result``).
    """

    def __init__(self, gen: Proc[Any]) -> None:
        self._gen = gen
        self.result: Any = None
        self.command: Command = self._step(None)

    def feed(self, event: Event) -> Command:
        """The answer to ``command``; returns the next command."""
        if isinstance(self.command, Done):
            raise RuntimeError("the procedure is done: nothing to feed")
        self.command = self._step(event)
        return self.command

    def _step(self, event: Event | None) -> Command:
        try:
            return self._gen.send(event)  # type: ignore[arg-type]
        except StopIteration as stop:
            self.result = stop.value
            return Done(stop.value)


__all__ = ["Clock", "MasterMachine", "Procedure", "Proc"]
