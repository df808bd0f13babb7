"""Compact frames (TPL CI 79): records sent without their DIF/VIF, named by a format signature.

A meter that sends compact frames also sends, now and then, the full frame (CI 78, 72 or 7A)
with the same records. Compact frame application data (EN 13757-3 Annex, OMS Vol.2; the
layout wmbusmeters ``--analyze`` prints)::

    79 | format signature (2, LE) | full-frame data CRC (2, LE) | data bytes of the records

* **format** = the DIF, DIFE, VIF, [plain-text unit], VIFE bytes of every record of the full
  frame, in order (idle fillers 2F and the 0F/1F tail excluded);
* **format signature** = CRC-16/EN-13757 of the format;
* **data CRC** = CRC-16/EN-13757 of the full frame's record part (format and data interleaved,
  as the full frame carries it).

A receiver remembers each format it learns from a full frame (:class:`FormatStore`, keyed by
signature as wmbusmeters does) and expands a later compact frame back into the full record
part, which the data CRC then checks. Published pair: wmbusmeters ``tests/test_analyze.sh``
(Kamstrup multical21, signature A8ED).

Errors: :class:`UnknownFormatError` (no full frame with that signature seen yet) and
:class:`CompactFrameError` (too short, data do not fit the format, data CRC mismatch), both
:class:`~simulator.wmbus.frame.RecordsError` with the byte offset.
"""

from __future__ import annotations

from simulator.wmbus.crc import crc16_en13757
from simulator.wmbus.frame import RecordsError

CI_COMPACT = 0x79
_LVAR = 0x0D  # DIF data field of a variable-length record: its length byte is data


class CompactFrameError(RecordsError):
    """A compact frame that cannot be expanded (too short, wrong length, data CRC mismatch)."""


class UnknownFormatError(CompactFrameError):
    """A compact frame whose format signature no full frame has defined yet."""


def _data_length(dif: int, lvar: int | None) -> int:
    from simulator.mbus import datatypes as dt

    df = dif & 0x0F
    if df == _LVAR:
        return dt.lvar_length(lvar or 0)
    return dt.DATA_LENGTHS[df] or 0


def record_format(records: list) -> bytes:
    """The format of a record list: each record's bytes without fillers, LVAR byte and data
    (``DataRecord`` of :mod:`simulator.mbus.records`)."""
    out = bytearray()
    for rec in records:
        whole = rec.to_bytes()[rec.fillers :]
        tail = len(rec.data) + (rec.lvar is not None)
        out += whole[: len(whole) - tail]
    return bytes(out)


def format_signature(fmt: bytes) -> int:
    """CRC-16/EN-13757 of a format (the 2 bytes after CI 79, little-endian on air)."""
    return crc16_en13757(fmt)


def _split_format(fmt: bytes) -> list[tuple[bytes, int]]:
    """``fmt`` cut into per-record headers: ``(header bytes, DIF)``."""
    out = []
    pos = 0
    while pos < len(fmt):
        start = pos
        dif = fmt[pos]
        pos += 1
        while fmt[pos - 1] & 0x80 and pos < len(fmt):  # DIFEs
            pos += 1
        vif = fmt[pos]
        pos += 1
        if vif & 0x7F == 0x7C:  # plain-text unit: length + characters
            pos += 1 + fmt[pos]
        ext = vif & 0x80
        while ext:
            ext = fmt[pos] & 0x80
            pos += 1
        out.append((bytes(fmt[start:pos]), dif))
    return out


def expand(fmt: bytes, data: bytes, offset: int = 0) -> bytes:
    """The full record part: each header of ``fmt`` followed by its data from ``data``.

    ``offset`` is where ``data`` starts in the frame (for errors). Raises
    :class:`CompactFrameError` if ``data`` is shorter or longer than the format needs.
    """
    out = bytearray()
    pos = 0
    for header, dif in _split_format(fmt):
        lvar = None
        if dif & 0x0F == _LVAR:
            if pos >= len(data):
                raise CompactFrameError("compact data end before an LVAR byte", offset + pos)
            lvar = data[pos]
            pos += 1
        try:
            n = _data_length(dif, lvar)
        except Exception as exc:  # noqa: BLE001 - the wired codec's error, re-typed here
            raise CompactFrameError(f"compact data: {exc}", offset + pos) from None
        if pos + n > len(data):
            raise CompactFrameError(
                f"compact data end: record {header.hex().upper()} needs {n} bytes, "
                f"{len(data) - pos} left",
                offset + pos,
            )
        out += header + (b"" if lvar is None else bytes([lvar])) + data[pos : pos + n]
        pos += n
    if pos != len(data):
        raise CompactFrameError(
            f"compact data has {len(data) - pos} bytes more than its format needs", offset + pos
        )
    return bytes(out)


def compact_apl(records: list, full_apl: bytes) -> bytes:
    """What a meter sends after CI 79 for ``records`` (whose full record part is
    ``full_apl``): signature, data CRC, the data bytes."""
    fmt = record_format(records)
    data = b"".join((b"" if r.lvar is None else bytes([r.lvar])) + r.data for r in records)
    return (
        format_signature(fmt).to_bytes(2, "little")
        + crc16_en13757(full_apl).to_bytes(2, "little")
        + data
    )


class FormatStore:
    """Formats learned from full frames, by signature (a receiver's memory, as wmbusmeters
    keeps it). ``learn`` returns the signature; ``expand`` rebuilds a compact frame's full
    record part."""

    def __init__(self) -> None:
        self._formats: dict[int, bytes] = {}

    def __len__(self) -> int:
        return len(self._formats)

    def __contains__(self, signature: int) -> bool:
        return signature in self._formats

    def learn(self, records: list) -> int | None:
        """Remember the format of a full frame's records (``None`` for no records)."""
        if not records:
            return None
        fmt = record_format(records)
        sig = format_signature(fmt)
        self._formats[sig] = fmt
        return sig

    def expand(self, compact: bytes, offset: int = 0) -> tuple[int, bytes]:
        """``compact`` = the bytes after CI 79; returns ``(signature, full record part)``.

        ``offset`` is where ``compact`` starts in the frame. Raises
        :class:`UnknownFormatError` or :class:`CompactFrameError`.
        """
        if len(compact) < 4:
            raise CompactFrameError(
                f"compact frame header needs 4 bytes (signature, data CRC), got {len(compact)}",
                offset,
            )
        sig = int.from_bytes(compact[0:2], "little")
        crc = int.from_bytes(compact[2:4], "little")
        fmt = self._formats.get(sig)
        if fmt is None:
            raise UnknownFormatError(
                f"compact frame format signature {sig:04X} unknown: "
                "no full frame with this format received yet",
                offset,
            )
        full = expand(fmt, compact[4:], offset + 4)
        got = crc16_en13757(full)
        if got != crc:
            raise CompactFrameError(
                f"compact frame data CRC {crc:04X} != {got:04X} of the expanded records",
                offset + 2,
            )
        return sig, full
