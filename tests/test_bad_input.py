"""Issue 14, "Crashes and blow-ups found": each class of bad input gets its typed error with a
place (file:line, offset, row), never another exception, and limits are checked before
anything is built. One test (or parametrized group) per class; each failed before its fix."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import pytest

from simulator.cli import main as cli
from simulator.core.world import World
from simulator.devices import registry
from simulator.gateways.cme2100.pdu import PduError, decode_pdu, encode_deliver
from simulator.gateways.cme3100.cad import CadError, _notify_url_of, parse_cad
from simulator.gateways.cme3100.cron import CronError, CronSchedule
from simulator.mbus.meterlist import parse_meter_list, read_meter_list
from simulator.scenario import ScenarioError, load_toml
from simulator.wmbus.frame import KeyFileError
from simulator.wmbus.keys import KeyStore
from simulator.wmbus.telegram import build_telegram

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "fixtures" / "scenarios"
UNICODE_DIGITS = ["²", "٣", "١٢", "۳", "߃", "𝟙"]  # superscript, Arabic-Indic, N'Ko, math


def scenario(tmp_path: Path, base: str, text: str | bytes | None = None, **replace: str):
    """A copy of a shipped scenario next to the shipped ones' relative files, changed."""
    body = (SCENARIOS / f"{base}.toml").read_text(encoding="utf-8")
    for old, new in replace.items():
        old = old.replace("__", " = ")
        assert old in body, old
        body = body.replace(old, new, 1)
    folder = tmp_path / "scenarios"
    folder.mkdir(exist_ok=True)
    for sibling in ("telegrams", "meterlists"):
        if not (tmp_path / sibling).exists():
            (tmp_path / sibling).symlink_to(ROOT / "fixtures" / sibling)
    path = folder / f"{base}.toml"
    path.write_bytes(text if isinstance(text, bytes) else (text or body).encode())
    return path


def problems(path: Path) -> list[str]:
    """Load and validate as ``meterbench run`` does; the issues as text (must be some)."""
    with pytest.raises(ScenarioError) as e:
        doc = load_toml(path)
        registry.for_document(doc).load(doc)
    return [str(i) for i in e.value.issues]


# -- decode --wmbus --json: decoded fields re-encoded ---------------------------------------
@pytest.mark.parametrize("m_field", [0x0000, 0x7FFF, 0xFFFF, 0x8000 | 0x2C2D])
def test_wmbus_json_of_a_manufacturer_outside_a_to_z(capsys, m_field: int) -> None:
    raw = bytearray(
        build_telegram(
            manufacturer="KAM",
            id=12345678,
            version=1,
            device_type=7,
            records=b"",
            access_no=1,
            crc=False,
        )
    )
    raw[2:4] = m_field.to_bytes(2, "little")
    rc = cli(["decode", "--wmbus", raw.hex(), "--json"])
    out = capsys.readouterr().out
    assert rc == 0, out
    doc = json.loads(out)
    assert len(doc["link"]["manufacturer"]) == 3
    assert doc["header"]["manufacturer"] == doc["link"]["manufacturer"]


# -- limits before anything is built --------------------------------------------------------
def test_cad_huge_index_reports_the_gap_without_allocating_per_index() -> None:
    text = "Sync-Mode: server\nSync-Config-0: a=1\nSync-Config-10000000: b=2\n"
    tracemalloc.start()
    with pytest.raises(CadError) as e:
        parse_cad(text)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert "missing 1 (highest given 10000000)" in str(e.value)
    assert peak < 1_000_000


def test_cad_index_of_5000_digits_is_an_unknown_parameter_not_a_crash() -> None:
    with pytest.raises(CadError, match=r"cad:2: unknown parameter"):
        parse_cad("Sync-Mode: server\nSync-Config-" + "9" * 5000 + ": a=1\n")


def test_scenario_count_far_over_the_limit_is_refused_before_expanding(tmp_path) -> None:
    path = scenario(tmp_path, "mbus-small", **{"count__2": "count = 30000000"})
    tracemalloc.start()
    issues = problems(path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert any(":23: slaves.0.count: " in i and "less than or equal to 1000" in i for i in issues)
    assert peak < 20_000_000


@pytest.mark.parametrize(
    ("base", "replace", "where"),
    [
        ("mbus-small", {"interval_min__60": "interval_min = 0.000001"}, ":21: slaves: "),
        (
            "stream-small",
            {"count__150": "count = 2000000", "interval_s__120.0": "interval_s = 1"},
            ".toml:10: meters.count: ",
        ),
        ("nbiot-fleet", {"hours__55": "hours = 8784"}, None),
    ],
)
def test_events_over_the_stated_limit_are_refused_with_file_line(tmp_path, base, replace, where):
    path = scenario(tmp_path, base, **replace)
    if where is None:  # nbiot: 8784 h of a small fleet stays under the limit: it validates
        doc = load_toml(path)
        registry.for_document(doc).load(doc)
        return
    from simulator.scenario import MAX_EVENTS

    issues = problems(path)
    assert any(where in i and f"at most {MAX_EVENTS:.0e}" in i for i in issues), issues


# -- scenario files: encoding and values of the wrong kind ----------------------------------
def test_scenario_file_that_is_not_utf8_is_one_typed_error_with_line_and_offset(tmp_path):
    path = scenario(tmp_path, "mbus-small", text=b'kind = "mbus"\nname = "caf\xe9"\n')
    assert problems(path) == [
        f"{path}:2: <top>: not UTF-8: byte 0xe9 at offset 25 (invalid continuation byte)"
    ]


WRONG_KIND = "{ a = 1 }"


@pytest.mark.parametrize(
    "key",
    [
        "count",
        "id",
        "template",
        "manufacturer",
        "version",
        "medium",
        "primary",
        "bauds",
        "baud",
        "telegrams",
        "profile",
        "ids",
        "faults",
    ],
)
def test_a_table_where_a_value_belongs_is_reported_not_raised(tmp_path, key) -> None:
    # "unhashable type" came from the cross checks reading the raw document
    group = {"template": '"heat"', "id": "99999999", key: WRONG_KIND}
    first = "[[slaves]]\n" + "".join(f"{k} = {v}\n" for k, v in group.items()) + "\n"
    body = (SCENARIOS / "mbus-small.toml").read_text(encoding="utf-8")
    body = body.replace("[[slaves]]\n", first + "[[slaves]]\n", 1)
    issues = problems(scenario(tmp_path, "mbus-small", text=body))
    assert any(f"slaves.0.{key}" in i for i in issues), issues


@pytest.mark.parametrize(
    ("base", "replace", "key"),
    [
        ("mbus-small", {"interval_min__60": "interval_min = inf"}, "readout.interval_min"),
        ("mbus-small", {"interval_min__60": "interval_min = nan"}, "readout.interval_min"),
        ("mbus-small", {"length_m__200": "length_m = inf"}, "bus.cable.length_m"),
        ("stream-small", {"interval_s__120.0": "interval_s = inf"}, "meters.interval_s"),
        ("stream-small", {"hours__2.0": "hours = inf"}, "hours"),
        ("nbiot-fleet", {"hours__55": "hours = nan"}, "hours"),
    ],
)
def test_infinite_and_nan_values_are_refused_in_validation(tmp_path, base, replace, key):
    issues = problems(scenario(tmp_path, base, **replace))
    assert any(f": {key}: " in i and "finite" in i for i in issues), issues


@pytest.mark.parametrize(
    "start", ["9999-12-31T20:00:00Z", "1900-01-01T00:00:00Z", "2068-12-30T00:00:00Z"]
)
def test_a_start_outside_the_codable_calendar_is_refused(tmp_path, start) -> None:
    path = scenario(tmp_path, "mbus-small", **{"hours__3": f"hours = 3\nstart = {start}"})
    issues = problems(path)
    assert any(":6: start: " in i and "start must lie in 2000-01-01" in i for i in issues)


# -- cron days that never come --------------------------------------------------------------
@pytest.mark.parametrize(
    "pattern",
    ["0 0 31 2 *", "0 0 30 2 *", "0 0 31 4,6,9,11 *", "0 0 29 2 * 2027", "0 0 30,31 feb mon"],
)
def test_a_cron_day_that_never_comes_is_refused_when_read(pattern) -> None:
    with pytest.raises(CronError, match="no calendar day"):
        CronSchedule.parse(pattern)


@pytest.mark.parametrize("pattern", ["0 0 29 2 mon", "0 0 29 2 *", "0 0 31 * *"])
def test_rare_cron_days_are_found_by_next_after(pattern) -> None:
    from datetime import UTC, datetime

    t = CronSchedule.parse(pattern).next_after(datetime(2026, 1, 5, tzinfo=UTC))
    assert t.day == int(pattern.split()[2])


def test_a_scenario_schedule_of_31_february_is_refused_with_its_line(tmp_path) -> None:
    path = scenario(
        tmp_path,
        "cme3100-building",
        **{'readout_schedule__"hourly"': 'readout_schedule = "0 0 31 2 *"'},
    )
    issues = problems(path)
    assert any(
        ".toml:39: gateway.readout_schedule: " in i and "no calendar day" in i for i in issues
    ), issues


# -- Unicode digits: one ASCII-digits rule everywhere ---------------------------------------
@pytest.mark.parametrize("digit", UNICODE_DIGITS)
def test_ascii_digits_only(digit: str) -> None:
    from simulator.core.text import decimal, is_decimal

    assert digit.isdigit() or digit.isnumeric()  # what let them through
    assert not is_decimal(digit) and decimal(digit) is None
    assert not is_decimal("1" + digit) and decimal("12") == 12 and decimal("") is None
    assert decimal("9" * 5000) is None  # int() refuses over 4300 digits


@pytest.mark.parametrize("digit", UNICODE_DIGITS)
def test_unicode_digits_in_a_meter_list_are_reported_by_row(digit: str) -> None:
    text = (
        "Position,SecondaryAddress,BaudRate,AddressingMode,PrimaryAddress\n"
        "flat 1,12345678,2400,secondary,\n"
        f"flat 2,1234567{digit},2400,secondary,\n"
        f"flat 3,12345679,24{digit},secondary,\n"
        f"flat 4,12345670,2400,primary,{digit}\n"
    )
    with pytest.raises(ScenarioError) as e:
        parse_meter_list(text, "m.csv")
    where = {(i.line, i.key) for i in e.value.issues}
    assert {(3, "SecondaryAddress"), (4, "BaudRate"), (5, "PrimaryAddress")} <= where


@pytest.mark.parametrize("digit", UNICODE_DIGITS)
def test_unicode_digits_in_a_key_file_are_reported_by_row(digit: str) -> None:
    text = (
        "Address,Key,Manufacturer,DeviceType,Version\n"
        f"1234567{digit},000102030405060708090A0B0C0D0E0F,KAM,07,01\n"
    )
    with pytest.raises(KeyFileError) as e:
        KeyStore.parse(text, "k.csv")
    assert [(i.line, i.field) for i in e.value.issues] == [(2, "address")]


@pytest.mark.parametrize("digit", UNICODE_DIGITS)
def test_unicode_digits_in_cron_fields_are_cron_errors(digit: str) -> None:
    for pattern in (f"{digit} * * * *", f"*/{digit} * * * *", f"0 1-{digit} * * *"):
        with pytest.raises(CronError, match="number"):
            CronSchedule.parse(pattern)


@pytest.mark.parametrize("digit", [*UNICODE_DIGITS, "9" * 5000])
def test_unicode_digits_in_the_cme2100_install_command_get_the_usage_error(digit) -> None:
    from simulator.gateways.cme2100.gateway import Cme2100

    world = World(1)
    gateway = Cme2100(world, factory_key="Fk7#qZ2m!Lw9Rt4x")
    replies: list[str] = []
    gateway._respond = lambda key, text: replies.append(text)  # the reply text only
    gateway._install_command([digit], gateway.key)
    world.run(10)
    assert replies == [
        "ERROR usage: install [primary|secondary] <expected number of meters> [CAD file]"
    ]


# -- SMS-DELIVER time stamps ----------------------------------------------------------------
@pytest.mark.parametrize("octet", ["A0", "0B", "FF", "31", "99"])  # BCD 0A, B0, FF; 13; 99
def test_scts_semi_octets_that_are_not_a_date_raise_pdu_error_with_offset(octet) -> None:
    from datetime import UTC, datetime

    pdu = encode_deliver("+46701112233", "hi", timestamp=datetime(2026, 1, 5, tzinfo=UTC))[0]
    month = 13  # octet: SMSC 1 + first 1 + OA 2+6 + PID 1 + DCS 1, then the SCTS year
    bad = pdu[: 2 * month] + octet + pdu[2 * month + 2 :]
    with pytest.raises(PduError) as e:
        decode_pdu(bad)
    assert e.value.offset in (12, 13)  # the SCTS, or the octet itself


# -- CAD URLs -------------------------------------------------------------------------------
@pytest.mark.parametrize("url", ["http://[::1", "http://h:99999/", "http://[zz]/", "http://"])
def test_cad_url_that_urlsplit_refuses_is_a_cad_problem(url: str) -> None:
    text = f"Sync-Mode: server\nSync-Notify-URL: {url}\nSync-File-0-URL: {url},/a\n"
    with pytest.raises(CadError) as e:
        parse_cad(text)
    assert [ln for ln, _ in e.value.problems] == [2, 3]
    assert _notify_url_of(text) is None


# -- meter list and key file: cells, paths, encodings ---------------------------------------
def test_meter_list_cell_over_the_csv_field_limit_is_reported_by_row() -> None:
    text = "Position,SecondaryAddress,BaudRate,AddressingMode\nflat 1,12345678,2400,secondary\n"
    text += '"' + "x" * 200_000 + '",12345679,2400,secondary\n'
    with pytest.raises(ScenarioError) as e:
        parse_meter_list(text, "m.csv")
    assert [(i.file, i.line) for i in e.value.issues] == [("m.csv", 3)]
    assert "field larger than field limit" in str(e.value)


def test_key_file_cell_over_the_csv_field_limit_is_reported_by_row() -> None:
    text = "Address,Key,Manufacturer,DeviceType,Version\n"
    text += '"' + "1" * 200_000 + '",000102030405060708090A0B0C0D0E0F,KAM,07,01\n'
    with pytest.raises(KeyFileError) as e:
        KeyStore.parse(text, "k.csv")
    assert [(i.line, i.field) for i in e.value.issues] == [(2, "csv")]


def test_meter_list_path_too_long_or_not_utf8(tmp_path) -> None:
    with pytest.raises(ScenarioError, match="cannot read: File name too long"):
        read_meter_list(tmp_path / ("m" * 300 + ".csv"))
    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes(b"Position,SecondaryAddress,BaudRate,AddressingMode\nK\xf6k,1,2400,x\n")
    with pytest.raises(ScenarioError) as e:
        read_meter_list(latin1)
    assert [i.line for i in e.value.issues] == [2] and "offset 51" in str(e.value)


def test_scenario_naming_a_300_character_meter_list_is_a_problem_not_a_crash(tmp_path):
    path = scenario(tmp_path, "mbus-meterlist")
    body = path.read_text(encoding="utf-8")
    import re

    body = re.sub(r'meter_list = "[^"]*"', 'meter_list = "' + "m" * 300 + '.csv"', body)
    path.write_text(body, encoding="utf-8")
    assert any("meter list not found" in i for i in problems(path))


@pytest.mark.parametrize(
    ("replace", "key"),
    [
        ({"resolutions_s__[": "resolutions_s = [0.0, "}, "report.resolutions_s.0"),
        ({"resolutions_s__[": "resolutions_s = [-1, "}, "report.resolutions_s.0"),
        ({"grid__[": "grid = [100000, 100000] #"}, "receivers"),
    ],
)
def test_stream_values_that_crashed_or_hung_the_run_are_refused(tmp_path, replace, key) -> None:
    # found by running stream-small with each number set to 0, -1, 1e-9 and 1e9
    issues = problems(scenario(tmp_path, "stream-small", **replace))
    assert any(f": {key}: " in i for i in issues), issues
