"""CRC-16/EN-13757 vectors and data link layer framing (format A/B block CRC placement)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.wmbus.crc import crc16_en13757
from simulator.wmbus.frame import (
    CRCError,
    FrameError,
    LinkHeader,
    WMBusError,
    add_crcs,
    decode_frame,
    encode_frame,
    on_air_length,
    strip_crcs,
)

# OMS Vol.2 Annex N examples as published in ISFH/ioBroker.wmbus lib/wmbus_decoder.test.js
# ("OMS Examples"): a format A frame with CRCs and a format B frame with CRCs.
OMS_A = bytes.fromhex(
    "2E44931578563412330333637A2A0020255923C95AAA26D1B2E7493BC2AD013EC4A6F6D3529B520EDFF0EA6DEFC9"
    "55B29D6D69EBF3EC8A"
)
OMS_B = bytes.fromhex("1444AE0C7856341201078C2027780B134365877AC5")


@pytest.mark.parametrize(
    ("data", "crc"),
    [
        (b"123456789", 0xC2B7),  # CRC catalogue check value (PROTOCOL.md §5.2)
        (bytes.fromhex("01FD1F01"), 0xCC22),  # wmbusmeters testinternals.cc [W3]
        (bytes.fromhex("EE449ACE010000802307"), 0xAABC),  # [W3] block 1 of a telegram
        (b"", 0xFFFF),  # init 0, final xor FFFF
    ],
)
def test_crc_vectors(data: bytes, crc: int) -> None:
    assert crc16_en13757(data) == crc


def test_crc_matches_bitwise_definition() -> None:
    # An independent, bit-at-a-time reading of "poly 3D65, init 0, no reflection, xor FFFF".
    def slow(data: bytes) -> int:
        reg = 0
        for byte in data:
            for i in range(7, -1, -1):
                bit = (byte >> i) & 1
                top = (reg >> 15) & 1
                reg = (reg << 1) & 0xFFFF
                if top ^ bit:
                    reg ^= 0x3D65
        return reg ^ 0xFFFF

    for data in (b"123456789", bytes(range(256)), b"\xff" * 33):
        assert crc16_en13757(data) == slow(data)


# Block 1 is exactly L C M A (10 bytes), then 16-byte blocks (wmbusmeters trimCRCsFrameFormatA,
# rtl-wmbus get_mode_a_tlg_length). PROTOCOL.md §5.2 lists 13 and 31 for L=0x0A and 0x1A; those
# put 11 bytes in block 1 and are off by one block (see docs/wmbus-codec.md). 0x2E -> 55 is the
# published OMS frame above, whose CRCs check.
@pytest.mark.parametrize(("l_field", "n"), [(0x0A, 15), (0x1A, 33), (0x2E, 55), (0x6E, 127)])
def test_format_a_on_air_lengths(l_field: int, n: int) -> None:
    assert on_air_length(l_field, "A") == n
    assert len(encode_frame(bytes(l_field), "A")) == n


def test_published_format_a_and_b_frames_check() -> None:
    fmt, payload = decode_frame(OMS_A)
    assert fmt == "A" and len(payload) == OMS_A[0]
    link = LinkHeader.from_payload(payload, OMS_A[0])
    assert (link.c, link.manufacturer, link.id, link.version, link.device_type) == (
        0x44,
        "ELS",
        12345678,
        0x33,
        0x03,
    )
    fmt, payload = decode_frame(OMS_B)
    assert fmt == "B"
    assert payload == OMS_B[1:-2]
    assert encode_frame(payload, "B") == OMS_B
    assert encode_frame(decode_frame(OMS_A)[1], "A") == OMS_A


def test_format_a_crc_positions() -> None:
    payload = bytes(range(1, 1 + 30))  # block 1 (L + 9) + 16 + 5
    raw = encode_frame(payload, "A")
    assert len(raw) == 1 + 30 + 6
    assert raw[10:12] == crc16_en13757(raw[:10]).to_bytes(2, "big")
    assert raw[28:30] == crc16_en13757(raw[12:28]).to_bytes(2, "big")
    assert raw[35:37] == crc16_en13757(raw[30:35]).to_bytes(2, "big")


def test_format_b_long_frame_has_two_crcs() -> None:
    payload = bytes(range(200))
    raw = encode_frame(payload, "B")
    assert raw[0] == 200 + 4 and len(raw) == raw[0] + 1
    assert raw[126:128] == crc16_en13757(raw[:126]).to_bytes(2, "big")
    assert raw[-2:] == crc16_en13757(raw[128:-2]).to_bytes(2, "big")


@settings(max_examples=60, deadline=None)
@given(fmt=st.sampled_from("AB"), data=st.data())
def test_round_trip_any_payload(fmt: str, data) -> None:
    n = data.draw(st.integers(9, 251 if fmt == "B" else 255))
    payload = data.draw(st.binary(min_size=n, max_size=n))
    raw = encode_frame(payload, fmt)
    assert len(raw) == on_air_length(n, fmt)
    assert decode_frame(raw, fmt, crc=True) == (fmt, payload)
    assert strip_crcs(raw, fmt) == bytes([n]) + payload
    assert add_crcs(bytes([n]) + payload, fmt) == raw
    # Without CRCs (the form rtl-wmbus prints) the payload comes back too.
    assert decode_frame(bytes([n]) + payload, crc=False)[1] == payload


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_any_flipped_bit_is_caught(data) -> None:
    fmt = data.draw(st.sampled_from("AB"))
    n = data.draw(st.integers(9, 200))
    raw = bytearray(encode_frame(data.draw(st.binary(min_size=n, max_size=n)), fmt))
    i = data.draw(st.integers(1, len(raw) - 1))  # keep L: a changed L is a length error
    raw[i] ^= 1 << data.draw(st.integers(0, 7))
    with pytest.raises(CRCError):
        strip_crcs(bytes(raw), fmt)


def test_crc_error_says_where() -> None:
    raw = bytearray(OMS_A)
    raw[20] ^= 0x01  # inside block 2 (bytes 12..27), its CRC sits at 28
    with pytest.raises(CRCError) as err:
        decode_frame(bytes(raw), "A", crc=True)
    assert err.value.offset == 28
    assert "offset 28" in str(err.value)


@pytest.mark.parametrize(
    "raw",
    [b"", b"\x05", b"\x0a" + b"\x00" * 3, bytes([0xFF]) + bytes(20), bytes([0x09]) + bytes(30)],
)
def test_bad_lengths_are_frame_errors(raw: bytes) -> None:
    with pytest.raises(FrameError):
        decode_frame(raw)


@settings(max_examples=200, deadline=None)
@given(
    st.binary(max_size=300), st.sampled_from([None, "A", "B"]), st.sampled_from([None, True, False])
)
def test_junk_raises_only_wmbus_error(raw: bytes, fmt, crc) -> None:
    try:
        decode_frame(raw, fmt, crc=crc)
    except WMBusError:
        pass


def test_encode_rejects_bad_arguments() -> None:
    with pytest.raises(FrameError):
        encode_frame(b"\x00" * 8, "A")
    with pytest.raises(FrameError):
        encode_frame(b"\x00" * 252, "B")
    with pytest.raises(FrameError):
        encode_frame(b"\x00" * 20, "C")
    with pytest.raises(FrameError):
        LinkHeader(0, 0x44, "E1S", 1, 1, 1).to_bytes()


def test_link_header_round_trip_and_non_bcd_id() -> None:
    link = LinkHeader(0, 0x44, "KAM", 76348799, 0x1B, 0x16)
    assert link.to_bytes().hex() == "442d2c998734761b16"
    assert LinkHeader.from_payload(link.to_bytes()) == link
    # a non-BCD ID (several manufacturers use hex IDs) is accepted, shown as decoders show it
    # (hex digits of the 4 ID bytes, MSB first) and re-encoded from the received bytes
    raw = bytes.fromhex("442d2c9987347A1b16")
    odd = LinkHeader.from_payload(raw)
    assert odd.id is None and odd.id_text == "7A348799"
    assert odd.to_bytes() == raw
    assert odd.address_key != link.address_key
    # building one still needs an ID in range
    with pytest.raises(FrameError, match="ID must be"):
        LinkHeader(0, 0x44, "KAM", None, 0x1B, 0x16).to_bytes()
