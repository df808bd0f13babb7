"""Published encrypted and plain wM-Bus telegrams, decrypted with their published keys.

The vectors, keys and the values their publishers' decoders report are in
fixtures/wmbus/published_telegrams.json with their sources:

* OMS Vol.2 Annex N examples (security profile A = mode 5, profile B = mode 7 with AFL and
  CMAC, radio adapter with ELL III + CI 72, partial encryption, frame format B), as published
  in ISFH/ioBroker.wmbus ``lib/wmbus_decoder.test.js``;
* wmbusmeters/wmbusmeters ``simulations/simulation_aes.msg`` with the keys of
  ``tests/test_aes.sh``: apator162 (mode 5, key 16 x 00, PROTOCOL.md §5.8) and multical21
  (C1, ELL AES-CTR).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from simulator.wmbus.frame import WrongKeyError
from simulator.wmbus.telegram import parse_telegram, telegram_json

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "wmbus" / "published_telegrams.json"
VECTORS = json.loads(FIXTURE.read_text(encoding="utf-8"))["telegrams"]


@pytest.mark.parametrize("vec", VECTORS, ids=[v["name"] for v in VECTORS])
def test_published_telegram_decodes_as_published(vec: dict) -> None:
    exp = vec["expect"]
    key = bytes.fromhex(vec["key"]) if vec["key"] else None
    t = parse_telegram(bytes.fromhex(vec["hex"]), keys=key)
    assert t.fmt == exp["format"]
    assert t.crc is exp["crc"]
    assert t.link.manufacturer == exp["manufacturer"]
    assert t.link.id == exp["id"]
    if "device_type" in exp:
        assert t.link.device_type == exp["device_type"]
    assert t.security_mode == exp["security_mode"]
    assert t.decrypted is (key is not None)
    if "meter" in exp:
        assert str(t.address) == exp["meter"]
    if "record_count" in exp:
        assert t.records_error is None
        assert len(t.records) == exp["record_count"]
    for want in exp.get("records", []):
        rec = t.records[want["index"]]
        for attr in ("quantity", "unit", "storage"):
            if attr in want:
                assert getattr(rec, attr) == want[attr]
        assert rec.value == pytest.approx(want["value"])
    if "apl_contains_le32" in exp:
        assert t.apl[:2] == b"\x2f\x2f"
        assert exp["apl_contains_le32"].to_bytes(4, "little") in t.apl
    if "afl" in exp:
        assert t.afl["mcr"] == exp["afl"]["mcr"]
        assert t.afl["mac"] == exp["afl"]["mac"]
    if "ell_payload_crc" in exp:
        assert t.ell["payload_crc"] == exp["ell_payload_crc"]
    doc = telegram_json(t)
    json.dumps(doc)  # JSON-serialisable
    assert doc["link"]["format"] == exp["format"]


ENCRYPTED = [v for v in VECTORS if v["key"]]


@pytest.mark.parametrize("vec", ENCRYPTED, ids=[v["name"] for v in ENCRYPTED])
def test_wrong_key_is_a_clear_error(vec: dict) -> None:
    wrong = bytes.fromhex(vec.get("wrong_key") or ("FF" * 16))
    with pytest.raises(WrongKeyError) as err:
        parse_telegram(bytes.fromhex(vec["hex"]), keys=wrong)
    assert err.value.offset is not None
    text = str(err.value)
    assert "2F 2F" in text or "MAC" in text or "payload CRC" in text


@pytest.mark.parametrize("vec", ENCRYPTED, ids=[v["name"] for v in ENCRYPTED])
def test_without_key_headers_decode_and_records_stay_encrypted(vec: dict) -> None:
    t = parse_telegram(bytes.fromhex(vec["hex"]))
    assert t.encrypted and not t.decrypted
    assert t.records == []
    assert "no key" in t.records_error


def test_mode7_mac_is_checked_before_decrypting() -> None:
    vec = next(v for v in VECTORS if v["name"] == "oms_profile_b_mode7")
    raw = bytearray(bytes.fromhex(vec["hex"]))
    raw = bytearray(parse_telegram(bytes(raw), keys=bytes.fromhex(vec["key"])).raw)
    # Flip one ciphertext bit in the CRC-less form: the MAC (not the 2F 2F check) must catch it.
    raw[-1] ^= 0x01
    with pytest.raises(WrongKeyError, match="MAC"):
        parse_telegram(bytes([len(raw)]) + bytes(raw), keys=bytes.fromhex(vec["key"]), crc=False)


def test_key_file_row_for_the_meter_behind_a_radio_adapter() -> None:
    # The OMS radio-adapter example: link layer = adapter RAD 11223344, long header = meter
    # ELS 12345678. A key-file row naming the meter (not the adapter) must be found.
    from simulator.wmbus.keys import KeyStore

    vec = next(v for v in VECTORS if v["name"] == "oms_radio_adapter_mode7")
    store = KeyStore.parse(
        "Address,Key,Manufacturer,DeviceType,Version\n"
        f"12345678,{vec['key']},ELS,3,-1\n"
        f"-1,{'EE' * 16},RAD,-1,-1\n"
    )
    t = parse_telegram(bytes.fromhex(vec["hex"]), keys=store)
    assert t.decrypted and t.records[0].value == pytest.approx(28504.27)
