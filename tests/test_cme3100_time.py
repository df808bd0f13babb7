"""The CMe3100's own clock (docs/cme3100.md "Time"; seed 002 §6.3.1, Table 11; CME3100.md
§10, Gaps #13): RTC drift, NTP sync with its accepted difference, schedules on the gateway's
clock, and what a time step does to them. Exact world times throughout."""

from __future__ import annotations

import json
import textwrap
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from simulator.core.world import World
from simulator.devices import run_scenario
from simulator.gateways.cme3100.clock import MANUAL_DRIFT_PPM, GatewayClock, Ticker
from simulator.gateways.cme3100.cron import CronSchedule
from simulator.gateways.cme3100.gateway import Cme3100
from simulator.gateways.cme3100.gateway_settings import Cme3100Settings
from simulator.mbus.bus import Bus
from simulator.mbus.master import Master
from simulator.scenario import RunOptions

START = datetime(2026, 1, 5)  # the default scenario start, as local time


def scenario(tmp_path: Path, body: str) -> Path:
    """Two water meters from a meter list (no search: the first round is the first event
    that takes bus time) and the given extra TOML."""
    (tmp_path / "m.csv").write_text(
        "Position,SecondaryAddress,BaudRate,AddressingMode\nA,55000001,2400,secondary\n"
        "B,55000002,2400,secondary\n"
    )
    head = 'kind = "cme3100"\nseed = 5\n[[slaves]]\ntemplate = "water"\ncount = 2\n'
    head += 'id = 55000001\n[install]\nmeter_list = "m.csv"\n'
    path = tmp_path / "gw.toml"
    path.write_text(head + textwrap.dedent(body))
    return path


def run(path: Path, out: Path, hours: float) -> tuple[dict, list[dict]]:
    res = run_scenario(path, RunOptions(out, hours=hours))
    trace = [json.loads(line) for line in (out / "trace.jsonl").read_text().splitlines()[1:]]
    return res.summary, trace


def rounds(trace: list[dict]) -> list[float]:
    return [e["started"] for e in trace if e["kind"] == "readout_round"]


def read_at(out: Path) -> list[tuple[float, str]]:
    rows = (out / "readouts.csv").read_text().splitlines()[1:]
    return [(float(r.split(",")[0]), r.split(",")[1]) for r in rows]


# -- the clock itself ----------------------------------------------------------------------------
def test_the_manual_drift_is_two_seconds_a_day():
    world = World(1)
    clock = GatewayClock(world, MANUAL_DRIFT_PPM)
    assert clock.local_s(86_400.0) == pytest.approx(86_402.0, abs=1e-9)
    assert clock.local(86_400.0) == START + timedelta(days=1, seconds=2)
    assert GatewayClock(world).local(1234.5) == world.clock(1234.5).replace(tzinfo=None)


def test_a_ticker_skips_what_a_forward_step_jumps_and_repeats_nothing_after_a_back_step():
    world = World(1)
    clock = GatewayClock(world)
    ticker = Ticker(clock, CronSchedule.parse("0 * * * *"))
    fired: list[tuple[float, datetime]] = []

    def loop():
        while True:
            tick = yield from ticker.next()
            fired.append((world.now, tick))

    def steps():
        yield world.timeout(5400)  # 01:30 -> 03:10: 02:00 and 03:00 are jumped over
        clock.step(6000, "test")
        yield world.timeout(3600)  # 04:10 (after the 04:00 tick) -> 03:10: nothing repeats
        clock.step(-3600, "test")

    world.process(loop())
    world.process(steps())
    world.run(until=16_000)
    assert fired == [
        (3600.0, START + timedelta(hours=1)),
        (5400.0 + 3000.0, START + timedelta(hours=4)),  # 03:10 + 50 min
        (9000.0 + 6600.0, START + timedelta(hours=5)),  # 03:10 + 110 min
    ]


# -- schedules on the gateway's clock --------------------------------------------------------------
@pytest.mark.parametrize("ppm", [0.0, 1000.0, -500.0])
def test_rounds_and_created_times_follow_the_drifting_clock(tmp_path, ppm):
    """Without NTP the hourly round k starts when the RTC reads k:00, world k*3600/(1+r),
    and every stored read time is the RTC's reading at the world time of the read."""
    path = scenario(tmp_path, f"[gateway.time]\nrtc_drift_ppm = {ppm}\nntp = false\n")
    _, trace = run(path, tmp_path / "out", hours=6)
    rate = 1 + ppm * 1e-6
    expect = [k * 3600 / rate for k in range(1, 7) if k * 3600 / rate < 6 * 3600]
    assert rounds(trace) == pytest.approx(expect, abs=1e-9)
    for t_s, text in read_at(tmp_path / "out"):
        got = datetime.fromisoformat(text)
        assert abs((got - START).total_seconds() - t_s * rate) < 1e-5, (t_s, text)


def test_reports_fire_on_the_gateway_clock(tmp_path):
    path = scenario(
        tmp_path,
        """
        [gateway.time]
        rtc_drift_ppm = 1000
        ntp = false
        [[gateway.reports]]
        name = "r"
        template = 3001
        schedule = "30 * * * *"
        target = "http://h.invalid/r"
        """,
    )
    _, trace = run(path, tmp_path / "out", hours=3)
    sent = [e["t"] for e in trace if e["kind"] == "push_attempt"]
    assert sent == pytest.approx([(k * 3600 + 1800) / 1.001 for k in range(3)], abs=1e-9)
    files = [e["file"] for e in trace if e["kind"] == "push_attempt"]  # built at local time
    assert [f.split("_")[2] for f in files] == [f"20260105{h:02d}3000" for h in range(3)]


def test_ntp_steps_only_at_the_accepted_difference_and_the_round_is_not_repeated(tmp_path):
    """1000 ppm fast, hourly sync: at local k:00 the difference is k * 3600 * 0.001/1.001 s;
    k = 16 gives 57.5 s (kept), k = 17 gives 61.1 s: the clock steps back to true time. The
    17:00 round then runs once, when the stepped clock reads 17:00 again."""
    path = scenario(tmp_path, "[gateway.time]\nrtc_drift_ppm = 1000\n")
    _, trace = run(path, tmp_path / "out", hours=19)
    steps = [e for e in trace if e["kind"] == "clock_step"]
    w17 = 17 * 3600 / 1.001
    diff = 17 * 3600 - w17
    assert len(steps) == 1
    step = steps[0]
    assert step["t"] == pytest.approx(w17, abs=1e-9) and step["reason"] == "ntp"
    assert step["step_s"] == pytest.approx(-diff, abs=1e-6)
    before = datetime.fromisoformat(step["before"]) - START - timedelta(hours=17)
    after = datetime.fromisoformat(step["after"]) - START - timedelta(seconds=w17)
    assert abs(before.total_seconds()) < 2e-6 and abs(after.total_seconds()) < 2e-6
    expect = [k * 3600 / 1.001 for k in range(1, 17)]
    expect.append(w17 + diff / 1.001)  # the clock reads 17:00 again
    expect += [w17 + (h * 3600 - w17) / 1.001 for h in (18, 19)]  # 18:00, 19:00
    assert rounds(trace) == pytest.approx(expect, abs=1e-6)


def test_the_manual_drift_is_never_stepped_in_a_week():
    """< 2 s/day stays below the accepted 60 s for 30 days: an hourly sync never steps."""
    world = World(2)
    s = Cme3100Settings(time={"rtc_drift_ppm": MANUAL_DRIFT_PPM})
    gw = Cme3100(world, s, Master(Bus(world)), {}, meter_list=[]).start()
    world.run(until=7 * 86_400)
    assert gw.clock.steps == []
    assert gw.clock.offset_s() == pytest.approx(14.0, abs=1e-6)


def test_scenario_steps_skip_missed_rounds_and_repeat_none(tmp_path):
    """Forward at 00:30 by 100 min (-> 02:10): 01:00 and 02:00 are skipped, 03:00 comes
    at world 00:30 + 50 min. Back at 03:10 local by 1 h (-> 02:10): 03:00 does not repeat,
    04:00 comes 110 min later."""
    path = scenario(
        tmp_path,
        """
        [gateway.time]
        ntp = false
        [[actions]]
        at_h = 0.5
        do = "clock_step"
        step_s = 6000
        [[actions]]
        at_h = 1.5
        do = "clock_step"
        step_s = -3600
        """,
    )
    _, trace = run(path, tmp_path / "out", hours=5)
    assert rounds(trace) == [4800.0, 5400.0 + 6600.0, 5400.0 + 10200.0]
    hours = sorted({text[11:16] for _, text in read_at(tmp_path / "out")})
    assert hours == ["03:00", "04:00", "05:00"]
    steps = [
        (e["t"], e["step_s"], e["before"], e["after"]) for e in trace if e["kind"] == "clock_step"
    ]
    assert steps == [
        (1800.0, 6000.0, "2026-01-05T00:30:00", "2026-01-05T02:10:00"),
        (5400.0, -3600.0, "2026-01-05T03:10:00", "2026-01-05T02:10:00"),
    ]
