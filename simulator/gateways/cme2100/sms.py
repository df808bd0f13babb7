"""SMS text limits: the GSM 7-bit default alphabet and concatenation (3GPP TS 23.038 / 23.040).

A single SMS carries 140 octets of user data: 160 septets of GSM-7 text. A concatenated
message spends 6 octets of user data header (IEI 00, 8-bit reference, TS 23.040 §9.2.3.24.1)
plus one fill bit, which leaves 153 septets per part, at most 255 parts. Characters of the
extension table (``^{}\\[~]|€`` and form feed) take two septets (escape 0x1B + code).
Base64URL (the CMe2100 v1 text form) uses only basic-table characters, one septet each.
Base64URL never needs UCS-2, but a phone switches a whole message to UCS-2 (TS 23.038 DCS 08)
as soon as one character is outside GSM 7-bit; :func:`first_non_gsm` finds that character.
"""

from __future__ import annotations

#: GSM 03.38 default alphabet, basic table, in code order (0x1B is the escape to extension).
BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
#: Extension table: character -> code after the 0x1B escape.
EXTENSION = {
    "\f": 0x0A,
    "^": 0x14,
    "{": 0x28,
    "}": 0x29,
    "\\": 0x2F,
    "[": 0x3C,
    "~": 0x3D,
    "]": 0x3E,
    "|": 0x40,
    "€": 0x65,
}
ESCAPE = 0x1B
_BASIC_CODE = {ch: i for i, ch in enumerate(BASIC) if i != ESCAPE}
_EXT_CHAR = {code: ch for ch, code in EXTENSION.items()}

SINGLE_SEPTETS = 160  # one SMS, no header
PART_SEPTETS = 153  # one part of a concatenated SMS (6-octet UDH + 1 fill bit)
MAX_PARTS = 255  # 8-bit concatenation counters

assert len(BASIC) == 128


class SmsEncodingError(ValueError):
    """Text that cannot be sent as GSM-7: ``offset`` is the position of the bad character."""

    def __init__(self, message: str, offset: int | None = None) -> None:
        self.offset = offset
        super().__init__(f"{message}" + (f" at offset {offset}" if offset is not None else ""))


def is_gsm7_basic(text: str) -> bool:
    """True if every character is in the basic table (one septet each)."""
    return all(ch in _BASIC_CODE for ch in text)


def to_septets(text: str) -> list[int]:
    """GSM-7 septet values of ``text`` (extension characters become two septets).

    Raises :class:`SmsEncodingError` with the offset of the first character not in GSM-7.
    """
    out: list[int] = []
    for i, ch in enumerate(text):
        code = _BASIC_CODE.get(ch)
        if code is not None:
            out.append(code)
        elif ch in EXTENSION:
            out += [ESCAPE, EXTENSION[ch]]
        else:
            raise SmsEncodingError(f"character {ch!r} is not in the GSM 7-bit alphabet", i)
    return out


def from_septets(septets: list[int] | bytes) -> str:
    """Text of GSM-7 septet values (an escape followed by an unknown code gives a space)."""
    out = []
    escape = False
    for s in septets:
        if escape:
            out.append(_EXT_CHAR.get(s, " "))
            escape = False
        elif s == ESCAPE:
            escape = True
        else:
            out.append(BASIC[s & 0x7F])
    return "".join(out)


def first_non_gsm(text: str) -> tuple[int, str] | None:
    """``(offset, character)`` of the first character of ``text`` that GSM 7-bit (basic or
    extension table) cannot carry, or ``None``: the character that made a phone send UCS-2."""
    for i, ch in enumerate(text):
        if ch not in _BASIC_CODE and ch not in EXTENSION:
            return i, ch
    return None


def septet_length(text: str) -> int:
    """Septets needed for ``text`` (raises :class:`SmsEncodingError` for non-GSM-7 text)."""
    return len(to_septets(text))


def split_septets(septets: list[int]) -> list[list[int]]:
    """Split septets into SMS parts: one part if <= 160, else parts of <= 153.

    An escape is never separated from its extension code (a part may then hold 152).
    Raises :class:`SmsEncodingError` if more than 255 parts would be needed.
    """
    if len(septets) <= SINGLE_SEPTETS:
        return [list(septets)]
    parts: list[list[int]] = []
    i = 0
    while i < len(septets):
        end = min(i + PART_SEPTETS, len(septets))
        if end < len(septets) and septets[end - 1] == ESCAPE and not _escaped(septets, end - 1):
            end -= 1
        parts.append(list(septets[i:end]))
        i = end
    if len(parts) > MAX_PARTS:
        raise SmsEncodingError(f"{len(parts)} parts needed, at most {MAX_PARTS} can be sent")
    return parts


def _escaped(septets: list[int], index: int) -> bool:
    # True if septets[index] is itself the code following an escape.
    n = 0
    while index - 1 - n >= 0 and septets[index - 1 - n] == ESCAPE:
        n += 1
    return n % 2 == 1


def split_text(text: str) -> list[str]:
    """``text`` cut into the texts of the SMS parts it would be sent as."""
    return [from_septets(p) for p in split_septets(to_septets(text))]


def parts_needed(text: str) -> int:
    """Number of SMS a text takes (1 up to 160 septets, else ceil(septets / 153))."""
    return len(split_septets(to_septets(text)))
