"""The one error family of the wired M-Bus codec.

Every problem found while parsing or building frames, records, telegrams or addresses is raised
as a subclass of :class:`MBusError`, carrying the byte ``offset`` in the input (when there is
one) and a human ``reason``; ``str(err)`` is ``"offset 12: <reason>"``. No ``IndexError``,
``ValueError`` or ``struct.error`` ever leaks out of the codec (house rule: one clear typed
error that says what and where).
"""

from __future__ import annotations

from simulator.core.errors import PositionedError


class MBusError(PositionedError):
    """Base of every codec error.

    Attributes
    ----------
    offset:
        Byte offset in the input where the problem is (0 = first byte of the frame), or
        ``None`` when the problem is not tied to a position (e.g. a bad argument).
    reason:
        What is wrong, without the offset.
    """


class FrameError(MBusError):
    """Link-layer error (EN 13757-2, PROTOCOL.md §2): start/stop byte, L-field, checksum, length."""


class RecordError(MBusError):
    """Application-layer data record error (EN 13757-3, PROTOCOL.md §4.4-4.5): DIF/DIFE/VIF/VIFE/data."""


class AddressError(MBusError):
    """Bad secondary address, selection mask or manufacturer code (PROTOCOL.md §3, §4.2)."""


#: CI 70 application error codes (PROTOCOL.md §4.1; libmbus ``mbus-protocol.h`` l.453-462).
APPLICATION_ERRORS: dict[int, str] = {
    0: "unspecified error",
    1: "unimplemented CI-field",
    2: "buffer too long, truncated",
    3: "too many records",
    4: "premature end of record",
    5: "more than 10 DIFE",
    6: "more than 10 VIFE",
    7: "reserved",
    8: "application busy",
    9: "too many readouts (for slaves with limited readouts per time)",
}


class ApplicationError(MBusError):
    """A CI 70 application error telegram sent by a slave (EN 13757-3; PROTOCOL.md §4.1).

    Attributes
    ----------
    code:
        The error code byte (0..255); 0 when the slave sent CI 70 without a code byte.
    meaning:
        The text for ``code`` from :data:`APPLICATION_ERRORS` (``"reserved (0xNN)"`` otherwise).
    """

    def __init__(self, code: int, offset: int | None = None, *, missing: bool = False) -> None:
        self.code = code
        self.meaning = APPLICATION_ERRORS.get(code, f"reserved (0x{code:02X})")
        if missing:
            self.meaning = "unspecified error (no error code byte)"
        self.missing = missing
        super().__init__(f"application error {code}: {self.meaning}", offset)

    def __reduce__(self):
        return (_rebuild_application_error, (self.code, self.offset, self.missing))


def _rebuild_application_error(code: int, offset: int | None, missing: bool) -> ApplicationError:
    return ApplicationError(code, offset, missing=missing)
