"""Wireless M-Bus data link layer (EN 13757-4): L, C, M, A fields and frame formats A and B.

On air a telegram is ``L | C | M(2) | A(6) | CI ...`` cut into blocks, each followed by a
CRC-16/EN-13757 sent high byte first (PROTOCOL.md §5.2):

* **Format A** (T1, S1, C1 frame A): block 1 = L C M A (10 bytes) + CRC, then blocks of 16
  bytes + CRC; the last block is shorter. L counts every byte after L, CRCs excluded. On-air
  length ``1 + L + 2 * (ceil((L - 9) / 16) + 1)``.
* **Format B** (C1 frame B): L counts every byte after L *including* the CRCs. One CRC covers
  bytes 0..125 (block 1 + block 2, i.e. up to 116 bytes after L's block-1 part) and sits right
  after them; a longer frame carries block 3 with its own CRC at the end. A frame of at most 128
  bytes has a single CRC at its end.

In this module a *payload* is everything after L without CRCs: ``C M(2) A(6) CI ...``, so its
length is the format-A L-field. Errors are :class:`WMBusError` subclasses with the byte offset
in the input; nothing else leaks out (house rule: one clear typed error).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from simulator.core.errors import PositionedError
from simulator.wmbus.crc import crc16_en13757

# --- C-field (PROTOCOL.md §5.2; W1 cType, SiLabs RAIL function-code enum) ---
SND_NR = 0x44  #: meter -> other, unsolicited, no reply expected
SND_IR = 0x46  #: installation request
ACC_NR = 0x47  #: meter offers access, no data
ACC_DMD = 0x48  #: access demand
SND_NKE = 0x40  #: link reset, to meter
SND_UD = 0x53  #: send user data, to meter (0x73 with FCB)
REQ_UD1 = 0x5A
REQ_UD2 = 0x5B
RSP_UD = 0x08  #: response (UNCONFIRMED for wireless, PROTOCOL.md §5.2)

C_FIELD_NAMES: dict[int, str] = {
    SND_NR: "SND_NR",
    SND_IR: "SND_IR",
    ACC_NR: "ACC_NR",
    ACC_DMD: "ACC_DMD",
    SND_NKE: "SND_NKE",
    SND_UD: "SND_UD",
    0x73: "SND_UD",
    REQ_UD1: "REQ_UD1",
    0x7A: "REQ_UD1",
    REQ_UD2: "REQ_UD2",
    0x7B: "REQ_UD2",
    RSP_UD: "RSP_UD",
}

FORMATS = ("A", "B")
DLL_HEADER_LEN = 9  #: C + M(2) + A(6), the part of block 1 after L
MAX_PAYLOAD = {"A": 255, "B": 251}  #: the L-field is one byte; format B also counts 2 CRCs


class WMBusError(PositionedError):
    """Base of every wireless M-Bus codec error.

    Attributes
    ----------
    offset:
        Byte offset in the input where the problem is (0 = the L-field of the frame as given),
        or ``None`` when it is not tied to a position.
    reason:
        What is wrong, without the offset. ``str(err)`` is ``"offset N: <reason>"``.
    """


class FrameError(WMBusError):
    """Data link layer: L-field, length, format, field values (EN 13757-4, PROTOCOL.md §5.2)."""


class CRCError(FrameError):
    """A block CRC does not match; ``offset`` is where the received CRC sits."""


class LayerError(WMBusError):
    """ELL, AFL or TPL header problem (PROTOCOL.md §5.3)."""


class SecurityError(WMBusError):
    """Encryption or authentication problem (OMS security modes 5/7, ELL CTR; §5.4-5.6)."""


class WrongKeyError(SecurityError):
    """The key does not decrypt the telegram (no ``2F 2F``, bad MAC or bad ELL payload CRC)."""


class MacError(WrongKeyError):
    """The AFL MAC of a mode-7 telegram does not verify (wrong key or altered data); ``offset``
    is the TPL CI the MAC covers from (EN 13757-7, PROTOCOL.md §5.5)."""


class MissingKeyError(SecurityError):
    """An operation needs a key (e.g. building an encrypted telegram) and none was given."""


class RecordsError(WMBusError):
    """The decrypted application data is not valid DIF/VIF records (wraps the wired
    :class:`simulator.mbus.errors.RecordError`, offset counted from the L-field)."""


class CodingError(WMBusError):
    """Physical-layer coding error (3-of-6 code word, Manchester chip pair); ``offset`` is the
    chip index."""


class KeyFileError(WMBusError):
    """A bad encryption key file; ``issues`` lists every bad line (see :mod:`.keys`)."""

    def __init__(self, reason: str, offset: int | None = None, issues: list | None = None) -> None:
        self.issues = list(issues or [])
        super().__init__(reason, offset)

    def __reduce__(self):
        return (type(self), (self.reason, self.offset, self.issues))


def _bcd_id(raw: bytes) -> int | None:
    """The A-field ID as a number, ``None`` if a nibble is not BCD (several manufacturers
    use hex IDs; decoders show them as hex digits, see :attr:`LinkHeader.id_text`)."""
    if any(byte >> 4 > 9 or byte & 0xF > 9 for byte in raw):
        return None
    return int(bytes(raw[::-1]).hex())


def _manufacturer_code(letters: str) -> int:
    up = letters.upper() if isinstance(letters, str) else ""
    if len(up) != 3 or not up.isascii() or not up.isalpha():
        raise FrameError(f"manufacturer must be 3 letters A-Z, got {letters!r}")
    return ((ord(up[0]) - 64) << 10) | ((ord(up[1]) - 64) << 5) | (ord(up[2]) - 64)


def _manufacturer_letters(code: int) -> str:
    # Total like libmbus: a 5-bit group outside 1..26 shows as chr(64 + group).
    return "".join(chr(64 + ((code >> s) & 0x1F)) for s in (10, 5, 0))


@dataclass(frozen=True)
class LinkHeader:
    """The block-1 fields of a wireless telegram (EN 13757-4; PROTOCOL.md §5.2).

    Attributes
    ----------
    l:
        The L-field as received (format B: includes the CRC bytes). 0 when building.
    c:
        C-field, e.g. :data:`SND_NR` 0x44.
    manufacturer:
        Three letters (M-field, 2 bytes LE on air), e.g. ``"KAM"``.
    id:
        0..99_999_999, the meter number (A-field ID, 4 BCD bytes LSB first); ``None`` when
        a parsed ID is not BCD (then :attr:`id_text` is its hex form and re-encoding uses the
        received bytes).
    version:
        0..255 (A-field version).
    device_type:
        0..255 (A-field device type / medium, PROTOCOL.md §4.6).
    """

    l: int  # noqa: E741 - the standard's name for the length field
    c: int
    manufacturer: str
    id: int | None
    version: int
    device_type: int
    #: The M-field as received, when parsed: decoders show any code (``@@@``, ``[``, bit 15
    #: set) as letters, which do not all pack back, so re-encoding uses the received bytes.
    m_field: int | None = field(default=None, compare=False, repr=False)
    #: The 4 A-field ID bytes as received (LSB first), kept for IDs that are not BCD.
    id_field: bytes | None = field(default=None, compare=False, repr=False)

    @property
    def id_text(self) -> str:
        """The ID as decoders print it: 8 digits, hex digits (upper case, as the
        wired header shows it) for a non-BCD ID."""
        if self.id is None and self.id_field is not None:
            return self.id_field[::-1].hex().upper()
        return f"{self.id:08d}"

    @property
    def address_key(self) -> tuple[int, str, int, int]:
        """The whole address (M-field, ID, version, device type): what tells meters apart."""
        return (self._m_field(), self.id_text, self.version, self.device_type)

    def _id_bytes(self) -> bytes:
        if self.id is None and self.id_field is not None and len(self.id_field) == 4:
            return bytes(self.id_field)
        if not isinstance(self.id, int) or not 0 <= self.id <= 99_999_999:
            raise FrameError(f"ID must be 0..99999999, got {self.id!r}")
        return bytes.fromhex(f"{self.id:08d}")[::-1]

    def _m_field(self) -> int:
        if self.m_field is not None and _manufacturer_letters(self.m_field) == self.manufacturer:
            return self.m_field
        return _manufacturer_code(self.manufacturer)

    def to_bytes(self) -> bytes:
        """The 9 bytes ``C M(2) A(6)`` (without L). Raises :class:`FrameError` on bad fields."""
        ident = self._id_bytes()
        for name in ("c", "version", "device_type"):
            v = getattr(self, name)
            if not isinstance(v, int) or not 0 <= v <= 255:
                raise FrameError(f"{name} must be 0..255, got {v!r}")
        return (
            bytes([self.c])
            + self._m_field().to_bytes(2, "little")
            + ident
            + bytes([self.version, self.device_type])
        )

    @classmethod
    def from_payload(cls, payload: bytes, l_field: int = 0, offset: int = 1) -> LinkHeader:
        """Parse ``C M A`` from the start of ``payload``; ``offset`` = where C sits in the input.

        Raises :class:`FrameError` if fewer than 9 bytes; a non-BCD ID gives ``id`` None.
        """
        if len(payload) < DLL_HEADER_LEN:
            raise FrameError(
                f"data link header needs {DLL_HEADER_LEN} bytes after L, got {len(payload)}",
                offset + len(payload),
            )
        man = int.from_bytes(payload[1:3], "little")
        return cls(
            l=l_field,
            c=payload[0],
            manufacturer=_manufacturer_letters(man),
            id=_bcd_id(payload[3:7]),
            version=payload[7],
            device_type=payload[8],
            m_field=man,
            id_field=bytes(payload[3:7]),
        )

    @property
    def address_bytes(self) -> bytes:
        """M(2) + A(6) as on air: the 8 bytes used in the mode-5 IV and the ELL counter."""
        return self.to_bytes()[1:9]

    @property
    def c_name(self) -> str:
        """The C-field's name (``"SND_NR"``) or ``"C=xx"``."""
        return C_FIELD_NAMES.get(self.c, f"C={self.c:02X}")


# --- block CRC placement ---------------------------------------------------------------


def on_air_length(payload_len: int, fmt: str = "A") -> int:
    """Bytes on air (L + payload + CRCs) for a payload (everything after L, no CRCs) of
    ``payload_len`` bytes. Format A: L=0x0A -> 13, 0x1A -> 31, 0x6E -> 127 (PROTOCOL.md §5.2).

    Raises :class:`FrameError` for an unknown format or a payload that does not fit L.
    """
    _check_fmt(fmt)
    if not DLL_HEADER_LEN <= payload_len <= MAX_PAYLOAD[fmt]:
        raise FrameError(
            f"format {fmt} payload must be {DLL_HEADER_LEN}..{MAX_PAYLOAD[fmt]} bytes, "
            f"got {payload_len}"
        )
    if fmt == "A":
        return 1 + payload_len + 2 * (1 + -(-(payload_len - DLL_HEADER_LEN) // 16))
    return 1 + payload_len + (2 if payload_len <= 125 else 4)


def _check_fmt(fmt: str) -> None:
    if fmt not in FORMATS:
        raise FrameError(f"frame format must be 'A' or 'B', got {fmt!r}")


def add_crcs(frame: bytes, fmt: str = "A") -> bytes:
    """Insert the block CRCs into ``frame`` = L + payload (L = len(payload), as in format A).

    Returns the on-air bytes; for format B the L-field is rewritten to include the CRCs.
    Raises :class:`FrameError` if L does not match the length or the payload does not fit.
    """
    frame = bytes(frame)
    if not frame or frame[0] != len(frame) - 1:
        raise FrameError(f"L-field {frame[:1].hex() or 'missing'} != {len(frame) - 1} bytes", 0)
    return encode_frame(frame[1:], fmt)


def encode_frame(payload: bytes, fmt: str = "A") -> bytes:
    """On-air bytes (L + blocks with CRCs) for ``payload`` = ``C M A CI ...`` without CRCs.

    Raises :class:`FrameError` for an unknown format or a payload of the wrong size
    (9..255 bytes in format A, 9..251 in format B).
    """
    payload = bytes(payload)
    total = on_air_length(len(payload), fmt)
    out = bytearray()
    if fmt == "A":
        block = bytes([len(payload)]) + payload[:DLL_HEADER_LEN]
        out += block + crc16_en13757(block).to_bytes(2, "big")
        for i in range(DLL_HEADER_LEN, len(payload), 16):
            block = payload[i : i + 16]
            out += block + crc16_en13757(block).to_bytes(2, "big")
    else:
        head = bytes([total - 1]) + payload[:125]
        out += head + crc16_en13757(head).to_bytes(2, "big")
        if len(payload) > 125:
            block = payload[125:]
            out += block + crc16_en13757(block).to_bytes(2, "big")
    assert len(out) == total
    return bytes(out)


def _strip_a(raw: bytes, base: int) -> bytes:
    # Block 1 = L + 9 bytes, then 16-byte blocks; the last one carries the rest.
    sizes = [1 + DLL_HEADER_LEN]
    rest = raw[0] - DLL_HEADER_LEN
    while rest > 0:
        sizes.append(min(16, rest))
        rest -= 16
    payload = bytearray()
    pos = 0
    for size in sizes:
        block = raw[pos : pos + size]
        crc_at = pos + size
        got = int.from_bytes(raw[crc_at : crc_at + 2], "big")
        want = crc16_en13757(block)
        if got != want:
            raise CRCError(f"format A block CRC {got:04X} != computed {want:04X}", base + crc_at)
        payload += block
        pos = crc_at + 2
    return bytes(payload[1:])


def strip_crcs(raw: bytes, fmt: str = "A", *, offset: int = 0) -> bytes:
    """Check and remove the block CRCs of the on-air frame ``raw`` (exactly one frame).

    Returns L + payload with L rewritten to ``len(payload)`` (the format-A meaning, as
    wmbusmeters normalises). ``offset`` is added to error offsets.
    Raises :class:`CRCError` on a CRC mismatch, :class:`FrameError` on a length that does not
    match the L-field.
    """
    raw = bytes(raw)
    _check_fmt(fmt)
    if not raw:
        raise FrameError("empty frame", offset)
    want = expected_length(raw[0], fmt)
    if want is None or len(raw) != want:
        raise FrameError(
            f"format {fmt} frame with L=0x{raw[0]:02X} must be "
            f"{want if want is not None else 'longer'} bytes on air, got {len(raw)}",
            offset,
        )
    if fmt == "A":
        payload = _strip_a(raw, offset)
    else:
        first_end = min(126, len(raw) - 2)
        head = raw[:first_end]
        got = int.from_bytes(raw[first_end : first_end + 2], "big")
        if got != crc16_en13757(head):
            raise CRCError(
                f"format B CRC {got:04X} != computed {crc16_en13757(head):04X}",
                offset + first_end,
            )
        payload = head[1:]
        if len(raw) > 128:
            block = raw[128:-2]
            got = int.from_bytes(raw[-2:], "big")
            if got != crc16_en13757(block):
                raise CRCError(
                    f"format B block 3 CRC {got:04X} != computed {crc16_en13757(block):04X}",
                    offset + len(raw) - 2,
                )
            payload += block
    return bytes([len(payload)]) + payload


def expected_length(l_field: int, fmt: str) -> int | None:
    """On-air length implied by an L-field (with CRCs), or ``None`` if L is impossible."""
    _check_fmt(fmt)
    if fmt == "A":
        if l_field < DLL_HEADER_LEN:
            return None
        return on_air_length(l_field, "A")
    # Format B: L counts the CRCs; 1 CRC up to 128 bytes in all, else 2.
    if l_field < DLL_HEADER_LEN + 2 or l_field in (128, 129):
        return None
    return l_field + 1


def decode_frame(
    raw: bytes, fmt: str | None = None, *, crc: bool | None = None
) -> tuple[str, bytes]:
    """Check one received frame and return ``(format, payload)`` without L and CRCs.

    ``fmt`` ``"A"``/``"B"`` or ``None`` to detect; ``crc`` ``True`` (CRCs present), ``False``
    (already stripped, as rtl-wmbus/wmbusmeters print telegrams: L = payload length) or
    ``None`` to detect. Detection order: format A with CRCs, format B with CRCs, no CRCs. For a
    frame without CRCs the format cannot be seen; it is reported as ``fmt`` or ``"A"``.

    Raises :class:`CRCError` when the length says "CRCs present" but one does not match (and no
    other reading fits), :class:`FrameError` when the length fits no reading of the L-field.
    Pass explicit ``fmt`` and ``crc=True`` in receivers: detection accepts a format-B frame
    with a broken CRC as a CRC-less one when its length also fits that reading.
    """
    raw = bytes(raw)
    if fmt is not None:
        _check_fmt(fmt)
    if len(raw) < 1 + DLL_HEADER_LEN:
        raise FrameError(f"a frame needs at least {1 + DLL_HEADER_LEN} bytes, got {len(raw)}", 0)
    l_field = raw[0]
    tried: list[str] = []
    first_crc_error: CRCError | None = None
    if crc in (None, True):
        for f in ("A", "B") if fmt is None else (fmt,):
            n = expected_length(l_field, f)
            if n is None or n != len(raw):
                tried.append(f"format {f} with CRCs: {n if n is not None else 'impossible L'}")
                continue
            try:
                return f, strip_crcs(raw, f)[1:]
            except CRCError as exc:
                first_crc_error = first_crc_error or exc
                tried.append(f"format {f} with CRCs: CRC mismatch")
    if crc in (None, False):
        if len(raw) == l_field + 1:
            return (fmt or "A"), raw[1:]
        tried.append(f"without CRCs: {l_field + 1}")
    if first_crc_error is not None and crc is not False:
        raise first_crc_error
    raise FrameError(
        f"L-field 0x{l_field:02X} does not fit {len(raw)} bytes (expected "
        + "; ".join(tried)
        + ")",
        0,
    )
