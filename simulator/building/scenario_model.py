"""Scenario model for ``kind = "mbus"``: a wired M-Bus segment read by a gateway's master.

Shape (every key optional unless marked; see simulator/data/scenarios/building.toml)::

    kind = "mbus"                      # required
    name = "building"; description = "..."
    seed = 1
    start = 2026-01-05T00:00:00Z       # world time 0 (naive = UTC)
    hours = 24                         # simulated duration

    [bus]            baud = 2400       # the master's rate (bit/s)
    [bus.master]     max_unit_loads = 32, mark_voltage = 28.0, collision_detector = false,
                     collision_threshold_ma = 25.0
    [bus.master.settings]              # CMe3100 M-Bus settings (simulator/mbus/settings.py,
                                       # docs/settings.md: defaults, ranges, sources; ms)
                     response_timeout_ms = 1000, readout_retries = 1, selection_retries = 1,
                     init_idle_ms = 10000, collision_idle_ms = 5000, request_idle_ms = 2000,
                     multi_telegram = "off" | "auto", multi_telegram_limit = 0,
                     send_nke = true, hex_search = true,
                     f_nibble_search = "off" | "unexplained" | "always" (docs/mbus.md)
    [bus.cable]      length_m = 100, ohm_per_m = 0.0829, nf_per_m = 0.18, overspeed_ber = 0.01

    [readout]        install = "secondary_search" | "primary_scan" | "meter_list"
                     meter_list = "meters.csv"   # CMe3100 meter list CSV, relative to this file
                     search_bauds = [2400, 300], search_mask = "FFFFFFFFFFFFFFFF",
                     interval_min = 60

    [[slaves]]       # a group of alike meters (required, at least one)
    template = "heat" | "water" | ... | telegram = "x.hex" (or a list: multi-telegram replay)
    count = 1, id = 12345678, id_step = 1 (or ids = [...]), manufacturer = "ELV",
    version = 1, medium = 4 (default: the template's), primary = 0 (first; 0 = unconfigured),
    bauds = [300, 2400, 9600], baud = 2400, unit_loads = 1, telegrams = 1,
    delay_window = [0.02, 0.25] (fraction of the EN 13757-2 window) or delay_ms = [lo, hi],
    distance_m, space_current_ma = 15.0, status = 0, name = "Flat 3"
    profile = { energy = { start = 5e6 }, error_flags = { value = 4 } }
                                       # override profile parameters per quantity (units of
                                       # the record's VIF family: Wh, m3, C...)
    [[slaves.faults]] kind = "silent", probability = 0.3, delay_ms, count, commands = ["REQ_UD2"]

Validation (:func:`validate`) reports pydantic errors and cross-field problems (duplicate
primary or secondary addresses, missing files, a baud rate the slave does not support, a
meter list required but absent) together in one :class:`~simulator.scenario.ScenarioError`.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import Field, field_validator

from simulator.core.world import EPOCH
from simulator.mbus.electrical import JYSTY_NF_PER_M, JYSTY_OHM_PER_M
from simulator.mbus.faults import FAULT_KINDS
from simulator.mbus.settings import MbusSettings
from simulator.meters.wired import TEMPLATES
from simulator.scenario import (
    Issue,
    ScenarioDoc,
    StartTime,
    StrictModel,
    budget_issues,
    is_file,
)

Baud = Literal[300, 600, 1200, 2400, 4800, 9600, 19200, 38400]
FaultKind = Literal["silent", "late", "early", "bad_checksum", "truncated", "garbled"]
Command = Literal["SND_NKE", "REQ_UD2", "REQ_UD1", "SND_UD"]
assert set(FaultKind.__args__) == set(FAULT_KINDS)  # type: ignore[attr-defined]


#: The most meters one ``[[slaves]]`` group may hold (``count`` or ``ids``).
MAX_GROUP = 1000

#: ``[bus.master.settings]``: the CMe3100 M-Bus settings model (one declaration).
SettingsModel = MbusSettings


class MasterPortModel(StrictModel):
    max_unit_loads: int = Field(32, ge=1, le=2000)
    mark_voltage: float = Field(28.0, gt=12.0, le=42.0)
    collision_detector: bool = False
    collision_threshold_ma: float = Field(25.0, gt=0)
    settings: SettingsModel = Field(default_factory=SettingsModel)


class CableModel(StrictModel):
    length_m: float = Field(100.0, ge=0, le=20000)
    ohm_per_m: float = Field(JYSTY_OHM_PER_M, ge=0)
    nf_per_m: float = Field(JYSTY_NF_PER_M, ge=0)
    overspeed_ber: float = Field(0.01, ge=0, le=1)


class BusModel(StrictModel):
    baud: Baud = 2400
    master: MasterPortModel = Field(default_factory=MasterPortModel)
    cable: CableModel = Field(default_factory=CableModel)


class ReadoutModel(StrictModel):
    install: Literal["secondary_search", "primary_scan", "meter_list"] = "secondary_search"
    meter_list: str | None = None
    search_bauds: list[Baud] = Field(default_factory=lambda: [2400], min_length=1)
    search_mask: str = Field("FFFFFFFFFFFFFFFF", pattern=r"^[0-9A-Fa-f]{16}$")
    interval_min: float = Field(60.0, gt=0)


class FaultModel(StrictModel):
    kind: FaultKind
    probability: float = Field(1.0, ge=0, le=1)
    delay_ms: float | None = Field(None, ge=0)
    count: int | None = Field(None, ge=1)
    commands: list[Command] = Field(default_factory=list)


class SlaveGroup(StrictModel):
    name: str | None = None
    template: str | None = None
    telegram: str | list[str] | None = None
    count: int = Field(1, ge=1, le=MAX_GROUP)
    id: int | None = Field(None, ge=0, le=99_999_999)
    id_step: int = Field(1, ge=1)
    ids: list[int] | None = Field(None, max_length=MAX_GROUP)
    manufacturer: str = Field("ELV", pattern=r"^[A-Za-z]{3}$")
    version: int = Field(1, ge=0, le=255)
    medium: int | None = Field(None, ge=0, le=255)
    primary: int = Field(0, ge=0, le=250)
    bauds: list[Baud] = Field(default_factory=lambda: [300, 2400, 9600], min_length=1)
    baud: Baud | None = None
    unit_loads: int = Field(1, ge=1, le=100)
    telegrams: int = Field(1, ge=1, le=50)
    delay_window: tuple[float, float] = (0.02, 0.25)
    delay_ms: tuple[float, float] | None = None
    distance_m: float | None = Field(None, ge=0)
    space_current_ma: float = Field(15.0, gt=0)
    status: int = Field(0, ge=0, le=255)
    faults: list[FaultModel] = Field(default_factory=list)
    profile: dict[str, dict[str, float]] = Field(default_factory=dict)

    @field_validator("template")
    @classmethod
    def _known_template(cls, v: str | None) -> str | None:
        if v is not None and v not in TEMPLATES:
            raise ValueError(f"unknown template {v!r}; one of {sorted(TEMPLATES)}")
        return v

    @field_validator("delay_window")
    @classmethod
    def _fractions(cls, v: tuple[float, float]) -> tuple[float, float]:
        if not 0 <= v[0] <= v[1] <= 1:
            raise ValueError("delay_window must be [low, high] with 0 <= low <= high <= 1")
        return v

    @field_validator("delay_ms")
    @classmethod
    def _ordered(cls, v: tuple[float, float] | None) -> tuple[float, float] | None:
        if v is not None and not 0 <= v[0] <= v[1]:
            raise ValueError("delay_ms must be [low, high] with 0 <= low <= high")
        return v


class MbusScenario(StrictModel):
    kind: Literal["mbus"]
    name: str | None = None
    description: str | None = None
    seed: int = 0
    start: StartTime = EPOCH
    hours: float = Field(24.0, gt=0, le=24 * 366)
    bus: BusModel = Field(default_factory=BusModel)
    readout: ReadoutModel = Field(default_factory=ReadoutModel)
    slaves: list[SlaveGroup] = Field(min_length=1)

    @field_validator("start")
    @classmethod
    def _aware(cls, v: datetime) -> datetime:
        return v if v.tzinfo is not None else v.replace(tzinfo=UTC)


def group_ids(group: dict[str, Any] | SlaveGroup) -> list[int]:
    """The IDs of a slave group: ``ids``, or ``id + k * id_step`` for k < count."""
    g = group.model_dump() if isinstance(group, SlaveGroup) else group
    if g.get("ids") is not None:
        return [int(i) for i in g["ids"]]
    count = int(g.get("count", 1))
    return [int(g["id"]) + k * int(g.get("id_step", 1)) for k in range(count)]


def group_primaries(group: dict[str, Any] | SlaveGroup) -> list[int]:
    """Primary addresses of a group: consecutive from ``primary``, or all 0 (unconfigured)."""
    g = group.model_dump() if isinstance(group, SlaveGroup) else group
    first = int(g.get("primary", 0) or 0)
    count = len(g["ids"]) if g.get("ids") is not None else int(g.get("count", 1))
    return [first + k for k in range(count)] if first else [0] * count


def cross_issues(doc: ScenarioDoc) -> list[Issue]:
    """Problems pydantic cannot see (checked on the raw data, defensively)."""
    issues: list[Issue] = []
    data = doc.data
    groups = data.get("slaves") if isinstance(data.get("slaves"), list) else []
    sizes = [_group_size(g) for g in groups]
    readout = data.get("readout") if isinstance(data.get("readout"), dict) else {}
    interval = readout.get("interval_min", 60.0)
    hours = data.get("hours", 24.0)
    if None not in sizes and _number(interval) and _number(hours) and interval > 0 and hours > 0:
        meters = sum(n for n in sizes if n is not None)
        issues += budget_issues(doc, ("slaves",), meters, meters * hours * 60.0 / interval)
    seen_primary: dict[int, int] = {}
    seen_secondary: dict[tuple[Any, ...], int] = {}
    for gi, g in enumerate(groups):
        if not isinstance(g, dict):
            continue
        has_tpl, has_tg = g.get("template") is not None, g.get("telegram") is not None
        if has_tpl == has_tg:
            issues.append(
                doc.issue(
                    ("slaves", gi),
                    "give exactly one of 'template' or 'telegram' (a golden telegram file)",
                )
            )
        if has_tg:
            files = g["telegram"] if isinstance(g["telegram"], list) else [g["telegram"]]
            for f in files:
                if isinstance(f, str) and not is_file(doc.resolve_path(f)):
                    issues.append(
                        doc.issue(
                            ("slaves", gi, "telegram"), f"golden telegram file not found: {f}"
                        )
                    )
        if has_tg and (g.get("count", 1) != 1 or g.get("ids") is not None):
            issues.append(
                doc.issue(
                    ("slaves", gi, "telegram"),
                    "a golden-telegram slave is one "
                    "meter: its address comes from the telegram (count = 1)",
                )
            )
        if g.get("ids") is None and g.get("id") is None and not has_tg:
            issues.append(doc.issue(("slaves", gi), "needs 'id' (first ID) or 'ids'"))
        if isinstance(g.get("ids"), list) and "count" in g and len(g["ids"]) != g["count"]:
            issues.append(
                doc.issue(("slaves", gi, "ids"), f"{len(g['ids'])} ids but count = {g['count']}")
            )
        issues += _profile_issues(doc, gi, g)
        bauds, baud = g.get("bauds", [300, 2400, 9600]), g.get("baud")
        if baud is not None and isinstance(bauds, list) and baud not in bauds:
            issues.append(
                doc.issue(
                    ("slaves", gi, "baud"), f"baud {baud} is not among this slave's bauds {bauds}"
                )
            )
        if sizes[gi] is None:
            # Bigger than MAX_GROUP (the model says so, with the line) or a count of the
            # wrong kind: its addresses are not expanded (count = 30000000 took gigabytes).
            continue
        try:
            ids = group_ids(g) if (g.get("ids") is not None or g.get("id") is not None) else []
            prims = group_primaries(g)
        except (TypeError, ValueError, KeyError):
            continue
        for ident, prim in zip(ids, prims, strict=False):
            if not 0 <= ident <= 99_999_999:
                issues.append(doc.issue(("slaves", gi, "id"), f"ID {ident} is outside 0..99999999"))
            if prim > 250:
                issues.append(
                    doc.issue(("slaves", gi, "primary"), f"primary address {prim} is above 250")
                )
            if prim:
                if prim in seen_primary:
                    issues.append(
                        doc.issue(
                            ("slaves", gi, "primary"),
                            f"duplicate primary address {prim} (also in slaves "
                            f"group {seen_primary[prim]})",
                        )
                    )
                seen_primary.setdefault(prim, gi)
            key = (
                ident,
                str(g.get("manufacturer", "ELV")).upper(),
                g.get("version", 1),
                g.get("medium"),
                g.get("template"),
            )
            if key in seen_secondary:
                issues.append(
                    doc.issue(
                        ("slaves", gi, "id"),
                        f"duplicate secondary address {ident:08d} (also in slaves "
                        f"group {seen_secondary[key]})",
                    )
                )
            seen_secondary.setdefault(key, gi)
    if readout.get("install") == "meter_list":
        ml = readout.get("meter_list")
        if not ml:
            issues.append(
                doc.issue(("readout", "install"), 'install = "meter_list" needs readout.meter_list')
            )
        elif isinstance(ml, str) and not is_file(doc.resolve_path(ml)):
            issues.append(doc.issue(("readout", "meter_list"), f"meter list not found: {ml}"))
    return issues


def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _group_size(g: Any) -> int | None:
    """Meters in a raw ``[[slaves]]`` group, or None when it is not a sane size."""
    if not isinstance(g, dict):
        return 0
    ids, count = g.get("ids"), g.get("count", 1)
    if isinstance(ids, list):
        return len(ids) if len(ids) <= MAX_GROUP else None
    if isinstance(count, int) and not isinstance(count, bool) and 1 <= count <= MAX_GROUP:
        return count
    return None


def _profile_issues(doc: ScenarioDoc, gi: int, g: dict[str, Any]) -> list[Issue]:
    """Profile overrides must name a quantity of the template and a field of its profile."""
    prof, tpl = g.get("profile"), g.get("template")
    if not isinstance(prof, dict) or tpl not in TEMPLATES:
        return []
    mt = TEMPLATES[tpl]
    out = []
    for quantity, fields in prof.items():
        if quantity not in mt.records:
            out.append(
                doc.issue(
                    ("slaves", gi, "profile", quantity),
                    f"template {tpl!r} has no quantity {quantity!r}; one of {sorted(mt.records)}",
                )
            )
            continue
        allowed = mt.params(quantity)
        kind = mt.records[quantity].profile.kind
        for key in fields if isinstance(fields, dict) else []:
            if key not in allowed:
                out.append(
                    doc.issue(
                        ("slaves", gi, "profile", quantity, key),
                        f"{kind} profile has no {key!r}; one of {sorted(allowed)}",
                    )
                )
    return out


def validate(doc: ScenarioDoc) -> MbusScenario:
    """Validate an ``mbus`` scenario; :class:`ScenarioError` lists every problem at once."""
    return doc.validate(MbusScenario, checks=[cross_issues])
