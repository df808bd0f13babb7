"""CMe2100 Push Report e-mail: the CSV attachment names its charset (issue 14)."""

from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_bytes, policy

import pytest

from simulator.gateways.cme2100.report import ValueRow, build_report, read_report_rows


def _report() -> bytes:
    row = ValueRow(
        "2026-01-06T00:00:00Z", "7856341293150704", "12345678", "ELV", "4", "ok",
        quantity="energy", unit="°C", value="21.5",
    )  # fmt: skip
    msg = build_report(
        gateway="CMe2100-1",
        sender="gw@example.com",
        recipient="ops@example.com",
        at=datetime(2026, 1, 6, tzinfo=UTC),
        rows=[row],
        meters=1,
        sequence=1,
    )
    return msg.as_bytes()


def test_the_csv_attachment_names_its_charset():
    msg = message_from_bytes(_report(), policy=policy.default)
    (part,) = [p for p in msg.iter_attachments() if p.get_content_type() == "text/csv"]
    assert part.get_content_charset() == "utf-8"
    assert 'charset="utf-8"' in part["Content-Type"] or "charset=utf-8" in part["Content-Type"]
    # a mail client decodes it by the named charset: the non-ASCII unit survives
    assert "°C" in part.get_content()
    assert read_report_rows(_report())[0]["unit"] == "°C"


def test_a_csv_attachment_without_charset_is_refused_by_the_reader():
    raw = _report().replace(b'; charset="utf-8"', b"").replace(b"; charset=utf-8", b"")
    with pytest.raises(ValueError, match="charset"):
        read_report_rows(raw)
