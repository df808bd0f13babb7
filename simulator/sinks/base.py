"""Where a device's push reports go: the :class:`Sink` interface and the in-world sink.

A device model builds a :class:`Report` (its bytes, content type and target, exactly as it
would put them on the wire) and hands it to a sink; it never opens a socket itself (issue 10:
models never do real I/O, so a run stays deterministic). A sink answers with a
:class:`Delivery`: delivered or not, the receiver's status code (HTTP status, SMTP reply
code; None when nothing was reached) and why not.

- :class:`WorldSink`: the in-world receiver. It keeps every report, accepts with a fixed
  status and can fail on a schedule (:meth:`WorldSink.fail_next`); no I/O, no wall clock.
- :class:`WorldSource`: the in-world file server a device fetches from (the other
  direction: ``fetch(url) -> Delivery``), and :class:`simulator.sinks.http_client.HttpGet`
  its real counterpart.
- Real transports, used only when a run asks for real sinks:
  :class:`simulator.sinks.http_client.HttpPost` (HTTP POST, chunked, seed 003 §9.3.1) and
  :class:`simulator.sinks.smtp_client.SmtpSend` (SMTP) and
  :class:`simulator.sinks.ftp_client.FtpUpload` (FTP). The report bytes are the same
  whichever sink gets them; a real server that does not answer in time gives
  ``reason == "timeout"``, as the in-world :class:`~.outages.OutageSink` does.

(The recording servers in :mod:`.http`, :mod:`.ftp`, :mod:`.smtp`, :mod:`.snmp_traps` and
:mod:`.udp` are the *other end*: real head-ends that tests and runs start locally.)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class Report:
    """One push report: ``parts`` are its bytes in the order written (HTTP sends one chunk
    per part); ``target`` a URL (HTTP) or a mailbox (SMTP); ``headers`` what the transport
    needs besides the body (``User-Agent``, the envelope ``From``)."""

    target: str
    parts: tuple[bytes, ...]
    content_type: str
    headers: tuple[tuple[str, str], ...] = ()

    @property
    def body(self) -> bytes:
        return b"".join(self.parts)

    def header(self, name: str, default: str = "") -> str:
        return next((v for k, v in self.headers if k.lower() == name.lower()), default)


@dataclass(frozen=True)
class Delivery:
    """What a sink made of one report: ``ok``; ``status`` the receiver's code (HTTP status,
    SMTP reply; None = not reached); ``reply`` the receiver's answer body; ``reason`` why not
    delivered (empty when ``ok``)."""

    ok: bool
    status: int | None = None
    reply: bytes = b""
    reason: str = ""


class Source(Protocol):
    """Where a device fetches files (CAD auto-configuration, seed 003 §6.2):
    ``fetch(url, headers) -> Delivery`` with the body in ``reply``; never raises for a failed
    fetch (that is a Delivery with ``ok = False``)."""

    def fetch(self, url: str, headers: tuple[tuple[str, str], ...] = ()) -> Delivery: ...


class Sink(Protocol):
    """Anything that takes reports: ``deliver(report) -> Delivery``; never raises for a
    delivery failure (that is a Delivery with ``ok = False``)."""

    def deliver(self, report: Report) -> Delivery: ...


@dataclass
class WorldSink:
    """The in-world receiver (see the module doc): accepts every report with ``status``
    (default 200) unless a failure is scheduled. ``received`` holds the accepted reports,
    ``deliveries`` every ``(report, delivery)`` in order.

    ``on_receive`` is called with each accepted report as it arrives. ``keep = False``: both
    lists stay empty, so a long run whose caller takes every report through ``on_receive``
    holds no report body (a year of hourly reports is gigabytes; issue 15)."""

    status: int = 200
    received: list[Report] = field(default_factory=list)
    deliveries: list[tuple[Report, Delivery]] = field(default_factory=list)
    _fail: list[int | None] = field(default_factory=list)
    on_receive: Callable[[Report], None] | None = None
    keep: bool = True

    def fail_next(self, n: int, status: int | None = 500) -> None:
        """Fail the next ``n`` deliveries: answered with ``status``, or unreachable (None)."""
        self._fail.extend([status] * n)

    def deliver(self, report: Report) -> Delivery:
        if self._fail:
            status = self._fail.pop(0)
            reason = "unreachable" if status is None else f"status {status}"
            delivery = Delivery(False, status, reason=reason)
        else:
            if self.keep:
                self.received.append(report)
            if self.on_receive is not None:
                self.on_receive(report)
            delivery = Delivery(True, self.status, reply=b"OK")
        if self.keep:
            self.deliveries.append((report, delivery))
        return delivery


@dataclass
class WorldSource:
    """The in-world file server: ``files`` maps URL -> bytes; an unknown URL answers 404.
    ``requests`` keeps every ``(url, headers)`` asked for. No I/O, no wall clock."""

    files: dict[str, bytes] = field(default_factory=dict)
    requests: list[tuple[str, tuple[tuple[str, str], ...]]] = field(default_factory=list)

    def fetch(self, url: str, headers: tuple[tuple[str, str], ...] = ()) -> Delivery:
        self.requests.append((url, headers))
        body = self.files.get(url)
        if body is None:
            return Delivery(False, 404, reason=f"GET {url}: HTTP 404")
        return Delivery(True, 200, reply=body)
