"""A rendered report file as it goes on the wire: HTTP POST, FTP file or e-mail, each a
:class:`~simulator.sinks.base.Report` for a sink.

**Bytes.** Text is encoded in Windows CP1252, the Localisation setting (004 §6.36, CME3100.md
§5.1; ``°`` = 0xB0 as in the G1 capture); a character CP1252 lacks becomes ``?``.

**Content-Type.** :data:`CONTENT_TYPE` ``text/plain; charset=windows-1252`` by default:
Elvaco's HTTP reference asks for a Content-Type naming the charset (CME3100.md §5.2) and
reads ``application/octet-stream`` as ISO-8859-1, which differs from CP1252 in 0x80-0x9F
(``€`` is 0x80). Gaps #4 records that the captured device sent
:data:`OBSERVED_CONTENT_TYPE` ``application/octet-stream``; pass it as ``content_type`` to
reproduce the capture.

**HTTP** (Gaps #4): G1-form ``User-Agent``, ``Filename`` header with the file name, Basic
authorisation when a user is set, one chunk per body part (chunked transfer).
**FTP**: target ``<url>/<file name>``; the file name also in a ``Filename`` header.
**E-mail** (Gaps #3): subject ``<product name> <report-id> <YYYY-MM-DD hh:mm:ss>``, a short
text body and the CSV as attachment named per §5.2; sender default ``<product
name>@elvaco.se`` (004 §6.8.1). The bytes are deterministic: ``Date`` is the build time,
``Message-ID`` and the MIME boundary are derived from serial, template, time and a sequence
number (the ``email`` package would otherwise read the clock and the global random).
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime

from simulator.gateways.cme3100.reports.identity import GatewayIdentity
from simulator.gateways.cme3100.reports.names import TemplateError, stamp
from simulator.gateways.cme3100.reports.render import Rendered
from simulator.sinks.base import Report

ENCODING = "cp1252"
CONTENT_TYPE = "text/plain; charset=windows-1252"
OBSERVED_CONTENT_TYPE = "application/octet-stream"
MAIL_CONTENT_TYPE = "message/rfc822"
MAIL_DOMAIN = "elvaco.se"


def encode(text: str) -> bytes:
    """``text`` in CP1252 (unmappable characters become ``?``)."""
    return text.encode(ENCODING, errors="replace")


def _check_protocol(rendered: Rendered, protocol: str) -> None:
    if rendered.template.protocol != protocol:
        raise TemplateError(
            f"template {rendered.template.number} is a {rendered.template.protocol} template, "
            f"not {protocol}"
        )


def http_report(
    rendered: Rendered,
    identity: GatewayIdentity,
    url: str,
    *,
    user: str | None = None,
    password: str = "",
    content_type: str = CONTENT_TYPE,
) -> Report:
    """The HTTP POST of a 3xxx report file (module doc)."""
    _check_protocol(rendered, "http")
    headers = [("User-Agent", identity.user_agent()), ("Filename", rendered.name)]
    if user is not None:
        token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
        headers.append(("Authorization", f"Basic {token}"))
    parts = tuple(encode(p) for p in rendered.parts)
    return Report(url, parts, content_type, tuple(headers))


def ftp_report(rendered: Rendered, url: str, *, content_type: str = CONTENT_TYPE) -> Report:
    """The FTP upload of a 2xxx report file: target ``<url>/<name>`` (module doc)."""
    _check_protocol(rendered, "ftp")
    target = f"{url.rstrip('/')}/{rendered.name}"
    parts = tuple(encode(p) for p in rendered.parts)
    return Report(target, parts, content_type, (("Filename", rendered.name),))


def mail_message(
    rendered: Rendered,
    identity: GatewayIdentity,
    *,
    to: Sequence[str],
    cc: Sequence[str] = (),
    sender: str | None = None,
    sequence: int = 0,
) -> EmailMessage:
    """The e-mail of a 1xxx report file (module doc); ``sequence`` numbers the mails a
    gateway sends so that two mails of one second differ in ``Message-ID`` and boundary."""
    _check_protocol(rendered, "mail")
    if not to:
        raise TemplateError("an e-mail report needs at least one To recipient")
    name, when = identity.product_name, rendered.at.strftime("%Y-%m-%d %H:%M:%S")
    tag = f"{identity.serial}.{stamp(rendered.at)}.{rendered.template.number}.{sequence}"
    msg = EmailMessage()
    msg["From"] = sender or f"{name}@{MAIL_DOMAIN}"
    msg["To"] = ", ".join(to)
    if cc:
        msg["Cc"] = ", ".join(cc)
    msg["Subject"] = f"{name} {rendered.template.number} {when}"
    msg["Date"] = format_datetime(rendered.at)
    msg["Message-ID"] = f"<{tag}@meterbench.invalid>"
    msg.set_content(
        f"{name} {rendered.template.report_type} {rendered.template.number} {when}\n"
        f"Attachment: {rendered.name}\n"
    )
    msg.add_attachment(
        encode(rendered.text),
        maintype="text",
        subtype="csv",
        filename=rendered.name,
        params={"charset": "windows-1252"},
    )
    msg.set_boundary(f"=_meterbench_{tag}")
    return msg


def mail_reports(
    rendered: Rendered,
    identity: GatewayIdentity,
    *,
    to: Sequence[str],
    cc: Sequence[str] = (),
    bcc: Sequence[str] = (),
    sender: str | None = None,
    sequence: int = 0,
) -> list[Report]:
    """One :class:`Report` per envelope recipient (To, Cc, Bcc; Bcc not in the headers),
    all with the same message bytes (SMTP line ends)."""
    msg = mail_message(rendered, identity, to=to, cc=cc, sender=sender, sequence=sequence)
    data = msg.as_bytes(policy=policy.SMTP)
    envelope_from = sender or f"{identity.product_name}@{MAIL_DOMAIN}"
    headers = (("From", envelope_from),)
    return [Report(rcpt, (data,), MAIL_CONTENT_TYPE, headers) for rcpt in (*to, *cc, *bcc)]
