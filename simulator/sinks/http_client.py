"""The real HTTP transport: :class:`HttpPost` sends a report as an HTTP POST with chunked
transfer encoding (seed 003 §9.3.1), one chunk per report part, with the standard library's
``http.client``. Real I/O: used only when a run asks for real sinks (:mod:`.base`).

A server that does not answer within ``timeout`` (s, wall time, per socket operation: the
CMe3100's HTTP timeout, seed 002 §6.32.4) gives ``Delivery(False, None, reason="timeout")``,
as the in-world :class:`~.outages.OutageSink` does, so the push engine treats both alike."""

from __future__ import annotations

import http.client
from dataclasses import dataclass
from urllib.parse import urlsplit

from simulator.sinks.base import Delivery, Report
from simulator.sinks.outages import REASONS

#: Socket timeout of one request (s, wall time).
HTTP_TIMEOUT_S = 10.0
#: ``Delivery.reason`` of a request the server did not answer in time (as :mod:`.outages`).
TIMEOUT = REASONS["timeout"]


class PushError(Exception):
    """A request that did not get HTTP 200: ``status`` (int) or ``reason`` (network)."""

    def __init__(self, reason: str, status: int | None = None) -> None:
        self.status = status
        self.reason = reason
        super().__init__(reason)


def http_request(
    method: str,
    url: str,
    body: list[bytes] | None,
    user_agent: str,
    *,
    chunked: bool = True,
    content_type: str = "text/plain; charset=utf-8",
    extra_headers: tuple[tuple[str, str], ...] = (),
    timeout: float = HTTP_TIMEOUT_S,
) -> tuple[int, bytes]:
    """One HTTP request; the body (a list of chunks) is sent with chunked transfer encoding
    (``chunked`` False: as one body with Content-Length).
    ``extra_headers`` (e.g. ``Filename``, ``Authorization``) go with it as given.
    Returns ``(status, body)``; raises :class:`PushError` when the server cannot be reached
    (``reason`` ``"timeout"`` when it did not answer within ``timeout`` s)."""
    parts = urlsplit(url)
    conn_cls = (
        http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    )
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    headers = {"User-Agent": user_agent}
    headers.update((k, v) for k, v in extra_headers if k.lower() != "user-agent")
    try:
        conn = conn_cls(parts.hostname, parts.port, timeout=timeout)
        try:
            if body is None:
                conn.request(method, path, headers=headers)
            else:
                headers["Content-Type"] = content_type
                # an iterable is always sent chunked by http.client; a plain body is bytes
                # (Content-Length)
                data = iter(body) if chunked else b"".join(body)
                conn.request(method, path, body=data, headers=headers, encode_chunked=chunked)
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()
    except TimeoutError:
        raise PushError(TIMEOUT) from None
    except (OSError, http.client.HTTPException) as exc:
        raise PushError(f"{type(exc).__name__}: {exc}") from None


@dataclass(frozen=True)
class HttpPost:
    """A :class:`~.base.Sink` that POSTs each report to its target URL; delivered when the
    server answers 2xx (200, 204 ...; seed 003 §9.3.1: "the standard for an HTTP server"). ``chunked`` False sends a plain body with
    Content-Length; ``timeout`` in s (wall time)."""

    chunked: bool = True
    timeout: float = HTTP_TIMEOUT_S

    def deliver(self, report: Report) -> Delivery:
        try:
            status, reply = http_request(
                "POST",
                report.target,
                list(report.parts),
                report.header("User-Agent"),
                chunked=self.chunked,
                content_type=report.content_type,
                extra_headers=report.headers,
                timeout=self.timeout,
            )
        except PushError as exc:
            return Delivery(False, None, reason=exc.reason)
        ok = 200 <= status < 300  # any 2xx (204 No Content too): "the standard for HTTP"
        return Delivery(ok, status, reply=reply, reason="" if ok else f"status {status}")


@dataclass(frozen=True)
class HttpGet:
    """A :class:`~.base.Source` that fetches a URL with a real HTTP GET; ok when the server
    answers 200. ``timeout`` in s (wall time)."""

    timeout: float = HTTP_TIMEOUT_S

    def fetch(self, url: str, headers: tuple[tuple[str, str], ...] = ()) -> Delivery:
        ua = next((v for k, v in headers if k.lower() == "user-agent"), "")
        try:
            status, body = http_request("GET", url, None, ua, timeout=self.timeout)
        except PushError as exc:
            return Delivery(False, None, reason=exc.reason)
        ok = status == 200
        return Delivery(ok, status, reply=body, reason="" if ok else f"GET {url}: HTTP {status}")
