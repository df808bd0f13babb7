"""An HTTP head-end: a real aiohttp server in a background thread that records requests.

The bench's HTTP receiver of push reports (seed 003 §9.3: POST, chunked or plain body;
CME3100.md §5.1/§5.2: Basic auth, ``Filename`` header) and the configuration server that
serves CAD files and takes result notifications (seed 003 §9.1, which requires "HTTP
Response Code = 200 and "OK" in the http body"). The common receiver shape (records, faults,
bind errors) is :mod:`.receiver`.

::

    with HttpSink(user="gw", password="pw") as sink:  # 127.0.0.1, ephemeral port
        sink.add_file("/cfg/stream.cad", text)
        sink.fail_next(2)                    # the next two POSTs get 503 (fault "5xx")
        sink.fail("timeout")                 # every POST hangs ... until sink.recover()
        ... sink.url("/push") ...
        sink.received                        # every POST as a Received (HttpMeta)
        sink.requests                        # every request (GETs too) as HttpRequest

Faults apply to POST/PUT only (a CAD fetch is not a report): ``refuse`` aborts the connection
when the request line arrives, ``5xx`` 503, ``timeout`` reads the body and then answers
nothing until ``hang_s`` or stop (then aborts), ``auth`` 401, ``disk_full`` 507. With
``user`` set, a request whose ``Authorization`` is not Basic ``user:password`` gets 401 with
``WWW-Authenticate: Basic`` (RFC 7617), recorded with ``fault`` None.
"""

from __future__ import annotations

import asyncio
import base64
import threading
from dataclasses import dataclass

from aiohttp import web

from simulator.sinks.receiver import HttpMeta, Receiver

#: Methods that carry a report (faults and Basic auth apply to them).
REPORT_METHODS = ("POST", "PUT")


@dataclass(frozen=True)
class HttpRequest:
    """One request as the server saw it; ``chunked`` is True for Transfer-Encoding: chunked."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    chunked: bool
    status: int | None

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


class HttpSink(Receiver):
    """A recording HTTP server on ``host``:``port`` (0 = ephemeral); see the module doc.
    ``user``: when set, Basic authorisation with ``user``/``password`` is required."""

    protocol = "http"
    name = "HTTP"

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        user: str | None = None,
        password: str = "",
        **kw,
    ) -> None:
        super().__init__(host, port, **kw)
        self.user, self.password = user, password
        self.requests: list[HttpRequest] = []
        self.files: dict[str, tuple[int, bytes]] = {}
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._released: asyncio.Event | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    # -- configuration ------------------------------------------------------------------
    def add_file(self, path: str, body: str | bytes, status: int = 200) -> None:
        """Serve ``body`` for GET ``path``."""
        with self._lock:
            self.files[path] = (status, body.encode() if isinstance(body, str) else body)

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

    def _authorised(self, request: web.Request) -> bool:
        if self.user is None:
            return True
        token = base64.b64encode(f"{self.user}:{self.password}".encode()).decode("ascii")
        return request.headers.get("Authorization", "") == f"Basic {token}"

    # -- server -------------------------------------------------------------------------
    async def _handle(self, request: web.Request) -> web.StreamResponse:
        chunked = "chunked" in request.headers.get("Transfer-Encoding", "").lower()
        remote = f"{request.remote}:{(request.transport.get_extra_info('peername') or ('', 0))[1]}"
        meta = HttpMeta(request.method, request.path_qs, dict(request.headers), chunked)
        report = request.method in REPORT_METHODS
        injected = self.faults.take() if report else None
        if injected is not None and injected.fault == "refuse":
            self._log_request(meta, b"", None)
            self._record(b"", remote, meta, None, "refuse")
            request.transport.abort()  # says nothing: the client sees the connection go
            return web.Response(status=503)  # never sent
        body = await request.read()
        if injected is not None and injected.fault == "timeout":
            self._log_request(meta, body, None)
            self._record(body, remote, meta, None, "timeout")
            try:
                await asyncio.wait_for(self._released.wait(), self.hang_s)
            except TimeoutError:
                pass
            if request.transport is not None:  # None: the client gave up and closed
                request.transport.abort()
            return web.Response(status=503)  # never sent
        if injected is not None:
            status, payload, fault = injected.status, b"error", injected.fault
        elif report and not self._authorised(request):
            status, payload, fault = 401, b"unauthorized", None
        elif request.method == "GET":
            with self._lock:
                status, payload = self.files.get(request.path, (404, b"not found"))
            fault = None
        else:
            status, payload, fault = 200, b"OK", None
        self._log_request(meta, body, status)
        if report:
            self._record(body, remote, meta, status, fault)
        headers = {"WWW-Authenticate": 'Basic realm="meterbench"'} if status == 401 else None
        return web.Response(status=status, body=payload, headers=headers)

    def _log_request(self, meta: HttpMeta, body: bytes, status: int | None) -> None:
        with self._lock:
            self.requests.append(
                HttpRequest(meta.method, meta.path.split("?")[0], meta.headers, body,
                            meta.chunked, status)
            )  # fmt: skip

    def _serve(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        self._released = asyncio.Event()
        try:
            app = web.Application()
            app.router.add_route("*", "/{tail:.*}", self._handle)
            self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
            loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
            loop.run_until_complete(site.start())
            self.port = site._server.sockets[0].getsockname()[1]  # the ephemeral port
        except BaseException as exc:  # reported to start()
            self._error = exc
            if self._runner is not None:
                loop.run_until_complete(self._runner.cleanup())
            loop.close()
            self._ready.set()
            return
        self._ready.set()
        loop.run_forever()
        loop.run_until_complete(self._runner.cleanup())
        loop.close()

    def _start(self) -> None:
        self._ready.clear()
        self._error = None
        self._thread = threading.Thread(target=self._serve, name="http-sink", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise TimeoutError("HTTP receiver did not start within 10 s")
        if self._error is not None:
            self._thread.join(10)
            raise self._bind_error(self._error) from self._error

    def _stop(self) -> None:
        if self._loop is not None and self._thread is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._released.set)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        self._thread = None
        self._loop = None
