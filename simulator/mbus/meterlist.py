"""The CMe3100 meter list: a CSV of the meters a gateway installs (seed 002 §6.5, Table 4).

Columns (header row required, in this order in the vendor template; matched by name here):
``Position, SecondaryAddress, BaudRate, AddressingMode, PrimaryAddress, EnhancedAddress``.

* ``Position``: free text naming the meter (required).
* ``SecondaryAddress``: the 8-digit ID printed on the meter (the manual's form); the full
  16-hex libmbus form (ID, manufacturer, version, medium) is accepted too.
* ``BaudRate``: 300 or 2400 (the manual's two values; 9600 is accepted as well).
* ``AddressingMode``: ``primary``, ``secondary`` or ``esecondary`` (case-insensitive; the
  manual writes "Secondary"); ``esecondary`` is for wireless meters behind a receiver.
* ``PrimaryAddress``: 0..250, required for ``primary``; optional otherwise.
* ``EnhancedAddress``: only for wireless meters; kept as text.

Comma or semicolon separated (Excel in many locales writes ``;``). :func:`read_meter_list`
reports every bad row at once as a :class:`~simulator.scenario.ScenarioError` with file:line
and the column name.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from simulator.core.text import CsvRowError, csv_rows, decimal, is_decimal
from simulator.mbus.address import SecondaryAddress, SecondaryMask
from simulator.mbus.errors import AddressError
from simulator.scenario import Issue, ScenarioError, read_text

COLUMNS = (
    "Position",
    "SecondaryAddress",
    "BaudRate",
    "AddressingMode",
    "PrimaryAddress",
    "EnhancedAddress",
)
MODES = ("primary", "secondary", "esecondary")
BAUDS = (300, 2400, 9600)


@dataclass(frozen=True)
class MeterListEntry:
    """One meter of a meter list (``line`` is its 1-based line in the file)."""

    position: str
    secondary: str
    baud: int
    mode: str
    primary: int | None = None
    enhanced: str | None = None
    line: int = 0

    @cached_property
    def mask(self) -> SecondaryMask:
        """The selection mask: the exact address, or ``<ID>FFFFFFFF`` for an 8-digit ID
        (parsed once: a gateway addresses the meter by it every readout)."""
        if len(self.secondary) == 16:
            return SecondaryMask.of(SecondaryAddress.parse(self.secondary))
        return SecondaryMask.parse(self.secondary + "F" * 8)

    @property
    def target(self) -> int | SecondaryMask:
        """What the master addresses: the primary address or the secondary mask."""
        if self.mode == "primary":
            assert self.primary is not None
            return self.primary
        return self.mask


def parse_meter_list(text: str, source: str = "<meter list>") -> list[MeterListEntry]:
    """Parse meter-list CSV text; :class:`ScenarioError` lists every problem (file:line)."""
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        raise ScenarioError([Issue(source, 1, "", "empty meter list: a header row is needed")])
    delimiter = ";" if lines[0].count(";") > lines[0].count(",") else ","
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    rows = csv_rows(reader)
    try:
        header = [h.strip().lstrip("\ufeff") for h in next(rows)[1]]
    except CsvRowError as exc:
        raise ScenarioError([Issue(source, exc.line, "", exc.reason)]) from None
    issues: list[Issue] = []
    index = {name.lower().replace(" ", ""): i for i, name in enumerate(header)}
    for col in COLUMNS[:4]:
        if col.lower() not in index:
            issues.append(Issue(source, 1, col, f"missing column {col!r} (header: {header})"))
    if issues:
        raise ScenarioError(issues)
    entries: list[MeterListEntry] = []
    try:
        _read_rows(rows, index, source, entries, issues)
    except CsvRowError as exc:
        issues.append(Issue(source, exc.line, "", exc.reason))
    if issues:
        raise ScenarioError(issues)
    return entries


def _read_rows(
    rows: Iterator[tuple[int, list[str]]],
    index: dict[str, int],
    source: str,
    entries: list[MeterListEntry],
    issues: list[Issue],
) -> None:
    """Check each data row: good ones go to ``entries``, problems to ``issues``."""
    for line, row in rows:

        def cell(col: str, row: list[str] = row) -> str:
            i = index.get(col.lower())
            return row[i].strip() if i is not None and i < len(row) else ""

        if not any(c.strip() for c in row):
            continue  # the template's empty rows
        bad = len(issues)
        position = cell("Position")
        if not position:
            issues.append(Issue(source, line, "Position", "empty position"))
        secondary = cell("SecondaryAddress").upper()
        mode = cell("AddressingMode").lower()
        if mode not in MODES:
            issues.append(
                Issue(
                    source,
                    line,
                    "AddressingMode",
                    f"must be one of primary/secondary/esecondary, got {mode!r}",
                )
            )
        if mode != "primary" or secondary:
            if len(secondary) == 8 and is_decimal(secondary):
                pass
            elif len(secondary) == 16:
                try:
                    SecondaryAddress.parse(secondary)
                except AddressError as exc:
                    issues.append(Issue(source, line, "SecondaryAddress", str(exc)))
            else:
                issues.append(
                    Issue(
                        source,
                        line,
                        "SecondaryAddress",
                        f"expected an 8-digit ID or 16 hex characters, got {secondary!r}",
                    )
                )
        baud_text = cell("BaudRate")
        baud = decimal(baud_text) or -1
        if baud not in BAUDS:
            issues.append(
                Issue(source, line, "BaudRate", f"must be 300 or 2400 (or 9600), got {baud_text!r}")
            )
        prim_text = cell("PrimaryAddress")
        primary: int | None = None
        if prim_text:
            if (p := decimal(prim_text)) is not None and p <= 250:
                primary = p
            else:
                issues.append(
                    Issue(source, line, "PrimaryAddress", f"must be 0..250, got {prim_text!r}")
                )
        elif mode == "primary":
            issues.append(
                Issue(source, line, "PrimaryAddress", "required with AddressingMode primary")
            )
        if len(issues) == bad:
            entries.append(
                MeterListEntry(
                    position, secondary, baud, mode, primary, cell("EnhancedAddress") or None, line
                )
            )


def read_meter_list(path: str | Path) -> list[MeterListEntry]:
    """Read a meter-list CSV file (UTF-8, BOM allowed); see :func:`parse_meter_list`."""
    path = Path(path)
    return parse_meter_list(read_text(path, "utf-8-sig"), str(path))


def format_meter_list(entries: list[MeterListEntry]) -> str:
    """The entries as meter-list CSV text (comma separated, the vendor column order)."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(COLUMNS)
    for e in entries:
        w.writerow(
            [
                e.position,
                e.secondary,
                e.baud,
                e.mode.capitalize(),
                "" if e.primary is None else e.primary,
                e.enhanced or "",
            ]
        )
    return out.getvalue()
