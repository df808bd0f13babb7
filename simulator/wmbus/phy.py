"""Wireless M-Bus physical coding and time on air (EN 13757-4; PROTOCOL.md §5.1).

Chip streams are strings of ``"0"``/``"1"`` (one character per chip, first chip on air first),
which keeps a transmitter/receiver rig readable; :func:`pack_chips` turns them into bytes.
On-air bit order is MSB first (rtl-wmbus [R1]).

=====  ==========  ==============================  ================================  =========
Mode   chip rate   coding (chips per byte)         preamble + sync (chips)           source
=====  ==========  ==============================  ================================  =========
S1     32.768 k/s  Manchester (16)                 279 x "01" + 18-chip ``0x7696``   V1 V2 R1
S2     32.768 k/s  Manchester (16)                 15 x "01" + 18-chip ``0x7696``    V1 V2
T1/T2  100 k/s     3-out-of-6 (12)                 19 x "01" + 10-chip ``0x03D``     V1 V2 R1
C1/C2  100 k/s     NRZ (8)                         16 x "01" + ``0x543D`` + ``0x54CD``  R1
                                                   (frame A) / ``0x543D`` (frame B)
=====  ==========  ==============================  ================================  =========

Manchester as rtl-wmbus codes it: data bit 1 -> chips ``01``, bit 0 -> ``10``. 3-of-6: each
nibble, high nibble first, becomes a 6-chip code word (table below, R1 ``mode_t_util.h``).
A postamble (trailer) of alternating chips ends S and T transmissions; its length is not in
the sources read (PROTOCOL.md §5.1), so the bench uses :data:`POSTAMBLE_CHIPS` (2, the
smallest even count) and lets callers pass another.
"""

from __future__ import annotations

from simulator.wmbus.frame import CodingError, FrameError

#: 3-of-6 code word (6 chips, MSB first) for each nibble 0..F (PROTOCOL.md §5.1 [R1]).
THREE_OF_SIX = (
    0x16,
    0x0D,
    0x0E,
    0x0B,
    0x1C,
    0x19,
    0x1A,
    0x13,
    0x2C,
    0x25,
    0x26,
    0x23,
    0x34,
    0x31,
    0x32,
    0x29,
)
_NIBBLE_OF_CODE = {code: nib for nib, code in enumerate(THREE_OF_SIX)}
_CODE_CHIPS = tuple(format(code, "06b") for code in THREE_OF_SIX)
_CHIPS_CODE = {chips: nib for nib, chips in enumerate(_CODE_CHIPS)}

CHIP_RATE = {
    "S1": 32_768,
    "S2": 32_768,
    "T1": 100_000,
    "T2": 100_000,
    "C1": 100_000,
    "C2": 100_000,
}  #: chips/s, meter -> other direction
PREAMBLE_PAIRS = {"S1": 279, "S2": 15, "T1": 19, "T2": 19, "C1": 16, "C2": 16}
SYNC_S = format(0x7696, "018b")  #: 18 chips 000111011010010110
SYNC_T = format(0x03D, "010b")  #: 10 chips 0000111101
SYNC_C = format(0x543D, "016b")
FRAME_WORD_C = {"A": format(0x54CD, "016b"), "B": format(0x543D, "016b")}
POSTAMBLE_CHIPS = 2
MODES = tuple(CHIP_RATE)


def _mode(mode: str) -> str:
    m = mode.upper() if isinstance(mode, str) else mode
    if m not in CHIP_RATE:
        raise FrameError(f"unknown wM-Bus mode {mode!r}; expected one of {', '.join(MODES)}")
    return m


# --- codings ------------------------------------------------------------------------------


def encode_3of6(data: bytes) -> str:
    """3-out-of-6 chips for ``data``: 12 chips per byte, high nibble first."""
    return "".join(_CODE_CHIPS[b >> 4] + _CODE_CHIPS[b & 0xF] for b in bytes(data))


def decode_3of6(chips: str) -> bytes:
    """Inverse of :func:`encode_3of6`. Raises :class:`CodingError` (offset = chip index) on a
    code word not in the table or a chip count that is not a multiple of 12."""
    if len(chips) % 12:
        raise CodingError(f"3-of-6 needs a multiple of 12 chips, got {len(chips)}", len(chips))
    out = bytearray()
    for i in range(0, len(chips), 12):
        hi = _CHIPS_CODE.get(chips[i : i + 6])
        lo = _CHIPS_CODE.get(chips[i + 6 : i + 12])
        if hi is None:
            raise CodingError(f"invalid 3-of-6 code word {chips[i : i + 6]!r}", i)
        if lo is None:
            raise CodingError(f"invalid 3-of-6 code word {chips[i + 6 : i + 12]!r}", i + 6)
        out.append(hi << 4 | lo)
    return bytes(out)


def nrz_encode(data: bytes) -> str:
    """NRZ (mode C): one chip per bit, MSB first."""
    return "".join(format(b, "08b") for b in bytes(data))


def nrz_decode(chips: str) -> bytes:
    """Inverse of :func:`nrz_encode`; :class:`CodingError` on a partial byte or a non-0/1 chip."""
    if len(chips) % 8:
        raise CodingError(f"NRZ needs a multiple of 8 chips, got {len(chips)}", len(chips))
    bad = next((i for i, c in enumerate(chips) if c not in "01"), None)
    if bad is not None:
        raise CodingError(f"chip {chips[bad]!r} is not 0 or 1", bad)
    return bytes(int(chips[i : i + 8], 2) for i in range(0, len(chips), 8))


def manchester_encode(data: bytes) -> str:
    """Manchester (mode S) as rtl-wmbus: bit 1 -> ``01``, bit 0 -> ``10``, MSB first."""
    return "".join("01" if bit == "1" else "10" for bit in nrz_encode(data))


def manchester_decode(chips: str) -> bytes:
    """Inverse of :func:`manchester_encode`; :class:`CodingError` at a ``00``/``11`` pair."""
    if len(chips) % 16:
        raise CodingError(f"Manchester needs a multiple of 16 chips, got {len(chips)}", len(chips))
    bits = []
    for i in range(0, len(chips), 2):
        pair = chips[i : i + 2]
        if pair == "01":
            bits.append("1")
        elif pair == "10":
            bits.append("0")
        else:
            raise CodingError(f"invalid Manchester chip pair {pair!r}", i)
    return nrz_decode("".join(bits))


def pack_chips(chips: str) -> bytes:
    """Chips -> bytes, MSB first, the last byte padded with 0 chips."""
    padded = chips + "0" * (-len(chips) % 8)
    return bytes(int(padded[i : i + 8], 2) for i in range(0, len(padded), 8))


# --- whole transmissions ------------------------------------------------------------------


def preamble(mode: str, fmt: str = "A") -> str:
    """Preamble + sync chips of ``mode`` (C modes include the frame-format word)."""
    m = _mode(mode)
    head = "01" * PREAMBLE_PAIRS[m]
    if m.startswith("S"):
        return head + SYNC_S
    if m.startswith("T"):
        return head + SYNC_T
    if fmt not in FRAME_WORD_C:
        raise FrameError(f"frame format must be 'A' or 'B', got {fmt!r}")
    return head + SYNC_C + FRAME_WORD_C[fmt]


def coded_chips(mode: str, n_bytes: int) -> int:
    """Chips that ``n_bytes`` of frame take in ``mode`` (3-of-6: 12, Manchester: 16, NRZ: 8)."""
    m = _mode(mode)
    per_byte = {"S": 16, "T": 12, "C": 8}[m[0]]
    return per_byte * n_bytes


def encode_transmission(
    mode: str, raw: bytes, fmt: str = "A", postamble_chips: int = POSTAMBLE_CHIPS
) -> str:
    """All chips a transmitter sends for the on-air frame ``raw`` (L to last CRC): preamble,
    sync, coded frame, postamble of alternating chips (S and T modes only)."""
    m = _mode(mode)
    coder = {"S": manchester_encode, "T": encode_3of6, "C": nrz_encode}[m[0]]
    tail = "" if m.startswith("C") else ("01" * postamble_chips)[:postamble_chips]
    return preamble(m, fmt) + coder(raw) + tail


def decode_transmission(
    mode: str, chips: str, fmt: str = "A", postamble_chips: int = POSTAMBLE_CHIPS
) -> bytes:
    """Inverse of :func:`encode_transmission` for a clean capture (a rig's loop-back check).

    Raises :class:`CodingError` if the preamble/sync differ (offset = first wrong chip) or the
    coded part is invalid.
    """
    m = _mode(mode)
    head = preamble(m, fmt)
    if not chips.startswith(head):
        bad = next(
            (i for i, (a, b) in enumerate(zip(chips, head, strict=False)) if a != b),
            min(len(chips), len(head)),
        )
        raise CodingError(f"preamble/sync of mode {m} not found", bad)
    body = chips[len(head) :]
    if not m.startswith("C") and postamble_chips:
        body = body[:-postamble_chips]
    decoder = {"S": manchester_decode, "T": decode_3of6, "C": nrz_decode}[m[0]]
    try:
        return decoder(body)
    except CodingError as exc:
        raise CodingError(exc.reason, len(head) + (exc.offset or 0)) from None


def time_on_air(
    mode: str, n_bytes_on_air: int, fmt: str = "A", postamble_chips: int = POSTAMBLE_CHIPS
) -> float:
    """Seconds a frame of ``n_bytes_on_air`` (L to last CRC) occupies the channel in ``mode``,
    preamble, sync and postamble included (PROTOCOL.md §5.1, RADIO-NBIOT.md §6.3).

    Example: a 55-byte T1 frame = 38 + 10 + 660 + 2 chips at 100 kchip/s = 7.10 ms.
    Raises :class:`FrameError` for an unknown mode or format, or a negative length.
    """
    m = _mode(mode)
    if not isinstance(n_bytes_on_air, int) or n_bytes_on_air < 0:
        raise FrameError(f"n_bytes_on_air must be an int >= 0, got {n_bytes_on_air!r}")
    tail = 0 if m.startswith("C") else postamble_chips
    chips = len(preamble(m, fmt)) + coded_chips(m, n_bytes_on_air) + tail
    return chips / CHIP_RATE[m]
