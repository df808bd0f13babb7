"""3GPP NAS timer encodings used by PSM and eDRX (TS 24.008), and NB-S1 eDRX / PTW values.

* T3412 extended ("PSM timer", LwM2M /10/0/4) is a **GPRS Timer 3** (TS 24.008 §10.5.7.4a,
  Table 10.5.163a): bits 8-6 give the unit, bits 5-1 the value 0..31.
* T3324 ("Active timer", LwM2M /10/0/5) is a **GPRS Timer 2** (§10.5.7.3, Table 10.5.163).
* eDRX for NB-S1 mode (§10.5.5.32, octet 3; LwM2M /10/0/9): the low nibble selects the cycle
  (10.24 s multipliers, unused codes read as 20.48 s), the high nibble the paging time window
  PTW = (n + 1) x 2.56 s.

Sources: RADIO-NBIOT.md §3.1-3.2 (nrf ``modules/psm.c`` lookup tables
``{600, 3600, 36000, 2, 30, 60, 1152000, 0}`` and ``{2, 60, 360, 60, 60, 60, 60, 0}``, Mbed OS
``AT_CellularNetwork.cpp``; nrf ``modules/edrx.c``). Note the deci-hour is 360 s, not 600 s.
Bit strings are written as AT+CPSMS does (``"00100001"``, most significant bit first).
"""

from __future__ import annotations

#: GPRS Timer 3 unit (s) per value of bits 8-6; ``None`` = deactivated (TS 24.008 Table 10.5.163a).
GPRS_TIMER3_UNITS: tuple[int | None, ...] = (600, 3600, 36000, 2, 30, 60, 1152000, None)
#: GPRS Timer 2 unit (s) per value of bits 8-6; codes 3..6 are read as 1 min (Table 10.5.163).
GPRS_TIMER2_UNITS: tuple[int | None, ...] = (2, 60, 360, 60, 60, 60, 60, None)
#: Units an encoder may choose for GPRS Timer 2 (the "other" codes only exist for decoding).
_TIMER2_ENCODABLE = (0, 1, 2)

#: Largest T3412 extended: 31 x 320 h = 35,712,000 s (413.3 days).
T3412_EXT_MAX_S = 31 * 1152000
#: Largest T3324: 31 x 6 min = 11,160 s (186 min).
T3324_MAX_S = 31 * 360

#: NB-S1 eDRX cycle length (s) per 4-bit code (nrf ``edrx_lookup_nbiot`` x 10.24 s).
_NBS1_EDRX_MULT = (2, 2, 2, 4, 2, 8, 2, 2, 2, 16, 32, 64, 128, 256, 512, 1024)
NBS1_EDRX_CYCLES_S: tuple[float, ...] = (
    20.48,
    40.96,
    81.92,
    163.84,
    327.68,
    655.36,
    1310.72,
    2621.44,
    5242.88,
    10485.76,
)
#: Codes that select each distinct NB-S1 cycle (code 2 and the unused codes read as 20.48 s).
_NBS1_EDRX_CODE = {
    20.48: 2,
    40.96: 3,
    81.92: 5,
    163.84: 9,
    327.68: 10,
    655.36: 11,
    1310.72: 12,
    2621.44: 13,
    5242.88: 14,
    10485.76: 15,
}
PTW_STEP_NBS1_S = 2.56


class TimerCodingError(ValueError):
    """A timer value or bit string that the TS 24.008 coding cannot express or read."""


def _parse_octet(bits: str | int, what: str) -> int:
    if isinstance(bits, int):
        if not 0 <= bits <= 0xFF:
            raise TimerCodingError(f"{what}: octet {bits} is outside 0..255")
        return bits
    text = bits.strip()
    if len(text) != 8 or set(text) - {"0", "1"}:
        raise TimerCodingError(f"{what}: expected 8 bits like '00100001', got {bits!r}")
    return int(text, 2)


def _decode(octet: int, units: tuple[int | None, ...]) -> int | None:
    unit = units[octet >> 5]
    return None if unit is None else unit * (octet & 0x1F)


def _encode(
    seconds: int, unit_codes: tuple[int, ...], units: tuple[int | None, ...], what: str
) -> str:
    if seconds < 0:
        raise TimerCodingError(f"{what}: {seconds} s is negative")
    # Smallest unit that expresses the value exactly: the finest resolution wins.
    for code in sorted(unit_codes, key=lambda c: units[c] or 0):
        unit = units[code]
        if unit and seconds % unit == 0 and seconds // unit <= 31:
            return f"{(code << 5) | (seconds // unit):08b}"
    raise TimerCodingError(
        f"{what}: {seconds} s is not an exact multiple of a unit "
        f"with a value <= 31 (units: {sorted(u for u in units if u)} s)"
    )


def decode_t3412_ext(bits: str | int) -> int | None:
    """T3412 extended (GPRS Timer 3) octet -> seconds; ``None`` when deactivated (unit 111)."""
    return _decode(_parse_octet(bits, "T3412 extended"), GPRS_TIMER3_UNITS)


def encode_t3412_ext(seconds: int) -> str:
    """Seconds -> 8-bit GPRS Timer 3 string; raises :class:`TimerCodingError` if inexpressible."""
    if seconds > T3412_EXT_MAX_S:
        raise TimerCodingError(
            f"T3412 extended: {seconds} s exceeds the maximum {T3412_EXT_MAX_S} s (31 x 320 h)"
        )
    return _encode(seconds, (0, 1, 2, 3, 4, 5, 6), GPRS_TIMER3_UNITS, "T3412 extended")


def decode_t3324(bits: str | int) -> int | None:
    """T3324 (GPRS Timer 2) octet -> seconds; ``None`` when deactivated (unit 111)."""
    return _decode(_parse_octet(bits, "T3324"), GPRS_TIMER2_UNITS)


def encode_t3324(seconds: int) -> str:
    """Seconds -> 8-bit GPRS Timer 2 string; raises :class:`TimerCodingError` if inexpressible."""
    if seconds > T3324_MAX_S:
        raise TimerCodingError(
            f"T3324: {seconds} s exceeds the maximum {T3324_MAX_S} s (31 x 6 min)"
        )
    return _encode(seconds, _TIMER2_ENCODABLE, GPRS_TIMER2_UNITS, "T3324")


def decode_edrx_nbs1(octet: str | int) -> tuple[float, float]:
    """NB-S1 eDRX octet (PTW high nibble, cycle low nibble) -> (cycle s, paging window s)."""
    value = _parse_octet(octet, "eDRX NB-S1")
    cycle = _NBS1_EDRX_MULT[value & 0x0F] * 10.24
    ptw = ((value >> 4) + 1) * PTW_STEP_NBS1_S
    return round(cycle, 2), round(ptw, 2)


def encode_edrx_nbs1(cycle_s: float, ptw_s: float = 2.56) -> str:
    """(cycle s, paging window s) -> NB-S1 eDRX octet string; exact table values only."""
    code = _NBS1_EDRX_CODE.get(round(cycle_s, 2))
    if code is None:
        raise TimerCodingError(f"eDRX NB-S1: cycle {cycle_s} s is not one of {NBS1_EDRX_CYCLES_S}")
    n = round(ptw_s / PTW_STEP_NBS1_S) - 1
    if not 0 <= n <= 15 or abs((n + 1) * PTW_STEP_NBS1_S - ptw_s) > 1e-6:
        raise TimerCodingError(
            f"eDRX NB-S1: paging time window {ptw_s} s is not a multiple of 2.56 s in 2.56..40.96 s"
        )
    return f"{(n << 4) | code:08b}"
