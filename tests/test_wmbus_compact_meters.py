"""Simulated meters that send compact frames (CI 79), and receivers that decode them.

Independent check: the published Kamstrup multical21 pair of wmbusmeters
``tests/test_analyze.sh`` (the constants of tests/test_wmbus_compact.py). A simulated meter
given the published full frame's records must send a compact frame whose bytes from CI 79 on
equal the published compact frame's (signature EDA8, data CRC 6AB6, data), and whose L-fields
equal the published ones; the published frames and the simulated ones must decode each
other's compact frames. The cadence (a full frame every 8th telegram) is Kamstrup's, from
the log in wmbusmeters issue #1242 (simulator/wmbus/meter.py).
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest

from simulator.devices import run_scenario
from simulator.scenario import RunOptions, load_toml
from simulator.wmbus.compact import FormatStore
from simulator.wmbus.frame import decode_frame
from simulator.wmbus.listener import Listener
from simulator.wmbus.meter import RadioMeter
from simulator.wmbus.telegram import parse_telegram
from tests.test_wmbus_compact import COMPACT, COMPACT_PLAIN, FULL, KEY


class _Fixed:
    """A record spec that always builds one given record (the published value)."""

    def __init__(self, record) -> None:
        self.record = record

    def build(self, t_s, clock, noise):
        return self.record


class _PublishedType:
    """A meter type (the duck type RadioMeter reads) whose records are a published frame's."""

    medium = 0x16  # cold water, as the published link header says

    def __init__(self, records) -> None:
        self.records = records

    def wireless_records(self, rng):
        return [_Fixed(r) for r in self.records]


PUBLISHED_RECORDS = parse_telegram(FULL, keys=KEY).records


def _multical21(**kw) -> RadioMeter:
    # the published meter: KAM 76348799, version 1B, C1 frame format B
    return RadioMeter(
        id=76348799,
        x=0.0,
        y=0.0,
        mode="C1B",
        manufacturer="KAM",
        version=0x1B,
        frame="compact",
        meter_type=_PublishedType(PUBLISHED_RECORDS),
        **kw,
    )


def _payload(raw: bytes) -> bytes:
    """L-field + payload without block CRCs (the form wmbusmeters prints)."""
    _fmt, payload = decode_frame(raw, None, crc=True)
    return bytes([len(payload)]) + payload


def test_meter_compact_frame_equals_the_published_one_from_ci_79_on() -> None:
    meter = _multical21()  # plain ELL I: the compact content travels in clear
    full, compact = (_payload(meter.telegram(16.0 * s, s, s)) for s in (0, 1))
    assert full[10] == 0x8C and compact[10] == 0x8C  # ELL I (CI, CC, ACC), then the TPL
    published = COMPACT_PLAIN[COMPACT_PLAIN.index(0x79, 17) :]  # after ELL II SN and CRC
    assert published.hex().upper() == "79EDA86AB6710008190000081900007F13"
    assert compact[13:] == published
    # the full frame carries the published full frame's record part (its data CRC is 6AB6)
    assert parse_telegram(full).apl == parse_telegram(FULL, keys=KEY).apl


def test_meter_with_ell_encryption_has_the_published_layout_and_decodes_both_ways() -> None:
    meter = _multical21(ell_encryption=True, key=KEY)
    full, compact = (meter.telegram(16.0 * s, s, s) for s in (0, 1))
    assert _payload(full)[0] == FULL[0] == 0x2A  # same L-fields as the published pair
    assert _payload(compact)[0] == COMPACT[0] == 0x23
    # the published full frame teaches the format of the simulated compact frame ...
    store = FormatStore()
    parse_telegram(FULL, keys=KEY, formats=store)
    ours = parse_telegram(compact, keys=KEY, formats=store, strict=True)
    assert ours.format_signature == 0xA8ED
    assert [r.value for r in ours.records] == [r.value for r in PUBLISHED_RECORDS]
    # ... and the simulated full frame that of the published compact frame
    store = FormatStore()
    parse_telegram(full, keys=KEY, formats=store)
    theirs = parse_telegram(COMPACT, keys=KEY, formats=store, strict=True)
    assert [r.value for r in theirs.records][1:3] == [pytest.approx(6.409)] * 2


def _heat_meter(**kw) -> RadioMeter:
    return RadioMeter(id=12345678, x=0.0, y=0.0, profile="heat", frame="compact", **kw)


def test_full_every_sets_the_cadence_and_the_first_telegram_is_full() -> None:
    meter = _heat_meter(full_every=3)
    cis = [parse_telegram(meter.telegram(60.0 * s, s, s)).tpl_ci for s in range(7)]
    assert cis == [0x7A, 0x79, 0x79, 0x7A, 0x79, 0x79, 0x7A]
    assert len(meter.telegram(0.0, 0, 1)) < len(meter.telegram(0.0, 0, 0))


def test_a_receiver_that_missed_the_full_frame_reports_unknown_until_the_next_one() -> None:
    meter = _heat_meter(full_every=4, mode="C1A", ell_encryption=True, key=bytes(range(16)))
    rx = Listener()
    outcomes = []
    for seq in range(1, 10):  # seq 0, the first full frame, is missed
        t = 60.0 * seq
        heard = rx.hear(meter.telegram(t, seq, seq), meter.key)
        outcomes.append(heard.outcome)
        if heard.outcome == "compact":  # decoded values are the meter's values at t
            sent = meter.records(t)
            assert [(r.dif, r.vif, r.data) for r in heard.telegram.records] == [
                (r.dif, r.vif, r.data) for r in sent
            ]
            assert [r.value for r in heard.telegram.records] == [r.value for r in sent]
    assert outcomes == ["unknown_format"] * 3 + ["full"] + ["compact"] * 3 + ["full", "compact"]
    assert rx.counts == {"unknown_format": 3, "full": 2, "compact": 4}


def test_a_broken_signature_is_unknown_and_a_broken_data_crc_a_compact_error() -> None:
    meter = _heat_meter()
    rx = Listener()
    assert rx.hear(meter.telegram(0.0, 0, 0)).outcome == "full"
    good = bytearray(_payload(meter.telegram(60.0, 1, 1)))
    sig_at = good.index(0x79, 10) + 1
    bad_sig, bad_crc = bytearray(good), bytearray(good)
    bad_sig[sig_at] ^= 0x01
    bad_crc[sig_at + 2] ^= 0x01
    assert rx.hear(bytes(good)).outcome == "compact"
    assert rx.hear(bytes(bad_sig)).outcome == "unknown_format"
    assert rx.hear(bytes(bad_crc)).outcome == "compact_error"


def test_compact_frames_cannot_carry_tpl_security() -> None:
    with pytest.raises(ValueError, match="compact frames"):
        _heat_meter(security_mode=5, key=bytes(16))
    with pytest.raises(ValueError, match="unknown frame"):
        RadioMeter(id=1, x=0.0, y=0.0, frame="short")


SCENARIO = """\
kind = "stream"
name = "compact-fringe"
seed = 2
hours = 0.5
engine = "event"
[meters]
count = 30
width_m = 3000.0
height_m = 3000.0
modes = { T1 = 0.5, C1A = 0.3, C1B = 0.2 }
profiles = { water = 0.6, heat = 0.4 }
manufacturers = { KAM = 1.0 }
interval_s = 60.0
encrypted_fraction = 0.3
ell_encryption = true
frame = "compact"
[receivers]
grid = [2, 2]
[plugin]
push = true
properties = { "receiving.server.push.cron" = "*/15 * * * *" }
[report]
plots = false
resolutions_s = [900.0]
"""


def _run(tmp_path: Path, text: str) -> tuple[dict, list[dict]]:
    path = tmp_path / "s.toml"
    path.write_text(text)
    run_scenario(load_toml(path), RunOptions(out_dir=tmp_path / "out", quiet=True))
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    lines = (tmp_path / "out" / "trace.jsonl").read_text().splitlines()[1:]
    return summary, [json.loads(line) for line in lines]


def test_a_stream_run_decodes_compact_frames_only_after_their_full_frame(tmp_path) -> None:
    summary, trace = _run(tmp_path, SCENARIO)
    decodes = [e for e in trace if e["kind"] == "wmbus_decode"]
    c = summary["compact_frames"]
    assert c["unknown_format"] > 0 and c["compact"] > 0 and c["full"] > 0
    assert c["compact_error"] == c["undecoded"] == 0
    for outcome in ("full", "compact", "unknown_format"):
        assert c[outcome] == sum(e["outcome"] == outcome for e in decodes)
    # T1 meters with a key use TPL mode 5 (no compact frames): they send full frames only
    assert 0 < c["meters"] < 30
    learned: dict[str, set] = defaultdict(set)  # receiver -> signatures its full frames defined
    for e in decodes:
        known = e["signature"] in learned[e["source"]]
        if e["outcome"] == "full":
            learned[e["source"]].add(e["signature"])
        elif e["outcome"] == "compact":
            assert known, e  # never decoded before this receiver heard a defining full frame
        else:
            assert e["outcome"] == "unknown_format" and not known, e
    # the head-end gets the last telegram per meter and push window: mostly compact frames,
    # unknown until a full frame of that format happens to be the last of a window
    lines = (tmp_path / "out" / "headend.csv").read_text().splitlines()[1:]
    compact_ids = {e["meter"] for e in decodes}
    at_headend = sum(line.split(";")[1] in compact_ids for line in lines)
    h = c["headend"]
    assert sum(h.values()) == at_headend > 0
    assert h["unknown_format"] > 0 and h["compact"] > h["full"]


def test_a_full_frame_scenario_has_no_decode_events(tmp_path) -> None:
    summary, trace = _run(
        tmp_path, SCENARIO.replace('frame = "compact"\n', "").replace("hours = 0.5", "hours = 0.1")
    )
    assert "compact_frames" not in summary
    assert not any(e["kind"] == "wmbus_decode" for e in trace)


@pytest.mark.parametrize("chunk", [None, 3])
def test_compact_frames_are_shorter_on_air_and_kernel_equals_event_model(chunk) -> None:
    """Compact frames take less time on air than full ones; the kernel and the event model
    use the same time on air per transmission (same receptions and collision losses)."""
    import numpy as np

    from simulator.core.world import World
    from simulator.wmbus.channel import Channel
    from simulator.wmbus.radio_kernel import RadioSetup, run_kernel
    from simulator.wmbus.radio_world import RadioWorld
    from simulator.wmbus.receiver import Receiver
    from tests.test_wmbus_radio_kernel import _receptions

    rng = np.random.default_rng(5)
    meters = [
        RadioMeter(
            id=2000 + i,
            x=float(rng.uniform(-200, 200)),
            y=float(rng.uniform(-200, 200)),
            mode=("T1", "C1A", "C1B")[i % 3],
            profile=("heat", "water")[i % 2],
            interval_s=0.4,
            jitter=0.2,
            frame="compact" if i % 4 else "full",
            full_every=3,
        )
        for i in range(40)
    ]
    receivers = [Receiver("r0", 0.0, 0.0), Receiver("r1", 120.0, -60.0)]
    setup = RadioSetup.build(meters, receivers, Channel.preset("oulu"), 5)
    compact = setup.compact_airtime < setup.airtime
    assert compact.tolist() == [m.frame == "compact" for m in meters]
    kw = {} if chunk is None else {"chunk_transmissions": chunk}
    kernel_rx, kernel_lost = _receptions(run_kernel(setup, 30.0, **kw))
    world = World(5)
    model = RadioWorld(world, setup, 30.0)
    world.run(until=31.0)
    assert len(kernel_rx) > 200 and len(kernel_lost) > 5
    assert kernel_rx == sorted(model.received)
    assert kernel_lost == sorted(model.lost)
    tx = world.trace.select("wmbus_tx")
    air = {(e.source, e.seq): e.airtime_ms for e in tx if e.source == "meter/00002001"}
    assert air[("meter/00002001", 1)] < air[("meter/00002001", 0)] == air[("meter/00002001", 3)]


def test_a_full_frame_carries_the_signature_it_taught_the_store():
    """parse_telegram hands the Listener the signature FormatStore.learn computed (the
    Listener no longer recomputes it): the same as the format's CRC, absent without a store,
    and not part of the telegram's content."""
    from simulator.wmbus.compact import format_signature, record_format

    store = FormatStore()
    taught = parse_telegram(FULL, keys=KEY, formats=store)
    expected = format_signature(record_format(taught.records))
    assert taught.learned_signature == expected
    # the one the published compact frame names
    assert parse_telegram(COMPACT, keys=KEY, formats=store).format_signature == expected
    plain = parse_telegram(FULL, keys=KEY)
    assert plain.learned_signature is None
    assert plain == taught and "learned_signature" not in repr(taught)
    assert Listener().hear(FULL, KEY).signature == expected
