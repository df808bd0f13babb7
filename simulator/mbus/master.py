"""What a gateway's M-Bus master does, in world time: the SimPy driver of the master machine.

The procedures themselves (primary scan, secondary search, readout with retries, FCB,
multi-telegram, selection, SND_NKE, set primary address, baud switch) and the CMe3100 timing
knobs (:class:`MasterSettings`, seed 002 §6.25.2) live in the I/O-free
:class:`~simulator.mbus.procedures.machine.MasterMachine`; :class:`Master` carries its
commands out on a :class:`~simulator.mbus.bus.Bus` (``Send`` -> :meth:`Bus.transmit`,
``Listen`` -> :meth:`Bus.receive`, ``Wait`` -> a world sleep, ``Note`` -> a trace event).
Call them as ``result = yield from master.read(1)`` inside a SimPy process.

What the master can tell from a :class:`~simulator.mbus.bus.Reception`: its bytes, UART
parity/framing errors and the port's current detector (``collision_detected``); never how many
slaves really answered (that ground truth is only in the trace's ``senders``).

Trace (docs/mbus.md): ``readout`` (per meter), ``search`` (each probe and the result),
``scan`` (primary scan result), besides the bus's ``frame`` events.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable
from typing import Any

from simulator.mbus.address import SecondaryAddress, SecondaryMask
from simulator.mbus.bus import Bus, Reception
from simulator.mbus.fast_readout import clean_readout, read_now
from simulator.mbus.procedures import (
    AUTO_TELEGRAM_CAP,
    F_NIBBLE_MODES,
    Clock,
    Heard,
    Listen,
    MasterMachine,
    MasterSettings,
    Note,
    Proc,
    Procedure,
    Readout,
    Send,
    SetBaud,
    Wait,
)

Gen = Generator[Any, Any, Any]


class Master:
    """A gateway's M-Bus master on ``bus`` with ``settings`` (CMe3100 defaults)."""

    def __init__(
        self, bus: Bus, settings: MasterSettings | None = None, *, name: str = "master"
    ) -> None:
        self.bus = bus
        self.world = bus.world
        self.name = name
        self.machine = MasterMachine(settings, baud=bus.baud)
        #: readouts carried out on the exact fast path / through the event path
        self.readout_paths = {"fast": 0, "event": 0}

    @property
    def settings(self) -> MasterSettings:
        return self.machine.settings

    @settings.setter
    def settings(self, value: MasterSettings) -> None:
        self.machine.settings = value

    # -- the driver -------------------------------------------------------------------------
    def drive(self, proc: Proc[Any]) -> Gen:
        """Carry out one machine procedure on the bus; returns its result."""
        world, bus = self.world, self.bus
        self.machine.sync(world.now, bus.baud)
        p = Procedure(proc)
        cmd = p.command
        while True:
            kind = type(cmd)
            if kind is Send:
                yield from bus.transmit(cmd.frame, source=self.name)
                cmd = p.feed(Clock(world.now))
            elif kind is Listen:
                cmd = p.feed((yield from self._listen(cmd)))
            elif kind is Wait:
                yield from world.sleep(cmd.seconds)
                cmd = p.feed(Clock(world.now))
            elif kind is Note:
                cmd.event.source = self.name
                world.emit(cmd.event)
                cmd = p.feed(Clock(world.now))
            elif kind is SetBaud:
                bus.baud = cmd.baud
                cmd = p.feed(Clock(world.now))
            else:
                return cmd.result

    def _listen(self, cmd: Listen) -> Gen:
        now = self.world.now
        if cmd.window_closed and self.bus.line_busy_until <= now:
            return Heard(b"", now, now)  # the window is closed and nothing is on its way
        rx = yield from self.bus.receive(
            cmd.timeout, source=self.name, record_timeout=not cmd.purge
        )
        return heard(rx, self.world.now)

    @staticmethod
    def collision_seen(rx: Reception) -> bool:
        """What the master can tell: UART errors or its current detector fired."""
        return rx.collision_detected or rx.uart_errors > 0

    # -- procedures (see MasterMachine) -----------------------------------------------------
    def request(
        self,
        frame: bytes,
        *,
        reply: bool = True,
        settings: MasterSettings | None = None,
        init: bool = False,
    ) -> Gen:
        """One exchange (:meth:`MasterMachine.request`) -> the :class:`Heard` or ``None``."""
        return (
            yield from self.drive(
                self.machine.request(frame, reply=reply, settings=settings, init=init)
            )
        )

    def snd_nke(self, address: int, settings: MasterSettings | None = None) -> Gen:
        """SND_NKE to ``address`` (broadcast 255: no reply awaited); True if a clean E5 came."""
        return (yield from self.drive(self.machine.snd_nke(address, settings)))

    def initialise(self) -> Gen:
        """SND_NKE to 255 (every slave resets its FCB state; nobody answers), then init idle."""
        yield from self.drive(self.machine.initialise())

    def select(
        self, mask: SecondaryAddress | SecondaryMask | str, settings: MasterSettings | None = None
    ) -> Gen:
        """Select (CI 52) with selection retries -> ``"single"``, ``"collision"`` or ``"none"``."""
        return (yield from self.drive(self.machine.select(mask, settings)))

    def set_primary(self, target: int, new: int) -> Gen:
        """SND_UD CI 51 ``01 7A <new>`` (set primary address); True on a clean E5."""
        return (yield from self.drive(self.machine.set_primary(target, new)))

    def switch_baud(self, target: int, baud: int) -> Gen:
        """Baud switch (CI B8..BF): E5 at the old rate, then the master (and bus) follow."""
        return (yield from self.drive(self.machine.switch_baud(target, baud)))

    def read(
        self,
        target: int | SecondaryAddress | SecondaryMask,
        *,
        settings: MasterSettings | None = None,
    ) -> Gen:
        """Read one meter (generator -> :class:`Readout`; :func:`procedures.readout.read`).

        On the exact fast path when nothing can differ (:func:`clean_readout`): the whole
        readout is then computed at once (:func:`read_now`) without a SimPy event; counted
        in :attr:`readout_paths`.
        """
        s = settings or self.settings
        if clean_readout(self, target, s):
            self.readout_paths["fast"] += 1
            return read_now(self, target, s)
        self.readout_paths["event"] += 1
        return (yield from self.drive(self.machine.read(target, settings=s)))

    def scan_primary(self, addresses: Iterable[int] = range(0, 251)) -> Gen:
        """Primary scan: SND_NKE to each address -> the addresses that answered."""
        return (yield from self.drive(self.machine.scan_primary(addresses)))

    def search_secondary(self, mask: str = "FFFFFFFFFFFFFFFF") -> Gen:
        """Secondary search by digit descent -> the addresses found, in discovery order."""
        return (yield from self.drive(self.machine.search_secondary(mask)))


def heard(rx: Reception, now: float) -> Heard:
    """The master's view of a :class:`Reception` (its facts, not the ground truth)."""
    return Heard(
        rx.data,
        rx.end if rx.chars else now,
        now,
        uart_error=rx.uart_errors > 0,
        collision_detected=rx.collision_detected,
        overload=rx.overload,
    )


__all__ = ["AUTO_TELEGRAM_CAP", "F_NIBBLE_MODES", "Master", "MasterSettings", "Readout"]
