"""The head-end's side: which meter values a received CMe3100 report carries.

Reads the report bytes as a head-end would (mail: the CSV attachment of the message; HTTP and
FTP: the body), in the report's charset (CP1252, docs/cme3100-reports.md), and parses the
rows back with :mod:`.reports.parse`. A value is ``(meter, created)``: one readout of one
meter, however many telegram rows it has. Run summaries and tests count deliveries from this,
not from the gateway's own bookkeeping, so the two can disagree and a test can see it.
"""

from __future__ import annotations

from datetime import datetime
from email import message_from_bytes, policy

from simulator.gateways.cme3100.reports.names import VALUE_KINDS
from simulator.gateways.cme3100.reports.parse import install_rows, parse_time, value_report_keys
from simulator.sinks.base import Report

ENCODING = "cp1252"


def report_text(report: Report, protocol: str) -> str:
    """The CSV text of a received report (the attachment of an e-mail)."""
    if protocol != "mail":
        return report.body.decode(ENCODING)
    msg = message_from_bytes(report.body, policy=policy.default)
    for part in msg.iter_attachments():
        payload = part.get_payload(decode=True)
        return payload.decode(part.get_content_charset() or ENCODING)
    return ""


def values_in(report: Report, protocol: str, template: int) -> list[tuple[str, datetime]]:
    """The distinct ``(meter, created)`` values of a received report, in report order.
    Raises :class:`~.reports.parse.ReportParseError` for a body that does not parse."""
    text = report_text(report, protocol)
    kind = template % 1000
    if kind == 1:
        pairs = [(row[1], row[2]) for row in install_rows(text)]  # meter, created
    elif kind in VALUE_KINDS:  # the decoded value reports (x001 handled above)
        # the rows' cells first (a body that does not parse raises before any time is read)
        pairs = [_value(row) for row in dict.fromkeys(value_report_keys(text, _KEYS))]
    else:
        return []
    return list(dict.fromkeys(pairs))


_KEYS = ("device-identification", "created")


def _value(row: tuple[str | None, ...]) -> tuple[str, datetime]:
    for name, cell in zip(_KEYS, row, strict=True):
        if cell is None:  # a header without the column
            raise KeyError(name)
    meter, created = row
    return meter, parse_time(created)  # type: ignore[arg-type, return-value]
