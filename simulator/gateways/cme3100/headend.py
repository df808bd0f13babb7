"""The head-end's side: which meter values a received CMe3100 report carries.

Reads the report bytes as a head-end would (mail: the CSV attachment of the message; HTTP and
FTP: the body), in the report's charset (CP1252, docs/cme3100-reports.md), and parses the
rows back with :mod:`.reports.parse`. A value is ``(meter, created)``: one readout of one
meter, however many telegram rows it has. Run summaries and tests count deliveries from this,
not from the gateway's own bookkeeping, so the two can disagree and a test can see it.
"""

from __future__ import annotations

from array import array
from collections import Counter
from datetime import datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path
from typing import NamedTuple

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


#: The origin of :func:`time_key` (naive, like every report and readout time).
_EPOCH = datetime(1970, 1, 1)
_US = timedelta(microseconds=1)


def time_key(t: datetime) -> int:
    """A naive time as integer microseconds since 1970: equal keys <=> equal times, same order.
    Raises ``ValueError`` for an aware time (head-end and readout times are local, naive)."""
    if t.tzinfo is not None:
        raise ValueError(f"time {t.isoformat()} is aware; head-end times are local (naive)")
    return (t - _EPOCH) // _US


class HeadEndTally:
    """What one report slot's head-end got, taken one accepted report at a time, so a long run
    keeps no report body (issue 15: a year of hourly reports is gigabytes of bodies).

    :meth:`take` writes the report as received to ``root/<n>-<file name>`` (``n`` counts
    every accepted report from 1, as :class:`~simulator.sinks.base.WorldSink.received` would
    list them; mail: ``mail.eml``) when ``root`` is given, and counts its values
    (:func:`values_in`; mail: the first recipient's copies only, one copy per recipient
    arrives). Values are kept per meter as :func:`time_key` integers (8 bytes each):
    :meth:`counts` gives how often each arrived. ``count_values = False`` (event reports):
    files only. Raises what :func:`values_in` raises."""

    def __init__(
        self, protocol: str, template: int, root: Path | None = None, count_values: bool = True
    ) -> None:
        self.protocol, self.template, self.root = protocol, template, root
        self.count_values = count_values
        self.reports = 0
        self._first_target: str | None = None
        self._values: dict[str, array[int]] = {}

    def take(self, report: Report) -> None:
        self.reports += 1
        if self.root is not None:
            name = report.header("Filename") or "mail.eml"
            if self.reports == 1:
                self.root.mkdir(parents=True, exist_ok=True)
            (self.root / f"{self.reports:04d}-{name}").write_bytes(report.body)
        if not self.count_values:
            return
        if self.protocol == "mail":  # one copy per recipient: count the first's
            self._first_target = self._first_target or report.target
            if report.target != self._first_target:
                return
        values = self._values
        for meter, created in values_in(report, self.protocol, self.template):
            keys = values.get(meter)
            if keys is None:
                keys = values[meter] = array("q")
            keys.append(time_key(created))

    def meters(self) -> list[str]:
        """Meters with at least one value received, in first-arrival order."""
        return list(self._values)

    def counts(self, meter: str) -> Counter[int]:
        """How often each value (:func:`time_key` of its read time) of ``meter`` arrived."""
        return Counter(self._values.get(meter, ()))


class MeterAccount(NamedTuple):
    """One meter's values at one report's head-end (counts of values; times as
    :func:`time_key`): see :func:`meter_account`."""

    delivered: int
    twice: int
    unknown: int
    lost: int
    missing: int
    pending: int
    lost_delivered: bool


def meter_account(
    read: set[int], received: Counter[int], lost: set[int], cut: int | None
) -> MeterAccount:
    """How one meter's values fared: ``read`` the values stored, ``received`` how often each
    value reached the head-end, ``lost`` those named lost, ``cut`` the read time of the last
    delivered report (None: none delivered). Delivered = read and received; twice = received
    more than once; unknown = received, never read; missing = read at or before ``cut``, not
    delivered, not lost; pending = the same after ``cut``. The run's figures over all meters
    are the sums (values are keyed by meter)."""
    delivered = read.intersection(received)
    undelivered = read - delivered - lost
    missing = sum(1 for v in undelivered if cut is not None and v <= cut)
    return MeterAccount(
        len(delivered),
        sum(1 for n in received.values() if n > 1),
        sum(1 for v in received if v not in read),
        len(lost),
        missing,
        len(undelivered) - missing,
        not lost.isdisjoint(delivered),
    )
