"""CMi6140 meter-data payloads: SenML CBOR packs with M-Bus records, and the JSON messages.

* **SenML/CBOR/M-Bus** (seed 001 §7.4.2.3; RFC 8428 SenML, RFC 8949 CBOR, encoded with
  ``cbor2``): a CBOR array; the first record carries the base name (meter id, label -2), the
  base time (UNIX s, UTC, label -3) and the first readout's M-Bus data records as a byte string
  (label 8, "vd"); then the "Encoder Version field" record ``{0: "V", 2: uint16}`` whose value
  is encoder type << 8 | encoder version (0x0000 = M-Bus, version 0, the manual's example); then
  one record per further readout ``{6: time offset s, 8: M-Bus records}``. Byte layout and sizes
  as in the manual's "Example and Data Size" (page 27).
* **JSON** standard and extended messages (seed 001 §7.4.1 Tables 9, 10 and 13): one object per
  readout with keys TS, ID, E, U, V, VU, P, PU, F, FU, FT, TU, RT, RU, EF; the extended message
  adds the tariff registers T2/U2 and T3/U3 (Table 13 prints "U2" for the tariff-3 unit, an
  evident typo; the bench writes "U3").

Timestamps: the meter keeps local standard time; the UTC offset (minutes) is subtracted before
transmission (seed 001 §7.3.1), e.g. +60 turns a 12:00 readout into 11:00 UTC.

M-Bus data records (EN 13757-3, DIF/VIF) follow the manual's tables: energy ``04 06`` (kWh,
INT32), volume ``04 15`` (0.1 m3, INT32), power ``02 2B`` (W, INT16), flow ``02 3B`` (l/h,
INT16), forward / return temperature ``02 5A`` / ``02 5E`` (0.1 degC, INT16), info codes
``04 FD 17`` (INT32; Table 9 note: "always 32 bits"), tariff 2 / 3 energy ``84 20 03`` /
``84 30 03`` (Wh, INT32). Malformed input raises :class:`PayloadError` with the offset.
"""

from __future__ import annotations

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


class PayloadError(ValueError):
    """A payload that cannot be decoded; says what and at which offset / record."""


@dataclass(frozen=True, slots=True)
class Readout:
    """One meter readout as the module stores it (seed 001 §7.3: "a readout ... stored locally").

    ``local_time`` is the meter's local standard time (naive datetime, no DST); registers are
    integers in the units of their M-Bus records: ``energy_kwh`` (kWh), ``volume_dl`` (0.1 m3),
    ``power_w`` (W), ``flow_lph`` (l/h), ``forward_dc`` / ``return_dc`` (0.1 degC),
    ``error_flags`` (32-bit info codes), ``tariff2_wh`` / ``tariff3_wh`` (Wh, extended only).
    ``seq`` numbers the readouts of one module (0, 1, ...); it is not transmitted.
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
    seq: int = field(default=0, compare=False)

    def utc_time(self, utc_offset_min: int) -> datetime:
        """The timestamp as transmitted: local standard time minus the UTC offset (aware, UTC)."""
        return (self.local_time - timedelta(minutes=utc_offset_min)).replace(tzinfo=UTC)


# -- M-Bus data records -----------------------------------------------------------------------
_STANDARD = (
    ("energy_kwh", b"\x04\x06", "<i"),
    ("volume_dl", b"\x04\x15", "<i"),
    ("power_w", b"\x02\x2b", "<h"),
    ("flow_lph", b"\x02\x3b", "<h"),
    ("forward_dc", b"\x02\x5a", "<h"),
    ("return_dc", b"\x02\x5e", "<h"),
)
_TARIFFS = (("tariff2_wh", b"\x84\x20\x03", "<i"), ("tariff3_wh", b"\x84\x30\x03", "<i"))
_INFO32 = ("error_flags", b"\x04\xfd\x17", "<I")
_INFO16 = ("error_flags", b"\x02\xfd\x17", "<H")
_BY_HEADER = {h: (name, fmt) for name, h, fmt in (*_STANDARD, *_TARIFFS, _INFO32, _INFO16)}


def encode_mbus_records(
    r: Readout,
    *,
    extended: bool = False,
    info_bits: int = 32,
    fields: tuple[str, ...] | None = None,
) -> bytes:
    """M-Bus data records (DIF, VIF, data; little-endian) of a readout.

    ``fields`` restricts the output to the named registers (the manual's later SenML records
    may carry fewer fields); ``info_bits`` 16 writes the info codes as ``02 FD 17``.
    """
    layout = list(_STANDARD)
    if extended:
        layout[2:2] = _TARIFFS  # Table 10 order: energy, volume, tariff 2, tariff 3, power...
    layout.append(_INFO32 if info_bits == 32 else _INFO16)
    out = bytearray()
    for name, header, fmt in layout:
        if fields is not None and name not in fields:
            continue
        try:
            out += header + struct.pack(fmt, getattr(r, name))
        except struct.error:
            raise PayloadError(
                f"{name} = {getattr(r, name)} does not fit {fmt[1:]} (record {header.hex()})"
            ) from None
    return bytes(out)


def decode_mbus_records(data: bytes) -> dict[str, int]:
    """The registers of :func:`encode_mbus_records` output; :class:`PayloadError` with offset."""
    out: dict[str, int] = {}
    i = 0
    while i < len(data):
        for hlen in (3, 2):
            header = bytes(data[i : i + hlen])
            if header in _BY_HEADER:
                break
        else:
            raise PayloadError(f"unknown M-Bus record header {data[i : i + 3].hex()} at offset {i}")
        name, fmt = _BY_HEADER[header]
        size = struct.calcsize(fmt)
        if i + hlen + size > len(data):
            raise PayloadError(
                f"M-Bus record {header.hex()} at offset {i} is truncated "
                f"({len(data) - i - hlen} of {size} data bytes)"
            )
        (out[name],) = struct.unpack_from(fmt, data, i + hlen)
        i += hlen + size
    return out


# -- SenML CBOR -------------------------------------------------------------------------------
def _unix(dt: datetime) -> int:
    return int(dt.timestamp())


def encode_senml_cbor(
    readouts: list[Readout],
    *,
    utc_offset_min: int = 0,
    extended: bool = False,
    encoder: int = ENCODER_MBUS_V0,
    info_bits: int = 32,
    later_fields: tuple[str, ...] | None = None,
) -> bytes:
    """A SenML CBOR pack of one or more readouts of one meter (seed 001 §7.4.2.3).

    ``later_fields`` limits the records after the first to those registers (the manual's
    example sends only the energy in them). Raises :class:`PayloadError`.
    """
    if not readouts:
        raise PayloadError("a SenML pack needs at least one readout")
    first = readouts[0]
    base = _unix(first.utc_time(utc_offset_min))
    pack: list[dict[int, Any]] = [
        {
            BN: f"{first.meter_id:08d}",
            BT: base,
            VD: encode_mbus_records(first, extended=extended, info_bits=info_bits),
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
                T: _unix(r.utc_time(utc_offset_min)) - base,
                VD: encode_mbus_records(
                    r, extended=extended, info_bits=info_bits, fields=later_fields
                ),
            }
        )
    return cbor2.dumps(pack)


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
        try:
            registers = decode_mbus_records(rec[VD])
        except PayloadError as exc:
            raise PayloadError(f"record {idx}: {exc}") from None
        t = base + rec.get(T, 0)
        out.append(DecodedReadout(meter_id, datetime.fromtimestamp(t, UTC), registers))
    return out


# -- JSON -------------------------------------------------------------------------------------
def json_message(r: Readout, *, utc_offset_min: int = 0, extended: bool = False) -> dict:
    """The JSON message object of one readout (seed 001 Tables 9/10/13)."""
    msg: dict[str, Any] = {
        "TS": r.utc_time(utc_offset_min).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "ID": r.meter_id,
        "E": r.energy_kwh,
        "U": "kWh",
        "V": round(r.volume_dl / 10, 1),
        "VU": "m3",
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
    if extended:
        msg.update({"T2": r.tariff2_wh, "U2": "Wh", "T3": r.tariff3_wh, "U3": "Wh"})
    return msg


def encode_json(r: Readout, *, utc_offset_min: int = 0, extended: bool = False) -> bytes:
    """One JSON message as sent (compact separators, UTF-8)."""
    return json.dumps(
        json_message(r, utc_offset_min=utc_offset_min, extended=extended), separators=(",", ":")
    ).encode()


def decode_json(data: bytes) -> DecodedReadout:
    """Read a JSON message back into registers; :class:`PayloadError` names the bad key."""
    try:
        msg = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PayloadError(f"not JSON: {exc}") from None
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
        return DecodedReadout(int(msg["ID"]), ts, regs)
    except KeyError as exc:
        raise PayloadError(f"JSON message lacks key {exc.args[0]!r}") from None
    except (TypeError, ValueError) as exc:
        raise PayloadError(f"JSON message has a bad value: {exc}") from None


def registers_of(r: Readout, *, extended: bool = False) -> dict[str, int]:
    """The registers a decoder should give back for ``r`` (for round-trip checks)."""
    names = [n for n, _, _ in _STANDARD] + ["error_flags"]
    if extended:
        names += ["tariff2_wh", "tariff3_wh"]
    return {n: getattr(r, n) for n in names}


def with_local_time(r: Readout, local_time: datetime) -> Readout:
    return replace(r, local_time=local_time)
