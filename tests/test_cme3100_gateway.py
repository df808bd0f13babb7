"""The CMe3100 as one device (kind = "cme3100"): licence and passive meters, Table 9 retries
seen in the trace, Value Period Auto through outages, cron ``?`` per device, the head-end's
own accounting, report files decoded back to the meters' values, SNMP through a real
pysnmp manager and notification receiver (seed 002 §6.5-6.9, §6.30, §6.32, §6.39.1)."""

from __future__ import annotations

import json
import random
import textwrap
from pathlib import Path

import pytest

from simulator.core.world import World
from simulator.devices import run_scenario
from simulator.gateways.cme3100.gateway import Cme3100
from simulator.gateways.cme3100.gateway_settings import Cme3100Settings
from simulator.gateways.cme3100.headend import report_text
from simulator.gateways.cme3100.reports.parse import parse_install
from simulator.mbus.bus import Bus
from simulator.mbus.frames import parse_body
from simulator.mbus.master import Master
from simulator.mbus.telegram import decode_telegram
from simulator.scenario import RunOptions, ScenarioError, load_toml

ROOT = Path(__file__).resolve().parents[1]
BUILDING = ROOT / "fixtures" / "scenarios" / "cme3100-building.toml"


def scenario(tmp_path: Path, body: str, name: str = "gw.toml") -> Path:
    """A small cme3100 scenario: 3 water meters installed by secondary search."""
    head = textwrap.dedent(
        """\
        kind = "cme3100"
        seed = 5
        [[slaves]]
        template = "water"
        count = 3
        id = 55000001
        """
    )
    path = tmp_path / name
    path.write_text(head + textwrap.dedent(body))
    return path


def run(path: Path, out: Path, **kw):
    res = run_scenario(path, RunOptions(out, **kw))
    trace = [json.loads(line) for line in (out / "trace.jsonl").read_text().splitlines()[1:]]
    return res.summary, trace


def selected_ids(trace) -> set[str]:
    """IDs the gateway selected on the wire: a SND_UD CI 52 carries the ID as BCD, least
    significant byte first (EN 13757-3 secondary addressing)."""
    return {
        bytes.fromhex(e["hex"])[7:11][::-1].hex()
        for e in trace
        if e["kind"] == "frame" and e["direction"] == "m2s" and e.get("ci") == "52"
    }


def table9_violations(summary, trace, expect: dict[str, tuple[int, float]]) -> list[str]:
    """Where the attempts in the trace break Table 9: per report ``(retries, spacing_s)``."""
    out = []
    for name, (retries, spacing) in expect.items():
        plan = summary["reports"][name]["retry_plan"]
        if plan != {"retries": retries, "spacing_s": spacing}:
            out.append(f"{name}: plan {plan}")
        attempts = [e for e in trace if e["kind"] == "push_attempt" and e["report"] == name]
        firsts = [i for i, e in enumerate(attempts) if e["attempt"] == 0]
        for i, j in zip(firsts, [*firsts[1:], None][: len(firsts)], strict=True):
            tries = attempts[i:j]
            if j is not None and any(e["ok"] for e in tries):
                continue
            if j is not None and [e["attempt"] for e in tries] != list(range(retries + 1)):
                out.append(f"{name} at {tries[0]['t']:.0f} s: {len(tries)} attempts")
            for a, b in zip(tries, tries[1:], strict=False):
                if abs(b["t"] - (a["t"] + a["duration_s"]) - spacing) > 1e-6:
                    out.append(f"{name} at {a['t']:.0f} s: retry after {b['t'] - a['t']:.0f} s")
    return out


@pytest.fixture(scope="module")
def building(tmp_path_factory):
    """The shipped building for 60 h: through the 30 h HTTP outage and the FTP login failure."""
    out = tmp_path_factory.mktemp("building")
    summary, trace = run(BUILDING, out, hours=60)
    return summary, trace, out


def test_licence_passive_meters_are_the_latest_installed_and_never_addressed(building):
    summary, trace, _ = building
    assert (summary["meters_installed"], summary["meters_active"]) == (40, 32)
    assert summary["passive_meters"] == [f"Flat {k}" for k in (
        "33 water", "34 water", "35 water", "36 electricity", "37 electricity",
        "38 electricity", "39 electricity", "40 electricity")]  # fmt: skip
    assert summary["events"]["licence-exceeded"] == 1
    selected = selected_ids(trace)
    passive = {f"{72000000 + i:08d}" for i in (13, 14, 15)} | {
        f"{73000000 + i:08d}" for i in range(1, 6)
    }
    assert len(selected) == 32 and not selected & passive


def test_outages_retry_as_table_9_and_every_value_arrives_exactly_once(building):
    summary, trace, _ = building
    http, ftp = summary["reports"]["hourly-http"], summary["reports"]["daily-ftp"]
    # hourly report (16-60 min band): 2 retries, 300 s apart; 30 h down = 30 failed reports
    assert http["retry_plan"] == {"retries": 2, "spacing_s": 300.0}
    assert (http["failed"], http["retries"], http["retry_gaps_s"]) == (30, 60, [300.0])
    # daily (> 23 h band): 6 retries at 3600 s; the login failure ends before the first retry
    assert ftp["retry_plan"] == {"retries": 6, "spacing_s": 3600.0}
    assert (ftp["failed"], ftp["retries"], ftp["retry_gaps_s"]) == (0, 1, [3600.0])
    for r in summary["reports"].values():
        assert r["delivered_twice"] == 0 and r["values_lost"] == 0 and r["exactly_once"]
        assert r["values_delivered"] + r["values_pending"] == summary["values_read"]
    assert http["values_pending"] == 0  # the hour after the outage carried all 30 h of values
    failed = [e for e in trace if e["kind"] == "push_attempt" and not e["ok"]]
    assert {e["reason"] for e in failed} == {"connection refused", "login failed"}
    assert {e["status"] for e in failed if e["protocol"] == "ftp"} == {530}


def test_report_files_decode_back_to_the_meters_values(building):
    """The FTP raw M-Bus report, decoded with the codec, gives each heat meter's energy as
    its profile had it at the read instant (tolerance: the last 3 s before the read)."""
    _, _, out = building
    files = sorted((out / "headend" / "daily-ftp").iterdir())
    rows = [r for f in files for r in parse_install(f.read_bytes().decode("cp1252"))]
    assert rows and all(r.serial == "0016045167" for r in rows)
    heat = [r for r in rows if r.meter.startswith("71")]
    world = World(31)  # the scenario's seed: every slave rebuilt from its own stream
    from simulator.building.runner import build_segment
    from simulator.building.scenario_model import MbusScenario

    sc = load_toml(BUILDING)
    mbus = MbusScenario(kind="mbus", seed=31, bus=sc.data["bus"], slaves=sc.data["slaves"])
    slaves = {f"{s.address.id:08d}": s for s in build_segment(world, sc, mbus).slaves}
    checked = 0
    for row in heat[:: max(1, len(heat) // 40)]:
        tg = decode_telegram(parse_body(row.raw))
        energy = next(r.value for r in tg.records if r.quantity == "energy")
        spec = next(
            s for s in slaves[f"{tg.header.address.id:08d}"].records if s.quantity == "energy"
        )
        t = (row.created - world.start.replace(tzinfo=None)).total_seconds()
        window = [spec.value(t - dt, world.clock(t - dt), random.Random(0)) for dt in (3, 0)]
        assert min(window) <= energy <= max(window) + 1e-9, (row.meter, row.created)
        checked += 1
    assert checked >= 20


def test_the_building_scenario_is_deterministic(tmp_path):
    a, _ = run(BUILDING, tmp_path / "a", hours=6)
    b, _ = run(BUILDING, tmp_path / "b", hours=6)
    assert (tmp_path / "a" / "trace.jsonl").read_bytes() == (
        tmp_path / "b" / "trace.jsonl"
    ).read_bytes()


BANDS = """
    [gateway]
    readout_schedule = "5min"
    [[gateway.reports]]
    name = "r15"
    template = 3001
    schedule = "15min"
    target = "http://h.invalid/a"
    [[gateway.reports]]
    name = "r60"
    template = 3001
    schedule = "hourly"
    target = "http://h.invalid/b"
    [[gateway.reports]]
    name = "r6h"
    template = 3001
    schedule = "0 */6 * * *"
    target = "http://h.invalid/c"
    [[gateway.reports]]
    name = "r24h"
    template = 3001
    schedule = "daily"
    target = "http://h.invalid/d"
    [[outages]]
    protocol = "http"
    start_h = 0
    hours = 1000
    fault = "5xx"
"""


#: Table 9 per band for BANDS' reports: 15 min, 1 h, 6 h, 24 h (002 §6.32.1).
TABLE_9 = {"r15": (1, 0.0), "r60": (2, 300.0), "r6h": (3, 500.0), "r24h": (6, 3600.0)}


def test_table_9_per_schedule_band_in_the_trace(tmp_path):
    summary, trace = run(scenario(tmp_path, BANDS), tmp_path / "out", hours=49)
    assert table9_violations(summary, trace, TABLE_9) == []
    for name in TABLE_9:
        attempts = [e for e in trace if e["kind"] == "push_attempt" and e["report"] == name]
        assert attempts and all(e["status"] == 503 and not e["ok"] for e in attempts)
    assert summary["snmp_status"] == 3  # every report failed: ERROR (Table 8)


VALUE_PERIOD = """
    [gateway]
    readout_schedule = "15min"
    [[gateway.reports]]
    name = "hourly"
    template = 3001
    schedule = "hourly"
    target = "http://h.invalid/v"
    [[outages]]
    protocol = "http"
    start_h = 2
    hours = {hours}
"""


@pytest.mark.parametrize("down_h, lost_per_meter", [(30, 0), (50, 24)])
def test_value_period_auto_delivers_unsent_values_once_and_names_the_oldest_lost(
    tmp_path, down_h, lost_per_meter
):
    """Auto looks 180 readouts back (002 §6.32.2). The last report before the outage (01:00)
    carried the readouts up to 01:00; the first one after it (at its end) finds 4 x (down + 1)
    unsent 15-min readouts per meter: 124 for 30 h (all arrive), 204 for 50 h (exactly the 24
    oldest are lost, and named)."""
    path = scenario(tmp_path, VALUE_PERIOD.format(hours=down_h))
    summary, trace = run(path, tmp_path / "out", hours=down_h + 4)
    r = summary["reports"]["hourly"]
    assert r["values_lost"] == 3 * lost_per_meter and r["delivered_twice"] == 0
    assert r["values_delivered"] + r["values_lost"] + r["values_pending"] == summary["values_read"]
    lost = [e for e in trace if e["kind"] == "values_lost"]
    if not lost_per_meter:
        assert not lost
        return
    # the last delivered report before the outage carried the readouts up to its time
    last_ok = max(
        e["t"] for e in trace if e["kind"] == "push_attempt" and e["ok"] and e["t"] < 7200 + 60
    )
    reads: dict[str, list[str]] = {}
    for line in (tmp_path / "out" / "readouts.csv").read_text().splitlines()[1:]:
        t_s, read_at, meter, _pos, status, *_ = line.split(",")
        if status == "ok" and float(t_s) > last_ok + 1e-3:  # t_s is rounded to 1 us
            reads.setdefault(meter, []).append(read_at)
    named: dict[str, list[str]] = {}  # lost values are named as each attempt finds them
    for e in lost:
        named.setdefault(e["meter"], []).extend(e["read_at"])
    assert sorted(named) == sorted(reads)
    for meter, times in named.items():  # exactly the oldest unsent readouts, each once
        assert times == reads[meter][:lost_per_meter]


def test_cron_question_mark_is_drawn_per_device_and_fixed_per_seed():
    def schedule(seed: int, name: str) -> str:
        world = World(seed)
        s = Cme3100Settings(readout_schedule="?0-59 * * * *")
        gw = Cme3100(world, s, Master(Bus(world)), {}, meter_list=[], name=name)
        return str(sorted(gw.schedule.patterns[0].minute))

    devices = {schedule(1, f"gw{i}") for i in range(8)}
    assert len(devices) > 1  # not one value for all devices
    assert schedule(1, "gw3") == schedule(1, "gw3")  # fixed for a device and seed
    assert len({schedule(seed, "gw3") for seed in range(8)}) > 1  # drawn, not a constant


def test_a_bad_scenario_names_every_problem_with_its_line(tmp_path):
    path = scenario(
        tmp_path,
        """
        [gateway]
        licence = 100
        readout_schedule = "0 25 * * *"
        [[gateway.reports]]
        name = "x"
        template = 3999
        target = "http://h.invalid/"
        [[outages]]
        protocol = "ftp"
        start_h = 1
        hours = 1
        """,
    )
    with pytest.raises(ScenarioError) as info:
        run_scenario(path, RunOptions(tmp_path / "out"))
    keys = {i.key for i in info.value.issues}
    assert {"gateway.licence", "gateway.readout_schedule", "gateway.reports.0.template"} <= keys
    assert "outages.0.protocol" in keys and all(i.line for i in info.value.issues)
    assert not (tmp_path / "out").exists()


def test_mail_report_is_a_cp1252_csv_attachment(building):
    _, _, out = building
    mails = sorted((out / "headend" / "daily-mail").iterdir())
    from simulator.sinks.base import Report

    text = report_text(Report("x", (mails[0].read_bytes(),), "message/rfc822"), "mail")
    assert text.startswith("#serial-number;") and ";created;" in text
    assert b'charset="windows-1252"' in mails[0].read_bytes()


def test_snmp_traps_on_each_status_change_and_a_manager_reads_the_lists(tmp_path):
    """The gateway model with a real INFORM sender: a pysnmp receiver gets a notification when
    the HTTP outage fails its only report (ERROR) and when it recovers (Table 8); a pysnmp
    manager then reads the Status Report and walks the Meter Status List from the agent."""
    from test_cme3100_snmp_agent import HOST, get, plain, query, walk

    from simulator.building.runner import build_segment
    from simulator.building.scenario_model import MbusScenario
    from simulator.gateways.cme3100.gateway_scenario import validate
    from simulator.gateways.cme3100.snmp import METER_TABLE, STATUS_REPORT
    from simulator.gateways.cme3100.snmp_agent import InformSender, SnmpAgent
    from simulator.sinks.outages import Outage, OutageSink
    from simulator.sinks.snmp_traps import TrapReceiver

    rx, sender = TrapReceiver(HOST).start(), InformSender()
    path = scenario(
        tmp_path,
        f"""
        [gateway]
        licence = 8
        [gateway.snmp]
        enabled = true
        traps = [{{ host = "{HOST}", port = {rx.port} }}]
        trap_timeout_ms = 1000
        [[gateway.reports]]
        name = "hourly"
        template = 3001
        target = "http://h.invalid/s"
        """,
    )
    try:
        doc = load_toml(path)
        sc = validate(doc)
        world = World(sc.seed, start=sc.start)
        mbus = MbusScenario(kind="mbus", seed=sc.seed, bus=sc.bus, slaves=sc.slaves)
        seg = build_segment(world, doc, mbus)
        sink = OutageSink("http", clock=lambda: world.now, outages=[Outage(7200, 10800, "5xx")])
        gw = Cme3100(world, sc.gateway, seg.master, {"hourly": sink}, trap_sink=sender)
        gw.start()
        world.run(until=5 * 3600)
        got = [int(r.meta.varbinds[STATUS_REPORT + (0,)]) for r in rx.received]
        assert got == [3, 1]  # its only report failed at 02:00: ERROR; OK again at 03:00
        with SnmpAgent(gw.snmp, HOST, port=0) as agent:
            err, _, vbs = query(get, agent.port, STATUS_REPORT + (0,))
            assert err is None and int(vbs[0][1]) == 1
            rows = plain(query(walk, agent.port, METER_TABLE))
        status = [v for o, v in rows if o[len(METER_TABLE) + 1] == 3]  # status column
        assert status == [1, 1, 1]  # every meter read OK in the last round
    finally:
        sender.close()
        rx.stop()


# -- the checks can fail: the model broken on purpose, kept as tests -------------------------


def _short_outage(tmp_path):
    return scenario(tmp_path, VALUE_PERIOD.format(hours=6), name="mut.toml")


def test_mutation_a_failed_report_settled_as_delivered_is_caught(tmp_path, monkeypatch):
    from simulator.gateways.cme3100.value_period import DeliveryLedger

    settle = DeliveryLedger.settle
    monkeypatch.setattr(DeliveryLedger, "settle", lambda self, sel, ok: settle(self, sel, True))
    summary, _ = run(_short_outage(tmp_path), tmp_path / "out", hours=10)
    r = summary["reports"]["hourly"]
    assert r["values_missing"] > 0 and not r["exactly_once"] and not summary["exactly_once"]


def test_mutation_a_skipped_retry_is_caught(tmp_path, monkeypatch):
    from simulator.gateways.cme3100 import push

    plan = push.slot_plan

    def one_retry_less(*a):
        rule = plan(*a)
        return lambda period: push.RetryPlan(max(0, rule(period).count - 1), rule(period).spacing_s)

    monkeypatch.setattr("simulator.gateways.cme3100.gateway.slot_plan", one_retry_less)
    summary, trace = run(scenario(tmp_path, BANDS), tmp_path / "out", hours=7)
    assert table9_violations(summary, trace, TABLE_9)


def test_mutation_reading_a_passive_meter_is_caught(tmp_path, monkeypatch):
    from simulator.gateways.cme3100.installation import Installation

    monkeypatch.setattr(Installation, "active", lambda self: list(self.meters))
    path = scenario(tmp_path, "[gateway]\nlicence = 8\n", name="p.toml")
    text = path.read_text().replace("count = 3", "count = 10")
    path.write_text(text)
    summary, trace = run(path, tmp_path / "out", hours=2)
    passive = {f"{55000000 + i:08d}" for i in (9, 10)}  # the latest installed two
    assert summary["meters_passive"] == 2 and selected_ids(trace) & passive  # the check sees it


def test_real_sinks_carry_the_same_reports_as_the_in_world_run(tmp_path):
    """``--real-sinks``: real clients to real local receivers (HTTP, FTP, SMTP) failing in the
    same world-time windows; the receivers got byte for byte what the clients delivered, and
    the accounting equals the in-world run's."""
    path = ROOT / "fixtures" / "scenarios" / "cme3100-suite.toml"
    world = run_scenario(path, RunOptions(tmp_path / "w", hours=12)).summary
    real = run_scenario(path, RunOptions(tmp_path / "r", hours=12, real_sinks=True)).summary
    assert real["real_sinks"] and all(v["same"] for v in real["real_sinks"].values())
    assert real["real_sinks"]["http"]["received"] > 0 and real["real_sinks"]["ftp"]["received"]
    assert world["real_sinks"] is None
    for name, r in world["reports"].items():
        keys = ("reports", "delivered", "failed", "retries", "values_delivered", "values_lost")
        assert {k: real["reports"][name][k] for k in keys} == {k: r[k] for k in keys}, name
    assert real["exactly_once"] and world["exactly_once"]


def test_the_serial_is_ten_ascii_digits():
    import pydantic

    assert Cme3100Settings(serial="0016000001").serial == "0016000001"
    for bad in ("000000000\u0660", "001600000", "00160000011", "00160O0001"):
        with pytest.raises(pydantic.ValidationError, match="serial"):
            Cme3100Settings(serial=bad)
