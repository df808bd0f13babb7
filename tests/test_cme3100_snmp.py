"""CMe3100 SNMP model: Table 8, the two lists, traps on change, community, and the shipped MIB
file agreeing with the OIDs in code (seed 002 §6.30)."""

from __future__ import annotations

import re

import pytest

from simulator.gateways.cme3100 import snmp
from simulator.gateways.cme3100.log import GatewayLog
from simulator.gateways.cme3100.snmp import (
    METER_ENTRY,
    METER_STATUS,
    REPORT_ENTRY,
    REPORT_STATUS,
    STATUS_REPORT,
    MeterStatus,
    SnmpError,
    SnmpModel,
    SnmpSettings,
    Status,
    TrapRecipient,
    WorldTrapReceiver,
    aggregate,
)
from simulator.gateways.cme3100.value_db import ReadoutStatus as R

A, B, C = "11111111", "22222222", "33333333"


@pytest.mark.parametrize(
    ("readout", "reports", "expected"),
    [
        ([], [], Status.OK),  # nothing has run yet
        ([True, True], [True], Status.OK),
        ([True, False], [True], Status.WARNING),  # some meters failed
        ([True, True], [True, False], Status.WARNING),  # some reports failed
        ([False, False], [True], Status.ERROR),  # all meters failed
        ([True, True], [False, False], Status.ERROR),  # all reports failed
        ([True, False], [False], Status.ERROR),  # ERROR wins over WARNING
        ([False], [], Status.ERROR),
    ],
)
def test_table_8(readout, reports, expected):
    assert aggregate(readout, reports) is expected


def model(**kw) -> SnmpModel:
    m = SnmpModel(SnmpSettings(**kw))
    m.set_meters([A, B, C])
    return m


def test_meter_status_list_codes():
    m = model()
    assert [m.meter_status(x) for x in (A, B, C)] == [MeterStatus.NOT_READ] * 3  # never read
    m.readout_round(10.0, {A: R.OK, B: R.FAILED, C: R.NOT_DECRYPTABLE})
    assert [m.meter_status(x) for x in (A, B, C)] == [1, 3, 2]
    assert m.get("public", METER_ENTRY + (METER_STATUS, 2)) == 3
    assert m.get("public", METER_ENTRY + (2, 1)) == A


def test_report_status_list_and_status_report_in_the_view():
    m = model()
    assert m.get("public", STATUS_REPORT + (0,)) == 1
    m.readout_round(10.0, {A: R.OK, B: R.OK, C: R.OK})
    m.report_result(20.0, 2, False, "FTP daily")
    assert m.report_status(2) is Status.ERROR and m.report_status(1) is None
    assert m.get("public", REPORT_ENTRY + (REPORT_STATUS, 2)) == 3
    assert m.get("public", REPORT_ENTRY + (2, 2)) == "FTP daily"
    assert m.get("public", STATUS_REPORT + (0,)) == 3  # the only report failed: ERROR


def test_a_trap_to_each_recipient_on_each_change_and_none_without_change():
    r1, r2 = TrapRecipient("10.0.0.1", 162), TrapRecipient("10.0.0.2", 1162)
    sink = WorldTrapReceiver()
    m = SnmpModel(SnmpSettings(recipients=(r1, r2)), trap_sink=sink, started_at=5.0)
    m.set_meters([A, B])
    assert m.readout_round(100.0, {A: R.OK, B: R.OK}) == []  # OK -> OK: no change
    got = m.readout_round(200.0, {A: R.OK, B: R.FAILED})  # OK -> WARNING
    assert [(d.notification.recipient, d.ok) for d in got] == [(r1, True), (r2, True)]
    assert m.readout_round(300.0, {A: R.FAILED, B: R.OK}) == []  # still WARNING
    m.readout_round(400.0, {A: R.FAILED, B: R.FAILED})  # -> ERROR
    m.readout_round(500.0, {A: R.OK, B: R.OK})  # -> OK
    assert [(n.at, n.old, n.new) for n in sink.received[::2]] == [
        (200.0, Status.OK, Status.WARNING),
        (400.0, Status.WARNING, Status.ERROR),
        (500.0, Status.ERROR, Status.OK),
    ]
    assert sink.received[0].uptime_cs == 19500  # (200 - 5) s in 1/100 s


def test_trap_retries_and_timeout_against_a_receiver_that_is_down():
    log = GatewayLog()
    sink = WorldTrapReceiver(down=[(0.0, 12.0)])
    r = TrapRecipient("nms", 162)
    m = SnmpModel(SnmpSettings(recipients=(r,)), trap_sink=sink, log=log)  # 3 x 5000 ms
    m.set_meters([A])
    (d,) = m.readout_round(0.0, {A: R.FAILED})
    # tries at 0, 5, 10 s fall in the outage; the 4th (3rd retry) at 15 s is acknowledged
    assert (d.ok, d.attempts) == (True, 4)
    sink.down = [(0.0, 100.0)]
    (d,) = m.readout_round(20.0, {A: R.OK})
    assert (d.ok, d.attempts, d.reason) == (False, 4, "no acknowledgement")
    assert [e.message for e in log.entries()] == [
        "Status changed from OK to ERROR",
        "Status changed from ERROR to OK",
        "Trap to nms:162 failed: no acknowledgement",
    ]


def test_community_is_checked():
    m = model(community="s3cret")
    m.readout_round(1.0, {A: R.OK})
    assert m.get("public", STATUS_REPORT + (0,)) is None
    assert m.walk("public") == []
    assert m.get("s3cret", STATUS_REPORT + (0,)) == 1
    assert [oid for oid, _ in m.walk("s3cret", METER_ENTRY + (METER_STATUS,))] == [
        METER_ENTRY + (METER_STATUS, i) for i in (1, 2, 3)
    ]


def test_bench_defaults():
    s = SnmpSettings()
    assert (s.port, s.community, s.trap_retries, s.trap_timeout_ms) == (161, "public", 3, 5000)


def test_bad_settings_and_input_are_typed_errors():
    with pytest.raises(SnmpError, match="port: 70000") as err:
        SnmpSettings(port=70000, community="")
    assert "community" in str(err.value)  # every problem named at once
    m = model()
    with pytest.raises(SnmpError, match="44444444 is not in the meter list"):
        m.readout_round(1.0, {"44444444": R.OK})
    with pytest.raises(SnmpError, match="slot 6"):
        m.report_result(1.0, 6, True)
    with pytest.raises(SnmpError, match="listed twice"):
        m.set_meters([A, A])


# -- the shipped MIB file -----------------------------------------------------------------
ASSIGN = re.compile(
    r"^(\w+)[ \t]+(?:OBJECT IDENTIFIER|OBJECT-TYPE|MODULE-IDENTITY|NOTIFICATION-TYPE|"
    r"OBJECT-GROUP|NOTIFICATION-GROUP|MODULE-COMPLIANCE)\b.*?::=\s*\{\s*(\w+)\s+(\d+)\s*\}",
    re.S | re.M,
)


def mib_oids() -> dict[str, tuple[int, ...]]:
    """Every node the MIB file assigns, resolved from ``experimental`` (1.3.6.1.3)."""
    text = re.sub(r"--[^\n]*", "", snmp.MIB_FILE.read_text())
    parents = {m[1]: (m[2], int(m[3])) for m in ASSIGN.finditer(text)}
    known = {"experimental": (1, 3, 6, 1, 3)}

    def resolve(name: str) -> tuple[int, ...]:
        if name not in known:
            parent, arc = parents[name]
            known[name] = resolve(parent) + (arc,)
        return known[name]

    return {name: resolve(name) for name in parents}


def test_mib_file_and_code_define_the_same_oids():
    text = snmp.MIB_FILE.read_text()
    assert text.startswith(f"{snmp.MIB_MODULE} DEFINITIONS ::= BEGIN")
    # bench-owned: our organisation, the experimental arc, never a vendor's enterprise arc
    assert 'ORGANIZATION "meterbench project"' in text and "NOT Elvaco's MIB" in text
    assert "enterprises" not in text and snmp.ROOT[:5] == (1, 3, 6, 1, 3)
    oids = mib_oids()
    assert oids["mbenchCme3100"] == snmp.ROOT
    assert oids["mbenchStatusChange"] == snmp.STATUS_CHANGE
    assert oids["mbenchStatusReport"] == snmp.STATUS_REPORT
    assert oids["mbenchMeterStatusEntry"] == snmp.METER_ENTRY
    assert oids["mbenchMeterSecondaryAddress"] == snmp.METER_ENTRY + (snmp.METER_ADDRESS,)
    assert oids["mbenchMeterStatus"] == snmp.METER_ENTRY + (snmp.METER_STATUS,)
    assert oids["mbenchReportStatusEntry"] == snmp.REPORT_ENTRY
    assert oids["mbenchReportName"] == snmp.REPORT_ENTRY + (snmp.REPORT_NAME,)
    assert oids["mbenchReportStatus"] == snmp.REPORT_ENTRY + (snmp.REPORT_STATUS,)
    # every instance the model serves sits under a read-only column or scalar of the file
    readable = {
        oids[n] for n in re.findall(r"^(\w+) OBJECT-TYPE(?:(?!::=).)*?read-only", text, re.S | re.M)
    }
    m = model()
    m.readout_round(1.0, {A: R.OK})
    m.report_result(2.0, 1, True)
    for oid, _ in m.view():
        assert any(oid[: len(col)] == col for col in readable), oid
