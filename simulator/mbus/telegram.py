"""EN 13757-3 telegrams: CI 72 (long header), 7A (short header), 78 (no header), 51 (master
data), 73 (legacy fixed data), their mode 2 forms 76, 55 and 77, and CI 70 application errors
(PROTOCOL.md §4.1-4.3).

Mode 2 (CI bit 2 set: 76, 55, 77) sends multi-byte data most significant byte first
(m-bus.com §6.1: "the byte sequence in multibyte data structures"). We apply it to every
multi-byte field: each record's data field (integers, BCD, real, dates, LVAR data) and the
header's ID, manufacturer and signature; the CI 77 ID and counters. No public decoder we could
read implements mode 2 (libmbus, pymeterbus, jMBus, wmbusmeters only name the CI values).

:func:`decode_telegram` takes raw frame bytes (a ``68 .. 16`` long frame, or the bare body
``C A CI data`` as in Elvaco Stream mode reports) or a parsed frame; :func:`encode_telegram`
builds the :class:`~simulator.mbus.frames.LongFrame` back; :func:`telegram_json` gives the
``meterbench decode --json`` shape.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any

from simulator.mbus.address import (
    SecondaryAddress,
    manufacturer_letters,
)
from simulator.mbus.errors import AddressError, ApplicationError, FrameError, RecordError
from simulator.mbus.frames import (
    START_LONG,
    ControlFrame,
    LongFrame,
    parse_body,
    parse_frame,
)
from simulator.mbus.records import DataRecord, decode_block, encode_records

CI_APPLICATION_ERROR = 0x70
CI_LONG_HEADER = 0x72
CI_FIXED = 0x73
CI_NO_HEADER = 0x78
CI_SHORT_HEADER = 0x7A
CI_DATA_SEND = 0x51
#: Mode 2 (most significant byte first) forms: CI bit 2 set (PROTOCOL.md §4.1).
CI_LONG_HEADER_MSB = 0x76
CI_FIXED_MSB = 0x77
CI_DATA_SEND_MSB = 0x55
MODE_2 = frozenset({CI_LONG_HEADER_MSB, CI_FIXED_MSB, CI_DATA_SEND_MSB})


#: Parsed secondary addresses by their 8 wire bytes: a bus reads the same meters again and
#: again, and the address is immutable. Bounded so junk input cannot grow it.
_ADDRESSES: dict[bytes, SecondaryAddress | None] = {}
_UNSEEN = object()


def _swap_address(raw: bytes) -> bytes:
    """Mode 1 <-> mode 2 order of the 8 address bytes (ID and manufacturer reversed)."""
    return raw[3::-1] + raw[5:3:-1] + raw[6:8]


#: Device type / medium byte -> name (PROTOCOL.md §4.6).
MEDIUM_NAMES: dict[int, str] = {
    0x00: "other",
    0x01: "oil",
    0x02: "electricity",
    0x03: "gas",
    0x04: "heat (outlet)",
    0x05: "steam",
    0x06: "warm water (30-90 °C)",
    0x07: "water",
    0x08: "heat cost allocator",
    0x09: "compressed air",
    0x0A: "cooling (outlet)",
    0x0B: "cooling (inlet)",
    0x0C: "heat (inlet)",
    0x0D: "heat / cooling",
    0x0E: "bus / system component",
    0x0F: "unknown",
    0x10: "irrigation water",
    0x11: "water data logger",
    0x12: "gas data logger",
    0x13: "gas converter",
    0x14: "calorific value",
    0x15: "hot water (>= 90 °C)",
    0x16: "cold water",
    0x17: "dual water",
    0x18: "pressure",
    0x19: "A/D converter",
    0x1A: "smoke detector",
    0x1B: "room sensor",
    0x1C: "gas detector",
    0x20: "breaker (electricity)",
    0x21: "valve (gas or water)",
    0x25: "customer unit (display)",
    0x28: "waste water",
    0x29: "garbage",
    0x2A: "carbon dioxide",
    0x30: "service tool",
    0x31: "gateway",
    0x32: "unidirectional repeater",
    0x33: "bidirectional repeater",
    0x36: "radio converter (system side)",
    0x37: "radio converter (meter side)",
    0xFF: "placeholder",
}

#: Status byte bits (PROTOCOL.md §4.3).
STATUS_BITS = {0x04: "power_low", 0x08: "permanent_error", 0x10: "temporary_error"}
STATUS_APPLICATION = {0: None, 1: "application_busy", 2: "application_error", 3: "alarm"}

#: Legacy fixed data (CI 73) unit codes (libmbus comment table, `mbus_data_fixed_unit`):
#: code -> (quantity, unit, decimal exponent).
_FIXED_UNITS: dict[int, tuple[str, str, int]] = {}
for _i in range(9):  # 02..0A: Wh .. 100 MWh
    _FIXED_UNITS[0x02 + _i] = ("energy", "Wh", _i)
for _i in range(9):  # 0B..13: kJ .. 100 GJ
    _FIXED_UNITS[0x0B + _i] = ("energy", "J", 3 + _i)
for _i in range(9):  # 14..1C: W .. 100 MW
    _FIXED_UNITS[0x14 + _i] = ("power", "W", _i)
for _i in range(9):  # 1D..25: kJ/h .. 100 GJ/h
    _FIXED_UNITS[0x1D + _i] = ("power", "J/h", 3 + _i)
for _i in range(9):  # 26..2E: ml .. 100 m3
    _FIXED_UNITS[0x26 + _i] = ("volume", "m3", -6 + _i)
for _i in range(9):  # 2F..37: ml/h .. 100 m3/h
    _FIXED_UNITS[0x2F + _i] = ("volume_flow", "m3/h", -6 + _i)
_FIXED_UNITS[0x38] = ("temperature", "°C", -3)
_FIXED_UNITS[0x39] = ("hca_units", "", 0)
_FIXED_UNITS[0x3F] = ("dimensionless", "", 0)


@dataclass
class Header:
    """Transport-layer header fields.

    ``address`` is the secondary address of a CI 72 long header, or None (short header, no
    header, or an ID that is not BCD / a manufacturer that is not three letters; the 8 bytes
    as sent are always in ``raw_address`` for CI 72). ``signature`` is the 16-bit
    signature/configuration word (LE on the wire); 0 when absent.
    """

    ci: int
    access_no: int = 0
    status: int = 0
    signature: int = 0
    address: SecondaryAddress | None = None
    raw_address: bytes | None = None

    @property
    def status_flags(self) -> list[str]:
        """Names of the set status bits (PROTOCOL.md §4.3), e.g. ``["power_low"]``."""
        flags = [name for bit, name in STATUS_BITS.items() if self.status & bit]
        app = STATUS_APPLICATION[self.status & 0x03]
        return (
            ([app] if app else [])
            + flags
            + ([f"manufacturer_bits_{self.status >> 5}"] if self.status & 0xE0 else [])
        )


@dataclass
class FixedData:
    """Legacy fixed-format data (CI 73, 16 bytes): ID, access, status, 2 counters.

    ``raw`` is as sent; ``msb_first`` (CI 77) means the ID and the counters are reversed on the
    wire; :attr:`lsb_raw` is the mode 1 order the properties read.
    """

    raw: bytes
    msb_first: bool = False

    @property
    def lsb_raw(self) -> bytes:
        r = self.raw
        if not self.msb_first:
            return r
        return r[3::-1] + r[4:8] + r[11:7:-1] + r[15:11:-1]

    @property
    def id_text(self) -> str:
        return self.lsb_raw[3::-1].hex().upper()

    @property
    def medium(self) -> int:
        return (self.raw[6] >> 6) | ((self.raw[7] >> 6) << 2)

    @property
    def bcd(self) -> bool:
        return not self.raw[5] & 0x80  # status bit 7: 0 = BCD counters, 1 = binary


@dataclass
class Telegram:
    """An application-layer telegram and the link fields of the frame it travels in."""

    header: Header
    records: list[DataRecord]
    more_follow: bool = False
    manufacturer_data: bytes = b""
    c: int = 0x08
    a: int = 0
    fixed: FixedData | None = field(default=None)
    #: a 0F DIF closed the records although no manufacturer data follow
    end_marker: bool = False
    #: 2F idle fillers after the last record
    trailing_fillers: int = 0


def _header_json(h: Header) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if h.raw_address is not None:
        raw = h.raw_address
        code = int.from_bytes(raw[4:6], "little")
        out.update(
            id=raw[3::-1].hex().upper(),
            manufacturer=manufacturer_letters(code),
            version=raw[6],
            medium=MEDIUM_NAMES.get(raw[7], f"reserved (0x{raw[7]:02X})"),
            medium_code=raw[7],
        )
    out.update(access_number=h.access_no, status=h.status, signature=h.signature, ci=f"{h.ci:02X}")
    return out


def _json_value(v: Any) -> Any:
    if isinstance(v, datetime | date | time):
        return v.isoformat()
    if isinstance(v, bytes):
        return v.hex().upper()
    if isinstance(v, float) and v != v:  # NaN is not JSON
        return None
    return v


def record_json(r: DataRecord) -> dict[str, Any]:
    """One record in the ``decode --json`` shape (coding bytes as upper-case hex)."""
    out: dict[str, Any] = {
        "function": r.function,
        "storage": r.storage,
        "tariff": r.tariff,
        "subunit": r.subunit,
        "quantity": r.quantity,
        "unit": r.unit,
        "value": _json_value(r.value),
        "dif": f"{r.dif:02X}",
        "vif": f"{r.vif:02X}",
    }
    if r.dife:
        out["dife"] = bytes(r.dife).hex().upper()
    if r.vife:
        out["vife"] = bytes(r.vife).hex().upper()
    if r.vife_text:
        out["vife_text"] = list(r.vife_text)
    if r.plain_unit is not None:
        out["plain_unit"] = r.plain_unit
    if r.invalid:
        out["invalid"] = r.invalid
        out["data"] = r.data.hex().upper()
    return out


def telegram_json(t: Telegram) -> dict[str, Any]:
    """The ``meterbench decode --json`` shape (see docs/mbus-codec.md)."""
    out: dict[str, Any] = {
        "header": _header_json(t.header),
        "records": [record_json(r) for r in t.records],
        "more_follow": t.more_follow,
    }
    if t.fixed is not None:
        out["header"].update(id=t.fixed.id_text, medium_code=t.fixed.medium)
    if t.manufacturer_data:
        out["manufacturer_data"] = t.manufacturer_data.hex().upper()
    return out


def _fixed_records(fx: FixedData) -> list[DataRecord]:
    from simulator.mbus.datatypes import decode_bcd

    recs = []
    lsb = fx.lsb_raw
    first = _FIXED_UNITS.get(fx.raw[6] & 0x3F, ("reserved", "", 0))
    for i, (type_byte, raw) in enumerate(((lsb[6], lsb[8:12]), (lsb[7], lsb[12:16]))):
        historic = i == 1 and type_byte & 0x3F == 0x3E  # "same unit as counter 1, but historic"
        quantity, unit, exp = (
            first if historic else _FIXED_UNITS.get(type_byte & 0x3F, ("reserved", "", 0))
        )
        value: int | float | None
        invalid = None
        if fx.bcd:
            try:
                value = decode_bcd(raw, 15 + 8 + 4 * i)
            except RecordError as exc:
                value, invalid = None, f"not BCD: {exc.reason}"
        else:
            value = int.from_bytes(raw, "little")
        if value is not None:
            value = value * 10**exp if exp >= 0 else value / 10**-exp
        recs.append(
            DataRecord(
                dif=0x0C if fx.bcd else 0x04,
                dife=(),
                vif=type_byte,
                vife=(),
                data=raw,
                function="instantaneous",
                storage=1 if historic or fx.raw[5] & 0x40 else 0,
                tariff=0,
                subunit=0,
                quantity=f"counter_{i + 1}_{quantity}",
                unit=unit,
                value=value,
                invalid=invalid,
            )
        )
    return recs


def decode_telegram(frame: LongFrame | ControlFrame | bytes) -> Telegram:
    """Decode the application layer of a long frame.

    ``frame``: a parsed :class:`LongFrame`/:class:`ControlFrame`, raw frame bytes
    (``68 L L 68 ...``), or the bare body ``C A CI data``. Error offsets count from the
    frame's first byte (the body form counts as if the 4 header bytes were there).

    CI 72/76 (long header), 7A, 78, 51/55 and 73/77 are decoded; 76/55/77 as mode 2.
    Raises :class:`ApplicationError` for CI 70 (code + meaning), :class:`FrameError` for a bad
    frame, :class:`RecordError` for a short header, an unsupported CI-field or a bad record.
    """
    if isinstance(frame, bytes | bytearray | memoryview):
        buf = bytes(frame)
        frame = parse_frame(buf) if buf[:1] == bytes([START_LONG]) else parse_body(buf)
    if not isinstance(frame, LongFrame | ControlFrame):
        raise FrameError(f"{type(frame).__name__} carries no application data")
    data, base, ci = frame.data, 7, frame.ci
    if ci == CI_APPLICATION_ERROR:
        if not data:
            raise ApplicationError(0, base, missing=True)
        raise ApplicationError(data[0], base)
    msb_first = ci in MODE_2
    order = "big" if msb_first else "little"
    if ci == CI_LONG_HEADER or ci == CI_LONG_HEADER_MSB:
        if len(data) < 12:
            raise RecordError(
                f"long header (CI {ci:02X}) needs 12 bytes, got {len(data)}", base + len(data)
            )
        raw = _swap_address(data[:8]) if msb_first else data[:8]
        address = _ADDRESSES.get(raw, _UNSEEN)
        if address is _UNSEEN:
            try:
                address = SecondaryAddress.from_bytes(raw, base)
            except AddressError:
                address = None  # odd meters (non-BCD ID, manufacturer 0): raw_address keeps it
            if len(_ADDRESSES) < 4096:
                _ADDRESSES[raw] = address
        header = Header(ci, data[8], data[9], int.from_bytes(data[10:12], order), address, raw)
        start = 12
    elif ci == CI_SHORT_HEADER:
        if len(data) < 4:
            raise RecordError(
                f"short header (CI 7A) needs 4 bytes, got {len(data)}", base + len(data)
            )
        header = Header(ci, data[0], data[1], int.from_bytes(data[2:4], "little"))
        start = 4
    elif ci in (CI_NO_HEADER, CI_DATA_SEND, CI_DATA_SEND_MSB):
        header, start = Header(ci), 0
    elif ci == CI_FIXED or ci == CI_FIXED_MSB:
        if len(data) != 16:
            raise RecordError(f"fixed data (CI {ci:02X}) is 16 bytes, got {len(data)}", base)
        fx = FixedData(data, msb_first)
        header = Header(ci, data[4], data[5], 0)
        return Telegram(header, _fixed_records(fx), c=frame.c, a=frame.a, fixed=fx)
    else:
        raise RecordError(f"unsupported CI-field {ci:02X}", 6)
    block = decode_block(data[start:], base + start, msb_first=msb_first)
    return Telegram(
        header,
        block.records,
        block.more_follow,
        block.manufacturer_data,
        frame.c,
        frame.a,
        end_marker=block.end_marker and not block.more_follow,
        trailing_fillers=block.trailing_fillers,
    )


#: Telegrams decoded for a frame's trace summary, held until the master takes them: a reply
#: is decoded once, not twice (issue 15). Bounded: a summary nobody takes is dropped.
_HELD: dict[LongFrame | ControlFrame, Telegram] = {}
_HELD_MAX = 16


def decode_and_hold(frame: LongFrame | ControlFrame) -> Telegram:
    """:func:`decode_telegram` of a parsed frame, also held for one :func:`take_held` of an
    equal frame (the master reading the reply the trace just summarised). Same errors."""
    t = decode_telegram(frame)
    if len(_HELD) >= _HELD_MAX:
        _HELD.clear()  # one C call: safe when the serial bridge describes from another thread
    _HELD[frame] = t
    return t


def take_held(frame: LongFrame | ControlFrame) -> Telegram:
    """The telegram :func:`decode_and_hold` decoded from an equal frame (handed out once: the
    reader owns it), else :func:`decode_telegram` (same result and errors either way)."""
    t = _HELD.pop(frame, None)
    return decode_telegram(frame) if t is None else t


def encode_telegram(t: Telegram) -> LongFrame:
    """Build the long frame for ``t`` (round-trips with :func:`decode_telegram`).

    The records' data bytes are sent as they are: for a mode 2 CI (76/55) build them with
    ``DataRecord.from_value(..., msb_first=True)`` (decoded mode 2 records already are).
    Raises :class:`RecordError` for an unsupported CI or missing address, :class:`FrameError`
    if the user data exceed 252 bytes.
    """
    h = t.header
    order = "big" if h.ci in MODE_2 else "little"
    if h.ci == CI_LONG_HEADER or h.ci == CI_LONG_HEADER_MSB:
        if h.address is not None:
            addr = h.address.to_bytes()
        elif h.raw_address is not None and len(h.raw_address) == 8:
            addr = bytes(h.raw_address)
        else:
            raise RecordError(f"a CI {h.ci:02X} telegram needs a secondary address")
        head = (
            (_swap_address(addr) if h.ci == CI_LONG_HEADER_MSB else addr)
            + bytes([h.access_no & 0xFF, h.status & 0xFF])
            + (h.signature & 0xFFFF).to_bytes(2, order)
        )
    elif h.ci == CI_SHORT_HEADER:
        head = bytes([h.access_no & 0xFF, h.status & 0xFF]) + (h.signature & 0xFFFF).to_bytes(
            2, "little"
        )
    elif h.ci in (CI_NO_HEADER, CI_DATA_SEND, CI_DATA_SEND_MSB):
        head = b""
    elif h.ci in (CI_FIXED, CI_FIXED_MSB) and t.fixed is not None:
        return LongFrame(t.c, t.a, h.ci, t.fixed.raw)
    else:
        raise RecordError(f"cannot encode CI-field {h.ci:02X}")
    body = encode_records(
        t.records,
        more_follow=t.more_follow,
        manufacturer_data=t.manufacturer_data,
        end_marker=t.end_marker,
        trailing_fillers=t.trailing_fillers,
    )
    return LongFrame(t.c, t.a, h.ci, head + body)
