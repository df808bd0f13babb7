"""The Stream Plugin analyzer (seed 003 §5.3): what the receivers heard, per meter.

Per meter: telegram count, last signal strength (dBm), manufacturer, device type and whether
the filters accepted it; totals "Meters found" and "Telegrams OK"; the analyzer time since the
last reset. The analyzer resets every 24 h (the plugin schedules it) or on demand, and exports
CSV with the screenshot's columns ``Meter ID;Filter;Telegrams;Signal;Man.;Type``.

``show.only.filtered`` (seed 003 §6.1: "Show only filtered meters in UI") lists only the meters
the plugin's filters accepted (``Filter`` = ``Accepted``); the counting goes on for every
meter, so switching it back shows them all again (§5.3: "When changed the statistics will be
updated on next refresh"). With only an allow list set this is §5.3's "Show only whitelisted
devices"; with no filter set every meter is accepted, so all are listed, as §5.3 says for an
empty allow list.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

#: How often the analyzer resets itself (s), seed 003 §5.3.
RESET_PERIOD_S = 86400.0


def device_type_name(code: int) -> str:
    """EN 13757-3 device type name (PROTOCOL.md §4.6) or ``0xNN``."""
    try:
        from simulator.mbus.telegram import MEDIUM_NAMES
    except ImportError:  # the wired codec is optional for this model
        return f"0x{code:02X}"
    return MEDIUM_NAMES.get(code, f"0x{code:02X}")


@dataclass
class MeterStats:
    """One analyzer row."""

    meter_id: str  # 8 digits as decoders print them (hex digits for a non-BCD ID)
    manufacturer: str
    device_type: int
    telegrams: int = 0
    last_rssi_dbm: float | None = None
    accepted: bool = False


class Analyzer:
    """Statistics since ``started_at`` (world time, s)."""

    def __init__(self, started_at: float = 0.0) -> None:
        self.started_at = started_at
        #: one row per whole address (M-field, ID, version, type): same ID, other meter
        self.meters: dict[tuple, MeterStats] = {}
        self.telegrams_ok = 0

    def update(
        self,
        meter_id: str,
        manufacturer: str,
        device_type: int,
        rssi_dbm: float,
        accepted: bool,
        key: tuple | None = None,
    ) -> None:
        """Count one correctly received telegram; ``key`` tells meters apart (default: the
        ID, manufacturer and type)."""
        key = key if key is not None else (meter_id, manufacturer, device_type)
        st = self.meters.get(key)
        if st is None:
            st = self.meters[key] = MeterStats(meter_id, manufacturer, device_type)
        st.telegrams += 1
        st.last_rssi_dbm = round(float(rssi_dbm))
        st.accepted = accepted
        self.telegrams_ok += 1

    def reset(self, now: float) -> None:
        self.started_at = now
        self.meters.clear()
        self.telegrams_ok = 0

    def rows(self, *, show_only_filtered: bool = False) -> list[MeterStats]:
        """Rows sorted by telegram count (most first), then meter ID; with
        ``show_only_filtered`` only the meters the filters accepted (module doc)."""
        rows = list(self.meters.values())
        if show_only_filtered:
            rows = [r for r in rows if r.accepted]
        return sorted(rows, key=lambda r: (-r.telegrams, r.meter_id, r.manufacturer))

    def summary(self, now: float) -> dict:
        return {
            "analyzer_time_s": round(now - self.started_at, 3),
            "meters_found": len(self.meters),
            "telegrams_ok": self.telegrams_ok,
        }

    def to_csv(self, **kw) -> str:
        """CSV export (``;``-separated, header row first)."""
        buf = io.StringIO()
        w = csv.writer(buf, delimiter=";", lineterminator="\n")
        w.writerow(["Meter ID", "Filter", "Telegrams", "Signal", "Man.", "Type"])
        for r in self.rows(**kw):
            w.writerow(
                [
                    r.meter_id,
                    "Accepted" if r.accepted else "Filtered",
                    r.telegrams,
                    "" if r.last_rssi_dbm is None else r.last_rssi_dbm,
                    r.manufacturer,
                    device_type_name(r.device_type),
                ]
            )
        return buf.getvalue()
