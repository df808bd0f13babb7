"""Transparent M-Bus over TCP: a TCP client talks raw M-Bus to the simulated bus.

This is the CMe3100's "Transparent M-Bus over TCP/IP" service (seed 002 §6.26, slave ports
§6.28): a head-end or a master program connects to a TCP port and its bytes go onto the
M-Bus; the meters' replies come back on the socket. Modelled settings:

* **one client at a time**: a second connection while one is served is accepted and closed
  at once (counted in :attr:`TcpServerTransport.rejected`);
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

from simulator.bridge.transports import PortGone

#: The reader retries quickly: a TCP client should not wait for a slow back-off.
RECONNECT_BACKOFF_MAX = 0.05


class TcpServerTransport:
    """Listens on ``host:port`` (port 0 = ephemeral; see :attr:`address`).

    Raises ``OSError`` if the address cannot be bound.
    """

    reconnect_backoff_max = RECONNECT_BACKOFF_MAX

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, *, idle_timeout: float = 15.0
    ) -> None:
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
            with self._lock:
                if self._client is not None:
                    self.rejected += 1  # one client at a time (seed 002 §6.26)
                    with contextlib.suppress(OSError):
                        conn.close()
                    continue
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                conn.setblocking(False)
                self._client = conn
                self._peer = f"{peer[0]}:{peer[1]}"
                self._last_rx = time.monotonic()
                self.clients += 1
                self._ready.set()

    def _drop(self) -> None:
        with self._lock:
            if self._client is not None:
                with contextlib.suppress(OSError):
                    self._client.close()
            self._client = None
            self._ready.clear()

    @property
    def peer(self) -> str:
        """``host:port`` of the connected client, or ``""``."""
        return self._peer if self._client is not None else ""

    # -- Transport --------------------------------------------------------------------------
    def read(self, timeout: float) -> bytes:
        client = self._client
        if client is None:
            raise PortGone(f"{self.name}: no client connected")
        if self.idle_timeout and time.monotonic() - self._last_rx > self.idle_timeout:
            self._drop()
            raise PortGone(
                f"{self.name}: client {self._peer} idle > {self.idle_timeout:g} s, disconnected"
            )
        try:
            ready, _, _ = select.select([client], [], [], timeout)
            if not ready:
                return b""
            data = client.recv(4096)
        except (OSError, ValueError) as exc:
            self._drop()
            raise PortGone(f"{self.name}: client {self._peer} lost: {exc}") from None
        if not data:
            self._drop()
            raise PortGone(f"{self.name}: client {self._peer} disconnected")
        self._last_rx = time.monotonic()
        return data

    def write(self, data: bytes) -> None:
        client = self._client
        if client is None:
            raise PortGone(f"{self.name}: no client connected")
        try:
            client.sendall(data)
        except BlockingIOError:
            # the client does not read: a real gateway's buffer would overflow too
            raise PortGone(f"{self.name}: client {self._peer} not reading") from None
        except OSError as exc:
            self._drop()
            raise PortGone(f"{self.name}: client {self._peer} lost: {exc}") from None

    def set_baud(self, baud: int) -> None:
        """The TCP side has no line speed; the bridge paces replies at the bus baud."""

    def reopen(self) -> None:
        """Succeeds once a client is connected (waits up to 0.2 s for one)."""
        if not self._ready.wait(0.2) or self._client is None:
            raise PortGone(f"{self.name}: waiting for a client")

    def close(self) -> None:
        self._closed.set()
        self._drop()
        with contextlib.suppress(OSError):
            self._srv.close()
        self._accepter.join(timeout=2)
