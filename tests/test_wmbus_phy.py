"""Physical coding (3-of-6, Manchester, NRZ), preamble/sync and time on air (PROTOCOL.md §5.1)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.wmbus.frame import CodingError, FrameError, WMBusError
from simulator.wmbus.phy import (
    THREE_OF_SIX,
    decode_3of6,
    decode_transmission,
    encode_3of6,
    encode_transmission,
    manchester_decode,
    manchester_encode,
    nrz_decode,
    nrz_encode,
    pack_chips,
    preamble,
    time_on_air,
)


def test_three_of_six_table_is_the_published_one() -> None:
    # PROTOCOL.md §5.1 table, from rtl-wmbus include/mode_t_util.h [R1].
    assert [f"{c:02X}" for c in THREE_OF_SIX] == [
        "16",
        "0D",
        "0E",
        "0B",
        "1C",
        "19",
        "1A",
        "13",
        "2C",
        "25",
        "26",
        "23",
        "34",
        "31",
        "32",
        "29",
    ]
    # Every code word has exactly three 1 chips, and they are distinct ("3 out of 6").
    assert all(bin(c).count("1") == 3 for c in THREE_OF_SIX)
    assert len(set(THREE_OF_SIX)) == 16


def test_three_of_six_example_byte() -> None:
    # 0x44 (SND_NR): nibble 4 -> 0x1C = 011100, twice; high nibble first.
    assert encode_3of6(b"\x44") == "011100011100"
    assert encode_3of6(b"\x0f") == "010110" + "101001"


def test_manchester_as_rtl_wmbus() -> None:
    # data bit 1 -> chips 01, bit 0 -> 10, MSB first (PROTOCOL.md §5.1 [R1]).
    assert manchester_encode(b"\x80") == "01" + "10" * 7
    assert manchester_encode(b"\x01") == "10" * 7 + "01"


@settings(max_examples=80, deadline=None)
@given(st.binary(max_size=64))
def test_codings_round_trip(data: bytes) -> None:
    assert decode_3of6(encode_3of6(data)) == data
    assert manchester_decode(manchester_encode(data)) == data
    assert nrz_decode(nrz_encode(data)) == data
    assert pack_chips(nrz_encode(data)) == data


@pytest.mark.parametrize("mode", ["S1", "S2", "T1", "C1"])
@pytest.mark.parametrize("fmt", ["A", "B"])
def test_transmission_round_trip(mode: str, fmt: str) -> None:
    raw = bytes(range(40))
    chips = encode_transmission(mode, raw, fmt)
    assert chips.startswith(preamble(mode, fmt))
    assert decode_transmission(mode, chips, fmt) == raw


def test_preambles_and_syncs() -> None:
    assert preamble("S1") == "01" * 279 + "000111011010010110"
    assert preamble("T1") == "01" * 19 + "0000111101"
    assert preamble("C1", "A").endswith(format(0x543D54CD, "032b"))
    assert preamble("C1", "B").endswith(format(0x543D543D, "032b"))


def test_invalid_code_word_says_which_chip() -> None:
    chips = encode_3of6(b"\x12\x34")
    bad = chips[:12] + "111111" + chips[18:]
    with pytest.raises(CodingError) as err:
        decode_3of6(bad)
    assert err.value.offset == 12
    with pytest.raises(CodingError) as err:
        manchester_decode("01" * 3 + "11" + "01" * 4)
    assert err.value.offset == 6


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet="01x", max_size=60))
def test_junk_chips_raise_only_coding_errors(chips: str) -> None:
    for decode in (decode_3of6, manchester_decode, nrz_decode):
        try:
            decode(chips)
        except CodingError:
            pass


def test_time_on_air_counts_preamble_sync_payload_postamble() -> None:
    # T1: (38 + 10 + 12 * 55 + 2) chips at 100 kchip/s.
    assert time_on_air("T1", 55, "A") == pytest.approx((38 + 10 + 660 + 2) / 100_000)
    # S1: (558 + 18 + 16 * 55 + 2) chips at 32.768 kchip/s.
    assert time_on_air("S1", 55, "A") == pytest.approx((558 + 18 + 880 + 2) / 32_768)
    # C1: (32 + 32 + 8 * 55) chips at 100 kchip/s, no postamble.
    assert time_on_air("C1", 55, "B") == pytest.approx((64 + 440) / 100_000)
    # T1 carries 66.7 kbit/s of data (RADIO-NBIOT.md §6.3): 1000 bytes take 120 ms + overhead.
    extra = time_on_air("T1", 1000) - time_on_air("T1", 0)
    assert 8000 / extra == pytest.approx(66_666.7, rel=1e-4)


def test_time_on_air_matches_chip_count_of_a_real_transmission() -> None:
    raw = bytes(64)
    for mode, rate in (("T1", 100_000), ("S1", 32_768), ("C1", 100_000)):
        assert time_on_air(mode, len(raw)) == pytest.approx(
            len(encode_transmission(mode, raw)) / rate
        )


@pytest.mark.parametrize("args", [("X1", 10, "A"), ("T1", -1, "A"), ("C1", 10, "Z")])
def test_time_on_air_bad_arguments(args) -> None:
    with pytest.raises(WMBusError):
        time_on_air(*args)
    with pytest.raises(FrameError):
        time_on_air(*args)


def test_radio_anchor_7_t1_frame_time() -> None:
    # RADIO-NBIOT.md §8 anchor 7: a 50-byte T1 frame takes about 6.48 ms (3-of-6 at 100 kchip/s
    # plus preamble and sync, no postamble counted there).
    assert time_on_air("T1", 50, "A", postamble_chips=0) == pytest.approx(6.48e-3)
    assert time_on_air("T1", 50, "A") == pytest.approx(6.50e-3)  # with the 2-chip postamble
