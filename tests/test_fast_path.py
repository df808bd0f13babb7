"""The exact fast path (:meth:`World.sleep` without a SimPy event) and the event path give
byte-identical traces.

Random small buses (twins by secondary and by primary address, every fault kind, late
replies running into the next request, multi-telegram meters, a collision detector, a
cable run above its maximum baud rate) are searched or scanned and read for a few rounds,
once with ``world.fast_path`` on and once off; a second process that wakes at random times
and writes its own events makes both paths alternate, and the run is cut in random steps
(the end of ``world.run(until=...)`` must bound the fast path too). The trace text, the
readouts and the bus counters must be equal to those of the reference run: every wait an
event and every request offered to every slave (``Bus.addressed = False``), so the addressed
dispatch is checked by the same runs. The run kinds (``mbus``, ``cme3100``) are
checked the same way through ``RunOptions.event_path``.

The readout fast path (:mod:`simulator.mbus.fast_readout`: a readout proven clean and alone
runs without SimPy events) is covered by the same comparisons, and by 80 random mostly-clean
buses and 8 random ``mbus`` scenarios (trace.jsonl, readouts.csv, summary) that must take it
often enough for the comparison to mean something.
"""

from __future__ import annotations

import io
import json
import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulator.core import events as ev
from simulator.core.trace import Trace
from simulator.core.world import World
from simulator.devices import run_scenario
from simulator.mbus.address import SecondaryAddress, SecondaryMask
from simulator.mbus.bus import Bus
from simulator.mbus.electrical import Cable, MasterPort
from simulator.mbus.faults import FAULT_KINDS, Fault
from simulator.mbus.master import Master, MasterSettings
from simulator.mbus.slave import ResponseDelay, Slave
from simulator.meters.wired import TEMPLATES
from simulator.scenario import RunOptions

SCEN = Path(__file__).resolve().parents[1] / "fixtures" / "scenarios"

_FAULT = st.one_of(
    st.none(),
    st.builds(
        lambda kind, p, cmd: Fault(kind, p, commands=cmd),
        st.sampled_from(FAULT_KINDS),
        st.sampled_from([0.3, 1.0]),
        st.sampled_from([(), ("REQ_UD2",), ("SND_UD",), ("SND_NKE",)]),
    ),
)
_METER = st.fixed_dictionaries(
    {
        "id": st.sampled_from([11111111, 11111112, 11111121, 22222222]),  # repeats: twins
        "version": st.sampled_from([1, 2]),
        "primary": st.integers(0, 4),  # repeats: primary twins
        "template": st.sampled_from(sorted(TEMPLATES)[:4]),
        "telegrams": st.integers(1, 3),
        "fault": _FAULT,
        # a fixed delay that can outlast the master's timeout, or fall into its deaf time
        "delay": st.sampled_from(["window", "window", "late", "early"]),
        "baud": st.sampled_from([2400, 2400, 9600]),
    }
)
_CASE = st.fixed_dictionaries(
    {
        "meters": st.lists(_METER, min_size=1, max_size=5),
        "install": st.sampled_from(["search", "scan", "list"]),
        "detector": st.booleans(),
        "cable_m": st.sampled_from([100.0, 3000.0]),  # 3 km: above max baud, bit errors
        "multi": st.booleans(),
        "baud": st.sampled_from([2400, 9600, 300]),
        "other": st.lists(st.floats(0.0, 200.0), max_size=6),  # another process's wake-ups
        "steps": st.lists(st.floats(1.0, 900.0), min_size=1, max_size=4),
        "seed": st.integers(0, 10_000),
    }
)


DELAYS = {
    "window": ResponseDelay(),
    "late": ResponseDelay(1.05, 1.05, unit="s"),
    "early": ResponseDelay(0.001, 0.001, unit="s"),
}


def _run(
    case: dict, fast: bool, addressed: bool = True, silent: bool = False
) -> tuple[str, list, dict, dict]:
    """One run of ``case``: trace text, readouts, bus counters (with the readout paths and
    the trace's event count), request paths. ``silent``: no trace file (nobody wants the
    ``frame`` events, as at ``--trace-level summary``)."""
    out = io.StringIO()
    world = World(case["seed"], trace=Trace(keep=False, sink=None if silent else out))
    world.fast_path = fast
    bus = Bus(
        world,
        baud=case.get("baud", 2400),
        master=MasterPort(collision_detector=case["detector"]),
        cable=Cable(length_m=case["cable_m"]),
    )
    bus.addressed = addressed
    slaves = []
    for i, m in enumerate(case["meters"]):
        tpl = TEMPLATES[m["template"]]
        delay = DELAYS[m.get("delay", "late" if m.get("late") else "window")]
        s = Slave(
            world,
            SecondaryAddress(m["id"], "ELV", m["version"], tpl.medium),
            primary=m["primary"],
            records=tpl.build(world.rng(f"profile/{i}"), m["telegrams"]),
            telegrams=m["telegrams"],
            delay=delay,
            baud=m.get("baud", 2400),
            faults=[m["fault"]] if m["fault"] else [],
            name=f"slave/{i}",
        )
        bus.attach(s)
        slaves.append(s)
    ms = MasterSettings(
        response_timeout=1.0,
        init_idle=0.2,
        collision_idle=0.5,
        request_idle=0.1,
        multi_telegram=case["multi"],
    )
    master = Master(bus, ms)
    reads: list = []

    def gateway():
        if case["install"] == "search":
            found = yield from master.search_secondary()
        elif case["install"] == "scan":
            found = yield from master.scan_primary(range(0, 6))
        else:
            masks = [SecondaryMask.parse(f"{s.address.id:08d}FFFFFFFF") for s in slaves[:2]]
            found = [s.address for s in slaves] + [s.primary for s in slaves] + masks
        for _ in range(3):
            for target in found:
                ro = yield from master.read(target)
                reads.append(
                    (str(ro.target), ro.ok, ro.error, ro.frames, ro.finished, ro.started)
                    + (ro.attempts, ro.more_pending, [t.records for t in ro.telegrams])
                )
            yield from world.sleep(30.0)

    def other():
        for dt in case["other"]:
            yield world.timeout(dt)
            world.emit(ev.Install(source="other", method="tick", meters=len(reads)))

    world.process(gateway())
    world.process(other())
    t = 0.0
    for step in case["steps"]:
        t += step
        world.run(until=t)
    counters = {**bus.counters, "requests_total": sum(bus.path_counts().values())}
    counters["readouts"] = master.readout_paths
    counters["trace_events"] = world.trace.count
    world.trace.flush()  # the writer batches lines; without this the traces compared are empty
    return out.getvalue(), reads, counters, bus.path_counts()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_CASE)
def test_fast_path_and_event_path_give_identical_traces(case):
    fast_trace, fast_reads, fast_counters, _ = _run(case, fast=True)
    # the reference: every wait an event, every request offered to every slave
    slow_trace, slow_reads, slow_counters, slow_paths = _run(case, fast=False, addressed=False)
    assert fast_trace == slow_trace
    assert fast_reads == slow_reads
    fast_readouts, slow_readouts = fast_counters.pop("readouts"), slow_counters.pop("readouts")
    assert fast_counters == slow_counters
    assert slow_readouts["fast"] == 0
    assert sum(fast_readouts.values()) == sum(slow_readouts.values())
    assert fast_counters["requests_total"] == fast_counters["requests"]
    assert slow_paths["direct"] == 0


def _random_case(rng: random.Random) -> dict:
    """A random small bus like ``_CASE``'s, but mostly clean (faults, twins, late or early
    replies and foreign bauds are the exception), so many readouts take the fast path."""
    ids = rng.sample(range(11111111, 11111199), 4)
    meters = [
        {
            "id": rng.choice(ids) if rng.random() < 0.15 else ids[i % 4] + 100 * i,
            "version": rng.choice([1, 2]),
            "primary": rng.randrange(0, 6),
            "template": rng.choice(sorted(TEMPLATES)[:4]),
            "telegrams": rng.choice([1, 1, 2, 3]),
            "fault": (
                Fault(
                    rng.choice(FAULT_KINDS),
                    rng.choice([0.3, 1.0]),
                    commands=rng.choice([(), ("REQ_UD2",), ("SND_UD",), ("SND_NKE",)]),
                )
                if rng.random() < 0.2
                else None
            ),
            "delay": rng.choice(["window"] * 6 + ["late", "early"]),
            "baud": rng.choice([2400] * 5 + [9600]),
        }
        for i in range(rng.randint(1, 5))
    ]
    return {
        "meters": meters,
        "install": rng.choice(["search", "scan", "list"]),
        "detector": rng.random() < 0.3,
        "cable_m": rng.choice([100.0, 100.0, 3000.0]),
        "multi": rng.random() < 0.5,
        "baud": rng.choice([2400, 2400, 2400, 9600, 300]),
        "other": [rng.uniform(0.0, 400.0) for _ in range(rng.randint(0, 3))],
        "steps": [rng.uniform(300.0, 1500.0) for _ in range(rng.randint(1, 3))],
        "seed": rng.randrange(10_000),
    }


def test_random_mostly_clean_buses_give_identical_traces_and_use_the_fast_path():
    fast_readouts = 0
    for seed in range(80):
        case = _random_case(random.Random(seed))
        fast_trace, fast_reads, fast_counters, _ = _run(case, fast=True)
        slow_trace, slow_reads, slow_counters, _ = _run(case, fast=False, addressed=False)
        assert fast_trace == slow_trace, seed
        assert fast_reads == slow_reads, seed
        fast_readouts += fast_counters.pop("readouts")["fast"]
        assert slow_counters.pop("readouts")["fast"] == 0
        assert fast_counters == slow_counters, seed
        # no trace file: the fast path counts the frame events instead of building them
        _, silent_reads, silent_counters, _ = _run(case, fast=True, silent=True)
        assert silent_reads == slow_reads, seed
        silent_counters.pop("readouts")
        assert silent_counters == slow_counters, seed
    assert fast_readouts >= 150  # the comparison above really covers the fast path


def test_the_fast_path_is_taken_and_the_event_path_can_be_forced():
    case = {
        "meters": [
            {"id": 11111111, "version": 1, "primary": 1, "template": "heat", "telegrams": 2,
             "fault": None, "late": False},
            {"id": 11111112, "version": 1, "primary": 2, "template": "water", "telegrams": 1,
             "fault": Fault("silent", 0.3), "late": False},
        ],
        "install": "list", "detector": False, "cable_m": 100.0, "multi": True,
        "other": [5.0], "steps": [300.0], "seed": 3,
    }  # fmt: skip
    paths, readouts = {}, {}
    for fast in (True, False):
        trace, reads, counters, paths[fast] = _run(case, fast)
        readouts[fast] = counters["readouts"]
        assert reads and trace.count("\n") > 20
        assert sum(paths[fast].values()) == counters["requests"]
    assert paths[True]["direct"] > paths[True]["event"] > 0  # mostly direct, not only
    assert paths[False]["direct"] == 0
    # the clean meter's readouts are computed at once; the faulty one's step by step
    assert readouts[True]["fast"] > 0 and readouts[True]["event"] > 0
    assert readouts[False] == {"fast": 0, "event": sum(readouts[True].values())}


def _sleeper(world: World, log: list):
    yield from world.sleep(1.0)  # first sleep: the process was started by an event
    yield from world.sleep(2.0)  # its own sleep woke it and the next event is at 5: direct
    log.append(("a", world.now))
    yield from world.sleep(3.0)  # would end at 6, after the other process's 5: event loop
    log.append(("b", world.now))


def _other(world: World, log: list):
    yield world.timeout(5.0)
    log.append(("other", world.now))


@pytest.mark.parametrize("fast", [True, False])
def test_world_sleep_moves_time_without_an_event_only_when_nothing_else_comes_first(fast):
    world = World(0)
    world.fast_path = fast
    log: list = []
    world.process(_sleeper(world, log))
    world.process(_other(world, log))
    world.run()
    assert log == [("a", 3.0), ("other", 5.0), ("b", 6.0)]
    assert world.sleeps == ({"direct": 1, "event": 2} if fast else {"direct": 0, "event": 3})


def test_world_sleep_stops_at_the_end_of_run():
    world = World(0)
    log: list = []
    world.process(_sleeper(world, log))
    world.run(until=2.5)  # the until event lies inside the second sleep: no direct jump
    assert world.now == 2.5 and log == []
    world.run(until=10)
    assert log == [("a", 3.0), ("b", 6.0)]


def _random_scenario(rng: random.Random) -> str:
    """A random small ``mbus`` scenario (TOML): groups of template meters, twins by ID in
    two groups, primary addresses (or 0, unconfigured), faults, fixed delays, other bauds,
    multi-telegram meters, a secondary search or a primary scan."""
    lines = [
        'kind = "mbus"',
        f"seed = {rng.randrange(1000)}",
        f"hours = {rng.choice([2, 3])}",
        "[bus]",
        f"baud = {rng.choice([2400, 2400, 9600, 300])}",
        "[bus.master]",
        f"collision_detector = {str(rng.random() < 0.3).lower()}",
        "[bus.master.settings]",
        f'multi_telegram = "{rng.choice(["off", "auto"])}"',
        "[bus.cable]",
        f"length_m = {rng.choice([100, 200, 3000])}",
        "[readout]",
        f'install = "{rng.choice(["secondary_search", "secondary_search", "primary_scan"])}"',
        "interval_min = 30",
    ]
    twin = rng.random() < 0.3
    for g in range(rng.randint(2, 4)):
        lines += [
            "[[slaves]]",
            f'template = "{rng.choice(["heat", "water", "electricity"])}"',
            f"count = {rng.randint(1, 3)}",
            f"id = {40000000 if twin and g < 2 else 40000000 + 10 * g + 100}",
            f'manufacturer = "{["ELV", "ZRI", "ABB", "KAM"][g]}"',
            f"primary = {rng.choice([0, 1 + 10 * g])}",  # 0: unconfigured (shared)
            f"telegrams = {rng.choice([1, 1, 2, 3])}",
        ]
        if rng.random() < 0.2:
            lines.append(f"baud = {rng.choice([300, 9600])}")
        if rng.random() < 0.2:
            ms = rng.choice([1.0, 40.0, 1500.0])  # deaf time, in the window, past the timeout
            lines.append(f"delay_ms = [{ms}, {ms}]")
        if rng.random() < 0.3:
            kind = rng.choice(FAULT_KINDS)
            cmds = rng.choice(['["REQ_UD2"]', '["SND_UD"]', "[]"])
            lines += [
                "[[slaves.faults]]",
                f'kind = "{kind}"',
                f"probability = {rng.choice([0.3, 1.0])}",
                f"commands = {cmds}",
            ]
    return "\n".join(lines) + "\n"


def _paths_dropped(summary: dict) -> dict:
    paths = ("requests_direct", "requests_event", "readouts_fast", "readouts_event", "wall_")
    return {k: v for k, v in summary.items() if not k.startswith(paths)}


def test_random_scenarios_give_identical_outputs_on_both_paths(tmp_path):
    """``meterbench run`` of random small scenarios with and without ``--event-path``: the
    same trace.jsonl, readouts.csv and summary figures (but the path counts). At
    ``--trace-level summary`` the fast path builds no ``frame`` event (it counts them): the
    same readouts.csv and summary, ``trace_events`` included."""
    fast_readouts = 0
    for seed in range(8):
        path = tmp_path / f"random{seed}.toml"
        path.write_text(_random_scenario(random.Random(seed)), encoding="utf-8")
        out = {}
        for event_path, level in ((False, "all"), (True, "all"), (False, "summary")):
            d = tmp_path / f"r{seed}-{event_path}-{level}"
            options = RunOptions(d, event_path=event_path, trace_level=level)
            summary = run_scenario(path, options).summary
            names = ("trace.jsonl", "readouts.csv") if level == "all" else ("readouts.csv",)
            files = [(d / f).read_bytes() for f in names]
            out[event_path, level] = (files, summary)
        assert out[False, "all"][0] == out[True, "all"][0], seed
        assert _paths_dropped(out[False, "all"][1]) == _paths_dropped(out[True, "all"][1]), seed
        assert out[False, "summary"][0] == out[True, "all"][0][1:], seed
        assert _paths_dropped(out[False, "summary"][1]) == _paths_dropped(out[True, "all"][1])
        assert out[True, "all"][1]["readouts_fast"] == 0
        fast_readouts += out[False, "summary"][1]["readouts_fast"]
    assert fast_readouts > 50  # the comparison covers the fast path


@pytest.mark.parametrize(
    "name, hours", [("mbus-small", 3.0), ("cme3100-building", 3.0)], ids=["mbus", "cme3100"]
)
def test_run_kinds_give_identical_traces_on_both_paths(tmp_path, name, hours):
    res = {}
    for event_path in (False, True):
        out = tmp_path / f"event{event_path}"
        summary = run_scenario(
            SCEN / f"{name}.toml", RunOptions(out, hours=hours, event_path=event_path)
        ).summary
        res[event_path] = ((out / "trace.jsonl").read_bytes(), summary)
        res[event_path, "csv"] = (out / "readouts.csv").read_bytes()
    assert res[False][0] == res[True][0]
    assert res[False, "csv"] == res[True, "csv"]
    fast, slow = res[False][1], res[True][1]
    assert fast["requests_direct"] > 0 and slow["requests_direct"] == 0
    total = fast["requests_direct"] + fast["requests_event"]
    assert total == slow["requests_event"]
    assert fast["readouts_fast"] > 0 and slow["readouts_fast"] == 0
    assert fast["readouts_fast"] + fast["readouts_event"] == slow["readouts_event"]
    paths = ("requests_direct", "requests_event", "readouts_fast", "readouts_event", "wall_")
    same = {k: v for k, v in fast.items() if not k.startswith(paths)}
    assert same == {k: v for k, v in slow.items() if not k.startswith(paths)}
    json.dumps(fast)


def test_world_advance_refuses_to_jump_over_an_event():
    world = World(0)
    log: list = []

    def jumper():
        yield from world.sleep(1.0)
        log.append(world.advance(3.0))  # the other process's event is due at 5 s
        with pytest.raises(RuntimeError, match="due at 5"):
            world.advance(1.0)
        log.append(world.now)

    world.process(jumper())
    world.process(_other(world, log))
    world.run()
    assert log == [4.0, 4.0, ("other", 5.0)]
    assert world.sleeps == {"direct": 1, "event": 1}
