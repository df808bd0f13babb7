"""Cutting the byte stream a master writes into M-Bus frames (EN 13757-2 frame grammar + timing).

A serial port delivers bytes in chunks of arbitrary size with an arrival time each. The
:class:`Framer` turns them into :class:`Framed` items:

* ``"frame"``: exactly the bytes of one link-layer frame, cut by its grammar
  (:func:`simulator.mbus.frames.frame_length`: ``E5`` = 1 byte, ``10`` = 5, ``68 L L 68`` =
  L + 6). The checksum is *not* checked here: a frame with a bad checksum goes to the bus as
  it is, where the slaves stay silent (PROTOCOL.md §2.5), exactly as on a real wire.
* ``"junk"``: bytes that cannot start a frame (line noise, a master's wake-up preamble, a
  frame cut short). They are skipped one by one until a valid start byte resynchronises the
  stream, and reported (the bridge logs them in the trace), never raised.

Timing: EN 13757-2 sends a telegram without pauses, so a gap longer than ``gap`` seconds
inside a frame means the rest will not come; the partial frame becomes junk and the next byte
starts afresh. USB adapters deliver bytes in bursts (FTDI latency timer: 16 ms by default),
so the gap must be larger than that; :func:`default_gap` gives ``max(3 character times,
30 ms)``.

``mode="transparent"`` (the TCP service's "Transparent" packing mode, seed 002 §6.26)
skips the grammar: whatever arrived is one item once the line has been quiet ``gap`` s.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from simulator.mbus.errors import FrameError
from simulator.mbus.frames import frame_length

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

    def _cut(self) -> list[Framed]:
        out: list[Framed] = []
        while self._buf:
            try:
                n = frame_length(bytes(self._buf[:4]))
            except FrameError as exc:
                self._add_junk(bytes(self._buf[:1]), self._times[:1], exc.reason)
                del self._buf[:1]
                del self._times[:1]
                continue
            if n is None or len(self._buf) < n:
                break
            out.extend(self._flush_junk())
            out.append(Framed("frame", bytes(self._buf[:n]), tuple(self._times[:n])))
            del self._buf[:n]
            del self._times[:n]
        if not self._buf or self._junk:
            # junk is reported as soon as a frame start (or nothing) follows it
            out.extend(self._flush_junk())
        return out

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
