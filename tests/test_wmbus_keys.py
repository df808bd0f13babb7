"""The CMe3100 encryption key file (seed 002 §6.15, Table 6, Figures 7-8) and key matching."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulator.wmbus.frame import KeyFileError, WMBusError
from simulator.wmbus.keys import KeyStore

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "wmbus"
HEADER = "Address,Key,Manufacturer,DeviceType,Version\n"
K1 = "FFEEDDCCBBAA99887766554433221100"
K2 = "A1B2C3D4E5F6A1B2C3D4E5F678910111"


def test_manual_example_file_reports_all_its_bad_keys_at_once() -> None:
    # Figure 8 of the manual, verbatim: three of its five keys are not 32 hex characters
    # (31, 33 and 31). All three lines must be reported together, with file:line and field.
    path = FIXTURES / "keys_manual_figure8.csv"
    with pytest.raises(KeyFileError) as err:
        KeyStore.from_csv(path)
    issues = err.value.issues
    assert [(i.line, i.field) for i in issues] == [(2, "key"), (5, "key"), (6, "key")]
    text = str(err.value)
    assert f"{path}:2: key: must be 32 hex characters, got 31" in text
    assert f"{path}:5: key: must be 32 hex characters, got 33" in text
    assert "3 bad lines" in text
    assert isinstance(err.value, WMBusError)


def test_manual_example_file_good_rows_match_as_documented() -> None:
    good = "".join(
        ln
        for ln in (FIXTURES / "keys_manual_figure8.csv").read_text().splitlines(True)
        if ln.count(",") == 4 and "AAAA" not in ln and "9999" not in ln
    )
    store = KeyStore.parse(good)
    assert len(store) == 2
    # Meter 13360079 from ELV: the row naming it beats the all-wildcard row.
    assert store.lookup("ELV", 13360079, 1, 7) == bytes.fromhex(K2)
    assert store.candidates("ELV", 13360079, 1, 7) == [bytes.fromhex(K2), bytes.fromhex(K1)]
    # Any other meter: only the wildcard row.
    assert store.lookup("KAM", 13360079, 1, 7) == bytes.fromhex(K1)
    assert store.lookup("ELV", 1, 1, 7) == bytes.fromhex(K1)


def test_bench_key_file_parses() -> None:
    store = KeyStore.from_csv(FIXTURES / "keys_bench.csv")
    assert len(store) == 5
    assert store.lookup("KAM", 76348799, 27, 22) == bytes.fromhex(
        "28F64A24988064A079AA2C807D6102AE"
    )
    assert store.lookup("APA", 88888888, 5, 7) == bytes(16)
    assert store.lookup("APA", 88888888, 5, 6) == bytes.fromhex(K1)  # device type 7 only


@pytest.mark.parametrize(
    ("row", "meter", "hit"),
    [
        ("-1,{k},*,-1,-1", ("ELV", 1, 2, 3), True),
        ("5,{k},*,-1,-1", ("ELV", 5, 2, 3), True),
        ("5,{k},*,-1,-1", ("ELV", 6, 2, 3), False),
        ("-1,{k},elv,-1,-1", ("ELV", 6, 2, 3), True),
        ("-1,{k},KAM,-1,-1", ("ELV", 6, 2, 3), False),
        ("-1,{k},*,7,-1", ("ELV", 6, 2, 7), True),
        ("-1,{k},*,0x07,-1", ("ELV", 6, 2, 7), True),
        ("-1,{k},*,7,-1", ("ELV", 6, 2, 8), False),
        ("-1,{k},*,-1,2", ("ELV", 6, 2, 8), True),
        ("-1,{k},*,-1,2", ("ELV", 6, 3, 8), False),
        # 16-hex secondary address: ID + manufacturer + version + medium all must match.
        ("1234567896150104,{k},*,-1,-1", ("ELV", 12345678, 1, 4), True),
        ("1234567896150104,{k},*,-1,-1", ("ELV", 12345678, 2, 4), False),
    ],
)
def test_matching_rules(row: str, meter: tuple, hit: bool) -> None:
    store = KeyStore.parse(HEADER + row.format(k=K1) + "\n")
    assert (store.lookup(*meter) == bytes.fromhex(K1)) is hit


def test_specificity_then_file_order() -> None:
    a, b, c = ("11" * 16), ("22" * 16), ("33" * 16)
    store = KeyStore.parse(HEADER + f"-1,{a},*,-1,-1\n-1,{b},ELV,-1,-1\n-1,{c},ELV,-1,-1\n")
    assert store.candidates("ELV", 1, 1, 1) == [bytes.fromhex(x) for x in (b, c, a)]


def test_linked_key_wins() -> None:
    store = KeyStore.parse(HEADER + f"9,{K1},ELV,7,1\n")
    linked = bytes(range(16))
    store.link(linked, "ELV", 9, 1, 7)
    assert store.lookup("ELV", 9, 1, 7) == linked
    assert store.candidates("ELV", 9, 1, 7)[1] == bytes.fromhex(K1)
    assert store.lookup("ELV", 10, 1, 7) is None  # linked to that one meter only


def test_every_kind_of_bad_line_is_reported_with_its_field() -> None:
    text = (
        HEADER
        + f"abc,{K1},*,-1,-1\n"  # 2: address
        + f"-1,{K1},E1V,-1,-1\n"  # 3: manufacturer
        + f"-1,{K1},*,300,-1\n"  # 4: device type out of range
        + f"-1,{K1},*,-1,x\n"  # 5: version not a number
        + "-1,XYZ,*,-1\n"  # 6: missing column (and the key)
        + "\n"  # blank lines are fine
        + f"1234567896150104,{K1},KAM,-1,-1\n"  # 8: contradicts the address
        + f"-1,{K1},*,-1,-1\n"  # 9: good
    )
    with pytest.raises(KeyFileError) as err:
        KeyStore.parse(text, source="keys.csv")
    got = [(i.line, i.field) for i in err.value.issues]
    assert got == [
        (2, "address"),
        (3, "manufacturer"),
        (4, "devicetype"),
        (5, "version"),
        (6, "version"),
        (8, "manufacturer"),
    ]
    assert "keys.csv:4: devicetype: 300 is outside 0..255" in str(err.value)


@pytest.mark.parametrize(
    "text",
    ["", "\n\n", "Address,Key,Manufacturer\n-1,00,*\n", "Key;Address\n"],
)
def test_bad_headers(text: str) -> None:
    with pytest.raises(KeyFileError):
        KeyStore.parse(text)


def test_semicolon_and_bom_and_missing_file(tmp_path: Path) -> None:
    p = tmp_path / "k.csv"
    p.write_text(
        "\ufeffaddress;key;manufacturer;devicetype;version\n-1;" + K1 + ";*;-1;-1\n",
        encoding="utf-8",
    )
    assert KeyStore.from_csv(p).lookup("ELV", 1, 1, 1) == bytes.fromhex(K1)
    with pytest.raises(KeyFileError, match="cannot read"):
        KeyStore.from_csv(tmp_path / "missing.csv")


def test_meters_with_non_bcd_ids_find_their_key() -> None:
    """Issue 14: several manufacturers send hex IDs; the key file names them by their hex
    digits (as decoders print them) and the decoder finds the key for such a meter."""
    from simulator.mbus.records import DataRecord
    from simulator.wmbus.telegram import build_telegram, parse_telegram

    key = bytes(range(16))
    store = KeyStore.parse(
        "Address,Key,Manufacturer,DeviceType,Version\n"
        f"7a348799,{key.hex()},KAM,22,27\n"
        f"76348799,{bytes(16).hex()},KAM,22,27\n"
    )
    assert store.lookup("KAM", "7A348799", 27, 22) == key
    assert store.lookup("KAM", 76348799, 27, 22) == bytes(16)  # the BCD twin keeps its own
    raw = build_telegram(
        manufacturer="KAM",
        id="7A348799",
        version=27,
        device_type=22,
        records=[DataRecord.from_value(0x06, 1_234_000)],
        access_no=5,
        security_mode=5,
        key=key,
    )
    t = parse_telegram(raw, keys=store)
    assert t.link.id is None and t.link.id_text == "7A348799"
    assert [r.value for r in t.records] == [1_234_000]
    store.link(bytes(range(1, 17)), "KAM", "7a348799", 27, 22)
    assert store.lookup("KAM", "7A348799", 27, 22) == bytes(range(1, 17))
