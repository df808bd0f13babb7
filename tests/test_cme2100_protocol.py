"""CMe2100 SMS encryption protocol v1: spec vectors, an independent implementation, rejections."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.gateways.cme2100 import protocol as p
from simulator.gateways.cme2100.sender import CommandSender

ROOT = Path(__file__).resolve().parent.parent
VECTORS = json.loads((ROOT / "fixtures" / "cme2100" / "vectors.json").read_text("utf-8"))
KEY = "Pa55-word_2026!x"
OTHER = "Other-key_2026!y"


# -- an independent implementation, written from docs/cme2100-sms-protocol.md only ----------
def hkdf_sha256(ikm: bytes, salt: bytes, info: bytes, length: int) -> bytes:
    """RFC 5869 with the standard library's hmac (not cryptography's HKDF)."""
    prk = hmac.new(salt, ikm, hashlib.sha256).digest()
    okm, block = b"", b""
    for i in range(1, -(-length // 32) + 1):
        block = hmac.new(prk, block + info + bytes([i]), hashlib.sha256).digest()
        okm += block
    return okm[:length]


def aes_ctr_by_hand(key: bytes, initial_block: bytes, data: bytes) -> bytes:
    """AES-CTR built from single-block AES-ECB: counter blocks incremented as 128-bit integers."""
    ecb = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    start = int.from_bytes(initial_block, "big")
    stream = b"".join(
        ecb.update(((start + i) % 2**128).to_bytes(16, "big")) for i in range(-(-len(data) // 16))
    )
    return bytes(a ^ b for a, b in zip(data, stream, strict=False))


def independent_encrypt(key: str, plaintext: bytes, counter: int, direction: int) -> str:
    header = bytes([1, direction]) + counter.to_bytes(4, "big")
    okm = hkdf_sha256(key.encode("ascii"), b"CMe2100-SMS-v1", b"CMe2100 SMS v1 keys" + header, 48)
    ct = aes_ctr_by_hand(okm[:16], header + bytes(10), plaintext)
    tag = hmac.new(okm[16:], header + ct, hashlib.sha256).digest()[:8]
    return base64.urlsafe_b64encode(header + ct + tag).decode().rstrip("=")


def test_independent_hkdf_matches_rfc5869_case_1():
    okm = hkdf_sha256(
        bytes.fromhex("0b" * 22),
        bytes.fromhex("000102030405060708090a0b0c"),
        bytes.fromhex("f0f1f2f3f4f5f6f7f8f9"),
        42,
    )
    assert okm.hex() == (
        "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
    )


def test_at_least_five_vectors_cover_both_directions():
    vs = VECTORS["vectors"]
    assert len(vs) >= 5
    assert {v["direction"] for v in vs} == {0, 1}


@pytest.mark.parametrize("v", VECTORS["vectors"], ids=lambda v: v["name"])
def test_spec_vector(v):
    pt = v["plaintext"].encode("utf-8")
    assert pt.hex() == v["plaintext_hex"]
    # the independent implementation reproduces the published SMS text ...
    assert independent_encrypt(v["key"], pt, v["counter"], v["direction"]) == v["sms"]
    # ... and so does the module, intermediate values included
    direction = p.Direction(v["direction"])
    header = p.header_bytes(direction, v["counter"])
    aes_key, mac_key = p.derive_message_keys(v["key"].encode(), header)
    assert (header.hex(), aes_key.hex(), mac_key.hex()) == (
        v["header_hex"],
        v["aes_key_hex"],
        v["mac_key_hex"],
    )
    assert (
        p.encrypt(v["key"], v["plaintext"], counter=v["counter"], direction=direction) == v["sms"]
    )
    msg = p.decrypt(v["key"], v["sms"], direction=direction)
    assert (msg.text, msg.counter) == (v["plaintext"], v["counter"])
    assert len(v["sms"]) == v["sms_chars"] == p.text_length(len(pt))


@settings(max_examples=60, deadline=None)
@given(
    plaintext=st.text(max_size=300),
    counter=st.integers(1, p.COUNTER_MAX),
    direction=st.sampled_from(list(p.Direction)),
)
def test_round_trip_and_agreement_with_independent_code(plaintext, counter, direction):
    text = p.encrypt(KEY, plaintext, counter=counter, direction=direction)
    assert text == independent_encrypt(KEY, plaintext.encode(), counter, int(direction))
    assert p.decrypt(KEY, text, direction=direction).text == plaintext


def test_sender_and_gateway_directions_do_not_mix():
    text = p.encrypt(KEY, "OK", counter=1, direction=p.Direction.RESPONSE)
    with pytest.raises(p.SmsProtocolError) as e:
        p.decrypt(KEY, text, direction=p.Direction.COMMAND)
    assert e.value.reason == "bad_direction" and e.value.offset == 1


# -- rejections -----------------------------------------------------------------------------
GOOD = p.encrypt(KEY, "install 3", counter=5, direction=p.Direction.COMMAND)
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
# 31 characters: the last one carries 2 unused bits; setting one gives the same bytes to a
# lenient decoder, so only a canonical-form check rejects it.
assert len(GOOD) % 4 == 3
NON_CANONICAL = GOOD[:-1] + ALPHABET[ALPHABET.index(GOOD[-1]) ^ 1]


@pytest.mark.parametrize(
    ("text", "reason", "offset"),
    [
        ("", "empty", None),
        ("install 3", "not_base64url", 7),
        (GOOD[:10] + "=" + GOOD[11:], "not_base64url", 10),
        (GOOD + "=", "not_base64url", len(GOOD)),
        (GOOD[:16], "truncated", 12),
        (NON_CANONICAL, "non_canonical", len(GOOD) - 1),
        ("A" * 21, "non_canonical", 20),
        (
            base64.urlsafe_b64encode(b"\x02" + base64.urlsafe_b64decode(GOOD + "=")[1:])
            .decode()
            .rstrip("="),
            "bad_version",
            0,
        ),
        (p.b64url_encode(bytes([1, 0, 0, 0, 0, 0]) + bytes(8)), "bad_counter", 2),
    ],
)
def test_malformed_text_is_rejected_with_reason_and_offset(text, reason, offset):
    with pytest.raises(p.SmsProtocolError) as e:
        p.decrypt(KEY, text, direction=p.Direction.COMMAND)
    assert e.value.reason == reason
    assert e.value.offset == offset
    assert str(e.value).startswith(reason + ":")


def test_wrong_key_fails_the_tag():
    with pytest.raises(p.SmsProtocolError) as e:
        p.decrypt(OTHER, GOOD, direction=p.Direction.COMMAND)
    assert e.value.reason == "bad_tag"


def test_replay_guard_rejects_old_counters_and_allows_gaps():
    guard = p.ReplayGuard()
    m5 = p.decrypt(KEY, GOOD, direction=p.Direction.COMMAND)
    guard.accept(KEY, m5)
    for counter in (5, 4, 1):
        old = p.decrypt(
            KEY,
            p.encrypt(KEY, "x", counter=counter, direction=p.Direction.COMMAND),
            direction=p.Direction.COMMAND,
        )
        with pytest.raises(p.SmsProtocolError) as e:
            guard.accept(KEY, old)
        assert e.value.reason == "replay"
    guard.accept(
        KEY,
        p.decrypt(
            KEY,
            p.encrypt(KEY, "x", counter=9, direction=p.Direction.COMMAND),
            direction=p.Direction.COMMAND,
        ),
    )
    assert guard.last(KEY, p.Direction.COMMAND) == 9
    assert guard.last(OTHER, p.Direction.COMMAND) == 0  # per key


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_flipping_any_bit_of_a_valid_sms_gets_it_rejected(data):
    raw = bytearray(p.b64url_decode(GOOD))
    bit = data.draw(st.integers(0, len(raw) * 8 - 1))
    raw[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(p.SmsProtocolError) as e:
        p.decrypt(KEY, p.b64url_encode(bytes(raw)), direction=p.Direction.COMMAND)
    assert e.value.reason in {"bad_version", "bad_direction", "bad_counter", "bad_tag"}


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_substituting_any_character_gets_it_rejected(data):
    i = data.draw(st.integers(0, len(GOOD) - 1))
    ch = data.draw(st.sampled_from(ALPHABET + " =+/.é").filter(lambda c: c != GOOD[i]))
    with pytest.raises(p.SmsProtocolError):
        p.decrypt(KEY, GOOD[:i] + ch + GOOD[i + 1 :], direction=p.Direction.COMMAND)


@pytest.mark.parametrize("key", ["short", "x" * 17, "with space 12345", "ümlaut_key_12345", ""])
def test_bad_keys_raise_one_typed_error(key):
    with pytest.raises(p.KeyFormatError):
        p.encrypt(key, "x", counter=1, direction=p.Direction.COMMAND)


def test_counter_range_is_enforced():
    for counter in (0, p.COUNTER_MAX + 1):
        with pytest.raises(ValueError):
            p.encrypt(KEY, "x", counter=counter, direction=p.Direction.COMMAND)


def test_command_sender_counts_switches_keys_and_rejects_replayed_responses():
    s = CommandSender(KEY)
    first, second = s.encrypt_command("a"), s.encrypt_command("b")
    assert [p.parse_text(t).counter for t in (first, second)] == [1, 2]
    s.switch_key(OTHER)
    assert p.parse_text(s.encrypt_command("c")).counter == 1
    s.switch_key(KEY)
    assert p.parse_text(s.encrypt_command("d")).counter == 3
    resp = p.encrypt(KEY, "OK", counter=1, direction=p.Direction.RESPONSE)
    assert s.decrypt_response(resp) == "OK"
    with pytest.raises(p.SmsProtocolError) as e:
        s.decrypt_response(resp)
    assert e.value.reason == "replay"


WS = VECTORS["surrounding_whitespace"]
WS_VECTOR = next(v for v in VECTORS["vectors"] if v["name"] == WS["vector"])


@pytest.mark.parametrize("text", WS["tolerated"])
def test_surrounding_space_cr_lf_is_tolerated(text):
    """Spec §3 step 0 (issue 14): phones and SMS centres add line breaks around the text."""
    msg = p.decrypt(WS_VECTOR["key"], text, direction=p.Direction(WS_VECTOR["direction"]))
    assert msg.text == WS_VECTOR["plaintext"]


@pytest.mark.parametrize("case", WS["rejected"], ids=lambda c: repr(c["text"][:3]))
def test_other_whitespace_and_inner_line_breaks_are_rejected_with_their_offset(case):
    with pytest.raises(p.SmsProtocolError) as e:
        p.parse_text(case["text"])
    assert (e.value.reason, e.value.offset) == (case["reason"], case["offset"])


def test_the_gateway_applies_the_same_whitespace_rule():
    from simulator.core.world import World
    from simulator.gateways.cme2100.gateway import Cme2100

    world = World(1)
    gw = Cme2100(world, factory_key=WS_VECTOR["key"])
    gw.receive(WS["tolerated"][0])
    gw.receive(WS_VECTOR["sms"] + "\t")  # a tab is not tolerated: rejected, not accepted
    world.run(60)
    outcomes = [(e["outcome"], e.get("reason")) for e in gw.world.trace.select("sms")]
    assert outcomes[0] == ("accepted", None)
    assert outcomes[-1] == ("rejected", "not_base64url")
