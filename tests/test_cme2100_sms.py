"""GSM-7 limits, concatenation and PDUs, checked against python-gsmmodem's independent codec."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import gsmmodem.pdu as gsm  # python-gsmmodem-new, in the test extra: the independent codec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.gateways.cme2100 import pdu, sms
from simulator.gateways.cme2100 import protocol as p

KEY = "Pa55-word_2026!x"
B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def test_base64url_alphabet_is_gsm7_basic_one_septet_each():
    assert sms.is_gsm7_basic(B64)
    assert sms.septet_length(B64) == len(B64)


def test_largest_command_in_one_sms_is_106_bytes():
    assert p.max_plaintext_for(sms.SINGLE_SEPTETS) == 106
    fits = p.encrypt(KEY, "x" * 106, counter=1, direction=p.Direction.COMMAND)
    over = p.encrypt(KEY, "x" * 107, counter=1, direction=p.Direction.COMMAND)
    assert (len(fits), sms.parts_needed(fits)) == (160, 1)
    assert (len(over), sms.parts_needed(over)) == (162, 2)
    # one part of a concatenated message: 153 characters = 114 bytes of frame
    assert p.max_plaintext_for(sms.PART_SEPTETS) == 100


@pytest.mark.parametrize(
    ("chars", "parts"), [(1, 1), (160, 1), (161, 2), (306, 2), (307, 3), (153 * 255, 255)]
)
def test_parts_needed(chars, parts):
    assert sms.parts_needed("A" * chars) == parts


def test_too_long_and_non_gsm7_texts_raise_with_offset():
    with pytest.raises(sms.SmsEncodingError):
        sms.split_text("A" * (153 * 255 + 1))
    with pytest.raises(sms.SmsEncodingError) as e:
        sms.to_septets("abc\u4e2d")
    assert e.value.offset == 3


def test_extension_characters_take_two_septets_and_are_not_split():
    assert sms.septet_length("[]€") == 6
    parts = sms.split_text("A" * 152 + "€" + "B" * 10)
    assert parts[0] == "A" * 152 and parts[1].startswith("€")


# python-gsmmodem's table has '`' at 0x5F where TS 23.038 has '§': leave that one out.
COMPARABLE = sms.BASIC.replace("\x1b", "").replace("§", "") + "[]{}€^"


def test_our_table_has_the_ts_23_038_section_sign():
    assert sms.to_septets("§") == [0x5F]


@settings(max_examples=40, deadline=None)
@given(st.text(alphabet=COMPARABLE, max_size=500), st.integers(0, 255))
def test_submit_pdus_agree_with_python_gsmmodem(text, ref):
    ours = pdu.encode_submit("+46701234567", text, reference=ref)
    theirs = gsm.encodeSmsSubmitPdu("+46701234567", text, reference=ref, requestStatusReport=False)
    assert len(ours) == len(theirs) == sms.parts_needed(text)
    for o, t in zip(ours, theirs, strict=True):
        # identical except TP-MR (octet 2), which python-gsmmodem fills with the reference
        assert o[:4] + o[6:] == str(t)[:4] + str(t)[6:]
        assert pdu.tpdu_length(o) == t.tpduLength
        assert gsm.decodeSmsPdu(o)["text"] == pdu.decode_pdu(str(t)).text
    texts = [pdu.decode_pdu(o) for o in ours]
    r = pdu.Reassembler()
    assert [r.add(x) for x in texts][-1] == text


def test_deliver_pdu_decodes_with_python_gsmmodem():
    ts = datetime(2026, 1, 5, 10, 0, 30, tzinfo=timezone(timedelta(hours=-3)))
    text = "x" * 200
    pdus = pdu.encode_deliver("+4670999", text, timestamp=ts, reference=9)
    assert len(pdus) == 2
    decoded = [gsm.decodeSmsPdu(x) for x in pdus]
    assert {d["type"] for d in decoded} == {"SMS-DELIVER"}
    assert "".join(d["text"] for d in decoded) == text
    assert decoded[0]["number"] == "+4670999"
    assert decoded[0]["time"].astimezone(UTC) == ts.astimezone(UTC)
    ours = pdu.decode_pdu(pdus[1])
    assert ours.concat == pdu.Concat(9, 2, 2) and ours.timestamp == ts


@pytest.mark.parametrize("bad", ["zz", "00", "0001000B91", "0004"])
def test_bad_pdus_raise_pdu_error(bad):
    with pytest.raises(pdu.PduError):
        pdu.decode_pdu(bad)


def test_documented_multi_part_capacities():
    assert p.max_plaintext_for(2 * sms.PART_SEPTETS) == 215
    assert p.max_plaintext_for(3 * sms.PART_SEPTETS) == 330
    two = p.encrypt(KEY, "y" * 215, counter=1, direction=p.Direction.COMMAND)
    three = p.encrypt(KEY, "y" * 216, counter=1, direction=p.Direction.COMMAND)
    assert (sms.parts_needed(two), sms.parts_needed(three)) == (2, 3)
