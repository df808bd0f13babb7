"""Character classes of user text, ASCII only.

``str.isdigit()`` is true for ``²`` and Arabic-Indic digits, and ``int()`` reads ``٣`` as 3,
so a file, SMS or command line could put characters that no meter, gateway or standard uses
into a number (or crash ``int()``). Every parser of user text asks these helpers instead.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from typing import Any

DECIMAL = frozenset("0123456789")
HEX = frozenset("0123456789abcdefABCDEF")
LETTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")


def is_decimal(text: str) -> bool:
    """True if ``text`` is one or more ASCII digits 0-9 (no sign, space, ``_`` or ``²``)."""
    return bool(text) and all(ch in DECIMAL for ch in text)


def is_hex(text: str) -> bool:
    """True if ``text`` is one or more ASCII hex digits 0-9, a-f, A-F."""
    return bool(text) and all(ch in HEX for ch in text)


def is_letters(text: str) -> bool:
    """True if ``text`` is one or more ASCII letters A-Z, a-z."""
    return bool(text) and all(ch in LETTERS for ch in text)


#: Longest digit string :func:`decimal` reads (``int()`` refuses more than 4300 digits, and
#: no count, address or time in meterbench needs more than 18).
MAX_DIGITS = 18


def decimal(text: str) -> int | None:
    """``int(text)`` for 1..18 ASCII decimal digits, else ``None`` (never raises)."""
    return int(text) if len(text) <= MAX_DIGITS and is_decimal(text) else None


class CsvRowError(ValueError):
    """A CSV row the ``csv`` module cannot read (a cell over its field limit, a stray quote
    in strict mode); ``line`` is the 1-based line where reading stopped."""

    def __init__(self, reason: str, line: int) -> None:
        self.reason, self.line = reason, line
        super().__init__(f"line {line}: {reason}")


def csv_rows(reader: Any) -> Iterator[tuple[int, list[str]]]:
    """``(line, row)`` for each row of a ``csv.reader`` (``line``: where the row ends); a
    ``csv.Error`` becomes :class:`CsvRowError` with the line, so each file format reports it
    as its own typed error (meter list, key file)."""
    try:
        for row in reader:
            yield reader.line_num, row
    except csv.Error as exc:
        raise CsvRowError(f"not readable as CSV: {exc}", max(reader.line_num, 1)) from None
