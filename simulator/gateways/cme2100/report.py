"""The CMe2100 daily e-mail Push Report: its content and its delivery over SMTP.

Seed 000 says only "Deliver an e-mail Push Report at 00:00 each day". The bench defines the
content (docs/cme2100-sms-protocol.md, "Push Report"): a short text body and one CSV
attachment ``pushreport_<gateway>_<YYYYMMDD>.csv`` (UTF-8, ``\\r\\n`` line ends, header row),
one row per meter value read since the last delivered report, columns :data:`CSV_COLUMNS`.
A meter whose readout failed gets a row with ``status`` = the error and empty value columns,
so every installed meter appears in every report.

The model builds the :class:`email.message.EmailMessage` at world time 00:00 (headers carry
world time, never the wall clock) and hands its bytes to a sink (:mod:`simulator.sinks.base`);
real SMTP is :class:`simulator.sinks.smtp_client.SmtpSend`, used only when a run asks for it.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import format_datetime

CSV_COLUMNS = (
    "timestamp",  # readout time, ISO 8601 UTC
    "secondary_address",  # 16-hex libmbus form
    "id",  # meter identification number (8 digits)
    "manufacturer",
    "medium",  # medium code, decimal
    "status",  # "ok" or the readout error
    "function",
    "storage",
    "tariff",
    "subunit",
    "quantity",
    "unit",
    "value",
)


@dataclass(frozen=True)
class ValueRow:
    """One row of the push report (strings as they appear in the CSV)."""

    timestamp: str
    secondary_address: str
    id: str
    manufacturer: str
    medium: str
    status: str
    function: str = ""
    storage: str = ""
    tariff: str = ""
    subunit: str = ""
    quantity: str = ""
    unit: str = ""
    value: str = ""

    def as_list(self) -> list[str]:
        return [getattr(self, c) for c in CSV_COLUMNS]


def csv_text(rows: list[ValueRow]) -> str:
    """The CSV attachment text (header + rows)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(CSV_COLUMNS)
    for r in rows:
        w.writerow(r.as_list())
    return buf.getvalue()


def build_report(
    *,
    gateway: str,
    sender: str,
    recipient: str,
    at: datetime,
    rows: list[ValueRow],
    meters: int,
    sequence: int,
) -> EmailMessage:
    """The Push Report e-mail for ``rows``, dated ``at`` (world time, aware)."""
    msg = EmailMessage()
    day = at.strftime("%Y%m%d")
    msg["From"] = sender
    msg["To"] = recipient
    msg["Subject"] = f"CMe2100 Push Report {gateway} {at.date().isoformat()}"
    msg["Date"] = format_datetime(at)
    # Deterministic Message-ID: email.utils.make_msgid would read the clock and a random number.
    msg["Message-ID"] = f"<{gateway}.{day}.{sequence}@meterbench.invalid>"
    msg.set_content(
        f"Push Report from {gateway} at {at.isoformat()}\n"
        f"{meters} installed meters, {len(rows)} rows.\n"
    )
    msg.add_attachment(
        csv_text(rows).encode("utf-8"),
        maintype="text",
        subtype="csv",
        filename=f"pushreport_{gateway}_{day}.csv",
        params={"charset": "utf-8"},  # a text part names its charset (RFC 2046 §4.1.2)
    )
    # Deterministic MIME boundary: the email package would draw one from the global random.
    msg.set_boundary(f"=_meterbench_{gateway}_{day}_{sequence}")
    return msg


def read_report_rows(msg: EmailMessage | bytes) -> list[dict[str, str]]:
    """The CSV rows of a received Push Report, a message or its bytes (tests and suites)."""
    if isinstance(msg, bytes):
        msg = message_from_bytes(msg, policy=policy.default)  # type: ignore[assignment]
    for part in msg.iter_attachments():
        if part.get_content_type() == "text/csv":
            payload = part.get_payload(decode=True)
            charset = part.get_content_charset()
            if charset is None:
                raise ValueError("the text/csv attachment does not name its charset")
            return list(csv.DictReader(io.StringIO(payload.decode(charset))))
    raise ValueError("the message has no text/csv attachment")
