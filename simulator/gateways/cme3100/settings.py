"""Stream Plugin settings: the properties of seed 003 §6.1, validated all at once.

==============================  ============================================  ================
property                        meaning (seed 003 §6.1)                       default
==============================  ============================================  ================
receiving.server.url            URI the push reports go to (http/https)       (none: no push)
receiving.server.push.cron      push schedule (cron, :mod:`.cron`)             ``*/15 * * * *``
filter.manufacturer             comma list of 3-letter codes (ELV,ABB)         (all)
filter.device.type              comma list of hex device types (1B,02)         (all)
filter.allow.list               comma list of 8-digit meter IDs (§5.2 "Allow   (all)
                                list"; the property name is the bench's)
radio.mode                      modes the receivers listen to (T1_C1A_C1B)     ``T1_C1A_C1B``
usb.baud.rate                   receiver USB link speed (bit/s)                ``115200``
service.enabled                 plugin on/off                                  ``true``
sync.enabled                    auto-configuration (CAD) on/off                ``false``
show.only.filtered              analyzer shows only allow-listed meters        ``false``
configuration.server.url        where the CAD file is fetched from             (none)
configuration.server.cron       auto-configuration schedule                    ``30 0 * * *``
==============================  ============================================  ================

The auto-configuration default ``30 0 * * *`` is seed 004's; the others are seed 003's
examples. :meth:`StreamSettings.updated` applies ``key=value`` changes atomically: on any
error it raises :class:`SettingsError` listing every problem and the settings stay as they
were (a settings object is immutable).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields, replace
from urllib.parse import urlsplit

from simulator.gateways.cme3100.cron import CronError, CronSchedule
from simulator.wmbus.receiver import RADIO_MODES

USB_BAUD_RATES = (3600, 4800, 7200, 9600, 14400, 19200, 28800, 38400, 57600, 76800, 115200)

#: property name -> dataclass field name
PROPERTIES = {
    "receiving.server.url": "receiving_server_url",
    "receiving.server.push.cron": "push_cron",
    "filter.manufacturer": "filter_manufacturer",
    "filter.device.type": "filter_device_type",
    "filter.allow.list": "allow_list",
    "radio.mode": "radio_mode",
    "usb.baud.rate": "usb_baud_rate",
    "service.enabled": "service_enabled",
    "sync.enabled": "sync_enabled",
    "show.only.filtered": "show_only_filtered",
    "configuration.server.url": "configuration_server_url",
    "configuration.server.cron": "configuration_cron",
}


class SettingsError(ValueError):
    """One or more bad properties; ``problems`` lists ``(property, message)`` pairs."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(f"{k}: {m}" for k, m in self.problems))


@dataclass(frozen=True)
class StreamSettings:
    """Validated Stream Plugin settings (see the module table for the property names)."""

    receiving_server_url: str | None = None
    push_cron: CronSchedule = field(default_factory=lambda: CronSchedule.parse("*/15 * * * *"))
    filter_manufacturer: tuple[str, ...] = ()
    filter_device_type: tuple[int, ...] = ()
    allow_list: tuple[int, ...] = ()
    radio_mode: str = "T1_C1A_C1B"
    usb_baud_rate: int = 115200
    service_enabled: bool = True
    sync_enabled: bool = False
    show_only_filtered: bool = False
    configuration_server_url: str | None = None
    configuration_cron: CronSchedule = field(
        default_factory=lambda: CronSchedule.parse("30 0 * * *")
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
        return replace(self, **changes)

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
        if not re.fullmatch(r"\d{1,8}", p):
            raise ValueError(f"device identity {p!r} is not an 8-digit meter ID")
        out.append(int(p))
    return tuple(out)


def _radio_mode(text: str) -> str:
    if text.upper() not in RADIO_MODES:
        raise ValueError(f"{text!r} is not one of {' '.join(RADIO_MODES)}")
    return text.upper()


def _baud(text: str) -> int:
    if not text.isdigit() or int(text) not in USB_BAUD_RATES:
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
assert set(_PARSERS) == {f.name for f in fields(StreamSettings)}
