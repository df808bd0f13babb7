"""GPRS Timer 2 / 3 and NB-S1 eDRX codecs against the published vectors (RADIO-NBIOT §3, §8)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.nbiot import timers


@pytest.mark.parametrize(
    ("bits", "seconds"),
    [
        ("00100001", 3600),  # BC66 example, "1 hour"
        ("00101100", 43200),  # NCS overlay "periodic TAU of 12 hours"
        ("01000111", 252000),  # 7 x 10 h = 70 h (thesis example)
        ("11011111", 35_712_000),  # 31 x 320 h: the maximum
        ("01100001", 2),
        ("11100101", None),  # unit 111: deactivated
    ],
)
def test_t3412_extended_vectors(bits, seconds):
    assert timers.decode_t3412_ext(bits) == seconds


@pytest.mark.parametrize(
    ("bits", "seconds"),
    [
        ("00000101", 10),  # NCS "Requested Active Time 10 seconds"
        ("01000001", 360),  # deci-hour is 360 s, not 600 s
        ("00100100", 240),  # Telit AT+CPSMS doc example "4 minutes"
        ("01011111", 11160),  # 31 x 6 min: the maximum
        ("01100011", 180),  # codes 011..110 read as 1 min
        ("11100000", None),
    ],
)
def test_t3324_vectors(bits, seconds):
    assert timers.decode_t3324(bits) == seconds


def test_maxima_and_lookup_tables_match_the_nrf_tables():
    assert timers.T3412_EXT_MAX_S == 35_712_000
    assert timers.T3324_MAX_S == 11_160
    assert timers.GPRS_TIMER3_UNITS == (600, 3600, 36000, 2, 30, 60, 1152000, None)
    assert timers.GPRS_TIMER2_UNITS[:3] == (2, 60, 360)


@settings(max_examples=200, deadline=None)
@given(unit=st.sampled_from([600, 3600, 36000, 2, 30, 60, 1152000]), value=st.integers(0, 31))
def test_t3412_round_trip(unit, value):
    seconds = unit * value
    assert timers.decode_t3412_ext(timers.encode_t3412_ext(seconds)) == seconds


@settings(max_examples=100, deadline=None)
@given(unit=st.sampled_from([2, 60, 360]), value=st.integers(0, 31))
def test_t3324_round_trip(unit, value):
    seconds = unit * value
    assert timers.decode_t3324(timers.encode_t3324(seconds)) == seconds


@pytest.mark.parametrize(
    ("call", "arg", "text"),
    [
        (timers.encode_t3324, 11161, "maximum"),
        (timers.encode_t3324, 7, "exact multiple"),
        (timers.encode_t3412_ext, 35_712_001, "maximum"),
        (timers.decode_t3324, "0010", "8 bits"),
        (timers.decode_t3412_ext, 300, "0..255"),
    ],
)
def test_timer_errors_say_what(call, arg, text):
    with pytest.raises(timers.TimerCodingError, match=text):
        call(arg)


def test_edrx_nbs1_cycles_and_paging_window():
    cycles = [
        timers.decode_edrx_nbs1(timers.encode_edrx_nbs1(c))[0] for c in timers.NBS1_EDRX_CYCLES_S
    ]
    assert cycles == [
        20.48,
        40.96,
        81.92,
        163.84,
        327.68,
        655.36,
        1310.72,
        2621.44,
        5242.88,
        10485.76,
    ]
    assert timers.decode_edrx_nbs1("11111111") == (10485.76, 40.96)
    assert timers.decode_edrx_nbs1(0x00) == (20.48, 2.56)  # unused code 0 -> 20.48 s
    with pytest.raises(timers.TimerCodingError, match="not one of"):
        timers.encode_edrx_nbs1(30.0)
    with pytest.raises(timers.TimerCodingError, match="2.56"):
        timers.encode_edrx_nbs1(20.48, 3.0)
