"""Recorder (master mode) against the bridge itself: record -> fixtures -> decode == scenario.

A scenario's simulated bus is served on the transparent TCP service; the recorder reads it as
a master would read a real bus, writes fixtures and a replay scenario; the replayed slaves
then answer exactly what was recorded.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from simulator.bridge.recorder import Recorder, RecorderError, Recording, write_fixtures
from simulator.bridge.serve import BridgeService, Segment, realtime_segment
from simulator.bridge.tcp_service import TcpServerTransport
from simulator.core.world import World
from simulator.mbus.address import SecondaryAddress
from simulator.mbus.bus import Bus
from simulator.mbus.slave import Slave, read_hex_file
from simulator.mbus.telegram import decode_telegram, telegram_json
from simulator.meters.wired import water_records

ROOT = Path(__file__).resolve().parent.parent
TELEGRAMS = ROOT / "fixtures" / "telegrams"

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def served(tmp_path):
    scenario = tmp_path / "bus.toml"
    scenario.write_text(
        'kind = "mbus"\nseed = 5\n'
        f'[[slaves]]\ntelegram = "{TELEGRAMS / "handmade_heat_meter.hex"}"\nprimary = 2\n'
        '[[slaves]]\ntemplate = "water"\nid = 31000001\nprimary = 5\ntelegrams = 2\n'
    )
    seg = realtime_segment(scenario)
    tcp = TcpServerTransport("127.0.0.1", 0, idle_timeout=0)
    service = BridgeService(seg.world, seg.bus)
    service.attach(tcp)
    service.start()
    yield seg, tcp
    service.stop()


def url(tcp: TcpServerTransport) -> str:
    return f"socket://{tcp.address[0]}:{tcp.address[1]}"


def test_primary_scan_records_fixtures_that_replay_identically(served, tmp_path):
    seg, tcp = served
    rec = Recorder(url(tcp), parity="N", retries=0)  # a simulated bus loses no frames
    try:
        result = rec.scan_primary(range(1, 7))
    finally:
        rec.close()
    assert result.problems == []
    assert [(m.primary, m.address.id, len(m.frames)) for m in result.meters] == [
        (2, 87654321, 1),
        (5, 31000001, 2),
    ]
    out = tmp_path / "recorded"
    files = write_fixtures(result, out, source="test")
    assert {p.name for p in files} >= {
        "87654321_XYZ.hex",
        "87654321_XYZ.json",
        "31000001_ELV_t0.hex",
        "31000001_ELV_t1.hex",
        "recorded.toml",
    }
    # 1. the golden meter: recorded values equal the scenario's (hand-checked fixture JSON)
    original = json.loads((TELEGRAMS / "handmade_heat_meter.json").read_text())["decode"]
    recorded = json.loads((out / "87654321_XYZ.json").read_text())["decode"]
    assert recorded["records"] == original["records"]
    assert recorded["header"]["id"] == "87654321"
    # 2. the profile meter: recorded bytes are exactly what the simulated slave sent
    sent = [bytes.fromhex(e["hex"]) for e in seg.world.trace.select("frame", direction="s2m")]
    assert read_hex_file(out / "31000001_ELV_t0.hex") in sent
    assert read_hex_file(out / "31000001_ELV_t1.hex") in sent
    assert decode_telegram(read_hex_file(out / "31000001_ELV_t0.hex")).more_follow
    # 3. the recorded scenario replays them as simulated slaves
    replay = realtime_segment(out / "recorded.toml")
    by_id = {s.address.id: s for s in replay.slaves}
    assert sorted(by_id) == [31000001, 87654321] and by_id[31000001].primary == 5
    again = [telegram_json(t)["records"] for t in by_id[31000001].current_telegrams()]
    assert again == [
        json.loads((out / f"31000001_ELV_t{i}.json").read_text())["decode"]["records"]
        for i in range(2)
    ]


@pytest.mark.slow
def test_secondary_search_records_every_meter(served, tmp_path):
    seg, tcp = served
    rec = Recorder(url(tcp), parity="N", retries=0)
    try:
        result = rec.search_secondary()
    finally:
        rec.close()
    assert sorted(m.address.id for m in result.meters) == [31000001, 87654321]
    assert all(m.primary is None for m in result.meters)
    collisions = [
        e for e in seg.world.trace.select("frame", direction="s2m") if len(e["senders"]) > 1
    ]
    assert collisions  # the wildcard probe really collided on the simulated wire


def test_nothing_recorded_writes_no_replay_scenario(tmp_path):
    # an mbus scenario needs slaves: an empty recorded.toml would fail to load
    assert write_fixtures(Recording(problems=["a=1: no reply"]), tmp_path, source="test") == []
    assert not (tmp_path / "recorded.toml").exists()


def test_unopenable_port_is_one_clear_error():
    with pytest.raises(RecorderError, match="/dev/no-such-mbus: cannot open"):
        Recorder("/dev/no-such-mbus")


def test_record_command_writes_fixtures(served, tmp_path):
    _seg, tcp = served
    out = tmp_path / "cli"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "simulator.cli",
            "record",
            "--port",
            url(tcp),
            "--parity",
            "N",
            "--addresses",
            "2-2",
            "--retries",
            "0",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert "876543213A630704  primary=2  telegrams=1" in proc.stdout
    assert (out / "87654321_XYZ.hex").is_file() and (out / "recorded.toml").is_file()


@pytest.mark.slow
def test_secondary_search_descends_when_one_clean_e5_hides_several_meters(tmp_path):
    """Three meters answer the wildcard selection 25 ms apart: three separate receptions, and
    the bridge forwards all three E5 inside the reply window (it once forwarded only the
    first, and the others were 'ignored'). The recorder sees more than one E5, calls it a
    collision as libmbus does (PROTOCOL.md §3.1) and descends until each meter is alone."""
    scenario = tmp_path / "spread.toml"
    scenario.write_text(
        'kind = "mbus"\nseed = 2\n'
        + "".join(
            f'[[slaves]]\ntemplate = "water"\nid = {d}0000001\ndelay_ms = [{ms}, {ms}]\n'
            for d, ms in ((1, 5), (2, 30), (3, 55))
        )
    )
    seg = realtime_segment(scenario)
    tcp = TcpServerTransport("127.0.0.1", 0, idle_timeout=0)
    service = BridgeService(seg.world, seg.bus)
    service.attach(tcp)
    service.start()
    try:
        rec = Recorder(url(tcp), parity="N", retries=0)
        try:
            result = rec.search_secondary()
        finally:
            rec.close()
    finally:
        service.stop()
    assert sorted(m.address.id for m in result.meters) == [10000001, 20000001, 30000001]
    replies = [
        e
        for e in seg.world.trace.select("frame", direction="s2m")
        if e["hex"] and e["outcome"] != "ignored"
    ]
    assert not seg.world.trace.select("frame", direction="s2m", outcome="ignored")
    first = replies[:3]  # the wildcard selection's replies, one reception per meter
    assert [e["hex"] for e in first] == ["e5"] * 3
    assert sorted(e["senders"][0] for e in first) == sorted(s.name for s in seg.slaves)
    selection = next(
        e for e in seg.world.trace.select("bridge_exchange") if e["request"][:2] == "68"
    )
    assert selection["receptions"] == 3
    assert [selection["delay"]] + [m["delay"] for m in selection["more"]] == pytest.approx(
        [0.005, 0.030, 0.055], abs=1e-6
    )
    out = "".join(e["hex"] for e in seg.world.trace.select("bridge_bytes", direction="out"))
    assert out.startswith("e5e5e5")  # all three went to the master


def test_twins_are_recorded_apart_not_merged(tmp_path):
    """Two water meters with one secondary address at primaries 5 and 6 (a third at 7 shares
    their ID but not their version): a primary scan records three meters, the twins under
    distinct fixture names, and says so in the problems (the master's rule: a meter is what
    answers at an address, never merged by content)."""
    # a scenario file refuses twins (duplicate secondary address): build the bus directly
    world = World(4, realtime=True)
    bus = Bus(world)
    for primary, version in ((5, 1), (6, 1), (7, 2)):
        addr = SecondaryAddress(31_000_001, "ELV", version, 7)
        records = water_records(random.Random(version))
        bus.attach(Slave(world, addr, primary=primary, records=records, name=f"twin{primary}"))
    seg = Segment(world, bus, bus.slaves, None)  # type: ignore[arg-type]
    tcp = TcpServerTransport("127.0.0.1", 0, idle_timeout=0)
    service = BridgeService(seg.world, seg.bus)
    service.attach(tcp)
    service.start()
    try:
        rec = Recorder(url(tcp), parity="N", retries=0)
        try:
            result = rec.scan_primary(range(5, 8))
        finally:
            rec.close()
    finally:
        service.stop()
    assert [(m.primary, m.address.id, m.address.version) for m in result.meters] == [
        (5, 31000001, 1),
        (6, 31000001, 1),
        (7, 31000001, 2),
    ]
    assert [p for p in result.problems if p.startswith("twins:")] == [
        f"twins: {result.meters[0].address} answers at primary 6 and at primary 5: "
        "recorded as separate meters"
    ]
    files = {p.name for p in write_fixtures(result, tmp_path / "out", source="test")}
    assert {
        "31000001_ELV_v0107_p5.hex",
        "31000001_ELV_v0107_p6.hex",
        "31000001_ELV_v0207.hex",
    } <= files
    replay = realtime_segment(tmp_path / "out" / "recorded.toml")
    assert sorted(s.primary for s in replay.slaves) == [5, 6, 7]
