"""The ``kind = "nbiot"`` scenario file: a fleet of CMi6140 modules in one cell.

Example (fixtures/scenarios/nbiot-fleet.toml)::

    kind = "nbiot"
    seed = 42
    hours = 24
    [fleet]
    modules = 2000
    coupling_loss = { distribution = "normal", mean_db = 145, sigma_db = 8 }
    [module]            # any ModuleConfig field (simulator.nbiot.config), validated with ranges
    transmit_interval_min = 1440
    [network]           # any NetworkParams field (simulator.nbiot.network)
    [power]             # any PowerModel field (simulator.nbiot.energy)
    [servers]           # outage windows in hours: server_outages_h, bootstrap_outages_h
    [output]
    trace = "message"   # "datagram", "message" or "off"

Every error in the file is reported at once with file:line (:meth:`ScenarioDoc.validate`).
"""

from __future__ import annotations

from typing import Literal

import pydantic

from simulator.nbiot.config import ModuleConfig
from simulator.nbiot.energy import PowerModel
from simulator.nbiot.network import NetworkParams
from simulator.scenario import ScenarioDoc, StrictModel, budget_check


class CouplingLoss(StrictModel):
    """Distribution of the coupling loss (dB) between each module and the cell."""

    distribution: Literal["normal", "uniform", "fixed"] = "normal"
    mean_db: float = 145.0
    sigma_db: float = pydantic.Field(8.0, ge=0)
    low_db: float = 120.0
    high_db: float = 170.0
    value_db: float = 144.0

    @pydantic.model_validator(mode="after")
    def _ordered(self) -> CouplingLoss:
        if self.low_db > self.high_db:
            raise ValueError(f"low_db {self.low_db} is above high_db {self.high_db}")
        return self


class Fleet(StrictModel):
    modules: int = pydantic.Field(100, ge=1, le=200_000)
    first_id: int = pydantic.Field(10_000_000, ge=0, le=99_999_999)
    coupling_loss: CouplingLoss = CouplingLoss()
    security: bool = True


class TimeSync(StrictModel):
    """A clock synchronisation of some modules at ``at_h`` hours (seed 001 §7.3.2)."""

    at_h: float = pydantic.Field(ge=0)
    modules: Literal["all"] | list[int] = "all"
    clock_error_s: float = 0.0


class Servers(StrictModel):
    """Windows ``[from_h, to_h]`` (hours from the start) in which the LwM2M / MQTT-SN server
    or the LwM2M Bootstrap-Server answers nothing (simulator.nbiot.server.Outages)."""

    server_outages_h: list[tuple[float, float]] = []
    bootstrap_outages_h: list[tuple[float, float]] = []

    @pydantic.model_validator(mode="after")
    def _ordered(self) -> Servers:
        for name in ("server_outages_h", "bootstrap_outages_h"):
            for start, end in getattr(self, name):
                if end < start:
                    raise ValueError(f"{name}: [{start:g}, {end:g}] ends before it starts")
        return self


class Output(StrictModel):
    trace: Literal["datagram", "message", "off"] = "message"
    plots: bool = True


class NbiotScenario(StrictModel):
    kind: Literal["nbiot"] = "nbiot"
    name: str = "nbiot"
    description: str = ""
    seed: int = 0
    hours: float = pydantic.Field(24.0, gt=0, le=24 * 366)
    initial_clock_error_s: float = 0.0
    fleet: Fleet = Fleet()
    module: ModuleConfig = ModuleConfig()
    network: NetworkParams = NetworkParams()
    power: PowerModel = PowerModel()
    time_sync: list[TimeSync] = []
    servers: Servers = Servers()
    output: Output = Output()


def validate(doc: ScenarioDoc) -> NbiotScenario:
    """Validate an ``nbiot`` scenario; :class:`ScenarioError` lists every problem at once,
    including a run over :data:`~simulator.scenario.MAX_METERS` /
    :data:`~simulator.scenario.MAX_EVENTS` (modules x transmissions)."""
    count = (("fleet", "modules"), Fleet.model_fields["modules"].default)
    interval = (
        ("module", "transmit_interval_min"),
        ModuleConfig.model_fields["transmit_interval_min"].default,
    )
    return doc.validate(NbiotScenario, checks=[budget_check(count, interval, 60.0)])
