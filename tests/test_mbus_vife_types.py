"""Date/time types J (time), K and L (EN 13757-3 Annex A / FD 72, 73) and the combinable VIFEs
applied to values (EN 13757-3 Table 15; docs/mbus-codec.md "Combinable VIFEs")."""

from __future__ import annotations

from datetime import datetime, time
from pathlib import Path

import pytest

from simulator.mbus.errors import RecordError
from simulator.mbus.records import DataRecord, decode_records
from simulator.mbus.telegram import decode_telegram, record_json

CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus" / "libmbus-frames"


def _one(hexstr: str) -> DataRecord:
    records, _, _ = decode_records(bytes.fromhex(hexstr.replace(" ", "")))
    assert len(records) == 1
    return records[0]


# --- type J -------------------------------------------------------------------------------


def test_type_j_time_of_day():
    # exmbus (Elixir) DataType.decode_type_j doctest: <<59, 48, 11>> is 11:48:59; here as the
    # data of VIF 6D (extended time point) with data field 3 (24 bit)
    r = _one("03 6D 3B 30 0B")
    assert (r.quantity, r.value, r.unit, r.invalid) == ("date_time", time(11, 48, 59), "", None)
    assert record_json(r)["value"] == "11:48:59"


def test_type_j_out_of_range_is_invalid_not_an_error():
    r = _one("03 6D 3B 30 19")  # hour 25
    assert r.value is None and r.invalid == "invalid date/time" and r.data == b"\x3b\x30\x19"


def test_type_j_built_from_a_time():
    r = DataRecord.from_value(0x6D, time(23, 5, 7), data_field=0x3)
    assert r.to_bytes() == bytes.fromhex("036D070517")
    assert r.value == time(23, 5, 7)
    with pytest.raises(RecordError, match="type J"):
        DataRecord.from_value(0x6D, time(23, 5, 7), data_field=0x4)


# --- types K and L: named, bytes kept -------------------------------------------------------


def test_types_k_and_l_are_named_and_kept_as_bytes():
    # wmbusmeters' driver reads "01FD73" (listening window management, type L) as one byte
    k = _one("04 FD 72 01 02 03 04")
    lw = _one("01 FD 73 05")
    assert (k.quantity, k.value) == ("daylight_savings", bytes([1, 2, 3, 4]))
    assert (lw.quantity, lw.value) == ("listening_window_management", b"\x05")


def test_type_k_in_mode_2_is_reversed_like_any_data_field_and_keeps_the_wire_bytes():
    # No source gives type K's layout (docs/mbus-codec.md "Types K and L: not decoded"): in mode
    # 2 it is treated as one multi-byte field, so value is in mode 1 order, data as sent.
    (k,), _, _ = decode_records(bytes.fromhex("04FD7201020304"), msb_first=True)
    assert (k.quantity, k.value, k.data) == (
        "daylight_savings",
        b"\x04\x03\x02\x01",
        b"\x01\x02\x03\x04",
    )


# --- combinable VIFEs applied ---------------------------------------------------------------


def test_multiplicative_correction_factor_scales():
    # VIF 06 (kWh) + VIFE 74 (x 10^-2): 0x64 = 100 -> 1 kWh = 1000 Wh
    assert _one("04 86 74 64000000").value == 1000


def test_additive_correction_constant_adds_to_the_value():
    # VIF 06 (kWh) + VIFE 7B (additive 10^(3-3) x unit of VIF = +1 kWh): 100 kWh + 1 kWh
    r = _one("04 86 7B 64000000")
    assert (r.value, r.unit) == (101_000, "Wh")
    # 79: + 10^-2 kWh = 10 Wh
    assert _one("04 86 79 64000000").value == 100_010
    built = DataRecord.from_value(0x06, 101_000, vife=(0x7B,))
    assert built.data == bytes.fromhex("64000000")


def test_per_time_and_per_quantity_change_the_unit():
    r = _one("04 93 22 E8030000")  # litres + per hour: 1000 l/h
    assert (r.quantity, r.value, r.unit) == ("volume", 1.0, "m3/h")
    assert _one("04 86 2C 05000000").unit == "Wh/l"  # per litre
    assert _one("04 86 36 05000000").unit == "Wh*s"  # multiplied by s


def test_increment_per_pulse():
    r = _one("04 93 28 0A000000")  # 10 litres per input pulse
    assert (r.value, r.unit) == (0.01, "m3/pulse")


def test_number_of_exceeds_is_a_count():
    r = _one("02 BB 41 0700")  # volume flow + number of exceeds of lower limit
    assert (r.quantity, r.value, r.unit) == ("volume_flow", 7, "")


def test_duration_of_limit_exceed_in_seconds():
    # VIFE 52: duration of lower limit exceed, first, bb = 2 (hours): 3 h = 10800 s
    r = _one("02 BB 52 0300")
    assert (r.value, r.unit) == (10_800, "s")


def test_date_of_limit_exceed_is_a_date():
    # VIFE 6F (date/time of D) with a type F date/time
    r = _one("04 AD 6F 2C0B8D1A")
    assert (r.value, r.unit) == (datetime(2012, 10, 13, 11, 44), "")


def test_forward_and_backward_accumulation():
    fwd = _one("04 86 3B 01000000")
    back = _one("04 86 3C 02000000")
    assert (fwd.quantity, fwd.value) == ("energy_forward", 1000)
    assert (back.quantity, back.value) == ("energy_backward", 2000)


def test_landis_gyr_maximum_dates_from_the_corpus():
    """L+G Ultraheat T230: VIF + VIFE 6F records are the dates of the maxima (they decoded as
    41065374.6 °C before the VIFE was applied)."""
    path = CORPUS / "landis+gyr_ultraheat_t230.hex"
    if not path.is_file():
        pytest.skip("../shared/corpus not present")
    t = decode_telegram(bytes.fromhex(path.read_text().replace("\n", " ")))
    dates = [r.value for r in t.records if r.vife and r.vife[-1] & 0x7F == 0x6F]
    assert datetime(2011, 8, 26, 20, 50) in dates and datetime(2011, 8, 9, 11, 43) in dates


def test_plan_cache_is_bounded_under_junk_vibs():
    """Every distinct VIB gets one cached plan; junk input cannot grow the cache without end."""
    from simulator.mbus import vif

    for i in range(6000):  # distinct VIBs: VIF 86 + VIFE 0x80|a + VIFE b
        a, b = (i >> 7) & 0x7F, i & 0x7F
        decode_records(bytes([0x01, 0x86, 0x80 | a, b, 0x00]))
    assert len(vif._PLANS) <= 4096
    assert _one("04 86 74 64000000").value == 1000  # still decodes right past the bound
