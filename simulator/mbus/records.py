"""EN 13757-3 variable data records: DIF/DIFE + VIF/VIFE + data (PROTOCOL.md §4.4-4.5).

A record is decoded into a :class:`DataRecord` that keeps the coding bytes as sent (so it
re-encodes byte for byte) and adds the meaning: function, storage number, tariff, subunit,
quantity, base unit and the value scaled into that unit (12345 with VIF 06 -> 12_345_000 Wh).

Rules implemented (errors are :class:`RecordError` with the frame offset of the bad byte):

* DIF bit 7 = DIFE follows; at most 10 DIFE ("more than 10 DIFE" on the 11th, libmbus
  error frame ``too_many_dife``); VIF bit 7 = VIFE follows, at most 10 VIFE.
* storage = DIF bit 6 + 4 bits per DIFE, tariff = 2 bits per DIFE, subunit = 1 bit per DIFE.
* Special DIFs: ``0F`` manufacturer data to the end, ``1F`` the same + more records follow in
  the next telegram, ``2F`` idle filler (skipped). ``7F`` (global readout request, only in
  master-to-slave data) is skipped like a filler. ``3F``..``6F`` and any other DIF with data
  field F are reserved: error.
* VIF ``FD``/``FB``: the first VIFE indexes the 1st/2nd extension table; ``7C``/``FC``: a
  length byte + ASCII unit (last character first) follows the VIF *before* the VIFEs (as
  libmbus and Elvaco frames do); ``7F``/``FF``: manufacturer specific, its VIFEs are not
  interpreted. Combinable VIFEs are applied (:class:`~simulator.mbus.vif.VibPlan`): 70..77
  and 7D scale the value, 78..7B add an offset, "per ..."/"multiplied by ..."/pulse VIFEs
  change the unit, 3B/3C name the forward/backward register, number of exceeds is a count,
  durations are seconds and date(/time)-of VIFEs give dates; every VIFE is also described in
  ``vife_text``.
* Mode 2 (CI 76/55, ``msb_first``): each data field is sent most significant byte first.
* Values that cannot be decoded although the bytes are there (BCD with A-F nibbles, an
  invalid date, IV bit set) give ``value=None`` and say why in ``invalid``; the raw bytes stay
  in ``data`` so nothing is lost.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime, time

from simulator.mbus import datatypes as dt
from simulator.mbus.errors import MBusError, RecordError
from simulator.mbus.vif import _PLANS, VibPlan, VifInfo, make_plan, plan_of

FUNCTIONS = ("instantaneous", "maximum", "minimum", "error")
MAX_DIFE = 10
MAX_VIFE = 10

DIF_MANUFACTURER = 0x0F
DIF_MORE_FOLLOW = 0x1F
DIF_FILLER = 0x2F
DIF_GLOBAL_READOUT = 0x7F

Value = int | float | str | datetime | date | time | bytes | None


@dataclass(slots=True)
class DataRecord:
    """One data record (DIB + VIB + data).

    Attributes
    ----------
    dif, dife, vif, vife:
        The coding bytes as sent (extension bits included).
    data:
        The raw data bytes (for LVAR without the LVAR byte, see ``lvar``).
    function:
        ``"instantaneous"`` | ``"maximum"`` | ``"minimum"`` | ``"error"`` (DIF bits 5-4).
    storage, tariff, subunit:
        Storage number, tariff and subunit (device) from DIF bit 6 and the DIFEs.
    quantity:
        snake_case name of the VIF (``"energy"``, ``"volume"``, ``"date_time"``,
        ``"fabrication_number"``, ``"error_flags"``, ``"manufacturer_specific"`` ...).
    unit:
        Base unit of the VIF family (``"Wh"``, ``"m3"``, ``"°C"``, ``"s"`` ... or ``""``).
    value:
        The value in ``unit`` (int, float, str, date, datetime, bytes or None).
    plain_unit:
        Unit text of a plain-text VIF 7C/FC, else None.
    lvar:
        The LVAR byte of a variable-length record (data field D), else None.
    vife_text:
        Descriptions of the combinable VIFEs (e.g. ``("per hour",)``).
    invalid:
        Why ``value`` is None although data bytes are present, else None.
    fillers:
        Number of ``2F`` idle fillers sent just before this record (kept so that a decoded
        telegram re-encodes byte for byte).
    """

    dif: int
    dife: tuple[int, ...]
    vif: int
    vife: tuple[int, ...]
    data: bytes
    function: str
    storage: int
    tariff: int
    subunit: int
    quantity: str
    unit: str
    value: Value
    plain_unit: str | None = None
    lvar: int | None = None
    vife_text: tuple[str, ...] = field(default=())
    invalid: str | None = None
    fillers: int = 0

    @property
    def data_field(self) -> int:
        """DIF bits 3..0 (coding and length of the data)."""
        return self.dif & 0x0F

    def to_bytes(self) -> bytes:
        """The record as sent: DIF, DIFEs, VIF, [plain-text unit], VIFEs, [LVAR], data."""
        if not self.fillers and self.lvar is None and self.vif & 0x7F != 0x7C:  # most records
            return bytes((self.dif, *self.dife, self.vif, *self.vife)) + self.data
        out = bytearray([DIF_FILLER] * self.fillers)
        out += bytes([self.dif, *self.dife, self.vif])
        if self.vif & 0x7F == 0x7C:
            unit = (self.plain_unit or "").encode("latin-1", "replace")
            out += bytes([len(unit)]) + unit[::-1]
        out += bytes(self.vife)
        if self.lvar is not None:
            out.append(self.lvar)
        out += self.data
        return bytes(out)

    @classmethod
    def from_value(
        cls,
        vif: int | bytes,
        value: Value,
        *,
        data_field: int = 0x04,
        vife: tuple[int, ...] = (),
        function: str = "instantaneous",
        storage: int = 0,
        tariff: int = 0,
        subunit: int = 0,
        plain_unit: str | None = None,
        msb_first: bool = False,
    ) -> DataRecord:
        """Build a record from a value in the VIF family's unit.

        ``vif`` is the VIF byte (``0x06``) or VIF + VIFE bytes (``b"\\xfd\\x17"``); extension
        bits are set as needed. ``data_field`` is the DIF low nibble: 0x1-0x4, 0x6, 0x7
        integers; 0x5 real32; 0x9-0xC, 0xE BCD; 0xD LVAR (str -> text, bytes -> as is, int ->
        BCD); 0x0/0x8 no data (value None). VIF 6C takes a ``date`` (type G, data field 2);
        6D a ``datetime`` (type F with data field 4, type I with 6). Example:
        ``DataRecord.from_value(0x06, 12_345_000)`` -> DIF 04 VIF 06 data 39 30 00 00.

        Raises :class:`RecordError` if the value does not fit the data field or the VIF
        resolution, or a coding field is out of range. The result is what
        :func:`decode_records` makes of the built bytes.
        """
        dib, vif_byte, vifes, plan = _coding(
            vif, vife, data_field, function, storage, tariff, subunit
        )
        plain = b""
        if vif_byte & 0x7F == 0x7C:
            unit = (plain_unit or "").encode("latin-1", "replace")
            if len(unit) > 255:
                raise RecordError("plain-text unit longer than 255 characters")
            plain = bytes([len(unit)]) + unit[::-1]
        payload = _encode_value(plan, data_field, value)
        if msb_first:  # mode 2: the data (not the LVAR byte) most significant byte first
            lead = 1 if data_field == dt.LVAR_FIELD else 0
            payload = payload[:lead] + payload[lead:][::-1]
        wire = dib + bytes([vif_byte]) + plain + bytes(vifes) + payload
        records, _, _ = decode_records(wire, msb_first=msb_first)
        if len(records) != 1:
            raise RecordError(f"built bytes {wire.hex()} do not form exactly one record")
        return records[0]


def _coding(
    vif: int | bytes,
    vife: tuple[int, ...],
    data_field: int,
    function: str,
    storage: int,
    tariff: int,
    subunit: int,
) -> tuple[bytes, int, list[int], VibPlan]:
    """DIB, VIF byte, VIFE bytes and plan of a record coding (``RecordError`` if invalid)."""
    raw_vif = bytes([vif]) if isinstance(vif, int) else bytes(vif)
    if not raw_vif or any(not 0 <= b <= 255 for b in (*raw_vif, *vife)):
        raise RecordError(f"bad VIF/VIFE bytes {vif!r} {vife!r}")
    codes = [*raw_vif[1:], *vife]
    vif_byte = raw_vif[0] | (0x80 if codes else 0)
    if vif_byte in (0xFD, 0xFB) and not codes:
        raise RecordError(f"VIF {vif_byte:02X} needs a VIFE naming the extension-table entry")
    vifes = [c | 0x80 for c in codes[:-1]] + [c & 0x7F for c in codes[-1:]]
    dib = _build_dib(data_field, function, storage, tariff, subunit)
    return dib, vif_byte, vifes, plan_of(bytes([vif_byte, *vifes]))


class RecordEncoder:
    """One record coding with its DIB and VIB built once: ``wire(value)`` gives the bytes
    ``DataRecord.from_value(vif, value, ...).to_bytes()`` gives, without building (and
    re-decoding) a :class:`DataRecord` (a simulated meter's hot path, issue 15).

    Only fixed-length codings (data field 0x0-0xC, 0xE, no plain-text unit VIF 7C): their
    record structure does not depend on the value. Raises :class:`RecordError` for an invalid
    or unsupported coding here and, from ``wire``, for a value that does not fit (the same
    errors as ``from_value``).
    """

    __slots__ = ("_fast", "_hi", "_lo", "_pow", "_size", "data_field", "plan", "prefix")

    def __init__(
        self,
        vif: int | bytes,
        *,
        data_field: int = 0x04,
        vife: tuple[int, ...] = (),
        function: str = "instantaneous",
        storage: int = 0,
        tariff: int = 0,
        subunit: int = 0,
    ) -> None:
        dib, vif_byte, vifes, plan = _coding(
            vif, vife, data_field, function, storage, tariff, subunit
        )
        if data_field == dt.LVAR_FIELD or vif_byte & 0x7F == 0x7C:
            raise RecordError("variable-length coding (LVAR or plain-text unit): use from_value")
        self.prefix = dib + bytes([vif_byte, *vifes])
        self.plan = plan
        self.data_field = data_field
        # A plain scaled integer register (no offset, duration or flag bits): the common case
        # gets _unscale + encode_int inline; anything else, and every error, takes the
        # general path.
        size = dt.INT_FIELDS.get(data_field, 0)
        self._fast = bool(size) and not plan.offset and plan.kind not in _SPECIAL_KINDS
        self._size, self._pow = size, 10 ** abs(plan.exponent)
        half = 1 << (8 * size - 1) if size else 0
        self._lo, self._hi = -half, half - 1
        if self._fast and plan.exponent < 0:
            self._pow = -self._pow  # marks "divide by 10^-exponent" for a float value

    def wire(self, value: Value) -> bytes:
        """The record's bytes for ``value`` (in the VIF family's unit, as ``from_value``)."""
        if self._fast:
            p, kind = self._pow, type(value)
            if kind is int and p > 0:  # exponent >= 0: an exact multiple of the resolution
                raw, rem = divmod(value, p)  # type: ignore[call-overload]
                if not rem and self._lo <= raw <= self._hi:
                    return self.prefix + raw.to_bytes(self._size, "little", signed=True)
            elif kind is float and p < 0 and math.isfinite(value):  # type: ignore[arg-type]
                raw = round(value * -p)  # type: ignore[operator]
                if (
                    math.isclose(raw / -p, value, rel_tol=1e-9, abs_tol=1e-12)  # type: ignore[arg-type]
                    and self._lo <= raw <= self._hi
                ):
                    return self.prefix + raw.to_bytes(self._size, "little", signed=True)
        return self.prefix + _encode_value(self.plan, self.data_field, value)


#: plan kinds whose value coding is not a plain scaled integer (see _unscale, _encode_value)
_SPECIAL_KINDS = frozenset(("duration", "binary", "date", "datetime", "raw"))


def _build_dib(data_field: int, function: str, storage: int, tariff: int, subunit: int) -> bytes:
    if not isinstance(data_field, int) or not 0 <= data_field <= 0xE:
        raise RecordError(f"data field must be 0x0..0xE, got {data_field!r}")
    if function not in FUNCTIONS:
        raise RecordError(f"function must be one of {FUNCTIONS}, got {function!r}")
    for name, v in (("storage", storage), ("tariff", tariff), ("subunit", subunit)):
        if not isinstance(v, int) or v < 0:
            raise RecordError(f"{name} must be a non-negative int, got {v!r}")
    dif = ((storage & 1) << 6) | (FUNCTIONS.index(function) << 4) | data_field
    storage >>= 1
    difes: list[int] = []
    while storage or tariff or subunit:
        difes.append((storage & 0x0F) | ((tariff & 0x03) << 4) | ((subunit & 0x01) << 6))
        storage, tariff, subunit = storage >> 4, tariff >> 2, subunit >> 1
    if len(difes) > MAX_DIFE:
        raise RecordError("storage/tariff/subunit need more than 10 DIFE")
    if difes:
        dif |= 0x80
        difes = [d | 0x80 for d in difes[:-1]] + difes[-1:]
    return bytes([dif, *difes])


def _resolve(vif: int, vife: tuple[int, ...]) -> tuple[VifInfo, int, tuple[str, ...]]:
    """VIF/VIFEs -> (table entry after the combinable VIFEs, total decimal exponent, texts)."""
    plan = make_plan(vif, vife)
    info = VifInfo(plan.quantity, plan.unit, plan.exponent, plan.kind, plan.factor)
    return info, plan.exponent, plan.texts


def _scale(raw: int | float, exponent: int) -> int | float:
    if exponent >= 0:
        return raw * 10**exponent
    return raw / 10**-exponent  # int / int is correctly rounded: 12345 / 1000 == 12.345


def _unscale(plan: VibPlan, value: object, as_real: bool) -> int | float:
    """A value in the plan's unit -> the raw number to put on the wire."""
    if not dt.is_number(value):
        raise RecordError(f"{plan.quantity} needs a finite number, got {value!r}")
    assert isinstance(value, int | float)
    if plan.offset:
        value = value - plan.offset
    exponent = plan.exponent
    if plan.kind == "duration":
        exponent, divisor = 0, plan.factor
    else:
        divisor = 1
    if as_real:
        return (
            float(value) / divisor / 10.0**exponent
            if exponent >= 0
            else (float(value) / divisor * 10**-exponent)
        )
    if isinstance(value, int) and exponent >= 0:
        raw, rem = divmod(value, divisor * 10**exponent)
        if rem:
            raise RecordError(
                f"{value} {plan.unit} is not a multiple of the VIF resolution "
                f"{divisor * 10**exponent} {plan.unit}"
            )
        return raw
    scaled = value * 10**-exponent / divisor if exponent < 0 else value / (divisor * 10**exponent)
    raw = round(scaled)
    if not math.isclose(_scale(raw, exponent) * divisor, value, rel_tol=1e-9, abs_tol=1e-12):
        raise RecordError(
            f"{value} {plan.unit} is not representable at the VIF resolution "
            f"1e{exponent} {plan.unit}"
        )
    return raw


def _encode_value(plan: VibPlan, df: int, value: Value) -> bytes:
    """The data bytes (mode 1, LSB first) of ``value`` for data field ``df``."""
    if df in (0x0, 0x8):
        if value is not None:
            raise RecordError(f"data field {df:X} carries no data, value must be None")
        return b""
    if plan.kind in ("date", "datetime") and isinstance(value, date | time):
        return _encode_date(df, value)
    if df == dt.LVAR_FIELD:
        if isinstance(value, str):
            return dt.encode_text(value)
        if isinstance(value, bytes | bytearray):
            return dt.encode_lvar_bytes(bytes(value))
        if isinstance(value, int) and not isinstance(value, bool):
            size = max(1, (len(str(abs(value))) + 1) // 2)
            if size > 9:
                raise RecordError(f"{value} needs more than 18 BCD digits")
            lead = 0xD0 if value < 0 else 0xC0
            return bytes([lead + size]) + dt.encode_bcd(abs(value), size)
        raise RecordError(f"LVAR data needs str, bytes or int, got {type(value).__name__}")
    if plan.kind == "raw" and isinstance(value, bytes) and len(value) == dt.DATA_LENGTHS[df]:
        return value
    if isinstance(value, str | bytes | date | time):
        raise RecordError(f"data field {df:X} cannot carry a {type(value).__name__}")
    if df == dt.REAL_FIELD:
        return dt.encode_real(_unscale(plan, value, as_real=True))
    raw = _unscale(plan, value, as_real=False)
    if df in dt.INT_FIELDS:
        size = dt.INT_FIELDS[df]
        if plan.kind == "binary" and isinstance(raw, int) and raw >= 1 << (8 * size - 1):
            raw -= 1 << (8 * size)  # flags are unsigned; store the same bit pattern
        return dt.encode_int(raw, size)
    if df in dt.BCD_FIELDS:
        return dt.encode_bcd(raw, dt.BCD_FIELDS[df])
    raise RecordError(f"data field {df:X} cannot be encoded")


def _encode_date(df: int, value: date | time) -> bytes:
    if isinstance(value, time):
        if df == 0x3:
            return dt.encode_time_j(value)
        raise RecordError(f"a time of day needs data field 3 (type J), got {df:X}")
    if isinstance(value, datetime):
        if df == 0x4:
            return dt.encode_datetime_f(value)
        if df == 0x6:
            return dt.encode_datetime_i(value)
        raise RecordError(f"a date/time needs data field 4 (type F) or 6 (type I), got {df:X}")
    if df == 0x2:
        return dt.encode_date_g(value)
    raise RecordError(f"a date needs data field 2 (type G), got {df:X}")


#: Date/time type by data length: G (2 bytes), J (3), F (4), I (6) (EN 13757-3 Annex A).
_DATE_DECODERS = {
    2: dt.decode_date_g,
    3: dt.decode_time_j,
    4: dt.decode_datetime_f,
    6: dt.decode_datetime_i,
}


def _decode_value(
    plan: VibPlan, df: int, raw: bytes, lvar: int | None, offset: int
) -> tuple[Value, str | None]:
    """-> (value, reason it is None); ``raw`` in mode 1 order (LSB first)."""
    if df in (0x0, 0x8):
        return None, None
    kind = plan.kind
    if df == dt.LVAR_FIELD:
        text = kind not in ("container", "manufacturer", "raw")
        try:
            return dt.decode_lvar(lvar or 0, raw, text=text, offset=offset), None
        except RecordError as exc:
            return None, exc.reason
    if kind in ("date", "datetime") and df in dt.INT_FIELDS and len(raw) in _DATE_DECODERS:
        decoded = _DATE_DECODERS[len(raw)](raw)
        return decoded, (None if decoded is not None else "invalid date/time")
    if kind == "raw":
        return raw, None
    number: int | float
    if df == dt.REAL_FIELD:
        number = dt.decode_real(raw)
        if not math.isfinite(number):
            return number, None
    elif df in dt.BCD_FIELDS:
        try:
            number = dt.decode_bcd(raw, offset)
        except RecordError as exc:
            return None, f"not BCD: {exc.reason}"
    elif kind == "binary":
        number = int.from_bytes(raw, "little")
    else:
        number = int.from_bytes(raw, "little", signed=True)
    if kind == "duration":
        return number * plan.factor, None
    if kind in ("number", "plain_text"):
        value = number * plan.mul if plan.div == 1 else number / plan.div
        return (value + plan.offset if plan.offset else value), None
    return number, None


@dataclass
class RecordBlock:
    """Everything :func:`decode_block` found in the record part of a telegram."""

    records: list[DataRecord]
    manufacturer_data: bytes = b""
    more_follow: bool = False
    end_marker: bool = False  # a 0F/1F DIF was present (0F may come with no data)
    trailing_fillers: int = 0  # 2F fillers after the last record


def decode_records(
    data: bytes, offset: int = 0, *, msb_first: bool = False
) -> tuple[list[DataRecord], bytes, bool]:
    """Decode the data records of a telegram.

    ``data`` starts at the first DIF; ``offset`` is its position in the frame and is added to
    error offsets; ``msb_first``: mode 2 (CI 76/55), every data field is sent most significant
    byte first. Returns ``(records, manufacturer_specific_data, more_records_follow)``:
    records stop at DIF 0F/1F; what follows is returned as manufacturer data; 1F sets
    ``more_records_follow``. Raises :class:`RecordError` on a truncated record, more than 10
    DIFE/VIFE, a reserved special DIF or a reserved LVAR.
    """
    block = decode_block(data, offset, msb_first=msb_first)
    return block.records, block.manufacturer_data, block.more_follow


# Per DIF byte: (data length or None for LVAR, function name, storage bit) for ordinary DIFs;
# None for the special DIFs (data field F), which the loop handles itself.
_DIF_TABLE: tuple[tuple[int | None, str, int] | None, ...] = tuple(
    None
    if dif & 0x0F == 0x0F
    else (dt.DATA_LENGTHS[dif & 0x0F], FUNCTIONS[(dif >> 4) & 0x03], (dif >> 6) & 1)
    for dif in range(256)
)


def decode_block(data: bytes, offset: int = 0, *, msb_first: bool = False) -> RecordBlock:
    """:func:`decode_records` keeping fillers and the end marker (for byte-exact re-encoding).

    The hot path: one table look-up per DIF, one cached :class:`VibPlan` per distinct VIB,
    and one :class:`DataRecord` per record (nothing else is built per record).
    """
    if not isinstance(data, bytes):
        try:
            data = bytes(data)
        except (TypeError, ValueError):
            raise RecordError(f"records must be bytes, got {type(data).__name__}") from None
    n = len(data)
    pos = 0
    records: list[DataRecord] = []
    append = records.append
    fillers = 0
    dif_table = _DIF_TABLE
    plans = _PLANS
    while pos < n:
        dif = data[pos]
        entry = dif_table[dif]
        if entry is None:
            if dif == DIF_FILLER or dif == DIF_GLOBAL_READOUT:
                fillers += dif == DIF_FILLER
                pos += 1
                continue
            if dif == DIF_MANUFACTURER or dif == DIF_MORE_FOLLOW:
                return RecordBlock(records, data[pos + 1 :], dif == DIF_MORE_FOLLOW, True, fillers)
            raise RecordError(f"reserved special DIF {dif:02X}", offset + pos)
        length, function, storage = entry
        pos += 1
        tariff = subunit = 0
        if dif & 0x80:
            start = pos
            while True:
                if pos >= n:
                    raise RecordError("premature end of record: DIFE missing", offset + pos)
                if pos - start == MAX_DIFE:
                    raise RecordError("more than 10 DIFE", offset + pos)
                d = data[pos]
                i = pos - start
                storage |= (d & 0x0F) << (1 + 4 * i)
                tariff |= ((d >> 4) & 0x03) << (2 * i)
                subunit |= ((d >> 6) & 0x01) << i
                pos += 1
                if not d & 0x80:
                    break
            difes = tuple(data[start:pos])
        else:
            difes = ()
        if pos >= n:
            raise RecordError("premature end of record: VIF missing", offset + pos)
        vif = data[pos]
        pos += 1
        plain_unit = None
        if vif & 0x7F == 0x7C:
            if pos >= n:
                raise RecordError(
                    "premature end of record: plain-text VIF length missing", offset + pos
                )
            size = data[pos]
            if pos + 1 + size > n:
                raise RecordError(
                    f"premature end of plain-text VIF: {size} characters "
                    f"announced, {n - pos - 1} bytes left",
                    offset + pos,
                )
            plain_unit = data[pos + 1 : pos + 1 + size][::-1].decode("latin-1")
            pos += 1 + size
        if vif & 0x80:
            start = pos
            while True:
                if pos >= n:
                    raise RecordError("premature end of record: VIFE missing", offset + pos)
                if pos - start == MAX_VIFE:
                    raise RecordError("more than 10 VIFE", offset + pos)
                pos += 1
                if not data[pos - 1] & 0x80:
                    break
            vifes = tuple(data[start:pos])
            vib = bytes((vif, *vifes))
        else:
            vifes = ()
            vib = _SINGLE[vif]
        plan = plans.get(vib)
        if plan is None:
            plan = plan_of(vib)
        lvar = None
        if length is None:
            if pos >= n:
                raise RecordError("premature end of record: LVAR missing", offset + pos)
            lvar = data[pos]
            length = dt.lvar_length(lvar, offset + pos)
            pos += 1
        end = pos + length
        if end > n:
            raise RecordError(
                f"premature end of data: {length} bytes needed, {n - pos} left", offset + pos
            )
        raw = data[pos:end]
        df = dif & 0x0F
        # the common cases inline: a scaled integer or plain BCD number in mode 1
        if plan.kind == "number" and not msb_first and df in _FAST_FIELDS:
            if df in _INT_FIELDS:
                number = int.from_bytes(raw, "little", signed=True)
            else:
                digits = raw[::-1].hex()
                number = int(digits) if digits.isdigit() else None
        else:
            number = None
        if number is not None:
            value: Value = number * plan.mul if plan.div == 1 else number / plan.div
            if plan.offset:
                value += plan.offset  # type: ignore[operator]
            invalid = None
        else:
            value, invalid = _decode_value(
                plan, df, raw[::-1] if msb_first else raw, lvar, offset + pos
            )
        pos = end
        append(
            DataRecord(
                dif,
                difes,
                vif,
                vifes,
                raw,
                function,
                storage,
                tariff,
                subunit,
                plan.quantity,
                plan.unit,
                value,
                plain_unit,
                lvar,
                plan.texts,
                invalid,
                fillers,
            )
        )
        fillers = 0
    return RecordBlock(records, b"", False, False, fillers)


_SINGLE = tuple(bytes([b]) for b in range(256))
_INT_FIELDS = frozenset(dt.INT_FIELDS)
_FAST_FIELDS = frozenset((*dt.INT_FIELDS, *dt.BCD_FIELDS))


def encode_records(
    records: list[DataRecord],
    *,
    more_follow: bool = False,
    manufacturer_data: bytes = b"",
    end_marker: bool = False,
    trailing_fillers: int = 0,
) -> bytes:
    """Concatenate records; then ``1F`` (more follow) or ``0F`` (manufacturer data) + the data.

    ``end_marker`` sends ``0F`` even without manufacturer data; ``trailing_fillers`` adds
    that many ``2F`` after the last record (both only to reproduce received telegrams).

    Raises :class:`RecordError` if an element is not a :class:`DataRecord`.
    """
    parts = []
    for i, rec in enumerate(records):
        if type(rec) is not DataRecord and not isinstance(rec, DataRecord):
            raise RecordError(f"record {i} is a {type(rec).__name__}, not a DataRecord")
        try:
            parts.append(rec.to_bytes())
        except MBusError:
            raise
        except (ValueError, TypeError) as exc:
            raise RecordError(f"record {i} cannot be encoded: {exc}") from None
    out = bytearray(b"".join(parts))
    out += bytes([DIF_FILLER] * trailing_fillers)
    if more_follow:
        out.append(DIF_MORE_FOLLOW)
    elif manufacturer_data or end_marker:
        out.append(DIF_MANUFACTURER)
    out += manufacturer_data
    return bytes(out)
