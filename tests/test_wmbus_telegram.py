"""Whole wireless telegrams: build -> parse round trips in every security mode and layout,
wrong keys, junk input (only WMBusError), records errors."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulator.mbus.address import SecondaryAddress
from simulator.mbus.records import DataRecord
from simulator.wmbus.frame import (
    FrameError,
    LayerError,
    MissingKeyError,
    RecordsError,
    SecurityError,
    WMBusError,
    WrongKeyError,
    decode_frame,
)
from simulator.wmbus.keys import KeyStore
from simulator.wmbus.layers import ELL
from simulator.wmbus.telegram import build_telegram, parse_telegram, telegram_json

KEY = bytes(range(16))
OTHER = bytes(range(1, 17))


def sample_records(energy_wh: int = 12_345_000, volume_l: int = 4242) -> list[DataRecord]:
    return [
        DataRecord.from_value(0x06, energy_wh),  # kWh, 32-bit
        DataRecord.from_value(0x13, volume_l / 1000, data_field=0x0C),  # l, 8-digit BCD
        DataRecord.from_value(0x5B, 21, data_field=0x01),  # flow temperature °C
    ]


def meter(**kw):
    args = dict(
        manufacturer="KAM",
        id=76348799,
        version=0x1B,
        device_type=0x16,
        records=sample_records(),
        access_no=0x91,
    )
    args.update(kw)
    return args


def values(t) -> list:
    return [(r.quantity, r.value) for r in t.records]


PLAIN = values(parse_telegram(build_telegram(**meter())))


def test_plain_telegram_fields() -> None:
    raw = build_telegram(**meter())
    fmt, payload = decode_frame(raw, "A", crc=True)
    assert payload[:10].hex().upper() == "442D2C998734761B167A"  # C M A CI
    t = parse_telegram(raw)
    assert (t.link.c, t.link.manufacturer, t.link.id) == (0x44, "KAM", 76348799)
    assert t.tpl["access_no"] == 0x91 and t.security_mode == 0
    assert not t.encrypted
    assert PLAIN == [("energy", 12_345_000), ("volume", 4.242), ("flow_temperature", 21)]


@pytest.mark.parametrize("mode", [5, 7])
@pytest.mark.parametrize("ci", [0x7A, 0x72])
@pytest.mark.parametrize("fmt", ["A", "B"])
def test_tpl_security_round_trip(mode: int, ci: int, fmt: str) -> None:
    raw = build_telegram(**meter(security_mode=mode, key=KEY, ci=ci, fmt=fmt))
    t = parse_telegram(raw, keys=KEY)
    assert t.fmt == fmt and t.security_mode == mode
    assert t.encrypted and t.decrypted
    assert values(t) == PLAIN
    assert (t.afl is not None) == (mode == 7)
    # The ciphertext really hides the records: the plaintext value bytes are not on air.
    assert (12345).to_bytes(4, "little") not in raw
    with pytest.raises(WrongKeyError):
        parse_telegram(raw, keys=OTHER)


def test_long_header_carries_a_different_meter_address() -> None:
    inner = SecondaryAddress(12345678, "ELS", 0x33, 0x03)
    raw = build_telegram(
        **meter(ci=0x72, tpl_address=inner, security_mode=5, key=KEY, device_type=0x37)
    )
    t = parse_telegram(raw, keys=KEY)
    assert t.address == inner  # the meter behind the radio converter
    assert t.link.device_type == 0x37
    assert t.tpl["address"] == "1234567893153303"


@pytest.mark.parametrize("ell_ci", [0x8C, 0x8D, 0x8E, 0x8F])
@pytest.mark.parametrize("tpl_ci", [0x78, 0x7A])
def test_ell_layouts_round_trip(ell_ci: int, tpl_ci: int) -> None:
    ell = {"ci": ell_ci, "cc": 0x20}
    if ell_ci in (0x8E, 0x8F):
        ell.update(m2=0x1596, a2=bytes.fromhex("7856341201 07".replace(" ", "")))
    if ell_ci in (0x8D, 0x8F):
        ell["sn"] = (1 << 29) | 0x123456  # ELL security mode 1 = AES-128-CTR
    raw = build_telegram(**meter(ci=tpl_ci, ell=ell, key=KEY if "sn" in ell else None))
    t = parse_telegram(raw, keys=KEY)
    assert t.ell["ci"] == f"{ell_ci:02X}" and t.ell["acc"] == 0x91
    assert values(t) == PLAIN
    assert t.encrypted is ("sn" in ell)
    if "sn" in ell:
        with pytest.raises(WrongKeyError, match="payload CRC"):
            parse_telegram(raw, keys=OTHER)
        assert not parse_telegram(raw).decrypted


def test_ell_without_encryption_checks_its_payload_crc() -> None:
    raw = build_telegram(**meter(ci=0x78, ell={"ci": 0x8D, "sn": 5}, crc=False))
    assert values(parse_telegram(raw)) == PLAIN
    bad = bytearray(raw)
    bad[-1] ^= 0x40
    with pytest.raises(LayerError, match="payload CRC"):
        parse_telegram(bytes(bad))


def test_ell_ctr_and_mode5_together() -> None:
    raw = build_telegram(**meter(ell={"ci": 0x8D, "sn": 1 << 29}, security_mode=5, key=KEY))
    t = parse_telegram(raw, keys=KEY)
    assert t.decrypted and t.security_mode == 5 and values(t) == PLAIN


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    mode=st.sampled_from([0, 5, 7]),
    fmt=st.sampled_from("AB"),
    ell=st.booleans(),
    energy=st.integers(0, 2**31 - 1).map(lambda kwh: kwh * 1000),
    volume=st.integers(0, 99_999_999),
    access_no=st.integers(0, 255),
    ident=st.integers(0, 99_999_999),
    key=st.binary(min_size=16, max_size=16),
)
def test_round_trip_property(mode, fmt, ell, energy, volume, access_no, ident, key) -> None:
    records = sample_records(energy, volume)
    raw = build_telegram(
        manufacturer="ELV",
        id=ident,
        version=1,
        device_type=7,
        records=records,
        access_no=access_no,
        security_mode=mode,
        key=key if mode or ell else None,
        fmt=fmt,
        ell={"ci": 0x8D, "sn": (1 << 29) | ident} if ell else None,
    )
    t = parse_telegram(raw, keys=key, fmt=fmt, crc=True)
    assert t.link.id == ident
    assert [r.value for r in t.records] == [r.value for r in records]
    assert t.records[1].value == pytest.approx(volume / 1000)


def test_keys_from_a_store_pick_the_matching_key() -> None:
    raw = build_telegram(**meter(security_mode=5, key=KEY))
    store = KeyStore.parse(
        "Address,Key,Manufacturer,DeviceType,Version\n"
        f"-1,{OTHER.hex()},*,-1,-1\n"
        f"76348799,{KEY.hex()},KAM,-1,-1\n"
    )
    assert values(parse_telegram(raw, keys=store)) == PLAIN  # specific row tried first
    wildcard_only = KeyStore.parse(
        f"Address,Key,Manufacturer,DeviceType,Version\n-1,{OTHER.hex()},*,-1,-1\n"
        f"-1,{KEY.hex()},*,-1,-1\n"
    )
    assert values(parse_telegram(raw, keys=wildcard_only)) == PLAIN  # second candidate works
    nobody = KeyStore.parse(f"Address,Key,Manufacturer,DeviceType,Version\n1,{KEY.hex()},*,-1,-1\n")
    t = parse_telegram(raw, keys=nobody)
    assert not t.decrypted and t.records == []
    wrong = KeyStore.parse(
        f"Address,Key,Manufacturer,DeviceType,Version\n-1,{OTHER.hex()},*,-1,-1\n"
    )
    with pytest.raises(WrongKeyError):
        parse_telegram(raw, keys=wrong)


def test_mode5_announced_but_plaintext_is_rejected() -> None:
    raw = bytearray(build_telegram(**meter(security_mode=5, key=KEY, crc=False)))
    plain = b"\x2f\x2f" + b"".join(r.to_bytes() for r in sample_records())
    plain += b"\x2f" * (-len(plain) % 16)
    raw[15:] = plain  # L C M A CI ACC ST CFG(2) = 15 bytes, then the data
    raw[0] = len(raw) - 1
    with pytest.raises(SecurityError, match="not encrypted"):
        parse_telegram(bytes(raw), keys=KEY, crc=False)


def _mode5_announced_plaintext() -> bytes:
    raw = bytearray(build_telegram(**meter(security_mode=5, key=KEY, crc=False)))
    plain = b"\x2f\x2f" + b"".join(r.to_bytes() for r in sample_records())
    plain += b"\x2f" * (-len(plain) % 16)
    raw[15:] = plain
    raw[0] = len(raw) - 1
    return bytes(raw)


def test_mode5_announced_but_plaintext_without_a_key_decodes_as_established_decoders_do():
    """Issue 14: no key set and a valid record structure (2F 2F, then DIF/VIF): decoded."""
    t = parse_telegram(_mode5_announced_plaintext(), crc=False)
    assert t.security_mode == 5 and not t.encrypted and not t.decrypted
    assert t.records_error is None and values(t) == PLAIN
    assert parse_telegram(_mode5_announced_plaintext(), crc=False, strict=True).records
    # real ciphertext without a key is still left undecoded
    enc = parse_telegram(build_telegram(**meter(security_mode=5, key=KEY)))
    assert enc.encrypted and enc.records == [] and "no key" in enc.records_error


def test_bad_records_are_reported_not_raised_unless_strict() -> None:
    raw = build_telegram(**meter(records=bytes.fromhex("04 06 39 30".replace(" ", ""))))
    t = parse_telegram(raw)
    assert t.records == [] and t.records_error.startswith("records:")
    assert t.tpl["access_no"] == 0x91
    with pytest.raises(RecordsError) as err:
        parse_telegram(raw, strict=True)
    assert err.value.offset is not None


def test_build_errors() -> None:
    with pytest.raises(MissingKeyError):
        build_telegram(**meter(security_mode=5))
    with pytest.raises(SecurityError):
        build_telegram(**meter(security_mode=5, key=b"short"))
    with pytest.raises(SecurityError):
        build_telegram(**meter(security_mode=6, key=KEY))
    with pytest.raises(LayerError):
        build_telegram(**meter(ci=0x78, security_mode=5, key=KEY))
    with pytest.raises(FrameError):
        build_telegram(**meter(manufacturer="K1M"))
    with pytest.raises(SecurityError):  # 16 blocks do not fit the 4-bit block count
        build_telegram(**meter(records=bytes(250), security_mode=5, key=KEY))
    with pytest.raises(LayerError):
        build_telegram(**meter(ell={"ci": 0x8C, "bogus": 1}))
    with pytest.raises(LayerError):
        build_telegram(**meter(ell=ELL(ci=0x8E)))


def test_json_shape() -> None:
    t = parse_telegram(build_telegram(**meter(security_mode=7, key=KEY)), keys=KEY)
    doc = telegram_json(t)
    assert doc["header"]["id"] == "76348799"
    assert doc["header"]["manufacturer"] == "KAM"
    assert doc["header"]["medium"] == "cold water"
    assert doc["records"][0] == {
        "function": "instantaneous",
        "storage": 0,
        "tariff": 0,
        "subunit": 0,
        "quantity": "energy",
        "unit": "Wh",
        "value": 12_345_000,
        "dif": "04",
        "vif": "06",
    }
    assert doc["link"] == {
        "l": t.link.l,
        "c": "44",
        "c_name": "SND_NR",
        "manufacturer": "KAM",
        "id": "76348799",
        "version": 0x1B,
        "device_type": 0x16,
        "format": "A",
        "crc": True,
    }
    assert doc["security_mode"] == 7 and doc["decrypted"] is True
    assert doc["afl"]["mcr"] == 0x91


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=0, max_size=200))
def test_junk_raises_only_wmbus_error(raw: bytes) -> None:
    for keys in (None, KEY):
        try:
            parse_telegram(raw, keys=keys)
        except WMBusError:
            pass


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_mutated_telegrams_raise_only_wmbus_error(data) -> None:
    mode = data.draw(st.sampled_from([0, 5, 7]))
    raw = bytearray(
        build_telegram(
            **meter(security_mode=mode, key=KEY, ell={"ci": 0x8D, "sn": 1 << 29}, crc=False)
        )
    )
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(1, len(raw) - 1))
        raw[i] = data.draw(st.integers(0, 255))
    try:
        parse_telegram(bytes(raw), keys=KEY, crc=False)
    except WMBusError:
        pass
