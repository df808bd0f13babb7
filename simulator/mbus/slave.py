"""A simulated wired M-Bus slave (meter), answering per EN 13757-2/-3 (PROTOCOL.md §2-3).

Attach a :class:`Slave` to a :class:`~simulator.mbus.bus.Bus`; the bus calls :meth:`Slave.hear`
with every frame sent at the baud rate the slave listens at, and puts the returned
:class:`~simulator.mbus.bus.Reply` on the line after its response delay.

What it answers (A = its primary address, 253 when selected, 254 = broadcast with reply; a
frame to 255 is processed but never answered; a bad checksum or another address: silence):

============================  ===========================================================
request                       reaction
============================  ===========================================================
SND_NKE                       E5; FCB state and multi-telegram position reset; to 253 it
                              also deselects (E5 only if it was selected)
REQ_UD2 (5B/7B, 4B/6B)        RSP_UD (CI 72 long header). FCV=1: a new FCB advances to the
                              next telegram if the last one ended with DIF 1F, else starts
                              over with fresh values; the same FCB repeats the last telegram
                              byte for byte. The access number increments per new RSP_UD.
REQ_UD1                       E5 (no class-1 data: ACD is never set)
SND_UD CI 52 to 253           selection: E5 and selected if the mask matches (nibble F =
                              any), else deselected and silent; FCB state reset
SND_UD CI 56 to 253           deselect, silent (PROTOCOL.md §3: treated as deselect, logged)
SND_UD CI 51 DIF 01 VIF 7A    set primary address (0..250), E5
SND_UD CI B8..BF              E5 at the old baud, then listen at the new one (silent if the
                              rate is not in ``bauds``)
SND_UD CI 50                  application reset: E5, telegram position and FCB state reset
other SND_UD                  E5
============================  ===========================================================

Records come from value profiles (:mod:`simulator.meters.wired`) evaluated at the world
time of the request, or are replayed from golden telegram bytes (access number and A-field
patched, checksum recomputed). The response delay is drawn per reply from the slave's stream
``slave/<id>/delay``; faults (:mod:`simulator.mbus.faults`) from ``slave/<id>/faults``.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from simulator.core import events as ev
from simulator.core.world import World
from simulator.mbus.address import SecondaryAddress, SecondaryMask
from simulator.mbus.bus import Reply
from simulator.mbus.errors import MBusError
from simulator.mbus.faults import Fault, apply_fault
from simulator.mbus.frames import (
    ACK,
    ADDR_BROADCAST,
    ADDR_BROADCAST_REPLY,
    ADDR_NETWORK,
    REQ_UD1,
    REQ_UD2,
    SND_NKE,
    SND_UD,
    ControlFrame,
    LongFrame,
    ShortFrame,
    checksum,
    parse_frame,
)
from simulator.mbus.record_spec import RecordSpec
from simulator.mbus.telegram import Telegram, decode_telegram
from simulator.mbus.wire import BAUD_BY_CI, response_window

E5 = bytes([ACK])

#: CI-fields of requests the slave understands (PROTOCOL.md §4.1).
CI_APPLICATION_RESET = 0x50
CI_DATA_SEND = 0x51
CI_SELECT = 0x52
CI_DESELECT = 0x56
CI_LONG_HEADER = 0x72


@dataclass(frozen=True)
class ResponseDelay:
    """The slave's reply delay after the end of a request.

    ``unit="window"``: uniform in the fraction ``low..high`` of the EN 13757-2 window
    ``[11 bit times, 330 bit times + 50 ms]`` at the request's baud (always inside it for
    0 <= low <= high <= 1). ``unit="s"``: uniform in ``low..high`` seconds (a fixed delay
    when low == high; may fall outside the window: that is the caller's choice).
    """

    low: float = 0.02
    high: float = 0.25
    unit: str = "window"

    def draw(self, baud: int, rng: random.Random) -> float:
        u = rng.random()  # always one draw, so the stream advances identically
        if self.unit == "s":
            return self.low + (self.high - self.low) * u
        lo, hi = response_window(baud)
        f = self.low + (self.high - self.low) * u
        return lo + (hi - lo) * f


@lru_cache(maxsize=256)
def _parse(data: bytes):
    # Every slave on the bus parses the same request: parse it once (frames are immutable).
    return parse_frame(data)


@lru_cache(maxsize=256)
def _mask(raw: bytes) -> SecondaryMask:
    return SecondaryMask(raw)


def read_hex_file(path: str | Path) -> bytes:
    """Bytes of a golden telegram file: hex digits, whitespace ignored, ``#`` comments.

    Raises ``ValueError`` naming the file and line of a non-hex character.
    """
    path = Path(path)
    chunks = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        text = line.split("#", 1)[0].strip().replace(" ", "").replace("\t", "")
        if not text:
            continue
        try:
            chunks.append(bytes.fromhex(text))
        except ValueError:
            raise ValueError(f"{path}:{lineno}: not hex: {text[:40]!r}") from None
    return b"".join(chunks)


class Slave:
    """A simulated M-Bus slave.

    Parameters
    ----------
    world:
        The world (for the clock, the trace and the slave's random streams).
    address:
        Its secondary address (ID, manufacturer, version, medium).
    primary:
        Primary address 0..250 (0 = unconfigured, the factory default).
    bauds:
        Baud rates (bit/s) it supports; ``baud`` is the one it listens at now.
    unit_loads:
        Its mark current in unit loads (1 UL = 1.5 mA).
    records:
        Value-profile records (:class:`~simulator.meters.wired.RecordSpec`); their
        ``telegram`` index spreads them over ``telegrams`` RSP_UDs (DIF 1F between them).
    golden:
        Instead of records: the exact RSP_UD frame bytes to replay (one per telegram).
    delay:
        The reply delay distribution (default: 2 %..25 % into the EN 13757-2 window).
    faults:
        Injected faults, checked in order; the first that fires applies.
    distance_m:
        Position on the trunk (m from the master; default: the cable's far end).
    space_current_ma:
        Extra current (mA) it sinks to send a space (11-20 mA, PROTOCOL.md §1).
    status:
        The status byte of its long header (PROTOCOL.md §4.3).
    """

    def __init__(
        self,
        world: World,
        address: SecondaryAddress,
        *,
        primary: int = 0,
        bauds: Sequence[int] = (300, 2400, 9600),
        baud: int | None = None,
        unit_loads: int = 1,
        records: Sequence[RecordSpec] = (),
        golden: Sequence[bytes] = (),
        telegrams: int | None = None,
        delay: ResponseDelay | None = None,
        faults: Sequence[Fault] = (),
        distance_m: float | None = None,
        space_current_ma: float = 15.0,
        status: int = 0,
        name: str | None = None,
    ) -> None:
        if not 0 <= primary <= 250:
            raise ValueError(f"primary address must be 0..250, got {primary}")
        self.world = world
        self.address = address
        self.primary = primary
        self.bauds = tuple(bauds)
        self.baud = baud if baud is not None else (2400 if 2400 in self.bauds else self.bauds[0])
        if self.baud not in self.bauds:
            raise ValueError(f"baud {self.baud} is not among the supported {self.bauds}")
        self.unit_loads = unit_loads
        self.records = list(records)
        self.golden = [bytes(g) for g in golden]
        for i, g in enumerate(self.golden):
            frame = parse_frame(g)  # FrameError if the golden bytes are not one frame
            if not isinstance(frame, LongFrame):
                raise ValueError(f"golden telegram {i} is not a long frame")
        n_from_records = 1 + max((r.telegram for r in self.records), default=0)
        self.telegrams = telegrams or (len(self.golden) or n_from_records)
        self.delay = delay or ResponseDelay()
        self.faults = list(faults)
        self.distance_m = distance_m
        self.space_current_ma = space_current_ma
        self.status = status
        self.name = name or f"slave/{address.id:08d}"
        self.selected = False
        self._address_bytes = address.to_bytes()
        self._rng_delay = world.rng(f"{self.name}/delay")
        self._rng_faults = world.rng(f"{self.name}/faults")
        self._rng_values = world.rng(f"{self.name}/values")
        self.access_no = world.rng(f"{self.name}/access").randrange(256)
        self._last_fcb: bool | None = None
        self._last_reply: bytes | None = None
        self._last_more = False
        self._index = 0
        self.answered = 0

    # -- what it would answer -----------------------------------------------------------------
    def current_telegrams(self) -> list[Telegram]:
        """Every telegram it would send now (values at the current world time), in order."""
        return [
            decode_telegram(self._build(i, self.access_no, draw=False))
            for i in range(self.telegrams)
        ]

    def _build(self, index: int, access_no: int, *, draw: bool = True) -> bytes:
        if self.golden:
            return self._patch_golden(self.golden[index % len(self.golden)], access_no)
        rng = self._rng_values if draw else random.Random(0)
        t = self.world.now
        clock = self.world.clock()
        # The bytes encode_telegram gives for this CI 72 telegram, built from each record's
        # precomputed DIB/VIB (no DataRecord/Telegram objects: the readout hot path).
        body = b"".join([r.wire(t, clock, rng) for r in self.records if r.telegram == index])
        head = self._address_bytes + bytes((access_no & 0xFF, self.status & 0xFF, 0, 0))
        more = b"\x1f" if index < self.telegrams - 1 else b""  # DIF 1F: more records follow
        return LongFrame(0x08, self.primary, CI_LONG_HEADER, head + body + more).to_bytes()

    def _patch_golden(self, frame: bytes, access_no: int) -> bytes:
        out = bytearray(frame)
        out[5] = self.primary
        if out[6] == CI_LONG_HEADER and len(out) >= 21:
            out[15] = access_no  # 68 L L 68 C A CI | ID(4) Man(2) Ver Med | ACC
        out[-2] = checksum(bytes(out[4:-2]))
        return bytes(out)

    # -- the link layer -------------------------------------------------------------------------
    def hear(self, data: bytes, baud: int) -> Reply | None:
        """React to a frame heard on the bus at ``baud``; return the reply or ``None``."""
        try:
            frame = _parse(bytes(data))
        except MBusError:
            return None  # bad checksum, truncated, garbage: silence (PROTOCOL.md §2.5)
        if not isinstance(frame, ShortFrame | ControlFrame | LongFrame) or not frame.calling:
            return None
        a = frame.a
        if a != ADDR_NETWORK and a != self.primary and a < ADDR_BROADCAST_REPLY:
            return None  # another slave's address: the common case on a big bus, decided first
        fn = frame.function
        ci = getattr(frame, "ci", None)
        if fn == SND_UD and a == ADDR_NETWORK and ci in (CI_SELECT, CI_DESELECT):
            return self._selection(frame, baud)
        if a == ADDR_NETWORK and not self.selected:
            return None
        answer = a != ADDR_BROADCAST
        if fn == SND_NKE:
            was_selected = self.selected
            self._reset_link()
            if a == ADDR_NETWORK:
                self.selected = False
                answer = answer and was_selected
            return self._reply(E5, baud, "SND_NKE") if answer else None
        if fn == REQ_UD2 and isinstance(frame, ShortFrame):
            body = self._rsp_ud(frame)
            return self._reply(body, baud, "REQ_UD2") if answer else None
        if fn == REQ_UD1 and isinstance(frame, ShortFrame):
            return self._reply(E5, baud, "REQ_UD1") if answer else None
        if fn == SND_UD and ci is not None:
            return self._snd_ud(frame, baud, answer)
        return None

    def _reset_link(self) -> None:
        self._last_fcb = None
        self._last_reply = None
        self._last_more = False
        self._index = 0

    def _selection(self, frame: ControlFrame | LongFrame, baud: int) -> Reply | None:
        if frame.ci == CI_DESELECT:
            if self.selected:
                self.world.emit(ev.Deselect(source=self.name, ci="56"))
            self.selected = False
            return None
        data = frame.data
        try:
            mask = _mask(bytes(data))
        except MBusError:
            self.selected = False
            return None
        if mask.matches_bytes(self._address_bytes):
            self.selected = True
            self._reset_link()
            return self._reply(E5, baud, "SND_UD")
        self.selected = False
        return None

    def _rsp_ud(self, frame: ShortFrame) -> bytes:
        if frame.fcv and self._last_reply is not None and self._last_fcb == frame.fcb:
            return self._last_reply  # same FCB: the master lost our reply; repeat it
        self._index = self._index + 1 if self._last_more else 0
        if self._index >= self.telegrams:
            self._index = 0
        self.access_no = (self.access_no + 1) & 0xFF
        body = self._build(self._index, self.access_no)
        self._last_reply = body
        self._last_more = self._index < self.telegrams - 1
        self._last_fcb = frame.fcb if frame.fcv else None
        return body

    def _snd_ud(self, frame: ControlFrame | LongFrame, baud: int, answer: bool) -> Reply | None:
        ci = frame.ci
        data = bytes(getattr(frame, "data", b""))
        if ci in BAUD_BY_CI:
            new = BAUD_BY_CI[ci]
            if new not in self.bauds:
                return None
            reply = self._reply(E5, baud, "SND_UD") if answer else None
            self.baud = new  # after the E5, which still goes out at the old rate
            return reply
        if ci == CI_DATA_SEND and len(data) >= 3 and data[0] == 0x01 and data[1] == 0x7A:
            if data[2] > 250:
                return None
            self.primary = data[2]
        elif ci == CI_APPLICATION_RESET:
            self._reset_link()
        return self._reply(E5, baud, "SND_UD") if answer else None

    def _reply(self, data: bytes, baud: int, command: str) -> Reply | None:
        delay = self.delay.draw(baud, self._rng_delay)
        for fault in self.faults:
            if not fault.applies(command) or not fault.fires(self._rng_faults):
                continue
            res = apply_fault(fault, data, delay, baud, self._rng_faults)
            self.world.emit(
                ev.Fault(source=self.name, fault=fault.kind, command=command, detail=res.detail)
            )
            if res.data is None:
                return None
            data, delay = res.data, res.delay
            break
        self.answered += 1
        return Reply(data, delay, baud)

    def __repr__(self) -> str:
        return f"Slave({self.address}, primary={self.primary}, baud={self.baud})"
