"""The real FTP transport: :class:`FtpUpload` stores a report as a file on an FTP server with
the standard library's ``ftplib`` (CME3100.md §5.1 "FTP page": server, port, folder, user,
password, timeout; plain FTP only). Real I/O: used only when a run asks for real sinks
(:mod:`.base`).

The report's target is ``ftp://host[:port]/folder/name`` (:func:`~simulator.gateways.cme3100.
reports.envelope.ftp_report`); the folder is relative to the login directory (RFC 1738
§3.2.2) and must exist. A reply code of the server becomes ``Delivery.status`` (530 login,
451/552 on STOR, 550 no such folder); a server that does not answer within ``timeout`` (s,
wall time, per socket operation) gives ``Delivery(False, None, reason="timeout")`` as the
in-world :class:`~.outages.OutageSink` does; a closed or refused connection ``status`` None.
"""

from __future__ import annotations

import ftplib
import io
import posixpath
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from simulator.sinks.base import Delivery, Report
from simulator.sinks.outages import REASONS

#: Socket timeout of each FTP operation (s, wall time).
FTP_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class FtpUpload:
    """A :class:`~.base.Sink` that uploads each report's bytes (binary, ``STOR``) to its
    target; delivered on the server's 2xx reply to the transfer (226). ``user``/``password``
    unless the target URL carries them; ``passive`` mode (PASV) by default."""

    user: str = "anonymous"
    password: str = ""
    passive: bool = True
    timeout: float = FTP_TIMEOUT_S

    def deliver(self, report: Report) -> Delivery:
        parts = urlsplit(report.target)
        if parts.scheme != "ftp" or not parts.hostname:
            return Delivery(False, None, reason=f"not an ftp:// target: {report.target!r}")
        user = unquote(parts.username) if parts.username else self.user
        password = unquote(parts.password) if parts.password else self.password
        folder, name = posixpath.split(unquote(parts.path).lstrip("/"))
        if not name:
            return Delivery(False, None, reason=f"no file name in {report.target!r}")
        ftp = ftplib.FTP(timeout=self.timeout)
        try:
            ftp.connect(parts.hostname, parts.port or 21)
            ftp.login(user, password)
            ftp.set_pasv(self.passive)
            if folder:
                ftp.cwd(folder)
            reply = ftp.storbinary(f"STOR {name}", io.BytesIO(report.body))
        except TimeoutError:
            return Delivery(False, None, reason=REASONS["timeout"])
        except ftplib.Error as exc:
            return Delivery(False, _code(exc), reason=f"{type(exc).__name__}: {exc}")
        except EOFError:  # ftplib's word for a connection the server closed
            return Delivery(False, None, reason="EOFError: connection closed by the server")
        except OSError as exc:  # refused, reset
            return Delivery(False, None, reason=f"{type(exc).__name__}: {exc}")
        finally:
            ftp.close()  # no QUIT: a hung server would hold us another timeout
        return Delivery(True, _code(reply), reply=reply.encode())


def _code(reply: object) -> int | None:
    text = str(reply)
    return int(text[:3]) if text[:3].isdigit() else None
