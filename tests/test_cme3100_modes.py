"""CMe3100 readout modes and install paths (docs/cme3100.md "Readout modes", "Installation";
seed 002 §6.5, §6.16.2, §6.21-6.23, §6.33; CME3100.md §1, §3, §6): continuous readout in
RAM only, manual readouts, readout job retries, the primary scan's wire time, the
commission report, and the operator switching meters and loading a licence."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from simulator.devices import run_scenario
from simulator.gateways.cme3100.reports.parse import parse_install
from simulator.scenario import RunOptions

METERS = (
    "Position,SecondaryAddress,BaudRate,AddressingMode\n"
    "A,55000001,2400,secondary\nB,55000002,2400,secondary\nC,55000003,2400,secondary\n"
)


def scenario(tmp_path: Path, body: str, *, slaves: str = "", meter_list: bool = True) -> Path:
    (tmp_path / "m.csv").write_text(METERS)
    head = 'kind = "cme3100"\nseed = 5\n'
    head += slaves or '[[slaves]]\ntemplate = "water"\ncount = 3\nid = 55000001\n'
    if meter_list:
        head += '[install]\nmeter_list = "m.csv"\n'
    path = tmp_path / "gw.toml"
    path.write_text(head + textwrap.dedent(body))
    return path


def run(path: Path, out: Path, hours: float) -> tuple[dict, list[dict]]:
    res = run_scenario(path, RunOptions(out, hours=hours))
    trace = [json.loads(line) for line in (out / "trace.jsonl").read_text().splitlines()[1:]]
    return res.summary, trace


def of(trace: list[dict], kind: str) -> list[dict]:
    return [e for e in trace if e["kind"] == kind]


# -- readout modes -------------------------------------------------------------------------------
def test_continuous_readout_reads_back_to_back_and_stores_only_the_schedule(tmp_path):
    body = """
        [gateway]
        continuous_readout = true
        [[gateway.reports]]
        name = "r"
        template = 3001
        schedule = "hourly"
        target = "http://h.invalid/r"
        """
    summary, trace = run(scenario(tmp_path, body), tmp_path / "out", hours=3)
    reads = of(trace, "readout")
    rounds = of(trace, "readout_round")
    assert [r["trigger"] for r in rounds] == ["schedule"] * 2
    # the database and the reports hold the scheduled rounds' values only
    assert summary["values_read"] == 6 and summary["reports"]["r"]["values_delivered"] == 6
    assert len(reads) > 100  # back to back: hundreds of readouts in 3 h
    # back to back: each read starts within the bus idle of the one before (block B 1 s
    # request idle), except where a round took the bus
    gaps = [b["started"] - a["t"] for a, b in zip(reads, reads[1:], strict=False)]
    assert max(gaps) < 1.0 + 1e-6
    # a round waits at most for the one continuous read on the bus when it fires
    longest = max(r["t"] - r["started"] for r in reads)
    for k, r in enumerate(rounds, start=1):
        assert k * 3600 <= r["started"] <= k * 3600 + longest + 1.0


def test_manual_readouts_of_all_and_of_one_meter_are_stored(tmp_path):
    body = """
        [[actions]]
        at_h = 0.25
        do = "read_all"
        [[actions]]
        at_h = 0.5
        do = "read_meter"
        position = "B"
        """
    summary, trace = run(scenario(tmp_path, body), tmp_path / "out", hours=1.1)
    rounds = [(r["trigger"], r["started"], r["meters"]) for r in of(trace, "readout_round")]
    assert rounds == [("manual", 900.0, 3), ("manual", 1800.0, 1), ("schedule", 3600.0, 3)]
    assert summary["values_read"] == 7


def test_a_read_meter_action_names_a_meter_of_the_list(tmp_path):
    from simulator.scenario import ScenarioError

    path = scenario(tmp_path, '[[actions]]\nat_h = 1\ndo = "read_meter"\nposition = "Z"\n')
    with pytest.raises(ScenarioError) as info:
        run_scenario(path, RunOptions(tmp_path / "out"))
    assert [i.key for i in info.value.issues] == ["actions.0.position"]


SILENT_C = """
[[slaves]]
template = "water"
count = 2
id = 55000001
[[slaves]]
template = "water"
count = 1
id = 55000003
[[slaves.faults]]
kind = "silent"
commands = ["REQ_UD2"]
"""


def test_job_retries_reread_only_the_failed_meter_after_the_offset(tmp_path):
    """Meter C never answers REQ_UD2: the scheduled round fails it; the job retries it 3
    times (Gaps #10), each 60 s after the round before ended; one readout-failed event
    after the last retry names it."""
    summary, trace = run(scenario(tmp_path, "", slaves=SILENT_C), tmp_path / "out", hours=1.2)
    rounds = of(trace, "readout_round")
    assert [(r["trigger"], r["meters"], r["failed"]) for r in rounds] == [
        ("schedule", 3, 1),
        ("retry", 1, 1),
        ("retry", 1, 1),
        ("retry", 1, 1),
    ]
    for a, b in zip(rounds, rounds[1:], strict=False):
        assert b["started"] == pytest.approx(a["t"] + 60.0, abs=1e-9)
    failed = [e for e in of(trace, "gateway_event") if e["event"] == "readout-failed"]
    assert [(e["t"], e["detail"]) for e in failed] == [(rounds[-1]["t"], "C")]


def test_no_job_retries_when_set_to_zero(tmp_path):
    body = "[gateway]\njob_retries = 0\n"
    _, trace = run(scenario(tmp_path, body, slaves=SILENT_C), tmp_path / "out", hours=1.2)
    assert [r["trigger"] for r in of(trace, "readout_round")] == ["schedule"]
    failed = [e for e in of(trace, "gateway_event") if e["event"] == "readout-failed"]
    assert [e["t"] for e in failed] == [of(trace, "readout_round")[0]["t"]]


# -- installation --------------------------------------------------------------------------------
def test_a_primary_scan_takes_what_the_wire_takes(tmp_path):
    """0-250 with block A (004 §6.25.2): every SND_NKE (5 bytes, 11 bits each at 2400
    bit/s) is followed by the 10 s init idle; a silent address is tried twice (selection
    retries 1). Three meters at 1-3: 248 x 2 + 3 tries; the install ends when the last
    try's 1 s response timeout has run out."""
    slaves = '[[slaves]]\ntemplate = "water"\ncount = 3\nid = 55000001\nprimary = 1\n'
    path = scenario(tmp_path, '[install]\nsearch = "primary"\n', slaves=slaves, meter_list=False)
    summary, trace = run(path, tmp_path / "out", hours=1.5)
    install = of(trace, "install")[0]
    assert (install["method"], install["meters"]) == ("primary_search", 3)
    tx = 5 * 11 / 2400
    tries = 248 * 2 + 3
    assert install["t"] == pytest.approx((tries - 1) * (10.0 + tx) + tx + 1.0, abs=1e-6)
    assert summary["meters_installed"] == 3


def test_the_commission_report_carries_the_install_readout_as_x001(tmp_path):
    body = """
        [[gateway.event_reports]]
        name = "commission"
        template = 2001
        events = ["installation-done"]
        target = "ftp://h.invalid/c"
        """
    _, trace = run(scenario(tmp_path, body), tmp_path / "out", hours=0.5)
    first = of(trace, "readout_round")[0]
    assert (first["trigger"], first["meters"], first["ok"]) == ("install", 3, 3)
    files = sorted((tmp_path / "out" / "headend" / "commission").iterdir())
    assert len(files) == 1
    rows = parse_install(files[0].read_bytes().decode("cp1252"))
    assert sorted(r.meter for r in rows) == ["55000001", "55000002", "55000003"]


def test_an_x001_event_report_lists_only_installation_done(tmp_path):
    from simulator.scenario import ScenarioError

    body = """
        [[gateway.event_reports]]
        template = 3001
        events = ["startup"]
        target = "http://h.invalid/c"
        """
    with pytest.raises(ScenarioError) as info:
        run_scenario(scenario(tmp_path, body), RunOptions(tmp_path / "out"))
    assert "commission report" in str(info.value)


def test_operator_switches_meters_and_loads_a_licence_at_given_times(tmp_path):
    """40-meter list under the 8-meter default licence: 32 passive. At 1.5 h a passive meter
    cannot be switched active (licence full: refused, nothing changes); at 2.5 h M03 is
    switched passive by hand and M09, passive only by the licence, takes its place; at 3.5 h
    a 32-meter licence file activates M09-M33 (M03 stays passive by hand); at 4.5 h switching
    M03 back is refused again: 32 meters are active (docs/cme3100.md "Installation")."""
    rows = "".join(f"M{i:02d},{55000000 + i},2400,secondary\n" for i in range(1, 41))
    body = """
        [[actions]]
        at_h = 1.5
        do = "meter_state"
        position = "M20"
        state = "active"
        [[actions]]
        at_h = 2.5
        do = "meter_state"
        position = "M03"
        state = "passive"
        [[actions]]
        at_h = 3.5
        do = "licence"
        licence = 32
        [[actions]]
        at_h = 4.5
        do = "meter_state"
        position = "M03"
        state = "active"
        """
    slaves = '[bus.master]\nmax_unit_loads = 64\n[[slaves]]\ntemplate = "water"\ncount = 40\n'
    slaves += "id = 55000001\n"
    path = scenario(tmp_path, body, slaves=slaves)
    (tmp_path / "m.csv").write_text("Position,SecondaryAddress,BaudRate,AddressingMode\n" + rows)
    summary, trace = run(path, tmp_path / "out", hours=5.2)
    assert [r["meters"] for r in of(trace, "readout_round")] == [8, 8, 8, 32, 32]
    assert all(r["failed"] == 0 for r in of(trace, "readout_round"))
    changes = [
        (e["t"], e["detail"])
        for e in of(trace, "gateway_event")
        if e["event"] == "configuration-changed"
    ]
    assert changes == [
        (2.5 * 3600, "meter M03 passive"),
        (3.5 * 3600, "licence 32"),
    ]
    assert summary["licence"] == 32 and summary["meters_active"] == 32
    assert summary["passive_meters"] == ["M03", *(f"M{i}" for i in range(34, 41))]


def test_the_bus_goes_to_a_waiting_round_before_continuous_readout():
    from simulator.core.world import World
    from simulator.gateways.cme3100.bus_lock import CONTINUOUS, ROUND, BusLock

    world = World(1)
    lock = BusLock(world)
    order: list[tuple[float, str]] = []

    def job(name: str, priority: int, start: float, hold: float):
        yield world.timeout(start)
        yield from lock.acquire(name, priority)
        order.append((world.now, name))
        yield world.timeout(hold)
        lock.release()

    world.process(job("manual", ROUND, 0, 10))
    world.process(job("continuous", CONTINUOUS, 1, 1))  # waits first...
    world.process(job("schedule", ROUND, 2, 5))  # ...yet the round goes first
    world.run()
    assert order == [(0, "manual"), (10, "schedule"), (15, "continuous")]
    assert lock.holder is None and lock.waiting == 0
