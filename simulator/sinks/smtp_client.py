"""The real SMTP transport: :class:`SmtpSend` sends a report (an RFC 5322 message, bytes as
the device built them) to ``host:port`` with ``smtplib``. Real I/O: used only when a run asks
for real sinks (:mod:`.base`).

The server's reply code becomes ``Delivery.status`` (535 login, 451/552 on DATA, ...); a
server that does not answer within ``timeout`` (s, wall time, per socket operation: the
CMe3100's mail timeout, seed 002 §6.32.4) gives ``Delivery(False, None, reason="timeout")``
as the in-world :class:`~.outages.OutageSink` does; a refused or closed connection ``status``
None."""

from __future__ import annotations

import re
import smtplib
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from email.utils import getaddresses

from simulator.sinks.base import Delivery, Report
from simulator.sinks.outages import REASONS


@dataclass(frozen=True)
class SmtpSend:
    """A :class:`~.base.Sink` for mail reports: envelope sender from the ``From`` header of
    the report (or the message), recipient the report's target. ``timeout`` in s; ``user``
    set: AUTH (RFC 4954) with ``user``/``password`` before MAIL."""

    host: str
    port: int
    timeout: float = 10.0
    user: str | None = None
    password: str = ""

    def deliver(self, report: Report) -> Delivery:
        sender = report.header("From")
        if not sender:
            parsed = getaddresses([BytesHeaderParser().parsebytes(report.body)["From"] or ""])
            sender = parsed[0][1] if parsed else ""
        smtp = smtplib.SMTP(timeout=self.timeout)
        try:
            smtp.connect(self.host, self.port)
            if self.user is not None:
                smtp.login(self.user, self.password)
            # SMTP's wire form has CRLF line ends (RFC 5321 §2.3.8); smtplib converts
            # str messages only, so bytes are converted here (the message is unchanged)
            smtp.sendmail(sender, [report.target], re.sub(rb"\r?\n", b"\r\n", report.body))
            smtp.quit()
        except TimeoutError:
            return Delivery(False, None, reason=REASONS["timeout"])
        except smtplib.SMTPRecipientsRefused as exc:
            code = next(iter(exc.recipients.values()))[0]
            return Delivery(False, code, reason=_reason(exc))
        except (OSError, smtplib.SMTPException) as exc:
            if isinstance(exc.__context__, TimeoutError):  # smtplib re-raises it as closed
                return Delivery(False, None, reason=REASONS["timeout"])
            return Delivery(False, getattr(exc, "smtp_code", None), reason=_reason(exc))
        finally:
            smtp.close()  # no QUIT after a failure: a hung server would hold us again
        return Delivery(True, 250)


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"
