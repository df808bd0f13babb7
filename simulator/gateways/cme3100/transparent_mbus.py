"""The CMe3100's Transparent M-Bus service in the world: a client's bytes go onto the
gateway's own bus and the meters' replies come back (seed 002 §6.26; 004 §6.26.1 shot;
CME3100.md §9, Gaps #10). Sans-I/O: the client side is :meth:`TransparentMbus.feed`
(bytes in, at world time) and :attr:`TransparentMbus.replies` (bytes out, at world time).

**Packing** (:func:`packing`; the manuals disagree on the interval, CME3100.md §9; the bench
takes 002 §6.26.1's reading for the direction client -> bus):

- ``"mbus"`` (default, 004 shot "checked"): the bytes are cut into frames by the EN 13757-2
  grammar (:class:`~simulator.bridge.framing.Framer`, gap :func:`default_gap` at the
  service baud ends a partial frame as junk); a frame that does not parse (checksum, stop
  byte) is dropped, never sent ("controlled by the Metering Gateway to assure it follows the
  M-Bus standard", 002); a good frame goes on the bus ``packing_interval_ms`` after its last
  byte (0 = at once);
- ``"transparent"``: no check; bytes go on the bus as one packet once the client has been
  silent ``packing_interval_ms`` (0: :func:`default_gap`, the shortest silence that ends a
  character run). Two frames sent closer than that form one packet: no meter parses it.

**The bus** (002 §6.26: "M-Bus activity due to one service interrupts the other service";
the bench's rule, docs/cme3100.md "Services"): requests interleave with readout rounds at
meter boundaries. The gateway holds its bus lock (``Cme3100.bus``, :class:`~.bus_lock.BusLock`) for the readout of
one meter (selection, REQ_UD2s, retries); a forwarded request waits for the meter being read,
then the round's next meter waits for the forwarded exchange. So rounds take longer, and
what a client does to a meter (select it, change its primary address or baud) acts on the
next readout exactly as it would on a wire. Each exchange: ``Bus.transmit`` at the service
baud, then ``Bus.receive`` up to the end of the EN 13757-2 reply window + 20 ms (as the
serial bridge listens). Trace: ``bridge_exchange`` per forwarded request and ``bridge_junk``
per dropped packet, with this service's ``source``; the requests themselves are ``frame``
events of the bus.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Generator
from typing import Any

from simulator.bridge.bridge import REPLY_MARGIN
from simulator.bridge.framing import Framed, Framer, default_gap
from simulator.core import events as ev
from simulator.core.world import World
from simulator.gateways.cme3100.bus_lock import BusLock
from simulator.gateways.cme3100.gateway_settings import TransparentMbusService
from simulator.mbus.bus import Bus
from simulator.mbus.errors import MBusError
from simulator.mbus.frames import describe, parse_frame
from simulator.mbus.wire import response_window


def packing(mode: str, interval_ms: float, baud: int) -> tuple[float, float]:
    """``(gap_s, hold_s)`` of the packing rule (module doc): ``gap_s`` the client silence that
    ends a packet (transparent) or a partial frame (mbus); ``hold_s`` the wait between a
    complete frame and its transmission (mbus). Raises ValueError for a bad mode/interval."""
    if interval_ms < 0:
        raise ValueError(f"packing interval must be >= 0 ms, got {interval_ms}")
    if mode == "mbus":
        return default_gap(baud), interval_ms / 1000.0
    if mode == "transparent":
        return (interval_ms / 1000.0 if interval_ms > 0 else default_gap(baud)), 0.0
    raise ValueError(f"packing mode must be 'mbus' or 'transparent', got {mode!r}")


class TransparentMbus:
    """One Transparent M-Bus service on ``bus`` (module doc). ``bus_lock``: the gateway's
    (None: the bus is not shared with readouts); ``settings``: the service's."""

    def __init__(
        self,
        world: World,
        bus: Bus,
        settings: TransparentMbusService,
        *,
        bus_lock: BusLock | None = None,
        name: str = "cme3100/transparent1",
    ) -> None:
        self.world, self.bus, self.settings, self.bus_lock = world, bus, settings, bus_lock
        self.name = name
        gap, self.hold_s = packing(settings.packing, settings.packing_interval_ms, settings.baud)
        self.framer = Framer(gap, mode=settings.packing)
        self.replies: list[tuple[float, bytes]] = []
        self.counters = {"requests": 0, "replies": 0, "dropped": 0, "waited_s": 0.0}
        self._queue: deque[Framed] = deque()
        self._wake: Any = None
        world.process(self._run())

    def feed(self, data: bytes) -> None:
        """Bytes from the client, arrived now (world time)."""
        for item in self.framer.feed(self.world.now, bytes(data)):
            self._take(item)
        if self._wake is not None and not self._wake.triggered:
            self._wake.succeed()

    def _take(self, item: Framed) -> None:
        if item.kind == "frame" and self.settings.packing == "mbus":
            try:
                parse_frame(item.data)
            except MBusError as exc:
                item = Framed("junk", item.data, item.times, f"not sent: {exc}")
        if item.kind == "junk":
            self.counters["dropped"] += 1
            self.world.emit(
                ev.BridgeJunk(source=self.name, hex=item.data.hex(), n=len(item.data),
                              reason=item.reason),
                at=item.first,
            )  # fmt: skip
            return
        self._queue.append(item)

    def _run(self) -> Generator[Any, Any, None]:
        world = self.world
        while True:
            if not self._queue:
                self._wake = world.event()
                deadline = self.framer.deadline()
                if deadline is None:
                    yield self._wake
                else:
                    yield self._wake | world.timeout(deadline - world.now + 1e-9)
                self._wake = None
                for item in self.framer.expire(world.now):
                    self._take(item)
                continue
            item = self._queue.popleft()
            yield world.timeout(item.last + self.hold_s - world.now)
            yield from self._exchange(item)

    def _exchange(self, item: Framed) -> Generator[Any, Any, None]:
        world, bus, baud = self.world, self.bus, self.settings.baud
        ready = world.now
        lock = self.bus_lock
        if lock is not None:
            yield from lock.acquire(self.name)
        try:
            waited = world.now - ready
            self.counters["requests"] += 1
            self.counters["waited_s"] += waited
            yield from bus.transmit(item.data, baud=baud, source=self.name)
            request_end = world.now
            rx = yield from bus.receive(
                response_window(baud)[1] + REPLY_MARGIN, baud=baud, source=self.name
            )
        finally:
            if lock is not None:
                lock.release()
        exchange = ev.BridgeExchange(
            source=self.name,
            request=item.data.hex(),
            summary=_describe(item.data),
            baud=baud,
            request_end=round(request_end, 9),
            reply=rx.data.hex(),
            outcome=rx.outcome,
            queued_ms=round((ready + waited - item.last) * 1000, 3),
            receptions=1 if rx.chars else 0,
        )
        if rx.chars:
            exchange.delay = round(rx.chars[0].t - request_end, 9)
            exchange.senders = rx.sources
            self.counters["replies"] += 1
            self.replies.append((world.now, rx.data))
        world.emit(exchange, at=request_end)


def _describe(data: bytes) -> str:
    try:
        return describe(parse_frame(data))
    except MBusError:
        return "unchecked packet"
