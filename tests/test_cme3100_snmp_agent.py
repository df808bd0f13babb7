"""The real SNMP side: a pysnmp manager reads and walks the pysnmp agent serving the model; a
pysnmp notification receiver gets an INFORM on each aggregate change (seed 002 §6.30).

All on 127.0.0.1 with free ports; every wait has a timeout.
"""

from __future__ import annotations

import socket
import threading
import time

import pytest
from pysnmp.hlapi.v3arch.asyncio import (
    CommunityData,
    ContextData,
    ObjectIdentity,
    ObjectType,
    UdpTransportTarget,
    bulk_walk_cmd,
    get_cmd,
    walk_cmd,
)

from simulator.gateways.cme3100.snmp import (
    METER_ENTRY,
    METER_STATUS,
    METER_TABLE,
    REPORT_TABLE,
    ROOT,
    STATUS_CHANGE,
    STATUS_REPORT,
    SnmpModel,
    SnmpSettings,
    TrapRecipient,
)
from simulator.gateways.cme3100.snmp_agent import (
    SNMP_TRAP_OID,
    SYS_UPTIME,
    InformSender,
    SnmpAgent,
)
from simulator.gateways.cme3100.value_db import ReadoutStatus as R
from simulator.sinks.snmp_traps import TrapReceiver
from simulator.testing.snmp_manager import run_manager

pytestmark = pytest.mark.timeout(30)

A, B, C = "11111111", "22222222", "33333333"
HOST = "127.0.0.1"


@pytest.fixture
def served():
    model = SnmpModel()
    model.set_meters([A, B, C])
    with SnmpAgent(model, HOST, port=0) as agent:
        yield model, agent.port


def query(coro_fn, *args):
    """Run one manager operation on a fresh loop and engine (the test is the manager)."""
    return run_manager(coro_fn, *args)


async def get(eng, port, oid, community="public", timeout=1.0):
    target = await UdpTransportTarget.create((HOST, port), timeout=timeout, retries=0)
    err, status, _, vbs = await get_cmd(
        eng, CommunityData(community), target, ContextData(), ObjectType(ObjectIdentity(oid))
    )
    return err, status, [(tuple(o), v) for o, v in vbs]


async def walk(eng, port, prefix, bulk=False):
    target = await UdpTransportTarget.create((HOST, port), timeout=1.0, retries=0)
    start = ObjectType(ObjectIdentity(prefix))
    if bulk:
        gen = bulk_walk_cmd(
            eng, CommunityData("public"), target, ContextData(), 0, 4, start,
            lexicographicMode=False,
        )  # fmt: skip
    else:
        gen = walk_cmd(
            eng, CommunityData("public"), target, ContextData(), start, lexicographicMode=False
        )
    out = []
    async for err, status, _, vbs in gen:
        assert err is None and not status, (err, status)
        out.extend((tuple(o), v) for o, v in vbs)
        assert len(out) <= 100, "the walk does not end (GETNEXT not moving on?)"
    return out


def plain(rows):
    return [(o, v.prettyPrint() if hasattr(v, "asOctets") else int(v)) for o, v in rows]


def test_manager_reads_the_status_codes(served):
    model, port = served
    _, _, vbs = query(get, port, STATUS_REPORT + (0,))
    assert int(vbs[0][1]) == 1  # before the first readout: OK
    model.readout_round(60.0, {A: R.OK, B: R.FAILED, C: R.NOT_DECRYPTABLE})
    err, status, vbs = query(get, port, STATUS_REPORT + (0,))
    assert (err, int(status), int(vbs[0][1])) == (None, 0, 2)  # some meters failed
    _, _, vbs = query(get, port, METER_ENTRY + (METER_STATUS, 2))
    assert int(vbs[0][1]) == 3
    model.report_result(70.0, 1, False, "HTTP hourly")
    _, _, vbs = query(get, port, STATUS_REPORT + (0,))
    assert int(vbs[0][1]) == 3  # every report failed: ERROR
    # an instance that does not exist: noSuchInstance, not a made-up value
    _, _, vbs = query(get, port, METER_ENTRY + (METER_STATUS, 9))
    assert vbs[0][1].prettyPrint().startswith("No Such Instance")


@pytest.mark.parametrize("bulk", [False, True], ids=["getnext", "getbulk"])
def test_manager_walks_both_lists(served, bulk):
    model, port = served
    model.readout_round(60.0, {A: R.OK, B: R.FAILED, C: R.NOT_DECRYPTABLE})
    model.report_result(70.0, 1, True, "HTTP hourly")
    model.report_result(71.0, 3, False, "FTP daily")
    meters = plain(query(walk, port, METER_TABLE, bulk))
    assert meters == [(o, v) for o, v in model.walk("public", METER_TABLE)]
    assert [v for _, v in meters] == [A, B, C, 1, 3, 2]
    reports = plain(query(walk, port, REPORT_TABLE, bulk))
    assert [v for _, v in reports] == ["HTTP hourly", "FTP daily", 1, 3]
    everything = plain(query(walk, port, ROOT, bulk))
    assert everything == list(model.view())


def test_wrong_community_gets_no_answer(served):
    _, port = served
    err, _, vbs = query(get, port, STATUS_REPORT + (0,), "private", 0.5)
    assert "No SNMP response" in str(err) and vbs == []
    err, _, vbs = query(get, port, STATUS_REPORT + (0,), "public", 0.5)
    assert err is None and int(vbs[0][1]) == 1  # the agent is alive; only the community


def test_receiver_gets_an_inform_on_each_change_and_none_without(served):
    rx = TrapReceiver(HOST).start()
    sender = InformSender()
    try:
        settings = SnmpSettings(recipients=(TrapRecipient(HOST, rx.port),), trap_timeout_ms=1000)
        model = SnmpModel(settings, trap_sink=sender, started_at=0.0)
        model.set_meters([A, B])
        steps = [
            (100.0, {A: R.OK, B: R.OK}),  # OK -> OK: nothing
            (200.0, {A: R.OK, B: R.FAILED}),  # -> WARNING
            (300.0, {A: R.FAILED, B: R.OK}),  # WARNING again: nothing
            (400.0, {A: R.FAILED, B: R.FAILED}),  # -> ERROR
            (500.0, {A: R.OK, B: R.OK}),  # -> OK
        ]
        for at, results in steps:
            for d in model.readout_round(at, results):
                assert d.ok, d.reason  # acknowledged (INFORM), so already received
        got = [
            (int(n[SYS_UPTIME]), tuple(n[SNMP_TRAP_OID]), int(n[STATUS_REPORT + (0,)]))
            for n in (r.meta.varbinds for r in rx.received)
        ]
        assert got == [
            (20000, STATUS_CHANGE, 2),
            (40000, STATUS_CHANGE, 3),
            (50000, STATUS_CHANGE, 1),
        ]
    finally:
        sender.close()
        rx.stop()


def test_inform_retries_then_gives_up_on_a_silent_receiver():
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # receives, never answers
    silent.bind((HOST, 0))
    silent.settimeout(0.05)
    sender = InformSender()
    datagrams = []
    done = threading.Event()

    def count():
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline and not done.is_set():
            try:
                datagrams.append(silent.recv(2048))
            except TimeoutError:
                continue

    counter = threading.Thread(target=count, daemon=True)
    counter.start()
    try:
        r = TrapRecipient(HOST, silent.getsockname()[1])
        model = SnmpModel(
            SnmpSettings(recipients=(r,), trap_retries=2, trap_timeout_ms=200), trap_sink=sender
        )
        model.set_meters([A])
        t0 = time.monotonic()
        (d,) = model.readout_round(1.0, {A: R.FAILED})
        elapsed = time.monotonic() - t0
        assert not d.ok and d.attempts == 3
        assert 0.55 <= elapsed < 2.0  # 3 tries x 200 ms
        time.sleep(0.3)  # a 4th try would come 200 ms after the 3rd: give it the chance
        done.set()
        counter.join(5)
        assert len(datagrams) == 3  # 1 send + 2 retries, each a full INFORM
    finally:
        sender.close()
        silent.close()
