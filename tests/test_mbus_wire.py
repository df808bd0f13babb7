"""Wire timing and the UART/wired-AND collision model (simulator/mbus/wire.py)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.mbus.wire import (
    CHAR_BITS,
    Transmission,
    char_bits,
    char_time,
    frame_time,
    peak_space_current,
    response_window,
    uart_decode,
)


def test_character_and_frame_times_8e1():
    assert CHAR_BITS == 11
    assert char_time(2400) == pytest.approx(4.5833e-3, rel=1e-4)
    assert char_time(300) == pytest.approx(36.667e-3, rel=1e-4)
    assert char_time(9600) == pytest.approx(1.1458e-3, rel=1e-4)
    # PROTOCOL.md §6: 27 bytes = 297 bits: 123.8 ms at 2400, 30.9 ms at 9600, 990 ms at 300.
    assert frame_time(27, 2400) == pytest.approx(0.12375)
    assert frame_time(27, 9600) == pytest.approx(0.0309375)
    assert frame_time(27, 300) == pytest.approx(0.990)


@pytest.mark.parametrize(
    ("baud", "lo_ms", "hi_ms"), [(300, 36.7, 1150.0), (2400, 4.58, 187.5), (9600, 1.15, 84.4)]
)
def test_response_window_matches_protocol_sheet(baud, lo_ms, hi_ms):
    lo, hi = response_window(baud)
    assert lo * 1000 == pytest.approx(lo_ms, abs=0.04)
    assert hi * 1000 == pytest.approx(hi_ms, abs=0.05)


def test_char_bits_start_lsb_first_even_parity_stop():
    # 0xE5 = 1110 0101: LSB first 1,0,1,0,0,1,1,1 ; five ones -> parity bit 1
    assert char_bits(0xE5) == (0, 1, 0, 1, 0, 0, 1, 1, 1, 1, 1)
    assert char_bits(0x00) == (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1)
    assert char_bits(0x03)[9] == 0  # two ones: even already


@settings(max_examples=60, deadline=None)
@given(
    st.binary(min_size=1, max_size=40),
    st.sampled_from([300, 2400, 9600]),
    st.floats(min_value=0, max_value=5),
)
def test_single_sender_decodes_to_its_bytes_via_bit_sampling(data, baud, start):
    tx = Transmission(start, data, baud)
    # Force the bit-sampling path (a second, silent sender never drives the line).
    silent = Transmission(start + 100, b"", baud)
    chars = uart_decode([tx, silent], baud)
    assert bytes(c.value for c in chars) == data
    assert all(c.ok for c in chars)
    assert chars[0].t == pytest.approx(start)


def test_two_aligned_identical_e5_decode_as_one_clean_e5():
    a = Transmission(1.0, b"\xe5", 2400, "a")
    b = Transmission(1.0, b"\xe5", 2400, "b")
    chars = uart_decode([a, b], 2400)
    assert [c.value for c in chars] == [0xE5]
    assert chars[0].ok
    # ... but the summed space current betrays them: 2 x 15 mA > 25 mA collision threshold.
    assert peak_space_current([a, b]) == pytest.approx(30.0)
    assert peak_space_current([a]) == pytest.approx(15.0)


def test_wired_and_of_different_bytes_gives_uart_errors_or_wrong_values():
    # Same start, different bytes: the line is the AND of both bit streams.
    a = Transmission(0.0, b"\x68\x15", 2400, "a")
    b = Transmission(0.0, b"\x10\x5b", 2400, "b")
    chars = uart_decode([a, b], 2400)
    assert [c.value for c in chars] == [0x68 & 0x10, 0x15 & 0x5B]
    # 0x68 & 0x10 = 0x00 with parity bit AND(1, 1) = 1 -> parity error (even parity of 0 is 0)
    assert chars[0].parity_error


def test_offset_collision_produces_framing_or_parity_errors():
    bt = 1 / 2400
    a = Transmission(0.0, bytes(range(0x40, 0x60)), 2400, "a")
    b = Transmission(4.5 * bt, bytes(range(0x80, 0xA0)), 2400, "b")
    chars = uart_decode([a, b], 2400)
    assert any(not c.ok for c in chars)
    assert bytes(c.value for c in chars) != a.data


def test_bit_flip_gives_parity_error():
    tx = Transmission(0.0, b"\x12\x34", 2400, flips=frozenset({(1, 3)}))
    chars = uart_decode([tx], 2400)
    assert chars[0].ok and chars[0].value == 0x12
    assert chars[1].parity_error and chars[1].value == 0x34 ^ (1 << 2)


def test_stop_bit_flip_gives_framing_error():
    tx = Transmission(0.0, b"\x12\x34", 2400, flips=frozenset({(0, 10)}))
    chars = uart_decode([tx], 2400)
    assert chars[0].framing_error


def test_listening_late_loses_the_first_bits():
    bt = 1 / 2400
    tx = Transmission(0.0, b"\xe5", 2400)
    chars = uart_decode([tx], 2400, since=3 * bt)
    assert bytes(c.value for c in chars) != b"\xe5"


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.binary(min_size=1, max_size=12), st.floats(min_value=0, max_value=0.05)),
        min_size=2,
        max_size=4,
    )
)
def test_any_overlap_decodes_to_a_bounded_list_of_chars(replies):
    txs = [Transmission(start, data, 2400, f"s{i}") for i, (data, start) in enumerate(replies)]
    chars = uart_decode(txs, 2400)
    # the line has at most as many falling edges as all senders together
    assert len(chars) <= sum(len(t.edges()) for t in txs)
    assert all(0 <= c.value <= 255 for c in chars)
    assert [c.t for c in chars] == sorted(c.t for c in chars)
    # every accepted character starts no earlier than the first sender
    assert not chars or chars[0].t >= min(t.start for t in txs) - 1e-12
