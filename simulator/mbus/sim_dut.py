"""The simulated device under test of a sim rig: a gateway's M-Bus master model.

The pytest plugin's bench finds it through the device registry (the ``mbus`` kind's
``sim_dut``) when a rig says ``mode = "sim"``; each procedure runs the world in virtual time
until it is done, so suites call it like a blocking device.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from simulator.core.world import World
from simulator.mbus.address import SecondaryAddress
from simulator.mbus.bus import Bus
from simulator.mbus.master import Master, MasterSettings, Readout


class SimDut:
    """The simulated gateway master; each procedure runs the world until it is done."""

    def __init__(self, world: World, bus: Bus, settings: MasterSettings) -> None:
        self.world = world
        self.bus = bus
        self.settings = settings
        self.master = Master(bus, settings, name="master")

    def _run(self, gen) -> Any:
        proc = self.world.process(gen)
        self.world.run(until=proc)
        return proc.value

    def scan_primary(self, addresses: Iterable[int] = range(0, 251)) -> list[int]:
        return self._run(self.master.scan_primary(addresses))

    def search_secondary(self, mask: str = "FFFFFFFFFFFFFFFF") -> list[SecondaryAddress]:
        return self._run(self.master.search_secondary(mask))

    def read(self, target: int | SecondaryAddress, *, baud: int | None = None) -> Readout:
        """Read one meter; ``baud`` is the per-meter rate (seed 002 §6.25.4) if not the bus's."""
        previous = self.bus.baud
        if baud is not None:
            self.bus.baud = baud
        try:
            return self._run(self.master.read(target))
        finally:
            self.bus.baud = previous

    def idle(self, seconds: float) -> None:
        """Let ``seconds`` of world time pass (nothing on the bus)."""
        self.world.run(until=self.world.now + seconds)
