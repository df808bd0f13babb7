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
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import termios
import tty
from pathlib import Path

from simulator.bridge.transports import PortGone

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
        events = self._poll.poll(max(0, int(timeout * 1000)))
        if not events:
            return b""
        if any(ev & select.POLLHUP for _, ev in events):
            raise PortGone(f"{self.path}: no program has the terminal open")
        try:
            return os.read(self._fd, 4096)
        except BlockingIOError:
            return b""
        except OSError as exc:
            if exc.errno == errno.EIO:
                raise PortGone(f"{self.path}: terminal closed by the master program") from None
            raise PortGone(f"{self.path}: read failed: {exc}") from None

    def write(self, data: bytes) -> None:
        if self._closed:
            raise PortGone(f"{self.path}: closed")
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
