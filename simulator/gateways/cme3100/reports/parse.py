"""Reading CMe3100 reports back: what a head-end (and the bench's tests and summaries) makes
of x001 and x101/x115 bodies. Errors are :class:`ReportParseError` with the line number."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from simulator.gateways.cme3100.reports.bodies import INSTALL_COLUMNS, SEP
from simulator.gateways.cme3100.reports.columns import DECIMAL, TIME_FORMAT


class ReportParseError(ValueError):
    """A report line that does not fit its layout; ``line`` counts from 1."""

    def __init__(self, line: int, reason: str) -> None:
        self.line, self.reason = line, reason
        super().__init__(f"line {line}: {reason}")


@dataclass(frozen=True)
class InstallRow:
    serial: str
    meter: str
    created: datetime
    telegram_no: int
    raw: bytes  # from the C-field, without CS and stop byte


def parse_install(text: str) -> list[InstallRow]:
    """Rows of an x001 body."""
    return [InstallRow(*row) for row in install_rows(text)]


def install_rows(text: str) -> list[tuple[str, str, datetime, int, bytes]]:
    """:func:`parse_install`'s rows as plain tuples (a head-end counting a year of daily
    reports builds no row objects); the same :class:`ReportParseError`."""
    rows = []
    width = len(INSTALL_COLUMNS)
    for n, line in enumerate(text.splitlines(), 1):
        cells = line.split(SEP)
        if len(cells) != width:
            raise ReportParseError(n, f"{len(cells)} fields, expected {width}")
        try:
            rows.append(
                (cells[0], cells[1], parse_time(cells[2]), int(cells[3]), bytes.fromhex(cells[4]))
            )
        except ValueError as exc:
            raise ReportParseError(n, str(exc)) from None
    return rows


@dataclass(frozen=True)
class ValueRow:
    """One data row of a value report: ``fields`` the fixed columns by header name,
    ``values`` ``(column, text)`` per value column, in order."""

    line: int
    fields: dict[str, str]
    values: list[tuple[str, str]]


def parse_value_report(text: str) -> list[ValueRow]:
    """Rows of an x101/x109/x115 body, each paired with the header line before it."""
    rows: list[ValueRow] = []
    header: list[str] | None = None
    fixed = 0
    for n, line in enumerate(text.splitlines(), 1):
        cells = line.split(SEP)
        if line.startswith("#"):
            header = [cells[0][1:], *cells[1:]]
            fixed = next((i for i, h in enumerate(header) if "," in h), len(header))
            continue
        if header is None:
            raise ReportParseError(n, "data row before any header line")
        if len(cells) != len(header):
            raise ReportParseError(n, f"{len(cells)} fields, header has {len(header)}")
        rows.append(
            ValueRow(
                n,
                dict(zip(header[:fixed], cells[:fixed], strict=True)),
                list(zip(header[fixed:], cells[fixed:], strict=True)),
            )
        )
    return rows


def value_report_keys(text: str, names: tuple[str, ...]) -> list[tuple[str | None, ...]]:
    """Per data row of an x101/x109/x115 body, the cells of the fixed columns ``names``
    (None where the row's header has no such column): ``row.fields.get(name)`` of
    :func:`parse_value_report` without building the rows (what a head-end counts deliveries
    by). The same :class:`ReportParseError` for a bad body."""
    rows: list[tuple[str | None, ...]] = []
    width = 0  # cells of the current header (0: none yet)
    at: tuple[int | None, ...] = ()
    seen: dict[str, tuple[int, tuple[int | None, ...]]] = {}  # each meter repeats a header
    for n, line in enumerate(text.splitlines(), 1):
        if line.startswith("#"):
            known = seen.get(line)
            if known is None:
                header = line[1:].split(SEP)
                fixed = next((i for i, h in enumerate(header) if "," in h), len(header))
                # the last of equal names, as the dict of parse_value_report keeps it
                last = {h: i for i, h in enumerate(header[:fixed])}
                known = seen[line] = (len(header), tuple(last.get(name) for name in names))
            width, at = known
            continue
        if not width:
            raise ReportParseError(n, "data row before any header line")
        cells = line.split(SEP)
        if len(cells) != width:
            raise ReportParseError(n, f"{len(cells)} fields, header has {width}")
        rows.append(tuple(None if i is None else cells[i] for i in at))
    return rows


_TIME = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2}) ([0-9]{2}):([0-9]{2}):([0-9]{2})")


@lru_cache(maxsize=1 << 16)  # a value's time comes back in every report that carries it
def parse_time(text: str) -> datetime:
    """A report time ``YYYY-MM-DD hh:mm:ss`` (:data:`TIME_FORMAT`): ``datetime.strptime``'s
    result and errors (ValueError), its format machinery skipped for the plain layout."""
    m = _TIME.fullmatch(text)
    if m is not None:
        try:
            return datetime(*map(int, m.groups()))
        except ValueError:
            pass  # strptime says why
    return datetime.strptime(text, TIME_FORMAT)


def number(text: str) -> int | float:
    """A numeric report value (decimal comma) as int or float."""
    if DECIMAL in text:
        return float(text.replace(DECIMAL, "."))
    return int(text)
