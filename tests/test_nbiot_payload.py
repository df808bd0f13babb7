"""Payloads: the manual's SenML CBOR example byte for byte, independent decoding with cbor2 and
pymeterbus, the JSON messages and the UTC offset examples (seed 001 §7.3.1, §7.4)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import cbor2
import meterbus
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from simulator.nbiot import payload
from simulator.nbiot.payload import PayloadError, Readout

# Seed 001 page 27 "Example and Data Size": first record and one later record, as printed.
MANUAL_FIRST = bytes.fromhex(
    "A3"
    "21"
    "68"
    "3132333435363738"
    "22"
    "1A5DE02740"
    "08"
    "5821"
    "04064E61BC000415078700000"
    "22B9413023BD400025A2303025E1A0202FD171240"
)
MANUAL_VERSION = bytes.fromhex("A20061560200")
MANUAL_LATER = bytes.fromhex("A206390E0F08460406F24FBC00")

EXAMPLE = Readout(
    12345678,
    datetime(2019, 11, 28, 20, 0),
    energy_kwh=12345678,
    volume_dl=34567,
    power_w=5012,
    flow_lph=212,
    forward_dc=803,
    return_dc=538,
    error_flags=0x4012,
)


def test_senml_cbor_reproduces_the_manual_example_byte_for_byte():
    later = Readout(12345678, datetime(2019, 11, 28, 19, 0), energy_kwh=12341234)
    data = payload.encode_senml_cbor([EXAMPLE, later], info_bits=16, later_fields=("energy_kwh",))
    assert data == b"\x83" + MANUAL_FIRST + MANUAL_VERSION + MANUAL_LATER


def test_manual_mbus_records_decode_with_pymeterbus():
    # Independent check: wrap our records in an RSP_UD long frame and let pymeterbus read it.
    dibs = payload.encode_mbus_records(EXAMPLE)
    header = bytes.fromhex("785634129615010400000000")
    ud = bytes([0x08, 0x01, 0x72]) + header + dibs
    frame = bytes([0x68, len(ud), len(ud), 0x68]) + ud + bytes([sum(ud) & 0xFF, 0x16])
    records = json.loads(meterbus.load(frame).to_JSON())["body"]["records"]
    values = {r["type"]: r["value"] for r in records}
    assert values["VIFUnit.ENERGY_WH"] == 12345678000  # 12345.678 MWh
    assert values["VIFUnit.VOLUME"] == pytest.approx(3456.7)  # m3
    assert values["VIFUnit.POWER_W"] == 5012
    assert values["VIFUnit.VOLUME_FLOW"] == pytest.approx(0.212)  # m3/h = 212 l/h
    assert values["VIFUnit.FLOW_TEMPERATURE"] == pytest.approx(80.3)
    assert values["VIFUnit.RETURN_TEMPERATURE"] == pytest.approx(53.8)
    assert values["VIFUnitExt.ERROR_FLAGS"] == 0x4012


def _readouts(n: int, offset_min: int = 0) -> list[Readout]:
    return [
        Readout(
            87654321,
            datetime(2026, 1, 5, h, 0),
            energy_kwh=5000 + 7 * h,
            volume_dl=100 + h,
            power_w=3000 + h,
            flow_lph=120,
            forward_dc=700 - h,
            return_dc=400,
            error_flags=h,
            seq=h,
        )
        for h in range(n)
    ]


def test_senml_pack_decodes_back_with_plain_cbor2():
    rs = _readouts(24)
    data = payload.encode_senml_cbor(rs, utc_offset_min=60)
    pack = cbor2.loads(data)  # independent of our decoder
    assert len(pack) == 25
    assert pack[0][-2] == "87654321"
    base = pack[0][-3]
    assert datetime.fromtimestamp(base, UTC) == datetime(2026, 1, 4, 23, 0, tzinfo=UTC)
    assert pack[1] == {0: "V", 2: 0}
    assert [base + rec.get(6, 0) for rec in [pack[0], *pack[2:]]] == [
        base + 3600 * h for h in range(24)
    ]
    ours = payload.decode_senml_cbor(data)
    assert [d.registers for d in ours] == [payload.registers_of(r) for r in rs]
    # Sizes as the manual's formula: each later record is 7 + (1) + payload2 bytes while its
    # time offset fits 16 bits (here 35-byte M-Bus payloads, so the "(1)" applies).
    p2 = len(payload.encode_mbus_records(rs[1]))
    assert p2 == 35
    assert all(len(cbor2.dumps(rec)) == 7 + 1 + p2 for rec in pack[2:19])
    assert len(cbor2.dumps(pack[1])) == 6  # "Sum: 8 bytes (max)"; value 0 takes one byte


def test_senml_decoder_rejects_unknown_encoder_and_junk_with_a_reason():
    data = cbor2.dumps([{-2: "1", -3: 0, 8: b""}, {0: "V", 2: 0x0102}])
    with pytest.raises(PayloadError, match="unknown encoder"):
        payload.decode_senml_cbor(data)
    with pytest.raises(PayloadError, match="offset 0"):
        payload.decode_senml_cbor(cbor2.dumps([{-2: "1", -3: 0, 8: b"\x99\x99"}]))
    with pytest.raises(PayloadError, match="truncated"):
        payload.decode_senml_cbor(cbor2.dumps([{-2: "1", -3: 0, 8: b"\x04\x06\x01"}]))
    with pytest.raises(PayloadError):
        payload.decode_senml_cbor(b"\xff")
    # unknown named records are ignored, as the manual requires of parsers
    ok = cbor2.dumps([{-2: "1", -3: 0, 8: b"\x04\x06\x01\x00\x00\x00"}, {0: "Xq", 2: 5}])
    assert payload.decode_senml_cbor(ok)[0].registers == {"energy_kwh": 1}


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 2**31 - 1), st.integers(-(2**15), 2**15 - 1), st.integers(0, 2**32 - 1)
        ),
        min_size=1,
        max_size=12,
    ),
    st.integers(-720, 720),
    st.sampled_from(payload.FORMATS),
)
def test_senml_round_trip(values, utc_offset, fmt):
    rs = [
        Readout(
            42,
            datetime(2026, 3, 1, 0, 0).replace(hour=i % 24),
            energy_kwh=e,
            power_w=p,
            error_flags=f,
            tariff2_wh=e,
            cooling_kwh=e,
            pulse_b=e,
            seq=i,
        )
        for i, (e, p, f) in enumerate(values)
    ]
    data = payload.encode_senml_cbor(rs, utc_offset_min=utc_offset, fmt=fmt)
    back = payload.decode_senml_cbor(data)
    assert [b.registers for b in back] == [payload.registers_of(r, fmt=fmt) for r in rs]
    assert [b.utc_time for b in back] == [r.utc_time(utc_offset) for r in rs]


#: offsets (s) on both sides of every CBOR head size (RFC 8949 §3: 1, 2, 3, 5, 9 bytes)
_CBOR_EDGES = (23, 24, 255, 256, 65535, 65536, 2**32 - 1, 2**32, -24, -25, -256, -257, -65537)


@settings(max_examples=150, deadline=None)
@given(
    st.integers(0, 10**12),
    st.lists(st.one_of(st.sampled_from(_CBOR_EDGES), st.integers(-(10**7), 10**10)), max_size=30),
    st.sampled_from(payload.FORMATS),
    st.integers(-720, 720),
    st.booleans(),
)
@example(12345678, list(_CBOR_EDGES), "standard", 0, False)
@example(12345678, [0] * 22, "standard", 0, False)  # array of 23 + 1 entries: a 2-byte head
@example(1, [0] * 23, "extended", 0, True)
def test_senml_size_without_encoding_is_the_encoded_length(meter_id, seconds, fmt, offset, later):
    """Statistics-only fleets size their packs (payload.senml_cbor_size) instead of encoding
    them: the size must be the encoder's, whatever the meter id length and however far the
    readouts lie apart (offsets of every CBOR head size, negative too)."""
    t0 = datetime(2026, 1, 5)
    seconds = [0, *seconds]  # the offsets from the first readout are the seconds
    rs = [
        Readout(meter_id, t0 + timedelta(seconds=s), energy_kwh=abs(s) % 2**31, seq=i)
        for i, s in enumerate(seconds)
    ]
    fields = ("energy_kwh",) if later else None
    data = payload.encode_senml_cbor(rs, utc_offset_min=offset, fmt=fmt, later_fields=fields)
    origin = payload.utc_origin(offset)
    first = payload.encode_mbus_records(rs[0], fmt=fmt)
    rest = payload.encode_mbus_records(rs[0], fmt=fmt, fields=fields)
    times = [payload.utc_unix(r, origin) for r in rs]
    assert payload.senml_cbor_size(meter_id, times, len(first), len(rest)) == len(data)


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=64))
def test_decoders_are_total_on_junk(junk):
    for decode in (
        payload.decode_senml_cbor,
        payload.decode_json,
        payload.decode_mbus_records,
        payload.decode_mbus_message,
    ):
        try:
            decode(junk)
        except PayloadError:
            pass


@pytest.mark.parametrize(("offset", "sent_hour"), [(60, 11), (-300, 17), (0, 12)])
def test_utc_offset_examples_of_the_manual(offset, sent_hour):
    # Seed 001 §7.3.1: Sweden +60 -> a 12:00 readout is sent as 11:00; New York -300 -> 17:00.
    r = Readout(1, datetime(2022, 7, 1, 12, 0))
    assert (
        json.loads(payload.encode_json(r, utc_offset_min=offset))["TS"]
        == f"2022-07-01T{sent_hour:02d}:00:00Z"
    )
    pack = cbor2.loads(payload.encode_senml_cbor([r], utc_offset_min=offset))
    assert datetime.fromtimestamp(pack[0][-3], UTC).hour == sent_hour


def test_json_standard_and_extended_messages_have_the_manual_keys():
    std = json.loads(payload.encode_json(EXAMPLE))
    assert list(std) == [
        "TS",
        "ID",
        "E",
        "U",
        "V",
        "VU",
        "P",
        "PU",
        "F",
        "FU",
        "FT",
        "TU",
        "RT",
        "RU",
        "EF",
    ]  # seed 001 Table 9 JSON example order
    assert std["ID"] == 12345678 and std["FT"] == 80.3 and std["EF"] == "0x00004012"
    ext = json.loads(payload.encode_json(EXAMPLE, fmt="extended"))
    # Table 13: tariff 2/3 and the missing time are "only included in the extended message"
    assert {"T2", "U2", "T3", "U3", "MT", "MU"} <= set(ext)
    assert not {"T2", "MT"} & set(std)
    back = payload.decode_json(payload.encode_json(EXAMPLE, fmt="extended"))
    assert back.registers == payload.registers_of(EXAMPLE, fmt="extended", encoding="json")
    with pytest.raises(PayloadError, match="'TS'"):
        payload.decode_json(b'{"ID": 1}')


# -- the four message formats and the plain M-Bus encoding (seed 001 §7.4.1, §7.4.2.1) ---------
# CMi6140 User's Manual V1.2 (2022-09) Table 12, the pulse inputs' examples as printed.
PULSE_A_VOLUME = bytes.fromhex("844014B1EB0100")  # = 1258.73 m3
PULSE_A_ENERGY = bytes.fromhex("84400725120000")  # = 46450 kWh
PULSE_B_VOLUME = bytes.fromhex("848040144E1E0100")  # = 732.94 m3
PULSE_B_ENERGY = bytes.fromhex("8480400601230000")  # = 8961 kWh


def _wired(dibs: bytes) -> list:
    from simulator.mbus.records import decode_records

    records, _rest, _more = decode_records(dibs)
    return records


def test_the_manuals_pulse_examples_read_with_the_wired_codec():
    # Independent of the payload module: the project's EN 13757-3 codec reads the printed bytes.
    got = [(r.subunit, r.value, r.unit) for r in _wired(PULSE_A_VOLUME + PULSE_A_ENERGY)]
    got += [(r.subunit, r.value, r.unit) for r in _wired(PULSE_B_VOLUME + PULSE_B_ENERGY)]
    assert [(s, u) for s, _, u in got] == [(1, "m3"), (1, "Wh"), (2, "m3"), (2, "Wh")]
    kilo = {"m3": 1, "Wh": 1000}  # the manual prints kWh
    assert [(s, round(float(v) / kilo[u], 2)) for s, v, u in got] == [
        (1, 1258.73),
        (1, 46450.0),
        (2, 732.94),
        (2, 8961.0),
    ]


@pytest.mark.parametrize(
    ("inputs", "a", "b", "dibs"),
    [
        (("volume", "energy"), 125873, 8961, PULSE_A_VOLUME + PULSE_B_ENERGY),
        (("volume", "volume"), 125873, 73294, PULSE_A_VOLUME + PULSE_B_VOLUME),
    ],
)
def test_pulse_format_writes_the_manuals_records(inputs, a, b, dibs):
    r = Readout(1, datetime(2021, 12, 2, 13, 14), pulse_a=a, pulse_b=b)
    records = payload.encode_mbus_records(r, fmt="pulse", pulse_inputs=inputs)
    assert dibs in records
    assert payload.decode_mbus_records(records)["pulse_a"] == a


def test_pulse_json_keys_follow_the_manuals_example():
    # Table 12 JSON: In A measuring volume gives VA/UA, In B measuring energy EB/UB.
    r = Readout(12345678, datetime(2021, 12, 2, 13, 14, 15), pulse_a=300, pulse_b=2)
    msg = json.loads(payload.encode_json(r, fmt="pulse"))
    assert (msg["VA"], msg["UA"], msg["EB"], msg["UB"]) == (3, "m3", 2, "kWh")
    assert list(msg)[:6] == ["TS", "ID", "E", "U", "V", "VU"]
    assert payload.decode_json(payload.encode_json(r, fmt="pulse")).registers["pulse_a"] == 300


def test_combined_format_carries_the_cooling_energy():
    r = Readout(5, datetime(2024, 1, 1, 0, 0), energy_kwh=10, cooling_kwh=77)
    records = payload.encode_mbus_records(r, fmt="combined")
    # the wired codec reads it as a second energy record, kWh, marked manufacturer-specific
    heat, cooling = [rec for rec in _wired(records) if rec.quantity == "energy"]
    assert (heat.value, cooling.value, cooling.vife) == (10_000, 77_000, (0xFF, 0x02))
    assert payload.decode_mbus_records(records)["cooling_kwh"] == 77
    assert json.loads(payload.encode_json(r, fmt="combined"))["CE"] == 77


@settings(max_examples=80, deadline=None)
@given(
    st.sampled_from(payload.FORMATS),
    st.integers(0, 99_999_999),
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31)),
    st.integers(0, 2**31 - 1),
    st.integers(-720, 720),
)
def test_mbus_message_round_trip(fmt, meter_id, when, value, offset):
    when = when.replace(second=0, microsecond=0)
    r = Readout(meter_id, when, energy_kwh=value, tariff3_wh=value, pulse_a=value, cooling_kwh=1)
    got_fmt, back = payload.decode_mbus_message(
        payload.encode_mbus_message(r, fmt=fmt, utc_offset_min=offset)
    )
    assert got_fmt == fmt and back.meter_id == meter_id
    assert back.utc_time == r.utc_time(offset)
    assert back.registers == payload.registers_of(r, fmt=fmt)


def test_mbus_message_leads_with_format_id_date_and_meter_id():
    msg = payload.encode_mbus_message(EXAMPLE, fmt="extended")
    assert msg[0] == 0x43  # Table 10: "Extended: Message format ID: 67"
    assert msg[1:3] == b"\x04\x6d" and msg[7:9] == b"\x0c\x78"
    assert msg[9:13] == bytes.fromhex("78563412")  # BCD, least significant byte first
    # the wired codec reads the date/time record as EN 13757-3 type F
    stamp = _wired(msg[1:7])[0].value
    assert (stamp.year, stamp.month, stamp.day, stamp.hour) == (2019, 11, 28, 20)


@pytest.mark.parametrize(
    ("data", "where"),
    [
        (b"", "offset 0"),
        (b"\x99" + bytes(12), "0x99 at offset 0"),
        (b"\x42\x04\x6d" + bytes(4), "offset 1"),
        (bytes.fromhex("42046d000c05330c78AB563412"), "offset 9"),
        (bytes.fromhex("42046d000c05330c787856341204"), "offset 13"),
    ],
)
def test_bad_mbus_messages_say_where(data, where):
    with pytest.raises(PayloadError, match=where):
        payload.decode_mbus_message(data)


@pytest.mark.parametrize("step", [1, 23, 24, 255, 256, 3600, 65535, 65536, 86400, 2**24 + 1])
@pytest.mark.parametrize("n", [1, 2, 24, 25, 300])
def test_senml_size_of_evenly_spaced_readouts_is_the_encoded_length(step, n):
    """A statistics-only module sizes a run of grid readouts from a ``range`` of times (the
    offsets k x step summed per CBOR head size); it must be the encoder's length."""
    t0 = datetime(2026, 1, 5)
    rs = [Readout(7, t0 + timedelta(seconds=k * step), seq=k) for k in range(n)]
    data = payload.encode_senml_cbor(rs)
    records = len(payload.encode_mbus_records(rs[0]))
    base = payload.utc_unix(rs[0], payload.utc_origin(0))
    times = range(base, base + n * step, step)
    assert payload.senml_cbor_size(7, times, records, records) == len(data)
