"""EN 13757-2 link layer: the four wired M-Bus frame formats (PROTOCOL.md §2).

======================  =====================================  ===================
Frame                   Bytes                                  Class
======================  =====================================  ===================
single character (ACK)  ``E5``                                 :class:`SingleChar`
short frame             ``10 C A CS 16``                       :class:`ShortFrame`
control frame           ``68 03 03 68 C A CI CS 16``           :class:`ControlFrame`
long frame              ``68 L L 68 C A CI data.. CS 16``      :class:`LongFrame`
======================  =====================================  ===================

L counts C + A + CI + user data (so 3..255, at most 252 data bytes) and is sent twice; the
checksum is the byte sum mod 256 of C, A, CI and the user data (C + A for a short frame).
Every FCV/FCB variant of a C-field is accepted (PROTOCOL.md §2.2: 43/53/63/73, 4B/5B/6B/7B...).

Errors are :class:`~simulator.mbus.errors.FrameError` with the byte offset of the problem.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from simulator.mbus.errors import FrameError, MBusError

# --- C-field values (PROTOCOL.md §2.2) ---------------------------------------------------------
ACK = 0xE5
SND_NKE = 0x40
SND_UD = 0x53
REQ_UD1 = 0x5A
REQ_UD2 = 0x5B
RSP_UD = 0x08
#: Frame count bit (calling direction, bit 5) and frame count valid bit (bit 4).
FCB = 0x20
FCV = 0x10
#: Reply direction: access demand (bit 5) and data flow control (bit 4).
ACD = 0x20
DFC = 0x10
#: Bit 6 of the C-field: 1 = master to slave (calling direction), 0 = slave to master.
PRM = 0x40

# --- A-field values (PROTOCOL.md §2.4) ---------------------------------------------------------
ADDR_UNCONFIGURED = 0
ADDR_NETWORK = 253
ADDR_BROADCAST_REPLY = 254
ADDR_BROADCAST = 255

START_SHORT = 0x10
START_LONG = 0x68
STOP = 0x16
MAX_DATA = 252

FUNCTION_NAMES: dict[int, str] = {
    SND_NKE: "SND_NKE",
    SND_UD: "SND_UD",
    REQ_UD1: "REQ_UD1",
    REQ_UD2: "REQ_UD2",
    RSP_UD: "RSP_UD",
}


def checksum(data: bytes) -> int:
    """Arithmetic byte sum mod 256, carry discarded (PROTOCOL.md §2.1)."""
    return sum(data) & 0xFF


def _check_byte(name: str, value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 255:
        raise FrameError(f"{name} must be an int 0..255, got {value!r}")


class _LinkFields:
    """C-field helpers shared by the frames that carry a C and an A field."""

    c: int
    a: int

    @property
    def calling(self) -> bool:
        """True for master-to-slave frames (C-field bit 6 set)."""
        return bool(self.c & PRM)

    @property
    def fcb(self) -> bool:
        """Frame count bit (calling direction only; False for replies)."""
        return self.calling and bool(self.c & FCB)

    @property
    def fcv(self) -> bool:
        """Frame count valid bit (calling direction only; False for replies)."""
        return self.calling and bool(self.c & FCV)

    @property
    def acd(self) -> bool:
        """Access demand bit of a reply (class-1 data waiting)."""
        return not self.calling and bool(self.c & ACD)

    @property
    def dfc(self) -> bool:
        """Data flow control bit of a reply (slave cannot accept more data)."""
        return not self.calling and bool(self.c & DFC)

    @property
    def function(self) -> int:
        """The C-field normalised to its function constant.

        FCB/ACD are cleared; in the calling direction FCV is set for every function but
        SND_NKE (so 43/53/63/73 -> ``SND_UD`` 0x53, 4B/5B/6B/7B -> ``REQ_UD2`` 0x5B, 40/50 ->
        ``SND_NKE`` 0x40); in the reply direction DFC is cleared too (08/18/28/38 -> ``RSP_UD``).
        """
        base = self.c & 0xCF
        if self.calling and base & 0x0F:
            base |= FCV
        return base

    @property
    def name(self) -> str:
        """Standard name of :attr:`function` (``"REQ_UD2"``...), or ``"C=xx"`` if unknown."""
        return FUNCTION_NAMES.get(self.function, f"C={self.c:02X}")


@dataclass(frozen=True)
class SingleChar:
    """The single character acknowledgement ``E5``."""

    value: int = ACK

    def __post_init__(self) -> None:
        if self.value != ACK:
            raise FrameError(f"single character must be E5, got {self.value!r}")

    def to_bytes(self) -> bytes:
        return bytes([self.value])


@dataclass(frozen=True)
class ShortFrame(_LinkFields):
    """``10 C A CS 16``: SND_NKE, REQ_UD1, REQ_UD2 (C and A are 0..255)."""

    c: int
    a: int

    def __post_init__(self) -> None:
        _check_byte("C-field", self.c)
        _check_byte("A-field", self.a)

    def to_bytes(self) -> bytes:
        return bytes([START_SHORT, self.c, self.a, (self.c + self.a) & 0xFF, STOP])


@dataclass(frozen=True)
class ControlFrame(_LinkFields):
    """``68 03 03 68 C A CI CS 16``: a long frame without user data (e.g. baud switch CI B8..BF)."""

    c: int
    a: int
    ci: int

    def __post_init__(self) -> None:
        _check_byte("C-field", self.c)
        _check_byte("A-field", self.a)
        _check_byte("CI-field", self.ci)

    @property
    def data(self) -> bytes:
        return b""

    def to_bytes(self) -> bytes:
        body = bytes([self.c, self.a, self.ci])
        return bytes([START_LONG, 3, 3, START_LONG]) + body + bytes([checksum(body), STOP])


@dataclass(frozen=True)
class LongFrame(_LinkFields):
    """``68 L L 68 C A CI data CS 16`` with 0..252 bytes of user data.

    An empty ``data`` serialises as a control frame (and parses back as :class:`ControlFrame`).
    Raises :class:`FrameError` if a field is out of range or ``data`` is longer than 252 bytes.
    """

    c: int
    a: int
    ci: int
    data: bytes = b""

    def __post_init__(self) -> None:
        _check_byte("C-field", self.c)
        _check_byte("A-field", self.a)
        _check_byte("CI-field", self.ci)
        if not isinstance(self.data, bytes | bytearray | memoryview):
            raise FrameError(f"user data must be bytes, got {type(self.data).__name__}")
        object.__setattr__(self, "data", bytes(self.data))
        if len(self.data) > MAX_DATA:
            raise FrameError(f"user data is {len(self.data)} bytes, at most {MAX_DATA} fit")

    def to_bytes(self) -> bytes:
        body = bytes([self.c, self.a, self.ci]) + self.data
        n = len(body)
        return bytes([START_LONG, n, n, START_LONG]) + body + bytes([checksum(body), STOP])


Frame = Union[SingleChar, ShortFrame, ControlFrame, LongFrame]  # noqa: UP007 (runtime alias)


def _as_bytes(buf: bytes | bytearray | memoryview) -> bytes:
    if isinstance(buf, bytes):
        return buf
    if isinstance(buf, bytearray | memoryview):
        return bytes(buf)
    raise FrameError(f"expected bytes, got {type(buf).__name__}")


def frame_length(buf: bytes) -> int | None:
    """Total length in bytes of the frame that starts at ``buf[0]``.

    Returns ``None`` while more bytes are needed to know it (empty input, or a long frame
    before both L-fields arrived). For framing a byte stream (serial port, bridge).

    Raises :class:`FrameError` if ``buf[0]`` is not ``E5``/``10``/``68`` (offset 0), the two
    L-fields differ (offset 2), L < 3 (offset 1) or the second start byte is not ``68``
    (offset 3, checked once it arrived).
    """
    buf = _as_bytes(buf)
    if not buf:
        return None
    start = buf[0]
    if start == ACK:
        return 1
    if start == START_SHORT:
        return 5
    if start != START_LONG:
        raise FrameError(f"unknown start byte {start:02X} (expected E5, 10 or 68)", 0)
    if len(buf) < 3:
        return None
    if buf[1] != buf[2]:
        raise FrameError(f"L-fields differ: {buf[1]:02X} != {buf[2]:02X}", 2)
    if buf[1] < 3:
        raise FrameError(f"L-field {buf[1]} is below 3 (C, A and CI are mandatory)", 1)
    if len(buf) >= 4 and buf[3] != START_LONG:
        raise FrameError(f"second start byte is {buf[3]:02X}, expected 68", 3)
    return buf[1] + 6


def parse_frame(buf: bytes) -> Frame:
    """Parse exactly one link-layer frame.

    Returns a :class:`SingleChar`, :class:`ShortFrame`, :class:`ControlFrame` (L = 3) or
    :class:`LongFrame`. Raises :class:`FrameError` with the offset of the first bad byte:
    empty or truncated input (offset = input length), unknown start byte (0), L-field mismatch
    (2), second start byte (3), checksum (its own offset: 3 for a short frame, 4 + L for a long
    one), stop byte (last), trailing bytes after the frame (frame length).
    """
    buf = _as_bytes(buf)
    if not buf:
        raise FrameError("empty input: no frame", 0)
    total = frame_length(buf)
    if total is None or len(buf) < total:
        need = f"{total} bytes" if total is not None else "at least 4 bytes"
        raise FrameError(f"truncated frame: need {need}, got {len(buf)}", len(buf))
    if len(buf) > total:
        raise FrameError(f"{len(buf) - total} trailing byte(s) after a {total}-byte frame", total)
    start = buf[0]
    if start == ACK:
        return SingleChar()
    if start == START_SHORT:
        c, a, cs, stop = buf[1], buf[2], buf[3], buf[4]
        if cs != (c + a) & 0xFF:
            raise FrameError(f"checksum {cs:02X} != computed {(c + a) & 0xFF:02X}", 3)
        if stop != STOP:
            raise FrameError(f"stop byte is {stop:02X}, expected 16", 4)
        return ShortFrame(c, a)
    length = buf[1]
    body = buf[4 : 4 + length]
    cs = buf[4 + length]
    if cs != checksum(body):
        raise FrameError(f"checksum {cs:02X} != computed {checksum(body):02X}", 4 + length)
    if buf[5 + length] != STOP:
        raise FrameError(f"stop byte is {buf[5 + length]:02X}, expected 16", 5 + length)
    c, a, ci = body[0], body[1], body[2]
    if length == 3:
        return ControlFrame(c, a, ci)
    return _long_frame(c, a, ci, body[3:])


def _long_frame(c: int, a: int, ci: int, data: bytes) -> LongFrame:
    """A LongFrame from parsed bytes, which are valid by construction (no re-validation)."""
    frame = object.__new__(LongFrame)
    setattr_ = object.__setattr__
    setattr_(frame, "c", c)
    setattr_(frame, "a", a)
    setattr_(frame, "ci", ci)
    setattr_(frame, "data", data)
    return frame


def split_frames(buf: bytes) -> list[Frame]:
    """Parse a buffer holding several frames back to back (e.g. ``E5`` followed by a RSP_UD).

    Raises :class:`FrameError` (offsets relative to ``buf``) on the first bad or incomplete frame.
    """
    buf = _as_bytes(buf)
    frames: list[Frame] = []
    pos = 0
    while pos < len(buf):
        try:
            total = frame_length(buf[pos:])
            if total is None or pos + total > len(buf):
                raise FrameError("truncated frame at the end of the input", len(buf) - pos)
            frames.append(parse_frame(buf[pos : pos + total]))
        except FrameError as exc:
            raise FrameError(exc.reason, pos + (exc.offset or 0)) from None
        pos += total
    return frames


def parse_body(buf: bytes) -> LongFrame:
    """Parse the *body* of a long frame, ``C A CI data`` without ``68 L L 68``, CS and stop.

    That is how the Elvaco Stream mode reports carry a telegram (seed 003 §9.3.2/§9.4).
    Raises :class:`FrameError` if fewer than 3 bytes or more than 255 are given.
    """
    buf = _as_bytes(buf)
    if len(buf) < 3:
        raise FrameError(f"a frame body needs C, A and CI, got {len(buf)} byte(s)", len(buf))
    if len(buf) > MAX_DATA + 3:
        raise FrameError(f"frame body of {len(buf)} bytes exceeds 255", MAX_DATA + 3)
    return LongFrame(buf[0], buf[1], buf[2], buf[3:])


def _describe_select(frame: LongFrame) -> str:
    from simulator.mbus.address import SecondaryAddress, SecondaryMask

    if len(frame.data) != 8:
        return f"select ({len(frame.data)} data bytes, expected 8)"
    try:
        addr = SecondaryAddress.from_bytes(frame.data)
        return f"select {addr.id:08d} {addr.manufacturer} v{addr.version} m{addr.medium:02X}"
    except MBusError:
        pass
    try:
        return f"select mask {SecondaryMask(frame.data)}"
    except MBusError:
        return f"select {frame.data.hex().upper()}"


def _describe_rsp(frame: LongFrame) -> tuple[str, bool | None]:
    """Text and more-follow flag (DIF 1F; None if undecodable) of a variable-data RSP_UD."""
    from simulator.mbus.errors import ApplicationError
    from simulator.mbus.telegram import decode_and_hold

    try:
        t = decode_and_hold(frame)  # the master decodes this reply next: decode it once
    except ApplicationError as exc:
        return f"application error {exc.code} ({exc.meaning})", None
    except MBusError as exc:
        return f"CI={frame.ci:02X} undecodable: {exc}", None
    parts = []
    if t.header.address is not None:
        addr = t.header.address
        parts.append(f"id={addr.id:08d} {addr.manufacturer}")
    n = len(t.records)
    parts.append(f"{n} record{'s' if n != 1 else ''}")
    if t.more_follow:
        parts.append("more follow")
    return " ".join(parts), t.more_follow


@dataclass(frozen=True, slots=True)
class FrameFacts:
    """What a ``frame`` trace event says about its bytes (docs/trace.md), from one parse.

    ``summary`` is :func:`describe`'s text (``"garbled"`` if the bytes are not one frame,
    ``error`` then holds the parse error). The others are None where the frame has no such
    field: ``function`` (C-field function name, ``"ACK"`` for E5), ``address`` (A-field),
    ``ci`` (CI-field, 2 uppercase hex digits), ``fcb`` (0/1, requests whose C-field has FCV
    set, EN 13757-2 §5.4), ``more_follow`` (RSP_UD variable data: DIF 1F seen, EN 13757-3).
    """

    summary: str
    function: str | None = None
    address: int | None = None
    ci: str | None = None
    fcb: int | None = None
    more_follow: bool | None = None
    error: str | None = None

    def trace_fields(self) -> dict[str, object]:
        """The structured fields that apply, for a ``frame`` event (no ``summary``)."""
        out: dict[str, object] = {}
        if self.function is not None:
            out["function"] = self.function
        if self.address is not None:
            out["address"] = self.address
        if self.ci is not None:
            out["ci"] = self.ci
        if self.fcb is not None:
            out["fcb"] = self.fcb
        if self.more_follow is not None:
            out["more_follow"] = self.more_follow
        return out


def frame_facts(data: bytes) -> FrameFacts:
    """:class:`FrameFacts` of raw bytes; never raises (bad bytes: ``summary="garbled"``)."""
    try:
        frame = parse_frame(data)
    except MBusError as exc:
        return FrameFacts("garbled", error=str(exc))
    return facts_of(frame)


def facts_of(frame: Frame) -> FrameFacts:
    """:class:`FrameFacts` of a parsed frame; never raises on odd content."""
    if isinstance(frame, SingleChar):
        return FrameFacts(f"{frame.value:02X}", function="ACK")
    head = f"{frame.name} a={frame.a}"
    fcb = int(frame.fcb) if frame.fcv else None
    if isinstance(frame, ShortFrame):
        text = head + (f" FCB={fcb}" if fcb is not None else "")
        return FrameFacts(text, frame.name, frame.a, fcb=fcb)
    if frame.fcb:  # long frames: only the toggled state is worth the space
        head += " FCB=1"
    head += f" CI={frame.ci:02X}"
    ci = f"{frame.ci:02X}"
    more: bool | None = None
    if isinstance(frame, ControlFrame) or not frame.data:
        text = head
    else:
        try:
            if frame.ci in (0x52, 0x56) and frame.calling:
                text = f"{head} {_describe_select(frame)}"
            elif not frame.calling and frame.ci in (0x72, 0x76, 0x7A, 0x78, 0x70):
                rsp, more = _describe_rsp(frame)
                text = f"{head} {rsp}"
            else:
                text = f"{head} {len(frame.data)} data bytes"
        except Exception as exc:  # describe() is for logs: it must never take the caller down
            text = f"{head} ({type(exc).__name__})"
    return FrameFacts(text, frame.name, frame.a, ci, fcb, more)


def describe(frame: Frame) -> str:
    """One-line summary of a frame, for traces and logs; never raises on odd content.

    Examples: ``"E5"``, ``"SND_NKE a=1"``, ``"REQ_UD2 a=253 FCB=1"``,
    ``"SND_UD a=253 CI=52 select 12345678 ELV v1 m04"``, ``"RSP_UD a=1 id=12345678 ELV 3 records"``.
    For programs, :func:`facts_of` gives the same as fields.
    """
    return facts_of(frame).summary
