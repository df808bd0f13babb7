"""A pseudo-terminal pair for a master program on the same machine (``meterbench serve --pty``).

``os.openpty()`` gives two ends: the bridge keeps the controlling side (a file descriptor) and
a master program (pymeterbus, libmbus ``mbus-serial-*``, a gateway simulator) opens the
terminal path it prints, e.g. ``/dev/pts/7``, as if it were a USB M-Bus level converter. Both
ends are put in raw mode (``tty.setraw``): no echo, no line editing, no CR/LF translation, so
every byte passes unchanged.

Limitations (documented in docs/bridge.md):

* A pty has no line speed and does not pace bytes; the bridge paces replies itself
  (:mod:`simulator.bridge.pacing`).
* Linux ptys ignore/reject ``PARENB``: a master that insists on 8E1 and verifies its
  termios (libmbus: "Failed to set baud rate") cannot open a pty; open it 8N1 or point such
  masters at the TCP service (``meterbench serve --tcp``).
* When the master program closes the terminal, reads on the controlling side fail with EIO
  until somebody opens it again; :class:`PtyTransport` reports that as
  :class:`~simulator.bridge.transports.PortGone` and :meth:`PtyTransport.reopen` succeeds once a
  program has the terminal open again.

Sessions: a pty keeps its buffers while the controlling side is open, so bytes would cross
from one master program to the next: what the closing program wrote but the bridge had not
read yet (Linux reports POLLIN together with POLLHUP), and reply bytes written for it that
the next program would read on open. At the hang-up :class:`PtyTransport` therefore reads and
drops the unread input (``PortGone.dropped``), flushes both directions (``tcflush``) and
refuses every write until a program opens the terminal again (a new :attr:`session`).
Limitation: a program that opens the terminal within the reader's wake-up (~0.1 ms) after the
previous one closed it is not seen as a new session (the hang-up never shows).
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import termios
import threading
import tty
from pathlib import Path

from simulator.bridge.transports import PortGone, SessionEnded

_SPEEDS = {
    getattr(termios, f"B{b}"): b
    for b in (300, 600, 1200, 2400, 4800, 9600, 19200, 38400)
    if hasattr(termios, f"B{b}")
}


class PtyTransport:
    """The bridge's side of a fresh pty pair; ``path`` is what a master program opens.

    ``link``: also make a symlink at this path (a stable name for the master's config,
    replaced if it exists, removed on :meth:`close`).
    Raises ``OSError`` if the pair cannot be created or the link cannot be made.
    """

    #: Polling the hang-up state is cheap, so a master program that (re)opens the terminal
    #: is noticed within 20 ms.
    reconnect_backoff_max = 0.02
    #: a session is one connection (pty: one open..close by a program; TCP: one client)
    sessions_by_connection = True

    def __init__(self, *, link: str | Path | None = None) -> None:
        self._fd, slave_fd = os.openpty()
        tty.setraw(self._fd)
        tty.setraw(slave_fd)
        self.path = os.ttyname(slave_fd)
        # Close our copy of the terminal side: a master program that closes it then shows up
        # as EIO/HUP, which is how an unplugged adapter looks.
        os.close(slave_fd)
        self.link = Path(link) if link is not None else None
        if self.link is not None:
            with contextlib.suppress(FileNotFoundError):
                self.link.unlink()
            self.link.symlink_to(self.path)
        self.name = f"pty:{self.path}"
        self._poll = select.poll()
        self._poll.register(self._fd, select.POLLIN)
        self._closed = False
        # the hang-up and the writer race: a write either lands before the flush or is refused
        self._lock = threading.Lock()
        self._hung_up = True  # nobody has the terminal open yet
        self.session = 0

    def fileno(self) -> int:
        return self._fd

    def peer_present(self) -> bool:
        """True while some program has the terminal side open (no hang-up on our side)."""
        if self._closed:
            return False
        return not any(ev & select.POLLHUP for _, ev in self._poll.poll(0))

    def read(self, timeout: float) -> bytes:
        if self._closed:
            raise PortGone(f"{self.path}: closed")
        if self._hung_up:
            # opened before the reader saw it closed: start the session through reopen()
            raise PortGone(f"{self.path}: no program has the terminal open")
        events = self._poll.poll(max(0, int(timeout * 1000)))
        if not events:
            return b""
        if any(ev & select.POLLHUP for _, ev in events):
            dropped = self._hang_up()
            raise PortGone(f"{self.path}: no program has the terminal open", dropped=dropped)
        try:
            return os.read(self._fd, 4096)
        except BlockingIOError:
            return b""
        except OSError as exc:
            if exc.errno == errno.EIO:
                dropped = self._hang_up()
                raise PortGone(
                    f"{self.path}: terminal closed by the master program", dropped=dropped
                ) from None
            raise PortGone(f"{self.path}: read failed: {exc}") from None

    def _hang_up(self) -> bytes:
        """The program closed the terminal: end its session, return its unread bytes."""
        with self._lock:
            if self._hung_up:
                return b""
            self._hung_up = True
            unread = bytearray()
            while any(ev & select.POLLIN for _, ev in self._poll.poll(0)):
                try:
                    chunk = os.read(self._fd, 4096)
                except OSError:
                    break  # EIO: nothing left
                if not chunk:
                    break
                unread += chunk
            with contextlib.suppress(termios.error, OSError):
                termios.tcflush(self._fd, termios.TCIOFLUSH)
            return bytes(unread)

    def write(self, data: bytes, session: int | None = None) -> None:
        if self._closed:
            raise PortGone(f"{self.path}: closed")
        with self._lock:
            if self._hung_up:
                raise SessionEnded(f"{self.path}: no program has the terminal open")
            if session is not None and session != self.session:
                raise SessionEnded(f"{self.path}: session {session} ended (now {self.session})")
            try:
                view = memoryview(data)
                while view:
                    n = os.write(self._fd, view)
                    view = view[n:]
            except OSError as exc:
                raise PortGone(f"{self.path}: write failed: {exc}") from None

    def set_baud(self, baud: int) -> None:
        """A pty does not pace bytes; the bridge's pacing carries the baud rate."""

    def line_baud(self) -> int | None:
        """The speed (bit/s) the master program set on its terminal, or ``None`` if unknown.

        A pty keeps the termios settings of its terminal side, so the bridge can follow a
        master that reopens its port at 300 or 9600 bit/s.
        """
        if self._closed:
            return None
        try:
            speed = termios.tcgetattr(self._fd)[5]
        except termios.error:
            return None
        return _SPEEDS.get(speed)

    def reopen(self) -> None:
        """Succeeds once a master program has the terminal open again."""
        if not self.peer_present():
            raise PortGone(f"{self.path}: waiting for a master program to open it")
        with self._lock:
            if self._hung_up:
                self._hung_up = False
                self.session += 1

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(OSError):
            os.close(self._fd)
        if self.link is not None:
            with contextlib.suppress(FileNotFoundError):
                if self.link.is_symlink():
                    self.link.unlink()
