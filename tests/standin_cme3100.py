"""A stand-in for a physical CMe3100 (tests/test_push_lab_standin.py): the project's model in
a real-time world in this separate process, its M-Bus master on a serial port (the pty's
other end, blocking :class:`~simulator.bridge.serial_master.SerialMaster`), set up from the
CAD file the bench wrote, pushing with a real HTTP client to the bench's receiver.

Usage: ``python3 standin_cme3100.py PORT SCENARIO CAD SECONDS``.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import serial

from simulator.bridge.serial_master import SerialMaster
from simulator.core.world import World
from simulator.gateways.cme3100.gateway import Cme3100
from simulator.gateways.cme3100.gateway_scenario import validate
from simulator.mbus.master import Master
from simulator.mbus.meterlist import read_meter_list
from simulator.mbus.procedures import Readout
from simulator.scenario import load_toml
from simulator.sinks.http_client import HttpPost
from simulator.testing.push_setup import settings_from_cad


class _Line:
    """What the model touches of its bus: the world and the line rate (the port's)."""

    def __init__(self, world: World, port: serial.Serial) -> None:
        self.world, self.port = world, port

    @property
    def baud(self) -> int:
        return int(self.port.baudrate)

    @baud.setter
    def baud(self, value: int) -> None:
        self.port.baudrate = value


class SerialWorldMaster(Master):
    """The model's master carried out on a serial port; blocks the (real-time) world while a
    procedure runs and reports its times on the world's clock."""

    def __init__(self, world: World, port: serial.Serial) -> None:
        self.world, self.name = world, "master"
        self.bus = _Line(world, port)
        self.serial = SerialMaster(port)
        self.machine = self.serial.machine

    def drive(self, proc):
        result = self.serial.drive(proc)
        env = self.world.env
        shift = env.env_start - env.real_start  # monotonic -> world s
        if isinstance(result, Readout):
            result = dataclasses.replace(
                result, started=result.started + shift, finished=result.finished + shift
            )
        yield self.world.timeout(0)
        return result


def main(port_path: str, scenario: str, cad: str, seconds: float) -> None:
    doc = load_toml(scenario)
    sc = validate(doc)
    settings = settings_from_cad(sc.gateway, Path(cad).read_text(encoding="utf-8"))
    world = World(sc.seed, start=datetime.now(UTC), realtime=True)
    entries = read_meter_list(doc.resolve_path(sc.install.meter_list))
    deadline = time.monotonic() + 20.0
    while not Path(port_path).exists() and time.monotonic() < deadline:
        time.sleep(0.1)  # the bench opens its pty after the operator confirmed
    with serial.Serial(port_path, sc.bus.baud, timeout=0.005) as port:
        master = SerialWorldMaster(world, port)
        sinks = {r.name: HttpPost(timeout=10.0) for r in settings.reports}
        Cme3100(world, settings, master, sinks, meter_list=entries).start()
        world.env.run(until=seconds)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]))
    time.sleep(0.1)
