"""The real SMTP transport: :class:`SmtpSend` sends a report (an RFC 5322 message, bytes as
the device built them) to ``host:port`` with ``smtplib``. Real I/O: used only when a run asks
for real sinks (:mod:`.base`)."""

from __future__ import annotations

import re
import smtplib
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from email.utils import getaddresses

from simulator.sinks.base import Delivery, Report


@dataclass(frozen=True)
class SmtpSend:
    """A :class:`~.base.Sink` for mail reports: envelope sender from the ``From`` header of
    the report (or the message), recipient the report's target. ``timeout`` in s."""

    host: str
    port: int
    timeout: float = 10.0

    def deliver(self, report: Report) -> Delivery:
        sender = report.header("From")
        if not sender:
            parsed = getaddresses([BytesHeaderParser().parsebytes(report.body)["From"] or ""])
            sender = parsed[0][1] if parsed else ""
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                # SMTP's wire form has CRLF line ends (RFC 5321 §2.3.8); smtplib converts
                # str messages only, so bytes are converted here (the message is unchanged)
                smtp.sendmail(sender, [report.target], re.sub(rb"\r?\n", b"\r\n", report.body))
        except (OSError, smtplib.SMTPException) as exc:
            return Delivery(False, getattr(exc, "smtp_code", None), reason=_reason(exc))
        return Delivery(True, 250)


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"
