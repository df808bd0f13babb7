"""CMe3100 Stream Plugin (seed 003): filters, last telegram per meter, chunked HTTP push to a
real local head-end, retries that lose nothing, analyzer."""

from __future__ import annotations

import re
import socket
from datetime import datetime

from simulator.core.world import EPOCH, World
from simulator.gateways.cme3100.container import parse_container
from simulator.gateways.cme3100.settings import StreamSettings
from simulator.gateways.cme3100.stream import ProductIdentity, StreamPlugin
from simulator.sinks.http import HttpSink
from simulator.sinks.http_client import HttpPost
from simulator.wmbus import telegram
from simulator.wmbus.frame import LinkHeader, decode_frame

LINE = re.compile(r"^(\d{8});(\d{8});(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d);00;([0-9A-F]+)$")


def tele(
    meter_id: int,
    *,
    man: str = "ELV",
    dev: int = 0x07,
    acc: int = 0,
    volume: int = 1,
    fmt: str = "A",
) -> bytes:
    """An SND_NR telegram with one BCD volume record (records passed as APL bytes)."""
    apl = bytes([0x0C, 0x13]) + bytes.fromhex(f"{volume:08d}")[::-1]
    return telegram.build_telegram(
        manufacturer=man,
        id=meter_id,
        version=1,
        device_type=dev,
        records=apl,
        access_no=acc,
        fmt=fmt,
    )


def parse_lines(req) -> list[tuple[str, ...]]:
    lines = req.text.splitlines()
    out = []
    for line in lines:
        m = LINE.match(line)
        assert m, line
        out.append(m.groups())
    return out


def sender_process(world, plugin, meters, period, until):
    """Each meter sends every ``period`` s (staggered), volume = number of the send."""

    def run(meter_id, offset):
        yield world.timeout(offset)
        k = 0
        while world.now < until:
            k += 1
            plugin.receive(
                tele(meter_id, acc=k, volume=k),
                rssi_dbm=-80 - meter_id % 10,
                mode="T1",
                receiver_serial=62001772,
                receiver="r0",
            )
            yield world.timeout(period)

    for i, m in enumerate(meters):
        world.process(run(m, 1.0 + i * 0.5))


def test_head_end_gets_each_meter_at_most_once_per_push_with_the_last_telegram():
    meters = [10000001 + i for i in range(12)]
    with HttpSink() as sink:
        world = World(1)
        settings = StreamSettings.from_properties(
            {
                "receiving.server.url": sink.url("/stream"),
                "receiving.server.push.cron": "*/15 * * * *",
            }
        )
        plugin = StreamPlugin(
            world, settings, identity=ProductIdentity(serial=161), sink=HttpPost()
        ).start()
        sender_process(world, plugin, meters, period=100.0, until=3600.0)
        world.run(until=3600.0 + 1)
    posts = sink.posts("/stream")
    assert len(posts) == 4  # 00:15, 00:30, 00:45, 01:00
    for n, req in enumerate(posts, start=1):
        assert req.chunked, "seed 003 §9.3.1: reports are sent with chunked transfer encoding"
        assert re.fullmatch(
            r"TC65i/\d{15} Profile/IMP-NG Configuration/CLDC-1.1 Model/CMe3100 Hardware/\S+ "
            r"Firmware/\S+ Application/\S+ Serial/\d{10}",
            req.headers["User-Agent"],
        )
        rows = parse_lines(req)
        ids = [r[1] for r in rows]
        assert sorted(ids) == [f"{m:08d}" for m in meters]  # each meter exactly once
        push_time = (
            datetime(2026, 1, 5, 0, 15 * n, tzinfo=EPOCH.tzinfo)
            if n < 4
            else datetime(2026, 1, 5, 1, 0, tzinfo=EPOCH.tzinfo)
        )
        for serial, meter, date, hexdata in rows:
            assert serial == "00000161"
            got = parse_container(bytes.fromhex(hexdata))
            _, payload = decode_frame(got.wireless, crc=False)
            assert f"{LinkHeader.from_payload(payload).id:08d}" == meter
            # the telegram is the meter's LAST one before the push: no newer one was sent
            t = datetime.strptime(date, "%Y-%m-%d %H:%M:%S").replace(tzinfo=EPOCH.tzinfo)
            assert 0 < (push_time - t).total_seconds() <= 100.0
            assert got.fabrication_no == 62001772
    # memory is cleared after every successful push
    assert plugin.memory == {}
    pushes = world.trace.select("stream_push")
    assert [e["ok"] for e in pushes] == [True] * 4


def test_failed_push_http_500_is_retried_and_nothing_is_lost():
    meters = [20000001 + i for i in range(8)]
    with HttpSink() as sink:
        sink.fail_next(2, status=500)
        world = World(2)
        settings = StreamSettings.from_properties(
            {"receiving.server.url": sink.url("/r"), "receiving.server.push.cron": "0 * * * *"}
        )
        plugin = StreamPlugin(world, settings, retry_s=60.0, sink=HttpPost()).start()
        for i, m in enumerate(meters):  # every meter sends once, at t = 10..17 s
            world.process(_once(world, plugin, m, 10.0 + i))
        world.run(until=3600 + 200)
    statuses = [(r.status, r.method) for r in sink.requests]
    assert statuses == [(500, "POST"), (500, "POST"), (200, "POST")]
    pushes = world.trace.select("stream_push")
    assert [e.t for e in pushes] == [3600.0, 3660.0, 3720.0]
    assert [e["ok"] for e in pushes] == [False, False, True]
    delivered = {r[1] for r in parse_lines(sink.posts()[0])}
    assert delivered == {f"{m:08d}" for m in meters}
    assert plugin.memory == {}


def test_http_204_from_the_head_end_is_a_successful_push():
    """Issue 14: any 2xx is success ("the standard for an HTTP server", seed 003 §9.3.1)."""
    with HttpSink() as sink:
        sink.fail_next(1, status=204)  # the head-end answers 204 No Content
        world = World(2)
        settings = StreamSettings.from_properties(
            {"receiving.server.url": sink.url("/r"), "receiving.server.push.cron": "0 * * * *"}
        )
        plugin = StreamPlugin(world, settings, retry_s=60.0, sink=HttpPost()).start()
        world.process(_once(world, plugin, 20000001, 10.0))
        world.run(until=3600 + 200)
    assert [r.status for r in sink.requests] == [204]
    pushes = world.trace.select("stream_push")
    assert [(e["ok"], e["status"]) for e in pushes] == [(True, 204)]
    assert plugin.memory == {} and plugin.failed_pushes == 0


def _link_raw(raw: bytes) -> bytes:
    """``raw`` (an on-air frame) with the A-field ID bytes set to ``7A 34 87 99`` (not BCD);
    CRCs recomputed."""
    from simulator.wmbus.frame import encode_frame

    _fmt, payload = decode_frame(raw, None, crc=True)
    return encode_frame(payload[:3] + bytes.fromhex("7A348799") + payload[7:], "A")


def test_non_bcd_meter_ids_are_kept_and_pushed_as_decoders_show_them():
    """Issue 14: hex meter IDs were dropped as bad telegrams."""
    world = World(3)
    plugin = StreamPlugin(world)
    assert plugin.receive(_link_raw(tele(11111111)), rssi_dbm=-80) is True
    assert world.trace.select("stream_bad_telegram") == []
    (p,) = plugin.memory.values()
    line = plugin.report_lines([p])[0].decode()
    assert line.split(";")[1] == "9987347A"
    assert parse_container(p.wired).wireless[4:8] == bytes.fromhex("7A348799")


def test_same_id_other_manufacturer_or_type_does_not_overwrite_in_push_memory():
    """Issue 14: the push memory is keyed by the whole address, not the ID alone."""
    world = World(4)
    plugin = StreamPlugin(world)
    plugin.receive(tele(70000001, man="ELV", dev=0x07), rssi_dbm=-80)
    plugin.receive(tele(70000001, man="KAM", dev=0x07), rssi_dbm=-80)
    plugin.receive(tele(70000001, man="ELV", dev=0x04), rssi_dbm=-80)
    plugin.receive(tele(70000001, man="ELV", dev=0x07, volume=9), rssi_dbm=-80)  # replaces
    assert len(plugin.memory) == 3
    lines = plugin.report_lines(list(plugin.memory.values()))
    assert [line.split(b";")[1] for line in lines] == [b"70000001"] * 3
    assert len(plugin.analyzer.meters) == 3


def _once(world, plugin, meter_id, at):
    yield world.timeout(at)
    plugin.receive(tele(meter_id), rssi_dbm=-85, mode="T1")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_server_down_push_is_retried_until_it_comes_back():
    port = _free_port()
    world = World(3)
    settings = StreamSettings.from_properties(
        {
            "receiving.server.url": f"http://127.0.0.1:{port}/r",
            "receiving.server.push.cron": "*/15 * * * *",
        }
    )
    plugin = StreamPlugin(world, settings, retry_s=60.0, sink=HttpPost()).start()
    world.process(_once(world, plugin, 30000001, 5.0))
    world.process(_once(world, plugin, 30000002, 6.0))
    world.run(until=900 + 130)  # push at 900 s and retries at 960, 1020 find nobody
    failed = world.trace.select("stream_push")
    assert [e["ok"] for e in failed] == [False, False, False]
    assert "Connection" in failed[0]["status"] or "refused" in failed[0]["status"].lower()
    world.process(_once(world, plugin, 30000002, 0.0))  # a newer telegram replaces the old
    with HttpSink(port=port) as sink:
        world.run(until=900 + 200)
    rows = parse_lines(sink.posts()[0])
    assert sorted(r[1] for r in rows) == ["30000001", "30000002"]
    assert rows[1][2] == "2026-01-05 00:17:10"  # the newer telegram of meter 2 (t = 1030 s)
    assert plugin.memory == {}


def test_filters_analyzer_and_csv():
    world = World(4)
    settings = StreamSettings.from_properties(
        {
            "filter.manufacturer": "ELV,KAM",
            "filter.device.type": "07,1B",
            "filter.allow.list": "40000001,40000002,40000004",
            "radio.mode": "T1_C1A",
        }
    )
    plugin = StreamPlugin(world, settings)
    cases = [
        (40000001, "ELV", 0x07, "T1", True),
        (40000002, "KAM", 0x1B, "C1A", True),
        (40000003, "ELV", 0x07, "T1", False),  # not allow-listed
        (40000004, "ABB", 0x07, "T1", False),  # manufacturer
        (40000002, "KAM", 0x04, "T1", False),  # device type
        (40000001, "ELV", 0x07, "C1B", False),  # radio mode
    ]
    for meter_id, man, dev, mode, expected in cases:
        assert plugin.receive(tele(meter_id, man=man, dev=dev), rssi_dbm=-90, mode=mode) is expected
    assert sorted(p.meter_id for p in plugin.memory.values()) == ["40000001", "40000002"]
    assert plugin.analyzer.summary(world.now)["telegrams_ok"] == 6
    csv_text = plugin.analyzer.to_csv()
    assert csv_text.splitlines()[0] == "Meter ID;Filter;Telegrams;Signal;Man.;Type"
    assert "40000003;Filtered;1;-90;ELV;water" in csv_text
    # show.only.filtered (seed 003 §6.1): only the meters the filters accepted (the Filter
    # column, the last telegram's verdict: 40000001's last came in C1B, filtered); 40000002
    # KAM type 1B (accepted) and type 04 (filtered) are two meters
    only = plugin.analyzer.rows(show_only_filtered=True)
    assert {(r.meter_id, r.device_type) for r in only} == {("40000002", 0x1B)}
    assert len(plugin.analyzer.rows()) == 5
    plugin.analyzer.reset(world.now)
    assert plugin.analyzer.summary(world.now)["meters_found"] == 0


def test_analyzer_resets_every_24_hours():
    world = World(5)
    plugin = StreamPlugin(world).start()
    world.process(_once(world, plugin, 50000001, 100.0))
    world.run(until=86400 - 1)
    assert plugin.analyzer.summary(world.now)["meters_found"] == 1
    world.run(until=86400 + 1)
    assert plugin.analyzer.summary(world.now)["meters_found"] == 0
    assert [e.t for e in world.trace.select("analyzer_reset")] == [86400.0]


def test_bad_frame_is_counted_and_does_not_stop_the_plugin():
    world = World(6)
    plugin = StreamPlugin(world)
    raw = bytearray(tele(60000001))
    raw[5] ^= 0xFF  # breaks the first block's CRC
    assert plugin.receive(bytes(raw), rssi_dbm=-80) is False
    assert plugin.receive(b"\x01\x02", rssi_dbm=-80) is False
    assert plugin.receive(tele(60000002, fmt="B"), rssi_dbm=-80) is True
    bad = world.trace.select("stream_bad_telegram")
    assert len(bad) == 2 and bad[0]["reason"]
    assert [p.meter_id for p in plugin.memory.values()] == ["60000002"]


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=80))
def test_junk_never_raises_and_never_enters_memory_unless_valid(junk):
    world = World(7)
    plugin = StreamPlugin(world)
    ok = plugin.receive(junk, rssi_dbm=-80)
    assert ok is (len(plugin.memory) == 1)
    if not ok:
        assert len(world.trace.select("stream_bad_telegram")) == 1


def test_accounting_every_telegram_is_bad_filtered_or_accepted_and_each_accepted_one_ends_once():
    """Issue 14 accounting: telegrams = bad + filtered + accepted; accepted = pushed +
    replaced + pending, through failed pushes and newer telegrams of the same meter."""
    import pytest

    from simulator.core.accounting import AccountingError
    from simulator.sinks.base import WorldSink

    world = World(8)
    sink = WorldSink()
    sink.fail_next(1)
    settings = StreamSettings.from_properties(
        {
            "receiving.server.url": "http://head-end.invalid/r",
            "receiving.server.push.cron": "0 * * * *",
            "filter.manufacturer": "ELV",
        }
    )
    plugin = StreamPlugin(world, settings, retry_s=60.0, sink=sink).start()
    for i, m in enumerate([1, 2, 1, 3, 1]):  # meter 1 three times before the first push
        world.process(_once(world, plugin, 80000000 + m, 10.0 + i))
    world.process(_once_raw(world, plugin, tele(80000009, man="KAM"), 20.0))  # filtered
    world.process(_once_raw(world, plugin, b"\x05\x44\x00", 21.0))  # bad
    world.process(_once(world, plugin, 80000002, 3630.0))  # after the failed push
    world.process(_once(world, plugin, 80000004, 7300.0))  # pending at the end
    world.run(until=7400)
    assert (plugin.telegrams, plugin.bad, plugin.filtered, plugin.accepted) == (9, 1, 1, 7)
    assert (plugin.pushed_meters, plugin.replaced, len(plugin.memory)) == (3, 3, 1)
    assert [e["ok"] for e in world.trace.select("stream_push")] == [False, True]
    plugin.check_accounting()
    plugin.pushed_meters += 1  # a meter counted twice
    with pytest.raises(AccountingError, match=r"plugin/00000161: accepted 7 != pushed 4"):
        plugin.check_accounting()


def _once_raw(world, plugin, raw, at):
    yield world.timeout(at)
    plugin.receive(raw, rssi_dbm=-85, mode="T1")
