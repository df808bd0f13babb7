"""Real head-ends for a ``cme3100`` run (``meterbench run --real-sinks``, and the push suite).

The bench starts local receivers on 127.0.0.1 (HTTP, FTP, SMTP: :mod:`simulator.sinks`), points
every report of the gateway at them, and gives the gateway real clients (chunked HTTP POST,
FTP upload, SMTP) instead of in-world sinks. The report bytes are the ones the in-world run
produces; only the transport is real.

The run is still in virtual time. The receivers' fault windows are world seconds (their
clock is the world's: a delivery blocks the world while the receiver answers, so the world
time it reads is the attempt's). A head-end that hangs is detected by the client after
:data:`CLIENT_TIMEOUT_S` of wall time; the push engine then counts the attempt as lasting the
gateway's protocol timeout in world time, as it does with in-world sinks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from simulator.gateways.cme3100.gateway_settings import Cme3100Settings
from simulator.sinks.base import Delivery, Report, Sink
from simulator.sinks.ftp import FtpSink
from simulator.sinks.ftp_client import FtpUpload
from simulator.sinks.http import HttpSink
from simulator.sinks.http_client import HttpPost
from simulator.sinks.outages import Outage
from simulator.sinks.smtp import SmtpSink
from simulator.sinks.smtp_client import SmtpSend

#: Wall seconds a real client waits for a hanging head-end (the world time it costs is the
#: gateway's protocol timeout: module doc).
CLIENT_TIMEOUT_S = 0.5
#: Wall seconds a hanging receiver holds a connection before it lets go (far above the
#: client's timeout, far below a test's).
HANG_S = 5.0


@dataclass
class RecordingClient:
    """A real client that keeps ``(world s, report, delivery)`` of every attempt, like the
    in-world :class:`~simulator.sinks.outages.OutageSink` does (so accounting is the same)."""

    inner: Sink
    clock: Callable[[], float]
    deliveries: list[tuple[float, Report, Delivery]] = field(default_factory=list)

    def deliver(self, report: Report) -> Delivery:
        delivery = self.inner.deliver(report)
        self.deliveries.append((self.clock(), report, delivery))
        return delivery

    @property
    def received(self) -> list[Report]:
        return [r for _t, r, d in self.deliveries if d.ok]


class RealHeadEnds:
    """Receivers for one run: :meth:`start`, :meth:`retarget` the settings, a
    :meth:`client` per report, :meth:`stop` at the end (also as a context manager)."""

    def __init__(self, clock: Callable[[], float], outages: dict[str, list[Outage]]) -> None:
        self.clock = clock
        self.http = HttpSink(hang_s=HANG_S)
        self.ftp = FtpSink(hang_s=HANG_S)
        self.smtp = SmtpSink(hang_s=HANG_S)
        self.by_protocol = {"http": self.http, "ftp": self.ftp, "mail": self.smtp}
        self.outages = outages

    def start(self) -> RealHeadEnds:
        for protocol, receiver in self.by_protocol.items():
            receiver.faults.clock = self.clock  # fault windows in world seconds
            receiver.start()
            receiver.faults.fail_during(self.outages.get(protocol, []))
        return self

    def stop(self) -> None:
        for receiver in self.by_protocol.values():
            receiver.stop()

    def __enter__(self) -> RealHeadEnds:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def retarget(self, settings: Cme3100Settings) -> Cme3100Settings:
        """``settings`` with every report aimed at these receivers (same path or folder)."""

        def move(r):
            path = urlsplit(r.target).path or "/"
            if r.protocol == "http":
                return r.model_copy(update={"target": self.http.url(path)})
            if r.protocol == "ftp":
                folder = path.strip("/") or "reports"
                (self.ftp.directory / folder).mkdir(parents=True, exist_ok=True)
                return r.model_copy(
                    update={
                        "target": self.ftp.url(folder),
                        "user": self.ftp.user,
                        "password": self.ftp.password,
                    }
                )
            return r  # mail: the recipients stay; the SMTP server is the client's

        return settings.model_copy(
            update={
                "reports": [move(r) for r in settings.reports],
                "event_reports": [move(r) for r in settings.event_reports],
            }
        )

    def client(self, protocol: str, user: str | None = None, password: str = "") -> Sink:
        """A real client of ``protocol`` aimed at its receiver, recording its attempts."""
        if protocol == "http":
            inner: Sink = HttpPost(timeout=CLIENT_TIMEOUT_S)
        elif protocol == "ftp":
            inner = FtpUpload(user or self.ftp.user, password, timeout=CLIENT_TIMEOUT_S)
        else:
            inner = SmtpSend(self.smtp.host, self.smtp.port, timeout=CLIENT_TIMEOUT_S)
        return RecordingClient(inner, self.clock)

    def received_bodies(self, protocol: str) -> list[bytes]:
        """What the receiver of ``protocol`` accepted, in arrival order (server side)."""
        return [r.data for r in self.by_protocol[protocol].accepted()]
