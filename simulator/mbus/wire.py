"""Wire timing and the bit-level UART model of the wired M-Bus (pure functions, no world).

A character is 11 bits, 8E1: one start bit (space, 0), eight data bits LSB first, one even
parity bit, one stop bit (mark, 1); the idle line is mark (PROTOCOL.md §1, EN 13757-2; libmbus
opens the port CS8 + PARENB). A frame of ``n`` bytes at ``b`` bit/s occupies the bus for
``n * 11 / b`` s because a telegram has no pauses between characters.

Slaves answer by sinking current, and the master reads a space whenever *any* slave sinks
the space current, so overlapping replies combine as a **wired-AND** of their bit streams at
their real start offsets. :func:`uart_decode` turns such a combined line into the characters a
master's UART would deliver: it waits for a falling edge (mark -> space), samples each bit in
its middle, and flags a parity error (even parity fails) or a framing error (stop bit sampled
as space). After a framing error it waits for the line to return to mark before it accepts
the next start bit (a modelling choice; real UARTs differ in how they re-synchronise).

Units: times in seconds (world time), baud in bit/s.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass, field

#: Bits per character on the wire: start + 8 data + even parity + stop (8E1).
CHAR_BITS = 11

#: Baud rates a wired M-Bus master ships (PROTOCOL.md §1: 300/2400/9600 bit/s).
STANDARD_BAUDS = (300, 2400, 9600)

#: Baud rate selected by the CI of a baud-switch control frame (CI B8..BF, PROTOCOL.md §4.1).
BAUD_BY_CI = {
    0xB8: 300,
    0xB9: 600,
    0xBA: 1200,
    0xBB: 2400,
    0xBC: 4800,
    0xBD: 9600,
    0xBE: 19200,
    0xBF: 38400,
}


def bit_time(baud: int) -> float:
    """Duration of one bit in s: ``1 / baud``."""
    return 1.0 / baud


def char_time(baud: int) -> float:
    """Duration of one 8E1 character in s: ``11 / baud`` (4.583 ms at 2400 bit/s)."""
    return CHAR_BITS / baud


def frame_time(nbytes: int, baud: int) -> float:
    """Time in s that ``nbytes`` characters occupy the bus at ``baud`` bit/s (no gaps)."""
    return nbytes * CHAR_BITS / baud


def response_window(baud: int) -> tuple[float, float]:
    """The slave's reply window after the end of the request, in s.

    ``(11 bit times, 330 bit times + 50 ms)`` per EN 13757-2 as quoted by libmbus
    (PROTOCOL.md §2.5): 4.58 ms .. 187.5 ms at 2400 bit/s.
    """
    return 11.0 / baud, 330.0 / baud + 0.050


def even_parity(value: int) -> int:
    """The even-parity bit of an 8-bit value (1 if the value has an odd number of ones)."""
    return bin(value & 0xFF).count("1") & 1


def char_bits(value: int) -> tuple[int, ...]:
    """The 11 line levels of one character, in time order (0 = space, 1 = mark)."""
    data = tuple((value >> i) & 1 for i in range(8))
    return (0, *data, even_parity(value), 1)


@dataclass(frozen=True)
class RxChar:
    """One character as the master's UART delivers it.

    ``t`` is the world time (s) at which its start bit began; ``value`` is 0..255 as read.
    """

    t: float
    value: int
    parity_error: bool = False
    framing_error: bool = False

    @property
    def ok(self) -> bool:
        return not (self.parity_error or self.framing_error)


class CleanChars(Sequence[RxChar]):
    """The characters of one sender read cleanly: ``data`` at ``baud`` from ``start`` (s),
    character ``i`` at ``start + i * 11 / baud``, no UART error. What :func:`uart_decode`
    returns for a single clean sender, built only when a character is looked at (a master
    mostly needs the bytes and the first and last times)."""

    __slots__ = ("start", "data", "baud", "_ct")

    def __init__(self, start: float, data: bytes, baud: int) -> None:
        self.start, self.data, self.baud = start, data, baud
        self._ct = char_time(baud)

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self.data)))]
        if i < 0:
            i += len(self.data)
        return RxChar(self.start + i * self._ct, self.data[i])

    def __eq__(self, other: object) -> bool:
        return list(self) == list(other) if isinstance(other, Sequence) else NotImplemented


@dataclass
class Transmission:
    """One sender's characters on the line.

    ``start`` is the world time (s) the first start bit begins; ``flips`` lists
    ``(char_index, bit_index)`` pairs whose line level is inverted (bit errors on a cable run
    above its maximum baud rate; bit 0 is the start bit, 10 the stop bit).
    """

    start: float
    data: bytes
    baud: int
    source: str = ""
    flips: frozenset[tuple[int, int]] = field(default_factory=frozenset)
    space_current_ma: float = 15.0
    #: The device driving these bits (the bus uses it for half duplex: a slave still sending
    #: does not hear a request); not part of equality, names may repeat.
    owner: object | None = field(default=None, compare=False, repr=False)

    @property
    def end(self) -> float:
        return self.start + frame_time(len(self.data), self.baud)

    def level(self, t: float) -> int:
        """Line level this sender drives at time ``t`` (1 = mark/idle, 0 = space)."""
        if t < self.start:
            return 1
        idx = int((t - self.start) * self.baud)
        ci, bi = divmod(idx, CHAR_BITS)
        if ci >= len(self.data):
            return 1
        bit = char_bits(self.data[ci])[bi]
        if (ci, bi) in self.flips:
            bit ^= 1
        return bit

    def edges(self) -> list[float]:
        """Times at which this sender's level falls from mark to space."""
        out = []
        bt = 1.0 / self.baud
        prev = 1
        for ci, value in enumerate(self.data):
            bits = list(char_bits(value))
            for bi in range(CHAR_BITS):
                if (ci, bi) in self.flips:
                    bits[bi] ^= 1
            for bi, bit in enumerate(bits):
                if prev == 1 and bit == 0:
                    out.append(self.start + (ci * CHAR_BITS + bi) * bt)
                prev = bit
        return out

    def space_intervals(self) -> list[tuple[float, float]]:
        """Intervals ``(t0, t1)`` during which this sender sinks its space current."""
        out: list[tuple[float, float]] = []
        bt = 1.0 / self.baud
        for ci, value in enumerate(self.data):
            bits = list(char_bits(value))
            for bi in range(CHAR_BITS):
                if (ci, bi) in self.flips:
                    bits[bi] ^= 1
            for bi, bit in enumerate(bits):
                if bit == 0:
                    t0 = self.start + (ci * CHAR_BITS + bi) * bt
                    if out and abs(out[-1][1] - t0) < bt * 1e-6:
                        out[-1] = (out[-1][0], t0 + bt)
                    else:
                        out.append((t0, t0 + bt))
        return out


def line_level(senders: Sequence[Transmission], t: float) -> int:
    """The wired-AND of every sender's level at ``t``: space if any sender sends space."""
    for s in senders:
        if s.start <= t < s.end and s.level(t) == 0:
            return 0
    return 1


def uart_decode(
    senders: Sequence[Transmission],
    baud: int,
    *,
    since: float = float("-inf"),
    until: float = float("inf"),
) -> list[RxChar]:
    """Characters a UART at ``baud`` reads from the wired-AND of ``senders``.

    Only start bits at or after ``since`` and before ``until`` are accepted. A single sender
    at the UART's baud, fully inside the listening interval and without bit errors, decodes
    to exactly its bytes (fast path); anything else goes through bit sampling.
    """
    if clean_single(senders, baud, since, until):
        s = senders[0]
        ct = char_time(baud)
        return [RxChar(s.start + i * ct, b) for i, b in enumerate(s.data)]
    bt = 1.0 / baud
    eps = bt * 1e-4
    candidates = sorted({e for s in senders for e in s.edges() if since <= e < until})
    out: list[RxChar] = []
    resume = since
    i = 0
    while i < len(candidates):
        te = candidates[i]
        i += 1
        if te < resume:
            continue
        # A real falling edge of the combined line: mark just before, space just after.
        if line_level(senders, te - eps) != 1 or line_level(senders, te + eps) != 0:
            continue
        samples = [line_level(senders, te + (k + 0.5) * bt) for k in range(CHAR_BITS)]
        if samples[0] != 0:  # a glitch shorter than half a bit: the UART rejects it
            resume = te + bt * 0.5
            continue
        value = sum(samples[1 + k] << k for k in range(8))
        parity_error = samples[9] != even_parity(value)
        framing_error = samples[10] != 1
        out.append(RxChar(te, value, parity_error, framing_error))
        resume = te + 10.5 * bt  # look for the next start bit after the stop-bit sample
        if framing_error:
            resume = _next_mark(senders, resume, bt)
        i = bisect.bisect_left(candidates, resume - eps, lo=i)
    return out


def clean_single(
    senders: Sequence[Transmission],
    baud: int,
    since: float = float("-inf"),
    until: float = float("inf"),
) -> bool:
    """One sender at the UART's baud, without bit errors, inside the listening interval:
    it decodes to exactly its bytes (:class:`CleanChars`), no bit sampling needed."""
    if len(senders) != 1:
        return False
    s = senders[0]
    return s.baud == baud and not s.flips and s.start >= since and s.end <= until + CHAR_BITS / baud


def _next_mark(senders: Sequence[Transmission], t: float, bt: float) -> float:
    """First time >= ``t`` at which the combined line is mark again (after a framing error)."""
    step = bt
    limit = max((s.end for s in senders), default=t) + bt
    while t < limit and line_level(senders, t) == 0:
        t += step
    return t


def peak_space_current(senders: Sequence[Transmission]) -> float:
    """Largest sum of simultaneous space currents (mA) of ``senders``.

    This is what a master's current-threshold collision detector measures on top of the
    quiescent mark current (PROTOCOL.md §1: e.g. 7 mA communication / 25 mA collision).
    """
    if len(senders) == 1 and not senders[0].flips and senders[0].data:
        # One sender: every character's start bit is a space, so the peak is its own current
        # (no interval arithmetic: collisions need more than one sender).
        return 0.0 + senders[0].space_current_ma
    events: list[tuple[float, float]] = []
    for s in senders:
        for t0, t1 in s.space_intervals():
            events.append((t0, s.space_current_ma))
            events.append((t1, -s.space_current_ma))
    # Ends before starts at the same instant: back-to-back bits of two senders do not overlap.
    events.sort(key=lambda e: (round(e[0], 12), e[1]))
    level = peak = 0.0
    for _, delta in events:
        level += delta
        peak = max(peak, level)
    return peak
