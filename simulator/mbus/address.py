"""Secondary addresses, selection masks and manufacturer codes (PROTOCOL.md §3, §4.2).

A secondary address is the 8-byte identity a slave sends in its CI 72 long header and that a
master sends in a CI 52 selection: ID (4 bytes BCD, LSB first), manufacturer (2 bytes, LE),
version, medium. Its text form is the libmbus 16-hex one: the 8 ID digits (most significant
first), then the manufacturer bytes in wire order, then version and medium, e.g. ID 12345678,
'ELV', version 1, medium 4 -> ``"1234567896150104"`` (libmbus
``mbus_frame_get_secondary_address``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from simulator.core.text import is_decimal
from simulator.mbus.errors import AddressError

_HEX16 = re.compile(r"[0-9A-Fa-f]{16}")


def manufacturer_code(letters: str) -> int:
    """Pack a three-letter manufacturer ID (EN 13757-3 / FLAG) into 15 bits.

    ``((c1-64) << 10) | ((c2-64) << 5) | (c3-64)``: ``"ELV"`` -> ``0x1596`` (PROTOCOL.md §4.2).
    Lower case is accepted. Raises :class:`AddressError` unless ``letters`` is 3 letters A-Z.
    """
    if not isinstance(letters, str) or len(letters) != 3 or not letters.isascii():
        raise AddressError(f"manufacturer must be 3 letters A-Z, got {letters!r}")
    up = letters.upper()
    if not up.isalpha():
        raise AddressError(f"manufacturer must be 3 letters A-Z, got {letters!r}")
    return ((ord(up[0]) - 64) << 10) | ((ord(up[1]) - 64) << 5) | (ord(up[2]) - 64)


def manufacturer_letters(code: int) -> str:
    """Unpack a 16-bit manufacturer field into its three letters: ``0x1596`` -> ``"ELV"``.

    Total for any 0..0xFFFF so decoders can show odd meters: bit 15 is ignored and a 5-bit
    group outside 1..26 shows as the ASCII character 64 + group (``0`` -> ``"@@@"``), as
    libmbus does. Use :func:`is_valid_manufacturer` to tell. Raises :class:`AddressError` if
    ``code`` is not an int 0..0xFFFF.
    """
    if not isinstance(code, int) or not 0 <= code <= 0xFFFF:
        raise AddressError(f"manufacturer code must be 0..0xFFFF, got {code!r}")
    return "".join(chr(64 + ((code >> s) & 0x1F)) for s in (10, 5, 0))


def is_valid_manufacturer(code: int) -> bool:
    """True if ``code`` is three letters A-Z (0x0421 'AAA' .. 0x6B5A 'ZZZ', bit 15 clear)."""
    if code & 0x8000:
        return False
    return all(1 <= (code >> s) & 0x1F <= 26 for s in (10, 5, 0))


def bcd_id_bytes(number: int) -> bytes:
    """An 8-digit decimal ID as 4 BCD bytes, LSB first (12345678 -> ``78 56 34 12``)."""
    digits = f"{number:08d}"
    return bytes.fromhex(digits)[::-1]


def id_from_bcd(raw: bytes, offset: int = 0) -> int:
    """4 BCD bytes (LSB first) -> the decimal ID; :class:`AddressError` on a nibble A-F."""
    for i, byte in enumerate(raw):
        if byte >> 4 > 9 or byte & 0xF > 9:
            raise AddressError(f"ID byte {byte:02X} is not BCD", offset + i)
    return int(raw[::-1].hex())


@dataclass(frozen=True, order=True)
class SecondaryAddress:
    """A slave's secondary address.

    Attributes
    ----------
    id:
        0..99_999_999, the decimal number printed on the meter (sent as 4 BCD bytes, LSB first).
    manufacturer:
        Three letters A-Z (upper case is stored).
    version:
        0..255, the device generation.
    medium:
        0..255, the device type (PROTOCOL.md §4.6, e.g. 4 = heat (outlet), 7 = water).

    Raises :class:`AddressError` on any field out of range.
    """

    id: int
    manufacturer: str
    version: int
    medium: int

    def __post_init__(self) -> None:
        if (
            not isinstance(self.id, int)
            or isinstance(self.id, bool)
            or not 0 <= self.id <= 99_999_999
        ):
            raise AddressError(f"ID must be an int 0..99999999, got {self.id!r}")
        manufacturer_code(self.manufacturer)  # validates
        object.__setattr__(self, "manufacturer", self.manufacturer.upper())
        for name in ("version", "medium"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= 255:
                raise AddressError(f"{name} must be an int 0..255, got {v!r}")

    @property
    def manufacturer_code(self) -> int:
        return manufacturer_code(self.manufacturer)

    def to_bytes(self) -> bytes:
        """The 8 wire bytes, in CI 52 / CI 72 order."""
        return _wire(self)

    @classmethod
    def from_bytes(cls, b: bytes, offset: int = 0) -> SecondaryAddress:
        """Parse 8 wire bytes; ``offset`` is where they start in the frame (for error offsets).

        Raises :class:`AddressError` if not 8 bytes, the ID is not BCD or the manufacturer is
        not three letters A-Z.
        """
        b = bytes(b)
        if cls is SecondaryAddress:  # frozen: one object per distinct address (a hot path)
            return _parsed(b, offset)
        return cls._parse_bytes(b, offset)

    @classmethod
    def _parse_bytes(cls, b: bytes, offset: int) -> SecondaryAddress:
        if len(b) != 8:
            raise AddressError(f"a secondary address is 8 bytes, got {len(b)}", offset)
        ident = id_from_bcd(b[:4], offset)
        code = int.from_bytes(b[4:6], "little")
        if not is_valid_manufacturer(code):
            raise AddressError(f"manufacturer code {code:04X} is not three letters A-Z", offset + 4)
        return cls(ident, manufacturer_letters(code), b[6], b[7])

    def __str__(self) -> str:
        return _text(self)

    @classmethod
    def parse(cls, text: str) -> SecondaryAddress:
        """Parse the libmbus 16-hex form (``"1234567896150104"``); surrounding spaces are ignored.

        Raises :class:`AddressError` (offset = character index) on a wrong length, a non-digit
        in the ID part or a bad manufacturer.
        """
        if not isinstance(text, str):
            raise AddressError(f"secondary address must be a string, got {type(text).__name__}")
        t = text.strip()
        if not _HEX16.fullmatch(t):
            raise AddressError(f"secondary address must be 16 hex characters, got {text!r}")
        for i, ch in enumerate(t[:8]):
            if not is_decimal(ch):
                raise AddressError(f"ID digit {ch!r} is not 0-9 in {t!r}", i)
        raw = bytes.fromhex(t[:8])[::-1] + bytes.fromhex(t[8:])
        return cls.from_bytes(raw)


@lru_cache(maxsize=4096)
def _text(addr: SecondaryAddress) -> str:
    # the 16-hex form, once per address (a readout's trace and CSV row name it each time)
    return f"{addr.id:08d}{_wire(addr)[4:].hex().upper()}"


@lru_cache(maxsize=4096)
def _wire(addr: SecondaryAddress) -> bytes:
    return (
        bcd_id_bytes(addr.id)
        + manufacturer_code(addr.manufacturer).to_bytes(2, "little")
        + bytes([addr.version, addr.medium])
    )


@lru_cache(maxsize=4096)
def _parsed(b: bytes, offset: int) -> SecondaryAddress:
    return SecondaryAddress._parse_bytes(b, offset)  # errors are raised, never cached


@dataclass(frozen=True)
class SecondaryMask:
    """A selection pattern: the 8 wire bytes of a CI 52 selection, possibly with wildcards.

    A nibble ``F`` in the ID means "any digit"; ``FF`` bytes wildcard manufacturer
    (``FF FF``), version and medium (PROTOCOL.md §3).

    Matching rule used by simulated slaves (:meth:`matches`): a mask nibble ``F`` matches any
    nibble, in *every* field, ID digits and manufacturer/version/medium alike; every other
    nibble must be equal. EN 13757-3 only defines whole ``FF`` bytes for manufacturer, version
    and medium; this rule includes that (an ``FF`` byte is two ``F`` nibbles) and also lets a
    single ``F`` nibble there match, which is what libmbus's digit-by-digit search sends.

    ``raw`` must be 8 bytes whose ID nibbles are 0-9 or F; otherwise :class:`AddressError`.
    """

    raw: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.raw, bytes | bytearray | memoryview):
            raise AddressError(f"mask must be bytes, got {type(self.raw).__name__}")
        object.__setattr__(self, "raw", bytes(self.raw))
        if len(self.raw) != 8:
            raise AddressError(f"a selection mask is 8 bytes, got {len(self.raw)}")
        for i, byte in enumerate(self.raw[:4]):
            for nib in (byte >> 4, byte & 0xF):
                if 9 < nib < 0xF:
                    raise AddressError(f"ID byte {byte:02X} is neither BCD nor wildcard F", i)

    @classmethod
    def parse(cls, text: str) -> SecondaryMask:
        """16 hex characters in libmbus order, ``F`` = wildcard (``"1234FFFFFFFFFFFF"``).

        Raises :class:`AddressError` on a wrong length or an ID character other than 0-9/F.
        """
        if not isinstance(text, str):
            raise AddressError(f"mask must be a string, got {type(text).__name__}")
        t = text.strip().upper()
        if not _HEX16.fullmatch(t):
            raise AddressError(f"mask must be 16 hex characters, got {text!r}")
        for i, ch in enumerate(t[:8]):
            if not (is_decimal(ch) or ch == "F"):
                raise AddressError(f"ID character {ch!r} must be 0-9 or F in {t!r}", i)
        return cls(bytes.fromhex(t[:8])[::-1] + bytes.fromhex(t[8:]))

    @classmethod
    def of(cls, addr: SecondaryAddress) -> SecondaryMask:
        """The mask that selects exactly ``addr``."""
        return cls(addr.to_bytes())

    @classmethod
    def all_wildcards(cls) -> SecondaryMask:
        """The all-wildcard mask ``FFFFFFFFFFFFFFFF``."""
        return cls(b"\xff" * 8)

    def __str__(self) -> str:
        return (self.raw[:4][::-1].hex() + self.raw[4:].hex()).upper()

    def to_bytes(self) -> bytes:
        return self.raw

    @property
    def is_wildcard(self) -> bool:
        """True if any nibble is the wildcard F (the ID part) or any field byte is FF."""
        return any(b >> 4 == 0xF or b & 0xF == 0xF for b in self.raw[:4]) or any(
            b == 0xFF for b in self.raw[4:]
        )

    def matches(self, addr: SecondaryAddress) -> bool:
        """True if ``addr`` is selected by this mask (nibble F = any, in every field)."""
        return self.matches_bytes(addr.to_bytes())

    def matches_bytes(self, wire: bytes) -> bool:
        """:meth:`matches` on 8 wire bytes (for addresses that are not valid BCD/letters)."""
        if len(wire) != 8:
            return False
        for m, a in zip(self.raw, wire, strict=True):
            for shift in (4, 0):
                mn = (m >> shift) & 0xF
                if mn != 0xF and mn != (a >> shift) & 0xF:
                    return False
        return True
