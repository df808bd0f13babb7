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

    [[outages]]                        # a head-end failing for a while (in-world sinks)
    protocol = "http" | "ftp" | "mail"; start_h = 24; hours = 30
    fault = "refuse" | "5xx" | "timeout" | "auth" | "disk_full"

Validation reports every problem at once with file:line (pydantic, the wired segment's cross
checks, the meter list's own rows, outages of a protocol no report uses).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import Field, field_validator

from simulator.building.scenario_model import BusModel, SlaveGroup, cross_issues
from simulator.core.world import EPOCH
from simulator.gateways.cme3100.gateway_settings import Cme3100Settings
from simulator.mbus.meterlist import read_meter_list
from simulator.scenario import Issue, ScenarioDoc, ScenarioError, StartTime, StrictModel
from simulator.sinks.outages import FAULTS


class InstallModel(StrictModel):
    meter_list: str | None = None
    search: Literal["secondary", "primary"] = "secondary"


class OutageModel(StrictModel):
    protocol: Literal["http", "ftp", "mail"]
    start_h: float = Field(ge=0)
    hours: float = Field(gt=0)
    fault: Literal[FAULTS] = "refuse"  # type: ignore[valid-type]


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
            read_meter_list(doc.resolve_path(ml))
        except ScenarioError as exc:  # the list's own rows, with their file:line
            issues += exc.issues
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
    return issues


def validate(doc: ScenarioDoc) -> Cme3100Scenario:
    """Validate a ``cme3100`` scenario; :class:`ScenarioError` lists every problem at once."""
    return doc.validate(Cme3100Scenario, checks=[cross_issues, _extra_issues])
