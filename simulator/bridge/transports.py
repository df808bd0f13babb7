"""Byte transports of the serial bridge: one interface over every way a master can be reached.

A :class:`Transport` moves raw bytes between the bridge and a physical (or emulated) M-Bus
master. Every serial-like transport goes through ``serial.serial_for_url()`` (pyserial), so a
device path (``/dev/ttyUSB0``), ``socket://host:port``, ``rfc2217://host:port`` and
``loop://`` all work the same way (:class:`SerialTransport`). Two transports are our own
because pyserial cannot open them by URL: the controlling side of a pseudo-terminal pair
(:class:`simulator.bridge.pty.PtyTransport`) and the listening side of the transparent M-Bus
TCP service (:class:`simulator.bridge.tcp_service.TcpServerTransport`).

Errors: a transport raises :class:`PortGone` when the far end vanished (USB unplug, socket
dropped, pty closed by the master); the bridge's reader then reopens it with back-off
(:meth:`Transport.reopen`). ``read`` returning ``b""`` only means "nothing within the
timeout".

Sessions: :attr:`Transport.session` numbers the far end's connections (a TCP client, a
program's open..close of the pty, an open of a serial port): it changes whenever the far end
may be someone else. ``write(data, session=n)`` writes only while connection ``n`` is the
current one and raises :class:`SessionEnded` otherwise, so a reply meant for one master can
never reach the next (docs/bridge.md "Sessions").
"""

from __future__ import annotations

import os
import threading
from typing import Protocol

import serial


class PortGone(Exception):
    """The transport's far end is gone (unplugged, disconnected); ``reopen()`` may bring it back.

    ``dropped``: bytes the far end had sent but nobody will answer (a pty's unread input when
    the master program closed it), thrown away by the transport and reported by the reader.
    """

    def __init__(self, reason: str, *, dropped: bytes = b"") -> None:
        super().__init__(reason)
        self.dropped = dropped


class SessionEnded(PortGone):
    """A write for connection ``n`` while another one (or none) is current."""


class Transport(Protocol):
    """What the bridge needs from a byte transport (all methods are thread-safe enough for one
    reader thread plus one writer thread)."""

    name: str
    #: number of the current connection of the far end (0: none yet); see module doc
    session: int

    def read(self, timeout: float) -> bytes:
        """Bytes available within ``timeout`` s (``b""`` if none); :class:`PortGone` if gone."""

    def write(self, data: bytes, session: int | None = None) -> None:
        """Write ``data`` now; :class:`PortGone` if the far end is gone, :class:`SessionEnded`
        if ``session`` is given and is not the current connection."""

    def set_baud(self, baud: int) -> None:
        """Follow a baud switch (bit/s); a no-op where the transport has no line speed."""

    def reopen(self) -> None:
        """Try to reopen after :class:`PortGone`; raises :class:`PortGone` if still gone."""

    def close(self) -> None:
        """Release the transport for good."""


class SerialTransport:
    """Any pyserial URL: a device path, ``socket://``, ``rfc2217://``, ``loop://``.

    The port is opened 8N1 by default: the M-Bus level converter (or the pty) carries the
    bytes; parity is the converter's business. ``parity="E"`` opens 8E1 on a real UART.
    A port that cannot be opened yet is not an error here: ``read`` raises :class:`PortGone`
    and the bridge's reader retries, so a bridge started before the adapter is plugged in
    simply waits for it; :attr:`open_error` then says why (for callers that must not wait,
    such as a lab bench at start).
    """

    def __init__(self, url: str, *, baud: int = 2400, parity: str = "N") -> None:
        self.url = url
        self.name = url
        self.baud = baud
        self.parity = parity
        self._port: serial.SerialBase | None = None
        self._lock = threading.Lock()
        self.session = 0
        #: why the last open failed (OS reason, e.g. "[Errno 2] No such file or directory"),
        #: None while the port is open
        self.open_error: str | None = None
        try:
            self.reopen()
        except PortGone:
            pass  # the reader's back-off loop keeps trying (adapter not plugged in yet)

    def _open(self) -> serial.SerialBase:
        try:
            return serial.serial_for_url(
                self.url,
                baudrate=self.baud,
                parity=self.parity,
                timeout=0.05,
                write_timeout=2.0,
            )
        except (serial.SerialException, OSError, ValueError) as exc:
            self.open_error = os_reason(exc)
            raise PortGone(f"{self.url}: cannot open: {self.open_error}") from None

    def reopen(self) -> None:
        with self._lock:
            if self._port is not None:
                try:
                    self._port.close()
                except Exception:  # noqa: BLE001 - a dead port may fail to close; we drop it
                    pass
                self._port = None
            self._port = self._open()
            self.open_error = None
            self.session += 1

    def read(self, timeout: float) -> bytes:
        port = self._port
        if port is None:
            raise PortGone(f"{self.url}: not open")
        try:
            port.timeout = timeout
            first = port.read(1)
            if not first:
                return b""
            rest = port.read(port.in_waiting) if port.in_waiting else b""
            return first + rest
        except (serial.SerialException, OSError, TypeError, AttributeError) as exc:
            # TypeError/AttributeError: pyserial internals after a concurrent close
            raise PortGone(f"{self.url}: read failed: {exc}") from None

    def write(self, data: bytes, session: int | None = None) -> None:
        port = self._port
        if port is None:
            raise PortGone(f"{self.url}: not open")
        if session is not None and session != self.session:
            raise SessionEnded(f"{self.url}: connection {session} ended (now {self.session})")
        try:
            port.write(data)
        except (serial.SerialException, OSError, TypeError, AttributeError) as exc:
            raise PortGone(f"{self.url}: write failed: {exc}") from None

    def set_baud(self, baud: int) -> None:
        self.baud = baud
        port = self._port
        if port is not None:
            try:
                port.baudrate = baud
            except (serial.SerialException, OSError, ValueError):
                pass  # socket:// and loop:// accept and ignore; a dead port is found by read()

    def close(self) -> None:
        with self._lock:
            if self._port is not None:
                try:
                    self._port.close()
                finally:
                    self._port = None


def open_transport(url: str, *, baud: int = 2400, parity: str = "N") -> SerialTransport:
    """Open ``url`` through ``serial.serial_for_url`` (see :class:`SerialTransport`)."""
    return SerialTransport(url, baud=baud, parity=parity)


def os_reason(exc: BaseException) -> str:
    """The OS's reason for ``exc`` as ``[Errno N] text`` when it carries an errno (pyserial's
    ``SerialException`` repeats the port and the message; this keeps the part that says why),
    else ``str(exc)``."""
    err = getattr(exc, "errno", None)
    if isinstance(err, int):
        return f"[Errno {err}] {os.strerror(err)}"
    return str(exc)
