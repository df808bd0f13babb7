"""Reading one meter: selection or SND_NKE, REQ_UD2 with readout retries, FCB toggling,
multi-telegram (EN 13757-2 §5 FCB/FCV; PROTOCOL.md §2.2; seed 002 §6.25.2)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from simulator.core import events as ev
from simulator.mbus.address import SecondaryAddress, SecondaryMask
from simulator.mbus.errors import MBusError
from simulator.mbus.frames import ADDR_NETWORK, FCB, REQ_UD2, LongFrame, ShortFrame, parse_frame
from simulator.mbus.procedures.commands import Heard
from simulator.mbus.procedures.settings import MasterSettings
from simulator.mbus.telegram import Telegram, take_held

if TYPE_CHECKING:
    from simulator.mbus.procedures.machine import MasterMachine, Proc


@dataclass
class Readout:
    """The result of reading one meter.

    ``target``: primary address or secondary address; ``ok``: every telegram read (up to the
    limit); ``telegrams``: the decoded RSP_UDs in order (``frames``: their bytes); ``error``: why it failed (``None``
    if ok); ``attempts``: REQ_UD2 requests sent; ``started``/``finished``: driver time (s);
    ``more_pending``: the last telegram read still announced more (DIF 1F) at the limit.
    """

    target: int | SecondaryAddress | SecondaryMask
    ok: bool
    telegrams: list[Telegram] = field(default_factory=list)
    error: str | None = None
    attempts: int = 0
    started: float = 0.0
    finished: float = 0.0
    more_pending: bool = False
    frames: list[bytes] = field(default_factory=list)

    @property
    def records(self) -> list:
        return [r for t in self.telegrams for r in t.records]


def telegram_of(rx: Heard) -> tuple[Telegram | None, str]:
    """The RSP_UD in ``rx`` and ``""``, or ``None`` and why not (no reply, collision, ...)."""
    if rx.empty:
        return None, "no reply"
    if rx.collision:
        return None, "collision"
    try:
        frame = parse_frame(rx.data)
        if not isinstance(frame, LongFrame):
            return None, "unexpected frame"
        return take_held(frame), ""  # decoded once, for the frame's trace summary
    except MBusError as exc:
        return None, f"bad frame: {exc}"


def same_content(a: bytes, b: bytes) -> bool:
    """Two RSP_UD frames equal but for the access number (byte 15 of a CI 72 long frame)."""
    if len(a) != len(b) or len(a) < 21:
        return a == b
    return a[:15] == b[:15] and a[16:-2] == b[16:-2]


def read(
    m: MasterMachine, target: int | SecondaryAddress | SecondaryMask, s: MasterSettings
) -> Proc[Readout]:
    """Read one meter (procedure -> :class:`Readout`; trace ``readout``).

    Primary ``target``: SND_NKE (if ``send_nke``), init idle, then REQ_UD2 to it.
    Secondary ``target`` (an address, or a mask such as ``<ID>FFFFFFFF`` from a meter
    list): select it (CI 52, selection retries), then REQ_UD2 to 253.
    Each telegram gets ``readout_retries + 1`` REQ_UD2 attempts with the same FCB; after a
    good telegram ending in DIF 1F the FCB toggles for the next one, up to the limit.
    """
    out = Readout(target, ok=False, started=m.now)
    if isinstance(target, SecondaryAddress | SecondaryMask):
        sel = yield from m.select(target, settings=s)
        if sel != "single":
            if m.overloaded:
                out.error = "bus_overload"
            else:
                out.error = "selection failed" if sel == "none" else "selection collision"
            return (yield from _finish(m, out))
        address = ADDR_NETWORK
    else:
        address = int(target)
        if s.send_nke:
            yield from m.snd_nke(address, settings=s)
    fcb = True  # the first FCV=1 request after a reset carries FCB = 1 (PROTOCOL.md §2.2)
    limit = s.telegram_limit
    while True:
        telegram, error = None, "no reply"
        for _ in range(s.readout_retries + 1):
            out.attempts += 1
            c = REQ_UD2 | (FCB if fcb else 0)
            rx = yield from m.request(ShortFrame(c, address).to_bytes(), settings=s)
            if rx.overload:
                error = "bus_overload"
                continue
            telegram, error = telegram_of(rx)
            if telegram is not None:
                break
        if telegram is None:
            out.error = error
            return (yield from _finish(m, out))
        if s.stop_on_repeat and any(same_content(rx.data, f) for f in out.frames):
            break
        out.telegrams.append(telegram)
        out.frames.append(rx.data)
        if not telegram.more_follow:
            break
        if len(out.telegrams) >= limit:
            out.more_pending = True
            break
        fcb = not fcb
    out.ok = True
    return (yield from _finish(m, out))


def _finish(m: MasterMachine, out: Readout) -> Proc[Readout]:
    out.finished = m.now
    yield from m.note(readout_event(out, ""))
    return out


def readout_event(out: Readout, source: str) -> ev.Readout:
    """The ``readout`` trace event of a finished readout (time set when emitted)."""
    return ev.Readout(
        source=source,
        target=target_str(out.target),
        ok=out.ok,
        attempts=out.attempts,
        telegrams=len(out.telegrams),
        records=sum(len(t.records) for t in out.telegrams),
        error=out.error,
        started=round(out.started, 9),
        more_pending=out.more_pending,
    )


def target_str(target: int | SecondaryAddress | SecondaryMask) -> str:
    """``p<n>`` for a primary address, the 16-hex form for a secondary address or mask."""
    if isinstance(target, SecondaryAddress | SecondaryMask):
        return str(target)
    return f"p{int(target)}"
