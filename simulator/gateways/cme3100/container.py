"""Wireless M-Bus telegram in a wired M-Bus container (seed 003 §9.4).

The CMe3100 passes a received wireless telegram on as a wired RSP_UD user-data block::

    C=08  A  CI=72  long header (12)          ID, M, version, device type from the wireless
                                               M- and A-fields; access no., status, signature 0
    [0C 78 <BCD8>]                             fabrication number (the receiver's serial)
    01 FD 71 <RSSI>                            reception level: dBm = 2 * raw - 130
    0D FD 3B <len> <wireless telegram>         container: from the L-field, CRCs removed

The short header of the wireless telegram is not used on the wired side (§9.4). The seed's
worked example (§9.4.2, also the report line in §9.3.2) is reproduced byte for byte by
:func:`wired_container` (``tests/test_stream_container.py``).

Interpretation notes (the manual is terse):

- The example carries ``0C 78 72 17 00 62`` (fabrication number 62001772) between the header
  and the RSSI record, which the §9.4.2 table does not list. The bench takes it to be the
  serial number of the receiver that heard the telegram and writes it when ``fabrication_no``
  is given.
- The RSSI byte: VIFE FD 71 is the reception level (EN 13757-3, unit dBm). The example's byte
  is 0x1C, which as a plain signed byte would be +28 dBm, impossible for a received meter.
  pymeterbus decodes FD 71 as ``dBm = 2 * raw - 130`` (``telegram_variable_data_record.py``),
  which makes 0x1C = -74 dBm, inside the -73..-93 dBm the analyzer screenshot (§5.3) shows.
  The bench uses that coding (2 dB steps, -130..-0 dBm -> 0x00..0x41, rounded half up);
  the container test checks it against pymeterbus.
- The container length is the LVAR byte of DIF 0x0D (EN 13757-3 variable length): only
  0x00..0xBF mean "that many bytes"; 0xC0..0xFF code BCD / binary numbers and special
  lengths. A wireless telegram of 192 bytes or more (L-field on) cannot be contained: its
  length would read as another LVAR kind, so :func:`wired_container` refuses it and
  :func:`parse_container` refuses such a length byte.

Errors are :class:`ContainerError` (a ``ValueError``) naming the offset and what is wrong.
"""

from __future__ import annotations

from dataclasses import dataclass

RSP_UD = 0x08
CI_LONG_HEADER = 0x72
RSSI_RECORD = bytes([0x01, 0xFD, 0x71])
CONTAINER_RECORD = bytes([0x0D, 0xFD, 0x3B])
#: Longest contained telegram (bytes): LVAR 0x00..0xBF is a byte string of LVAR bytes.
MAX_CONTAINED = 0xBF
FABRICATION_RECORD = bytes([0x0C, 0x78])


class ContainerError(ValueError):
    """A wireless telegram cannot be contained, or a wired block is not a container."""

    def __init__(self, reason: str, offset: int | None = None) -> None:
        self.reason = reason
        self.offset = offset
        super().__init__(f"offset {offset}: {reason}" if offset is not None else reason)


def rssi_byte(rssi_dbm: float) -> int:
    """The FD 71 data byte for ``rssi_dbm`` (dBm): ``round((dBm + 130) / 2)``, half up."""
    raw = int((float(rssi_dbm) + 130.0) / 2.0 + 0.5) if rssi_dbm >= -130 else -1
    if not 0 <= raw <= 255:
        raise ContainerError(f"RSSI {rssi_dbm} dBm is outside the codable -130..380 dBm")
    return raw


def decode_rssi(raw: int) -> int:
    """Reception level (dBm) coded by the FD 71 data byte ``raw``."""
    return 2 * raw - 130


def _bcd8(value: int) -> bytes:
    if not 0 <= value <= 99_999_999:
        raise ContainerError(f"fabrication number {value} does not fit 8 BCD digits")
    digits = f"{value:08d}"
    return bytes(int(digits[i : i + 2], 16) for i in (6, 4, 2, 0))


def wired_container(
    wireless: bytes,
    *,
    rssi_dbm: int,
    a: int = 0,
    fabrication_no: int | None = None,
    access_no: int = 0,
    status: int = 0,
) -> bytes:
    """The wired user data (from the C-field on) containing ``wireless``.

    ``wireless`` is the telegram from its L-field, CRCs removed (at least L C M(2) A(6) CI =
    11 bytes, L consistent with the length); ``rssi_dbm`` the reception level (dBm, -130..380);
    ``a`` the wired primary address. Raises :class:`ContainerError`.
    """
    wireless = bytes(wireless)
    if len(wireless) < 11:
        raise ContainerError(f"wireless telegram too short ({len(wireless)} bytes, need >= 11)")
    if wireless[0] != len(wireless) - 1:
        raise ContainerError(
            f"L-field 0x{wireless[0]:02X} does not match {len(wireless) - 1} bytes after it "
            "(CRCs must be removed)",
            0,
        )
    if len(wireless) > MAX_CONTAINED:
        raise ContainerError(
            f"wireless telegram of {len(wireless)} bytes does not fit the container: its LVAR "
            f"length byte codes a byte string only up to {MAX_CONTAINED} (0xBF) bytes"
        )
    raw = rssi_byte(rssi_dbm)
    m, ident, version, dev = wireless[2:4], wireless[4:8], wireless[8], wireless[9]
    header = ident + m + bytes([version, dev, access_no & 0xFF, status & 0xFF, 0, 0])
    out = bytearray([RSP_UD, a & 0xFF, CI_LONG_HEADER]) + header
    if fabrication_no is not None:
        out += FABRICATION_RECORD + _bcd8(fabrication_no)
    out += RSSI_RECORD + bytes([raw])
    out += CONTAINER_RECORD + bytes([len(wireless)]) + wireless
    return bytes(out)


def wired_frame(user_data: bytes) -> bytes:
    """The complete wired long frame ``68 L L 68 <user_data> CS 16`` for :func:`wired_container`
    output (EN 13757-2 long frame; at most 255 bytes of C + A + CI + data)."""
    if len(user_data) > 255:
        raise ContainerError(f"{len(user_data)} bytes do not fit one long frame (max 255)")
    n = len(user_data)
    return bytes([0x68, n, n, 0x68]) + user_data + bytes([sum(user_data) & 0xFF, 0x16])


@dataclass(frozen=True)
class Contained:
    """What :func:`parse_container` finds in a wired container block."""

    wireless: bytes
    rssi_dbm: int | None
    fabrication_no: int | None
    a: int


def parse_container(user_data: bytes) -> Contained:
    """Take a wired container block (from the C-field) apart; :class:`ContainerError` if it
    is not one (wrong C/CI, missing container record, length beyond the data)."""
    b = bytes(user_data)
    if len(b) < 15 or b[0] != RSP_UD or b[2] != CI_LONG_HEADER:
        raise ContainerError("not an RSP_UD with CI 72 long header", 0)
    pos = 15
    rssi = fab = None
    while pos < len(b):
        if b[pos : pos + 2] == FABRICATION_RECORD and pos + 6 <= len(b):
            fab = int(b[pos + 2 : pos + 6][::-1].hex())
            pos += 6
        elif b[pos : pos + 3] == RSSI_RECORD and pos + 4 <= len(b):
            rssi = decode_rssi(b[pos + 3])
            pos += 4
        elif b[pos : pos + 3] == CONTAINER_RECORD and pos + 4 <= len(b):
            n = b[pos + 3]
            if n > MAX_CONTAINED:
                raise ContainerError(
                    f"container LVAR 0x{n:02X} is not a byte-string length (0x00..0xBF)", pos + 3
                )
            body = b[pos + 4 : pos + 4 + n]
            if len(body) != n:
                raise ContainerError(
                    f"container length {n} runs past the data ({len(body)} bytes left)", pos + 3
                )
            return Contained(body, rssi, fab, b[1])
        else:
            raise ContainerError(f"unexpected record byte 0x{b[pos]:02X}", pos)
    raise ContainerError("no container record 0D FD 3B", len(b))
