"""VIF/VIFE tables of EN 13757-3: primary table, FD (1st) and FB (2nd) extension tables and the
combinable (orthogonal) VIFEs.

Each code maps to a :class:`VifInfo`: a snake_case quantity name, the base unit of the family
("Wh", "J", "m3", "kg", "s", "W", "J/h", "m3/h", "m3/min", "m3/s", "kg/h", "°C", "K", "bar",
"V", "A", "%", "°F", "dBm", "" for dimensionless/text/dates), the decimal exponent that scales
the raw number into that unit, and for durations the factor to seconds.

Sources: PROTOCOL.md §4.5 (primary table), libmbus ``mbus_vif_unit_lookup``,
``mbus_vib_unit_lookup_fd``/``_fb`` and ``vif_table`` (L2/L3), wmbusmeters ``dvparser.h`` (W4).
Codes nobody defines decode as ``quantity="reserved"`` with the raw number (never an error).
"""

from __future__ import annotations

from dataclasses import dataclass

from simulator.mbus.errors import RecordError

#: Duration unit nn (2 bits) -> seconds (s, min, h, d).
DURATION_FACTORS = (1, 60, 3600, 86400)


@dataclass(frozen=True)
class VifInfo:
    """What a VIF (or extension-table VIFE) means.

    ``kind``: ``"number"`` (scaled numeric value), ``"duration"`` (raw * ``factor`` seconds),
    ``"date"`` (type G), ``"datetime"`` (type F, or type I for 6 bytes), ``"binary"`` (flags:
    unsigned int), ``"text"``, ``"container"`` (LVAR bytes kept as sent), ``"manufacturer"``,
    ``"plain_text"`` (VIF 7C/FC: the unit follows as text), ``"any"`` (VIF 7E/FE).
    """

    quantity: str
    unit: str = ""
    exponent: int = 0
    kind: str = "number"
    factor: int = 1


RESERVED = VifInfo("reserved")


def _family(base: int, count: int, quantity: str, unit: str, exp0: int) -> dict[int, VifInfo]:
    return {base + n: VifInfo(quantity, unit, exp0 + n) for n in range(count)}


def _durations(base: int, quantity: str) -> dict[int, VifInfo]:
    return {base + n: VifInfo(quantity, "s", 0, "duration", DURATION_FACTORS[n]) for n in range(4)}


PRIMARY: dict[int, VifInfo] = {
    **_family(0x00, 8, "energy", "Wh", -3),
    **_family(0x08, 8, "energy", "J", 0),
    **_family(0x10, 8, "volume", "m3", -6),
    **_family(0x18, 8, "mass", "kg", -3),
    **_durations(0x20, "on_time"),
    **_durations(0x24, "operating_time"),
    **_family(0x28, 8, "power", "W", -3),
    **_family(0x30, 8, "power", "J/h", 0),
    **_family(0x38, 8, "volume_flow", "m3/h", -6),
    **_family(0x40, 8, "volume_flow", "m3/min", -7),
    **_family(0x48, 8, "volume_flow", "m3/s", -9),
    **_family(0x50, 8, "mass_flow", "kg/h", -3),
    **_family(0x58, 4, "flow_temperature", "°C", -3),
    **_family(0x5C, 4, "return_temperature", "°C", -3),
    **_family(0x60, 4, "temperature_difference", "K", -3),
    **_family(0x64, 4, "external_temperature", "°C", -3),
    **_family(0x68, 4, "pressure", "bar", -3),
    0x6C: VifInfo("date", kind="date"),
    0x6D: VifInfo("date_time", kind="datetime"),
    0x6E: VifInfo("hca_units"),
    0x6F: RESERVED,
    **_durations(0x70, "averaging_duration"),
    **_durations(0x74, "actuality_duration"),
    0x78: VifInfo("fabrication_number"),
    0x79: VifInfo("enhanced_identification"),
    0x7A: VifInfo("bus_address"),
    0x7C: VifInfo("plain_text_unit", kind="plain_text"),
    0x7E: VifInfo("any", kind="any"),
    0x7F: VifInfo("manufacturer_specific", kind="manufacturer"),
}

#: 1st extension table, entered by VIF FD (EN 13757-3 Table 14 as in libmbus/wmbusmeters).
FD: dict[int, VifInfo] = {
    **_family(0x00, 4, "credit", "currency", -3),
    **_family(0x04, 4, "debit", "currency", -3),
    0x08: VifInfo("access_number"),
    0x09: VifInfo("medium"),
    0x0A: VifInfo("manufacturer"),
    0x0B: VifInfo("parameter_set_id", kind="text"),
    0x0C: VifInfo("model_version", kind="text"),
    0x0D: VifInfo("hardware_version", kind="text"),
    0x0E: VifInfo("firmware_version", kind="text"),
    0x0F: VifInfo("software_version", kind="text"),
    0x10: VifInfo("customer_location", kind="text"),
    0x11: VifInfo("customer", kind="text"),
    0x12: VifInfo("access_code_user"),
    0x13: VifInfo("access_code_operator"),
    0x14: VifInfo("access_code_system_operator"),
    0x15: VifInfo("access_code_developer"),
    0x16: VifInfo("password"),
    0x17: VifInfo("error_flags", kind="binary"),
    0x18: VifInfo("error_mask", kind="binary"),
    0x1A: VifInfo("digital_output", kind="binary"),
    0x1B: VifInfo("digital_input", kind="binary"),
    0x1C: VifInfo("baud_rate", "bit/s"),
    0x1D: VifInfo("response_delay_time", "bit times"),
    0x1E: VifInfo("retry"),
    0x1F: VifInfo("remote_control", kind="binary"),
    0x20: VifInfo("first_storage_number_cyclic"),
    0x21: VifInfo("last_storage_number_cyclic"),
    0x22: VifInfo("size_of_storage_block"),
    **_durations(0x24, "storage_interval"),
    0x28: VifInfo("storage_interval_months", "month"),
    0x29: VifInfo("storage_interval_years", "year"),
    0x2B: VifInfo("time_point_second", "s"),
    **_durations(0x2C, "duration_since_last_readout"),
    0x30: VifInfo("start_of_tariff", kind="datetime"),
    0x31: VifInfo("duration_of_tariff", "s", 0, "duration", 60),
    0x32: VifInfo("duration_of_tariff", "s", 0, "duration", 3600),
    0x33: VifInfo("duration_of_tariff", "s", 0, "duration", 86400),
    **_durations(0x34, "period_of_tariff"),
    0x38: VifInfo("period_of_tariff_months", "month"),
    0x39: VifInfo("period_of_tariff_years", "year"),
    0x3A: VifInfo("dimensionless"),
    # 3B: Elvaco uses FD 3B as the wM-Bus telegram container (seed 003 §9.4.1)
    0x3B: VifInfo("container", kind="container"),
    **_family(0x40, 16, "voltage", "V", -9),
    **_family(0x50, 16, "current", "A", -12),
    0x60: VifInfo("reset_counter"),
    0x61: VifInfo("cumulation_counter"),
    0x62: VifInfo("control_signal"),
    0x63: VifInfo("day_of_week"),
    0x64: VifInfo("week_number"),
    0x65: VifInfo("time_point_of_day_change"),
    0x66: VifInfo("state_of_parameter_activation"),
    0x67: VifInfo("special_supplier_information"),
    0x68: VifInfo("duration_since_last_cumulation", "s", 0, "duration", 3600),
    0x69: VifInfo("duration_since_last_cumulation", "s", 0, "duration", 86400),
    0x6A: VifInfo("duration_since_last_cumulation_months", "month"),
    0x6B: VifInfo("duration_since_last_cumulation_years", "year"),
    0x6C: VifInfo("operating_time_battery", "s", 0, "duration", 3600),
    0x6D: VifInfo("operating_time_battery", "s", 0, "duration", 86400),
    0x6E: VifInfo("operating_time_battery_months", "month"),
    0x6F: VifInfo("operating_time_battery_years", "year"),
    0x70: VifInfo("date_time_of_battery_change", kind="datetime"),
    # 71: reception level of a received radio device (EN 13757-3:2013; the RSSI of seed 003 §9.4)
    # sign/scale of the level are not in any source we could read: kept as the raw number
    0x71: VifInfo("reception_level"),
    # 72/73: data types K ("beginning, ending, deviation") and L (EN 13757-3 FD table,
    # wmbusmeters, jMBus); their Annex A bit layouts are in no source we could read, so the
    # bytes are kept (kind "raw"); docs/mbus-codec.md "Types K and L: not decoded" has the search
    0x72: VifInfo("daylight_savings", kind="raw"),
    0x73: VifInfo("listening_window_management", kind="raw"),
    0x74: VifInfo("remaining_battery_life", "s", 0, "duration", 86400),
}

#: 2nd extension table, entered by VIF FB.
FB: dict[int, VifInfo] = {
    0x00: VifInfo("energy", "Wh", 5),
    0x01: VifInfo("energy", "Wh", 6),
    0x08: VifInfo("energy", "J", 8),
    0x09: VifInfo("energy", "J", 9),
    0x10: VifInfo("volume", "m3", 2),
    0x11: VifInfo("volume", "m3", 3),
    0x18: VifInfo("mass", "kg", 5),
    0x19: VifInfo("mass", "kg", 6),
    0x1A: VifInfo("relative_humidity", "%", -1),
    0x1B: VifInfo("relative_humidity", "%", 0),
    0x28: VifInfo("power", "W", 5),
    0x29: VifInfo("power", "W", 6),
    0x30: VifInfo("power", "J/h", 8),
    0x31: VifInfo("power", "J/h", 9),
    **_family(0x58, 4, "flow_temperature", "°F", -3),
    **_family(0x5C, 4, "return_temperature", "°F", -3),
    **_family(0x60, 4, "temperature_difference", "°F", -3),
    **_family(0x64, 4, "external_temperature", "°F", -3),
    **_family(0x70, 4, "cold_warm_temperature_limit", "°F", -3),
    **_family(0x74, 4, "cold_warm_temperature_limit", "°C", -3),
    **_family(0x78, 8, "cumulative_max_power", "W", -3),
}

_PER = ["second", "minute", "hour", "day", "week", "month", "year", "revolution/measurement"]

#: Combinable (orthogonal) VIFE codes -> description (EN 13757-3 Table 15, libmbus).
COMBINABLE: dict[int, str] = {
    **{0x20 + i: f"per {p}" for i, p in enumerate(_PER)},
    0x28: "increment per input pulse on input channel 0",
    0x29: "increment per input pulse on input channel 1",
    0x2A: "increment per output pulse on output channel 0",
    0x2B: "increment per output pulse on output channel 1",
    0x2C: "per litre",
    0x2D: "per m3",
    0x2E: "per kg",
    0x2F: "per K",
    0x30: "per kWh",
    0x31: "per GJ",
    0x32: "per kW",
    0x33: "per (K*l)",
    0x34: "per V",
    0x35: "per A",
    0x36: "multiplied by s",
    0x37: "multiplied by s/V",
    0x38: "multiplied by s/A",
    0x39: "start date(/time) of",
    0x3A: "uncorrected unit",
    0x3B: "accumulation only if positive contributions",
    0x3C: "accumulation of abs value only if negative contributions",
    0x40: "lower limit value",
    0x48: "upper limit value",
    0x41: "number of exceeds of lower limit",
    0x49: "number of exceeds of upper limit",
    0x7E: "future value",
    0x7F: "manufacturer specific VIFEs follow",
}
for _n in range(0x00, 0x20):
    COMBINABLE.setdefault(_n, f"error/action code {_n:02X}")
for _n in [*range(0x42, 0x48), *range(0x4A, 0x50)]:
    COMBINABLE[_n] = "date/time of " + ("upper" if _n & 0x08 else "lower") + " limit exceed"
for _n in range(0x50, 0x60):
    COMBINABLE[_n] = "duration of limit exceed"
for _n in range(0x60, 0x68):
    COMBINABLE[_n] = "duration of D"
COMBINABLE.update(
    {
        0x68: "value during lower limit exceed",
        0x69: "leakage values",
        0x6A: "date/time of D",
        0x6B: "date/time of D",
        0x6C: "value during upper limit exceed",
        0x6E: "date/time of D",
        0x6F: "date/time of D",
    }
)
for _n in range(8):
    COMBINABLE[0x70 + _n] = f"multiplicative correction factor 1e{_n - 6}"
for _n in range(4):
    COMBINABLE[0x78 + _n] = f"additive correction constant 1e{_n - 3} * unit of VIF"
COMBINABLE[0x7D] = "multiplicative correction factor 1e3"


def combinable_exponent(code: int) -> int:
    """Decimal exponent a combinable VIFE adds to the value scale (70..77, 7D), else 0."""
    if 0x70 <= code <= 0x77:
        return code - 0x70 - 6
    if code == 0x7D:
        return 3
    return 0


def describe_combinable(code: int) -> str:
    return COMBINABLE.get(code, f"reserved VIFE {code:02X}")


# --- what the combinable VIFEs do to a value (applied, not only described) ----------------------
# EN 13757-3:2013 Table 15 as libmbus, wmbusmeters (dvparser.h VIFCombinable) and jMBus read it.
_PER_UNIT = ("s", "min", "h", "d", "week", "month", "year", "revolution")
_PER_QUANTITY = ("l", "m3", "kg", "K", "kWh", "GJ", "kW", "(K*l)", "V", "A")
_TIMES = ("s", "s/V", "s/A")


@dataclass(frozen=True, slots=True)
class VibPlan:
    """How the value of a record with a given VIB (VIF + VIFEs) is read, computed once per VIB.

    ``quantity``/``unit``: the VIF family's name and unit after the combinable VIFEs
    (``"m3/h"`` for VIF 13 + VIFE 22 "per hour"; ``"s"`` for a duration of limit exceed).
    ``kind``: the :class:`VifInfo` kind, or ``"count"`` (number of limit exceeds: raw integer)
    and ``"date"``/``"datetime"`` for the date(/time)-of VIFEs. ``exponent``: decimal exponent
    (VIF + multiplicative correction factors 70..77, 7D); ``mul``/``div``: the same as one
    integer factor or divisor (so a scaled int stays exact and a division is correctly rounded);
    ``offset``: additive correction constant in ``unit`` (VIFE 78..7B: 10^(nn-3) x the unit of
    the VIF, i.e. its resolution), 0 without one; ``factor``: seconds per raw unit of a duration;
    ``texts``: a description of each VIFE.
    """

    quantity: str
    unit: str
    kind: str
    exponent: int
    mul: int
    div: int
    offset: int | float
    factor: int
    texts: tuple[str, ...]


def _scale_of(exponent: int) -> tuple[int, int]:
    return (10**exponent, 1) if exponent >= 0 else (1, 10**-exponent)


def _exact(exponent: int) -> int | float:
    mul, div = _scale_of(exponent)
    return mul if div == 1 else 1 / div


def make_plan(vif: int, vife: tuple[int, ...]) -> VibPlan:
    """The :class:`VibPlan` of a VIF byte and its VIFEs (extension bits included).

    Raises :class:`RecordError` if VIF FD/FB has no VIFE naming the extension-table entry.
    """
    rest: tuple[int, ...]
    if vif == 0xFD or vif == 0xFB:
        if not vife:
            raise RecordError(f"VIF {vif:02X} needs a VIFE naming the extension-table entry")
        first = vife[0] & 0x7F
        info = (FD if vif == 0xFD else FB).get(first) or VifInfo(f"reserved_{vif:02X}_{first:02X}")
        rest = vife[1:]
    else:
        info = PRIMARY.get(vif & 0x7F, RESERVED)
        rest = vife
    quantity, unit, kind, factor = info.quantity, info.unit, info.kind, info.factor
    if kind == "manufacturer":
        texts = tuple(f"manufacturer VIFE {c:02X}" for c in rest)
        return VibPlan(quantity, unit, kind, 0, 1, 1, 0, 1, texts)
    exponent = info.exponent
    offset_exp: int | None = None
    out = []
    for i, b in enumerate(rest):
        code = b & 0x7F
        out.append(describe_combinable(code))
        if code == 0x7F:  # the remaining VIFEs are manufacturer specific
            out.extend(f"manufacturer VIFE {c:02X}" for c in rest[i + 1 :])
            break
        exponent += combinable_exponent(code)
        if 0x78 <= code <= 0x7B:
            offset_exp = code - 0x78 - 3
        elif 0x20 <= code <= 0x27:
            unit = f"{unit}/{_PER_UNIT[code - 0x20]}"
        elif 0x2C <= code <= 0x35:
            unit = f"{unit}/{_PER_QUANTITY[code - 0x2C]}"
        elif 0x36 <= code <= 0x38:
            unit = f"{unit}*{_TIMES[code - 0x36]}"
        elif 0x28 <= code <= 0x2B:
            unit = f"{unit}/pulse"
        elif code == 0x3B:
            quantity += "_forward"  # accumulation only if positive contributions
        elif code == 0x3C:
            quantity += "_backward"  # accumulation of abs value only if negative contributions
        elif code in (0x41, 0x49):
            kind, unit, exponent = "count", "", 0
        elif 0x50 <= code <= 0x67:  # duration of limit exceed / of D: last 2 bits = s/min/h/d
            kind, unit, exponent, factor = "duration", "s", 0, DURATION_FACTORS[code & 0x03]
        elif code == 0x39 or 0x42 <= code <= 0x47 or 0x4A <= code <= 0x4F or 0x68 <= code <= 0x6F:
            if code == 0x39 or code in _DATE_OF:
                kind, unit, exponent = "datetime", "", 0
    offset: int | float = 0
    if offset_exp is not None and kind == "number":
        # "10^(nn-3) x unit of VIF": the VIF's own resolution (exponent before the factors)
        offset = _exact(offset_exp + info.exponent)
    mul, div = _scale_of(exponent)
    return VibPlan(quantity, unit, kind, exponent, mul, div, offset, factor, tuple(out))


#: Date(/time) of limit exceed (42..47, 4A..4F) and of D (6A, 6B, 6E, 6F): EN 13757-3 Table 15,
#: wmbusmeters DateTimeExceeds*/DateTimeOfDE*; 68, 69, 6C, 6D are values, not dates.
_DATE_OF = frozenset([*range(0x42, 0x48), *range(0x4A, 0x50), 0x6A, 0x6B, 0x6E, 0x6F])

_PLANS: dict[bytes, VibPlan] = {}


def plan_of(vib: bytes) -> VibPlan:
    """Cached :func:`make_plan` of the VIB bytes ``VIF VIFE...`` (plain-text unit removed)."""
    plan = _PLANS.get(vib)
    if plan is None:
        plan = make_plan(vib[0], tuple(vib[1:]))
        if len(_PLANS) < 4096:  # bounded: junk input must not grow it without limit
            _PLANS[vib] = plan
    return plan
