"""The master machine on a real serial port: a blocking driver in real time.

:class:`SerialMaster` carries out the commands of the I/O-free
:class:`~simulator.mbus.procedures.machine.MasterMachine` on a pyserial port (a USB master
level converter, a pty, ``socket://`` to the transparent M-Bus TCP service) with
``time.monotonic()`` as its clock, so ``meterbench record`` and the tests run the very
procedures the simulated gateway runs (:class:`simulator.mbus.master.Master`).

What it can tell from the port: the bytes and when they came. A pyserial port reports no
parity/framing errors and has no current detector, so :class:`Heard` never carries those; a
collision shows as bytes that are not one clean frame (or more than one E5). A reply is
complete when the frame grammar says so (then the line is drained until ``gap`` s of silence,
so a trailing colliding reply is seen), or after ``gap`` s of silence; ``gap`` defaults to
3 character times + 20 ms (USB adapters deliver bytes in bursts).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

import serial

from simulator.mbus.address import SecondaryAddress, SecondaryMask
from simulator.mbus.errors import MBusError
from simulator.mbus.frames import frame_length
from simulator.mbus.procedures import (
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
from simulator.mbus.wire import char_time, frame_time

#: Longest a reply may go on once it started (s): a runaway sender cannot hang the master.
MAX_REPLY_S = 5.0


class SerialMaster:
    """Drives a :class:`MasterMachine` with ``settings`` over the open pyserial ``port``.

    ``echo``: the converter echoes our bytes (read and dropped after each send); ``log``:
    called with each :class:`Note` as ``"kind k=v ..."`` text; ``gap``: silence (s) that ends
    a reply (default: module doc). Procedures block and return plain results.
    """

    def __init__(
        self,
        port: serial.SerialBase,
        settings: MasterSettings | None = None,
        *,
        echo: bool = False,
        gap: float | None = None,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.port = port
        self.machine = MasterMachine(settings, baud=int(port.baudrate))
        self.echo = echo
        self._gap = gap
        self.log = log or (lambda msg: None)
        self.notes: list[Note] = []

    @property
    def gap(self) -> float:
        return self._gap if self._gap is not None else 3 * char_time(self.machine.baud) + 0.020

    # -- the driver ---------------------------------------------------------------------------
    def drive(self, proc: Proc[Any]) -> Any:
        """Run one machine procedure to its end on the port; returns its result."""
        self.machine.sync(time.monotonic(), self.machine.baud)
        p = Procedure(proc)
        cmd = p.command
        while True:
            if isinstance(cmd, Send):
                cmd = p.feed(Clock(self._send(cmd)))
            elif isinstance(cmd, Listen):
                cmd = p.feed(self._listen(cmd))
            elif isinstance(cmd, Wait):
                time.sleep(cmd.seconds)
                cmd = p.feed(Clock(time.monotonic()))
            elif isinstance(cmd, Note):
                self.notes.append(cmd)
                self.log(" ".join([cmd.kind] + [f"{k}={v}" for k, v in cmd.fields.items()]))
                cmd = p.feed(Clock(time.monotonic()))
            elif isinstance(cmd, SetBaud):
                self.port.baudrate = cmd.baud
                cmd = p.feed(Clock(time.monotonic()))
            else:
                return cmd.result

    def _send(self, cmd: Send) -> float:
        """Write the frame; returns when its last stop bit has left (s, monotonic)."""
        if int(self.port.baudrate) != cmd.baud:
            self.port.baudrate = cmd.baud
        self.port.reset_input_buffer()  # replies that came too late belong to nobody
        start = time.monotonic()
        self.port.write(cmd.frame)
        self.port.flush()
        # a pty or socket takes the bytes at once; the wire would need the frame's duration
        end = start + frame_time(len(cmd.frame), cmd.baud)
        if self.echo:
            self._read(len(cmd.frame), end + 1.0)
        delay = end - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        return max(end, time.monotonic())

    def _listen(self, cmd: Listen) -> Heard:
        port = self.port
        if cmd.window_closed and not port.in_waiting:
            now = time.monotonic()
            return Heard(b"", now, now)
        deadline = time.monotonic() + cmd.timeout
        buf, last = b"", 0.0
        while True:
            chunk = port.read(max(1, port.in_waiting))
            now = time.monotonic()
            if chunk:
                buf += chunk
                last = now
                if _complete(buf):
                    buf += self._drain()
                    last = time.monotonic()
                    break
            elif (not buf and now > deadline) or (buf and now - last > self.gap):
                break
            if buf and now - deadline > MAX_REPLY_S:
                break
        now = time.monotonic()
        return Heard(buf, last if buf else now, now)

    def _drain(self) -> bytes:
        """Bytes that follow a complete frame until ``gap`` s of silence (a colliding tail)."""
        out, last = b"", time.monotonic()
        while time.monotonic() - last <= self.gap:
            chunk = self.port.read(max(1, self.port.in_waiting))
            if chunk:
                out += chunk
                last = time.monotonic()
        return out

    def _read(self, n: int, deadline: float) -> bytes:
        out = b""
        while time.monotonic() < deadline and len(out) < n:
            out += self.port.read(max(1, self.port.in_waiting))
        return out

    # -- procedures (see MasterMachine) -------------------------------------------------------
    def snd_nke(self, address: int) -> bool:
        return self.drive(self.machine.snd_nke(address))

    def select(self, mask: SecondaryAddress | SecondaryMask | str) -> str:
        return self.drive(self.machine.select(mask))

    def set_primary(self, target: int, new: int) -> bool:
        return self.drive(self.machine.set_primary(target, new))

    def switch_baud(self, target: int, baud: int) -> bool:
        return self.drive(self.machine.switch_baud(target, baud))

    def read(self, target: int | SecondaryAddress | SecondaryMask) -> Readout:
        return self.drive(self.machine.read(target))

    def scan_primary(self, addresses: Iterable[int] = range(0, 251)) -> list[int]:
        return self.drive(self.machine.scan_primary(addresses))

    def search_secondary(self, mask: str = "FFFFFFFFFFFFFFFF") -> list[SecondaryAddress]:
        return self.drive(self.machine.search_secondary(mask))


def _complete(buf: bytes) -> bool:
    """The bytes hold at least one whole frame by the EN 13757-2 grammar."""
    try:
        n = frame_length(buf)
    except MBusError:
        return False  # garbled: read until silence
    return n is not None and len(buf) >= n
