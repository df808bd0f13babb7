"""Transparent M-Bus (seed 002 §6.26, 004 §6.26.1 shot): a client's bytes go onto the
CMe3100's bus and the meters' replies come back; the packing rule (M-Bus: checked frames,
held ``packing_interval_ms``; Transparent: unchecked packets cut by client silence); and
the bench's rule for "may disturb readouts": forwarded requests interleave with a readout
round at meter boundaries (docs/cme3100.md "Services")."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulator.bridge.framing import default_gap
from simulator.core.world import World
from simulator.gateways.cme3100.gateway import Cme3100
from simulator.gateways.cme3100.gateway_settings import Cme3100Settings
from simulator.gateways.cme3100.transparent_mbus import packing
from simulator.mbus.address import SecondaryAddress
from simulator.mbus.bus import Bus
from simulator.mbus.frames import ControlFrame, ShortFrame, parse_frame
from simulator.mbus.master import Master
from simulator.mbus.meterlist import MeterListEntry
from simulator.mbus.slave import Slave, read_hex_file
from simulator.mbus.telegram import decode_telegram

TELEGRAMS = Path(__file__).resolve().parents[1] / "fixtures" / "telegrams"
DAY = 86400.0
SRC = "cme3100/transparent1"
NKE5, REQ5 = ShortFrame(0x40, 5).to_bytes(), ShortFrame(0x5B, 5).to_bytes()


def gateway(service: dict | None = None, meters: int = 3) -> tuple[World, Cme3100]:
    """Heat meters 87654321.. at primary 5.., daily readout by secondary address."""
    heat = read_hex_file(TELEGRAMS / "handmade_heat_meter.hex")
    world = World(7)
    bus = Bus(world)
    entries = []
    for i in range(meters):
        s = Slave(world, SecondaryAddress(87654321 + i, "XYZ", 7, 4), primary=5 + i, golden=[heat])
        bus.attach(s)
        entries.append(MeterListEntry(f"m{i}", str(s.address), 2400, "secondary", 5 + i))
    settings = Cme3100Settings(
        readout_schedule="daily", transparent_mbus_1={"enabled": True, **(service or {})}
    )
    return world, Cme3100(world, settings, Master(bus), {}, meter_list=entries).start()


def feed_at(world: World, gw: Cme3100, t: float, data: bytes) -> None:
    def proc():
        yield world.timeout(t - world.now)
        gw.transparent[0].feed(data)

    world.process(proc())


def requests(world: World, source: str = SRC) -> list:
    return world.trace.select("frame", source=source, direction="m2s")


@pytest.mark.parametrize(
    ("mode", "interval_ms", "baud", "gap_s", "hold_s"),
    [
        ("mbus", 0, 2400, default_gap(2400), 0.0),
        ("mbus", 250, 2400, default_gap(2400), 0.25),
        ("mbus", 0, 300, 3 * 11 / 300, 0.0),  # 3 character times at 300 bit/s (110 ms)
        ("transparent", 0, 2400, default_gap(2400), 0.0),
        ("transparent", 100, 2400, 0.1, 0.0),
    ],
)
def test_packing_rule(mode, interval_ms, baud, gap_s, hold_s):
    assert packing(mode, interval_ms, baud) == pytest.approx((gap_s, hold_s))


def test_packing_rejects_bad_mode_and_interval():
    with pytest.raises(ValueError, match="packing mode"):
        packing("raw", 0, 2400)
    with pytest.raises(ValueError, match=">= 0 ms"):
        packing("mbus", -1, 2400)


def test_a_client_request_reaches_the_meter_and_its_reply_comes_back():
    world, gw = gateway()
    feed_at(world, gw, 100.0, NKE5)
    feed_at(world, gw, 101.0, REQ5)
    world.run(until=110.0)
    service = gw.transparent[0]
    assert [r for _, r in service.replies][0] == b"\xe5"
    rsp = decode_telegram(parse_frame(service.replies[1][1]))
    assert rsp.header.address.id == 87654321  # the meter itself answered, over the bus
    assert [e["function"] for e in requests(world)] == ["SND_NKE", "REQ_UD2"]
    assert [e["outcome"] for e in world.trace.select("bridge_exchange", source=SRC)] == ["ok"] * 2


def test_mbus_packing_drops_a_bad_frame_and_holds_a_good_one_for_the_interval():
    world, gw = gateway({"packing_interval_ms": 200})
    bad = bytearray(NKE5)
    bad[3] ^= 0xFF  # checksum
    feed_at(world, gw, 100.0, bytes(bad))
    feed_at(world, gw, 101.0, NKE5)
    world.run(until=110.0)
    sent = requests(world)
    assert [bytes.fromhex(e["hex"]) for e in sent] == [NKE5]  # the bad one never hit the bus
    assert sent[0].t == pytest.approx(101.2)  # 200 ms after its last byte
    junk = world.trace.select("bridge_junk", source=SRC)
    assert len(junk) == 1 and "checksum" in junk[0]["reason"]


def test_transparent_packing_joins_frames_closer_than_the_interval():
    world, gw = gateway({"packing": "transparent", "packing_interval_ms": 50})
    feed_at(world, gw, 100.0, NKE5)
    feed_at(world, gw, 100.02, NKE5)  # 20 ms later: the same packet
    feed_at(world, gw, 101.0, NKE5)
    feed_at(world, gw, 101.1, NKE5)  # 100 ms later: a packet of its own
    world.run(until=110.0)
    packets = [bytes.fromhex(e["hex"]) for e in requests(world)]
    assert packets == [NKE5 + NKE5, NKE5, NKE5]
    replies = [r for _, r in gw.transparent[0].replies]
    assert replies == [b"\xe5", b"\xe5"]  # no meter parses two frames as one


def _round(world: World) -> tuple[float, float]:
    r = world.trace.select("readout_round")[0]
    return r["started"], r.t


def test_a_request_during_a_round_waits_for_the_meter_being_read_only():
    quiet, _ = gateway()
    quiet.run(until=DAY + 120)
    start, end = _round(quiet)
    first_done = quiet.trace.select("readout", source="master")[0].t
    world, gw = gateway()
    feed_at(world, gw, start + 0.5, REQ5)  # while the first meter is being read
    world.run(until=DAY + 120)
    (req,) = requests(world)
    assert first_done <= req.t < _round(world)[1]  # after that meter, not after the round
    (x,) = world.trace.select("bridge_exchange", source=SRC)
    assert x["queued_ms"] == pytest.approx((req.t - (start + 0.5)) * 1000, abs=1e-3)
    # the bus was the forwarded exchange's alone: the master's next frame comes after the reply
    reply_end = max(e["end"] for e in world.trace.select("frame", source=SRC))
    after = [e.t for e in world.trace.select("frame", source="master") if e.t >= req.t]
    assert after and min(after) >= reply_end
    # the exchange (about 0.45 s) fits in the readout block's request idle (1000 ms): the
    # round ends when it would have without it
    assert _round(world) == pytest.approx((start, end))


def test_a_client_can_disturb_a_readout_by_switching_a_meters_baud():
    """002 §6.26: "M-Bus activity due to one service interrupts the other service"."""
    world, gw = gateway()
    feed_at(world, gw, DAY + 0.5, ControlFrame(0x53, 6, 0xB8).to_bytes())  # meter m1 -> 300
    world.run(until=DAY + 120)
    assert gw.transparent[0].replies[0][1] == b"\xe5"  # acknowledged at 2400 bit/s
    rnd = world.trace.select("readout_round")[0]
    assert (rnd["ok"], rnd["failed"]) == (2, 1)
    assert gw.db.latest("87654322").status == "failed"
    quiet, qgw = gateway()
    quiet.run(until=DAY + 120)
    assert quiet.trace.select("readout_round")[0]["failed"] == 0  # the control run reads all


def test_without_an_enabled_service_nothing_else_takes_the_bus():
    world = World(1)
    gw = Cme3100(world, Cme3100Settings(), Master(Bus(world)), {}, meter_list=[])
    assert gw.transparent == [] and gw.bus.waiting == 0 and gw.bus.holder is None
    s = Cme3100Settings()
    assert (s.transparent_mbus_1.port, s.transparent_mbus_2.port) == (10001, 10002)
    assert (s.transparent_mbus_1.packing, s.transparent_mbus_1.idle_timeout_s) == ("mbus", 15.0)
