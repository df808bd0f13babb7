"""The bench's SMTP receiver: a real local aiosmtpd server that keeps every message.

Used by tests and lab runs to receive e-mail Push Reports (CME3100.md §5.1 "SMTP page"):
``with SmtpSink() as sink:`` binds 127.0.0.1 on an ephemeral port (``sink.port``), runs
aiosmtpd's threaded ``Controller`` and stops it on exit. The common receiver shape (records,
faults, bind errors) is :mod:`.receiver`; besides :attr:`~.receiver.Receiver.received`,
accepted messages are parsed into :class:`email.message.EmailMessage` objects
(``sink.messages``) with their envelope (``sink.envelopes``).

AUTH (PLAIN, LOGIN; RFC 4954) is offered without TLS; with ``user`` set it is required and
checked. Faults, decided when a client connects (one connection = one attempt): ``refuse``
closes the connection before the greeting; ``auth`` answers AUTH with 535 (and MAIL with 535
when the client did not authenticate); ``timeout`` answers MAIL with nothing until
``hang_s`` or stop; ``5xx`` answers DATA with 451 and ``disk_full`` with 552 (RFC 5321
§4.2.2/§4.2.3).
"""

from __future__ import annotations

import asyncio
import socket
import threading
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

from simulator.sinks.receiver import Receiver, SmtpMeta

#: The reply lines of the faults (RFC 5321 §4.2.3, RFC 3463 enhanced codes).
AUTH_FAILED = "535 5.7.8 Authentication credentials invalid"
AUTH_REQUIRED = "530 5.7.0 Authentication required"
_DATA_REPLY = {451: "451 4.3.0 Requested action aborted: local error in processing",
               552: "552 5.3.4 Requested mail action aborted: exceeded storage allocation"}  # fmt: skip


@dataclass(frozen=True)
class Envelope:
    """The SMTP envelope of one received message."""

    mail_from: str
    rcpt_tos: tuple[str, ...]


def _remote(session: Any) -> str:
    peer = session.peer or ("", 0)
    return f"{peer[0]}:{peer[1]}"


def _login(session: Any) -> str:
    data = session.auth_data
    return data.login.decode(errors="replace") if isinstance(data, LoginPassword) else ""


class _Server(SMTP):
    """aiosmtpd's SMTP protocol that takes the connection's fault when a client connects."""

    def __init__(self, sink: SmtpSink, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.sink = sink

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        inj = self.sink.faults.take() if self.sink._serving else None  # not the self-test
        self.session.bench_fault = inj
        if inj is not None and inj.fault == "refuse":
            self.sink._record(b"", _remote(self.session), None, None, "refuse")
            transport.abort()


class _Handler:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_MAIL(self, server, session, envelope, address, options) -> str:  # noqa: N802
        inj = session.bench_fault
        meta = SmtpMeta(address, (), _login(session))
        if inj is not None and inj.fault == "auth" and not session.authenticated:
            if not getattr(session, "bench_recorded", False):
                self.sink._record(b"", _remote(session), meta, inj.status, "auth")
            return AUTH_FAILED
        if self.sink.user is not None and not session.authenticated:
            # checked here, not by aiosmtpd's auth_required, which warns at every connection
            # that AUTH without TLS is unsafe (it is what the lab's gateway does)
            return AUTH_REQUIRED
        if inj is not None and inj.fault == "timeout":
            self.sink._record(b"", _remote(session), meta, None, "timeout")
            try:
                await asyncio.wait_for(self.sink._released(), self.sink.hang_s)
            except TimeoutError:
                pass
            if server.transport is not None:
                server.transport.abort()
            return "421 4.4.2 timeout"  # not sent: the connection is gone
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802
        data = envelope.original_content or envelope.content or b""
        meta = SmtpMeta(envelope.mail_from, tuple(envelope.rcpt_tos), _login(session))
        inj = session.bench_fault
        if inj is not None and inj.status in _DATA_REPLY:
            self.sink._record(data, _remote(session), meta, inj.status, inj.fault)
            return _DATA_REPLY[inj.status]
        self.sink._record(data, _remote(session), meta, 250)
        msg = BytesParser(policy=policy.default).parsebytes(envelope.content)
        self.sink._add(msg, Envelope(envelope.mail_from, tuple(envelope.rcpt_tos)))
        return "250 Message accepted for delivery"


class _BoundController(Controller):
    """aiosmtpd's Controller serving a socket bound beforehand (so a bind error is raised at
    once, not after aiosmtpd's ready timeout, and port 0 works) with the fault-taking
    protocol."""

    def __init__(self, sink: SmtpSink, **kw: Any) -> None:
        super().__init__(_Handler(sink), **kw)
        self.sink = sink
        self.sock: socket.socket | None = None

    def factory(self) -> SMTP:
        return _Server(self.sink, self.handler, **self.SMTP_kwargs)

    def _create_server(self):
        return self.loop.create_server(self._factory_invoker, sock=self.sock)


class SmtpSink(Receiver):
    """A threaded SMTP server on ``host`` (127.0.0.1) and ``port`` (0 = ephemeral);
    ``user``/``password``: required AUTH credentials (None: any login is accepted)."""

    protocol = "mail"
    name = "SMTP"

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        user: str | None = None,
        password: str = "",
        **kw: Any,
    ) -> None:
        super().__init__(host, port, **kw)
        self.user, self.password = user, password
        self._controller = _BoundController(
            self,
            hostname=host,
            port=port,
            authenticator=self._authenticate,
            auth_require_tls=False,
        )
        self.messages: list[EmailMessage] = []
        self.envelopes: list[Envelope] = []
        self._arrived = threading.Condition()
        self._serving = False
        self._release: asyncio.Event | None = None

    @property
    def port(self) -> int:
        """The port listened on (the ephemeral one once started)."""
        return int(self._controller.port) if hasattr(self, "_controller") else self._port

    @port.setter
    def port(self, value: int) -> None:
        self._port = value

    def _authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        inj = session.bench_fault
        login = auth_data if isinstance(auth_data, LoginPassword) else None
        if inj is not None and inj.fault == "auth":
            if not getattr(session, "bench_recorded", False):  # smtplib tries each mechanism
                session.bench_recorded = True
                meta = SmtpMeta("", (), login.login.decode(errors="replace") if login else "")
                self._record(b"", _remote(session), meta, inj.status, "auth")
            return AuthResult(success=False, handled=False)
        if self.user is None:
            return AuthResult(success=True, auth_data=auth_data)
        ok = login is not None and (login.login, login.password) == (
            self.user.encode(),
            self.password.encode(),
        )
        return AuthResult(success=ok, handled=False, auth_data=auth_data)

    def _released(self):
        """An awaitable that ends when the receiver stops (runs on the server's loop)."""
        if self._release is None:
            self._release = asyncio.Event()
        return self._release.wait()

    def _start(self) -> None:
        self._release = None
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self._port))
            sock.listen()
        except OSError as exc:
            sock.close()
            raise self._bind_error(exc) from exc
        self._controller.sock = sock
        self._controller.port = sock.getsockname()[1]
        self._controller.start()
        self._serving = True

    def _stop(self) -> None:
        self._serving = False
        loop = self._controller.loop
        if self._release is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._release.set)
        self._controller.stop()

    def _add(self, msg: EmailMessage, env: Envelope) -> None:
        with self._arrived:
            self.messages.append(msg)
            self.envelopes.append(env)
            self._arrived.notify_all()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[EmailMessage]:
        """Block until ``count`` messages arrived (``TimeoutError`` after ``timeout`` s)."""
        with self._arrived:
            if not self._arrived.wait_for(lambda: len(self.messages) >= count, timeout):
                raise TimeoutError(f"{len(self.messages)} of {count} messages after {timeout} s")
            return list(self.messages)
