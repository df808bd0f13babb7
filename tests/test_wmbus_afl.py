"""AFL (CI 90): the mode-7 AFL MAC and fragment reassembly, with typed errors.

Published telegram: OMS Vol.2 Annex N "wM-Bus Meter with integrated radio and Security profile
B" (mode 7, AFL with MCL 25, MCR 2739, MAC 21924D4F2FB66E01), as published in
ISFH/ioBroker.wmbus ``lib/wmbus_decoder.test.js`` (fixtures/wmbus/published_telegrams.json,
``oms_profile_b_mode7``). No published *fragmented* AFL telegram was found, so fragments are
built by the bench (simulator/wmbus/afl.py states the reading of EN 13757-7 it follows) and
their MAC is the same AES-CMAC the published telegram verifies with.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from simulator.mbus.records import decode_records
from simulator.wmbus.afl import FragmentError, Reassembler
from simulator.wmbus.frame import MacError, WrongKeyError
from simulator.wmbus.telegram import build_fragments, parse_telegram

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "wmbus" / "published_telegrams.json"
OMS_B = next(
    v for v in json.loads(FIXTURE.read_text())["telegrams"] if v["name"] == "oms_profile_b_mode7"
)
KEY = bytes.fromhex(OMS_B["key"])
RECORDS, _, _ = decode_records(
    bytes.fromhex("0413393000000C13785634120C13785634120C13785634120C1378563412")
)
METER = dict(manufacturer="ELS", id=12345678, version=3, device_type=7, access_no=0x21)


def test_published_mode7_afl_mac_verifies() -> None:
    t = parse_telegram(bytes.fromhex(OMS_B["hex"]), keys=KEY)
    assert t.decrypted and t.afl["mac"] == "21924D4F2FB66E01" and t.afl["mcr"] == 2739
    assert t.afl["fragment_id"] == 0 and t.afl["more_fragments"] is False


def test_published_mode7_with_an_altered_byte_is_a_mac_error() -> None:
    # the payload as received (block CRCs stripped), one ciphertext bit changed: the link
    # layer cannot see it any more, only the AFL MAC can
    payload = bytearray(parse_telegram(bytes.fromhex(OMS_B["hex"]), keys=KEY).raw)
    payload[-1] ^= 0x01
    with pytest.raises(MacError) as err:
        parse_telegram(bytes([len(payload)]) + bytes(payload), keys=KEY, crc=False)
    assert "AFL MAC" in str(err.value) and err.value.offset is not None


def test_wrong_key_for_mode7_is_a_mac_error_and_still_a_wrong_key_error() -> None:
    with pytest.raises(MacError) as err:
        parse_telegram(bytes.fromhex(OMS_B["hex"]), keys=bytes(16))
    assert isinstance(err.value, WrongKeyError)


@pytest.mark.parametrize("size", [1, 7, 16, 25])
def test_fragments_reassemble_and_decode(size: int) -> None:
    frames = build_fragments(fragment_size=size, records=RECORDS, security_mode=7, key=KEY, **METER)
    assert len(frames) > 1
    r = Reassembler()
    for f in frames[:-1]:
        held = parse_telegram(f, keys=KEY, fragments=r)
        assert held.records == [] and "held" in held.records_error
        assert held.afl["more_fragments"] is True
    t = parse_telegram(frames[-1], keys=KEY, fragments=r)
    assert t.records_error is None and t.decrypted
    assert [x.value for x in t.records] == [x.value for x in RECORDS]
    assert t.afl["fragments"] == len(frames)
    assert r.pending == {}


def test_a_missing_fragment_is_a_fragment_error() -> None:
    frames = build_fragments(fragment_size=8, records=RECORDS, security_mode=7, key=KEY, **METER)
    assert len(frames) >= 3
    r = Reassembler()
    parse_telegram(frames[0], keys=KEY, fragments=r)
    with pytest.raises(FragmentError, match="fragment 1 missing: got fragment 2"):
        parse_telegram(frames[2], keys=KEY, fragments=r)
    assert r.pending == {}  # the broken message is dropped


def test_a_later_fragment_without_its_first_is_a_fragment_error() -> None:
    frames = build_fragments(fragment_size=8, records=RECORDS, security_mode=7, key=KEY, **METER)
    for lone in (frames[1], frames[-1]):
        with pytest.raises(FragmentError, match="without its first fragment"):
            parse_telegram(lone, keys=KEY, fragments=Reassembler())


def test_a_new_message_before_the_last_fragment_is_a_fragment_error() -> None:
    frames = build_fragments(fragment_size=8, records=RECORDS, security_mode=7, key=KEY, **METER)
    r = Reassembler()
    parse_telegram(frames[0], keys=KEY, fragments=r)
    with pytest.raises(FragmentError, match="missing: a new message"):
        parse_telegram(frames[0], keys=KEY, fragments=r)
    assert len(r.pending) == 1  # the new message is open


def test_fragments_of_two_meters_interleave() -> None:
    a = build_fragments(fragment_size=9, records=RECORDS, security_mode=7, key=KEY, **METER)
    b = build_fragments(
        fragment_size=9, records=RECORDS, security_mode=7, key=KEY, **{**METER, "id": 87654321}
    )
    r = Reassembler()
    done = []
    for fa, fb in zip(a, b, strict=True):
        for f in (fa, fb):
            t = parse_telegram(f, keys=KEY, fragments=r)
            if t.records:
                done.append(t.link.id)
    assert done == [12345678, 87654321]


def test_an_altered_fragment_fails_the_mac_of_the_whole_message() -> None:
    frames = build_fragments(
        fragment_size=10, records=RECORDS, security_mode=7, key=KEY, crc=False, **METER
    )
    frames[1] = frames[1][:-1] + bytes([frames[1][-1] ^ 0x80])
    r = Reassembler()
    for f in frames[:-1]:
        parse_telegram(f, keys=KEY, fragments=r)
    with pytest.raises(MacError):
        parse_telegram(frames[-1], keys=KEY, fragments=r)


def test_without_a_reassembler_a_fragment_is_a_clear_error() -> None:
    frames = build_fragments(fragment_size=8, records=RECORDS, security_mode=7, key=KEY, **METER)
    with pytest.raises(FragmentError, match="fragment store"):
        parse_telegram(frames[0], keys=KEY)
