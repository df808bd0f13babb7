"""Cutting the byte stream a master writes into M-Bus frames (EN 13757-2 frame sync).

A serial port delivers bytes in chunks of arbitrary size with an arrival time each. The
:class:`Framer` turns them into :class:`Framed` items:

* ``"frame"``: exactly the bytes of one valid link-layer frame a master sends: ``10 C A CS
  16`` (5 bytes) or ``68 L L 68 C A CI .. CS 16`` (L + 6), both L-fields equal, checksum and
  stop byte right (:func:`simulator.mbus.frames.parse_frame`).
* ``"junk"``: everything else (line noise, a master's wake-up preamble, a frame cut short, a
  frame with a bad checksum or stop byte, an ``E5``: only slaves send the single character).
  Junk is reported (the bridge logs it), never raised and never put on the bus.

Frame sync (EN 13757-2 / EN 60870-5-1 FT1.2, PROTOCOL.md §2): the framer hunts for a start
byte, reads the length from the L-fields and checks the whole frame. A candidate that fails
is dropped one byte at a time and the hunt resumes at the next byte, so a valid frame right
after noise is found at once, wherever the noise left off. While a candidate is still
incomplete (noise that looked like ``68 L L 68`` announcing up to 261 bytes), a complete
valid frame that starts later in the held bytes wins: the candidate is junk. This is what
keeps noise from holding the next valid frame back: every junk byte costs nothing, since it
never reaches the bus. (The price: a master's long frame carrying a complete valid short
frame inside its data would be cut there; with checksum and stop byte to match that takes a
1 in 65536 coincidence per embedded ``10``.)

Timing: a telegram is sent without pauses, so a gap longer than ``gap`` seconds inside a
frame means the rest will not come; the held bytes become junk and the next byte starts
afresh. USB adapters deliver bytes in bursts (FTDI latency timer: 16 ms by default), so the
gap must be larger than that; :func:`default_gap` gives ``max(3 character times, 30 ms)``.

``mode="transparent"`` (the TCP service's "Transparent" packing mode, seed 002 §6.26)
skips the grammar: whatever arrived is one item once the line has been quiet ``gap`` s.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from simulator.mbus.errors import FrameError, MBusError
from simulator.mbus.frames import ACK, frame_length, parse_frame

CHAR_BITS = 11  # 8E1 on the wire (EN 13757-2); the same for every baud rate


def default_gap(baud: int) -> float:
    """Inter-byte gap (s) that ends a partial frame: max(3 character times, 30 ms)."""
    return max(3 * CHAR_BITS / baud, 0.030)


@dataclass(frozen=True)
class Framed:
    """A frame or a run of junk bytes, with the arrival time of each byte (s, caller's clock)."""

    kind: Literal["frame", "junk"]
    data: bytes
    times: tuple[float, ...]
    reason: str = ""

    @property
    def first(self) -> float:
        return self.times[0]

    @property
    def last(self) -> float:
        return self.times[-1]


class Framer:
    """Streaming framer; feed it ``(time, bytes)`` chunks, collect :class:`Framed` items.

    ``gap``: seconds of silence that end a partial frame (see :func:`default_gap`).
    ``mode``: ``"mbus"`` (frame grammar) or ``"transparent"`` (packing by silence only).
    """

    def __init__(self, gap: float, *, mode: Literal["mbus", "transparent"] = "mbus") -> None:
        if gap <= 0:
            raise ValueError(f"gap must be > 0 s (got {gap})")
        if mode not in ("mbus", "transparent"):
            raise ValueError(f"mode must be 'mbus' or 'transparent' (got {mode!r})")
        self.gap = gap
        self.mode = mode
        self._buf = bytearray()
        self._times: list[float] = []
        self._junk = bytearray()
        self._junk_times: list[float] = []
        self._junk_reason = ""

    @property
    def pending(self) -> int:
        """Bytes held (a partial frame, or not yet packed in transparent mode)."""
        return len(self._buf)

    def deadline(self) -> float | None:
        """Time at which :meth:`expire` will act on the held bytes, or ``None``."""
        return self._times[-1] + self.gap if self._times else None

    def feed(self, t: float, data: bytes) -> list[Framed]:
        """Add ``data`` that arrived at time ``t``; return the items it completed."""
        out: list[Framed] = []
        if not data:
            return out
        if self._times and t - self._times[-1] > self.gap:
            out.extend(self.expire(t))
        self._buf.extend(data)
        self._times.extend([t] * len(data))
        if self.mode == "mbus":
            out.extend(self._cut())
        return out

    def expire(self, now: float) -> list[Framed]:
        """Release held bytes once ``now`` is more than ``gap`` after the last one."""
        out: list[Framed] = []
        if not self._times or now - self._times[-1] <= self.gap:
            return out
        if self.mode == "transparent":
            out.append(Framed("frame", bytes(self._buf), tuple(self._times)))
        else:
            n = len(self._buf)
            self._add_junk(
                bytes(self._buf),
                self._times,
                f"incomplete frame: {n} byte(s) then silence > {self.gap * 1000:.0f} ms",
            )
            out.extend(self._flush_junk())
        self._buf.clear()
        self._times.clear()
        return out

    def reset(self) -> bytes:
        """Forget everything held (a session ended); returns the bytes thrown away."""
        held = bytes(self._junk) + bytes(self._buf)
        self._buf.clear()
        self._times.clear()
        self._junk.clear()
        self._junk_times.clear()
        self._junk_reason = ""
        return held

    def _cut(self) -> list[Framed]:
        out: list[Framed] = []
        while self._buf:
            verdict, n, reason = check_candidate(self._buf)
            if verdict == "frame":
                out.extend(self._flush_junk())
                out.append(Framed("frame", bytes(self._buf[:n]), tuple(self._times[:n])))
                del self._buf[:n]
                del self._times[:n]
                continue
            if verdict == "bad":
                self._take_junk(1, reason)
                continue
            later = self._valid_frame_after_start()
            if later is None:
                break  # a frame may still be arriving
            self._take_junk(later, f"{self._buf[0]:02X} started no frame: a valid frame follows")
        # junk is reported as soon as a frame start (or nothing) follows it
        out.extend(self._flush_junk())
        return out

    def _valid_frame_after_start(self) -> int | None:
        """Offset (> 0) of the first complete valid frame in the held bytes, or None."""
        buf = self._buf
        for k in range(1, len(buf)):
            if buf[k] in _MASTER_STARTS and check_candidate(buf[k:])[0] == "frame":
                return k
        return None

    def _take_junk(self, n: int, reason: str) -> None:
        self._add_junk(bytes(self._buf[:n]), self._times[:n], reason)
        del self._buf[:n]
        del self._times[:n]

    def _add_junk(self, data: bytes, times: list[float], reason: str) -> None:
        if not self._junk:
            self._junk_reason = reason
        self._junk.extend(data)
        self._junk_times.extend(times)

    def _flush_junk(self) -> list[Framed]:
        if not self._junk:
            return []
        item = Framed("junk", bytes(self._junk), tuple(self._junk_times), self._junk_reason)
        self._junk.clear()
        self._junk_times.clear()
        self._junk_reason = ""
        return [item]


_MASTER_STARTS = (0x10, 0x68)


def check_candidate(buf: bytes | bytearray) -> tuple[Literal["frame", "bad", "partial"], int, str]:
    """Judge the frame a master's byte stream would hold at ``buf[0]``.

    Returns ``("frame", n, "")`` for a complete valid frame of ``n`` bytes, ``("bad", 0,
    reason)`` if ``buf[0]`` cannot start one (unknown start byte, ``E5``, L-fields differ,
    bad checksum or stop byte), ``("partial", 0, "")`` if more bytes are needed to know.
    """
    head = bytes(buf[:4])
    try:
        n = frame_length(head)
    except FrameError as exc:
        return "bad", 0, exc.reason
    if head[:1] == bytes([ACK]):
        return "bad", 0, "E5 from the master (only slaves send the single character)"
    if n is None or len(buf) < n:
        return "partial", 0, ""
    try:
        parse_frame(bytes(buf[:n]))
    except MBusError as exc:
        return "bad", 0, f"{n}-byte frame rejected: {exc.reason}"
    return "frame", n, ""
