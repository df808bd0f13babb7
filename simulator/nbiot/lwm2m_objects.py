"""The LwM2M objects and resources a CMi6140 exposes (seed 001 §6.3 tables, pages 13-16).

OMA objects 3 (Device), 4 (Connectivity Monitoring) and 10 (LwM2M Cellular Connectivity), with
resource ids from the OMA registry (RADIO-NBIOT.md §7), and the Elvaco objects 33906 (MCM
Config), 33907 (bench: transmission settings), 33908 (Meter Info) and 33909 (NB-IoT Info).
The page summaries show 33906/0/2 message format (42 Standard, 43 Extended; the bench adds 44
Pulse and 45 Combined, see :data:`~.payload.FORMAT_IDS`), /4 NFC enabled,
/5 config locked (Boolean, W: locks / opens with the PAK), /6 adjust time; 33908/0/2 comm
status (0 OK, 1 no meter detected, 2 error), /3 error flags; 33909/0/0 IMSI. Resources the summaries do not show are marked ``bench`` and
documented in docs/nbiot.md.

A resource reads its value from the module through a getter, so what a server reads is what the
module does (PSM timer /10/0/4 is the configured T3412, /4/0/13 the current CE level...).
Unknown paths raise :class:`LwM2MPathError` (CoAP 4.04 Not Found); a write to a read-only
resource raises :class:`LwM2MMethodError` (4.05 Method Not Allowed).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from simulator.nbiot import payload, timers

#: /33906/0/2 values: the message format identifier in hex digits (0x42 is shown as 42).
_FORMAT_VALUES = {name: int(f"{fid:X}") for name, fid in payload.FORMAT_IDS.items()}
_FORMAT_NAMES = {v: k for k, v in _FORMAT_VALUES.items()}


class LwM2MPathError(LookupError):
    """No such object / instance / resource (CoAP 4.04)."""


class LwM2MMethodError(PermissionError):
    """The operation is not allowed on this resource (CoAP 4.05)."""


@dataclass(frozen=True)
class Resource:
    """One resource: ``/oid/0/rid``, its name, LwM2M data type, operations (R, W, E)."""

    oid: int
    rid: int
    name: str
    type: str
    ops: str
    get: Callable[[Any], Any] | None = None
    set: Callable[[Any, Any], None] | None = None
    source: str = "seed 001 §6.3"

    @property
    def path(self) -> str:
        return f"/{self.oid}/0/{self.rid}"


def _cfg(name: str) -> Callable[[Any], Any]:
    return lambda m: m.store.read(name)


def _write_cfg(name: str) -> Callable[[Any, Any], None]:
    return lambda m, v: m.store.write(name, v, pak=getattr(m, "dm_pak", None))


def _write_lock(m: Any, value: Any) -> None:
    """/33906/0/5: True locks, False opens; :class:`~.config.ConfigError` for a non-Boolean
    or a missing PAK, :class:`~.config.ConfigLockedError` for a wrong one."""
    from simulator.nbiot.config import ConfigError

    if not isinstance(value, bool):
        raise ConfigError(f"/33906/0/5 Config locked is Boolean, got {value!r}")
    pak = getattr(m, "dm_pak", None)
    if value:
        m.store.lock(pak or "")
    else:
        m.store.unlock(pak or "")


RESOURCES: tuple[Resource, ...] = (
    # Object 3 Device (OMA registry v1.2)
    Resource(3, 0, "Manufacturer", "String", "R", lambda m: "Elvaco"),
    Resource(3, 1, "Model Number", "String", "R", lambda m: "CMi6140"),
    Resource(3, 2, "Serial Number", "String", "R", lambda m: m.serial),
    Resource(3, 3, "Firmware Version", "String", "R", lambda m: m.firmware),
    Resource(3, 4, "Reboot", "none", "E"),
    Resource(3, 6, "Available Power Sources", "Integer", "R", lambda m: 1),  # 1 internal battery
    Resource(3, 9, "Battery Level", "Integer", "R", lambda m: m.battery_level_pct()),
    Resource(3, 13, "Current Time", "Time", "R", lambda m: int(m.utc_now().timestamp())),
    Resource(
        3,
        14,
        "UTC Offset",
        "String",
        "R",
        lambda m: _utc_offset_text(m.store.read("utc_offset_min")),
    ),
    # Object 4 Connectivity Monitoring (v1.3)
    Resource(4, 0, "Network Bearer", "Integer", "R", lambda m: 7),  # 7 = NB-IoT
    Resource(4, 2, "Radio Signal Strength", "Integer", "R", lambda m: round(m.link.rsrp_dbm)),
    Resource(4, 8, "Cell ID", "Integer", "R", lambda m: m.cell_id),
    # 0 = no CE, 1 = CE0, 2 = CE1, 3 = CE2 (OMA object 4 resource 13)
    Resource(4, 13, "Coverage Enhancement Level", "Integer", "R", lambda m: m.link.ce_level + 1),
    # Object 10 LwM2M Cellular Connectivity (v1.1)
    Resource(10, 4, "PSM Timer", "Integer", "R", _cfg("t3412_s")),
    Resource(10, 5, "Active Timer", "Integer", "R", _cfg("t3324_s")),
    Resource(
        10,
        9,
        "eDRX parameters for NB-S1 mode",
        "Opaque",
        "R",
        lambda m: bytes(
            [
                int(
                    timers.encode_edrx_nbs1(
                        m.store.read("edrx_cycle_s"), m.store.read("paging_time_window_s")
                    ),
                    2,
                )
            ]
        ),
    ),
    Resource(
        10,
        13,
        "Active Power Saving Modes",
        "Integer",
        "R",
        lambda m: {"disabled": 0, "psm": 1, "edrx": 2, "edrx+psm": 3}[
            m.store.read("power_saving_mode")
        ],
    ),
    # 33906 Elvaco MCM Config
    Resource(
        33906,
        2,
        "Message format",
        "Integer",
        "RW",
        lambda m: _FORMAT_VALUES[m.store.read("message_format")],
        lambda m, v: _write_cfg("message_format")(m, _FORMAT_NAMES.get(v, v)),
    ),
    Resource(33906, 4, "NFC Enabled", "Boolean", "R", lambda m: True),
    # Seed 001 p. 15 lists it Boolean, W: a DM server locks (True) or opens (False) the
    # configuration with the module's Product Access Key (``dm_pak``, §7.2).
    Resource(
        33906, 5, "Config locked", "Boolean", "RW", lambda m: m.store.locked, _write_lock
    ),  # fmt: skip
    Resource(33906, 6, "Adjust time", "Integer", "W", None, lambda m, v: m.adjust_time(v)),
    # 33907: bench-defined (the page summaries do not list it)
    Resource(
        33907,
        0,
        "Readout interval",
        "Integer",
        "RW",
        _cfg("readout_interval_min"),
        _write_cfg("readout_interval_min"),
        "bench",
    ),
    Resource(
        33907,
        1,
        "Transmit interval",
        "Integer",
        "RW",
        _cfg("transmit_interval_min"),
        _write_cfg("transmit_interval_min"),
        "bench",
    ),
    Resource(
        33907,
        2,
        "UTC offset",
        "Integer",
        "RW",
        _cfg("utc_offset_min"),
        _write_cfg("utc_offset_min"),
        "bench",
    ),
    # 33908 Elvaco Meter Info
    Resource(33908, 0, "Meter ID", "Integer", "R", lambda m: m.meter_id, source="bench"),
    Resource(33908, 2, "Comm status", "Integer", "R", lambda m: m.meter_comm_status),
    Resource(
        33908, 3, "Error flags", "Opaque", "R", lambda m: m.last_error_flags.to_bytes(4, "little")
    ),
    # 33909 Elvaco NB-IoT Info
    Resource(33909, 0, "IMSI", "Integer", "R", lambda m: m.imsi),
)

_BY_PATH = {r.path: r for r in RESOURCES}
OBJECT_IDS = tuple(sorted({r.oid for r in RESOURCES}))


def _utc_offset_text(minutes: int) -> str:
    sign = "+" if minutes >= 0 else "-"
    return f"UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def _resource(path: str) -> Resource:
    norm = "/" + path.strip("/")
    if norm not in _BY_PATH:
        raise LwM2MPathError(f"no LwM2M resource {norm} (objects: {OBJECT_IDS})")
    return _BY_PATH[norm]


def read(module: Any, path: str) -> Any:
    """Read ``/oid/0/rid`` from a module; :class:`LwM2MPathError` / :class:`LwM2MMethodError`."""
    res = _resource(path)
    if "R" not in res.ops or res.get is None:
        raise LwM2MMethodError(f"{res.path} ({res.name}) is not readable")
    return res.get(module)


def write(module: Any, path: str, value: Any) -> None:
    """Write a writable resource; configuration errors come from :mod:`.config`."""
    res = _resource(path)
    if "W" not in res.ops or res.set is None:
        raise LwM2MMethodError(f"{res.path} ({res.name}) is not writable")
    res.set(module, value)


def read_object(module: Any, oid: int) -> dict[str, Any]:
    """Every readable resource of object ``oid`` as ``{path: value}``."""
    if oid not in OBJECT_IDS:
        raise LwM2MPathError(f"no LwM2M object {oid} (objects: {OBJECT_IDS})")
    return {
        r.path: r.get(module)
        for r in RESOURCES
        if r.oid == oid and "R" in r.ops and r.get is not None
    }
