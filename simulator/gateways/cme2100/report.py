"""The CMe2100 daily e-mail Push Report: its content and its delivery over SMTP.

Seed 000 says only "Deliver an e-mail Push Report at 00:00 each day". The bench defines the
content (docs/cme2100-sms-protocol.md, "Push Report"): a short text body and one CSV
attachment ``pushreport_<gateway>_<YYYYMMDD>.csv`` (UTF-8, ``\\r\\n`` line ends, header row),
one row per meter value read since the last delivered report, columns :data:`CSV_COLUMNS`.
A meter whose readout failed gets a row with ``status`` = the error and empty value columns,
so every installed meter appears in every report.

The model builds the :class:`email.message.EmailMessage` at world time 00:00 (headers carry
world time, never the wall clock); delivering it is real I/O outside the model, done by a
delivery adapter such as :class:`SmtpDelivery` (``smtplib``).
"""

from __future__ import annotations

import csv
import io
import smtplib
from dataclasses import dataclass
from datetime import datetime
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
    )
    # Deterministic MIME boundary: the email package would draw one from the global random.
    msg.set_boundary(f"=_meterbench_{gateway}_{day}_{sequence}")
    return msg


def read_report_rows(msg: EmailMessage) -> list[dict[str, str]]:
    """The CSV rows of a received Push Report (for tests and suites)."""
    for part in msg.iter_attachments():
        if part.get_content_type() == "text/csv":
            payload = part.get_payload(decode=True)
            return list(csv.DictReader(io.StringIO(payload.decode("utf-8"))))
    raise ValueError("the message has no text/csv attachment")


class SmtpDelivery:
    """Delivery adapter: sends a report with ``smtplib`` to ``host:port`` (real I/O).

    Raises ``OSError``/``smtplib.SMTPException`` on failure; the gateway then keeps the rows
    for the next report.
    """

    def __init__(self, host: str, port: int, *, timeout: float = 10.0) -> None:
        self.host, self.port, self.timeout = host, port, timeout

    def __call__(self, msg: EmailMessage) -> None:
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
            smtp.send_message(msg)
