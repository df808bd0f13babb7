"""The CMe3100's configuration from outside: CAD Auto Configuration of the gateway settings,
and a configuration backup that re-imports to the same state (seed 002 §6.12, §6.31;
CME3100.md §11; docs/cme3100.md "Configuration").

**Auto Configuration.** The CAD file is read by :func:`~.cad.parse_cad` and applied by
:class:`~.cad.AutoConfiguration` (result codes 900/920/921, ``Sync-Notify-URL``) exactly as
for the Stream Plugin; only the target differs: ``Sync-Config-N: <key>=<value>`` names a
setting of :class:`~.gateway_settings.Cme3100Settings` by its dotted key
(``readout_schedule=15min``, ``time.rtc_drift_ppm=20``, ``readout.response_timeout_ms=800``,
``reports.0.schedule=daily``). Every key is checked and the whole new settings validated
before anything changes; keys under :data:`RESTART_KEYS` are refused (the bench does not
rebuild report slots, SNMP or the value database while it runs). A value is the text after
``=``; for a list or table setting it is JSON.

**Backup.** :func:`export_config` writes the settings, the installed meters (install order,
state, set by hand or by the licence) as JSON with sorted keys; :func:`import_config` reads
it back (:class:`ConfigError` naming what and where) and :meth:`Backup.installation`
rebuilds the meter list exactly, so ``export(import(export(gw))) == export(gw)``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pydantic

from simulator.gateways.cme3100.cad import AutoConfiguration
from simulator.gateways.cme3100.gateway_settings import Cme3100Settings
from simulator.gateways.cme3100.installation import Installation, InstalledMeter
from simulator.gateways.cme3100.settings import SettingsError
from simulator.mbus.meterlist import MeterListEntry
from simulator.sinks.base import Sink, Source, WorldSink

if TYPE_CHECKING:
    from simulator.gateways.cme3100.gateway import Cme3100

#: Top-level settings a CAD file may not change while the bench runs (module doc).
RESTART_KEYS = ("serial", "reports", "event_reports", "snmp", "status_byte_logging")
BACKUP_FORMAT, BACKUP_VERSION = "meterbench-cme3100-backup", 1


class ConfigError(ValueError):
    """A backup that cannot be imported; says where (``meters[3].state``) and what."""


# -- dotted keys --------------------------------------------------------------------------------
def updated(
    settings: Cme3100Settings,
    props: Mapping[str, str],
    *,
    refused: tuple[str, ...] = RESTART_KEYS,
) -> Cme3100Settings:
    """``settings`` with each dotted ``key = value`` of ``props`` set; raises
    :class:`~.settings.SettingsError` listing every bad key (unknown, refused, invalid).
    ``refused``: top-level keys not taken (the running model's :data:`RESTART_KEYS`; a unit
    being set up before its run, :mod:`simulator.testing.push_setup`, takes every key)."""
    data = settings.model_dump(mode="json")
    problems: list[tuple[str, str]] = []
    for key, value in props.items():
        if key.split(".")[0] in refused:
            problems.append((key, f"not changed while running (one of {refused})"))
            continue
        try:
            _set(data, key.split("."), value)
        except (KeyError, IndexError, ValueError) as exc:
            problems.append((key, str(exc.args[0]) if exc.args else "no such setting"))
    if not problems:
        try:
            return Cme3100Settings.model_validate(data)
        except pydantic.ValidationError as exc:
            problems = [(".".join(map(str, e["loc"])), e["msg"]) for e in exc.errors()]
    raise SettingsError(problems)


def _set(node: Any, path: list[str], value: str) -> None:
    head, rest = path[0], path[1:]
    if isinstance(node, list):
        if not head.isdigit() or int(head) >= len(node):
            raise IndexError(f"no item {head} (there are {len(node)})")
        key: Any = int(head)
    elif isinstance(node, dict) and head in node:
        key = head
    else:
        raise KeyError("no such setting")
    if rest:
        _set(node[key], rest, value)
    elif isinstance(node[key], list | dict):
        try:
            node[key] = json.loads(value)
        except json.JSONDecodeError:
            raise ValueError(f"a list or table setting takes JSON, got {value!r}") from None
    else:
        node[key] = value


# -- Auto Configuration -------------------------------------------------------------------------
class _View:
    """What :class:`~.cad.AutoConfiguration` reads and replaces as ``plugin.settings``."""

    def __init__(self, gateway: Cme3100Settings) -> None:
        self.gateway = gateway

    @property
    def configuration_server_url(self) -> str | None:
        return self.gateway.auto_config.url

    def updated(self, props: Mapping[str, str]) -> _View:
        return _View(updated(self.gateway, props))


class GatewayTarget:
    """One gateway as the target of :class:`~.cad.AutoConfiguration` (the part of the plugin
    interface it uses): its settings, identity, trace source and notification sink."""

    #: Sync-Config-N items may name no config file (the gateway's settings are not a file)
    config_files: tuple[str | None, ...] = (None,)

    def __init__(self, gateway: Cme3100, sink: Sink | None = None) -> None:
        self.gw = gateway
        self.world, self.identity, self.source = gateway.world, gateway.identity, gateway.name
        self.sink: Sink = sink if sink is not None else WorldSink()

    @property
    def settings(self) -> _View:
        return _View(self.gw.settings)

    @settings.setter
    def settings(self, view: _View) -> None:
        self.gw.configure(view.gateway, "auto configuration")

    @property
    def auth_headers(self) -> tuple[tuple[str, str], ...]:
        """HTTP Basic ``Authorization`` when a user is set (002 §6.31.1: none or Basic)."""
        ac = self.gw.settings.auto_config
        if ac.user is None:
            return ()
        token = base64.b64encode(f"{ac.user}:{ac.password}".encode()).decode("ascii")
        return (("Authorization", f"Basic {token}"),)


def auto_configuration(
    gateway: Cme3100, source: Source | None = None, sink: Sink | None = None
) -> AutoConfiguration:
    """The CAD synchroniser of ``gateway``: fetches through ``source`` (in-world
    :class:`~simulator.sinks.base.WorldSource` by default, or a real
    :class:`~simulator.sinks.http_client.HttpGet`)."""
    return AutoConfiguration(GatewayTarget(gateway, sink), source)  # type: ignore[arg-type]


# -- backup -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Backup:
    """An imported backup: the settings and the installed meters as saved."""

    settings: Cme3100Settings
    meters: tuple[InstalledMeter, ...]

    def installation(self) -> Installation:
        """The installed meters exactly as saved (orders, states, by hand); the licence is
        the settings' one."""
        inst = Installation(self.settings.licence)
        inst.meters = [InstalledMeter(m.entry, m.order, m.state, m.by_hand) for m in self.meters]
        inst._order = max((m.order for m in self.meters), default=0)
        return inst


_ENTRY = ("position", "secondary", "baud", "mode", "primary", "enhanced")


def export_config(settings: Cme3100Settings, installation: Installation) -> str:
    """The backup text (JSON, sorted keys, one trailing newline)."""
    meters = [
        {
            **{k: getattr(m.entry, k) for k in _ENTRY},
            "order": m.order,
            "state": m.state,
            "by_hand": m.by_hand,
        }
        for m in installation.meters
    ]
    doc = {
        "format": BACKUP_FORMAT,
        "version": BACKUP_VERSION,
        "settings": settings.model_dump(mode="json"),
        "meters": meters,
    }
    return json.dumps(doc, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


class _MeterRow(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid", strict=True)

    position: str = pydantic.Field(min_length=1)
    secondary: str
    baud: int
    mode: str
    primary: int | None
    enhanced: str | None
    order: int = pydantic.Field(ge=1)
    state: str = pydantic.Field(pattern="^(active|passive)$")
    by_hand: bool


def import_config(text: str) -> Backup:
    """Read a backup written by :func:`export_config`; :class:`ConfigError` says where."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"backup: not JSON (line {exc.lineno}: {exc.msg})") from None
    if not isinstance(doc, dict) or doc.get("format") != BACKUP_FORMAT:
        raise ConfigError(f"backup: format is not {BACKUP_FORMAT!r}")
    if doc.get("version") != BACKUP_VERSION:
        raise ConfigError(f"backup: version {doc.get('version')!r}, expected {BACKUP_VERSION}")
    try:
        settings = Cme3100Settings.model_validate(doc.get("settings"))
    except pydantic.ValidationError as exc:
        e = exc.errors()[0]
        where = ".".join(map(str, e["loc"]))
        raise ConfigError(f"backup: settings.{where}: {e['msg']}") from None
    meters = []
    for i, row in enumerate(doc.get("meters") or []):
        try:
            m = _MeterRow.model_validate(row)
        except pydantic.ValidationError as exc:
            e = exc.errors()[0]
            raise ConfigError(f"backup: meters[{i}].{e['loc'][0]}: {e['msg']}") from None
        entry = MeterListEntry(m.position, m.secondary, m.baud, m.mode, m.primary, m.enhanced)
        meters.append(InstalledMeter(entry, m.order, m.state, m.by_hand))  # type: ignore[arg-type]
    orders = [m.order for m in meters]
    if len(set(orders)) != len(orders):
        raise ConfigError("backup: meters: install orders repeat")
    active = sum(1 for m in meters if m.state == "active")
    if active > settings.licence:
        raise ConfigError(
            f"backup: {active} active meters exceed the licence of {settings.licence}"
        )
    return Backup(settings, tuple(meters))
