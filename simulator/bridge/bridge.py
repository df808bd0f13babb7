"""Slave emulation: a physical M-Bus master reads the simulated slaves through a serial port.

:class:`SerialBridge` is one more process of a real-time :class:`~simulator.core.world.World`
(run by :class:`~simulator.bridge.realtime.RealtimeDriver`). For every request the master
writes:

1. The reader thread (:mod:`simulator.bridge.reader`) stamps the bytes; the framer
   (:mod:`simulator.bridge.framing`) cuts out valid frames by EN 13757-2 frame sync (start
   byte, L-fields, checksum, stop byte, inter-byte gap); junk is logged (``bridge_junk``) and
   never reaches the bus, so noise costs no time and the next valid frame is served at once.
2. The frame goes on the simulated bus (``Bus.transmit``, source ``"bridge"``) at the master's
   current baud rate, as sent from its own arrival (a burst) or from its first byte on the
   wire (a pacing adapter, :func:`wire_start`), never earlier than the end of the previous
   request and reply: each reply window is measured from that request's own end, however
   busy the bridge was when it got to it.
3. If a slave's reply is on its way, ``Bus.receive`` gathers it (collisions combined as a
   wired-AND and decoded by the master's UART model) while the driver lets the world run
   ahead of the wall clock; the bridge keeps receiving while a further reply is on its way
   inside the window (330 bit times + 50 ms, or ``reply_timeout`` if longer). If no slave is
   going to answer (absent address, a frame nobody accepts) the bridge does not wait for the
   window at all: the next request is read at once.
4. Each reception's bytes, garbled ones included, are written back one by one at their modelled
   instants (``RxChar.t``) mapped to ``time.monotonic()``, paced one character time (11/baud s)
   apart; every written byte's lateness is traced.

Sessions (docs/bridge.md "Sessions"): a master session is one TCP client, one open..close of
the pty by a master program, or on a serial line a run of traffic that ends after
``session_idle`` s of silence, or when the port goes away. At its end the framer's held bytes,
queued requests and replies not yet written are dropped and traced (``bridge_dropped``), and
the transport flushes its buffers: nothing one master sent is ever answered to another.

Baud rate: the bridge follows an acknowledged baud-switch control frame (CI B8..BF answered
with E5, PROTOCOL.md §2.6) and, on a pty, the speed the master program set on its terminal.
``echo=True`` writes the master's own bytes back first, as some level converters do.

Trace events (docs/bridge.md): ``bridge_bytes`` (every byte in/out/echo, with world and wall
times and write lateness), ``bridge_junk``, ``bridge_port`` (gone/back), ``bridge_session``
(start/end/refused/queued), ``bridge_dropped``, ``bridge_exchange`` (request, reply, delay),
``bridge_baud``.
"""

from __future__ import annotations

import queue
import time
from collections import deque
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

from simulator.bridge.framing import Framed, Framer, default_gap
from simulator.bridge.pacing import PacedWriter, Written, char_times
from simulator.bridge.reader import PortEvent, PortReader
from simulator.bridge.realtime import RealtimeDriver
from simulator.bridge.transports import Transport
from simulator.core import events
from simulator.core.events import UNSET
from simulator.core.world import World
from simulator.mbus.bus import Bus, Reception
from simulator.mbus.errors import MBusError
from simulator.mbus.frames import ACK, ControlFrame, describe, parse_frame
from simulator.mbus.wire import (
    BAUD_BY_CI,
    STANDARD_BAUDS,
    char_time,
    frame_time,
    response_window,
)

#: Extra listening time (s) after the end of the EN 13757-2 reply window before the bridge
#: gives up on a reply; a slave configured to answer later needs ``reply_timeout``.
REPLY_MARGIN = 0.020

#: Silence (s, no byte either way) that ends a master session on a serial line, which has no
#: connection to open or close: longer than the 300 bit/s reply window (1.15 s), so a reply
#: in flight is never cut by it.
SESSION_IDLE = 2.0


@dataclass
class Session:
    """One master's session: ``number`` (1, 2, ... per bridge), the transport connection it
    runs on (``port_session``), world s of its start and of its last byte either way."""

    number: int
    port_session: int
    started: float
    last_activity: float


class SerialBridge:
    """Connects ``transport`` (the physical master's side) to ``bus`` in ``driver``'s world.

    ``baud``: the master's initial rate (default ``bus.baud``); ``echo``: write the master's
    bytes back (level-converter echo); ``reply_timeout``: how long (s) to listen for a reply
    after a request (default: end of the reply window + 20 ms); ``gap``: inter-byte silence
    that ends a partial frame (default :func:`~simulator.bridge.framing.default_gap`);
    ``packing``: ``"mbus"`` (frame grammar) or ``"transparent"`` (TCP service mode);
    ``session_idle``: silence (s) that ends a session on a transport without connections of
    its own (a serial line; default :data:`SESSION_IDLE` or the reply timeout + 0.5 s if longer).
    """

    def __init__(
        self,
        driver: RealtimeDriver,
        bus: Bus,
        transport: Transport,
        *,
        baud: int | None = None,
        echo: bool = False,
        reply_timeout: float | None = None,
        gap: float | None = None,
        packing: str = "mbus",
        name: str = "bridge",
        start_reader: bool = True,
        session_idle: float | None = None,
    ) -> None:
        self.driver = driver
        self.world: World = driver.world
        self.bus = bus
        self.transport = transport
        self.baud = baud or bus.baud
        self.echo = echo
        self._reply_timeout = reply_timeout
        self._gap = gap
        self.name = name
        self.framer = Framer(gap or default_gap(self.baud), mode=packing)  # type: ignore[arg-type]
        self._requests: deque[tuple[Framed, int]] = deque()  # (frame, session number)
        self._wake: Any = None
        self._line_baud = self._read_line_baud()
        # pty and TCP clients open and close; a serial line only falls silent
        self._by_connection = bool(getattr(transport, "sessions_by_connection", False))
        self.session_idle = session_idle or max(SESSION_IDLE, self.reply_timeout(300) + 0.5)
        self.session: Session | None = None
        self._sessions = 0
        self._line_free = float("-inf")  # world s the last reply forwarded ended
        self.counters = {
            "requests": 0,
            "replies": 0,
            "junk_bytes": 0,
            "bytes_in": 0,
            "bytes_out": 0,
            "late_replies": 0,
            "port_lost": 0,
            "sessions": 0,
            "refused": 0,
            "dropped_requests": 0,
            "dropped_replies": 0,
            "dropped_bytes": 0,
        }
        self.writer = PacedWriter(transport, self._written_from_thread)
        if hasattr(transport, "on_notice"):
            transport.on_notice = self._notice_from_thread  # type: ignore[attr-defined]
        backoff_max = getattr(transport, "reconnect_backoff_max", 2.0)
        self.reader = PortReader(
            transport, _Forward(self), backoff=min(0.05, backoff_max), backoff_max=backoff_max
        )
        self.process = self.world.process(self._run())
        if start_reader:
            self.reader.start()

    # -- settings ---------------------------------------------------------------------------
    def reply_timeout(self, baud: int) -> float:
        if self._reply_timeout is not None:
            return self._reply_timeout
        return response_window(baud)[1] + REPLY_MARGIN

    def listen_window(self, baud: int) -> float:
        """How long (s) after a request's end the bridge forwards replies: the EN 13757-2
        window (330 bit times + 50 ms, PROTOCOL.md §2.5) or the reply timeout if longer."""
        return max(response_window(baud)[1], self.reply_timeout(baud))

    def set_baud(self, baud: int, cause: str) -> None:
        """Switch the master-side rate (bit/s); recorded as ``bridge_baud``."""
        if baud == self.baud:
            return
        self.world.emit(events.BridgeBaud(source=self.name, old=self.baud, new=baud, cause=cause))
        self.baud = baud
        self.framer.gap = self._gap or default_gap(baud)
        self.transport.set_baud(baud)

    def _read_line_baud(self) -> int | None:
        probe = getattr(self.transport, "line_baud", None)
        return probe() if probe is not None else None

    def _follow_line_baud(self) -> None:
        # Edge-triggered: only a change of the terminal's speed counts, so a baud switch the
        # master commanded without reconfiguring its port is not undone.
        now = self._read_line_baud()
        if now is not None and now != self._line_baud:
            self._line_baud = now
            if now in STANDARD_BAUDS or now in BAUD_BY_CI.values():
                self.set_baud(now, "line speed set by the master program")

    # -- events from the threads (called inside the world) ---------------------------------
    def _record(self, t: float, wall: float | None, event: events.TraceEvent) -> None:
        # the threads' own timestamps (world time of the byte, its wall clock), not emit()'s now
        event.t, event.wall = t, wall
        self.world.trace.record(event)

    def _on_port(self, ev: PortEvent) -> None:
        t = self.driver.world_time(ev.mono)
        if ev.kind == "gone":
            self.counters["port_lost"] += 1
            self._record(
                t,
                ev.wall,
                events.BridgePort(
                    source=self.name, state="gone", port=self.transport.name, reason=ev.reason
                ),
            )
            if ev.data:  # read by the transport at the hang-up: in, then dropped
                self._bytes_in(t, ev.wall, ev.data)
            self._end_session(t, ev.wall, f"port gone: {ev.reason}", unread=ev.data)
            return
        if ev.kind == "back":
            self._record(
                t,
                ev.wall,
                events.BridgePort(source=self.name, state="back", port=self.transport.name),
            )
            if self._by_connection:
                self._start_session(t, ev.wall, ev.session, "a master connected")
            return
        self._bytes_in(t, ev.wall, ev.data)
        s = self.session
        if s is not None and ev.session != s.port_session:
            self._drop(t, ev.wall, "input", s.number, ev.data, "bytes of an ended connection")
            return
        if s is None:
            if self._by_connection:
                self._drop(t, ev.wall, "input", 0, ev.data, "no master session open")
                return
            s = self._start_session(t, ev.wall, ev.session, "first bytes on the line")
        elif not self._by_connection and t - s.last_activity > self.session_idle:
            idle = t - s.last_activity
            self._end_session(t, ev.wall, f"line silent {idle:.3f} s > {self.session_idle:g} s")
            s = self._start_session(t, ev.wall, ev.session, "first bytes after a silence")
        s.last_activity = t
        if self.echo:
            start = max(ev.mono, time.monotonic())
            self.writer.submit(
                ev.data,
                char_times(start, len(ev.data), self.baud),
                tag="echo",
                session=s.number,
                port_session=s.port_session,
            )
        for item in self.framer.feed(t, ev.data):
            self._take(item)
        self._poke()

    def _bytes_in(self, t: float, wall: float | None, data: bytes) -> None:
        self.counters["bytes_in"] += len(data)
        self._record(
            t,
            wall,
            events.BridgeBytes(
                source=self.name,
                direction="in",
                hex=data.hex(),
                n=len(data),
                byte_t=[round(t, 6)] * len(data),
                byte_wall=[round(wall, 6)] * len(data) if wall is not None else [],
            ),
        )

    # -- sessions ---------------------------------------------------------------------------
    def _start_session(self, t: float, wall: float | None, port_session: int, why: str) -> Session:
        if self.session is not None:
            self._end_session(t, wall, "a new session started")
        self._sessions += 1
        self.counters["sessions"] += 1
        self.session = Session(self._sessions, port_session, t, t)
        peer = getattr(self.transport, "peer", "") or UNSET
        self._record(
            t,
            wall,
            events.BridgeSession(
                source=self.name,
                state="start",
                session=self._sessions,
                port=self.transport.name,
                peer=peer,
                reason=why,
            ),
        )
        return self.session

    def _end_session(
        self, t: float, wall: float | None, reason: str, *, unread: bytes = b""
    ) -> None:
        """Drop what the session left behind: held bytes, queued requests, unwritten replies
        (the exchange in progress drops its own reply when it sees the session changed)."""
        s = self.session
        number = s.number if s is not None else 0
        held = self.framer.reset() + unread
        if held:
            self._drop(t, wall, "input", number, held, f"session ended ({reason})")
        while self._requests:
            item, sid = self._requests.popleft()
            self.counters["dropped_requests"] += 1
            self._drop(t, wall, "request", sid, item.data, f"session ended ({reason})")
        if s is None:
            return
        self.session = None
        self.writer.cancel(before=number + 1)
        self._record(
            t,
            wall,
            events.BridgeSession(
                source=self.name,
                state="end",
                session=number,
                port=self.transport.name,
                reason=reason,
            ),
        )

    def _drop(
        self, t: float, wall: float | None, what: str, session: int, data: bytes, reason: str
    ) -> None:
        self.counters["dropped_bytes"] += len(data)
        self._record(
            t,
            wall,
            events.BridgeDropped(
                source=self.name,
                what=what,
                session=session,
                hex=data.hex(),
                n=len(data),
                reason=reason,
            ),
        )

    def _notice_from_thread(self, state: str, peer: str, reason: str) -> None:
        self.driver.post(self._on_notice, time.monotonic(), (state, peer, reason, time.time()))

    def _on_notice(self, notice: tuple[str, str, str, float]) -> None:
        state, peer, reason, wall = notice
        self.counters["refused"] += state == "refused"
        self._record(
            self.world.now,
            wall,
            events.BridgeSession(
                source=self.name,
                state=state,
                session=0,
                port=self.transport.name,
                peer=peer,
                reason=reason,
            ),
        )

    def _written_from_thread(self, w: Written) -> None:
        mono = w.mono[0] if w.mono else time.monotonic()
        self.driver.post(self._on_written, mono, w)

    def _on_written(self, w: Written) -> None:
        if w.data:
            t = self.driver.world_time(w.mono[0])
            self.counters["bytes_out"] += len(w.data)
            if self.session is not None and self.session.number == w.session:
                self.session.last_activity = max(self.session.last_activity, t)
            late = [(m - d) * 1000 for m, d in zip(w.mono, w.due, strict=False)]
            self._record(
                t,
                w.wall[0],
                events.BridgeBytes(
                    source=self.name,
                    direction="echo" if w.tag == "echo" else "out",
                    hex=w.data.hex(),
                    n=len(w.data),
                    byte_t=[round(self.driver.world_time(m), 6) for m in w.mono],
                    byte_wall=[round(x, 6) for x in w.wall],
                    lateness_ms=round(max(late), 3),
                    byte_late_ms=[round(x, 3) for x in late],
                ),
            )
        if w.unwritten:
            t = self.driver.world_time(w.mono[-1] if w.mono else time.monotonic())
            what = "echo" if w.tag == "echo" else "reply"
            self.counters["dropped_replies"] += w.tag != "echo"
            self._drop(t, None, what, w.session, w.unwritten, w.error or "not written")
        if w.error and not w.cancelled:
            self.world.emit(
                events.BridgePort(
                    source=self.name,
                    state="write_failed",
                    port=self.transport.name,
                    reason=w.error,
                    unwritten=len(w.due) - len(w.data),
                )
            )

    def _take(self, item: Framed) -> None:
        if item.kind == "junk":
            self.counters["junk_bytes"] += len(item.data)
            self._record(
                item.first,
                None,
                events.BridgeJunk(
                    source=self.name, hex=item.data.hex(), n=len(item.data), reason=item.reason
                ),
            )
        elif self.session is not None:
            self._requests.append((item, self.session.number))
        else:
            self._drop(item.last, None, "request", 0, item.data, "no master session open")

    def _poke(self) -> None:
        if self._wake is not None and not self._wake.triggered:
            self._wake.succeed()

    # -- the bridge process ----------------------------------------------------------------
    def _run(self) -> Generator[Any, Any, None]:
        while True:
            if not self._requests:
                self._wake = self.world.event()
                deadline = self.framer.deadline()
                if deadline is None:
                    yield self._wake
                else:
                    yield self._wake | self.world.timeout(deadline - self.world.now + 1e-6)
                self._wake = None
                for item in self.framer.expire(self.world.now):
                    self._take(item)
                continue
            yield from self._exchange(*self._requests.popleft())

    def _exchange(self, item: Framed, sid: int) -> Generator[Any, Any, None]:
        self._follow_line_baud()
        baud = self.baud
        data = item.data
        self.counters["requests"] += 1
        # > 0 when the bridge was still busy with an earlier exchange as the request arrived;
        # the model still places the request at its own time (below), not this much later
        queued = self.world.now - item.last
        receptions: list[Reception] = []
        self.driver.hold_lookahead()
        try:
            start = wire_start(item, baud)
            if start is None:
                start = item.first  # a burst left the master's UART from its arrival
            # half duplex: not before the previous request and the reply it got had ended
            start = max(start, self.bus.last_request_end, self._line_free)
            yield from self.bus.transmit(data, baud=baud, source=self.name, start=start)
            request_end = self.bus.last_request_end
            deadline = request_end + self.reply_timeout(baud)
            coming = self.bus.next_reply_start()
            if coming is None or coming >= deadline:
                # nobody will answer inside the window: do not wait it out (a master that
                # scans absent addresses would otherwise build a backlog)
                rx = Reception(start=request_end, end=request_end, baud=baud)
            else:
                rx = yield from self.bus.receive(
                    max(0.0, deadline - self.world.now), baud=baud, source=self.name
                )
            if rx.chars:
                receptions.append(rx)
            # A real master's line carries every reply in the window, not only the first
            # reception (e.g. several E5 to a wildcard selection with spread delays): keep
            # listening while another reply is on its way and starts inside the window.
            window_end = request_end + self.listen_window(baud)
            while rx.chars and (self.bus.next_reply_start() or window_end) < window_end:
                rx = yield from self.bus.receive(
                    window_end - self.world.now,
                    baud=baud,
                    source=self.name,
                    record_timeout=False,
                )
                if rx.chars:
                    receptions.append(rx)
        finally:
            self.driver.release_lookahead()
        first = receptions[0] if receptions else rx
        exchange = events.BridgeExchange(
            source=self.name,
            request=data.hex(),
            summary=_describe(data),
            baud=baud,
            request_end=round(request_end, 6),
            reply=first.data.hex(),
            outcome=first.outcome,
            queued_ms=round(max(0.0, queued) * 1000, 3),
            receptions=len(receptions),
        )
        if receptions:
            self._line_free = max(self._line_free, receptions[-1].end)
        current = self.session if self.session is not None and self.session.number == sid else None
        for i, r in enumerate(receptions):
            due = [self.driver.mono_time(c.t) for c in r.chars]
            late = due[0] < time.monotonic()
            self.counters["replies"] += 1
            self.counters["late_replies"] += int(late)
            if current is None:
                # the master that asked has gone: its reply must not reach the next one
                self.counters["dropped_replies"] += 1
                self._drop(r.start, None, "reply", sid, r.data, f"session {sid} ended")
            else:
                self.writer.submit(
                    r.data, due, tag="reply", session=sid, port_session=current.port_session
                )
            if i == 0:
                exchange.delay = round(r.chars[0].t - request_end, 6)
                exchange.late = late
                exchange.senders = r.sources
        if len(receptions) > 1:
            exchange.more = [
                {
                    "reply": r.data.hex(),
                    "outcome": r.outcome,
                    "delay": round(r.chars[0].t - request_end, 6),
                    "senders": r.sources,
                }
                for r in receptions[1:]
            ]
        self._record(request_end, None, exchange)
        new = _baud_switch(data)
        if new is not None and first.data == bytes([ACK]):
            # the slave acknowledged at the old rate, now both sides move (PROTOCOL.md §2.6)
            self.set_baud(new, f"baud switch CI {data[6]:02X} acknowledged")

    # -- lifecycle --------------------------------------------------------------------------
    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every queued byte has been written (for tests and shutdown)."""
        return self.writer.join(timeout)

    def close(self) -> None:
        """Stop the threads and close the transport (the world itself keeps its trace)."""
        self.reader.stop()
        self.writer.stop()
        self.transport.close()


class _Forward(queue.Queue):
    """Looks like the reader's inbox; forwards each port event into the world via the driver."""

    def __init__(self, bridge: SerialBridge) -> None:
        super().__init__()
        self._bridge = bridge

    def put(self, item: PortEvent, block: bool = True, timeout: float | None = None) -> None:
        self._bridge.driver.post(self._bridge._on_port, item.mono, item)


def wire_start(item: Framed, baud: int) -> float | None:
    """World time the request's first start bit was on the wire (s), or None for "now".

    A pacing adapter (USB M-Bus slave adapter) hands over each byte as its stop bit ends, so
    bytes that arrived spread over about the frame's own duration (at least half of it) ended
    on the wire when the last one arrived: the frame started one frame duration before that.
    A burst (a pty, a TCP client, a buffering adapter) carries no line timing: None, and the
    bus models the frame as sent from now, as a real master's UART would send its write.
    """
    duration = frame_time(len(item.data), baud)
    if len(item.data) > 1 and item.last - item.first >= 0.5 * (duration - char_time(baud)):
        return item.last - duration
    return None


def _describe(data: bytes) -> str:
    try:
        return describe(parse_frame(data))
    except MBusError:
        return "garbled"


def _baud_switch(data: bytes) -> int | None:
    try:
        frame = parse_frame(data)
    except MBusError:
        return None
    if isinstance(frame, ControlFrame):
        return BAUD_BY_CI.get(frame.ci)
    return None
