"""SMS PDUs (3GPP TS 23.040 §9.2): SMS-SUBMIT out of the modem, SMS-DELIVER into it.

The modem driver uses PDU mode (``AT+CMGF=0``) because text mode cannot send the user data
header (UDH) that concatenated SMS need. Only the GSM 7-bit default alphabet (DCS 0x00) is
encoded by the driver; SMS-DELIVER may also carry UCS2 (DCS 0x08: UTF-16BE, 70 characters a
part, 67 with a header), which a phone uses as soon as one character is outside GSM 7-bit. The
concatenation UDH is IEI 0x00 (8-bit reference): ``05 00 03 ref total seq``.

PDU hex, as exchanged with the modem, starts with the SMSC address; the driver sends ``00``
("use the SMSC stored in the SIM"). ``AT+CMGS=<n>`` takes the TPDU length ``n`` in octets,
SMSC field excluded (3GPP TS 27.005 §3.5.1).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from simulator.core.text import is_decimal
from simulator.gateways.cme2100.sms import from_septets, split_septets, to_septets

MTI_DELIVER = 0x00
MTI_SUBMIT = 0x01
UDHI = 0x40
IEI_CONCAT_8BIT = 0x00
DCS_GSM7, DCS_UCS2 = 0x00, 0x08
UCS2_SINGLE, UCS2_PART = 70, 67  # characters (UTF-16 code units) per SMS, TS 23.040 §9.2.3.16


class PduError(ValueError):
    """A PDU that cannot be decoded: ``offset`` is the octet where the problem is."""

    def __init__(self, message: str, offset: int | None = None) -> None:
        self.offset = offset
        super().__init__(f"offset {offset}: {message}" if offset is not None else message)


@dataclass(frozen=True)
class Concat:
    """Concatenation information of one part (TS 23.040 §9.2.3.24.1)."""

    reference: int  # 0..255, same for every part of one message
    total: int  # 1..255
    sequence: int  # 1..total


@dataclass(frozen=True)
class SmsPdu:
    """A decoded SMS-SUBMIT or SMS-DELIVER."""

    kind: str  # "submit" | "deliver"
    number: str  # TP-DA (submit) or TP-OA (deliver); "+" prefix for international numbers
    text: str
    concat: Concat | None = None
    timestamp: datetime | None = None  # TP-SCTS of a deliver
    coding: str = "gsm7"  # "gsm7" (DCS 00) or "ucs2" (DCS 08)


# -- septet packing -------------------------------------------------------------------------
def pack_septets(septets: list[int], fill_bits: int = 0) -> bytes:
    """Pack 7-bit values LSB first, after ``fill_bits`` zero bits (TS 23.038 §6.1.2.1.1)."""
    acc = 0
    nbits = fill_bits
    for s in septets:
        acc |= (s & 0x7F) << nbits
        nbits += 7
    return acc.to_bytes((nbits + 7) // 8, "little") if nbits else b""


def unpack_septets(data: bytes, count: int, fill_bits: int = 0) -> list[int]:
    """The first ``count`` septets after ``fill_bits`` bits of ``data``."""
    if (fill_bits + 7 * count + 7) // 8 > len(data):
        raise PduError(f"user data holds fewer than {count} septets")
    acc = int.from_bytes(data, "little") >> fill_bits
    return [(acc >> (7 * i)) & 0x7F for i in range(count)]


# -- addresses ------------------------------------------------------------------------------
def encode_address(number: str) -> bytes:
    """TP address field: digit count, type of address, swapped BCD digits (F-padded)."""
    digits = number[1:] if number.startswith("+") else number
    if not is_decimal(digits) or not 1 <= len(digits) <= 20:
        raise ValueError(f"phone number {number!r}: 1..20 digits, optional leading '+'")
    toa = 0x91 if number.startswith("+") else 0x81
    return bytes([len(digits), toa]) + _semi_octets(digits)


def _semi_octets(digits: str) -> bytes:
    if len(digits) % 2:
        digits += "F"
    return bytes.fromhex("".join(digits[i + 1] + digits[i] for i in range(0, len(digits), 2)))


def _read_semi_octets(data: bytes) -> str:
    return "".join(f"{b & 0x0F:X}{b >> 4:X}" for b in data).rstrip("F")


# -- SMS-SUBMIT -----------------------------------------------------------------------------
def encode_submit(number: str, text: str, *, reference: int = 0) -> list[str]:
    """The SMS-SUBMIT PDUs (hex, SMSC field ``00`` first) that send ``text`` to ``number``.

    One PDU up to 160 septets, else one per part with a concatenation UDH carrying
    ``reference`` (0..255). Raises :class:`~simulator.gateways.cme2100.sms.SmsEncodingError`
    for non-GSM-7 text and ``ValueError`` for a bad number.
    """
    parts = split_septets(to_septets(text))
    da = encode_address(number)
    out = []
    for seq, septets in enumerate(parts, start=1):
        udh = b""
        if len(parts) > 1:
            udh = bytes([5, IEI_CONCAT_8BIT, 3, reference & 0xFF, len(parts), seq])
        first = MTI_SUBMIT | (UDHI if udh else 0)
        tpdu = bytes([first, 0x00]) + da + bytes([0x00, 0x00]) + _user_data(udh, septets)
        out.append(("00" + tpdu.hex()).upper())
    return out


def _user_data(udh: bytes, septets: list[int]) -> bytes:
    if not udh:
        return bytes([len(septets)]) + pack_septets(septets)
    fill = (7 - (len(udh) * 8) % 7) % 7
    header_septets = (len(udh) * 8 + fill) // 7
    return bytes([header_septets + len(septets)]) + udh + pack_septets(septets, fill)


def tpdu_length(pdu_hex: str) -> int:
    """Octets after the SMSC field: the ``<length>`` argument of ``AT+CMGS``."""
    raw = bytes.fromhex(pdu_hex)
    return len(raw) - 1 - raw[0]


# -- SMS-DELIVER ----------------------------------------------------------------------------
def encode_deliver(
    number: str, text: str, *, timestamp: datetime, reference: int = 0, ucs2: bool = False
) -> list[str]:
    """SMS-DELIVER PDUs (hex, empty SMSC field) as a network hands ``text`` from ``number``.

    Used by the simulated modem; ``timestamp`` is the service-centre time stamp (aware).
    ``ucs2``: send as a phone does when the text is not GSM 7-bit (DCS 0x08, UTF-16BE).
    """
    parts: list = _ucs2_parts(text) if ucs2 else split_septets(to_septets(text))
    oa = encode_address(number)
    scts = _encode_scts(timestamp)
    dcs = DCS_UCS2 if ucs2 else DCS_GSM7
    out = []
    for seq, part in enumerate(parts, start=1):
        udh = b""
        if len(parts) > 1:
            udh = bytes([5, IEI_CONCAT_8BIT, 3, reference & 0xFF, len(parts), seq])
        first = MTI_DELIVER | 0x04 | (UDHI if udh else 0)  # 0x04: TP-MMS, no more messages
        ud = _ucs2_user_data(udh, part) if ucs2 else _user_data(udh, part)
        tpdu = bytes([first]) + oa + bytes([0x00, dcs]) + scts + ud
        out.append(("00" + tpdu.hex()).upper())
    return out


def _ucs2_parts(text: str) -> list[bytes]:
    """``text`` as UTF-16BE parts of at most 70 (one SMS) or 67 (each part) code units,
    never splitting a surrogate pair."""
    units = [ch.encode("utf-16-be") for ch in text]
    if sum(len(u) for u in units) <= 2 * UCS2_SINGLE:
        return [b"".join(units)]
    parts, cur = [], b""
    for u in units:
        if len(cur) + len(u) > 2 * UCS2_PART:
            parts.append(cur)
            cur = b""
        cur += u
    return [*parts, cur]


def _ucs2_user_data(udh: bytes, data: bytes) -> bytes:
    return bytes([len(udh) + len(data)]) + udh + data  # UDL counts octets, udh[0] is UDHL


def _encode_scts(ts: datetime) -> bytes:
    offset = ts.utcoffset() or timedelta(0)
    quarters = int(offset.total_seconds() // 900)
    digits = ts.strftime("%y%m%d%H%M%S")
    tz = _semi_octets(f"{abs(quarters):02d}")[0]
    if quarters < 0:
        tz |= 0x08
    return _semi_octets(digits) + bytes([tz])


def _decode_scts(data: bytes, offset: int) -> datetime:
    """TP-SCTS (TS 23.040 §9.2.3.11): 6 swapped-BCD octets YYMMDDhhmmss, then the zone in
    quarter hours. Raises :class:`PduError` (``offset`` = the octet) for a non-decimal
    semi-octet or a date that does not exist."""
    if len(data) < 7:
        raise IndexError  # truncated: decode_pdu reports it
    for k, b in enumerate(data[:7]):
        low = b & 0x07 if k == 6 else b & 0x0F  # the zone's bit 3 is its sign
        if low > 9 or b >> 4 > 9:
            raise PduError(f"service-centre time stamp octet {b:02X} is not decimal", offset + k)
    d = _read_semi_octets(data[:6])
    tz = data[6]
    quarters = (tz & 0x07) * 10 + (tz >> 4)
    sign = -1 if tz & 0x08 else 1
    if quarters > 4 * 18:  # datetime zones stop short of 24 h; real ones within 18 h
        raise PduError(f"time zone {quarters} quarter hours is beyond 18 h", offset + 6)
    zone = timezone(timedelta(minutes=15 * quarters * sign))
    try:
        return datetime.strptime(d, "%y%m%d%H%M%S").replace(tzinfo=zone)
    except ValueError:
        raise PduError(f"service-centre time stamp {d} is not a date", offset) from None


def decode_pdu(pdu_hex: str) -> SmsPdu:
    """Decode an SMS-DELIVER or SMS-SUBMIT PDU given as hex with its SMSC field.

    GSM-7 (DCS 0x00) and UCS2 (DCS 0x08, ``coding="ucs2"``). Raises :class:`PduError` with
    the octet offset of the problem.
    """
    try:
        raw = bytes.fromhex(pdu_hex.strip())
    except ValueError:
        raise PduError("PDU is not hexadecimal") from None
    try:
        return _decode(raw)
    except IndexError:
        raise PduError("PDU is truncated", len(raw)) from None


def _decode(raw: bytes) -> SmsPdu:
    i = 1 + raw[0]  # skip the SMSC field
    first = raw[i]
    mti = first & 0x03
    i += 1
    if mti == MTI_SUBMIT:
        i += 1  # TP-MR
    elif mti != MTI_DELIVER:
        raise PduError(f"message type {mti} is neither SMS-DELIVER nor SMS-SUBMIT", i - 1)
    ndigits, toa = raw[i], raw[i + 1]
    nbytes = (ndigits + 1) // 2
    number = _read_semi_octets(raw[i + 2 : i + 2 + nbytes])[:ndigits]
    if toa & 0x70 == 0x10:
        number = "+" + number
    i += 2 + nbytes
    i += 1  # TP-PID
    dcs = raw[i]
    alphabet = dcs & 0x0C
    if alphabet not in (DCS_GSM7, DCS_UCS2):
        raise PduError(f"data coding scheme {dcs:#04x} is neither GSM 7-bit nor UCS2", i)
    i += 1
    timestamp = None
    if mti == MTI_DELIVER:
        timestamp = _decode_scts(raw[i : i + 7], i)
        i += 7
    elif (first >> 3) & 0x03 == 0x02:  # relative validity period, one octet
        i += 1
    elif (first >> 3) & 0x03 in (0x01, 0x03):
        i += 7
    udl = raw[i]
    ud = raw[i + 1 :]
    concat = None
    fill = header_septets = udhl = 0
    if first & UDHI:
        udhl = ud[0]
        udh = ud[1 : 1 + udhl]
        j = 0
        while j + 1 < len(udh):
            iei, length = udh[j], udh[j + 1]
            if iei == IEI_CONCAT_8BIT and length == 3:
                concat = Concat(udh[j + 2], udh[j + 3], udh[j + 4])
            j += 2 + length
        fill = (7 - ((udhl + 1) * 8) % 7) % 7
        header_septets = ((udhl + 1) * 8 + fill) // 7
        ud = ud[1 + udhl :]
    kind = "submit" if mti == MTI_SUBMIT else "deliver"
    if alphabet == DCS_UCS2:  # UDL counts octets, header included
        n = udl - (1 + udhl if first & UDHI else 0)
        body = ud[: max(n, 0)]
        if n < 0 or len(body) != n or n % 2:
            raise PduError(f"UCS2 user data of {n} octets (must be even, {len(ud)} there)", i)
        try:
            text = body.decode("utf-16-be")
        except UnicodeDecodeError as exc:
            raise PduError(f"UCS2 user data: {exc.reason}", i + 1 + exc.start) from None
        return SmsPdu(kind, number, text, concat, timestamp, "ucs2")
    if udl < header_septets:
        raise PduError(f"user data length {udl} is shorter than its header", i)
    septets = unpack_septets(ud, udl - header_septets, fill)
    return SmsPdu(kind, number, from_septets(septets), concat, timestamp)


class Reassembler:
    """Collects parts of concatenated SMS until a message is complete.

    Parts are keyed by (number, reference, total); ``add`` returns the full text when the
    last missing part arrives, else ``None``; ``add_message`` the same as an :class:`SmsPdu`
    (``concat`` None, ``coding`` ``"ucs2"`` if any part was UCS-2, the first part's time
    stamp). Single SMS come back at once.
    """

    def __init__(self) -> None:
        self._parts: dict[tuple[str, int, int], dict[int, SmsPdu]] = {}

    def add(self, sms: SmsPdu) -> str | None:
        whole = self.add_message(sms)
        return None if whole is None else whole.text

    def add_message(self, sms: SmsPdu) -> SmsPdu | None:
        if sms.concat is None or sms.concat.total <= 1:
            return sms
        key = (sms.number, sms.concat.reference, sms.concat.total)
        parts = self._parts.setdefault(key, {})
        parts[sms.concat.sequence] = sms
        if len(parts) < sms.concat.total:
            return None
        del self._parts[key]
        ordered = [parts[k] for k in sorted(parts)]
        coding = "ucs2" if any(p.coding == "ucs2" for p in ordered) else "gsm7"
        text = "".join(p.text for p in ordered)
        return SmsPdu(sms.kind, sms.number, text, None, ordered[0].timestamp, coding)

    @property
    def pending(self) -> int:
        return len(self._parts)
