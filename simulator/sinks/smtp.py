"""A real local SMTP server (aiosmtpd) that keeps every message it receives.

Used by tests and lab runs to receive e-mail Push Reports: ``with SmtpSink() as sink:`` binds
127.0.0.1 on an ephemeral port (``sink.port``), runs aiosmtpd's threaded ``Controller`` and
stops it on exit. Received messages are parsed into :class:`email.message.EmailMessage`
objects (``sink.messages``) with their SMTP envelope (``sink.envelopes``).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

from aiosmtpd.controller import Controller


@dataclass(frozen=True)
class Envelope:
    """The SMTP envelope of one received message."""

    mail_from: str
    rcpt_tos: tuple[str, ...]


class _Handler:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        msg = BytesParser(policy=policy.default).parsebytes(envelope.content)
        self.sink._add(msg, Envelope(envelope.mail_from, tuple(envelope.rcpt_tos)))
        return "250 Message accepted for delivery"


class _EphemeralController(Controller):
    """aiosmtpd's Controller with port 0 allowed: learns the bound port before its self-test."""

    def _trigger_server(self) -> None:
        if self.port == 0 and self.server is not None:
            self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


class SmtpSink:
    """A threaded SMTP server on ``host`` (127.0.0.1) and ``port`` (0 = ephemeral)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self._controller = _EphemeralController(_Handler(self), hostname=host, port=port)
        self.messages: list[EmailMessage] = []
        self.envelopes: list[Envelope] = []
        self._arrived = threading.Condition()

    @property
    def port(self) -> int:
        return int(self._controller.port)

    def start(self) -> SmtpSink:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def __enter__(self) -> SmtpSink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

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
