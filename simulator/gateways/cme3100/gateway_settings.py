"""The CMe3100 gateway's settings: one pydantic model, every default with its source.

Facts: ``../shared/CME3100.md`` (sections named per field); where the manuals show no default,
the bench's choice is marked ``bench`` and explained in docs/cme3100.md. The Stream Plugin's
own settings are :mod:`simulator.gateways.cme3100.settings`; the M-Bus time and retry blocks
are :class:`simulator.mbus.settings.MbusTiming` (block A for search, block B for readouts,
CME3100.md §2 and Gaps #9).

Schedules are a preset name (:data:`PRESETS`) or a cron pattern as seed 002 §6.39.1 reads it
(:mod:`simulator.gateways.cme3100.cron`, with ``?`` and ``|``). A preset report waits for a
readout round that is in progress when it fires (002 §6.9.1: presets stay in step with the
readout cycle); a custom cron report does not.
"""

from __future__ import annotations

import random
from typing import Annotated, Literal

import pydantic
from pydantic import Field

from simulator.core.settings import setting
from simulator.core.text import decimal
from simulator.gateways.cme3100.cron import CronError, CronSchedule
from simulator.gateways.cme3100.reports.names import Template, TemplateError
from simulator.gateways.cme3100.value_period import INTERVALS, ValuePeriod, ValuePeriodError
from simulator.mbus.settings import MULTI_TELEGRAM_TIMING, MbusTiming
from simulator.scenario import StrictModel

#: Schedule presets (004 §6.7.1, §6.13.1, §6.32.2 shots; CME3100.md Gaps #7).
PRESETS: dict[str, str] = {
    "1min": "* * * * *",
    "5min": "*/5 * * * *",
    "10min": "*/10 * * * *",
    "15min": "*/15 * * * *",
    "30min": "*/30 * * * *",
    "hourly": "0 * * * *",
    "daily": "0 0 * * *",
    "weekly": "0 0 * * 1",
    "monthly": "0 0 1 * *",
}
PROTOCOL_OF_TEMPLATE = {1: "mail", 2: "ftp", 3: "http"}
VALUE_PERIOD_UNITS = ("minutes", "hours", "days", "weeks", "months")


def parse_schedule(text: str, rng: random.Random | None = None) -> tuple[CronSchedule, bool]:
    """``(schedule, synced)`` for a preset name or a cron pattern; ``synced`` is True for a
    preset (module doc). ``rng`` draws the ``?`` picks (a device's own stream).
    Raises :class:`~simulator.gateways.cme3100.cron.CronError`."""
    preset = PRESETS.get(text.strip().lower())
    if preset is not None:
        return CronSchedule.parse(preset, rng), True
    return CronSchedule.parse(text, rng), False


def parse_value_period(text: str) -> ValuePeriod:
    """``"auto"`` or ``"<n> <unit>"`` (units :data:`VALUE_PERIOD_UNITS`, 002 §6.32.2).
    Raises :class:`~simulator.gateways.cme3100.value_period.ValuePeriodError`."""
    words = text.strip().lower().split()
    if words == ["auto"]:
        return ValuePeriod.auto()
    amount = decimal(words[0]) if len(words) == 2 else None
    if amount is not None:
        unit = words[1] if words[1].endswith("s") else words[1] + "s"
        if unit in VALUE_PERIOD_UNITS:
            return ValuePeriod.fixed(amount, unit)
    raise ValuePeriodError(
        f"Value Period {text!r}: 'auto' or '<n> <unit>' with unit one of {VALUE_PERIOD_UNITS}"
    )


def _checked(parse, errors):
    """A pydantic after-validator: ``parse(value)`` must not raise one of ``errors``."""

    def check(value):
        try:
            parse(value)
        except errors as exc:
            raise ValueError(str(exc)) from None
        return value

    return pydantic.AfterValidator(check)


Schedule = Annotated[str, _checked(parse_schedule, CronError)]
PeriodText = Annotated[str, _checked(parse_value_period, ValuePeriodError)]


def _template(kind_ok, why: str):
    def parse(v: int) -> None:
        if not kind_ok(Template(v).kind):
            raise TemplateError(f"template {v} {why}")

    return _checked(parse, TemplateError)


PushTemplate = Annotated[int, _template(lambda k: k != 5, "is an event report: [[event_reports]]")]
EventTemplate = Annotated[
    int, _template(lambda k: k in (1, 5), "is not an event report (x005) or x001 (commission)")
]


class _Destination(StrictModel):
    """Where a report goes: the head-end's URL or mailboxes and its login."""

    target: str = setting(
        min_length=1, source="004 §6.8", doc="URL (HTTP, FTP folder) or e-mail recipients, ','"
    )
    user: str | None = setting(None, source="004 §6.8.2-3", doc="login (HTTP Basic, FTP)")
    password: str = setting("", source="004 §6.8.2-3", doc="password")

    @property
    def protocol(self) -> str:
        """``mail``, ``ftp`` or ``http``: the template's first digit (1xxx, 2xxx, 3xxx)."""
        return PROTOCOL_OF_TEMPLATE[self.template // 1000]  # type: ignore[attr-defined]


class ReportSlot(_Destination):
    """One push report (Push reports > Report 1-5, 002 §6.9.1; 004 §6.9.1 shot)."""

    name: str = setting(min_length=1, max_length=40, source="004 §6.13.1", doc="report name")
    template: PushTemplate = setting(
        source="002 §6.9", doc="1xxx mail, 2xxx FTP, 3xxx HTTP (docs/cme3100-reports.md)"
    )
    schedule: Schedule = setting("hourly", source="002 §6.9.1", doc="preset or cron (module doc)")
    value_period: PeriodText = setting("auto", source="002 §6.32.2", doc="auto or '<n> <unit>'")
    value_interval: str = setting("all", source="002 §6.32.3", doc=f"one of {INTERVALS}")

    @pydantic.field_validator("value_interval")
    @classmethod
    def _interval(cls, v: str) -> str:
        if v not in INTERVALS:
            raise ValueError(f"one of {INTERVALS}")
        return v


#: Events an event report can be sent on (CME3100.md §6 and Gaps #2; the x005 names).
EVENTS = (
    "startup",
    "installation-done",
    "readout-failed",
    "licence-exceeded",
    "configuration-changed",
)


class EventReport(_Destination):
    """An event report (002 §6.9 Table 5 "Event"; 004 §6.35.1 shot): sent when one of
    ``events`` happens, without a schedule. An x001 template (raw M-Bus values) is the
    commission report: it may only list ``installation-done`` and carries the values of the
    readout that follows the installation (CME3100.md §6 "Installation ... x001 content")."""

    name: str = setting("events", min_length=1, source="004 §6.35.1", doc="report name")
    template: EventTemplate = setting(3005, source="CME3100.md §5.3", doc="x005 event report")
    events: list[Literal[EVENTS]] = setting(  # type: ignore[valid-type]
        default_factory=lambda: list(EVENTS), source="CME3100.md §6", doc="what triggers it"
    )

    @pydantic.model_validator(mode="after")
    def _commission(self) -> EventReport:
        if self.template % 1000 == 1 and self.events != ["installation-done"]:
            raise ValueError(
                f"template {self.template} (x001) is the commission report: "
                'events = ["installation-done"]'
            )
        return self


class TrapTarget(StrictModel):
    host: str = setting(min_length=1, source="002 §6.30.2", doc="trap receiver")
    port: int = setting(162, ge=1, le=65535, source="002 §6.30.2", doc="UDP port")


class SnmpService(StrictModel):
    """Services > SNMP (002 §6.30; 004 §6.30.1 shot; CME3100.md §7)."""

    enabled: bool = setting(False, source="004 §6.30.1", doc="off by default")
    community: str = setting("public", min_length=1, source="004 §6.30.1", doc="v2c read-only")
    port: int = setting(161, ge=0, le=65535, source="004 §6.30.1", doc="UDP port")
    traps: list[TrapTarget] = Field(default_factory=list)
    trap_retries: int = setting(3, ge=0, le=255, source="bench (Gaps #10)", doc="per trap")
    trap_timeout_ms: int = setting(5000, ge=1, source="bench (Gaps #10)", doc="per try")


#: What the Virtual M-Bus service answers for a value older than its expiry (CME3100.md Gaps
#: #11; docs/cme3100.md "Services"): 004's UI text ("no reply") or 002's "not valid" notice.
EXPIRED_MODES = ("no_reply", "not_valid")


class VirtualMbusService(StrictModel):
    """Services > Virtual M-Bus over TCP/IP (002 §6.27; 004 §6.27.1 shot; CME3100.md §9):
    answers M-Bus requests from the value database, never from the bus."""

    enabled: bool = setting(False, source="004 §6.27.1 shot", doc="off by default")
    port: int = setting(10003, ge=0, le=65535, source="bench (Gaps #10)", doc="TCP port")
    expiry_s: float = setting(
        3600.0, unit="s", gt=0, source="004 §6.28.1 shot", doc="older values are not served"
    )
    idle_timeout_s: float = setting(
        15.0, unit="s", ge=0, source="004 §6.28.1 shot", doc="silent client closed; 0 = never"
    )
    expired: Literal[EXPIRED_MODES] = setting(  # type: ignore[valid-type]
        "no_reply", source="004 §6.27.1 shot / 002 §6.27.1 (Gaps #11)", doc="past expiry"
    )
    clients: int = setting(
        2, ge=1, le=2, source="004 §6.27.1 shot", doc="connections served at once"
    )


class TransparentMbusService(StrictModel):
    """Services > Transparent M-Bus over TCP/IP 1 or 2 (002 §6.26; 004 §6.26.1 shot):
    a client's bytes go onto the gateway's bus, the meters' replies come back."""

    enabled: bool = setting(False, source="004 §6.26.1 shot", doc="off by default")
    port: int = setting(
        10001, ge=0, le=65535, source="bench (Gaps #10)", doc="TCP port (service 2: 10002)"
    )
    baud: Literal[300, 2400, 9600] = setting(
        2400, unit="bit/s", source="bench (Gaps #10)", doc="rate on the bus"
    )
    packing: Literal["mbus", "transparent"] = setting(
        "mbus", source="002 §6.26.1; 004 shot (checked)", doc="frame check or none"
    )
    packing_interval_ms: float = setting(
        0.0, unit="ms", ge=0, le=60_000, source="bench (Gaps #10)", doc="docs/cme3100.md"
    )
    idle_timeout_s: float = setting(
        15.0, unit="s", ge=0, source="bench (Gaps #10)", doc="silent client closed; 0 = never"
    )


class SlavePortService(StrictModel):
    """Services > M-Bus slave port 1 or 2 (002 §6.28; 004 §6.28.1 shot): Virtual or
    Transparent M-Bus on the wired slave port (settings only, docs/cme3100.md "Services")."""

    enabled: bool = setting(False, source="004 §6.28.1 shot", doc="off by default")
    mode: Literal["virtual", "transparent"] = setting(
        "virtual", source="004 §6.28.1 shot", doc="service on the port"
    )
    baud: Literal[300, 2400, 9600] = setting(
        2400, unit="bit/s", source="004 §6.28.1 shot", doc="rate to the master"
    )
    packing_interval_ms: float = setting(
        0.0, unit="ms", ge=0, le=60_000, source="004 §6.28.1 shot", doc="docs/cme3100.md"
    )
    expiry_s: float = setting(
        3600.0, unit="s", gt=0, source="004 §6.28.1 shot", doc="Virtual M-Bus value expiry"
    )
    idle_timeout_s: float = setting(15.0, unit="s", ge=0, source="004 §6.28.1 shot", doc="")


class TimeSettings(StrictModel):
    """System > Time (002 §6.3.1; 004 shot; CME3100.md §10): the RTC and its NTP sync
    (:mod:`.clock`; docs/cme3100.md "Time")."""

    rtc_drift_ppm: float = setting(
        0.0,
        unit="ppm",
        ge=-1000,
        le=1000,
        source="bench (002 Table 11: < 2 s/day = 23.1 ppm)",
        doc="RTC rate error, + runs fast; 0 = an ideal clock",
    )
    ntp: bool = setting(True, source="002 §6.3.1", doc="sync the clock with NTP")
    sync_schedule: Schedule = setting(
        "hourly", source="004 §6.3.1 shot", doc="sync schedule: preset or cron"
    )
    accepted_diff_s: float = setting(
        60.0, unit="s", ge=0, source="004 §6.3.1 shot", doc="no step below this difference"
    )


class AutoConfigSettings(StrictModel):
    """System > Auto Configuration (002 §6.31.1; 004 shot; CME3100.md §11): a CAD file whose
    ``Sync-Config-N: key=value`` lines set gateway settings by dotted key
    (:mod:`.gateway_config`)."""

    enabled: bool = setting(False, source="002 §6.31.1", doc="off by default")
    schedule: Schedule = setting(
        "30 0 * * *", source="004 §6.31.1 shot", doc="preset or cron (custom by default)"
    )
    url: str | None = setting(None, source="002 §6.31.1", doc="the CAD file's URL")
    user: str | None = setting(None, source="002 §6.31.1", doc="Basic auth user (none: no auth)")
    password: str = setting("", source="002 §6.31.1", doc="Basic auth password")


class Cme3100Settings(StrictModel):
    """Everything the bench sets on a CMe3100 (docs/cme3100.md; docs/settings.md table)."""

    serial: str = setting(
        "0016045167", pattern=r"^[0-9]{10}$", source="CME3100.md §5.2 (G1)", doc="10 digits"
    )
    licence: int = setting(8, source="002 §4.5.1", doc="8 (none), 32, 64, 128, 256, 512")
    readout_schedule: Schedule = setting(
        "hourly", source="bench (Gaps #10)", doc="readout cycle: preset or cron"
    )
    search_baud: Literal[300, 2400, 9600] = setting(
        2400, unit="bit/s", source="004 §6.25.1", doc="meter search rate"
    )
    search: MbusTiming = Field(default_factory=MbusTiming)
    readout: MbusTiming = Field(default_factory=lambda: MULTI_TELEGRAM_TIMING.model_copy())
    multi_telegram: Literal["off", "auto"] = setting(
        "off", source="004 §6.25.3", doc='"off": the first telegram only'
    )
    multi_telegram_limit: int = setting(
        0, ge=0, le=1000, source="004 §6.25.3", doc="0 = automatic (DIF 1F)"
    )
    adaptive_retries: bool = setting(True, source="002 §6.32.1", doc="Table 9")
    job_retries: int = setting(3, ge=0, le=20, source="bench (Gaps #10)", doc="scheduled jobs")
    job_retry_offset_s: float = setting(
        60.0, unit="s", ge=0, source="bench (Gaps #10)", doc="between job retries"
    )
    http_timeout_s: float = setting(
        60.0, unit="s", ge=-1, source="bench (Gaps #10)", doc="-1: the server decides"
    )
    ftp_timeout_s: float = setting(
        60.0, unit="s", ge=-1, source="bench (Gaps #10)", doc="-1: the server decides"
    )
    mail_timeout_s: float = setting(
        60.0, unit="s", ge=-1, source="bench (Gaps #10)", doc="-1: the server decides"
    )
    status_byte_logging: Literal["always", "never", "on-change", "on-error"] = setting(
        "on-change", source="002 §6.14.3", doc="meter log of the M-Bus status byte"
    )
    reports: list[ReportSlot] = Field(default_factory=list, max_length=5)
    event_reports: list[EventReport] = Field(default_factory=list, max_length=3)
    snmp: SnmpService = Field(default_factory=SnmpService)
    virtual_mbus: VirtualMbusService = Field(default_factory=VirtualMbusService)
    transparent_mbus_1: TransparentMbusService = Field(default_factory=TransparentMbusService)
    transparent_mbus_2: TransparentMbusService = Field(
        default_factory=lambda: TransparentMbusService(port=10002)
    )
    slave_port_1: SlavePortService = Field(default_factory=SlavePortService)
    slave_port_2: SlavePortService = Field(default_factory=SlavePortService)
    # -- time, readout modes, jobs, auto configuration (docs/cme3100.md) ----------------------
    time: TimeSettings = Field(default_factory=TimeSettings)
    continuous_readout: bool = setting(
        False, source="002 §6.23", doc="back-to-back reads into RAM between rounds"
    )
    job_manual_retries: int = setting(0, ge=0, le=20, source="bench (Gaps #10)", doc="manual jobs")
    job_manual_retry_offset_s: float = setting(
        60.0, unit="s", ge=0, source="bench (Gaps #10)", doc="between manual job retries"
    )
    auto_config: AutoConfigSettings = Field(default_factory=AutoConfigSettings)

    @pydantic.field_validator("licence")
    @classmethod
    def _licence(cls, v: int) -> int:
        from simulator.gateways.cme3100.installation import LICENCE_STEPS

        if v not in LICENCE_STEPS:
            raise ValueError(f"one of {LICENCE_STEPS}")
        return v

    @pydantic.model_validator(mode="after")
    def _unique_names(self) -> Cme3100Settings:
        names = [r.name for r in (*self.reports, *self.event_reports)]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"report names must be unique: {dup} used twice")
        return self

    def timeout_s(self, protocol: str) -> float:
        """The push timeout of ``protocol`` (s; -1 = the server decides)."""
        return float(getattr(self, f"{protocol}_timeout_s"))
