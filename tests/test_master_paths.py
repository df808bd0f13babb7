"""One master, two drivers: the SimPy master and the blocking master over a real pty agree.

For random small buses (a few meters, twins by secondary or primary address, faults of
:mod:`simulator.mbus.faults`), the gateway model (:class:`simulator.mbus.master.Master`, world
time) and :class:`simulator.bridge.serial_master.SerialMaster` driving a pseudo-terminal whose
other end the serial bridge serves from the same simulated bus (a real-time world in a
thread) must find the same addresses, in the same order, and decode the same records.

Cost: the pty path runs in real time, so the buses are read at 9600 bit/s with short
timings (response timeout 0.2 s, idle times 50 ms) and hypothesis draws few examples.
Meters replay fixed telegrams (golden bytes built once), so both paths expect the same values.
"""

from __future__ import annotations

import random

import pytest
import serial
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from simulator.bridge.pty import PtyTransport
from simulator.bridge.serial_master import SerialMaster
from simulator.bridge.serve import BridgeService
from simulator.core.world import World
from simulator.mbus.address import SecondaryAddress
from simulator.mbus.bus import Bus
from simulator.mbus.faults import Fault
from simulator.mbus.master import Master, MasterSettings
from simulator.mbus.slave import ResponseDelay, Slave
from simulator.mbus.telegram import telegram_json
from simulator.meters.wired import water_records

pytestmark = pytest.mark.timeout(240)

BAUD = 9600
SETTINGS = dict(
    response_timeout=0.12,
    readout_retries=1,
    selection_retries=0,
    init_idle=0.03,
    collision_idle=0.03,
    request_idle=0.03,
    multi_telegram=True,
)
# ID digit 0 and the version's low nibble are the only wildcards: a descent of at most
# 10 + 15 probes per colliding node keeps one real-time search to a few seconds.
_ADDRESS = str(SecondaryAddress(12345678, "ELV", 1, 7))  # ID, manufacturer, version, medium
MASK = "F" + _ADDRESS[1:12] + "0F" + _ADDRESS[14:]
SCAN = range(1, 4)

FAULTS = [
    None,
    Fault("silent", commands=("REQ_UD2",)),
    Fault("bad_checksum", commands=("REQ_UD2",)),
    Fault("truncated", commands=("REQ_UD2",)),
    Fault("garbled", commands=("SND_UD",)),
]

_METER = st.fixed_dictionaries(
    {
        "digit": st.sampled_from([1, 2, 3]),
        "version": st.sampled_from([0x01, 0x02]),
        "primary": st.sampled_from([0, 1, 2, 3]),
        "telegrams": st.sampled_from([1, 2]),
        "fault": st.sampled_from(range(len(FAULTS))),
    }
)


def golden(address: SecondaryAddress, primary: int, telegrams: int) -> list[bytes]:
    """Fixed RSP_UD bytes for a meter (values of a water profile at t = 0)."""
    scratch = Slave(
        World(0),
        address,
        primary=primary,
        records=water_records(random.Random(address.id * 16 + address.version), telegrams),
        telegrams=telegrams,
    )
    return [scratch._build(i, 0, draw=False) for i in range(telegrams)]


def build_bus(world: World, meters: list[dict]) -> Bus:
    bus = Bus(world, baud=BAUD)
    for i, m in enumerate(meters):
        addr = SecondaryAddress(m["digit"] * 10_000_000 + 2_345_678, "ELV", m["version"], 7)
        fault = FAULTS[m["fault"]]
        bus.attach(
            Slave(
                world,
                addr,
                primary=m["primary"],
                baud=BAUD,
                golden=golden(addr, m["primary"], m["telegrams"]),
                delay=ResponseDelay(0.02, 0.2),
                faults=[fault] if fault else [],
                name=f"slave/{i}",
            )
        )
    return bus


def summary(ro) -> tuple[bool, list]:
    """What must agree about a readout: success and every telegram's decoded records."""
    return ro.ok, [telegram_json(t)["records"] for t in ro.telegrams]


def run_simpy(meters: list[dict], how: str, seed: int) -> tuple[list, list]:
    world = World(seed)
    master = Master(build_bus(world, meters), MasterSettings(**SETTINGS))

    def procedure():
        if how == "scan":
            found = yield from master.scan_primary(SCAN)
        else:
            found = yield from master.search_secondary(MASK)
        reads = []
        for target in found:
            reads.append(summary((yield from master.read(target))))
        return found, reads

    proc = world.process(procedure())
    world.run(until=proc)
    return proc.value


def run_pty(meters: list[dict], how: str, seed: int) -> tuple[list, list]:
    world = World(seed, realtime=True)
    service = BridgeService(world, build_bus(world, meters))
    pty = PtyTransport()
    service.attach(pty)
    service.start()
    try:
        with serial.Serial(pty.path, BAUD, parity=serial.PARITY_NONE, timeout=0.005) as port:
            master = SerialMaster(port, MasterSettings(**SETTINGS))
            found = master.scan_primary(SCAN) if how == "scan" else master.search_secondary(MASK)
            return found, [summary(master.read(target)) for target in found]
    finally:
        service.stop()


@settings(
    max_examples=6,
    # no shrinking: each step of it is a real-time run; the failing example is printed as is
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    st.lists(_METER, min_size=2, max_size=4),
    st.sampled_from(["scan", "search"]),
    st.integers(0, 50),
)
def test_simpy_and_pty_masters_find_and_read_the_same(meters, how, seed):
    sim_found, sim_reads = run_simpy(meters, how, seed)
    pty_found, pty_reads = run_pty(meters, how, seed)
    assert pty_found == sim_found
    assert pty_reads == sim_reads


def test_twins_are_found_alike_on_both_paths():
    """A fixed case with every kind of twin: the same secondary address at two primaries,
    two meters at one primary, and same-ID meters differing in the version nibble."""
    meters = [
        {"digit": 1, "version": 1, "primary": 1, "telegrams": 2, "fault": 0},
        {"digit": 1, "version": 1, "primary": 2, "telegrams": 1, "fault": 0},
        {"digit": 2, "version": 1, "primary": 3, "telegrams": 1, "fault": 0},
        {"digit": 2, "version": 2, "primary": 3, "telegrams": 1, "fault": 0},
    ]
    for how in ("scan", "search"):
        sim = run_simpy(meters, how, 1)
        assert run_pty(meters, how, 1) == sim
        found, reads = sim
        if how == "scan":
            # 1 and 2 are distinct meters with one secondary address; 3 is two meters
            assert found == [1, 2, 3] and [ok for ok, _ in reads] == [True, True, False]
        else:
            # the version twins are told apart and read; the exact twins (digit 1) are not
            # listed, and no address is invented for them (no F-nibble "inference")
            assert found == [
                SecondaryAddress(22_345_678, "ELV", 1, 7),
                SecondaryAddress(22_345_678, "ELV", 2, 7),
            ]
            assert [ok for ok, _ in reads] == [True, True]
