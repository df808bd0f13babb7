"""Transparent M-Bus over TCP: a TCP client talks raw M-Bus to the simulated bus.

This is the CMe3100's "Transparent M-Bus over TCP/IP" service (seed 002 §6.26, slave ports
§6.28): a head-end or a master program connects to a TCP port and its bytes go onto the
M-Bus; the meters' replies come back on the socket. Modelled settings:

* **one client at a time**, by rule: a second connection while one is served is accepted
  and closed at once (``busy="refuse"``, counted in :attr:`TcpServerTransport.rejected`) or
  held until the served one leaves (``busy="queue"``, first come first served); either way
  :attr:`TcpServerTransport.on_notice` is told who and why, and the bridge traces it
  (``bridge_session`` ``refused``/``queued``). Each client is one session
  (:attr:`TcpServerTransport.session`): nothing written for one client reaches another;
* **idle timeout** (s): a client silent that long is disconnected (seed 004 slave-port
  default: 15 s; 0 = never);
* **packing**: ``"mbus"`` (the gateway forwards whole M-Bus frames, checked by the frame
  grammar) or ``"transparent"`` (bytes are forwarded after ``packing interval`` ms of
  silence from the client, unchecked). The bridge does this with its framer
  (:class:`~simulator.bridge.framing.Framer`); this module only carries bytes.

A pyserial client reaches it as ``socket://HOST:PORT`` (``serial.serial_for_url``), which is
how the end-to-end tests and ``meterbench record --port socket://...`` use it.

:class:`TcpServerTransport` implements the bridge's
:class:`~simulator.bridge.transports.Transport`: "no client" and "client gone" are
:class:`~simulator.bridge.transports.PortGone`, and ``reopen`` succeeds once a client is
connected, so the reader's reconnect loop is also the accept loop.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time
from collections import deque
from collections.abc import Callable

from simulator.bridge.transports import PortGone, SessionEnded

#: what to do with a second client while one is served
BUSY_POLICIES = ("refuse", "queue")

#: The reader retries at once: :meth:`TcpServerTransport.reopen` itself waits (up to 0.2 s)
#: for the next client, so a new client's first bytes are read as soon as it is accepted.
RECONNECT_BACKOFF_MAX = 0.002


class TcpServerTransport:
    """Listens on ``host:port`` (port 0 = ephemeral; see :attr:`address`).

    ``busy``: ``"refuse"`` or ``"queue"`` a second client (module doc). Raises ``OSError`` if
    the address cannot be bound, ``ValueError`` for another ``busy``.
    """

    reconnect_backoff_max = RECONNECT_BACKOFF_MAX
    #: a session is one connection (pty: one open..close by a program; TCP: one client)
    sessions_by_connection = True

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        idle_timeout: float = 15.0,
        busy: str = "refuse",
    ) -> None:
        if busy not in BUSY_POLICIES:
            raise ValueError(f"busy must be one of {BUSY_POLICIES} (got {busy!r})")
        self.busy = busy
        #: called from the accept thread as ``on_notice(state, peer, reason)`` with state
        #: ``"refused"`` or ``"queued"`` (the bridge traces it)
        self.on_notice: Callable[[str, str, str], None] | None = None
        self.session = 0  # connection number of the current (or last) client
        self._reader_session = 0  # the connection the reader was last told about (reopen)
        self._waiting: deque[tuple[socket.socket, str]] = deque()
        self._srv = socket.create_server((host, port))
        self._srv.settimeout(0.2)
        self.address: tuple[str, int] = self._srv.getsockname()[:2]
        self.name = f"tcp://{self.address[0]}:{self.address[1]}"
        self.idle_timeout = idle_timeout
        self.rejected = 0
        self.clients = 0
        self._client: socket.socket | None = None
        self._peer = ""
        self._last_rx = 0.0
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._closed = threading.Event()
        self._accepter = threading.Thread(target=self._accept_loop, name="tcp-accept", daemon=True)
        self._accepter.start()

    # -- accepting ------------------------------------------------------------------------
    def _accept_loop(self) -> None:
        while not self._closed.is_set():
            try:
                conn, peer = self._srv.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # server socket closed
            who = f"{peer[0]}:{peer[1]}"
            with self._lock:
                if self._client is None:
                    self._take(conn, who)
                    continue
                if _closing(self._client):
                    # the served client has hung up; the reader has not drained it yet: the
                    # newcomer is next, not refused (a rule, not the reader's timing)
                    self._waiting.append((conn, who))  # first come, first served
                    continue
                # one client at a time (seed 002 §6.26): a rule, not a race
                served = f"one client at a time: {self._peer} is being served"
                if self.busy == "queue":
                    self._waiting.append((conn, who))
                    state, reason = "queued", f"{served}; waiting ({len(self._waiting)} in line)"
                else:
                    self.rejected += 1
                    with contextlib.suppress(OSError):
                        conn.close()
                    state, reason = "refused", f"{served}; connection closed"
            if self.on_notice is not None:
                self.on_notice(state, who, reason)

    def _take(self, conn: socket.socket, peer: str) -> None:
        # under self._lock
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn.setblocking(False)
        self._client = conn
        self._peer = peer
        self._last_rx = time.monotonic()
        self.clients += 1
        self.session += 1
        self._ready.set()

    def _drop(self, only: socket.socket | None = None) -> None:
        """Close the current client (only if it is still ``only``, when given)."""
        with self._lock:
            if only is not None and self._client is not only:
                return
            if self._client is not None:
                with contextlib.suppress(OSError):
                    self._client.close()
            self._client = None
            self._ready.clear()
            if self._waiting and not self._closed.is_set():
                self._take(*self._waiting.popleft())

    @property
    def peer(self) -> str:
        """``host:port`` of the connected client, or ``""``."""
        return self._peer if self._client is not None else ""

    # -- Transport --------------------------------------------------------------------------
    def read(self, timeout: float) -> bytes:
        with self._lock:
            client, session, peer = self._client, self.session, self._peer
        if client is None:
            raise PortGone(f"{self.name}: no client connected")
        if session != self._reader_session:
            # another client took over since the reader's last reopen(): a new session
            raise PortGone(f"{self.name}: client changed")
        if self.idle_timeout and time.monotonic() - self._last_rx > self.idle_timeout:
            self._drop(client)
            raise PortGone(
                f"{self.name}: client {peer} idle > {self.idle_timeout:g} s, disconnected"
            )
        try:
            ready, _, _ = select.select([client], [], [], timeout)
            if not ready:
                return b""
            data = client.recv(4096)
        except (OSError, ValueError) as exc:
            self._drop(client)
            raise PortGone(f"{self.name}: client {peer} lost: {exc}") from None
        if not data:
            self._drop(client)
            raise PortGone(f"{self.name}: client {peer} disconnected")
        self._last_rx = time.monotonic()
        return data

    def write(self, data: bytes, session: int | None = None) -> None:
        with self._lock:
            client, current, peer = self._client, self.session, self._peer
        if client is None:
            raise SessionEnded(f"{self.name}: no client connected")
        if session is not None and session != current:
            # sent on the captured socket only: bytes of one client never reach another
            raise SessionEnded(f"{self.name}: client {session} gone (now client {current})")
        try:
            client.sendall(data)
        except BlockingIOError:
            # the client does not read: a real gateway's buffer would overflow too
            raise PortGone(f"{self.name}: client {peer} not reading") from None
        except OSError as exc:
            self._drop(client)
            raise PortGone(f"{self.name}: client {peer} lost: {exc}") from None

    def set_baud(self, baud: int) -> None:
        """The TCP side has no line speed; the bridge paces replies at the bus baud."""

    def reopen(self) -> None:
        """Succeeds once a client is connected (waits up to 0.2 s for one)."""
        if not self._ready.wait(0.2) or self._client is None:
            raise PortGone(f"{self.name}: waiting for a client")
        self._reader_session = self.session

    def close(self) -> None:
        self._closed.set()
        self._drop()
        with self._lock:
            for conn, _ in self._waiting:
                with contextlib.suppress(OSError):
                    conn.close()
            self._waiting.clear()
        with contextlib.suppress(OSError):
            self._srv.close()
        self._accepter.join(timeout=2)


def _closing(sock: socket.socket) -> bool:
    """The peer closed its side (or the socket failed): Linux POLLRDHUP/HUP/ERR."""
    poller = select.poll()
    poller.register(sock, getattr(select, "POLLRDHUP", 0x2000) | select.POLLHUP | select.POLLERR)
    try:
        return bool(poller.poll(0))
    except OSError:
        return True
