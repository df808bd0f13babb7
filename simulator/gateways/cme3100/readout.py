"""One stored meter readout of the CMe3100 value database (seed 004 §6.14.4, CME3100.md §4).

A :class:`Readout` is what the push-report code reads: the meter, the local time it was read
(CME3100.md Gaps #5: unrounded), the readout status and the raw telegram(s) as received. It is
plain data: the value database, the Value Period accounting (:mod:`.value_period`) and the
report templates (:mod:`.reports`) all share it, none of them owns it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from simulator.mbus.errors import MBusError
from simulator.mbus.frames import START_LONG, LongFrame, parse_body, parse_frame
from simulator.mbus.telegram import Telegram


class ReadoutError(ValueError):
    """A readout that cannot be stored or reported; says which meter and what is wrong."""


def user_data(telegram: bytes) -> bytes:
    """The telegram from its C-field up to the last user-data byte (no ``68 L L 68``, no CS,
    no stop byte): what the x001 ``mbus-raw`` column carries (Elvaco FTP/HTTP template
    reference, CME3100.md §5.3). ``telegram`` is a long frame ``68 L L 68 .. CS 16`` or
    already the bare ``C A CI data`` body. Raises :class:`ReadoutError` for anything else."""
    buf = bytes(telegram)
    try:
        frame = parse_frame(buf) if buf[:1] == bytes([START_LONG]) else parse_body(buf)
    except MBusError as exc:
        raise ReadoutError(f"not an M-Bus long frame: {exc}") from None
    if not isinstance(frame, LongFrame):
        raise ReadoutError(f"{type(frame).__name__} carries no user data")
    return bytes([frame.c, frame.a, frame.ci]) + frame.data


class ReadoutStatus(StrEnum):
    """Outcome of one readout of one meter (compares equal to its text: ``"ok"``)."""

    OK = "ok"
    FAILED = "failed"
    NOT_DECRYPTABLE = "not-decryptable"


@dataclass(frozen=True, slots=True)  # slots: a year's value database is millions of rows
class Readout:
    """One readout of one meter.

    ``meter``: the device identification as reports print it (the 8-digit secondary address
    ID, ``"05047168"``); ``read_at``: local wall time of the read (naive ``datetime``);
    ``telegrams``: the RSP_UD frames in the order read (multi-telegram readouts have several),
    each a long frame or a bare ``C A CI data`` body; empty when the readout failed;
    ``status``: ``"ok"`` (:class:`ReadoutStatus`) or why the readout failed;
    ``position``/``primary_address``: from the meter list (None if unknown); ``at``: world
    time of the read (s, the database's order); ``status_byte``: the status byte of the first
    RSP_UD (None without one); ``message``: the readings text (``Readout successfully``).

    A readout is a *value* (something a push report carries) only when it has telegrams.
    Two readouts are the same value when ``key`` (meter, read time) is equal.
    """

    meter: str
    read_at: datetime
    telegrams: tuple[bytes, ...] = ()
    status: str = ReadoutStatus.OK
    position: int | None = None
    primary_address: int | None = None
    at: float = 0.0
    status_byte: int | None = None
    message: str = ""
    #: the telegrams decoded, one per frame in ``telegrams``, when the reader already did it
    #: (:func:`~simulator.mbus.telegram.decode_telegram` of the same bytes; reports use them
    #: instead of decoding again); a cache, not part of the value: the value database keeps
    #: it on each meter's newest row only
    decoded: tuple[Telegram, ...] = field(default=(), compare=False, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.meter, str) or not self.meter or ";" in self.meter:
            raise ReadoutError(f"meter {self.meter!r}: must be a non-empty text without ';'")
        if not isinstance(self.read_at, datetime):
            raise ReadoutError(f"meter {self.meter}: read_at {self.read_at!r} is not a datetime")
        if self.read_at.tzinfo is not None:
            raise ReadoutError(f"meter {self.meter}: read_at must be local (naive) time")
        object.__setattr__(self, "telegrams", tuple(bytes(t) for t in self.telegrams))

    @property
    def key(self) -> tuple[str, datetime]:
        return (self.meter, self.read_at)

    @property
    def is_value(self) -> bool:
        """True when the readout delivered telegrams (a failed readout carries no values)."""
        return bool(self.telegrams)

    @property
    def telegram_count(self) -> int:
        return len(self.telegrams)
