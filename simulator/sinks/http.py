"""An HTTP head-end: a real aiohttp server in a background thread that records requests.

Used by the Stream Plugin tests and the ``stream`` runner as the receiving server of push
reports (seed 003 §9.3: HTTP POST with chunked transfer encoding) and as the configuration
server that serves CAD files and takes result notifications (seed 003 §9.1, which requires
"HTTP Response Code = 200 and "OK" in the http body").

::

    with HttpSink() as sink:                 # 127.0.0.1, ephemeral port
        sink.add_file("/cfg/stream.cad", text)
        sink.fail_next(2, status=500)        # the next two POSTs get 500
        ... sink.url("/push") ...
        sink.requests                        # list of HttpRequest, in arrival order

The server runs its own asyncio loop in a daemon thread; :meth:`HttpSink.stop` shuts it down
and joins the thread. It binds 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass

from aiohttp import web


@dataclass(frozen=True)
class HttpRequest:
    """One request as the server saw it; ``chunked`` is True for Transfer-Encoding: chunked."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    chunked: bool
    status: int

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


class HttpSink:
    """A recording HTTP server on ``host``:``port`` (0 = ephemeral); see the module doc."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self.requests: list[HttpRequest] = []
        self.files: dict[str, tuple[int, bytes]] = {}
        self._fail: list[int] = []
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    # -- configuration ------------------------------------------------------------------
    def add_file(self, path: str, body: str | bytes, status: int = 200) -> None:
        """Serve ``body`` for GET ``path``."""
        with self._lock:
            self.files[path] = (status, body.encode() if isinstance(body, str) else body)

    def fail_next(self, n: int, status: int = 500) -> None:
        """Answer the next ``n`` POSTs with ``status`` instead of 200 OK."""
        with self._lock:
            self._fail.extend([status] * n)

    def url(self, path: str = "/") -> str:
        return f"http://{self.host}:{self.port}{path}"

    def posts(self, path: str | None = None) -> list[HttpRequest]:
        """Received POSTs (to ``path`` if given) that were answered 200."""
        with self._lock:
            return [
                r
                for r in self.requests
                if r.method == "POST" and r.status == 200 and (path is None or r.path == path)
            ]

    # -- server -------------------------------------------------------------------------
    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        chunked = "chunked" in request.headers.get("Transfer-Encoding", "").lower()
        with self._lock:
            if request.method == "GET":
                status, payload = self.files.get(request.path, (404, b"not found"))
            else:
                status = self._fail.pop(0) if self._fail else 200
                payload = b"OK" if status == 200 else b"error"
            self.requests.append(
                HttpRequest(
                    request.method, request.path, dict(request.headers), body, chunked, status
                )
            )
        return web.Response(status=status, body=payload)

    def _serve(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            app = web.Application()
            app.router.add_route("*", "/{tail:.*}", self._handle)
            self._runner = web.AppRunner(app, access_log=None)
            loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
            loop.run_until_complete(site.start())
            self.port = site._server.sockets[0].getsockname()[1]  # the ephemeral port
        except BaseException as exc:  # reported to start()
            self._error = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        loop.run_forever()
        loop.run_until_complete(self._runner.cleanup())
        loop.close()

    def start(self) -> HttpSink:
        """Start serving; returns when the port is bound. Re-raises a bind error."""
        self._ready.clear()
        self._error = None
        self._thread = threading.Thread(target=self._serve, name="http-sink", daemon=True)
        self._thread.start()
        self._ready.wait(10)
        if self._error is not None:
            raise self._error
        return self

    def stop(self) -> None:
        """Stop the server and join its thread (idempotent)."""
        if self._loop is not None and self._thread is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        self._thread = None
        self._loop = None

    def __enter__(self) -> HttpSink:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
