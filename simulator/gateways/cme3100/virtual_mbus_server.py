"""The Virtual M-Bus service on a real TCP socket (real I/O; the model is :mod:`.virtual_mbus`).

For a lab or a test: a head-end or an M-Bus master program (pymeterbus, libmbus over
``socket://``) connects and talks M-Bus; every request is answered by the model from the
gateway's value database. A virtual-time run never builds this (models do no I/O).

::

    with VirtualMbusServer(gateway.virtual_mbus(), clock=lambda: world.now) as srv:
        ... srv.port ...

Rules (seed 004 §6.27.1 shot, CME3100.md §9; docs/cme3100.md "Services"):

* **two clients at once** (004: "up to two clients can be connected at the same time",
  ``clients`` setting); a further connection is accepted and closed at once (counted in
  ``counters["rejected"]``), as :class:`simulator.bridge.tcp_service.TcpServerTransport`
  does for its one client. Each client has its own :class:`~.virtual_mbus.VirtualLink`
  (selection and FCB state are per connection).
* **idle timeout** (s, 0 = never): a client that sent nothing for that long is closed
  (``counters["idle_closed"]``).
* **framing**: the bridge's :class:`~simulator.bridge.framing.Framer` in M-Bus mode cuts the
  byte stream into frames (gap :func:`~simulator.bridge.framing.default_gap` at 2400 bit/s);
  junk is skipped and counted; a frame the model refuses (checksum, stop byte) gets silence,
  as from a slave.
* **time**: ``clock()`` gives the world time (s) the model judges value age by; ``lock``
  (default: a new one, :attr:`lock`) is held around every answer: a caller that runs the
  gateway's world while serving holds it too, so the database never changes mid-answer.
  With ``world``, every answer is recorded as a ``virtual_mbus`` trace event.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time
from collections.abc import Callable

from simulator.bridge.framing import Framer, default_gap
from simulator.core.world import World
from simulator.gateways.cme3100.virtual_mbus import VirtualLink, VirtualMbus
from simulator.mbus.errors import MBusError

#: How often (s) a client thread wakes to check the idle timeout and partial frames.
POLL_S = 0.02


class VirtualMbusServer:
    """Serves ``service`` on TCP ``host:port`` (0 = a free port, see :attr:`port`); module
    doc for ``clients``, ``idle_timeout_s``, ``clock``, ``lock`` and ``world``.
    Raises ``OSError`` if the address cannot be bound, ``ValueError`` for bad limits."""

    def __init__(
        self,
        service: VirtualMbus,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        clock: Callable[[], float],
        clients: int = 2,
        idle_timeout_s: float = 15.0,
        lock: threading.Lock | None = None,
        world: World | None = None,
        source: str = "cme3100/virtual_mbus",
    ) -> None:
        if clients < 1 or idle_timeout_s < 0:
            raise ValueError(f"clients must be >= 1 and idle_timeout_s >= 0 s, got "
                             f"{clients}, {idle_timeout_s}")  # fmt: skip
        self.service, self.clock, self.world, self.source = service, clock, world, source
        self.max_clients, self.idle_timeout_s = clients, idle_timeout_s
        self.lock = lock or threading.Lock()
        self.counters = dict.fromkeys(
            ("connections", "rejected", "idle_closed", "requests", "replies", "bad_frames",
             "junk_bytes"), 0,
        )  # fmt: skip
        self._srv = socket.create_server((host, port))
        self._srv.settimeout(0.2)
        self.host, self.port = self._srv.getsockname()[:2]
        self._clients: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._mutex = threading.Lock()
        self._closed = threading.Event()
        self._accepter = threading.Thread(
            target=self._accept_loop, name="vmbus-accept", daemon=True
        )
        self._accepter.start()

    def __enter__(self) -> VirtualMbusServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def active(self) -> int:
        """Clients connected now."""
        with self._mutex:
            return len(self._clients)

    def _count(self, key: str, n: int = 1) -> None:
        with self._mutex:
            self.counters[key] += n

    def _accept_loop(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = self._srv.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # server socket closed
            with self._mutex:
                full = len(self._clients) >= self.max_clients
                if full:
                    self.counters["rejected"] += 1
                else:
                    self._clients.add(conn)
                    self.counters["connections"] += 1
            if full:
                with contextlib.suppress(OSError):
                    conn.close()
                continue
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            t = threading.Thread(target=self._serve, args=(conn,), name="vmbus-client", daemon=True)
            self._threads.append(t)
            t.start()

    def _serve(self, conn: socket.socket) -> None:
        link = self.service.link()
        framer = Framer(default_gap(2400))
        last_rx = time.monotonic()
        try:
            while not self._closed.is_set():
                ready, _, _ = select.select([conn], [], [], POLL_S)
                now = time.monotonic()
                if ready:
                    data = conn.recv(4096)
                    if not data:
                        return  # the client closed
                    last_rx = now
                    items = framer.feed(now, data)
                else:
                    items = framer.expire(now)
                    if self.idle_timeout_s and now - last_rx > self.idle_timeout_s:
                        self._count("idle_closed")
                        return
                for item in items:
                    if item.kind == "junk":
                        self._count("junk_bytes", len(item.data))
                        continue
                    reply = self._answer(link, item.data)
                    if reply:
                        conn.sendall(reply)
        except OSError:
            return  # connection reset: the client is gone
        finally:
            with self._mutex:
                self._clients.discard(conn)
            with contextlib.suppress(OSError):
                conn.close()

    def _answer(self, link: VirtualLink, request: bytes) -> bytes:
        self._count("requests")
        with self.lock:
            try:
                answer = link.handle(request, self.clock())
            except MBusError:
                self._count("bad_frames")
                return b""
            if self.world is not None:
                self.world.emit(answer.event(request, self.source))
        if answer.reply:
            self._count("replies")
        return answer.reply

    def close(self) -> None:
        """Stop accepting, close every client, join the threads."""
        self._closed.set()
        with contextlib.suppress(OSError):
            self._srv.close()
        with self._mutex:
            for c in self._clients:
                with contextlib.suppress(OSError):
                    c.shutdown(socket.SHUT_RDWR)
        self._accepter.join(timeout=2)
        for t in self._threads:
            t.join(timeout=2)
