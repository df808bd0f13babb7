"""What a gateway's M-Bus master does: primary scan, secondary search, readout with retries.

All procedures are SimPy generators driven in world time through :meth:`Bus.transmit` and
:meth:`Bus.receive`; call them as ``result = yield from master.read(1)`` inside a process.

Timing knobs are the CMe3100's "M-Bus time and retry settings" (seed 002 §6.25.2, Table 7;
default values from the screenshots of seed 004 §6.25.2/§6.25.3):

===================  ========  ====================================================================
setting              default   meaning in this model
===================  ========  ====================================================================
response_timeout     1.0 s     wait for the first start bit of a reply after a request ends
readout_retries      1         extra REQ_UD2 attempts per telegram (same FCB) before a readout fails
selection_retries    1         extra selection attempts (CI 52) when nothing answers
init_idle            10.0 s    from the end of a SND_NKE to the next request
collision_idle       5.0 s     from the end of a reception with a detected collision to the next request
request_idle         2.0 s     from the end of the last reception (or timeout) to the next request
multi_telegram       False     "Off" in the manual: read the first telegram only
max_telegrams        0         multi-telegram read limit, 0 = automatic (until no DIF 1F, capped at 64)
===================  ========  ====================================================================

The manual's advanced multi-telegram set (1500 ms / 3 / 2 / 10000 ms / 3500 ms / 1000 ms)
is :meth:`MasterSettings.multi_telegram_defaults`: the same six knobs, with multi-telegram on.

A collision is *detected* (and ``collision_idle`` applies) when the reception has a UART
parity/framing error or the port's current detector fired, or when the master concludes one
from the content: more than a single E5 to a selection, or a search probe's REQ_UD2 answered by
an undecodable telegram or followed by more bytes. A master never sees how many slaves really
answered (that ground truth is only in the trace's ``senders``).

Trace (docs/mbus.md): ``readout`` (per meter), ``search`` (each probe and the result),
``scan`` (primary scan result), besides the bus's ``frame`` events.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable
from dataclasses import dataclass, field
from typing import Any

from simulator.mbus.address import SecondaryAddress, SecondaryMask
from simulator.mbus.bus import Bus, Reception
from simulator.mbus.errors import MBusError
from simulator.mbus.frames import (
    ADDR_BROADCAST,
    ADDR_NETWORK,
    FCB,
    REQ_UD2,
    SND_NKE,
    SND_UD,
    LongFrame,
    ShortFrame,
    parse_frame,
)
from simulator.mbus.settings import AUTO_TELEGRAM_CAP, F_NIBBLE_MODES, MasterSettings
from simulator.mbus.telegram import Telegram, decode_telegram
from simulator.mbus.wire import BAUD_BY_CI, char_time, response_window

Gen = Generator[Any, Any, Any]


@dataclass
class Readout:
    """The result of reading one meter.

    ``target``: primary address or secondary address; ``ok``: every telegram read (up to the
    limit); ``telegrams``: the decoded RSP_UDs in order; ``error``: why it failed (``None``
    if ok); ``attempts``: REQ_UD2 requests sent; ``started``/``finished``: world s.
    """

    target: int | SecondaryAddress | SecondaryMask
    ok: bool
    telegrams: list[Telegram] = field(default_factory=list)
    error: str | None = None
    attempts: int = 0
    started: float = 0.0
    finished: float = 0.0
    more_pending: bool = False

    @property
    def records(self) -> list:
        return [r for t in self.telegrams for r in t.records]


class Master:
    """A gateway's M-Bus master on ``bus`` with ``settings`` (CMe3100 defaults)."""

    def __init__(
        self, bus: Bus, settings: MasterSettings | None = None, *, name: str = "master"
    ) -> None:
        self.bus = bus
        self.world = bus.world
        self.settings = settings or MasterSettings()
        self.name = name
        self._next_free = float("-inf")

    # -- one exchange ---------------------------------------------------------------------------
    def _wait_free(self) -> Gen:
        now = self.world.now
        if self._next_free > now:
            yield self.world.timeout(self._next_free - now)

    def request(
        self,
        frame: bytes,
        *,
        reply: bool = True,
        settings: MasterSettings | None = None,
        init: bool = False,
    ) -> Gen:
        """Send ``frame`` after the idle time and (if ``reply``) receive the answer.

        Returns the :class:`Reception` (``None`` when ``reply`` is False). Sets when the next
        request may start: ``init_idle`` after a SND_NKE (``init``), ``collision_idle`` after
        a detected collision, else ``request_idle``, counted from the end of the reception.
        """
        s = settings or self.settings
        yield from self._wait_free()
        yield from self.bus.transmit(frame, source=self.name)
        tx_end = self.world.now
        if not reply:
            self._next_free = tx_end + (s.init_idle if init else s.request_idle)
            return None
        rx: Reception = yield from self.bus.receive(s.response_timeout, source=self.name)
        end = rx.end if not rx.empty else self.world.now
        idle = s.collision_idle if self.collision_seen(rx) else s.request_idle
        self._next_free = end + idle
        if init:
            self._next_free = max(self._next_free, tx_end + s.init_idle)
        return rx

    @staticmethod
    def collision_seen(rx: Reception) -> bool:
        """What the master can tell: UART errors or its current detector fired."""
        return rx.collision_detected or any(not c.ok for c in rx.chars)

    def _purge(self, request_end: float) -> Gen:
        """Listen until the reply window has surely closed; True if more bytes came."""
        baud = self.bus.baud
        until = request_end + response_window(baud)[1] + char_time(baud)
        wait = until - self.world.now
        if wait <= 0 and self.bus.line_busy_until <= self.world.now:
            return False
        rx = yield from self.bus.receive(
            max(wait, 0.0) + 2 * char_time(baud), source=self.name, record_timeout=False
        )
        if not rx.empty:
            self._collision_idle(rx)
        return not rx.empty

    def _collision_idle(self, rx: Reception) -> None:
        """The master concluded a collision from ``rx``: no request before collision idle."""
        self._next_free = max(self._next_free, rx.end + self.settings.collision_idle)

    # -- primitives -----------------------------------------------------------------------------
    def snd_nke(self, address: int, settings: MasterSettings | None = None) -> Gen:
        """SND_NKE to ``address`` (broadcast 255: no reply awaited); True if a clean E5 came."""
        frame = ShortFrame(SND_NKE, address).to_bytes()
        rx = yield from self.request(
            frame, reply=address != ADDR_BROADCAST, settings=settings, init=True
        )
        return rx is not None and rx.clean and rx.data == b"\xe5"

    def initialise(self) -> Gen:
        """SND_NKE to 255 (every slave resets its FCB state; nobody answers), then init idle."""
        yield from self.snd_nke(ADDR_BROADCAST)

    def select(
        self, mask: SecondaryAddress | SecondaryMask | str, settings: MasterSettings | None = None
    ) -> Gen:
        """Select by secondary address/mask (SND_UD CI 52 to 253), with selection retries.

        Returns ``"single"`` (one clean E5), ``"collision"`` (garbled reply or detected
        collision) or ``"none"`` (no answer after ``selection_retries + 1`` attempts).
        """
        s = settings or self.settings
        if isinstance(mask, SecondaryAddress):
            mask = SecondaryMask.of(mask)
        elif isinstance(mask, str):
            mask = SecondaryMask.parse(mask)
        frame = LongFrame(SND_UD, ADDR_NETWORK, 0x52, mask.to_bytes()).to_bytes()
        for _ in range(s.selection_retries + 1):
            rx = yield from self.request(frame, settings=s)
            if rx.empty:
                continue
            if self.collision_seen(rx) or rx.data != b"\xe5":
                self._collision_idle(rx)
                return "collision"
            return "single"
        return "none"

    def set_primary(self, target: int, new: int) -> Gen:
        """SND_UD CI 51 ``01 7A <new>`` (set primary address); True on a clean E5."""
        frame = LongFrame(SND_UD, target, 0x51, bytes([0x01, 0x7A, new])).to_bytes()
        rx = yield from self.request(frame)
        return rx.clean and rx.data == b"\xe5"

    def switch_baud(self, target: int, baud: int) -> Gen:
        """Baud switch (control frame CI B8..BF): E5 at the old rate, then the master follows."""
        ci = {v: k for k, v in BAUD_BY_CI.items()}[baud]
        frame = LongFrame(SND_UD, target, ci).to_bytes()
        rx = yield from self.request(frame, reply=target != ADDR_BROADCAST)
        self.bus.baud = baud
        return rx is None or (rx.clean and rx.data == b"\xe5")

    # -- readout --------------------------------------------------------------------------------
    def read(
        self,
        target: int | SecondaryAddress | SecondaryMask,
        *,
        settings: MasterSettings | None = None,
    ) -> Gen:
        """Read one meter (generator -> :class:`Readout`).

        Primary ``target``: SND_NKE (if ``send_nke``), init idle, then REQ_UD2 to it.
        Secondary ``target`` (an address, or a mask such as ``<ID>FFFFFFFF`` from a meter
        list): select it (CI 52, selection retries), then REQ_UD2 to 253.
        Each telegram gets ``readout_retries + 1`` REQ_UD2 attempts with the same FCB; after a
        good telegram ending in DIF 1F the FCB toggles for the next one, up to the limit.
        """
        s = settings or self.settings
        started = self.world.now
        out = Readout(target, ok=False, started=started)
        if isinstance(target, SecondaryAddress | SecondaryMask):
            sel = yield from self.select(target, settings=s)
            if sel != "single":
                if self.bus.overloaded:
                    out.error = "bus_overload"
                else:
                    out.error = "selection failed" if sel == "none" else "selection collision"
                return self._finish(out)
            address = ADDR_NETWORK
        else:
            address = int(target)
            if s.send_nke:
                yield from self.snd_nke(address, settings=s)
        fcb = True  # the first FCV=1 request after a reset carries FCB = 1 (PROTOCOL.md §2.2)
        limit = s.telegram_limit
        while True:
            telegram, error = None, "no reply"
            for _ in range(s.readout_retries + 1):
                out.attempts += 1
                c = REQ_UD2 | (FCB if fcb else 0)
                rx = yield from self.request(ShortFrame(c, address).to_bytes(), settings=s)
                if rx.overload:
                    error = "bus_overload"
                    continue
                telegram, error = self._telegram(rx)
                if telegram is not None:
                    break
            if telegram is None:
                out.error = error
                return self._finish(out)
            out.telegrams.append(telegram)
            if not telegram.more_follow:
                break
            if len(out.telegrams) >= limit:
                out.more_pending = True
                break
            fcb = not fcb
        out.ok = True
        return self._finish(out)

    def _telegram(self, rx: Reception) -> tuple[Telegram | None, str]:
        if rx.empty:
            return None, "no reply"
        if self.collision_seen(rx):
            return None, "collision"
        try:
            frame = parse_frame(rx.data)
            if not isinstance(frame, LongFrame):
                return None, "unexpected frame"
            return decode_telegram(frame), ""
        except MBusError as exc:
            return None, f"bad frame: {exc}"

    def _finish(self, out: Readout) -> Readout:
        out.finished = self.world.now
        self.world.record(
            "readout",
            self.name,
            target=_target_str(out.target),
            ok=out.ok,
            attempts=out.attempts,
            telegrams=len(out.telegrams),
            records=len(out.records),
            error=out.error,
            started=round(out.started, 9),
            more_pending=out.more_pending,
        )
        return out

    # -- installation procedures ----------------------------------------------------------------
    def scan_primary(self, addresses: Iterable[int] = range(0, 251)) -> Gen:
        """Primary scan: SND_NKE to each address (selection retries when silent).

        Returns the addresses that answered (a garbled answer counts: someone is there).
        """
        found: list[int] = []
        for a in addresses:
            for _ in range(self.settings.selection_retries + 1):
                rx = yield from self.request(ShortFrame(SND_NKE, a).to_bytes(), init=True)
                if not rx.empty:
                    found.append(a)
                    break
        self.world.record("scan", self.name, found=found)
        return found

    def search_secondary(self, mask: str = "FFFFFFFFFFFFFFFF") -> Gen:
        """Secondary wildcard search by digit descent on collision.

        Probes the mask; on a collision, replaces the first wildcard position by each value
        (ID digits 0-9; manufacturer/version/medium nibbles 0-E when ``hex_search``, 0-9
        like libmbus otherwise) and recurses into the colliding ones (PROTOCOL.md §3.1).
        A single clean E5 is confirmed by REQ_UD2 to 253 and a purge of the line; extra
        bytes mean a collision. Returns the addresses found, in discovery order.
        """
        found: dict[str, SecondaryAddress] = {}
        mask = SecondaryMask.parse(mask)
        yield from self._descend(str(mask), 0, found, probe_first=True)
        self.world.record(
            "search",
            self.name,
            result="done",
            mask=str(mask),
            found=[str(a) for a in found.values()],
        )
        return list(found.values())

    def _descend(
        self,
        mask: str,
        pos: int,
        found: dict[str, SecondaryAddress],
        *,
        probe_first: bool = False,
        continuation: bool = False,
        head: bool = False,
        proven: frozenset[int] = frozenset(),
    ) -> Gen:
        """Descend below the colliding ``mask`` from position ``pos``.

        ``continuation``: this subtree looks for meters with nibble F at a position the
        caller kept as F (they answer no probe 0-E there); ``head``: ``pos`` is the first
        position of such a continuation; ``proven``: the kept-F positions where an F meter
        surely answered (the collision was unexplained), the only ones a leaf may infer.
        """
        if probe_first:
            result = yield from self._probe(mask, found)
            if result != "collision":
                return
        while pos < 16 and mask[pos] != "F":
            pos += 1
        if pos >= 16:
            self._leaf(mask, found, proven)
            return
        hex_pos = pos >= 8 and self.settings.hex_search
        values = "0123456789ABCDE" if hex_pos else "0123456789"
        for v in values:
            probe = mask[:pos] + v + mask[pos + 1 :]
            result = yield from self._probe(probe, found)
            if result == "collision":
                yield from self._descend(
                    probe, pos + 1, found, continuation=continuation, proven=proven
                )
        mode = self.settings.f_nibble_search
        if not hex_pos or mode == "off":
            return
        # Meters with F here matched the parent but none of 0-E. The parent collided (>= 2
        # answers); if fewer than two found meters with a non-F nibble here match it, at
        # least one answer came from an F meter: keep F ("any") here and descend further.
        parent = SecondaryMask.parse(mask)
        explained = sum(1 for k, a in found.items() if k[pos] != "F" and parent.matches(a)) >= 2
        # "always" also continues at explained nodes of the plain descent and, for runs of F
        # (version FF), at the first position of a continuation; those Fs are not proven.
        if not explained or (mode == "always" and (head or not continuation)):
            yield from self._descend(
                mask,
                pos + 1,
                found,
                continuation=True,
                head=True,
                proven=proven if explained else proven | {pos},
            )

    def _leaf(self, mask: str, found: dict[str, SecondaryAddress], proven: frozenset[int]) -> None:
        """A fully descended mask still collides: infer an F meter, or give up."""
        known = [a for a in found.values() if SecondaryMask.parse(mask).matches(a)]
        kept = {i for i in range(8, 16) if mask[i] == "F"}
        if kept and kept <= proven and len(known) <= 1:
            # Every nibble but the kept Fs is fixed, each kept F is proven (an F meter had to
            # answer there) and at most one found meter answers: the other answer is a meter
            # whose address is the mask itself (F nibbles and all). It can never be selected
            # alone (any mask that selects it selects the found one too): named, not read.
            try:
                addr = SecondaryAddress.parse(mask)
            except MBusError:
                addr = None
            if addr is not None:
                found.setdefault(str(addr), addr)
                self.world.record(
                    "search",
                    self.name,
                    result="inferred",
                    mask=mask,
                    address=str(addr),
                    alongside=[str(a) for a in known],
                )
                return
        result = "ambiguous" if len(known) >= 2 else "unresolved"
        self.world.record("search", self.name, result=result, mask=mask)

    def _probe(self, mask: str, found: dict[str, SecondaryAddress]) -> Gen:
        sel = yield from self.select(mask)
        if sel == "single":
            rx = yield from self.request(ShortFrame(REQ_UD2 | FCB, ADDR_NETWORK).to_bytes())
            telegram, _ = self._telegram(rx)
            extra = yield from self._purge(self.bus.last_request_end)
            if telegram is None or telegram.header.address is None or extra:
                sel = "collision"
                if not rx.empty:
                    self._collision_idle(rx)
            else:
                addr = telegram.header.address
                found.setdefault(str(addr), addr)
                self.world.record("search", self.name, result="found", mask=mask, address=str(addr))
                return "single"
        self.world.record("search", self.name, result=sel, mask=mask)
        return sel


def _target_str(target: int | SecondaryAddress | SecondaryMask) -> str:
    """``p<n>`` for a primary address, the 16-hex form for a secondary address or mask."""
    if isinstance(target, SecondaryAddress | SecondaryMask):
        return str(target)
    return f"p{int(target)}"


__all__ = ["AUTO_TELEGRAM_CAP", "F_NIBBLE_MODES", "Master", "MasterSettings", "Readout"]
