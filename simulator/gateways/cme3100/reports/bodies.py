"""Report bodies of the CMe3100 templates, as text (encoding: :mod:`.envelope`).

Every body is a list of *parts* (HTTP sends one chunk per part, CME3100.md §5.1 "HTTP
transfer: chunked"); lines end in ``\\n``; the separator is ``;`` (Localisation, 004 §6.36).

**x001 install report** (Elvaco FTP/HTTP reference 2001/3001, CME3100.md §5.3), no header
line, one row per meter, readout and telegram::

    <serial>;<device-identification>;<created>;<value-data-count>;<mbus-raw>

``created`` = local read time ``YYYY-MM-DD hh:mm:ss`` (Gaps #5), ``value-data-count`` = the
telegram's number in the readout, two digits from ``00``; ``mbus-raw`` = the telegram from
the C-field, lower-case hex, without ``68 L L 68``, checksum and stop byte.

**x115 / x101 value report** (the G1 capture of 3115; Gaps #1): per meter a header line,
then one row per readout and telegram::

    #serial-number;device-position;primary-address;device-identification;created;
    value-data-count;manufacturer;version;device-type;access-number;status;signature;<columns>

(one line; :mod:`.columns` for the value columns). x101 drops ``device-position`` and
``primary-address``; x109 is x101 with one file per meter. A header is repeated before each
meter and again whenever the next telegram's columns differ (a multi-telegram readout, a
meter whose records change). Position: two upper-case hex digits (the capture's ``0A``);
primary address, version, access number, status, signature: decimal; device type: the
medium name of the project's table (:data:`~simulator.mbus.telegram.MEDIUM_NAMES`).
Header fields of a telegram without a long header (CI 7A/78) are empty; a telegram the codec
cannot decode gives a row with empty header fields and no values.

**x005 event report** (Gaps #2): ``#;key;value`` then ``;<key>;<value>`` rows: ``event``,
``time``, ``serial-number``, ``firmware-version``, then any extra keys of the event.

**x007 status report** (bench-defined; the reference's text is not readable, CME3100.md
§5.4; columns after mail 1002's device list, §5.3): a header line, then one row per meter::

    #serial-number;device-position;device-identification;primary-address;manufacturer;
    version;device-type;baud-rate;addressing-mode;state;last-read;last-status
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from simulator.gateways.cme3100.readout import Readout, user_data
from simulator.gateways.cme3100.reports.columns import columns, time_text, value_text
from simulator.gateways.cme3100.reports.names import TemplateError
from simulator.mbus.address import manufacturer_letters
from simulator.mbus.errors import MBusError
from simulator.mbus.telegram import MEDIUM_NAMES, Telegram, decode_telegram

SEP = ";"
EOL = "\n"
INSTALL_COLUMNS = ("serial", "device-identification", "created", "value-data-count", "mbus-raw")
VALUE_HEADER = (
    "serial-number",
    "device-position",
    "primary-address",
    "device-identification",
    "created",
    "value-data-count",
    "manufacturer",
    "version",
    "device-type",
    "access-number",
    "status",
    "signature",
)
STATUS_HEADER = (
    "serial-number",
    "device-position",
    "device-identification",
    "primary-address",
    "manufacturer",
    "version",
    "device-type",
    "baud-rate",
    "addressing-mode",
    "state",
    "last-read",
    "last-status",
)
#: Event names of Gaps #2, and the issue's further device events.
EVENTS = (
    "startup",
    "firmware-updated",
    "unexpected-reboot",
    "installation-done",
    "readout-failed",
    "licence-exceeded",
    "configuration-changed",
)


_when = time_text


def install_report(serial: str, readouts: Iterable[Readout]) -> list[str]:
    """x001 body (module doc): one part per readout; failed readouts give no rows."""
    parts = []
    for r in readouts:
        rows = [
            SEP.join((serial, r.meter, _when(r.read_at), f"{n:02d}", user_data(t).hex())) + EOL
            for n, t in enumerate(r.telegrams)
        ]
        if rows:
            parts.append("".join(rows))
    return parts


def _decode(raw: bytes) -> Telegram | None:
    try:
        return decode_telegram(raw)
    except MBusError:
        return None


def _header_fields(r: Readout, t: Telegram | None, positions: bool) -> list[str]:
    fields = []
    if positions:
        fields.append(f"{r.position:02X}" if r.position is not None else "")
        primary = r.primary_address if r.primary_address is not None else (t.a if t else None)
        fields.append("" if primary is None else str(primary))
    raw = t.header.raw_address if t is not None else None
    fields.append(_identity_fields(raw) if t is not None and raw is not None else ";;")
    fields.append(_access_fields(t))
    return fields


@lru_cache(maxsize=4096)  # bounded: a fuzz run meets many addresses
def _identity_fields(raw: bytes) -> str:
    """``manufacturer;version;device-type`` of a long header's address bytes (one meter
    sends the same every time: worked out once per address)."""
    code = int.from_bytes(raw[4:6], "little")
    medium = MEDIUM_NAMES.get(raw[7], f"reserved-{raw[7]:02x}")
    return SEP.join((manufacturer_letters(code), str(raw[6]), medium))


def _access_fields(t: Telegram | None) -> str:
    """``access-number;status;signature`` (empty without a long header)."""
    if t is not None and t.header.ci in (0x72, 0x7A):
        h = t.header
        return f"{h.access_no};{h.status};{h.signature}"
    return ";;"


def value_report(serial: str, readouts: Iterable[Readout], positions: bool = True) -> list[str]:
    """x115 body (``positions`` True) or x101 body (False): one part per meter, meters in
    the order their first readout comes (module doc)."""
    head = [h for h in VALUE_HEADER if positions or h not in ("device-position", "primary-address")]
    blocks: dict[str, list[Readout]] = {}
    for r in readouts:
        blocks.setdefault(r.meter, []).append(r)
    parts = []
    for meter, rs in blocks.items():
        lines: list[str] = []
        current: tuple[str, ...] | None = None
        for r in rs:
            decoded = r.decoded if len(r.decoded) == len(r.telegrams) else None
            when = _when(r.read_at)
            for n, raw in enumerate(r.telegrams):
                t = decoded[n] if decoded is not None else _decode(raw)
                records = t.records if t is not None else []
                cols = columns(records)
                if cols != current:
                    lines.append("#" + SEP.join([*head, *cols]) + EOL)
                    current = cols
                # the row: serial, [position, primary,] meter, created, count, identity, access
                fields = _header_fields(r, t, positions)
                lead = [serial, *fields[:-2], meter, when, f"{n:02d}", *fields[-2:]]
                lines.append(SEP.join([*lead, *[value_text(rec.value) for rec in records]]) + EOL)
        if lines:
            parts.append("".join(lines))
    return parts


@dataclass(frozen=True)
class Event:
    """A device event for x005: ``name`` one of :data:`EVENTS`, local ``time``, extra
    ``details`` as ``(key, value)`` pairs (keys ``[a-z0-9-]+``)."""

    name: str
    time: datetime
    details: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if self.name not in EVENTS:
            raise TemplateError(f"event {self.name!r}: one of {', '.join(EVENTS)}")
        for key, value in self.details:
            if not re.fullmatch(r"[a-z0-9-]+", key) or any(c in str(value) for c in ";\r\n"):
                raise TemplateError(f"event detail {key!r}={value!r}: bad key or ';' in value")


def event_report(serial: str, firmware: str, event: Event) -> list[str]:
    """x005 body (module doc)."""
    pairs = [
        ("event", event.name),
        ("time", _when(event.time)),
        ("serial-number", serial),
        ("firmware-version", firmware),
        *event.details,
    ]
    return ["#;key;value" + EOL + "".join(f";{k};{v}{EOL}" for k, v in pairs)]


@dataclass(frozen=True)
class MeterEntry:
    """One meter of the meter list for x007 (002 §6.5 Table 4, §6.16.2)."""

    position: int
    meter: str
    primary_address: int | None
    manufacturer: str
    version: int
    medium: int
    baud_rate: int = 2400
    addressing: str = "secondary"
    state: str = "active"
    last_read: datetime | None = None
    last_status: str = ""

    def __post_init__(self) -> None:
        if self.state not in ("active", "passive"):
            raise TemplateError(f"meter {self.meter}: state {self.state!r}: active or passive")
        if self.addressing not in ("primary", "secondary", "esecondary"):
            raise TemplateError(f"meter {self.meter}: addressing {self.addressing!r}")


def status_report(serial: str, meters: Sequence[MeterEntry]) -> list[str]:
    """x007 body (module doc), meters in meter-list order."""
    lines = ["#" + SEP.join(STATUS_HEADER) + EOL]
    for m in sorted(meters, key=lambda m: m.position):
        row = [
            serial,
            f"{m.position:02X}",
            m.meter,
            "" if m.primary_address is None else str(m.primary_address),
            m.manufacturer,
            str(m.version),
            MEDIUM_NAMES.get(m.medium, f"reserved-{m.medium:02x}"),
            str(m.baud_rate),
            m.addressing,
            m.state,
            "" if m.last_read is None else _when(m.last_read),
            m.last_status.replace(SEP, " "),
        ]
        lines.append(SEP.join(row) + EOL)
    return ["".join(lines)]
