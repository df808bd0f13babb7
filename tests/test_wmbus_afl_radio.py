"""AFL fragments on the air: a fragmenting mode-7 meter sends each message as consecutive
transmissions (simulator/wmbus/radio_world.py), each receiver joins them in its Listener
(simulator/gateways/cme3100/stream_runner.py), and a fragment lost to a collision drops that
message at that receiver only (``fragment_error``) while the next one decodes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from simulator.core.world import World
from simulator.devices import registry, run_scenario
from simulator.scenario import RunOptions, ScenarioError, load_toml
from simulator.wmbus.channel import Channel
from simulator.wmbus.listener import Listener
from simulator.wmbus.meter import RadioMeter
from simulator.wmbus.radio_kernel import FragmentingMetersError, RadioSetup, run_kernel
from simulator.wmbus.radio_world import OnAir, RadioWorld
from simulator.wmbus.receiver import Receiver

SCENARIO = """\
kind = "stream"
name = "afl-radio"
seed = 3
hours = 0.1
engine = "event"
[meters]
count = 2
width_m = 60.0
height_m = 60.0
modes = { T1 = 1.0 }
profiles = { heat = 1.0 }
interval_s = 60.0
encrypted_fraction = 1.0
security_mode = 7
fragment_size = 12
[receivers]
positions = [[0.0, 0.0], [20.0, 0.0]]
[report]
plots = false
resolutions_s = [900.0]
"""

#: the fragment the jammer hits: (meter index, seq, fragment), at receiver 1 only
HIT = (0, 1, 1)


def _run(tmp_path: Path, monkeypatch=None, jam: bool = False) -> tuple[dict, list[dict], list]:
    """Run SCENARIO; with ``jam`` a strong burst at receiver 1 overlaps fragment HIT (a forced
    collision). Returns summary, trace events and every (receiver listener, Heard) decoded."""
    heard: list = []
    if monkeypatch is not None:
        hear = Listener.hear

        def watched(self, raw, keys=None):
            out = hear(self, raw, keys)
            heard.append(out)
            return out

        monkeypatch.setattr(Listener, "hear", watched)
    if jam:
        start = RadioWorld._start

        def jammed(self, i, seq, t, air, fragment=None, t_message=None):
            tel = start(self, i, seq, t, air, fragment, t_message)
            if (i, seq, fragment) == HIT:
                rssi = np.full(len(self.setup.receivers), -np.inf)
                rssi[1] = tel.rssi[1] + 20.0  # 20 dB over the fragment: capture impossible
                self.on_air[int(self.setup.freq[i])].append(
                    OnAir(tel.t_start, tel.t_end, i, -1, rssi)
                )
            return tel

        monkeypatch.setattr(RadioWorld, "_start", jammed)
    path = tmp_path / "s.toml"
    path.write_text(SCENARIO)
    run_scenario(load_toml(path), RunOptions(out_dir=tmp_path / "out", quiet=True))
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    lines = (tmp_path / "out" / "trace.jsonl").read_text().splitlines()[1:]
    return summary, [json.loads(line) for line in lines], heard


def _meters():
    from simulator.gateways.cme3100.stream_runner import build_meters
    from simulator.wmbus.scenario_model import StreamScenario

    sc = StreamScenario.model_validate(load_toml_text(SCENARIO))
    return build_meters(sc, 3)


def load_toml_text(text: str) -> dict:
    import tomllib

    return tomllib.loads(text)


def test_fragments_are_separate_transmissions_with_their_own_air_times(tmp_path) -> None:
    summary, trace, _ = _run(tmp_path)
    meters = _meters()
    tx = [e for e in trace if e["kind"] == "wmbus_tx"]
    assert summary["transmissions"] == len(tx)
    for i, meter in enumerate(meters):
        assert meter.fragment_size == 12 and meter.security_mode == 7
        airs, starts = meter.fragment_airtimes_s(), meter.fragment_starts_s()
        assert len(airs) >= 3 and airs[0] > airs[-1]  # the first carries MCL, MCR, MAC, ML
        mine = [e for e in tx if e["source"] == f"meter/{meter.id:08d}"]
        by_seq: dict[int, list[dict]] = {}
        for e in mine:
            by_seq.setdefault(e["seq"], []).append(e)
        assert len(by_seq) >= 5, i
        for frags in by_seq.values():
            assert [e["fragment"] for e in frags] == list(range(len(airs)))
            assert [e["airtime_ms"] for e in frags] == [round(a * 1000, 3) for a in airs]
            t0 = frags[0]["t"]
            for e, s in zip(frags, starts, strict=True):
                assert e["t"] == pytest.approx(t0 + s, abs=1e-9)
            # consecutive, never overlapping: the gap between fragments is fragment_gap_s
            for a, b, air in zip(frags, frags[1:], airs, strict=False):
                assert b["t"] - (a["t"] + air) == pytest.approx(meter.fragment_gap_s, abs=1e-9)
    afl = summary["afl_fragments"]
    assert afl["meters"] == 2 and afl["fragments_sent"] == len(tx)


def test_receivers_join_fragments_into_the_meters_values(tmp_path, monkeypatch) -> None:
    summary, trace, heard = _run(tmp_path, monkeypatch)
    meters = {f"{m.id:08d}": m for m in _meters()}
    decodes = [e for e in trace if e["kind"] == "wmbus_decode"]
    assert len(decodes) == len(heard)  # one decode event per fragment heard
    sent_at = {
        (e["source"][6:], e["seq"]): e["t"]
        for e in trace
        if e["kind"] == "wmbus_tx" and e["fragment"] == 0
    }
    full = [(e, h) for e, h in zip(decodes, heard, strict=True) if e["outcome"] == "full"]
    n_frag = len(next(iter(meters.values())).fragment_airtimes_s())
    messages = len(sent_at)
    # both receivers near both meters: every message joined at each, nothing lost
    assert len(full) == 2 * messages
    assert summary["afl_fragments"]["full"] == len(full)
    assert summary["afl_fragments"]["fragment_held"] == 2 * messages * (n_frag - 1)
    assert summary["afl_fragments"]["fragment_error"] == 0
    for e, h in full:
        meter = meters[e["meter"]]
        t = h.telegram
        assert t.security_mode == 7 and t.decrypted and t.afl["fragments"] == n_frag
        sent = meter.records(sent_at[(e["meter"], e["seq"])])
        assert [(r.dif, r.vif, r.data) for r in t.records] == [(r.dif, r.vif, r.data) for r in sent]
    # a message counts as received (statistics) once per receiver that joined it
    assert summary["receptions"] == len(full)


def test_a_jammed_fragment_is_a_fragment_error_there_and_the_next_message_decodes(
    tmp_path, monkeypatch
) -> None:
    summary, trace, _ = _run(tmp_path, monkeypatch, jam=True)
    meter_id = f"{_meters()[HIT[0]].id:08d}"
    _, seq, frag = HIT

    def at(rx: str, kind: str, s: int) -> list[dict]:
        return [
            e
            for e in trace
            if e["kind"] == kind
            and e["source"] == f"receiver/{rx}"
            and e["meter"] == meter_id
            and e["seq"] == s
        ]

    lost = at("rx01", "wmbus_collision", seq)
    assert [e["fragment"] for e in lost] == [frag]
    outcomes = [e["outcome"] for e in at("rx01", "wmbus_decode", seq)]
    assert "full" not in outcomes and "fragment_error" in outcomes
    assert [e["outcome"] for e in at("rx01", "wmbus_decode", seq + 1)][-1] == "full"
    assert [e["outcome"] for e in at("rx00", "wmbus_decode", seq)][-1] == "full"  # not jammed
    afl = summary["afl_fragments"]
    assert afl["fragments_lost"] == 1 and afl["fragment_error"] >= 1
    assert afl["fragment_error"] == sum(
        e["outcome"] == "fragment_error" for e in trace if e["kind"] == "wmbus_decode"
    )


def _world(meters, duration=400.0):
    receivers = [Receiver("r0", 0.0, 0.0)]
    setup = RadioSetup.build(meters, receivers, Channel.preset("oulu"), 5)
    world = World(5)
    model = RadioWorld(world, setup, duration)
    world.run(until=duration + 1.0)
    return setup, model


def test_duty_cycle_counts_every_fragment() -> None:
    key = bytes(range(16))
    meter = RadioMeter(
        id=7, x=10.0, y=0.0, profile="heat", security_mode=7, key=key, fragment_size=15,
        interval_s=60.0,
    )  # fmt: skip
    whole = RadioMeter(
        id=7, x=10.0, y=0.0, profile="heat", security_mode=7, key=key, interval_s=60.0
    )
    _, model = _world([meter])
    _, plain = _world([whole])
    messages = plain.sent
    assert model.sent == model.sent_fragments == messages * len(meter.fragment_airtimes_s())
    booked = sum(model.duty[0].airtime_s.values())
    assert booked == pytest.approx(messages * sum(meter.fragment_airtimes_s()))
    assert booked > sum(plain.duty[0].airtime_s.values())  # each fragment has its own overhead


def test_the_kernel_refuses_fragmenting_meters() -> None:
    meter = RadioMeter(id=7, x=10.0, y=0.0, security_mode=7, key=bytes(16), fragment_size=15)
    setup = RadioSetup.build([meter], [Receiver("r0", 0.0, 0.0)], Channel.preset("oulu"), 5)
    with pytest.raises(FragmentingMetersError, match="event model"):
        run_kernel(setup, 100.0)


@pytest.mark.parametrize(
    "change, needs",
    [
        (("security_mode = 7\n", ""), "security_mode = 7"),
        (("encrypted_fraction = 1.0\n", ""), "encrypted_fraction > 0"),
        (("modes = { T1 = 1.0 }", "modes = { C1A = 1.0 }"), "S1 or T1"),
        (('engine = "event"', 'engine = "kernel"'), 'engine = "event"'),
    ],
)
def test_bad_fragment_settings_are_one_error_with_file_and_line(tmp_path, change, needs) -> None:
    path = tmp_path / "s.toml"
    text = SCENARIO.replace(*change)
    path.write_text(text)
    line = text.splitlines().index("fragment_size = 12") + 1
    with pytest.raises(ScenarioError) as e:
        doc = load_toml(path)
        registry.for_document(doc).load(doc)
    issues = [str(i) for i in e.value.issues]
    assert len(issues) == 1 and needs in issues[0], issues
    assert issues[0].startswith(f"{path}:{line}: meters.fragment_size")


def test_a_join_across_two_messages_fails_the_afl_mac_and_the_next_message_decodes() -> None:
    """FIDs restart at 0 each message (simulator/wmbus/afl.py), so a receiver that heard only
    fragment 0 of one message and missed fragment 0 of the next joins pieces of both; the AFL
    MAC over the whole message rejects that join (``undecoded``) and the message after decodes."""
    meter = RadioMeter(
        id=9, x=0.0, y=0.0, profile="heat", security_mode=7, key=bytes(16), fragment_size=12
    )
    first, second, third = (meter.frames(60.0 * k, k, k) for k in range(3))
    rx = Listener()
    outcomes = [rx.hear(f, meter.key).outcome for f in [first[0], *second[1:], *third]]
    n = len(third)
    assert outcomes == ["fragment_held"] * (n - 1) + ["undecoded"] + ["fragment_held"] * (n - 1) + [
        "full"
    ]
