"""Fault injection for simulated slaves: what can go wrong with a reply, and how often.

Each :class:`Fault` names a kind, a probability (drawn per reply from the slave's own stream
``slave/<id>/faults``, so other slaves' numbers do not move) and optionally the commands it
affects. Kinds:

============== ===================================================================================
silent         no reply at all
late           the reply starts after the EN 13757-2 window (330 bit times + 50 ms); default
               ``delay`` = window end + 1 s, beyond the CMe3100's 1000 ms response timeout
early          the reply starts before 11 bit times (default: 3 bit times after the request);
               the master's receiver is not listening yet and loses its first bits
bad_checksum   the checksum byte is incremented (a long/short frame; E5 is left alone)
truncated      the last ``count`` bytes (default: half the frame) are cut off
garbled        ``count`` bytes (default 1) at random positions get a random XOR mask
============== ===================================================================================

A fired fault is recorded as a ``fault`` trace event (source ``slave/<id>``) with ``fault``
(the kind), ``command`` and ``detail``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from simulator.mbus.wire import response_window

FAULT_KINDS = ("silent", "late", "early", "bad_checksum", "truncated", "garbled")


@dataclass(frozen=True)
class Fault:
    """One injected fault.

    ``kind``: one of :data:`FAULT_KINDS`; ``probability``: 0..1 per reply (1 = always);
    ``delay``: s after the request for ``late``/``early`` (default: see module doc);
    ``count``: bytes affected for ``truncated``/``garbled``; ``commands``: the requests it
    applies to (``"SND_NKE"``, ``"REQ_UD2"``, ``"REQ_UD1"``, ``"SND_UD"``), empty = every reply.
    Raises ``ValueError`` for an unknown kind or a probability outside 0..1.
    """

    kind: str
    probability: float = 1.0
    delay: float | None = None
    count: int | None = None
    commands: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; one of {FAULT_KINDS}")
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError(f"fault probability must be 0..1, got {self.probability}")

    def applies(self, command: str) -> bool:
        return not self.commands or command in self.commands

    def fires(self, rng: random.Random) -> bool:
        # Always draw, so the stream advances the same way whatever the probability.
        return rng.random() < self.probability


@dataclass
class FaultResult:
    data: bytes | None
    delay: float
    detail: str


def apply_fault(
    fault: Fault, data: bytes, delay: float, baud: int, rng: random.Random
) -> FaultResult:
    """Apply ``fault`` to a reply of ``data`` sent ``delay`` s after the request at ``baud``."""
    lo, hi = response_window(baud)
    if fault.kind == "silent":
        return FaultResult(None, delay, "no reply")
    if fault.kind == "late":
        d = fault.delay if fault.delay is not None else hi + 1.0
        return FaultResult(data, d, f"delay {d * 1000:.1f} ms > window end {hi * 1000:.1f} ms")
    if fault.kind == "early":
        d = fault.delay if fault.delay is not None else 3.0 / baud
        return FaultResult(data, d, f"delay {d * 1000:.3f} ms < window start {lo * 1000:.3f} ms")
    if fault.kind == "bad_checksum":
        if len(data) < 5:
            return FaultResult(data, delay, "single character: no checksum to break")
        out = bytearray(data)
        out[-2] = (out[-2] + 1) & 0xFF
        return FaultResult(bytes(out), delay, f"checksum {data[-2]:02X} -> {out[-2]:02X}")
    if fault.kind == "truncated":
        cut = fault.count if fault.count is not None else max(1, len(data) // 2)
        keep = max(0, len(data) - cut)
        return FaultResult(data[:keep] or None, delay, f"{len(data)} -> {keep} bytes")
    # garbled
    out = bytearray(data)
    n = fault.count if fault.count is not None else 1
    positions = sorted(rng.sample(range(len(out)), min(n, len(out))))
    for pos in positions:
        out[pos] ^= rng.randrange(1, 256)
    return FaultResult(bytes(out), delay, f"bytes at {positions} changed")
