"""The common shape of the bench's real receivers (HTTP, FTP, SMTP, SNMP traps).

Every receiver (:class:`~.http.HttpSink`, :class:`~.ftp.FtpSink`, :class:`~.smtp.SmtpSink`,
:class:`~.snmp_traps.TrapReceiver`) is a real server in background threads that

- keeps every attempt a client made as a :class:`Received` record: arrival time (Unix s and
  ``time.monotonic()`` s, both wall time), the raw bytes, the protocol's metadata, the reply
  it gave and the fault it injected (None = served normally), plus an optional parse result;
- fails on demand and on a schedule (:class:`FaultPlan`) with the faults of the in-world
  :class:`~.outages.OutageSink` and the same reply codes (:data:`~.outages.CODES`):

  ===========  ===============================================================================
  fault        what the receiver does
  ===========  ===============================================================================
  refuse       accepts the connection and closes it at once, saying nothing
  5xx          answers the report with the protocol's "try later" code (HTTP 503, FTP/SMTP 451)
  timeout      accepts and never answers (hangs) until ``hang_s`` or until it is stopped
  auth         login failure (HTTP 401, FTP 530, SMTP 535)
  disk_full    no space for the report (HTTP 507, FTP/SMTP 552)
  ===========  ===============================================================================

- binds 127.0.0.1 by default (port 0 = an ephemeral port, read back from ``port``), raises
  :class:`BindError` (receiver, address, OS reason) when it cannot bind, and joins every
  thread it started on :meth:`Receiver.stop`; every wait is bounded.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from simulator.sinks.base import Report
from simulator.sinks.outages import CODES, FAULTS, Outage

#: How long a hanging receiver (fault ``timeout``) holds a client at most (s, wall time);
#: :meth:`Receiver.stop` releases it at once.
HANG_S = 300.0
#: Bound on starting or stopping a receiver's threads (s, wall time).
START_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class HttpMeta:
    """An HTTP request: method, path (with query), headers as sent, chunked transfer."""

    method: str
    path: str
    headers: dict[str, str]
    chunked: bool

    def header(self, name: str, default: str = "") -> str:
        return next((v for k, v in self.headers.items() if k.lower() == name.lower()), default)


@dataclass(frozen=True)
class FtpMeta:
    """An FTP upload: login ``user``, the file's ``path`` as the client saw it (from the FTP
    root, ``/folder/name``), its ``name``, and the session's root ``directory`` on disk."""

    user: str
    path: str
    name: str
    directory: str


@dataclass(frozen=True)
class SmtpMeta:
    """An SMTP transaction's envelope (RFC 5321): MAIL FROM, RCPT TO, and the AUTH login."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    login: str = ""


@dataclass(frozen=True)
class TrapMeta:
    """An SNMP notification (RFC 3416 §4.2.6/§4.2.7): community and its varbinds
    ``{OID tuple: pysnmp value}`` in order (``sysUpTime.0`` and ``snmpTrapOID.0`` first)."""

    community: str
    varbinds: dict[tuple[int, ...], Any]


Meta = HttpMeta | FtpMeta | SmtpMeta | TrapMeta


@dataclass(frozen=True)
class Received:
    """One attempt a client made at a receiver, kept in arrival order.

    ``protocol``: ``http``, ``ftp``, ``mail`` or ``snmp`` (the names of :mod:`.outages`).
    ``at_unix`` (``time.time()``, s) and ``at_monotonic`` (``time.monotonic()``, s): when it
    arrived (HTTP: body read; FTP: upload complete; SMTP: DATA complete; earlier when a fault
    cut it short). ``data``: the raw bytes (HTTP body de-chunked, the FTP file, the SMTP
    DATA, the SNMP datagram; empty when a fault came first). ``remote``: the client's
    ``host:port``. ``status``: the reply code given (None: none, e.g. refused, hung, trap).
    ``fault``: the injected fault, None when served normally (a real login failure with
    wrong credentials has ``fault`` None and the protocol's status). ``parsed`` /
    ``parse_error``: what the receiver's ``parse`` hook made of an accepted report.
    """

    protocol: str
    at_unix: float
    at_monotonic: float
    data: bytes
    remote: str
    meta: Meta | None
    status: int | None
    fault: str | None = None
    parsed: Any = None
    parse_error: str = ""

    @property
    def accepted(self) -> bool:
        """True when the receiver took the report (no fault, a success reply)."""
        return self.fault is None and (self.status is None or self.status < 400)

    def report(self) -> Report:
        """The received report as a :class:`~.base.Report` (for the head-end parsers in
        :mod:`simulator.gateways.cme3100.headend`)."""
        m = self.meta
        if isinstance(m, HttpMeta):
            headers = tuple(m.headers.items())
            return Report(m.path, (self.data,), m.header("Content-Type"), headers)
        if isinstance(m, FtpMeta):
            return Report(m.path, (self.data,), "", (("Filename", m.name),))
        if isinstance(m, SmtpMeta):
            target = ", ".join(m.rcpt_tos)
            return Report(target, (self.data,), "message/rfc822", (("From", m.mail_from),))
        return Report("", (self.data,), "")


@dataclass(frozen=True)
class Injected:
    """A fault a receiver applies to one attempt, with the reply code it answers."""

    fault: str
    status: int | None


def fault_status(fault: str, protocol: str) -> int | None:
    """The reply code of ``fault`` for ``protocol`` (:data:`~.outages.CODES`); the SNMP
    receiver knows only ``refuse`` and ``timeout`` (no answer). Raises ``ValueError``."""
    if fault not in FAULTS:
        raise ValueError(f"receiver fault {fault!r}: one of {FAULTS}")
    if protocol == "snmp":
        if fault not in ("refuse", "timeout"):
            raise ValueError(f"an SNMP receiver can only drop (refuse, timeout), not {fault!r}")
        return None
    return CODES[fault][protocol]


class FaultPlan:
    """When a receiver fails: on demand (:meth:`fail` until :meth:`recover`), for the next
    ``n`` attempts (:meth:`fail_next`) and inside wall-time windows (:meth:`fail_during`,
    :class:`~.outages.Outage` in Unix s). An attempt takes the first that applies, in that
    order (:meth:`take`). Thread-safe; ``clock`` is ``time.time`` unless a test says."""

    def __init__(self, protocol: str, clock: Callable[[], float] = time.time) -> None:
        self.protocol = protocol
        self.clock = clock
        self._lock = threading.Lock()
        self._now: Injected | None = None
        self._next: list[Injected] = []
        self._windows: list[Outage] = []

    def _injected(self, fault: str, status: int | None) -> Injected:
        code = fault_status(fault, self.protocol)
        return Injected(fault, code if status is None else status)

    def fail(self, fault: str, status: int | None = None) -> None:
        """Fail every attempt with ``fault`` until :meth:`recover` (``status`` overrides the
        protocol's code, e.g. HTTP 500 instead of 503)."""
        with self._lock:
            self._now = self._injected(fault, status)

    def recover(self) -> None:
        """End an on-demand fault and forget pending ``fail_next`` and windows."""
        with self._lock:
            self._now, self._next, self._windows = None, [], []

    def fail_next(self, n: int, fault: str = "5xx", status: int | None = None) -> None:
        """Fail the next ``n`` attempts with ``fault``."""
        with self._lock:
            self._next.extend([self._injected(fault, status)] * n)

    def fail_during(self, windows: Iterable[Outage]) -> None:
        """Fail attempts arriving inside each window (Unix s, start inclusive)."""
        for w in windows:
            fault_status(w.fault, self.protocol)  # ValueError early
            with self._lock:
                self._windows.append(w)

    def fail_for(self, seconds: float, fault: str) -> Outage:
        """Fail from now for ``seconds`` (wall time); returns the window."""
        now = self.clock()
        window = Outage(now, now + seconds, fault)
        self.fail_during([window])
        return window

    def take(self) -> Injected | None:
        """The fault for the attempt arriving now (consumes one ``fail_next``), or None."""
        with self._lock:
            if self._now is not None:
                return self._now
            if self._next:
                return self._next.pop(0)
            now = self.clock()
            w = next((w for w in self._windows if w.covers(now)), None)
        return None if w is None else self._injected(w.fault, None)


class BindError(OSError):
    """A receiver cannot listen on its address: names the receiver, the address and the
    OS's reason (``[Errno 98] Address already in use``)."""

    def __init__(self, receiver: str, host: str, port: int, reason: str) -> None:
        self.receiver, self.host, self.port, self.reason = receiver, host, port, reason
        super().__init__(f"{receiver} receiver cannot listen on {host}:{port}: {reason}")


def os_reason(exc: BaseException) -> str:
    """``[Errno N] text`` for an OS error, else ``str(exc)``."""
    err = getattr(exc, "errno", None)
    return f"[Errno {err}] {os.strerror(err)}" if isinstance(err, int) else str(exc)


@dataclass
class _Log:
    items: list[Received] = field(default_factory=list)
    cond: threading.Condition = field(default_factory=threading.Condition)


class Receiver:
    """Base of the real receivers (module doc). Subclasses implement ``_start`` (bind, raise
    :class:`BindError`, start threads) and ``_stop`` (join them) and call :meth:`_record`.

    ``parse``: called with each accepted :class:`Received`; its result is kept in
    ``parsed`` (an exception's text in ``parse_error``). ``hang_s``: the bound of a hang.
    """

    protocol = ""
    name = ""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        parse: Callable[[Received], Any] | None = None,
        hang_s: float = HANG_S,
    ) -> None:
        self.host, self.port = host, port
        self.parse = parse
        self.hang_s = hang_s
        self.faults = FaultPlan(self.protocol)
        self._log = _Log()
        self._stopping = threading.Event()  # releases hangs at stop
        self._running = False

    # -- records ----------------------------------------------------------------------
    @property
    def received(self) -> list[Received]:
        """Every attempt, in arrival order."""
        with self._log.cond:
            return list(self._log.items)

    def accepted(self) -> list[Received]:
        """The reports taken (no fault, success reply), in arrival order."""
        return [r for r in self.received if r.accepted]

    def _record(
        self,
        data: bytes,
        remote: str,
        meta: Meta | None,
        status: int | None,
        fault: str | None = None,
    ) -> Received:
        rec = Received(
            self.protocol, time.time(), time.monotonic(), data, remote, meta, status, fault
        )
        if rec.accepted and self.parse is not None:
            try:
                rec = replace(rec, parsed=self.parse(rec))
            except Exception as exc:  # the report is kept; the parse problem is evidence
                rec = replace(rec, parse_error=f"{type(exc).__name__}: {exc}")
        with self._log.cond:
            self._log.items.append(rec)
            self._log.cond.notify_all()
        return rec

    def wait_received(
        self, count: int, timeout: float = 10.0, *, accepted: bool = True
    ) -> list[Received]:
        """Block until ``count`` reports were accepted (or attempts made, ``accepted=False``);
        raises ``TimeoutError`` after ``timeout`` s (wall time)."""

        def got() -> list[Received]:
            items = self._log.items
            return [r for r in items if r.accepted] if accepted else list(items)

        with self._log.cond:
            if not self._log.cond.wait_for(lambda: len(got()) >= count, timeout):
                raise TimeoutError(
                    f"{self.name}: {len(got())} of {count} reports after {timeout} s"
                )
            return got()

    # -- faults (shortcuts to ``faults``) ------------------------------------------------
    def fail(self, fault: str, status: int | None = None) -> None:
        self.faults.fail(fault, status)

    def recover(self) -> None:
        self.faults.recover()

    def fail_next(self, n: int, fault: str = "5xx", status: int | None = None) -> None:
        self.faults.fail_next(n, fault, status)

    def fail_during(self, windows: Iterable[Outage]) -> None:
        self.faults.fail_during(windows)

    def _hang(self) -> None:
        """Block this (server) thread for the hang: until ``hang_s`` or stop."""
        self._stopping.wait(self.hang_s)

    # -- life cycle ---------------------------------------------------------------------
    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def _bind_error(self, exc: BaseException) -> BindError:
        return BindError(self.name, self.host, self.port, os_reason(exc))

    def start(self):
        """Bind and serve; returns when listening. Raises :class:`BindError`."""
        self._stopping.clear()
        self._start()
        self._running = True
        return self

    def stop(self) -> None:
        """Release hangs, stop serving and join every thread (idempotent)."""
        self._stopping.set()
        if self._running:
            self._running = False
            self._stop()

    def _start(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _stop(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
