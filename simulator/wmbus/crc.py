"""CRC-16/EN-13757, the check sequence of the wireless M-Bus data link layer.

Polynomial 0x3D65, initial value 0x0000, no reflection, final XOR 0xFFFF (EN 13757-4; PROTOCOL.md
§5.2, vectors from wmbusmeters ``src/testinternals.cc`` [W3]): ``crc16_en13757(b"123456789")``
is ``0xC2B7``. On air the CRC of a data link layer block is sent high byte first; the ELL payload
CRC inside an encrypted ELL is stored low byte first (PROTOCOL.md §5.2, §5.6).
"""

from __future__ import annotations

POLY = 0x3D65


def _make_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        reg = byte << 8
        for _ in range(8):
            reg = ((reg << 1) ^ POLY) if reg & 0x8000 else (reg << 1)
        table.append(reg & 0xFFFF)
    return tuple(table)


_TABLE = _make_table()


def crc16_en13757(data: bytes) -> int:
    """CRC-16/EN-13757 of ``data`` (any bytes-like), an int 0..0xFFFF.

    ``b"123456789"`` -> 0xC2B7; ``01 FD 1F 01`` -> 0xCC22 (PROTOCOL.md §5.2).
    """
    crc = 0
    table = _TABLE
    for byte in bytes(data):
        crc = ((crc << 8) & 0xFFFF) ^ table[(crc >> 8) ^ byte]
    return crc ^ 0xFFFF
