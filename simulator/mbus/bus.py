"""The wired M-Bus segment: master port electrics, cable, attached slaves, collisions.

A :class:`Bus` joins one master (whoever calls :meth:`Bus.transmit` / :meth:`Bus.receive`: the
simulated :class:`~simulator.mbus.master.Master`, or the serial bridge on behalf of a physical
master) with the attached slaves. Everything happens in world time:

* :meth:`Bus.transmit` occupies the wire ``n * 11 / baud`` s and, at the end of the frame,
  hands the bytes to every slave the frame can concern (:mod:`simulator.mbus.dispatch`: by
  primary address, selection, secondary address mask, or all for a broadcast) that listens
  at that baud and is powered (its space-state voltage is at least 12 V). A slave that answers returns a reply and a delay; the bus places
  the reply on the line at ``end of request + delay`` (cable bit errors applied if the segment
  runs above its maximum baud rate).
* Half duplex: a slave whose reply is still on the line while the master sends (e.g. a late
  reply running into the next request) cannot receive; it gets a garbled request and stays
  silent (trace ``talkover``; the ``m2s`` frame lists it under ``talkover``). The master's
  UART is deaf while it sends and until ``listen_delay_bits`` after its frame, so it misses
  the overlapping part of such a reply and decodes the rest from wherever it resynchronises
  (the ``s2m`` frame or ``ignored`` event then carries ``talkover: true``).
* :meth:`Bus.receive` waits up to ``timeout`` s for a first start bit, gathers every reply
  that overlaps (or follows within ``idle_chars`` character times), combines them as a
  wired-AND and decodes the line with the master's UART (:func:`~simulator.mbus.wire.uart_decode`).
* Unit loads over the master's limit trip its short-circuit protection: while
  :attr:`Bus.overloaded`, every request fails (trace ``bus_overload``, frame outcome
  ``"overload"``) until slaves are detached.

Trace (docs/mbus.md, :class:`simulator.core.events.Frame`): ``frame`` events at the frame's
first start bit with ``direction`` (``"m2s"``/``"s2m"``), ``hex``, ``summary`` (``frames.describe``
or ``"garbled"``, for humans), the parsed ``function``/``address``/``ci``/``fcb``/``more_follow``
(:func:`simulator.mbus.frames.frame_facts`),
``outcome`` (``ok|timeout|collision|checksum|garbled|overload|ignored``), ``baud``, ``end``;
s2m events add ``senders`` (the slaves that drove the line: ground truth), ``uart_errors``,
``bit_errors``, ``delay`` (s from the end of the request to the first sender's first start
bit, ground truth) and ``in_window`` (that delay is inside the EN 13757-2 window).
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Protocol

from simulator.core import events as ev
from simulator.core.events import UNSET
from simulator.core.world import World
from simulator.mbus.dispatch import AddressIndex
from simulator.mbus.electrical import (
    MIN_SPACE_VOLTAGE,
    Cable,
    MasterPort,
    max_baud,
    unit_load_current_ma,
    voltages_at,
)
from simulator.mbus.frames import FrameFacts, frame_facts
from simulator.mbus.wire import (
    CHAR_BITS,
    CleanChars,
    RxChar,
    Transmission,
    char_time,
    clean_single,
    frame_time,
    peak_space_current,
    response_window,
    uart_decode,
)

if TYPE_CHECKING:
    from simulator.mbus.slave import Slave


@dataclass
class Reply:
    """What a slave puts on the line in answer to a frame: bytes, delay (s) after the end of
    the request, and the baud rate (bit/s) it sends at."""

    data: bytes
    delay: float
    baud: int


class Listener(Protocol):  # what the bus needs from an attached device
    name: str
    unit_loads: int
    baud: int
    distance_m: float | None
    space_current_ma: float

    def hear(self, data: bytes, baud: int) -> Reply | None: ...


@dataclass
class Reception:
    """What the master's UART got during one :meth:`Bus.receive`.

    ``chars``: the characters with their times and UART errors; ``senders``: how many slaves
    drove the line (ground truth; > 1 is a collision); ``sources``: their names;
    ``collision_detected``: the master's current-threshold detector fired (only when the
    port has ``collision_detector`` on); ``start``/``end``: world s of the first start bit
    and the end of the last character (``end`` is the give-up time for an empty reception);
    ``overload``: the port was tripped.
    """

    chars: Sequence[RxChar] = field(default_factory=list)
    senders: int = 0
    sources: list[str] = field(default_factory=list)
    collision_detected: bool = False
    start: float = 0.0
    end: float = 0.0
    baud: int = 2400
    overload: bool = False
    outcome: str = "timeout"

    @property
    def data(self) -> bytes:
        if isinstance(self.chars, CleanChars):
            return self.chars.data
        return bytes(c.value for c in self.chars)

    @property
    def uart_errors(self) -> int:
        """Characters with a parity or framing error."""
        if isinstance(self.chars, CleanChars):
            return 0
        return sum(not c.ok for c in self.chars)

    @property
    def clean(self) -> bool:
        """No parity or framing error in any character (and no collision flagged)."""
        return not self.collision_detected and not self.uart_errors

    @property
    def collision(self) -> bool:
        """More than one slave drove the line (ground truth, whatever the UART saw)."""
        return self.senders > 1

    @property
    def empty(self) -> bool:
        return not self.chars


class Bus:
    """One wired M-Bus segment in a :class:`~simulator.core.world.World`.

    ``baud`` is the master's current rate (bit/s); ``master`` the port electrics (default: a
    CMe3100 integrated master, 32 UL, 28 V); ``cable`` the trunk (default 100 m JYStY).
    """

    def __init__(
        self,
        world: World,
        *,
        baud: int = 2400,
        master: MasterPort | None = None,
        cable: Cable | None = None,
        name: str = "bus",
    ) -> None:
        self.world = world
        self.baud = baud
        self.port = master if master is not None else MasterPort()
        self.cable = cable if cable is not None else Cable()
        self.name = name
        self.slaves: list[Slave] = []
        self._index = AddressIndex()
        #: offer a request only to the slaves it can concern (:mod:`.dispatch`); False offers
        #: it to every slave in attach order (the reference the dispatch tests compare with)
        self.addressed = True
        self._pending: list[Transmission] = []
        self._talked_over: set[int] = set()  # id() of pending replies a request ran over
        self._voltages: dict[int, float] = {}
        self._powered: set[int] = set()
        self._max_baud: int | None = max_baud(self.cable.length_m, 0.0, 0)
        self._unit_loads = 0
        self._stale = False  # topology changed: electrics recomputed on next use
        self._last_m2s_end = float("-inf")
        self._biterr_rng = world.rng(f"{name}/bit_errors")
        self._open_request: int | None = None  # world.sleeps["event"] when it began
        self._paths = {"direct": 0, "event": 0}
        self.counters = {
            "requests": 0,
            "replies": 0,
            "collisions": 0,
            "timeouts": 0,
            "talkovers": 0,
            "bus_seconds": 0.0,
        }

    # -- topology and electrics ------------------------------------------------------------
    def attach(self, slave: Slave) -> None:
        """Connect ``slave`` to the segment (it starts listening at its current baud).

        O(log n): the electrics are recomputed once, on their next use, not per attach.
        """
        self.slaves.append(slave)
        self._index.add(slave)
        self._stale = True

    def detach(self, slave: Slave) -> None:
        """Disconnect ``slave``; replies it has already started stay on the line."""
        self.slaves.remove(slave)
        self._index.remove(slave)
        self._stale = True

    @property
    def unit_loads(self) -> int:
        if self._stale:
            self._recompute()
        return self._unit_loads

    @property
    def overloaded(self) -> bool:
        """Unit loads over the master's limit: its protection trips and every request fails."""
        return self.unit_loads > self.port.max_unit_loads

    def _distance(self, slave: Slave) -> float:
        d = getattr(slave, "distance_m", None)
        return self.cable.length_m if d is None else float(d)

    def _recompute(self) -> None:
        self._stale = False
        self._unit_loads = sum(s.unit_loads for s in self.slaves)
        loads = [(self._distance(s), unit_load_current_ma(s.unit_loads)) for s in self.slaves]
        volts = voltages_at(self.port.space_voltage, self.cable, loads)
        self._voltages = {id(s): v for s, v in zip(self.slaves, volts, strict=True)}
        self._powered = {k for k, v in self._voltages.items() if v >= MIN_SPACE_VOLTAGE}
        dist = max((d for d, _ in loads), default=0.0)
        self._max_baud = max_baud(max(self.cable.length_m, dist), dist, len(self.slaves))

    def space_voltage_at(self, slave: Slave) -> float:
        """Bus voltage (V) at ``slave`` while the master sends a space (the worst case)."""
        if self._stale:
            self._recompute()
        return self._voltages[id(slave)]

    def mark_voltage_at(self, slave: Slave) -> float:
        """Bus voltage (V) at ``slave`` in the mark (idle) state."""
        if self._stale:
            self._recompute()
        return self._voltages[id(slave)] + self.port.space_drop

    def powered(self, slave: Slave) -> bool:
        """The slave sees at least 12 V in the space state (PROTOCOL.md §1 [S7])."""
        if self._stale:
            self._recompute()
        return id(slave) in self._powered

    @property
    def max_baud(self) -> int | None:
        """Highest baud rate the segment carries (installation table), None if outside it."""
        if self._stale:
            self._recompute()
        return self._max_baud

    def overspeed(self, baud: int) -> bool:
        mb = self.max_baud
        return mb is None or baud > mb

    # -- master -> slaves ------------------------------------------------------------------
    def transmit(
        self,
        data: bytes,
        *,
        baud: int | None = None,
        source: str = "master",
        start: float | None = None,
    ) -> Generator[Any, Any, None]:
        """Send ``data`` from the master (SimPy generator: ``yield from bus.transmit(b)``).

        Occupies the wire ``len(data) * 11 / baud`` s, records a ``frame`` event (direction
        ``m2s``) at its first start bit and delivers the bytes, at the end of the frame, to
        every powered slave listening at ``baud`` that the frame can concern (the others
        would stay silent and unchanged). Any bytes are allowed: slaves ignore frames
        they cannot parse. While the bus is overloaded nothing is delivered.

        ``start`` (world s, <= now) says the first start bit was already on the wire then: the
        serial bridge passes it for a request that a pacing adapter delivered byte by byte, so
        the frame ends when its last byte arrived instead of one frame duration later, and for
        a request that arrived while it was still busy (the frame then may have ended before
        now: the slaves hear it now and place their replies after its own end).
        """
        baud = baud or self.baud
        data = bytes(data)
        start, end, summary, talkover = self._send(data, baud, source, start)
        self._last_m2s_end = yield from self._until(end)
        if talkover is not None:
            self._deliver(data, baud, start, summary, talkover)

    def _send(
        self, data: bytes, baud: int, source: str, start: float | None
    ) -> tuple[float, float, str, list[Transmission] | None]:
        """A request's part before its bytes are on the wire: counters, the ``m2s`` frame
        event -> ``(start, end, summary, talkover)`` (world s; talkover None: overloaded)."""
        duration = frame_time(len(data), baud)
        self._close_request()
        self._open_request = self.world.sleeps["event"]
        start = self.world.now if start is None else min(float(start), self.world.now)
        self.counters["requests"] += 1
        self.counters["bus_seconds"] += duration
        if self.overloaded:
            self._record_overload(source)
            self._frame(source, "m2s", data, "overload", baud, start + duration, at=start)
            return start, start + duration, "", None
        facts = _facts(data)
        talkover = self._talkover(start, start + duration) if self._pending else []
        self._frame(
            source,
            "m2s",
            data,
            _m2s_outcome(facts),
            baud,
            start + duration,
            facts,
            at=start,
            talkover=sorted({tx.source for tx in talkover}) if talkover else UNSET,
        )
        return start, start + duration, facts.summary, talkover

    def _deliver(
        self, data: bytes, baud: int, start: float, summary: str, talkover: list[Transmission]
    ) -> None:
        """A request's part at the end of its last stop bit: talkovers, then every slave it
        can concern hears it and may place a reply."""
        end = self._last_m2s_end
        deaf = {id(tx.owner) for tx in talkover if tx.owner is not None}
        for tx in talkover:
            self.counters["talkovers"] += 1
            self._talked_over.add(id(tx))
            self.world.emit(
                ev.Talkover(
                    source=tx.source,
                    request=summary,
                    request_start=round(start, 9),
                    request_end=round(end, 9),
                    reply_start=round(tx.start, 9),
                    reply_end=round(tx.end, 9),
                )
            )
        powered = self._powered  # fresh: self.overloaded above recomputed a stale topology
        index = self._index
        candidates = index.candidates(data) if self.addressed else list(self.slaves)
        for slave in candidates:  # only the slaves the frame can concern
            if slave.baud != baud or id(slave) not in powered or id(slave) in deaf:
                continue
            reply = slave.hear(data, baud)
            index.refresh(slave)
            if reply is not None and reply.data:
                self._put_reply(slave, reply, end)

    def _until(self, t: float) -> Generator[Any, Any, float]:
        """Wait until world time ``t`` (s); returns the frame's end: now, or ``t`` if past."""
        if t < self.world.now:
            return t
        yield from self.world.sleep(t - self.world.now)
        return self.world.now

    def _talkover(self, start: float, end: float) -> list[Transmission]:
        """Replies whose bits are on the line between ``start`` and ``end`` (world s)."""
        return [tx for tx in self._pending if tx.start < end and tx.end > start]

    def _record_overload(self, source: str) -> None:
        self.world.emit(
            ev.BusOverload(
                source=source,
                unit_loads=self.unit_loads,
                limit=self.port.max_unit_loads,
                current_ma=round(unit_load_current_ma(self.unit_loads), 3),
                limit_ma=round(self.port.max_current_ma, 3),
            )
        )

    def _put_reply(self, slave: Slave, reply: Reply, request_end: float) -> None:
        flips: frozenset[tuple[int, int]] = frozenset()
        if self.overspeed(reply.baud):
            flips = self._draw_bit_errors(len(reply.data))
        self._pending.append(
            Transmission(
                request_end + reply.delay,
                reply.data,
                reply.baud,
                slave.name,
                flips,
                slave.space_current_ma,
                owner=slave,
            )
        )

    def _draw_bit_errors(self, nbytes: int) -> frozenset[tuple[int, int]]:
        ber = self.cable.overspeed_ber
        if ber <= 0:
            return frozenset()
        rng = self._biterr_rng
        return frozenset(
            (ci, bi) for ci in range(nbytes) for bi in range(CHAR_BITS) if rng.random() < ber
        )

    # -- slaves -> master ------------------------------------------------------------------
    def receive(
        self,
        timeout: float,
        *,
        baud: int | None = None,
        idle_chars: float = 2.0,
        source: str = "master",
        record_timeout: bool = True,
    ) -> Generator[Any, Any, Reception]:
        """Listen for a reply (SimPy generator returning a :class:`Reception`).

        Waits up to ``timeout`` s for a first start bit, then collects characters until the
        line has been idle ``idle_chars`` character times; overlapping replies are combined as
        a wired-AND and decoded by the master's UART. Records a ``frame`` event (direction
        ``s2m``) at the first start bit, or at the give-up time with outcome ``timeout``
        (unless ``record_timeout`` is False: a master purging the line after a reply).
        """
        baud = baud or self.baud
        now = self.world.now
        if self.overloaded:
            yield from self.world.sleep(timeout)
            self._record_overload(source)
            self._frame(source, "s2m", b"", "overload", baud, self.world.now, senders=[])
            return Reception(
                start=self.world.now,
                end=self.world.now,
                baud=baud,
                overload=True,
                outcome="overload",
            )
        rx, facts, cluster, talkover, gap = self._gather(now, timeout, baud, idle_chars, source)
        if rx is None:  # nothing came in time: wait out the timeout
            yield from self.world.sleep(max(0.0, now + timeout - now))
            return self._timed_out(source, baud, timeout, record_timeout)
        yield from self.world.sleep(max(0.0, rx.start - now))
        self._reply_frame(rx, facts, cluster, talkover, source)
        yield from self.world.sleep(rx.end + gap - self.world.now)
        return rx

    def _gather(
        self, now: float, timeout: float, baud: int, idle_chars: float, source: str
    ) -> tuple[Reception | None, Any, list[Transmission], Any, float]:
        """What the master's UART gets from now on: ``(reception, its frame facts, the
        replies it combines, whether a request ran over them, idle gap s)``; the reception
        is None when no first start bit comes before ``now + timeout`` (the replies then stay
        pending)."""
        listen_from = max(now, self._last_m2s_end + self.port.listen_delay_bits / baud)
        deadline = now + timeout
        pending = self._pending
        if pending and pending[0].end <= listen_from or len(pending) > 1:
            self._drop_unheard(listen_from, source)
        gap = idle_chars * char_time(baud)
        if len(pending) == 1:  # the common case: one reply on its way
            ordered = pending
        else:
            ordered = sorted(pending, key=lambda tx: (tx.start, tx.source))
        cluster: list[Transmission] = []
        cluster_end = float("-inf")
        if ordered and ordered[0].start < deadline:
            for tx in ordered:
                if cluster and tx.start > cluster_end + gap:
                    break
                cluster.append(tx)
                cluster_end = max(cluster_end, tx.end)
        chars: Sequence[RxChar]
        if clean_single(cluster, baud, listen_from):
            first = cluster[0]
            chars = CleanChars(first.start, first.data, baud)  # the common reply
            t0, t_last = first.start, first.start + (len(first.data) - 1) * chars._ct
        else:
            chars = uart_decode(cluster, baud, since=listen_from) if cluster else []
            t0 = chars[0].t if chars else 0.0
            t_last = chars[-1].t if chars else 0.0
        if not chars or t0 >= deadline:
            return None, None, cluster, UNSET, gap
        if len(cluster) == len(pending):
            pending.clear()
        else:
            for tx in cluster:
                pending.remove(tx)
        talkover = self._talked_over_any(cluster) if self._talked_over else UNSET
        rx = Reception(
            chars=chars,
            senders=len(cluster),
            sources=[tx.source for tx in cluster],
            start=t0,
            end=t_last + char_time(baud),
            baud=baud,
        )
        if self.port.collision_detector:
            rx.collision_detected = peak_space_current(cluster) > self.port.collision_threshold_ma
        rx.outcome, facts = classify(rx)
        counters = self.counters
        counters["replies"] += 1
        counters["bus_seconds"] += rx.end - rx.start
        if rx.outcome == "collision":
            counters["collisions"] += 1
        return rx, facts, cluster, talkover, gap

    def _reply_frame(
        self,
        rx: Reception,
        facts: FrameFacts,
        cluster: list[Transmission],
        talkover: Any,
        source: str,
    ) -> None:
        """Record a reception's ``frame`` event at its first start bit, with ``delay`` from
        the end of the last request to the first sender's first start bit."""
        lo, hi = response_window(rx.baud)
        delay = min(tx.start for tx in cluster) - self._last_m2s_end  # when the line moved
        self._frame(
            source,
            "s2m",
            rx.data,
            rx.outcome,
            rx.baud,
            rx.end,
            facts,
            senders=rx.sources,
            uart_errors=rx.uart_errors,
            bit_errors=sum(len(tx.flips) for tx in cluster),
            delay=delay,
            in_window=bool(lo <= delay <= hi),
            collision_detected=rx.collision_detected,
            talkover=talkover,
        )

    def _timed_out(self, source: str, baud: int, timeout: float, record_timeout: bool) -> Reception:
        now = self.world.now
        if record_timeout:
            self.counters["timeouts"] += 1
            self._frame(source, "s2m", b"", "timeout", baud, now, senders=[], waited=timeout)
        return Reception(start=now, end=now, baud=baud)

    def _frame(
        self,
        source: str,
        direction: str,
        data: bytes,
        outcome: str,
        baud: int,
        end: float,
        facts: FrameFacts | None = None,
        *,
        at: float | None = None,
        **extra: Any,
    ) -> None:
        """The one place a ``frame`` trace event is built (docs/trace.md): the bytes, their
        parsed facts (function, address, CI, FCB, more-follow; none for an empty reception),
        times rounded to 1 ns (``end``, and ``start``/``delay``/``waited`` when given)."""
        if facts is None and data:
            facts = _facts(data)
        for key in ("start", "delay", "waited"):
            if key in extra:
                extra[key] = round(extra[key], 9)
        if facts is None:
            fields = {}
        else:  # requests and E5 repeat: their fields dict is built once (never changed)
            fields = _short_fields(facts) if len(data) <= 32 else facts.trace_fields()
        self.world.emit(
            ev.Frame(
                source=source,
                direction=direction,
                hex=data.hex(),
                summary=facts.summary if facts else "",
                outcome=outcome,
                baud=baud,
                end=round(end, 9),
                **extra,
                **fields,
            ),
            at=at,
        )

    def _drop_unheard(self, listen_from: float, source: str) -> None:
        """Replies that ended before anyone listened (e.g. late ones after a timeout)."""
        for tx in [tx for tx in self._pending if tx.end <= listen_from]:
            self._pending.remove(tx)
            self._frame(
                source,
                "s2m",
                tx.data,
                "ignored",
                tx.baud,
                tx.end,
                start=tx.start,
                senders=[tx.source],
                talkover=self._talked_over_any([tx]),
            )

    def _talked_over_any(self, txs: list[Transmission]) -> bool:
        """True if a request ran over any of ``txs`` (and forget them), else UNSET (the
        ``talkover`` field of a reception is written only when set)."""
        hit = False
        for tx in txs:
            if id(tx) in self._talked_over:
                self._talked_over.discard(id(tx))
                hit = True
        return True if hit else UNSET

    def _close_request(self) -> None:
        if self._open_request is not None:
            direct = self.world.sleeps["event"] == self._open_request
            self._paths["direct" if direct else "event"] += 1
            self._open_request = None

    def path_counts(self) -> dict[str, int]:
        """Requests by how the world carried them out (:meth:`World.sleep`): ``direct`` when
        nothing from their first start bit to the next request (or now) went through a SimPy
        event (the exact fast path), else ``event``. Sums to ``counters["requests"]``."""
        out = dict(self._paths)
        if self._open_request is not None:  # the last request, as carried out so far
            out["direct" if self.world.sleeps["event"] == self._open_request else "event"] += 1
        return out

    @property
    def last_request_end(self) -> float:
        """World time (s) the master's last frame ended."""
        return self._last_m2s_end

    def next_reply_start(self) -> float | None:
        """World time (s) of the first start bit of the earliest reply on its way, or None
        when no slave is going to answer (the serial bridge then does not wait for one)."""
        return min((tx.start for tx in self._pending), default=None)

    @property
    def line_busy_until(self) -> float:
        """End (world s) of the last reply already placed on the line, or -inf."""
        return max((tx.end for tx in self._pending), default=float("-inf"))


@lru_cache(maxsize=1024)
def _short_facts(data: bytes) -> FrameFacts:
    return frame_facts(data)


@lru_cache(maxsize=1024)
def _short_fields(facts: FrameFacts) -> dict[str, object]:
    return facts.trace_fields()


def _facts(data: bytes) -> FrameFacts:
    # Requests and short replies repeat (a select per meter, REQ_UD2, E5): their facts are
    # immutable, so one parse each serves the whole run. RSP_UDs differ: parsed each time.
    return _short_facts(data) if len(data) <= 32 else frame_facts(data)


def _m2s_outcome(facts: FrameFacts) -> str:
    if facts.error is None:
        return "ok"
    return "checksum" if "checksum" in facts.error.lower() else "garbled"


def classify(rx: Reception) -> tuple[str, FrameFacts]:
    """``(outcome, facts)`` of a non-empty reception as the trace reports it.

    ``collision`` when more than one slave drove the line and the result is not a clean valid
    frame, or when the master's current detector fired; ``checksum`` / ``garbled`` for a
    single sender's bad frame; ``ok`` otherwise (two aligned identical E5 are ``ok`` unless
    the detector is on: that is what a UART alone sees).
    """
    facts = _facts(rx.data)
    parsed = facts.error is None
    reason = (facts.error or "").lower()
    uart_ok = not rx.uart_errors
    if rx.collision_detected or (rx.senders > 1 and not (parsed and uart_ok)):
        return "collision", facts
    if parsed and uart_ok:
        return "ok", facts
    if not uart_ok:
        return "garbled", facts
    return ("checksum" if "checksum" in reason else "garbled"), facts
