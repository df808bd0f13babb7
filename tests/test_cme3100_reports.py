"""CMe3100 push report templates (CME3100.md §5.2-5.3, Gaps #1-5): bodies decoded back with
the project's codec, file names, envelopes, the Elvaco install example."""

from __future__ import annotations

import dataclasses
import email
import random
import struct
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from email import policy

import pytest

from simulator.gateways.cme3100.readout import Readout, ReadoutError, user_data
from simulator.gateways.cme3100.reports.bodies import Event, MeterEntry
from simulator.gateways.cme3100.reports.columns import column, columns, time_text, value_text
from simulator.gateways.cme3100.reports.envelope import (
    CONTENT_TYPE,
    ftp_report,
    http_report,
    mail_reports,
)
from simulator.gateways.cme3100.reports.identity import GatewayIdentity
from simulator.gateways.cme3100.reports.names import Template, TemplateError, file_name
from simulator.gateways.cme3100.reports.parse import (
    ReportParseError,
    number,
    parse_install,
    parse_time,
    parse_value_report,
    value_report_keys,
)
from simulator.gateways.cme3100.reports.render import render
from simulator.mbus.address import SecondaryAddress
from simulator.mbus.records import DataRecord, decode_records
from simulator.mbus.telegram import (
    CI_LONG_HEADER,
    Header,
    Telegram,
    decode_telegram,
    encode_telegram,
    telegram_json,
)
from simulator.meters.wired import TEMPLATES

GW = GatewayIdentity()
AT = datetime(2024, 5, 1, 2, 0, 0)


def meter_frames(ident, medium, hour, telegrams=1, seed=1):
    """RSP_UD long frames of a simulated meter (project profiles) read at ``hour``."""
    rng = random.Random(seed)
    specs = TEMPLATES[medium].build(rng, telegrams)
    code = TEMPLATES[medium].medium
    out = []
    for i in range(telegrams):
        recs = [
            s.build(hour * 3600.0, datetime(2024, 5, 1, hour), rng)
            for s in specs
            if s.telegram == i
        ]
        header = Header(
            CI_LONG_HEADER, access_no=hour, address=SecondaryAddress(ident, "ELV", 1, code)
        )
        tg = Telegram(header, recs, more_follow=i < telegrams - 1, a=ident % 250)
        out.append(encode_telegram(tg).to_bytes())
    return tuple(out)


def readouts():
    out = []
    for hour in (0, 1):
        out.append(
            Readout(
                "12345678",
                datetime(2024, 5, 1, hour, 0, 3),
                meter_frames(12345678, "heat", hour, 2),
                position=10,
                primary_address=5,
            )
        )
        out.append(
            Readout(
                "00000042",
                datetime(2024, 5, 1, hour, 0, 7),
                meter_frames(42, "warm_water", hour),
                position=11,
            )
        )
    out.append(Readout("00000099", datetime(2024, 5, 1, 1, 0, 9), (), "no reply"))
    return out


# -- file names ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "meter", "name"),
    [
        (2001, None, "0006123456_installreport_20200901010000_2001.csv"),  # FTP reference example
        (2005, None, "0006123456_eventreport_20200901010000_2005.csv"),
        (3007, None, "0006123456_statusreport_20200901010000_3007.csv"),
        (3115, None, "0006123456_valuereport_20200901010000_3115.csv"),
        (2109, "87654321", "0006123456_87654321_valuereport_20200901010000_2109.csv"),
    ],
)
def test_file_names(number, meter, name):
    assert file_name("0006123456", Template(number), datetime(2020, 9, 1, 1), meter) == name


@pytest.mark.parametrize("number", [4001, 2002, 999, 3112])
def test_unknown_templates(number):
    with pytest.raises(TemplateError, match=str(number)):
        Template(number)


def test_template_numbering():
    assert [Template(n).protocol for n in (1101, 2101, 3101)] == ["mail", "ftp", "http"]


# -- x001 --------------------------------------------------------------------------------------


def test_install_report_raw_column_decodes_back_to_the_same_records():
    rs = readouts()
    [f] = render(3001, GW, AT, readouts=rs)
    rows = parse_install(f.text)
    sent = [(r, n, t) for r in rs for n, t in enumerate(r.telegrams)]
    assert len(rows) == len(sent) == 6  # heat: 2 telegrams x 2 readouts, water: 1 x 2
    for row, (r, n, frame) in zip(rows, sent, strict=True):
        assert (row.serial, row.meter, row.created, row.telegram_no) == (
            GW.serial,
            r.meter,
            r.read_at,
            n,
        )
        assert row.raw == frame[4:-2]  # from the C-field; no 68 L L 68, CS, 16
        assert telegram_json(decode_telegram(row.raw)) == telegram_json(decode_telegram(frame))
    assert f.text.splitlines()[1].split(";")[3] == "01"
    assert all(c in "0123456789abcdef" for row in f.text.splitlines() for c in row.split(";")[4])


def test_user_data_rejects_what_is_not_a_long_frame():
    with pytest.raises(ReadoutError, match="long frame"):
        user_data(bytes.fromhex("6805056808"))  # a long frame cut short
    with pytest.raises(ReadoutError, match="long frame"):
        user_data(b"\x08")


#: Elvaco's FTP/HTTP template reference, report 2001 "Example of file contents", first two
#: rows (https://support.elvaco.com/hc/en-us/articles/17393336601757-FTP-Report-Templates).
ELVACO_2001 = [
    "00000161;05047168;2009-12-17 00:00:00;00;08147268710405ac484103470000000c1480769604046dba09"
    "2e1a426c2a194c140000000042ec7e3f1c0fc010010c",
    "00000161;05047168;2009-12-17 01:00:00;00;08147268710405ac484103480000000c1480769604046dba0a"
    "2e1a426c2a194c140000000042ec7e3f1c0fc010010c",
]


def _rel_gas_meter(hour: int) -> bytes:
    """The meter of the reference example, built from its meaning: REL gas meter 05047168,
    version 0x41, primary address 20, access number 0x47 + hour; volume 49676.8 m3 (BCD),
    its clock 2009-10-14 (09 + hour):58 flagged invalid, storage 1 date 2009-09-10 and
    volume 0, a 'future value' date 2009-12-31, manufacturer data C0 10 01 0C."""
    clock = DataRecord.from_value(0x6D, datetime(2009, 10, 14, 9 + hour, 58))
    wire = bytearray(clock.to_bytes())
    wire[2] |= 0x80  # IV bit of the type F minute byte: the meter says its clock is invalid
    wire[3] &= 0x9F  # and leaves the hundred-year bits of the hour byte at 0
    records = [
        DataRecord.from_value(0x14, 49676.8, data_field=0xC),
        decode_records(bytes(wire))[0][0],
        DataRecord.from_value(0x6C, date(2009, 9, 10), data_field=0x2, storage=1),
        DataRecord.from_value(0x14, 0, data_field=0xC, storage=1),
        DataRecord.from_value(0x6C, date(2009, 12, 31), data_field=0x2, storage=1, vife=(0x7E,)),
    ]
    header = Header(
        CI_LONG_HEADER, access_no=0x47 + hour, address=SecondaryAddress(5047168, "REL", 0x41, 3)
    )
    tg = Telegram(header, records, manufacturer_data=bytes.fromhex("c010010c"), a=0x14)
    return encode_telegram(tg).to_bytes()


def test_elvaco_install_example_reproduced():
    gw = GatewayIdentity(serial="00000161")
    rs = [Readout("05047168", datetime(2009, 12, 17, h), (_rel_gas_meter(h),)) for h in (0, 1)]
    [f] = render(2001, gw, datetime(2009, 12, 17, 2), readouts=rs)
    assert f.text.splitlines() == ELVACO_2001
    assert f.name == "00000161_installreport_20091217020000_2001.csv"


# -- x115 / x101 / x109 ----------------------------------------------------------------------


def _check_values(rows, rs, positions):
    sent = [(r, n, decode_telegram(t)) for r in rs for n, t in enumerate(r.telegrams)]
    assert len(rows) == len(sent)
    for row, (r, n, tg) in zip(rows, sent, strict=True):
        f = row.fields
        assert f["serial-number"] == GW.serial and f["device-identification"] == r.meter
        assert f["created"] == r.read_at.strftime("%Y-%m-%d %H:%M:%S")
        assert int(f["value-data-count"]) == n and int(f["access-number"]) == tg.header.access_no
        assert f["manufacturer"] == tg.header.address.manufacturer
        assert ("device-position" in f) == positions
        if positions:
            assert f["device-position"] == f"{r.position:02X}"
        assert [c for c, _ in row.values] == [column(rec) for rec in tg.records]
        for (col, text), rec in zip(row.values, tg.records, strict=True):
            if isinstance(rec.value, int | float):
                assert number(text) == rec.value, col
            elif isinstance(rec.value, datetime):
                assert datetime.strptime(text, "%Y-%m-%d %H:%M:%S") == rec.value
            else:
                assert text == value_text(rec.value)


@pytest.mark.parametrize(("number_", "positions"), [(3115, True), (3101, False)])
def test_value_report_parses_back_to_the_records(number_, positions):
    rs = readouts()
    [f] = render(number_, GW, AT, readouts=rs)
    rows = parse_value_report(f.text)
    by_meter = {
        m: [r for r in rs if r.meter == m and r.telegrams] for m in ("12345678", "00000042")
    }
    assert len(f.parts) == 2  # one chunk per meter
    _check_values(rows, by_meter["12345678"] + by_meter["00000042"], positions)
    lines = f.text.splitlines()
    assert lines[0].startswith(
        "#serial-number;"
        + ("device-position;primary-address;" if positions else "device-identification")
    )
    assert "energy,Wh,inst-value,0,0,0" in lines[0] and "flow-temp,°C,inst-value,0,0,0" in lines[0]


def test_value_report_x109_one_file_per_meter():
    files = render(2109, GW, AT, readouts=readouts())
    assert [f.name for f in files] == [
        "0016045167_12345678_valuereport_20240501020000_2109.csv",
        "0016045167_00000042_valuereport_20240501020000_2109.csv",
    ]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (12, "12"),
        (384.24, "384,24"),
        (1e-07, "0,0000001"),
        (-1.3, "-1,3"),
        (None, ""),
        (datetime(2026, 10, 1, 20, 56), "2026-10-01 20:56:00"),
        (date(2026, 10, 1), "2026-10-01 00:00:00"),
        (b"\x01\xab", "01ab"),
        ("a;b", "a b"),
    ],
)
def test_value_text(value, text):
    assert value_text(value) == text


def test_value_text_of_floats_is_the_plain_shortest_decimal():
    # the fast path (repr) against the documented rule, on random bit patterns and decimals
    rng = random.Random(7)
    for _ in range(20000):
        v = struct.unpack("d", struct.pack("Q", rng.getrandbits(64)))[0]
        w = rng.randint(-(10**9), 10**9) / 10 ** rng.randint(0, 9)
        for x in (v, w):
            want = "" if x != x or abs(x) == float("inf") else format(Decimal(repr(x)), "f")
            assert value_text(x) == want.replace(".", ","), x


def test_time_text_is_strftime_of_the_report_format():
    rng = random.Random(8)
    for _ in range(20000):
        t = datetime(1, 1, 2) + timedelta(seconds=rng.randrange(315537800000), microseconds=7)
        tz = t.replace(tzinfo=timezone(timedelta(hours=rng.randint(-12, 12))))
        for x in (t, tz):
            assert time_text(x) == value_text(x) == x.strftime("%Y-%m-%d %H:%M:%S"), x
        assert value_text(t.date()) == t.strftime("%Y-%m-%d 00:00:00")


def test_columns_are_the_column_of_each_record_whatever_field_changes():
    records = [rec for r in readouts() for t in r.telegrams for rec in decode_telegram(t).records]
    assert columns(records) == tuple(column(r) for r in records)
    changes = dict(
        quantity="volume", vif=0x13, vife=(0x3B,), vife_text=("per hour",), plain_unit="kWh",
        unit="J", function="maximum", tariff=2, subunit=1, storage=5,
    )  # fmt: skip
    for name, value in changes.items():  # every field of a column is part of the cache key
        # the VIF codes show in the column of a manufacturer-specific record
        base = records[0]
        if name in ("vif", "vife"):
            base = dataclasses.replace(base, quantity="manufacturer_specific")
        other = dataclasses.replace(base, **{name: value})
        assert columns([other]) == (column(other),) != columns([base]), name


def test_value_report_keys_and_parse_time_agree_with_the_full_parse():
    times = ["2026-01-05 01:02:03", "2026-1-5 1:2:3", "2026-02-30 00:00:00", "2026-01-05 24:00:00"]
    heads = [
        "#serial-number;device-identification;created;energy,Wh,inst-value,0,0,0",
        "#serial-number;created;x,y",
        "#a;device-identification;device-identification;created;v,1",
    ]
    rng = random.Random(3)
    for _ in range(3000):
        lines = [
            rng.choice(heads)
            if rng.random() < 0.3
            else ";".join(["s", f"{rng.randint(0, 3):08d}", rng.choice(times), "1,5"][: rng.randint(2, 4)])
            for _ in range(rng.randint(0, 5))
        ]  # fmt: skip
        text = "\n".join(lines)
        try:
            want = [
                (r.fields.get("device-identification"), r.fields.get("created"))
                for r in parse_value_report(text)
            ]
        except ReportParseError as exc:
            with pytest.raises(ReportParseError, match=str(exc)):
                value_report_keys(text, ("device-identification", "created"))
            continue
        assert value_report_keys(text, ("device-identification", "created")) == want
    for text in times + ["2026-01-05T01:02:03", "x", "2026-01-05 23:59:60"]:
        try:
            want = datetime.strptime(text, "%Y-%m-%d %H:%M:%S")
        except ValueError as exc:
            with pytest.raises(ValueError, match=str(exc)):
                parse_time(text)
            continue
        assert parse_time(text) == want


def test_cp1252_bytes_and_http_headers():
    [f] = render(3115, GW, AT, readouts=readouts())
    rep = http_report(f, GW, "http://head.end/in", user="u", password="p")
    assert rep.content_type == CONTENT_TYPE == "text/plain; charset=windows-1252"
    assert b"flow-temp,\xb0C" in rep.body  # ° = 0xB0
    assert rep.body.decode("cp1252") == f.text
    assert rep.header("Filename") == f.name
    assert rep.header("User-Agent") == (
        "Model/CMe3100 Hardware/R1E Serial/0016045167 Application/1.15.0 MAC/00:D0:93:71:BD:4C"
    )
    assert rep.header("Authorization") == "Basic dTpw"
    assert len(rep.parts) == 2
    with pytest.raises(TemplateError, match="http"):
        ftp_report(f, "ftp://x/")


def test_ftp_report_target():
    [f] = render(2101, GW, AT, readouts=readouts())
    rep = ftp_report(f, "ftp://files.example/in/")
    assert rep.target == f"ftp://files.example/in/{f.name}"


def test_mail_report_deterministic_with_cp1252_attachment():
    [f] = render(1115, GW, AT, readouts=readouts())
    a = mail_reports(f, GW, to=["ops@x.example"], bcc=["audit@x.example"], sequence=3)
    b = mail_reports(f, GW, to=["ops@x.example"], bcc=["audit@x.example"], sequence=3)
    assert [r.body for r in a] == [r.body for r in b]
    assert [r.target for r in a] == ["ops@x.example", "audit@x.example"]
    msg = email.message_from_bytes(a[0].body, policy=policy.default)
    assert msg["Subject"] == "CMe3100.0016045167 1115 2024-05-01 02:00:00"
    assert msg["From"] == "CMe3100.0016045167@elvaco.se" and "Bcc" not in msg
    [att] = list(msg.iter_attachments())
    assert att.get_filename() == f.name and att.get_content_charset() == "windows-1252"
    assert att.get_payload(decode=True).decode("cp1252") == f.text
    assert b"\r\n" in a[0].body


# -- x005, x007 --------------------------------------------------------------------------------


def test_event_report():
    ev = Event("installation-done", datetime(2024, 5, 1, 1, 2, 3), (("meters", "40"),))
    [f] = render(3005, GW, AT, event=ev)
    assert f.text.splitlines() == [
        "#;key;value",
        ";event;installation-done",
        ";time;2024-05-01 01:02:03",
        ";serial-number;0016045167",
        ";firmware-version;1.15.0",
        ";meters;40",
    ]
    assert f.name == "0016045167_eventreport_20240501020000_3005.csv"
    with pytest.raises(TemplateError, match="event"):
        render(3005, GW, AT)
    with pytest.raises(TemplateError, match="reboot"):
        Event("reboot", AT)


def test_status_report():
    meters = [
        MeterEntry(2, "00000042", None, "ELV", 1, 0x06, state="passive"),
        MeterEntry(
            1,
            "12345678",
            5,
            "ELV",
            1,
            0x04,
            last_read=datetime(2024, 5, 1, 1, 0, 3),
            last_status="ok",
        ),
    ]
    [f] = render(3007, GW, AT, meters=meters)
    lines = f.text.splitlines()
    assert lines[0].startswith("#serial-number;device-position;device-identification")
    assert (
        lines[1]
        == "0016045167;01;12345678;5;ELV;1;heat (outlet);2400;secondary;active;2024-05-01 01:00:03;ok"
    )
    assert lines[2].split(";")[6] == "warm water (30-90 °C)" and lines[2].endswith(";passive;;")
    rep = http_report(f, GW, "http://x/")
    assert "warm water (30-90 \xb0C)".encode("latin-1") in rep.body


@pytest.mark.parametrize("number_", [3115, 3101, 2109])
def test_value_reports_use_the_readers_decoded_telegrams_and_give_the_same_text(number_):
    """A readout may carry the telegrams its reader already decoded (decode_telegram of the
    same frames): the report text is the same, and they are really used (a readout whose
    decoded telegrams differ from its frames shows in the text); a count that does not
    match the frames is ignored."""
    import dataclasses

    rs = readouts()
    plain = render(number_, GW, AT, readouts=rs)
    decoded = [
        dataclasses.replace(r, decoded=tuple(decode_telegram(t) for t in r.telegrams)) for r in rs
    ]
    assert [f.text for f in render(number_, GW, AT, readouts=decoded)] == [f.text for f in plain]
    swapped = [dataclasses.replace(r, decoded=tuple(reversed(r.decoded))) for r in decoded]
    assert [f.text for f in render(number_, GW, AT, readouts=swapped)] != [f.text for f in plain]
    short = [dataclasses.replace(r, decoded=r.decoded[:1]) if len(r.decoded) > 1 else r
             for r in swapped]  # fmt: skip
    heat = [r for r in short if r.meter == "12345678"]
    assert all(len(r.telegrams) == 2 and len(r.decoded) == 1 for r in heat)
    with_short = [r if r.meter == "12345678" else rr for r, rr in zip(short, rs, strict=True)]
    assert [f.text for f in render(number_, GW, AT, readouts=with_short)] == [f.text for f in plain]
