"""Mode 2: data sent most significant byte first (CI 76 / 55 / 77, PROTOCOL.md §4.1).

No published mode 2 telegram was found (libmbus, pymeterbus, jMBus and wmbusmeters only name the
CI values), so the checks are: a telegram written byte by byte here, and every real CI 72 frame of
the libmbus corpus rewritten into mode 2 by this file's own byte shuffling (not the codec's),
which must decode to the same values and re-encode to the same bytes.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from simulator.mbus.frames import checksum, describe, parse_frame
from simulator.mbus.records import DataRecord
from simulator.mbus.telegram import Header, Telegram, decode_telegram, encode_telegram

CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus" / "libmbus-frames"


def _frame(body: bytes) -> bytes:
    return bytes([0x68, len(body), len(body), 0x68]) + body + bytes([checksum(body), 0x16])


# By hand: C=08 A=01 CI=76; ID 12345678 as BCD MSB first (12 34 56 78); manufacturer ELV =
# 0x1596 MSB first (15 96); version 01; medium 04; access 2A; status 00; signature 0x0102
# MSB first (01 02). Records: 04 06 00 00 30 39 = 0x3039 = 12345 kWh; 02 5B 00 47 = 71 °C;
# 0C 13 00 01 23 45 = BCD 12345 litres; 04 6D 1A 8D 0B 2C = a type F date/time (below).
HAND = _frame(
    bytes.fromhex(
        "08 01 76 12345678 1596 01 04 2A 00 0102"
        " 04 06 00003039"
        " 02 5B 0047"
        " 0C 13 00012345"
        " 04 6D 1A 8D 0B 2C".replace(" ", "")
    )
)


def test_hand_written_mode2_telegram():
    t = decode_telegram(HAND)
    addr = t.header.address
    assert addr is not None
    assert (addr.id, addr.manufacturer, addr.version, addr.medium) == (12345678, "ELV", 1, 4)
    assert (t.header.access_no, t.header.signature) == (0x2A, 0x0102)
    values = [(r.quantity, r.value, r.unit) for r in t.records]
    assert values[:3] == [
        ("energy", 12_345_000, "Wh"),
        ("flow_temperature", 71, "°C"),
        ("volume", 12.345, "m3"),
    ]
    # type F, LSB first: 2C (minute 44) 0B (hour 11) 8D (day 13, year bits 100) 1A (month 10,
    # year bits 0001): y = 0b0001100 = 12 -> 2012-10-13 11:44
    assert values[3] == ("date_time", datetime(2012, 10, 13, 11, 44), "")
    assert encode_telegram(t).to_bytes() == HAND
    assert describe(parse_frame(HAND)) == "RSP_UD a=1 CI=76 id=12345678 ELV 4 records"


def test_mode1_bytes_under_ci76_read_differently():
    """The mode bit matters: the same record bytes under CI 72 give the byte-reversed number."""
    mode1 = bytearray(HAND)
    mode1[6] = 0x72
    mode1[-2] = checksum(bytes(mode1[4:-2]))
    t = decode_telegram(bytes(mode1))
    assert t.records[0].value == 0x39300000 * 1000


def _to_mode2(raw: bytes) -> bytes:
    """A CI 72 frame rewritten in mode 2 by plain byte shuffling (record bounds from the frame)."""
    t = decode_telegram(raw)
    data = raw[7:-2]
    head = data[3::-1] + data[5:3:-1] + data[6:10] + data[11:9:-1]
    body = bytearray()
    for r in t.records:
        wire = r.to_bytes()
        cut = len(wire) - len(r.data)
        body += wire[:cut] + r.data[::-1]
    body += data[12 + len(body) :]  # fillers, 0F/1F and manufacturer data as they were
    return _frame(bytes([raw[4], raw[5], 0x76]) + head + bytes(body))


def _corpus_ci72() -> list[Path]:
    if not CORPUS.is_dir():
        pytest.skip("../shared/corpus not present")
    paths = []
    for p in sorted(CORPUS.glob("*.hex")):
        raw = bytes.fromhex(p.read_text().replace("\n", " "))
        if raw[6] == 0x72 and decode_telegram(raw).trailing_fillers == 0:
            if not any(r.fillers for r in decode_telegram(raw).records):
                paths.append(p)
    return paths


def test_corpus_frames_in_mode2_decode_to_the_same_values():
    paths = _corpus_ci72()
    assert len(paths) > 50
    multibyte = 0
    for p in paths:
        raw = bytes.fromhex(p.read_text().replace("\n", " "))
        m1, m2raw = decode_telegram(raw), _to_mode2(raw)
        m2 = decode_telegram(m2raw)
        assert m2.header.address == m1.header.address, p.name
        assert m2.header.signature == m1.header.signature, p.name
        mine = [(r.quantity, r.unit, r.value, r.invalid, r.storage) for r in m2.records]
        assert mine == [(r.quantity, r.unit, r.value, r.invalid, r.storage) for r in m1.records]
        assert encode_telegram(m2).to_bytes() == m2raw, p.name
        multibyte += sum(len(r.data) > 1 and r.data != r.data[::-1] for r in m1.records)
    assert multibyte > 300  # the check is about reversed bytes: most records have several


def test_mode2_built_from_values_round_trips():
    from simulator.mbus.address import SecondaryAddress

    records = [
        DataRecord.from_value(0x06, 12_345_000, msb_first=True),
        DataRecord.from_value(0x13, 654.321, data_field=0xC, msb_first=True),
        DataRecord.from_value(0xFD, "WFM21", vife=(0x0C,), data_field=0xD, msb_first=True),
    ]
    assert records[0].data == bytes.fromhex("00003039")
    assert records[1].data == bytes.fromhex("00654321")
    assert records[2].data == b"WFM21"  # text first character first in mode 2
    t = Telegram(Header(0x76, 3, 0, 0, SecondaryAddress(87654321, "KAM", 9, 7)), records, a=5)
    raw = encode_telegram(t).to_bytes()
    assert raw[7:11] == bytes.fromhex("87654321")
    back = decode_telegram(raw)
    assert [r.value for r in back.records] == [12_345_000, 654.321, "WFM21"]


def test_ci77_fixed_data_mode2():
    # CI 73 example_data (libmbus fixed frame layout): ID, access, status, two unit bytes,
    # two counters. Mode 2 sends ID and counters MSB first.
    lsb = bytes.fromhex("78563412 01 00 05 2E 39300000 00000000".replace(" ", ""))
    msb = lsb[3::-1] + lsb[4:8] + lsb[11:7:-1] + lsb[15:11:-1]
    t1 = decode_telegram(_frame(bytes([0x08, 0x01, 0x73]) + lsb))
    t2 = decode_telegram(_frame(bytes([0x08, 0x01, 0x77]) + msb))
    assert t2.fixed is not None and t2.fixed.id_text == "12345678"
    assert [(r.quantity, r.value) for r in t2.records] == [
        (r.quantity, r.value) for r in t1.records
    ]
    assert encode_telegram(t2).to_bytes() == _frame(bytes([0x08, 0x01, 0x77]) + msb)
