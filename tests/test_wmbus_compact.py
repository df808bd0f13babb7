"""Compact frames (CI 79): a format learned from a full frame expands later compact frames.

Published pair: wmbusmeters/wmbusmeters ``tests/test_analyze.sh`` ("Test analyze encrypted
(with-key) ctr full telegram" and "... compact telegram"), Kamstrup multical21 76348799, key
28F64A24988064A079AA2C807D6102AE (ELL AES-CTR). wmbusmeters prints for the compact one:
``79 tpl-ci-field (... Compact frame)``, ``eda8 format signature``, ``e475 data crc`` and
total_m3 6.409, target_m3 6.409, flow_temperature_c 127, external_temperature_c 22; for the
full one total_m3 6.408, target_m3 6.408, external_temperature_c 19.
"""

from __future__ import annotations

import pytest

from simulator.mbus.records import decode_records
from simulator.wmbus.compact import (
    CompactFrameError,
    FormatStore,
    UnknownFormatError,
    format_signature,
    record_format,
)
from simulator.wmbus.crc import crc16_en13757
from simulator.wmbus.telegram import build_telegram, parse_telegram, telegram_json

KEY = bytes.fromhex("28F64A24988064A079AA2C807D6102AE")
FULL = bytes.fromhex(
    "2A442D2C998734761B168D2091D37CAC21E1D68CDAFFCD3DC452BD802913FF7B1706CA9E355D6C2701CC24"
)
COMPACT = bytes.fromhex("23442D2C998734761B168D20983081B2227A6FA1F10E1B79B5EB4B17E81F930E937EE06C")


def _values(t) -> list:
    return [(r.quantity, r.storage, r.value) for r in t.records]


def test_published_compact_frame_decodes_after_its_full_frame() -> None:
    formats = FormatStore()
    full = parse_telegram(FULL, keys=KEY, formats=formats)
    assert full.tpl_ci == 0x78 and full.records_error is None
    assert 0xA8ED in formats  # wmbusmeters: "eda8 format signature"
    t = parse_telegram(COMPACT, keys=KEY, formats=formats)
    assert t.tpl_ci == 0x79
    assert t.format_signature == 0xA8ED
    assert t.records_error is None
    assert _values(t) == [
        ("manufacturer_specific", 0, 0x71),  # info codes 7100: DRY
        ("volume", 0, pytest.approx(6.409)),  # total_m3
        ("volume", 1, pytest.approx(6.409)),  # target_m3
        ("flow_temperature", 1, 127),
        ("external_temperature", 1, 22),
    ]
    assert telegram_json(t)["format_signature"] == "A8ED"


def test_published_signature_and_data_crc_are_crc16_of_format_and_full_records() -> None:
    full = parse_telegram(FULL, keys=KEY)
    fmt = record_format(full.records)
    assert fmt.hex().upper() == "02FF2004134413615B6167"
    assert format_signature(fmt) == 0xA8ED
    # the compact frame's data CRC (e475 on air) is that of the full record part it stands for
    compact = parse_telegram(COMPACT, keys=KEY, formats=_store_with(full))
    assert crc16_en13757(compact.apl) == 0x75E4


def _store_with(full) -> FormatStore:
    store = FormatStore()
    store.learn(full.records)
    return store


def test_compact_frame_before_its_full_frame_says_so() -> None:
    t = parse_telegram(COMPACT, keys=KEY, formats=FormatStore())
    assert t.records == []
    assert "A8ED unknown" in t.records_error
    with pytest.raises(UnknownFormatError) as err:
        parse_telegram(COMPACT, keys=KEY, formats=FormatStore(), strict=True)
    # the signature: wmbusmeters prints 020 counting the ELL payload CRC; inside a decrypted
    # ELL our offsets count without it (telegram.py module docstring)
    assert err.value.offset == 18


def test_a_format_of_another_meter_type_is_not_used_for_a_wrong_signature() -> None:
    recs, _, _ = decode_records(bytes.fromhex("0413393000000C1378563412"))
    store = FormatStore()
    store.learn(recs)
    with pytest.raises(UnknownFormatError):
        parse_telegram(COMPACT, keys=KEY, formats=store, strict=True)


def test_data_crc_catches_a_changed_value() -> None:
    recs, _, _ = decode_records(bytes.fromhex("0413393000000C1378563412"))
    kw = dict(manufacturer="ELS", id=12345678, version=3, device_type=7, access_no=1)
    store = FormatStore()
    parse_telegram(build_telegram(records=recs, ci=0x78, **kw), formats=store)
    compact = bytearray(build_telegram(records=recs, ci=0x79, crc=False, **kw))
    t = parse_telegram(bytes(compact), formats=store, strict=True)
    assert [r.value for r in t.records] == [12.345, pytest.approx(12345.678)]
    compact[-1] ^= 0x01  # one data bit: the expanded records no longer match the data CRC
    with pytest.raises(CompactFrameError, match="data CRC"):
        parse_telegram(bytes(compact), formats=store, strict=True)
    longer = bytes([compact[0] + 1]) + bytes(compact[1:]) + b"\x00"
    with pytest.raises(CompactFrameError, match="more than its format needs"):
        parse_telegram(longer, formats=store, strict=True)


def test_lvar_record_round_trips_through_a_compact_frame() -> None:
    # an LVAR record (fabrication text): its length byte travels with the data, not the format
    recs, _, _ = decode_records(bytes.fromhex("0413393000000D78034142430C1378563412"))
    assert recs[1].lvar == 3
    kw = dict(manufacturer="ELS", id=12345678, version=3, device_type=7, access_no=1)
    store = FormatStore()
    parse_telegram(build_telegram(records=recs, ci=0x78, **kw), formats=store)
    t = parse_telegram(build_telegram(records=recs, ci=0x79, **kw), formats=store, strict=True)
    assert [r.value for r in t.records] == [r.value for r in recs]


def test_build_rejects_compact_with_security_or_bytes() -> None:
    from simulator.wmbus.frame import LayerError

    recs, _, _ = decode_records(bytes.fromhex("0413393000000C1378563412"))
    kw = dict(manufacturer="ELS", id=12345678, version=3, device_type=7, access_no=1)
    with pytest.raises(LayerError, match="security mode"):
        build_telegram(records=recs, ci=0x79, security_mode=5, key=bytes(16), **kw)
    with pytest.raises(LayerError, match="from records"):
        build_telegram(records=b"\x04\x13\x00\x00\x00\x00", ci=0x79, **kw)


#: The same meter's compact frame as wmbusmeters ``tests/test_analyze.sh`` ("Test analyze
#: compact telegram", ``--analyze=plain``) gives it: ELL CTR flags but the content in clear
#: (payload CRC 7F17 OK, signature eda8, data CRC 6ab6, 6.408 m3, 127 °C, 19 °C): the
#: compact form of exactly the encrypted full frame above.
COMPACT_PLAIN = bytes.fromhex(
    "23442D2C998734761B168D2087D19EAD217F1779EDA86AB6710008190000081900007F13"
)


def test_published_plain_compact_frame_matches_the_decrypted_full_frame() -> None:
    store = _store_with(parse_telegram(FULL, keys=KEY))
    head = parse_telegram(COMPACT_PLAIN)  # no key: ELL headers only, content kept as sent
    assert head.records_error == "ELL AES-CTR encrypted, no key"
    payload_crc, ci, compact = head.apl[:2], head.apl[2], head.apl[3:]
    assert int.from_bytes(payload_crc, "little") == crc16_en13757(head.apl[2:])  # 7F17 OK
    assert ci == 0x79
    signature, full = store.expand(compact)
    assert signature == 0xA8ED
    # the data CRC 6AB6 of the compact frame is the CRC of the full frame's record part
    assert full == parse_telegram(FULL, keys=KEY).apl
    recs, _, _ = decode_records(full)
    assert [r.value for r in recs] == [0x71, pytest.approx(6.408), pytest.approx(6.408), 127, 19]
