"""Virtual M-Bus over TCP (seed 002 §6.27, 004 §6.27.1 shot, CME3100.md §4/§9/Gaps #11): an
independent master (pymeterbus) reads the CMe3100's value database over a real socket; the
answers are the stored telegrams byte for byte, the bus stays silent, values past the expiry
get no reply or the bench's "not valid" mark, FCB repeats, junk never crashes the service.

The gateway reads two meters that replay golden telegrams (fixtures/telegrams): a heat meter
at primary 5 with two telegrams (multi-telegram readout) and a Kamstrup read by secondary
address. Its readout schedule is daily, so the values age between rounds.
"""

from __future__ import annotations

import json
import socket
import time
from decimal import Decimal
from pathlib import Path

import meterbus
import pytest
import serial
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.core.world import World
from simulator.gateways.cme3100.gateway import Cme3100
from simulator.gateways.cme3100.gateway_settings import Cme3100Settings
from simulator.gateways.cme3100.virtual_mbus import (
    Answer,
    VirtualMbus,
    VirtualMbusError,
    long_frame,
    mark_not_valid,
)
from simulator.gateways.cme3100.virtual_mbus_server import VirtualMbusServer
from simulator.mbus.address import SecondaryAddress
from simulator.mbus.bus import Bus
from simulator.mbus.errors import MBusError
from simulator.mbus.frames import ShortFrame, checksum, parse_frame
from simulator.mbus.master import Master
from simulator.mbus.meterlist import MeterListEntry
from simulator.mbus.slave import Slave, read_hex_file
from simulator.mbus.telegram import decode_telegram

ROOT = Path(__file__).resolve().parents[1]
TELEGRAMS = ROOT / "fixtures" / "telegrams"
HEAT_ID, KAM_ID = "87654321", "06855817"
KAMSTRUP_ADDRESS = "068558172D2C0804"
DAY = 86400.0
#: The daily round reads both meters within the first seconds after midnight.
FRESH = DAY + 60.0

pytestmark = pytest.mark.timeout(60)


def last_of(telegram: bytes) -> bytes:
    """``telegram`` without more-follow: its final DIF 1F made 0F, checksum recomputed."""
    out = bytearray(telegram)
    assert out[-3] == 0x1F
    out[-3] = 0x0F
    out[-2] = checksum(bytes(out[4:-2]))
    return bytes(out)


def gateway(expired: str = "no_reply", seed: int = 3) -> tuple[World, Cme3100, Bus]:
    """The two-meter gateway (module doc), run through its first daily round."""
    heat = read_hex_file(TELEGRAMS / "handmade_heat_meter.hex")
    kam = read_hex_file(TELEGRAMS / "kamstrup_multical_601.hex")
    world = World(seed)
    bus = Bus(world)
    h = Slave(
        world, SecondaryAddress(87654321, "XYZ", 7, 4), primary=5, golden=[heat, last_of(heat)]
    )
    k = Slave(world, SecondaryAddress.parse(KAMSTRUP_ADDRESS), golden=[kam])
    bus.attach(h)
    bus.attach(k)
    settings_ = Cme3100Settings(
        readout_schedule="daily", multi_telegram="auto", virtual_mbus={"expired": expired}
    )
    meters = [
        MeterListEntry("heat", str(h.address), 2400, "secondary", 5),
        MeterListEntry("kam", KAMSTRUP_ADDRESS, 2400, "secondary"),
    ]
    gw = Cme3100(world, settings_, Master(bus), {}, meter_list=meters).start()
    world.run(until=FRESH)
    return world, gw, bus


@pytest.fixture
def served():
    world, gw, bus = gateway()
    with VirtualMbusServer(gw.virtual_mbus(), port=0, clock=lambda: world.now, world=world) as srv:
        yield world, gw, bus, srv


def stored(gw: Cme3100, meter: str, index: int = 0) -> bytes:
    return long_frame(gw.db.latest_value(meter).telegrams[index])


def numeric(values) -> list[float]:
    return [float(v) for v in values if isinstance(v, Decimal | int | float) and not isinstance(v, bool)]  # fmt: skip


def expected(name: str) -> list:
    doc = json.loads((TELEGRAMS / f"{name}.json").read_text())
    return [r["value"] for r in doc["decode"]["records"]
            if isinstance(r["value"], int | float) and not isinstance(r["value"], bool)]  # fmt: skip


def port_of(srv: VirtualMbusServer, timeout: float = 1.0):
    return serial.serial_for_url(f"socket://{srv.host}:{srv.port}", timeout=timeout)


def exchange(sock: socket.socket, request: bytes, wait: float = 0.4) -> bytes:
    """Send ``request``; everything that comes back within ``wait`` s."""
    sock.sendall(request)
    sock.settimeout(0.05)
    out, end = b"", time.monotonic() + wait
    while time.monotonic() < end:
        try:
            chunk = sock.recv(4096)
        except TimeoutError:
            continue
        if not chunk:
            break
        out += chunk
    return out


def test_pymeterbus_reads_the_value_database_over_tcp(served):
    world, gw, bus, srv = served
    requests_on_bus = bus.counters["requests"]
    with port_of(srv) as port:
        meterbus.send_ping_frame(port, 5)  # SND_NKE a=5
        assert meterbus.recv_frame(port, 1) == b"\xe5"
        meterbus.send_request_frame(port, 5)  # REQ_UD2 a=5
        heat_raw = meterbus.recv_frame(port, 1)
        meterbus.send_select_frame(port, KAMSTRUP_ADDRESS)  # SND_UD CI 52 to 253
        assert meterbus.recv_frame(port, 1) == b"\xe5"
        meterbus.send_request_frame(port, meterbus.ADDRESS_NETWORK_LAYER)  # REQ_UD2 a=253
        kam_raw = meterbus.recv_frame(port, 1)
    # the stored telegrams, byte for byte (A-field, access number and checksum as read)
    assert bytes(heat_raw) == stored(gw, HEAT_ID) and bytes(kam_raw) == stored(gw, KAM_ID)
    # two independent decoders agree with each other and with the fixtures' checked values
    for raw, name in ((heat_raw, "handmade_heat_meter"), (kam_raw, "kamstrup_multical_601")):
        theirs = numeric(r.value for r in meterbus.load(raw).records)
        ours = numeric(r.value for r in decode_telegram(parse_frame(bytes(raw))).records)
        assert theirs[:6] == pytest.approx(expected(name)[:6])
        assert ours[:6] == pytest.approx(expected(name)[:6])
    assert bus.counters["requests"] == requests_on_bus  # served from the database: no bus traffic
    outcomes = [e["outcome"] for e in world.trace.select("virtual_mbus")]
    assert outcomes == ["ack", "rsp_ud", "ack", "rsp_ud"]


def test_wildcard_selection_one_match_acks_several_ack_each(served):
    _, gw, _, srv = served
    with socket.create_connection((srv.host, srv.port)) as s:
        one = SecondaryAddress.parse(KAMSTRUP_ADDRESS)  # only the Kamstrup has ID 0685....
        mask = bytes([0x17, 0x58, 0xFF, 0xFF]) + b"\xff" * 4  # ID FFFF5817: wildcard digits
        assert one.to_bytes()[:2] == mask[:2]
        assert exchange(s, _select(mask)) == b"\xe5"
        assert exchange(s, ShortFrame(0x7B, 253).to_bytes()) == stored(gw, KAM_ID)
        # all wildcards: both meters match; a wire would carry two E5; nobody answers REQ_UD2
        assert exchange(s, _select(b"\xff" * 8)) == b"\xe5\xe5"
        assert exchange(s, ShortFrame(0x5B, 253).to_bytes()) == b""
        assert exchange(s, _select(bytes([0x99, 0x99, 0x99, 0x99]) + b"\xff" * 4)) == b""


def _select(mask: bytes) -> bytes:
    body = bytes([0x53, 0xFD, 0x52]) + mask
    return bytes([0x68, len(body), len(body), 0x68]) + body + bytes([checksum(body), 0x16])


def test_fcb_repeat_and_multi_telegram_sequence(served):
    _, gw, _, srv = served
    t0, t1 = stored(gw, HEAT_ID, 0), stored(gw, HEAT_ID, 1)
    assert t0 != t1 and gw.db.latest_value(HEAT_ID).telegram_count == 2
    with socket.create_connection((srv.host, srv.port)) as s:
        assert exchange(s, ShortFrame(0x40, 5).to_bytes()) == b"\xe5"
        assert exchange(s, ShortFrame(0x7B, 5).to_bytes()) == t0  # FCB 1: first telegram
        assert exchange(s, ShortFrame(0x7B, 5).to_bytes()) == t0  # FCB unchanged: repeat
        assert exchange(s, ShortFrame(0x5B, 5).to_bytes()) == t1  # toggled: next telegram
        assert exchange(s, ShortFrame(0x7B, 5).to_bytes()) == t0  # after the last: over again
        assert exchange(s, ShortFrame(0x4B, 5).to_bytes()) == t1  # FCV 0: no repeat check
        assert exchange(s, ShortFrame(0x4B, 5).to_bytes()) == t0


@pytest.mark.parametrize("mode", ["no_reply", "not_valid"])
def test_expiry_no_reply_or_not_valid_with_world_time(mode):
    world, gw, _ = gateway(expired=mode)
    read_at = gw.db.latest_value(HEAT_ID).at
    with VirtualMbusServer(gw.virtual_mbus(), clock=lambda: world.now) as srv, \
            socket.create_connection((srv.host, srv.port)) as s:  # fmt: skip
        with srv.lock:
            world.run(until=read_at + 3600.0)  # age exactly the expiry: still valid
        assert exchange(s, ShortFrame(0x7B, 5).to_bytes()) == stored(gw, HEAT_ID)
        with srv.lock:
            world.run(until=read_at + 3600.5)  # half a second past it
        assert exchange(s, ShortFrame(0x40, 5).to_bytes()) == b"\xe5"  # start over
        reply = exchange(s, ShortFrame(0x5B, 5).to_bytes())
    if mode == "no_reply":
        assert reply == b""  # 004 UI: no reply
        return
    fresh = stored(gw, HEAT_ID)
    assert reply == mark_not_valid(fresh) and reply != fresh
    theirs = meterbus.load(reply)
    ours = decode_telegram(parse_frame(reply))
    assert ours.header.status == 0x10 and int(theirs.body.bodyHeader.status_field.parts[0]) == 0x10
    assert numeric(r.value for r in ours.records) == numeric(
        r.value for r in decode_telegram(parse_frame(fresh)).records
    )


def test_a_new_round_makes_the_value_fresh_again():
    world, gw, _ = gateway()
    link = gw.virtual_mbus().link()
    world.run(until=FRESH + 2 * 3600)
    assert link.handle(ShortFrame(0x7B, 5).to_bytes(), world.now).outcome == "expired"
    world.run(until=2 * DAY + 60)  # the next daily round
    answer = link.handle(ShortFrame(0x5B, 5).to_bytes(), world.now)
    assert answer.outcome == "rsp_ud" and answer.reply == stored(gw, HEAT_ID)
    assert answer.age_s < 60


def test_two_clients_at_once_a_third_is_closed_and_idle_clients_are_dropped():
    world, gw, _ = gateway()
    with VirtualMbusServer(gw.virtual_mbus(), clock=lambda: world.now, idle_timeout_s=0.3) as srv:
        a = socket.create_connection((srv.host, srv.port))
        b = socket.create_connection((srv.host, srv.port))
        time.sleep(0.1)
        c = socket.create_connection((srv.host, srv.port))
        c.settimeout(1.0)
        assert c.recv(10) == b""  # closed at once
        assert exchange(a, ShortFrame(0x40, 5).to_bytes(), 0.1) == b"\xe5"
        assert exchange(b, ShortFrame(0x40, 5).to_bytes(), 0.1) == b"\xe5"
        time.sleep(0.6)
        a.settimeout(1.0)
        assert a.recv(10) == b""  # idle > 0.3 s: closed by the gateway
        assert srv.counters["rejected"] == 1 and srv.counters["idle_closed"] == 2
        for sock in (a, b, c):
            sock.close()


def test_junk_on_the_socket_is_skipped_and_the_next_request_answered(served):
    _, _, _, srv = served
    with socket.create_connection((srv.host, srv.port)) as s:
        bad_checksum = bytes([0x10, 0x40, 0x05, 0x00, 0x16])
        assert exchange(s, b"\x00\xffhello" + bad_checksum) == b""
        assert exchange(s, ShortFrame(0x40, 5).to_bytes()) == b"\xe5"
    # the bridge's framer syncs on valid frames only: the bad checksum frame is junk too
    assert srv.counters["junk_bytes"] == 7 + len(bad_checksum) and srv.counters["requests"] == 1


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=30), max_size=6), st.floats(0, 3 * DAY))
def test_any_bytes_give_an_answer_or_a_typed_frame_error(chunks, now):
    link = _SERVICE.link()
    for data in chunks:
        try:
            answer = link.handle(data, now)
        except MBusError:
            continue
        assert isinstance(answer, Answer) and isinstance(answer.reply, bytes)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.sampled_from([0x40, 0x5B, 0x7B, 0x4B, 0x5A, 0x53]), min_size=1, max_size=8),
    st.sampled_from([0, 5, 253, 254, 255, 7]),
)
def test_every_reply_is_one_stored_telegram_an_ack_or_silence(cs, address):
    link = _SERVICE.link()
    known = {stored(_GW, m, i) for m in (HEAT_ID, KAM_ID) for i in range(2 if m == HEAT_ID else 1)}
    for c in cs:
        reply = link.handle(ShortFrame(c, address).to_bytes(), FRESH).reply
        assert reply in known | {b"", b"\xe5"}


def test_bad_settings_are_typed_errors():
    world, gw, _ = gateway()
    with pytest.raises(VirtualMbusError, match="expiry_s"):
        VirtualMbus(gw.db, gw.virtual_meters, expiry_s=0)
    with pytest.raises(VirtualMbusError, match="expired"):
        VirtualMbus(gw.db, gw.virtual_meters, expired="stale")
    with pytest.raises(ValueError, match="expired"):
        Cme3100Settings(virtual_mbus={"expired": "stale"})
    s = Cme3100Settings().virtual_mbus
    assert (s.enabled, s.port, s.expiry_s, s.idle_timeout_s, s.expired, s.clients) == (
        False, 10003, 3600.0, 15.0, "no_reply", 2,
    )  # fmt: skip


_WORLD, _GW, _ = gateway()
_SERVICE = _GW.virtual_mbus()
