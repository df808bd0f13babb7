"""CMi6140 meter-data payloads: SenML CBOR packs with M-Bus records, and the JSON messages.

* **SenML/CBOR/M-Bus** (seed 001 §7.4.2.3; RFC 8428 SenML, RFC 8949 CBOR, encoded with
  ``cbor2``): a CBOR array; the first record carries the base name (meter id, label -2), the
  base time (UNIX s, UTC, label -3) and the first readout's M-Bus data records as a byte string
  (label 8, "vd"); then the "Encoder Version field" record ``{0: "V", 2: uint16}`` whose value
  is encoder type << 8 | encoder version (0x0000 = M-Bus, version 0, the manual's example); then
  one record per further readout ``{6: time offset s, 8: M-Bus records}``. Byte layout and sizes
  as in the manual's "Example and Data Size" (page 27).
* **M-Bus** (seed 001 §7.4.2.1): the message format identifier byte, the meter's date and time
  (type F, ``04 6D``) and ID (``0C 78`` BCD8), then the format's data records (DIBs). Table 10
  lists date/time and ID for Extended; the sibling CMi6110's manual (V1.3, Table 6) leads
  Standard and Extended alike with them, as the bench does for every format. In a SenML pack
  the base name and time carry them and "vd" holds only the format's records.
* **JSON** (seed 001 §7.4.2.2, Table 13): one object per readout with keys TS, ID, E, U, V, VU,
  P, PU, F, FU, FT, TU, RT, RU, EF; the extended message adds the tariff registers T2/U2 and
  T3/U3 (Table 13 prints "U2" for the tariff-3 unit, an evident typo; the bench writes "U3")
  and the missing time MT/MU ("only included in the extended message").

The four message formats (seed 001 §7.4.1; the full pages are in the CMi6140 User's Manual
V1.2, 2022-09, pp. 20-24):

* **Standard** (Table 9, format id 66 = 0x42; LwM2M /33906/0/2 value 42 hex): energy, volume,
  power, flow, forward and return temperature, info codes.
* **Extended** (Table 10, format id 67 = 0x43): Standard plus the tariff 2 / 3 energies.
* **Pulse** (Table 12): Standard plus the module's pulse inputs In A and In B, each counting a
  volume (VIF 0x14, 0.01 m3) or an energy (VIF 0x06, kWh) as configured: In A is sub-unit 1
  (DIFE ``40``), In B sub-unit 2 (DIFE ``80 40``); the manual's examples ``84 40 14 B1EB0100``
  (1258.73 m3) and ``84 80 40 06 01230000`` (8961 kWh) are its test vectors. JSON keys: the
  quantity letter and the input (``VA``/``EB``...), units ``UA``/``UB`` (Table 12's example).
* **Combined** (Table 11): a combined heat/cooling meter's heat and cooling energies. The
  CMi6140's Table 11 page is not among the sources; the bench takes the layout of the same
  vendor's combined heat/cooling format (CMi4140 User's Manual V1.1, Table 14): cooling energy
  ``04 86 FF 02`` (kWh, INT32: VIF 0x06 with a manufacturer-specific VIFE 0xFF, 0x02) after the
  heat energy. Its JSON keys ``CE``/``CU`` are the bench's own.

The format identifiers of Pulse and Combined are not in the sources either: the bench uses
68 (0x44) and 69 (0x45), after Standard's and Extended's. Change :data:`FORMAT_IDS` when the
manual's page is found.

Timestamps: the meter keeps local standard time; the UTC offset (minutes) is subtracted before
transmission (seed 001 §7.3.1), e.g. +60 turns a 12:00 readout into 11:00 UTC.

M-Bus data records (EN 13757-3, DIF/VIF) follow the manual's tables: energy ``04 06`` (kWh,
INT32), volume ``04 15`` (0.1 m3, INT32), power ``02 2B`` (W, INT16), flow ``02 3B`` (l/h,
INT16), forward / return temperature ``02 5A`` / ``02 5E`` (0.1 degC, INT16), info codes
``04 FD 17`` (INT32; Table 9 note: "always 32 bits"), tariff 2 / 3 energy ``84 20 03`` /
``84 30 03`` (Wh, INT32). Malformed input raises :class:`PayloadError` with the offset.
The records decode with the project's wired codec (:mod:`simulator.mbus.records`), which the
tests use as the independent check.
"""

from __future__ import annotations

import functools
import json
import struct
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import cbor2

#: SenML CBOR labels (RFC 8428 §6 Table 4).
BN, BT, N, V, T, VD = -2, -3, 0, 2, 6, 8
#: Encoder type / version of the M-Bus encoding (manual page 27: 0x0000 => enc 0, ver 0).
ENCODER_MBUS_V0 = 0x0000
KNOWN_ENCODERS = {ENCODER_MBUS_V0}
#: CoAP Content-Format of SenML CBOR (RFC 8428 Table 8) and of JSON (RFC 7252 §12.3).
CONTENT_FORMAT_SENML_CBOR = 112
CONTENT_FORMAT_JSON = 50
#: CoAP Content-Format of the plain M-Bus message: application/octet-stream (RFC 7252 §12.3).
CONTENT_FORMAT_OCTETS = 42
#: Content-Format per message encoding (the module's CoAP Send).
CONTENT_FORMATS = {
    "senml_cbor": CONTENT_FORMAT_SENML_CBOR,
    "json": CONTENT_FORMAT_JSON,
    "mbus": CONTENT_FORMAT_OCTETS,
}

#: The message formats (seed 001 §7.4.1) and their identifiers (module doc: 68/69 assumed).
FORMAT_IDS = {"standard": 0x42, "extended": 0x43, "pulse": 0x44, "combined": 0x45}
FORMATS = tuple(FORMAT_IDS)
#: What a pulse input counts (seed 001 Table 12): volume in 0.01 m3 or energy in kWh.
PULSE_QUANTITIES = ("volume", "energy")


class PayloadError(ValueError):
    """A payload that cannot be decoded; says what and at which offset / record."""


@dataclass(frozen=True, slots=True)
class Readout:
    """One meter readout as the module stores it (seed 001 §7.3: "a readout ... stored locally").

    ``local_time`` is the meter's local standard time (naive datetime, no DST); registers are
    integers in the units of their M-Bus records: ``energy_kwh`` (kWh), ``volume_dl`` (0.1 m3),
    ``power_w`` (W), ``flow_lph`` (l/h), ``forward_dc`` / ``return_dc`` (0.1 degC),
    ``error_flags`` (32-bit info codes), ``tariff2_wh`` / ``tariff3_wh`` (Wh, extended only),
    ``missing_time_h`` (h the meter could not measure; extended JSON only),
    ``cooling_kwh`` (kWh, combined only), ``pulse_a`` / ``pulse_b`` (the pulse inputs' counts
    in 0.01 m3 or kWh, pulse only). ``seq`` numbers the readouts of one module (0, 1, ...); it
    is not transmitted.
    """

    meter_id: int
    local_time: datetime
    energy_kwh: int = 0
    volume_dl: int = 0
    power_w: int = 0
    flow_lph: int = 0
    forward_dc: int = 0
    return_dc: int = 0
    error_flags: int = 0
    tariff2_wh: int = 0
    tariff3_wh: int = 0
    missing_time_h: int = 0
    cooling_kwh: int = 0
    pulse_a: int = 0
    pulse_b: int = 0
    seq: int = field(default=0, compare=False)

    def utc_time(self, utc_offset_min: int) -> datetime:
        """The timestamp as transmitted: local standard time minus the UTC offset (aware, UTC)."""
        return (self.local_time - timedelta(minutes=utc_offset_min)).replace(tzinfo=UTC)


# -- M-Bus data records -----------------------------------------------------------------------
_Record = tuple[str, bytes, str]  # register, DIF/DIFE/VIF/VIFE header, struct format
_STANDARD: tuple[_Record, ...] = (
    ("energy_kwh", b"\x04\x06", "<i"),
    ("volume_dl", b"\x04\x15", "<i"),
    ("power_w", b"\x02\x2b", "<h"),
    ("flow_lph", b"\x02\x3b", "<h"),
    ("forward_dc", b"\x02\x5a", "<h"),
    ("return_dc", b"\x02\x5e", "<h"),
)
_TARIFFS: tuple[_Record, ...] = (
    ("tariff2_wh", b"\x84\x20\x03", "<i"),
    ("tariff3_wh", b"\x84\x30\x03", "<i"),
)
_COOLING: _Record = ("cooling_kwh", b"\x04\x86\xff\x02", "<i")
#: Pulse inputs (Table 12): In A sub-unit 1 (DIFE 40), In B sub-unit 2 (DIFE 80 40).
_PULSE_DIB = {"pulse_a": b"\x84\x40", "pulse_b": b"\x84\x80\x40"}
_PULSE_VIF = {"volume": b"\x14", "energy": b"\x06"}
_INFO32: _Record = ("error_flags", b"\x04\xfd\x17", "<I")
_INFO16: _Record = ("error_flags", b"\x02\xfd\x17", "<H")
_PULSES: tuple[_Record, ...] = tuple(
    (name, dib + vif, "<i") for name, dib in _PULSE_DIB.items() for vif in _PULSE_VIF.values()
)
_BY_HEADER = {
    h: (name, fmt) for name, h, fmt in (*_STANDARD, *_TARIFFS, _COOLING, *_PULSES, _INFO32, _INFO16)
}
_HEADER_LENGTHS = sorted({len(h) for h in _BY_HEADER}, reverse=True)
#: Extended's leading records in the plain M-Bus message: date/time type F, meter ID BCD8.
_DATETIME_F, _METER_ID = b"\x04\x6d", b"\x0c\x78"


def _check_format(fmt: str, pulse_inputs: tuple[str, str]) -> None:
    if fmt not in FORMAT_IDS:
        raise PayloadError(f"unknown message format {fmt!r}; one of {', '.join(FORMATS)}")
    for q in pulse_inputs:
        if q not in PULSE_QUANTITIES:
            raise PayloadError(f"pulse input quantity {q!r}; one of {', '.join(PULSE_QUANTITIES)}")


def _layout(fmt: str, info_bits: int, pulse_inputs: tuple[str, str]) -> list[_Record]:
    _check_format(fmt, pulse_inputs)
    layout = list(_STANDARD)
    if fmt == "extended":
        layout[2:2] = _TARIFFS  # Table 10 order: energy, volume, tariff 2, tariff 3, power...
    elif fmt == "combined":
        layout.insert(1, _COOLING)  # heat energy, cooling energy, volume... (module doc)
    elif fmt == "pulse":
        layout[2:2] = [
            (name, _PULSE_DIB[name] + _PULSE_VIF[q], "<i")
            for name, q in zip(_PULSE_DIB, pulse_inputs, strict=True)
        ]
    layout.append(_INFO32 if info_bits == 32 else _INFO16)
    return layout


def encode_mbus_records(
    r: Readout,
    *,
    fmt: str = "standard",
    info_bits: int = 32,
    fields: tuple[str, ...] | None = None,
    pulse_inputs: tuple[str, str] = ("volume", "energy"),
) -> bytes:
    """M-Bus data records (DIF, VIF, data; little-endian) of a readout in format ``fmt``.

    ``fields`` restricts the output to the named registers (the manual's later SenML records
    may carry fewer fields); ``info_bits`` 16 writes the info codes as ``02 FD 17``;
    ``pulse_inputs`` says what In A and In B count (pulse format). Raises :class:`PayloadError`
    for an unknown format or a register that does not fit its record.
    """
    packer, names, headers = _packer(
        fmt, info_bits, pulse_inputs, None if fields is None else tuple(fields)
    )
    try:
        values = [getattr(r, name) for name in names]
        return packer.pack(*[x for pair in zip(headers, values, strict=True) for x in pair])
    except struct.error:
        pass  # name the record that does not fit, as the record-by-record loop finds it
    for name, header, sfmt in _layout(fmt, info_bits, pulse_inputs):
        if fields is not None and name not in fields:
            continue
        try:
            struct.pack(sfmt, getattr(r, name))
        except struct.error:
            raise PayloadError(
                f"{name} = {getattr(r, name)} does not fit {sfmt[1:]} (record {header.hex()})"
            ) from None
    raise AssertionError("unreachable: the packed records failed but none alone does")


@functools.lru_cache(maxsize=64)
def _packer(
    fmt: str, info_bits: int, pulse_inputs: tuple[str, str], fields: tuple[str, ...] | None
) -> tuple[struct.Struct, tuple[str, ...], tuple[bytes, ...]]:
    """One compiled ``struct`` for a layout's records (header bytes as ``Ns``, then the
    value): a readout's records in one ``pack`` call instead of one per record."""
    layout = [
        rec for rec in _layout(fmt, info_bits, pulse_inputs) if fields is None or rec[0] in fields
    ]
    packer = struct.Struct("<" + "".join(f"{len(h)}s{sfmt[1:]}" for _, h, sfmt in layout))
    return packer, tuple(n for n, _, _ in layout), tuple(h for _, h, _ in layout)


def decode_mbus_records(data: bytes, base: int = 0) -> dict[str, int]:
    """The registers of :func:`encode_mbus_records` output; :class:`PayloadError` with offset.

    ``base`` is added to the offsets in errors (where ``data`` starts in its message).
    """
    out: dict[str, int] = {}
    i = 0
    while i < len(data):
        for hlen in _HEADER_LENGTHS:
            header = bytes(data[i : i + hlen])
            if header in _BY_HEADER:
                break
        else:
            raise PayloadError(
                f"unknown M-Bus record header {data[i : i + 3].hex()} at offset {base + i}"
            )
        name, fmt = _BY_HEADER[header]
        size = struct.calcsize(fmt)
        if i + hlen + size > len(data):
            raise PayloadError(
                f"M-Bus record {header.hex()} at offset {base + i} is truncated "
                f"({len(data) - i - hlen} of {size} data bytes)"
            )
        (out[name],) = struct.unpack_from(fmt, data, i + hlen)
        i += hlen + size
    return out


def _type_f(dt: datetime) -> bytes:
    """EN 13757-3 Annex A type F (date and time, 32 bits): minute, hour, day, month, year."""
    y = dt.year % 100
    return bytes(
        (
            dt.minute & 0x3F,
            dt.hour & 0x1F,
            (dt.day & 0x1F) | ((y & 0x07) << 5),
            (dt.month & 0x0F) | ((y >> 3) << 4),
        )
    )


def _bcd8(n: int) -> bytes:
    if not 0 <= n <= 99_999_999:
        raise PayloadError(f"meter ID {n} does not fit BCD8 (8 digits)")
    return bytes.fromhex(f"{n:08d}")[::-1]


def encode_mbus_message(
    r: Readout,
    *,
    fmt: str = "standard",
    utc_offset_min: int = 0,
    pulse_inputs: tuple[str, str] = ("volume", "energy"),
) -> bytes:
    """The plain M-Bus message (seed 001 §7.4.2.1): format identifier byte, the readout's date
    and time (type F, as transmitted: UTC offset applied; minute resolution) and the meter ID
    (BCD8), then the format's records. Raises :class:`PayloadError`.
    """
    _check_format(fmt, pulse_inputs)
    stamp = r.utc_time(utc_offset_min)
    head = bytes((FORMAT_IDS[fmt],)) + _DATETIME_F + _type_f(stamp) + _METER_ID + _bcd8(r.meter_id)
    return head + encode_mbus_records(r, fmt=fmt, pulse_inputs=pulse_inputs)


def decode_mbus_message(data: bytes) -> tuple[str, DecodedReadout]:
    """Read :func:`encode_mbus_message` output back: (format name, readout).

    Raises :class:`PayloadError` with the offset: an unknown format identifier, a missing or
    impossible date/time, a meter ID that is not BCD, or a bad record.
    """
    if not data:
        raise PayloadError("empty M-Bus message (no format identifier at offset 0)")
    names = {v: k for k, v in FORMAT_IDS.items()}
    if data[0] not in names:
        raise PayloadError(f"unknown message format identifier 0x{data[0]:02X} at offset 0")
    fmt = names[data[0]]
    if len(data) < 13 or data[1:3] != _DATETIME_F or data[7:9] != _METER_ID:
        raise PayloadError(
            "message lacks its date/time (046D) at offset 1 and ID (0C78) at offset 7"
        )
    t = data[3:7]
    try:
        utc_time = datetime(
            2000 + ((t[2] >> 5) | ((t[3] >> 4) << 3)),
            t[3] & 0x0F,
            t[2] & 0x1F,
            t[1] & 0x1F,
            t[0] & 0x3F,
            tzinfo=UTC,
        )
    except ValueError as exc:
        raise PayloadError(f"date/time (type F) at offset 3: {exc}") from None
    digits = data[9:13][::-1].hex()
    if not digits.isdigit():
        raise PayloadError(f"meter ID at offset 9 is not BCD ({digits})")
    registers = decode_mbus_records(data[13:], base=13)
    return fmt, DecodedReadout(int(digits), utc_time, registers)


# -- SenML CBOR -------------------------------------------------------------------------------
_EPOCH_NAIVE = datetime(1970, 1, 1)


@functools.lru_cache(maxsize=64)  # datetimes are immutable; a fleet asks once per pack
def utc_origin(utc_offset_min: int) -> datetime:
    """The meter time (naive) of the UNIX epoch for a UTC offset (min): see :func:`utc_unix`."""
    return _EPOCH_NAIVE + timedelta(minutes=utc_offset_min)


def utc_unix(r: Readout, origin: datetime) -> int:
    """UNIX seconds of ``r.utc_time(offset)``, ``origin`` = :func:`utc_origin` of the offset:
    the same timedelta to the epoch as ``timestamp()``, without building the aware datetime."""
    return int((r.local_time - origin).total_seconds())


def encode_senml_cbor(
    readouts: list[Readout],
    *,
    utc_offset_min: int = 0,
    fmt: str = "standard",
    encoder: int = ENCODER_MBUS_V0,
    info_bits: int = 32,
    later_fields: tuple[str, ...] | None = None,
    pulse_inputs: tuple[str, str] = ("volume", "energy"),
) -> bytes:
    """A SenML CBOR pack of one or more readouts of one meter (seed 001 §7.4.2.3).

    Each readout's "vd" holds its M-Bus records in message format ``fmt``. ``later_fields``
    limits the records after the first to those registers (the manual's
    example sends only the energy in them). Raises :class:`PayloadError`.
    """
    if not readouts:
        raise PayloadError("a SenML pack needs at least one readout")
    first = readouts[0]
    origin = utc_origin(utc_offset_min)
    base = utc_unix(first, origin)
    pack: list[dict[int, Any]] = [
        {
            BN: f"{first.meter_id:08d}",
            BT: base,
            VD: encode_mbus_records(first, fmt=fmt, info_bits=info_bits, pulse_inputs=pulse_inputs),
        },
        {N: "V", V: encoder},
    ]
    for r in readouts[1:]:
        if r.meter_id != first.meter_id:
            raise PayloadError(
                f"readouts of meters {first.meter_id} and {r.meter_id} "
                "cannot share one pack (one base name)"
            )
        pack.append(
            {
                T: utc_unix(r, origin) - base,
                VD: encode_mbus_records(
                    r, fmt=fmt, info_bits=info_bits, fields=later_fields, pulse_inputs=pulse_inputs
                ),
            }
        )
    return cbor2.dumps(pack)


def _cbor_head(n: int) -> int:
    """Bytes of a CBOR head carrying ``n`` (0 <= n < 2**64; RFC 8949 §3: shortest form)."""
    if n < 24:
        return 1
    if n < 0x100:
        return 2
    if n < 0x10000:
        return 3
    if n < 0x100000000:
        return 5
    if n < 0x10000000000000000:
        return 9
    raise PayloadError(f"{n} needs a CBOR bignum; size it by encoding")


def _cbor_int(v: int) -> int:
    return _cbor_head(v if v >= 0 else -1 - v)


def _cbor_str(n: int) -> int:
    return _cbor_head(n) + n


@functools.lru_cache(maxsize=256)
def _offset_heads(count: int, step: int) -> int:
    """Bytes of the CBOR ints ``k * step`` for ``k`` in 1..count (SenML time offsets)."""
    return sum(_cbor_int(k * step) for k in range(1, count + 1))


def senml_cbor_size(
    meter_id: int,
    times: list[int] | range,
    records_b: int,
    later_records_b: int,
    *,
    encoder: int = ENCODER_MBUS_V0,
) -> int:
    """``len(encode_senml_cbor(...))`` without encoding: the pack of readouts stamped
    ``times`` (UNIX s, UTC, in pack order) whose first "vd" has ``records_b`` bytes of M-Bus
    records and every later one ``later_records_b`` (:func:`encode_mbus_records` gives
    fixed-size records per layout). CBOR heads as cbor2 writes them (RFC 8949 §3, shortest
    form); the labels -3..8 and "V" are one-byte heads. Raises :class:`PayloadError` for no
    readouts or a number that needs a bignum. A statistics-only fleet sends thousands of
    packs nobody decodes; this is their size."""
    if not times:
        raise PayloadError("a SenML pack needs at least one readout")
    base = times[0]
    size = _cbor_head(len(times) + 1)  # the array: readouts + the encoder record
    # {BN: meter id, BT: base time, VD: records}
    size += 1 + 1 + _cbor_str(len(f"{meter_id:08d}".encode()))
    size += 1 + _cbor_int(base) + 1 + _cbor_str(records_b)
    size += 1 + 1 + 2 + 1 + _cbor_int(encoder)  # {N: "V", V: encoder}
    later = 1 + 1 + 1 + _cbor_str(later_records_b)  # {T: offset, VD: records} less the offset
    if isinstance(times, range) and times.step > 0:  # evenly spaced: offsets k x step
        return size + (len(times) - 1) * later + _offset_heads(len(times) - 1, times.step)
    for t in times[1:]:
        size += later + _cbor_int(t - base)
    return size


@dataclass(frozen=True)
class DecodedReadout:
    """A readout as a server decodes it: meter id, UTC time and the registers."""

    meter_id: int
    utc_time: datetime
    registers: dict[str, int]


def decode_senml_cbor(data: bytes) -> list[DecodedReadout]:
    """Decode a pack from :func:`encode_senml_cbor`; an unknown encoder version is an error.

    Records with a name other than "V" are ignored, as the manual requires of parsers.
    """
    try:
        pack = cbor2.loads(data)
    except (cbor2.CBORDecodeError, ValueError) as exc:
        raise PayloadError(f"not CBOR: {exc}") from None
    if not isinstance(pack, list) or not pack or not isinstance(pack[0], dict):
        raise PayloadError("a SenML pack is a non-empty CBOR array of maps")
    head = pack[0]
    if BN not in head or BT not in head:
        raise PayloadError("record 0 lacks the base name (-2) or base time (-3)")
    try:
        meter_id = int(head[BN])
    except (TypeError, ValueError):
        raise PayloadError(f"record 0: base name {head[BN]!r} is not a meter id") from None
    base = head[BT]
    out: list[DecodedReadout] = []
    for idx, rec in enumerate(pack):
        if not isinstance(rec, dict):
            raise PayloadError(f"record {idx} is not a map")
        if N in rec:
            if rec[N] == "V" and rec.get(V) not in KNOWN_ENCODERS:
                raise PayloadError(f"record {idx}: unknown encoder type/version {rec.get(V)!r}")
            continue
        if VD not in rec:
            raise PayloadError(f"record {idx} has no data value (label 8)")
        if not isinstance(rec[VD], bytes):
            raise PayloadError(
                f"record {idx}: data value (label 8) is {type(rec[VD]).__name__}, not bytes"
            )
        try:
            registers = decode_mbus_records(rec[VD])
        except PayloadError as exc:
            raise PayloadError(f"record {idx}: {exc}") from None
        t = base + rec.get(T, 0)
        out.append(DecodedReadout(meter_id, datetime.fromtimestamp(t, UTC), registers))
    return out


# -- JSON -------------------------------------------------------------------------------------
#: JSON key and unit of a pulse input's quantity (seed 001 Table 12's example: VA/UA, EB/UB).
_PULSE_JSON = {"volume": ("V", "m3", 100), "energy": ("E", "kWh", 1)}


def json_message(
    r: Readout,
    *,
    utc_offset_min: int = 0,
    fmt: str = "standard",
    pulse_inputs: tuple[str, str] = ("volume", "energy"),
) -> dict:
    """The JSON message object of one readout (seed 001 Tables 9, 10, 12, 13; module doc)."""
    _check_format(fmt, pulse_inputs)
    msg: dict[str, Any] = {
        "TS": r.utc_time(utc_offset_min).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "ID": r.meter_id,
        "E": r.energy_kwh,
        "U": "kWh",
    }
    if fmt == "combined":
        msg.update({"CE": r.cooling_kwh, "CU": "kWh"})
    msg.update({"V": round(r.volume_dl / 10, 1), "VU": "m3"})
    if fmt == "pulse":
        for name, q, letter in zip(("pulse_a", "pulse_b"), pulse_inputs, "AB", strict=True):
            key, unit, div = _PULSE_JSON[q]
            value = getattr(r, name)
            msg.update({key + letter: value / div if div > 1 else value, "U" + letter: unit})
    msg.update(
        {
            "P": r.power_w,
            "PU": "W",
            "F": r.flow_lph,
            "FU": "l/h",
            "FT": round(r.forward_dc / 10, 1),
            "TU": "C",
            "RT": round(r.return_dc / 10, 1),
            "RU": "C",
            "EF": f"0x{r.error_flags:08X}",
        }
    )
    if fmt == "extended":
        msg.update({"T2": r.tariff2_wh, "U2": "Wh", "T3": r.tariff3_wh, "U3": "Wh"})
        msg.update({"MT": r.missing_time_h, "MU": "h"})
    return msg


def encode_json(
    r: Readout,
    *,
    utc_offset_min: int = 0,
    fmt: str = "standard",
    pulse_inputs: tuple[str, str] = ("volume", "energy"),
) -> bytes:
    """One JSON message as sent (compact separators, UTF-8)."""
    msg = json_message(r, utc_offset_min=utc_offset_min, fmt=fmt, pulse_inputs=pulse_inputs)
    return json.dumps(msg, separators=(",", ":")).encode()


def decode_json(data: bytes) -> DecodedReadout:
    """Read a JSON message back into registers; :class:`PayloadError` names the bad key."""
    try:
        msg = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PayloadError(f"not JSON: {exc}") from None
    if not isinstance(msg, dict):
        raise PayloadError("a JSON message is one object")
    try:
        ts = datetime.strptime(msg["TS"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        regs = {
            "energy_kwh": int(msg["E"]),
            "volume_dl": round(msg["V"] * 10),
            "power_w": int(msg["P"]),
            "flow_lph": int(msg["F"]),
            "forward_dc": round(msg["FT"] * 10),
            "return_dc": round(msg["RT"] * 10),
            "error_flags": int(msg["EF"], 16),
        }
        if "T2" in msg:
            regs.update(tariff2_wh=int(msg["T2"]), tariff3_wh=int(msg["T3"]))
        if "MT" in msg:
            regs["missing_time_h"] = int(msg["MT"])
        if "CE" in msg:
            regs["cooling_kwh"] = int(msg["CE"])
        for name, letter in (("pulse_a", "A"), ("pulse_b", "B")):
            for key, _unit, div in _PULSE_JSON.values():
                if key + letter in msg:
                    regs[name] = round(msg[key + letter] * div)
        return DecodedReadout(int(msg["ID"]), ts, regs)
    except KeyError as exc:
        raise PayloadError(f"JSON message lacks key {exc.args[0]!r}") from None
    except (TypeError, ValueError) as exc:
        raise PayloadError(f"JSON message has a bad value: {exc}") from None


def registers_of(r: Readout, *, fmt: str = "standard", encoding: str = "mbus") -> dict[str, int]:
    """The registers a decoder should give back for ``r`` in ``fmt`` (round-trip checks).

    ``encoding`` "json" adds the extended message's missing time, which M-Bus does not carry.
    """
    names = [n for n, _, _ in _layout(fmt, 32, ("volume", "energy"))]
    if fmt == "extended" and encoding == "json":
        names.append("missing_time_h")
    return {n: getattr(r, n) for n in names}


def with_local_time(r: Readout, local_time: datetime) -> Readout:
    return replace(r, local_time=local_time)
