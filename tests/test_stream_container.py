"""Seed 003 §9.4: wireless telegram in a wired container, byte for byte, checked by pymeterbus."""

from __future__ import annotations

import re

import meterbus
import pytest
from conftest import SHARED

from simulator.gateways.cme3100.container import (
    ContainerError,
    decode_rssi,
    parse_container,
    rssi_byte,
    wired_container,
    wired_frame,
)

#: Seed 003 (CMe3100 Stream Plugin manual v1.3) §9.4.2 "Example", joined from its four lines.
MANUAL_EXAMPLE = (
    "080072640100619615011B000000000C787217006201FD711C0DFD3B6160449615640100610"
    "11B7A970400202F2F02653607426534078201652C07226532071265360762651607526556070"
    "2FB1A0E0242FB1A0E028201FB1A0E0222FB1A0E0212FB1A0E0262FB1A090252FB1A0F020"
    "2FD1B20C30DFD0F05322E302E310F"
)
#: The wireless telegram inside it: L = 0x60, ELV room sensor 61000164, CRCs removed.
WIRELESS = bytes.fromhex(MANUAL_EXAMPLE)[29:]


def test_manual_example_byte_identical():
    built = wired_container(WIRELESS, rssi_dbm=-74, fabrication_no=62001772)
    assert built.hex().upper() == MANUAL_EXAMPLE


def test_manual_example_matches_the_seed_text():
    seed = SHARED / "seeds" / "003_db841b70b604d34b.txt"
    if not seed.is_file():
        pytest.skip("../shared/seeds is absent")
    text = seed.read_text(encoding="utf-8")
    start = text.index("Example:\n\n```\n") + len("Example:\n\n```\n")
    assert re.sub(r"\s", "", text[start : text.index("```", start)]) == MANUAL_EXAMPLE


def test_pymeterbus_decodes_our_container_independently():
    frame = wired_frame(wired_container(WIRELESS, rssi_dbm=-88, fabrication_no=62001772, a=5))
    t = meterbus.load(frame)
    head = t.body.bodyHeader
    assert head.manufacturer_field.decodeManufacturer == "ELV"
    assert t.header.aField.parts[0] == 5
    values = [r.parsed_value for r in t.body.bodyPayload.records]
    assert values[0] == 62001772
    assert values[1] == -88
    assert bytes.fromhex(values[2].replace(" ", "")) == WIRELESS


def test_rssi_coding_and_round_trip():
    assert rssi_byte(-74) == 0x1C and decode_rssi(0x1C) == -74
    assert rssi_byte(-93) == 19  # half up: -92 dBm
    for dbm in range(-130, 0, 2):
        assert decode_rssi(rssi_byte(dbm)) == dbm
    with pytest.raises(ContainerError):
        rssi_byte(-131)
    got = parse_container(wired_container(WIRELESS, rssi_dbm=-90, a=3))
    assert got.wireless == WIRELESS and got.rssi_dbm == -90 and got.a == 3
    assert got.fabrication_no is None
    assert parse_container(bytes.fromhex(MANUAL_EXAMPLE)).fabrication_no == 62001772


def test_bad_input_gives_one_clear_error():
    with pytest.raises(ContainerError, match="L-field"):
        wired_container(WIRELESS + b"\x00\x00", rssi_dbm=-80)  # CRCs left in
    with pytest.raises(ContainerError, match="too short"):
        wired_container(b"\x02\x44\x00", rssi_dbm=-80)
    with pytest.raises(ContainerError, match="offset 0"):
        parse_container(b"\x68" * 20)
    truncated = bytes.fromhex(MANUAL_EXAMPLE)[:-5]
    with pytest.raises(ContainerError, match="runs past"):
        parse_container(truncated)


def _wireless(n: int) -> bytes:
    """A wireless telegram of ``n`` bytes from its L-field (CRCs removed)."""
    return bytes([n - 1]) + WIRELESS[1:11] + bytes(n - 11)


def test_a_telegram_of_192_bytes_or_more_does_not_collide_with_the_lvar_range():
    """Issue 14: LVAR 0xC0..0xFF is not a byte-string length (EN 13757-3 DIF 0x0D)."""
    ok = wired_container(_wireless(191), rssi_dbm=-80)
    assert parse_container(ok).wireless == _wireless(191)
    for n in (192, 200, 255):
        with pytest.raises(ContainerError, match="LVAR"):
            wired_container(_wireless(n), rssi_dbm=-80)
    forged = bytearray(ok)
    forged[forged.index(bytes.fromhex("0DFD3B")) + 3] = 0xC0
    with pytest.raises(ContainerError, match="LVAR 0xC0"):
        parse_container(bytes(forged) + bytes(1))
