"""Secondary addresses, masks and manufacturer codes (PROTOCOL.md §3, §4.2)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.mbus.address import (
    SecondaryAddress,
    SecondaryMask,
    is_valid_manufacturer,
    manufacturer_code,
    manufacturer_letters,
)
from simulator.mbus.errors import AddressError, MBusError

ELV = SecondaryAddress(12345678, "ELV", 1, 4)


@pytest.mark.parametrize(
    ("letters", "code"),
    [("ELV", 0x1596), ("APA", 0x0601), ("AAA", 0x0421), ("ZZZ", 0x6B5A), ("KAM", 0x2C2D)],
)
def test_manufacturer_codes(letters, code):
    # ELV/APA/AAA/ZZZ from PROTOCOL.md §4.2; KAM from the Kamstrup corpus frames (2D 2C)
    assert manufacturer_code(letters) == code
    assert manufacturer_letters(code) == letters
    assert is_valid_manufacturer(code)


@pytest.mark.parametrize("bad", ["EL", "ELVA", "E1V", "ÄLV", "", 123])
def test_manufacturer_code_rejects(bad):
    with pytest.raises(AddressError):
        manufacturer_code(bad)


def test_manufacturer_letters_total_for_odd_codes():
    assert manufacturer_letters(0) == "@@@"
    assert not is_valid_manufacturer(0) and not is_valid_manufacturer(0xFFFF)
    with pytest.raises(AddressError):
        manufacturer_letters(0x10000)


def test_worked_address_wire_and_text():
    assert ELV.to_bytes() == bytes.fromhex("7856341296150104")
    assert str(ELV) == "1234567896150104"  # libmbus form, PROTOCOL.md §3
    assert SecondaryAddress.parse("1234567896150104") == ELV
    assert SecondaryAddress.from_bytes(ELV.to_bytes()) == ELV
    assert SecondaryAddress(1, "elv", 0, 0).manufacturer == "ELV"


@pytest.mark.parametrize(
    "text",
    ["123456789615010", "12345678961501044", "1234A67896150104", "12345678FFFF0104", "x" * 16],
)
def test_parse_rejects(text):
    with pytest.raises(AddressError):
        SecondaryAddress.parse(text)


def test_from_bytes_reports_offset_of_bad_bcd():
    with pytest.raises(AddressError) as ei:
        SecondaryAddress.from_bytes(bytes.fromhex("78563E1296150104"), offset=7)
    assert ei.value.offset == 9
    with pytest.raises(AddressError):
        SecondaryAddress.from_bytes(b"\x00" * 7)


@pytest.mark.parametrize(
    "kw", [{"id": 100_000_000}, {"id": -1}, {"version": 256}, {"medium": -1}, {"manufacturer": "E"}]
)
def test_field_ranges(kw):
    args = {"id": 1, "manufacturer": "ELV", "version": 0, "medium": 0} | kw
    with pytest.raises(AddressError):
        SecondaryAddress(**args)


def test_mask_wildcards():
    any_ = SecondaryMask.parse("FFFFFFFFFFFFFFFF")
    assert any_.to_bytes() == b"\xff" * 8 and any_ == SecondaryMask.all_wildcards()
    assert any_.matches(ELV) and any_.is_wildcard
    m = SecondaryMask.parse("1234FFFFFFFFFFFF")
    assert m.to_bytes() == bytes.fromhex("FFFF3412FFFFFFFF")
    assert str(m) == "1234FFFFFFFFFFFF"
    assert m.matches(ELV)
    assert not SecondaryMask.parse("1235FFFFFFFFFFFF").matches(ELV)
    assert SecondaryMask.parse("12345678961501FF").matches(ELV)
    assert not SecondaryMask.parse("12345678961501FF").matches(
        SecondaryAddress(12345678, "ELV", 2, 4)
    )
    assert SecondaryMask.of(ELV).matches(ELV) and not SecondaryMask.of(ELV).is_wildcard
    # nibble F in the medium byte matches any nibble there (documented extension)
    assert SecondaryMask.parse("123456789615010F").matches(ELV)
    assert not SecondaryMask.parse("123456789615010F").matches(
        SecondaryAddress(12345678, "ELV", 1, 0x14)
    )


@pytest.mark.parametrize("text", ["1234AFFFFFFFFFFF", "FFFF", "G" * 16])
def test_mask_rejects(text):
    with pytest.raises(AddressError):
        SecondaryMask.parse(text)


addresses = st.builds(
    SecondaryAddress,
    st.integers(0, 99_999_999),
    st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=3, max_size=3),
    st.integers(0, 255),
    st.integers(0, 255),
)


@given(addresses)
@settings(max_examples=200)
def test_address_round_trips(addr):
    assert SecondaryAddress.from_bytes(addr.to_bytes()) == addr
    assert SecondaryAddress.parse(str(addr)) == addr
    assert SecondaryMask.parse(str(addr)).matches(addr)


@given(addresses, st.sets(st.integers(0, 15), max_size=16))
@settings(max_examples=200)
def test_mask_matches_when_only_wildcarded_positions_differ(addr, wild):
    text = "".join("F" if i in wild else ch for i, ch in enumerate(str(addr)))
    mask = SecondaryMask.parse(text)
    assert mask.matches(addr)
    assert str(mask) == text


@given(st.binary(min_size=0, max_size=10))
@settings(max_examples=200)
def test_junk_bytes_only_raise_address_errors(raw):
    try:
        SecondaryAddress.from_bytes(raw)
    except MBusError:
        pass
    try:
        SecondaryMask(raw)
    except MBusError:
        pass
