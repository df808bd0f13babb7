"""Value columns of the CMe3100 value reports (x101/x109/x115): one column per data record,
headed ``<desc>,<unit>,<function>,<tariff>,<subunit>,<storage>`` (the G1 capture of a real
3115 report, CME3100.md §5.3: ``energy,Wh,inst-value,0,0,0``), values with a decimal comma.

- ``desc``: the record's quantity in the capture's words where it shows them (``flow-temp``,
  ``return-temp``, ``diff-temp``, ``datetime``, ``fabrication-no``, ``on-time``), else the
  project's quantity name with ``-`` for ``_``; manufacturer-specific VIFs as
  ``manufacturer-specific-<vif>-<vife..>`` in lower-case hex (``manufacturer-specific-ff-07``);
  descriptions of combinable VIFEs are appended after a space.
- ``unit``: the record's base unit as the project's codec gives it (the value is scaled into
  it: an energy VIF 06 value is written in Wh), or the plain-text unit of VIF 7C.
- ``function``: ``inst-value``, ``max-value``, ``min-value``, ``err-value``.
- values: integers as digits; other numbers as the shortest decimal that reads back to the
  same float, with ``,`` (Localisation, 004 §6.36); dates and times ``YYYY-MM-DD hh:mm:ss``
  (a date at 00:00:00, as the capture writes it); bytes lower-case hex; text as sent with
  ``;`` and line breaks replaced by spaces; no value (an invalid record) as an empty field.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from operator import attrgetter

from simulator.mbus.records import DataRecord, Value

FUNCTION_NAMES = {
    "instantaneous": "inst-value",
    "maximum": "max-value",
    "minimum": "min-value",
    "error": "err-value",
}
#: project quantity name -> the G1 capture's description
DESCRIPTIONS = {
    "flow_temperature": "flow-temp",
    "return_temperature": "return-temp",
    "temperature_difference": "diff-temp",
    "date_time": "datetime",
    "fabrication_number": "fabrication-no",
}
DECIMAL = ","
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


def _clean(text: str) -> str:
    return text.replace(";", " ").replace(",", " ").replace("\r", " ").replace("\n", " ")


def description(r: DataRecord) -> str:
    """The ``desc`` part of a record's column (module doc)."""
    if r.quantity == "manufacturer_specific":
        codes = [r.vif, *r.vife]
        return "manufacturer-specific-" + "-".join(f"{c & 0xFF:02x}" for c in codes)
    desc = DESCRIPTIONS.get(r.quantity, r.quantity.replace("_", "-"))
    if r.vife_text:
        desc += " " + " ".join(t.replace(" ", "-") for t in r.vife_text)
    return _clean(desc)


def column(r: DataRecord) -> str:
    """``<desc>,<unit>,<function>,<tariff>,<subunit>,<storage>`` for record ``r``."""
    unit = r.plain_unit if r.plain_unit is not None else r.unit
    return (
        f"{description(r)},{_clean(unit)},{FUNCTION_NAMES[r.function]},"
        f"{r.tariff},{r.subunit},{r.storage}"
    )


def columns(records: Sequence[DataRecord]) -> tuple[str, ...]:
    """:func:`column` of each record, from a cache keyed by every record field the column is
    made of (a meter sends the same records every readout: each layout is worked out once)."""
    key = tuple(map(_column_fields, records))
    try:
        cols = _COLUMNS.get(key)
    except TypeError:  # a hand-built record with a list where a tuple belongs
        return tuple(column(r) for r in records)
    if cols is None:
        if len(_COLUMNS) >= _COLUMNS_MAX:  # bounded: a fuzz run meets many layouts
            _COLUMNS.clear()
        cols = _COLUMNS[key] = tuple(column(r) for r in records)
    return cols


#: every field :func:`column` reads (a record's value and data are not among them)
_column_fields = attrgetter(
    "quantity", "vif", "vife", "vife_text", "plain_unit", "unit", "function", "tariff", "subunit",
    "storage",
)  # fmt: skip
_COLUMNS: dict[tuple, tuple[str, ...]] = {}
_COLUMNS_MAX = 4096


def value_text(v: Value) -> str:
    """A record value as the report writes it (module doc)."""
    text = _TEXT_OF.get(type(v))  # the common exact types without the isinstance chain
    return text(v) if text is not None else _value_text(v)


def _float_text(v: float) -> str:
    s = repr(v)
    # repr without exponent, inf or nan is already the shortest plain decimal that reads
    # back to ``v``: Decimal(repr).__format__("f") gives the same digits
    if "e" in s or "n" in s:
        return _value_text(v)
    return s.replace(".", DECIMAL)


def time_text(t: datetime) -> str:
    """``t`` as :data:`TIME_FORMAT` writes it (``YYYY-MM-DD hh:mm:ss``, no fraction)."""
    if t.tzinfo is None and t.year >= 1000:  # isoformat pads a year < 1000, strftime does not
        return t.isoformat(" ", "seconds")
    return t.strftime(TIME_FORMAT)


def _date_text(d: date) -> str:
    return f"{d.isoformat()} 00:00:00" if d.year >= 1000 else d.strftime("%Y-%m-%d 00:00:00")


_TEXT_OF = {
    int: str,
    float: _float_text,
    bytes: bytes.hex,
    type(None): lambda v: "",
    datetime: time_text,
    date: _date_text,
}


def _value_text(v: Value) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return str(int(v))
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if v != v or v in (float("inf"), float("-inf")):
            return ""
        return format(Decimal(repr(v)), "f").replace(".", DECIMAL)
    if isinstance(v, datetime):
        return v.strftime(TIME_FORMAT)
    if isinstance(v, date):
        return v.strftime("%Y-%m-%d 00:00:00")
    if isinstance(v, bytes):
        return v.hex()
    return str(v).replace(";", " ").replace("\r", " ").replace("\n", " ")
