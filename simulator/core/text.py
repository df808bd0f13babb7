"""Character classes of user text, ASCII only.

``str.isdigit()`` is true for ``²`` and Arabic-Indic digits, and ``int()`` reads ``٣`` as 3,
so a file, SMS or command line could put characters that no meter, gateway or standard uses
into a number (or crash ``int()``). Every parser of user text asks these helpers instead.
"""

from __future__ import annotations

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
