"""EN 13757-2 link layer: frame parse/build, checks with offsets, junk never crashes."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulator.mbus.errors import FrameError, MBusError
from simulator.mbus.frames import (
    ACK,
    ADDR_NETWORK,
    REQ_UD1,
    REQ_UD2,
    RSP_UD,
    SND_NKE,
    SND_UD,
    ControlFrame,
    LongFrame,
    ShortFrame,
    SingleChar,
    checksum,
    describe,
    frame_length,
    parse_body,
    parse_frame,
    split_frames,
)

# PROTOCOL.md §6 worked example (checked there against libmbus's mbus_parse_hex).
WORKED = bytes.fromhex("68151568080172785634129615010400000000040639300000B216")


def h(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


# --- published byte sequences (PROTOCOL.md §2.6, §3) ---------------------------------------


@pytest.mark.parametrize(
    ("frame", "wire"),
    [
        (SingleChar(), "E5"),
        (ShortFrame(SND_NKE, 1), "10 40 01 41 16"),
        (ShortFrame(REQ_UD2, 1), "10 5B 01 5C 16"),
        (ShortFrame(0x7B, 1), "10 7B 01 7C 16"),
        (ShortFrame(SND_NKE, 0xFE), "10 40 FE 3E 16"),
        (ShortFrame(SND_NKE, ADDR_NETWORK), "10 40 FD 3D 16"),
        (ControlFrame(SND_UD, 0xFE, 0xBD), "68 03 03 68 53 FE BD 0E 16"),
        (LongFrame(SND_UD, 0xFE, 0x50, b"\x10"), "68 04 04 68 53 FE 50 10 B1 16"),
        (
            LongFrame(SND_UD, 0xFD, 0x52, h("78 56 34 12 96 15 01 04")),
            "68 0B 0B 68 53 FD 52 78 56 34 12 96 15 01 04 66 16",
        ),
        (
            LongFrame(SND_UD, 0xFD, 0x52, b"\xff" * 8),
            "68 0B 0B 68 53 FD 52 FF FF FF FF FF FF FF FF 9A 16",
        ),
    ],
)
def test_published_frames_build_and_parse(frame, wire):
    assert frame.to_bytes() == h(wire)
    assert parse_frame(h(wire)) == frame


def test_worked_example_parses():
    f = parse_frame(WORKED)
    assert isinstance(f, LongFrame)
    assert (f.c, f.a, f.ci, len(f.data)) == (RSP_UD, 1, 0x72, 18)
    assert f.to_bytes() == WORKED
    assert checksum(WORKED[4:-2]) == 0xB2


@pytest.mark.parametrize("c", [0x43, 0x53, 0x63, 0x73])
def test_all_snd_ud_variants_are_snd_ud(c):
    f = parse_frame(LongFrame(c, 1, 0x51, b"\x01\x7a\x05").to_bytes())
    assert f.function == SND_UD and f.name == "SND_UD"
    assert f.fcb == bool(c & 0x20) and f.fcv == bool(c & 0x10)


@pytest.mark.parametrize(
    "c,func",
    [
        (0x4B, REQ_UD2),
        (0x5B, REQ_UD2),
        (0x6B, REQ_UD2),
        (0x7B, REQ_UD2),
        (0x5A, REQ_UD1),
        (0x7A, REQ_UD1),
        (0x40, SND_NKE),
        (0x50, SND_NKE),
    ],
)
def test_short_frame_function_ignores_fcb_fcv(c, func):
    f = parse_frame(ShortFrame(c, 7).to_bytes())
    assert f.function == func
    assert f.fcb == bool(c & 0x20)


@pytest.mark.parametrize("c", [0x08, 0x18, 0x28, 0x38])
def test_rsp_ud_variants(c):
    f = LongFrame(c, 1, 0x72, WORKED[7:-2])
    assert f.function == RSP_UD and f.name == "RSP_UD"
    assert not f.fcb and not f.fcv  # these bits are ACD/DFC in the reply direction
    assert f.acd == bool(c & 0x20) and f.dfc == bool(c & 0x10)


def test_empty_long_frame_is_a_control_frame():
    assert parse_frame(LongFrame(0x08, 1, 0x70).to_bytes()) == ControlFrame(0x08, 1, 0x70)


# --- errors with offsets ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("wire", "offset", "words"),
    [
        ("", 0, "empty"),
        ("E5 E5", 1, "trailing"),
        ("10 40 01 42 16", 3, "checksum"),
        ("10 40 01 41 17", 4, "stop"),
        ("10 40 01", 3, "truncated"),
        ("68 15 16 68", 2, "L-fields differ"),
        ("68 15 15 67", 3, "second start"),
        ("68 02 02 68 08 01 09 16", 1, "below 3"),
        ("AA", 0, "start byte"),
        ("68 03 03 68 53 FE BD 0F 16", 7, "checksum"),
        ("68 03 03 68 53 FE BD 0E 15", 8, "stop"),
        ("68 03 03 68 53 FE BD 0E", 8, "truncated"),
        ("68 03 03 68 53 FE BD 0E 16 00", 9, "trailing"),
    ],
)
def test_link_errors_report_offset(wire, offset, words):
    with pytest.raises(FrameError) as ei:
        parse_frame(h(wire))
    assert ei.value.offset == offset
    assert words in ei.value.reason
    assert str(ei.value) == f"offset {offset}: {ei.value.reason}"


def test_worked_example_bad_checksum_offset():
    bad = WORKED[:-2] + b"\xb3\x16"
    with pytest.raises(FrameError, match=r"offset 25: checksum B3 != computed B2"):
        parse_frame(bad)


def test_frame_length_streaming():
    assert frame_length(b"") is None
    assert frame_length(b"\xe5") == 1
    assert frame_length(b"\x10") == 5
    assert frame_length(b"\x68") is None
    assert frame_length(b"\x68\x15") is None
    assert frame_length(b"\x68\x15\x15") == 27
    assert frame_length(WORKED) == 27
    with pytest.raises(FrameError) as ei:
        frame_length(b"\x68\x15\x14")
    assert ei.value.offset == 2
    with pytest.raises(FrameError):
        frame_length(b"\x00")


def test_split_frames_and_offsets():
    buf = b"\xe5" + WORKED + ShortFrame(SND_NKE, 3).to_bytes()
    frames = split_frames(buf)
    assert [type(f).__name__ for f in frames] == ["SingleChar", "LongFrame", "ShortFrame"]
    bad = b"\xe5" + WORKED[:-2] + b"\x00\x16"
    with pytest.raises(FrameError) as ei:
        split_frames(bad)
    assert ei.value.offset == 1 + 25


def test_parse_body_and_limits():
    body = WORKED[4:-2]
    assert parse_body(body) == parse_frame(WORKED)
    with pytest.raises(FrameError):
        parse_body(b"\x08\x01")
    with pytest.raises(FrameError, match="at most 252"):
        LongFrame(0x08, 1, 0x72, bytes(253))
    with pytest.raises(FrameError):
        ShortFrame(256, 0)
    with pytest.raises(FrameError):
        SingleChar(0x16)


def test_describe_examples():
    assert describe(SingleChar()) == "E5"
    assert describe(ShortFrame(SND_NKE, 1)) == "SND_NKE a=1"
    assert describe(ShortFrame(0x7B, 253)) == "REQ_UD2 a=253 FCB=1"
    assert describe(ShortFrame(0x5B, 253)) == "REQ_UD2 a=253 FCB=0"
    sel = parse_frame(h("68 0B 0B 68 53 FD 52 78 56 34 12 96 15 01 04 66 16"))
    assert describe(sel) == "SND_UD a=253 CI=52 select 12345678 ELV v1 m04"
    wild = LongFrame(SND_UD, 0xFD, 0x52, b"\xff" * 8)
    assert describe(wild) == "SND_UD a=253 CI=52 select mask FFFFFFFFFFFFFFFF"


# --- properties ---------------------------------------------------------------------------

byte = st.integers(0, 255)
frames = st.one_of(
    st.just(SingleChar()),
    st.builds(ShortFrame, byte, byte),
    st.builds(ControlFrame, byte, byte, byte),
    st.builds(LongFrame, byte, byte, byte, st.binary(min_size=1, max_size=252)),
)


@given(frames)
@settings(max_examples=200)
def test_frame_round_trip(frame):
    wire = frame.to_bytes()
    assert frame_length(wire) == len(wire)
    assert parse_frame(wire) == frame
    assert isinstance(describe(frame), str)


@given(st.binary(max_size=300))
@settings(max_examples=300)
def test_junk_only_raises_mbus_errors(buf):
    try:
        f = parse_frame(buf)
    except MBusError:
        return
    assert f.to_bytes() == buf


@given(frames.filter(lambda f: not isinstance(f, SingleChar)), st.data())
@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
def test_single_byte_corruption_is_detected_or_harmless(frame, data):
    wire = bytearray(frame.to_bytes())
    pos = data.draw(st.integers(0, len(wire) - 1))
    wire[pos] ^= data.draw(st.integers(1, 255))
    try:
        parsed = parse_frame(bytes(wire))
    except FrameError as exc:
        assert exc.offset is not None and 0 <= exc.offset <= len(wire)
        return
    # a corrupted byte that still parses must have changed only into another valid frame
    assert parsed.to_bytes() == bytes(wire)
    assert parsed != frame


def test_ack_constant():
    assert SingleChar().to_bytes() == bytes([ACK])
