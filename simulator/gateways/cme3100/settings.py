"""Stream Plugin settings: the properties of seed 003 §6.1, validated all at once.

:class:`StreamSettings` is the one declaration of every property: its name, default, range
and source (docs/settings.md is generated from it, ``python -m
simulator.commands.settings_doc``). The auto-configuration default ``30 0 * * *`` is seed
004's; the others are seed 003's examples. ``filter.allow.list`` is seed 003 §5.2's "Allow
list" under a property name of the bench's. :meth:`StreamSettings.updated` applies
``key=value`` changes atomically: on any error it raises :class:`SettingsError` listing every
problem and the settings stay as they were (a settings object is immutable).
"""

from __future__ import annotations

import re
from typing import Literal
from urllib.parse import urlsplit

import pydantic

from simulator.core.settings import setting
from simulator.core.text import decimal
from simulator.gateways.cme3100.cron import CronError, CronSchedule
from simulator.wmbus.receiver import RADIO_MODES

USB_BAUD_RATES = (3600, 4800, 7200, 9600, 14400, 19200, 28800, 38400, 57600, 76800, 115200)


class SettingsError(ValueError):
    """One or more bad properties; ``problems`` lists ``(property, message)`` pairs."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(f"{k}: {m}" for k, m in self.problems))


P = "seed 003 §6.1"  # the property table and its examples


def _cron(text: str):
    return lambda: CronSchedule.parse(text)


class StreamSettings(pydantic.BaseModel):
    """Validated Stream Plugin settings; ``prop`` in each field is the property name."""

    model_config = pydantic.ConfigDict(frozen=True, arbitrary_types_allowed=True, extra="forbid")

    receiving_server_url: str | None = setting(
        None, prop="receiving.server.url", source=P, doc="URI the push reports go to (http/https)"
    )
    push_cron: CronSchedule = setting(
        default_factory=_cron("*/15 * * * *"),
        prop="receiving.server.push.cron",
        source=P,
        doc="push schedule (cron)",
    )
    filter_manufacturer: tuple[str, ...] = setting(
        (), prop="filter.manufacturer", source=P, doc="3-letter codes (ELV,ABB); empty = all"
    )
    filter_device_type: tuple[int, ...] = setting(
        (), prop="filter.device.type", source=P, doc="hex device types (1B,02); empty = all"
    )
    allow_list: tuple[int, ...] = setting(
        (), prop="filter.allow.list", source="seed 003 §5.2", doc="8-digit meter IDs; empty = all"
    )
    radio_mode: Literal[tuple(RADIO_MODES)] = setting(  # type: ignore[valid-type]
        "T1_C1A_C1B", prop="radio.mode", source=P, doc="modes the receivers listen to"
    )
    usb_baud_rate: Literal[USB_BAUD_RATES] = setting(  # type: ignore[valid-type]
        115200, unit="bit/s", prop="usb.baud.rate", source=P, doc="receiver USB link speed"
    )
    service_enabled: bool = setting(True, prop="service.enabled", source=P, doc="plugin on/off")
    sync_enabled: bool = setting(
        False, prop="sync.enabled", source=P, doc="auto-configuration (CAD) on/off"
    )
    show_only_filtered: bool = setting(
        False,
        prop="show.only.filtered",
        source=P,
        doc="analyzer lists only meters the filters accepted",
    )
    configuration_server_url: str | None = setting(
        None, prop="configuration.server.url", source=P, doc="where the CAD file is fetched from"
    )
    configuration_cron: CronSchedule = setting(
        default_factory=_cron("30 0 * * *"),
        prop="configuration.server.cron",
        source="seed 004 §6.31.1",
        doc="auto-configuration schedule",
    )

    @classmethod
    def from_properties(cls, props: dict[str, str]) -> StreamSettings:
        """Settings from ``{property: text}``; unset properties keep their defaults."""
        return cls().updated(props)

    def updated(self, props: dict[str, str]) -> StreamSettings:
        """A copy with ``props`` applied; :class:`SettingsError` lists every bad property."""
        changes: dict[str, object] = {}
        problems: list[tuple[str, str]] = []
        for key, text in props.items():
            name = PROPERTIES.get(key)
            if name is None:
                problems.append((key, f"unknown property; one of {', '.join(PROPERTIES)}"))
                continue
            try:
                changes[name] = _PARSERS[name](str(text).strip())
            except (ValueError, CronError) as exc:
                problems.append((key, str(exc)))
        if problems:
            raise SettingsError(problems)
        return self.model_copy(update=changes)

    def to_properties(self) -> dict[str, str]:
        """The settings as ``{property: text}`` (the inverse of :meth:`from_properties`)."""
        out = {}
        for key, name in PROPERTIES.items():
            v = getattr(self, name)
            if v is None:
                out[key] = ""
            elif isinstance(v, bool):
                out[key] = "true" if v else "false"
            elif name == "filter_device_type":
                out[key] = ",".join(f"{t:02X}" for t in v)
            elif name == "allow_list":
                out[key] = ",".join(f"{i:08d}" for i in v)
            elif isinstance(v, tuple):
                out[key] = ",".join(v)
            else:
                out[key] = str(v)
        return out


def _url(text: str) -> str | None:
    if not text:
        return None
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{text!r} is not an http:// or https:// URL with a host")
    return text


def _bool(text: str) -> bool:
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    raise ValueError(f"{text!r} is not true/false")


def _list(text: str) -> list[str]:
    return [p.strip() for p in text.split(",") if p.strip()]


def _manufacturers(text: str) -> tuple[str, ...]:
    out = tuple(p.upper() for p in _list(text))
    bad = [p for p in out if not re.fullmatch(r"[A-Z]{3}", p)]
    if bad:
        raise ValueError(f"manufacturer codes must be three letters: {', '.join(bad)}")
    return out


def _device_types(text: str) -> tuple[int, ...]:
    out = []
    for p in _list(text):
        if not re.fullmatch(r"[0-9A-Fa-f]{1,2}", p):
            raise ValueError(f"device type {p!r} is not one hex byte (e.g. 07, 1B)")
        out.append(int(p, 16))
    return tuple(out)


def _ids(text: str) -> tuple[int, ...]:
    out = []
    for p in _list(text):
        if not re.fullmatch(r"[0-9]{1,8}", p):
            raise ValueError(f"device identity {p!r} is not an 8-digit meter ID")
        out.append(int(p))
    return tuple(out)


def _radio_mode(text: str) -> str:
    if text.upper() not in RADIO_MODES:
        raise ValueError(f"{text!r} is not one of {' '.join(RADIO_MODES)}")
    return text.upper()


def _baud(text: str) -> int:
    if decimal(text) not in USB_BAUD_RATES:
        raise ValueError(f"{text!r} is not one of {' '.join(map(str, USB_BAUD_RATES))}")
    return int(text)


_PARSERS = {
    "receiving_server_url": _url,
    "push_cron": CronSchedule.parse,
    "filter_manufacturer": _manufacturers,
    "filter_device_type": _device_types,
    "allow_list": _ids,
    "radio_mode": _radio_mode,
    "usb_baud_rate": _baud,
    "service_enabled": _bool,
    "sync_enabled": _bool,
    "show_only_filtered": _bool,
    "configuration_server_url": _url,
    "configuration_cron": CronSchedule.parse,
}
#: property name -> field name, from the model
PROPERTIES = {
    info.json_schema_extra["property"]: name  # type: ignore[index]
    for name, info in StreamSettings.model_fields.items()
}
assert set(_PARSERS) == set(StreamSettings.model_fields)
