"""EN 13757-3 data types: integers, BCD, real32, LVAR and the date/time types F, G, I, J.

All multi-byte values are little-endian (mode 1). Every function raises
:class:`~simulator.mbus.errors.RecordError` (never ``ValueError``/``struct.error``); decoders
take an ``offset`` (position of the bytes in the frame) so errors point at the right byte.

Sources: PROTOCOL.md §4.4 (data field table, LVAR), §4.5 (types F/G/I); libmbus
``mbus_data_int_decode``, ``mbus_data_bcd_decode``, ``mbus_data_tm_decode`` (L2).
"""

from __future__ import annotations

import math
import struct
from datetime import date, datetime, time

from simulator.mbus.errors import RecordError

#: Data field (DIF bits 3..0) -> number of data bytes; None = variable (LVAR) or special (F).
DATA_LENGTHS: dict[int, int | None] = {
    0x0: 0,
    0x1: 1,
    0x2: 2,
    0x3: 3,
    0x4: 4,
    0x5: 4,
    0x6: 6,
    0x7: 8,
    0x8: 0,
    0x9: 1,
    0xA: 2,
    0xB: 3,
    0xC: 4,
    0xD: None,
    0xE: 6,
    0xF: None,
}
INT_FIELDS = {0x1: 1, 0x2: 2, 0x3: 3, 0x4: 4, 0x6: 6, 0x7: 8}
BCD_FIELDS = {0x9: 1, 0xA: 2, 0xB: 3, 0xC: 4, 0xE: 6}
REAL_FIELD = 0x5
LVAR_FIELD = 0xD


# --- integers (two's complement, signed) ---------------------------------------------------


def decode_int(raw: bytes) -> int:
    """Signed little-endian two's complement integer of any width (libmbus sign-extends)."""
    return int.from_bytes(raw, "little", signed=True)


def encode_int(value: int, size: int) -> bytes:
    """``value`` as ``size`` bytes signed LE; RecordError if it does not fit."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise RecordError(f"integer data field needs an int, got {value!r}")
    lo, hi = -(1 << (8 * size - 1)), (1 << (8 * size - 1)) - 1
    if not lo <= value <= hi:
        raise RecordError(f"{value} does not fit a {8 * size}-bit signed integer ({lo}..{hi})")
    return value.to_bytes(size, "little", signed=True)


# --- BCD -----------------------------------------------------------------------------------


def decode_bcd(raw: bytes, offset: int = 0) -> int:
    """BCD digits, LSB byte first; a high nibble F in the top byte means minus (as libmbus).

    Raises :class:`RecordError` (offset of the byte) on a nibble A-F elsewhere (meters use
    such patterns, e.g. all ``FF``, to flag "no value"; callers keep the raw bytes).
    """
    if not raw:
        return 0
    digits = raw[::-1].hex()
    if digits.isdigit():  # the common case in one C call; the loop below finds the bad byte
        return int(digits)
    if digits[0] == "f" and digits[1:].isdigit():
        return -int(digits[1:])
    negative = raw[-1] >> 4 == 0xF
    value = 0
    for i in range(len(raw) - 1, -1, -1):
        byte = raw[i]
        hi, lo = byte >> 4, byte & 0xF
        if i == len(raw) - 1 and negative:
            hi = 0
        if hi > 9 or lo > 9:
            raise RecordError(f"byte {byte:02X} is not BCD", offset + i)
        value = value * 100 + hi * 10 + lo
    return -value if negative else value


def encode_bcd(value: int, size: int) -> bytes:
    """``value`` as ``2*size`` BCD digits LSB first; negatives use the top nibble F.

    Range: 0..10^(2n)-1 and -(10^(2n-1)-1)..-1. RecordError otherwise.
    """
    if not isinstance(value, int) or isinstance(value, bool):
        raise RecordError(f"BCD data field needs an int, got {value!r}")
    digits = 2 * size
    if value < 0:
        if -value >= 10 ** (digits - 1):
            raise RecordError(f"{value} does not fit {digits}-digit negative BCD")
        text = "F" + f"{-value:0{digits - 1}d}"
    else:
        if value >= 10**digits:
            raise RecordError(f"{value} does not fit {digits} BCD digits")
        text = f"{value:0{digits}d}"
    return bytes.fromhex(text)[::-1]


# --- real32 --------------------------------------------------------------------------------


def decode_real(raw: bytes) -> float:
    """IEEE 754 single precision, little-endian."""
    return struct.unpack("<f", raw)[0]


def encode_real(value: float) -> bytes:
    """``value`` as IEEE 754 single, LE; RecordError on overflow or a non-number."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RecordError(f"real data field needs a number, got {value!r}")
    try:
        return struct.pack("<f", value)
    except (OverflowError, struct.error) as exc:
        raise RecordError(f"{value} does not fit a 32-bit real: {exc}") from None


# --- LVAR ----------------------------------------------------------------------------------


def lvar_length(lvar: int, offset: int = 0) -> int:
    """Number of data bytes that follow an LVAR byte (EN 13757-3 LVAR table).

    00..BF: that many characters; C0..C9 / D0..D9: positive / negative BCD of
    (LVAR-C0)*2 digits, i.e. (LVAR-C0) bytes; E0..EF: binary of (LVAR-E0) bytes; F0..F4: binary
    of 4*(LVAR-EC) bytes; F5: 48 bytes; F6: 64 bytes. CA..CF, DA..DF, F7..FF are reserved:
    :class:`RecordError`. libmbus reads C0..CF as (LVAR-C0)*2 *bytes* and F0..FA as
    (LVAR-F0) bytes; its own test frame ``example_binary16_lvar`` (LVAR F0 + 16 bytes) only
    parses with the 4*(LVAR-EC) reading, so we follow the table (PROTOCOL.md §4.4 notes the
    libmbus doubt).
    """
    if lvar <= 0xBF:
        return lvar
    if 0xC0 <= lvar <= 0xC9:
        return lvar - 0xC0
    if 0xD0 <= lvar <= 0xD9:
        return lvar - 0xD0
    if 0xE0 <= lvar <= 0xEF:
        return lvar - 0xE0
    if 0xF0 <= lvar <= 0xF4:
        return 4 * (lvar - 0xEC)
    if lvar == 0xF5:
        return 48
    if lvar == 0xF6:
        return 64
    raise RecordError(f"LVAR {lvar:02X} is reserved", offset)


def decode_lvar(lvar: int, raw: bytes, *, text: bool, offset: int = 0) -> str | int | bytes:
    """Value of an LVAR field given its length byte and data.

    Text (00..BF) is ISO 8859-1, sent last character first, so it is reversed; when ``text``
    is False (containers, manufacturer-specific data) the bytes are returned as sent.
    C0..C9/D0..D9 give a (negative) int from BCD; E0..F6 give bytes (binary numbers of
    arbitrary width are kept raw).
    """
    if lvar <= 0xBF:
        return raw[::-1].decode("latin-1") if text else raw
    if 0xC0 <= lvar <= 0xC9:
        return decode_bcd(raw, offset)
    if 0xD0 <= lvar <= 0xD9:
        return -decode_bcd(raw, offset)
    return raw


def encode_text(value: str) -> bytes:
    """LVAR byte + ISO 8859-1 text, last character first; RecordError if > 191 chars/not latin-1."""
    try:
        raw = value.encode("latin-1")
    except UnicodeEncodeError as exc:
        raise RecordError(f"text is not ISO 8859-1: {exc.reason} at {exc.start}") from None
    if len(raw) > 0xBF:
        raise RecordError(f"text of {len(raw)} characters exceeds the LVAR maximum 191")
    return bytes([len(raw)]) + raw[::-1]


def encode_lvar_bytes(value: bytes) -> bytes:
    """LVAR byte (00..BF) + bytes as they are (containers); RecordError if > 191 bytes."""
    if len(value) > 0xBF:
        raise RecordError(f"{len(value)} bytes exceed the LVAR maximum 191")
    return bytes([len(value)]) + bytes(value)


# --- date/time types G (CP16), F (CP32), I (CP48) ------------------------------------------
# Year: a 7-bit year-in-century y split over two bytes. Type F also has two hundred-year bits
# hy (byte 1, bits 5-6): year = 1900 + 100*hy + y (EN 13757-3:2013, Kamstrup sets hy=1 for
# 2011). Many meters leave hy = 0, and types G and I have no hy bits, so, like libmbus and
# wmbusmeters, y < 81 with hy = 0 means 20yy. Codable: 1981..2080 (G, I), 1981..2299 (F).
# A cleared field (day or month 0), an impossible date or the IV bit gives no value.


def _year_bits(y: int, lo_byte: int, hi_byte: int) -> tuple[int, int]:
    return lo_byte | ((y & 0x07) << 5), hi_byte | ((y & 0x78) << 1)


def _year_of(lo_byte: int, hi_byte: int, hundred: int = 0) -> int:
    y = ((lo_byte & 0xE0) >> 5) | ((hi_byte & 0xF0) >> 1)
    year = 1900 + 100 * hundred + y
    return year + 100 if hundred == 0 and y < 81 else year


def decode_date_g(raw: bytes) -> date | None:
    """Type G: day (b0 bits 0-4), month (b1 bits 0-3), year bits in b0 5-7 / b1 4-7."""
    day, month = raw[0] & 0x1F, raw[1] & 0x0F
    try:
        return date(_year_of(raw[0], raw[1]), month, day)
    except ValueError:
        return None


def encode_date_g(value: date) -> bytes:
    y = _check_year(value.year, 2080) % 100
    b0, b1 = _year_bits(y, value.day, value.month)
    return bytes([b0, b1])


def decode_datetime_f(raw: bytes) -> datetime | None:
    """Type F: minute (IV = b0 bit 7), hour (+ hundred-year b1 bits 5-6, summer time b1 bit 7),
    day/year, month/year."""
    if raw[0] & 0x80:
        return None
    minute, hour = raw[0] & 0x3F, raw[1] & 0x1F
    day, month = raw[2] & 0x1F, raw[3] & 0x0F
    try:
        return datetime(_year_of(raw[2], raw[3], (raw[1] >> 5) & 0x03), month, day, hour, minute)
    except ValueError:
        return None


def encode_datetime_f(value: datetime) -> bytes:
    hundred, y = divmod(_check_year(value.year, 2299) - 1900, 100)
    b2, b3 = _year_bits(y, value.day, value.month)
    return bytes([value.minute, value.hour | (hundred << 5), b2, b3])


def decode_datetime_i(raw: bytes) -> datetime | None:
    """Type I: second (+ summer time b0 bit 6), minute (IV = b1 bit 7), hour, day/year, month/year."""
    if raw[1] & 0x80:
        return None
    second, minute, hour = raw[0] & 0x3F, raw[1] & 0x3F, raw[2] & 0x1F
    day, month = raw[3] & 0x1F, raw[4] & 0x0F
    try:
        return datetime(_year_of(raw[3], raw[4]), month, day, hour, minute, second)
    except ValueError:
        return None


def encode_datetime_i(value: datetime) -> bytes:
    y = _check_year(value.year, 2080) % 100
    b3, b4 = _year_bits(y, value.day, value.month)
    return bytes([value.second, value.minute, value.hour, b3, b4, 0])


def _check_year(year: int, last: int) -> int:
    if not 1981 <= year <= last:
        raise RecordError(f"year {year} outside the codable range 1981..{last}")
    return year


def is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


# --- type J (CP24): time of day --------------------------------------------------------------
# EN 13757-3 Annex A: second UI6 (b0 bits 0-5), minute UI6 (b1 bits 0-5), hour UI5 (b2 bits 0-4),
# the same layout as the first three bytes of type I; exmbus decode_type_j reads <<59, 48, 11>>
# as 11:48:59. Bits 6-7 of b0/b1 and 5-7 of b2 are reserved and ignored.


def decode_time_j(raw: bytes) -> time | None:
    """Type J: a ``time`` (second, minute, hour), or None when a field is out of range."""
    try:
        return time(raw[2] & 0x1F, raw[1] & 0x3F, raw[0] & 0x3F)
    except ValueError:
        return None


def encode_time_j(value: time) -> bytes:
    """A ``time`` as type J (3 bytes, second first); sub-second parts are dropped."""
    return bytes([value.second, value.minute, value.hour])
