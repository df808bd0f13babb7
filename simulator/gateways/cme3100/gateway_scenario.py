"""Scenario model for ``kind = "cme3100"``: a CMe3100 on a wired M-Bus of emulated meters,
pushing reports to head-ends that may fail on a schedule.

Shape (see fixtures/scenarios/cme3100-building.toml)::

    kind = "cme3100"
    name = "..."; seed = 1; start = 2026-01-05T00:00:00Z; hours = 168

    [bus] ...; [[slaves]] ...          # as kind = "mbus" (simulator/building/scenario_model.py)

    [install]
    meter_list = "meters.csv"          # Table 4 CSV, relative to this file; without it the
    search = "secondary"               # gateway searches: "secondary" or "primary"

    [gateway]                          # Cme3100Settings (gateway_settings.py, docs/settings.md)
    licence = 32; readout_schedule = "hourly"
    [[gateway.reports]]  name, template, schedule, value_period, value_interval, target, ...
    [[gateway.event_reports]] name, template, target, events
    [gateway.snmp] enabled, community, traps = [{host, port}], trap_retries, trap_timeout_ms
    [gateway.virtual_mbus] enabled, port, expiry_s, idle_timeout_s, expired, clients
    [gateway.transparent_mbus_1] (and _2) enabled, port, baud, packing, packing_interval_ms, ...
    [gateway.slave_port_1] (and _2) enabled, mode, baud, ...   # docs/cme3100.md "Services"

    [[outages]]                        # a head-end failing for a while (in-world sinks)
    protocol = "http" | "ftp" | "mail"; start_h = 24; hours = 30
    fault = "refuse" | "5xx" | "timeout" | "auth" | "disk_full"

    [[actions]]                        # the operator (or the world) at a world time
    at_h = 12; do = "clock_step"; step_s = -3600
    at_h = 13; do = "meter_state"; position = "Flat 33 water"; state = "active"
    at_h = 14; do = "licence"; licence = 64
    at_h = 15; do = "read_all"         # "Read all & store" (002 §6.22)
    at_h = 16; do = "read_meter"; position = "Flat 1 heat"
    at_h = 17; do = "auto_config"      # a CAD sync now (gateway.auto_config.url)

    [config_server]                    # in-world files the gateway fetches (CAD), by URL,
    files = { "http://cfg.invalid/gw.cad" = "gw.cad" }   # paths relative to this file

Validation reports every problem at once with file:line (pydantic, the wired segment's cross
checks, the meter list's own rows, outages of a protocol no report uses).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import Field, field_validator

from simulator.building.scenario_model import BusModel, SlaveGroup, cross_issues
from simulator.core.world import EPOCH
from simulator.gateways.cme3100.gateway_settings import Cme3100Settings
from simulator.mbus.meterlist import read_meter_list
from simulator.scenario import (
    ConfigServerModel,
    Issue,
    ScenarioDoc,
    ScenarioError,
    StartTime,
    StrictModel,
    config_server_check,
)
from simulator.sinks.outages import OutageModel


class InstallModel(StrictModel):
    meter_list: str | None = None
    search: Literal["secondary", "primary"] = "secondary"


class _Action(StrictModel):
    at_h: float = Field(ge=0)


class ClockStepAction(_Action):
    do: Literal["clock_step"]
    step_s: float


class MeterStateAction(_Action):
    do: Literal["meter_state"]
    position: str = Field(min_length=1)
    state: Literal["active", "passive"]


class LicenceAction(_Action):
    do: Literal["licence"]
    licence: int

    @field_validator("licence")
    @classmethod
    def _step(cls, v: int) -> int:
        from simulator.gateways.cme3100.installation import LICENCE_STEPS

        if v not in LICENCE_STEPS:
            raise ValueError(f"one of {LICENCE_STEPS}")
        return v


class ReadAllAction(_Action):
    do: Literal["read_all"]


class ReadMeterAction(_Action):
    do: Literal["read_meter"]
    position: str = Field(min_length=1)


class AutoConfigAction(_Action):
    do: Literal["auto_config"]


Action = Annotated[
    ClockStepAction
    | MeterStateAction
    | LicenceAction
    | ReadAllAction
    | ReadMeterAction
    | AutoConfigAction,
    Field(discriminator="do"),
]


class Cme3100Scenario(StrictModel):
    kind: Literal["cme3100"]
    name: str | None = None
    description: str = ""
    seed: int = 0
    start: StartTime = EPOCH
    hours: float = Field(24.0, gt=0, le=24 * 366)
    bus: BusModel = Field(default_factory=BusModel)
    slaves: list[SlaveGroup] = Field(min_length=1)
    install: InstallModel = Field(default_factory=InstallModel)
    gateway: Cme3100Settings = Field(default_factory=Cme3100Settings)
    outages: list[OutageModel] = Field(default_factory=list)
    actions: list[Action] = Field(default_factory=list)
    config_server: ConfigServerModel = Field(default_factory=ConfigServerModel)

    @field_validator("start")
    @classmethod
    def _utc(cls, v: datetime) -> datetime:
        return v.replace(tzinfo=UTC) if v.tzinfo is None else v


def _extra_issues(doc: ScenarioDoc) -> list[Issue]:
    issues: list[Issue] = []
    inst = doc.data.get("install") if isinstance(doc.data.get("install"), dict) else {}
    ml = inst.get("meter_list")
    if isinstance(ml, str):
        try:
            positions = {e.position for e in read_meter_list(doc.resolve_path(ml))}
        except ScenarioError as exc:  # the list's own rows, with their file:line
            issues += exc.issues
        else:  # an action naming a meter the list does not install
            for i, a in enumerate(doc.data.get("actions") or []):
                pos = a.get("position") if isinstance(a, dict) else None
                if isinstance(pos, str) and pos not in positions:
                    issues.append(doc.issue(("actions", i, "position"), f"{pos!r} is not in {ml}"))
    gw = doc.data.get("gateway") if isinstance(doc.data.get("gateway"), dict) else {}
    used = {
        {1: "mail", 2: "ftp", 3: "http"}.get(r.get("template", 0) // 1000)
        for key in ("reports", "event_reports")
        for r in (gw.get(key) or [])
        if isinstance(r, dict) and isinstance(r.get("template"), int)
    }
    for i, o in enumerate(doc.data.get("outages") or []):
        if isinstance(o, dict) and o.get("protocol") in ("http", "ftp", "mail"):
            if o["protocol"] not in used:
                issues.append(
                    doc.issue(("outages", i, "protocol"), f"no report uses {o['protocol']}")
                )
    return issues + config_server_check(doc)


def validate(doc: ScenarioDoc) -> Cme3100Scenario:
    """Validate a ``cme3100`` scenario; :class:`ScenarioError` lists every problem at once."""
    return doc.validate(Cme3100Scenario, checks=[cross_issues, _extra_issues])
