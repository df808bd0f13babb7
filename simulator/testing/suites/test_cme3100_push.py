"""CMe3100 push suite: the bench plays the meters, the gateway reads them on its schedule and
pushes reports, the bench's head-ends receive them and the checks compare (docs/cme3100-suite.md).

Run: ``python3 -m pytest --rig rigs/sim-cme3100.toml -m cme3100 simulator/testing/suites``.
Every check works on what a lab has too, the wire and the head-ends
(:mod:`simulator.testing.push_checks`); the rig's ``[push] scenario`` names the emulated
meters, the gateway's settings and the head-ends' outages. Each test states its real duration
on a lab rig (the sim rig runs the whole scenario once, in virtual time, for all of them).
"""

from __future__ import annotations

import pytest

from simulator.gateways.cme3100.gateway_settings import parse_schedule
from simulator.gateways.cme3100.reports.names import VALUE_KINDS
from simulator.gateways.cme3100.snmp import (
    METER_ADDRESS,
    METER_ENTRY,
    METER_STATUS,
    METER_TABLE,
    STATUS_REPORT,
)
from simulator.testing import push_checks as pc
from simulator.testing.plugin import quick_lab_hours
from simulator.testing.push_bench import run_push, snmp_agent_of
from simulator.testing.push_setup import apply_sim
from simulator.testing.snmp_manager import snmp_get, snmp_walk

pytestmark = [pytest.mark.cme3100, pytest.mark.requires_feature("push_reports")]


@pytest.fixture(scope="module")
def push_run(rig, tmp_path_factory, operator, pytestconfig):
    """One run of the rig's push scenario (shared by the module's tests) and its folder; on a
    lab rig the operator confirms the unit's setup sheet first, and ``--quick`` shortens the
    pass to the quick tests' needs."""
    out = tmp_path_factory.mktemp("push")
    ev, outcome = run_push(
        rig,
        out,
        confirm=lambda sheet: operator.confirm(sheet) is not None,
        lab_hours=quick_lab_hours(pytestconfig),
    )
    return ev, outcome, out


@pytest.fixture
def push(push_run, evidence):
    """The push evidence; the run's trace, what each head-end received, the SNMP traps
    and, in the lab, the bridge's raw wire log go to the test's evidence folder (the
    plugin's ``evidence`` fixture)."""
    ev, outcome, out = push_run
    evidence.attach("trace.jsonl", out / "trace.jsonl")
    if (out / "wire.log").is_file():  # a lab run: the bytes as the bridge saw them
        evidence.attach("wire.log", out / "wire.log")
    evidence.attach(
        "received.json",
        {name: [_arrival(a) for a in arrivals] for name, arrivals in ev.arrivals.items()},
    )
    evidence.attach("traps.json", [_trap(t) for t in ev.traps])
    return ev, outcome


def _arrival(a) -> dict:
    """One received report as JSON: bench time (s), target, type, body, the answer given."""
    d = a.delivery
    return {
        "t": a.t,
        "target": a.report.target,
        "content_type": a.report.content_type,
        "body": a.report.body.decode("utf-8", "replace"),
        "delivered": d.ok,
        "status": d.status,
        "reason": d.reason,
    }


def _trap(t) -> dict:
    """One SNMP notification as JSON: bench time (s), acknowledged, varbinds (dotted OIDs)."""
    plain = {".".join(map(str, o)): (".".join(map(str, v)) if isinstance(v, tuple) else v)
             for o, v in t.varbinds.items()}  # fmt: skip
    return {"t": t.t, "acknowledged": t.acknowledged, "varbinds": plain}


def _reports(ev, protocol: str | None = None, kinds=VALUE_KINDS) -> list[str]:
    return [
        name
        for name, r in ev.reports.items()
        if r["period_s"] and r["template"] % 1000 in kinds and protocol in (None, r["protocol"])
    ]


@pytest.mark.lab_minutes(15)
def test_every_reported_value_is_what_the_meter_sent(push):
    """Lab: 15 min (one readout and report period). Values: every value of every received
    report matches a read on the wire (x001: the very telegram bytes; value reports: each
    value decoded from that telegram), within the read instant seen on the wire."""
    ev, _ = push
    assert _reports(ev), "the scenario pushes no value report"
    got = [a for n in _reports(ev) for a in ev.arrivals[n] if a.delivery.ok]
    assert got, "no value report arrived: nothing to compare"  # else an empty run passes
    assert pc.check_values(ev) == []


@pytest.mark.lab_minutes(60)
def test_rounds_start_on_the_schedule_and_read_every_active_meter(push, rig):
    """Lab: 60 min (four rounds). Rounds start within 30 s after the cron firing (boot, bus and clock
    tolerance), each reads every active meter, passive meters are never addressed."""
    ev, outcome = push
    # the schedule the bench configured (the setup sheet), read as the gateway reads it
    schedule, _ = parse_schedule(apply_sim(rig).readout_schedule)
    first = schedule.next_after(ev.start)
    period_s = (schedule.next_after(first) - first).total_seconds()
    # the run's end: the sim's length, or in the lab the last byte on the wire
    wire_end = max((f["end"] for f in ev.frames), default=0.0)
    end = outcome.summary["sim_seconds"] if outcome is not None else wire_end
    assert pc.check_schedule(ev, period_s, 30.0, end) == []


@pytest.mark.lab_minutes(15)
def test_licence_the_latest_installed_are_not_read(push):
    """Lab: 15 min (one round). With more meters than the licence, the latest installed are passive."""
    ev, _ = push
    assert ev.passive, "the scenario installs no more meters than the licence"
    assert not set(ev.passive) & {m for _, m in ev.selected()}


@pytest.mark.requires_feature("push_http")
@pytest.mark.lab_minutes(60)
def test_retries_follow_table_9_while_the_head_end_fails(push):
    """Lab: 60 min (the lab rig's 30 min HTTP 503 from +15 min, and what follows). Attempts per report and their spacing as Table 9
    says for the report's schedule period (002 §6.32.1)."""
    ev, _ = push
    failing = [n for n in _reports(ev, "http", (*VALUE_KINDS, 7)) if any(
        not a.delivery.ok for a in ev.arrivals[n])]  # fmt: skip
    assert failing, "no HTTP report met a failing head-end"
    for name in failing:
        assert pc.check_retries(ev, name) == [], name


@pytest.mark.requires_feature("push_http")
@pytest.mark.lab_minutes(60)
def test_after_an_outage_every_unsent_value_arrives_once(push):
    """Lab: 60 min (the outage ends at +45 min, plus one report period). Value Period Auto: the next delivered report
    carries every value read since the last one, none twice."""
    ev, _ = push
    for name in _reports(ev):
        assert pc.check_recovery(ev, name) == [], name


@pytest.mark.requires_feature("push_http")
@pytest.mark.lab_minutes(120)
def test_a_hanging_head_end_is_dropped_after_the_protocol_timeout(push):
    """Lab: 120 min (the lab rig's hanging HTTP head-end from +60 min for 15 min, its
    retries after the timeout). The attempt after a hung one starts the
    protocol's timeout plus Table 9's spacing later (checked by check_retries)."""
    ev, _ = push
    hung = [
        (n, a)
        for n in ev.arrivals
        if ev.reports[n]["period_s"]  # scheduled reports (event reports have no retries)
        for a in ev.arrivals[n]
        if a.delivery.reason == "timeout"
    ]
    assert hung, "no head-end hung"
    for name in {n for n, _ in hung}:
        assert pc.check_retries(ev, name) == [], name


@pytest.mark.lab_minutes(20)
def test_failed_meters_show_in_the_status_report_and_snmp(push, rig):
    """Lab: 20 min (a round and the status report after it). A meter that stops answering,
    one that answers after the response timeout and one with a bad checksum are failed in
    the x007 status report, the SNMP Meter Status List (3) and the aggregated status (2),
    and a trap to the bench's trap receiver says so."""
    ev, outcome = push
    status = _reports(ev, kinds=(7,))
    assert status, "the scenario sends no status report"
    failed = pc.failed_meters_in_status_report(ev, status[0])
    assert set(failed) == {"91000004", "92000003", "93000001"}, failed
    # SNMP as an NMS reads it: the model's agent on 127.0.0.1, or the unit's ([dut] snmp)
    with snmp_agent_of(outcome, rig) as (host, port, community):
        assert snmp_get(host, port, STATUS_REPORT + (0,), community) == 2  # Table 8: WARNING
        rows = snmp_walk(host, port, METER_TABLE, community)
    column = len(METER_ENTRY)  # OID = entry . column . index
    ids = {o[-1]: v for o, v in rows if o[column] == METER_ADDRESS}
    codes = {ids[o[-1]]: v for o, v in rows if o[column] == METER_STATUS}
    assert {m: codes[m] for m in failed} == {m: 3 for m in failed}
    # and the trap receiver heard the change to WARNING (Table 8, CME3100.md §7)
    assert pc.check_status_traps(ev, 2) == []


@pytest.mark.requires_feature("event_reports")
@pytest.mark.lab_minutes(15)
def test_documented_events_arrive(push):
    """Lab: 15 min (start-up and the first round). Startup, installation done, licence exceeded and readout failed reach
    the event head-end as x005 reports."""
    ev, _ = push
    events = [n for n, r in ev.reports.items() if r["template"] % 1000 == 5]
    assert events
    expected = ("startup", "installation-done", "licence-exceeded", "readout-failed")
    assert pc.check_events(ev, events[0], expected) == []
