"""The world-side LwM2M / MQTT-SN server: records each uplink with its arrival time.

The server is where a physical head-end would be: every datagram that reaches it becomes a
``nbiot.uplink`` trace event (time = arrival, world seconds). Data messages (LwM2M Send,
MQTT-SN PUBLISH) are decoded with the same decoders a head-end would use (cbor2 for SenML
CBOR, json for JSON); a retransmitted duplicate (its ACK was lost) is recorded with
``duplicate = true`` and its readouts are not counted twice (RFC 7252 §4.5 deduplication).
"""

from __future__ import annotations

from array import array
from collections import defaultdict
from typing import Any

from simulator.core import events as ev
from simulator.nbiot import payload


class OutageError(ValueError):
    """An outage window that ends before it starts."""


class Outages:
    """World-time windows ``(from_s, to_s)`` in which a server answers nothing: every datagram
    reaching it is dropped (no DTLS flight, no CoAP response; the client sees silence).
    Raises :class:`OutageError` for a window that ends before it starts."""

    def __init__(self, outages: list[tuple[float, float]] | None = None) -> None:
        self.outages = [(float(a), float(b)) for a, b in outages or []]
        for start, end in self.outages:
            if end < start:
                raise OutageError(f"server outage ({start:g}, {end:g}) s ends before it starts")

    def answers(self, t: float) -> bool:
        """True when a datagram reaching the server at world time ``t`` (s) is answered."""
        return not self.outages or not any(start <= t < end for start, end in self.outages)


class NbiotServer(Outages):
    """Counts delivered readouts per module and records uplinks in the world's trace.

    ``detail`` "datagram" records every datagram, "message" only data messages (the default
    for fleets), "off" records nothing (statistics only). ``outages``: windows in which it
    answers nothing (:class:`Outages`).
    """

    def __init__(
        self,
        world: Any,
        *,
        name: str = "server",
        detail: str = "message",
        outages: list[tuple[float, float]] | None = None,
    ) -> None:
        super().__init__(outages)
        self.world = world
        self.name = name
        self.detail = detail
        self.delivered: dict[str, set[int]] = defaultdict(set)  # module -> readout timestamps
        # s per delivered data message, 8 bytes each (a year of a fleet delivers millions)
        self._latencies: dict[str, array] = defaultdict(lambda: array("d"))
        self._uplinks = 0
        self._duplicates = 0
        self.decode_errors = 0
        #: statistics-only modules holding deliveries to hand over (``Cmi6140._defer``)
        self.late: dict[int, Any] = {}

    def _settle(self) -> None:
        """Take the deliveries that modules hold back and that arrived before now."""
        if self.late:
            now = self.world.now
            for m in list(self.late.values()):
                m.flush_deliveries(now)

    @property
    def latencies(self) -> dict[str, array]:
        """Seconds from the start of a telegram to its data message's arrival, per module."""
        self._settle()
        return self._latencies

    @property
    def uplinks(self) -> int:
        """Datagrams that reached the server."""
        self._settle()
        return self._uplinks

    @property
    def duplicates(self) -> int:
        """Data messages that reached the server again (their ACK was lost)."""
        self._settle()
        return self._duplicates

    def tally(self, module: str, deliveries: list) -> None:
        """``receive(module, at=at, **item)`` of each ``(at, _, item)`` of ``deliveries``, in
        order, on a statistics-only server (detail "off"): a module's deferred handover
        (``Cmi6140.flush_deliveries``), in one call and fewer steps. It only counts the
        datagrams, the duplicate data messages, and each first data message's latency (s from
        ``started`` to ``at``); nothing is recorded or decoded. Raises ValueError on a server
        with another detail."""
        if self.detail != "off":
            raise ValueError(f"tally() is for a server with detail 'off', not {self.detail!r}")
        self._uplinks += len(deliveries)
        lat = None
        for at, _, item in deliveries:
            if item.get("data") is None:
                continue
            if item.get("duplicate", False):
                self._duplicates += 1
                continue
            started = item.get("started")
            if started is not None:
                if lat is None:
                    lat = self._latencies[module]
                lat.append(at - started)

    def receive(
        self,
        module: str,
        op: str,
        protocol: str,
        nbytes: int,
        *,
        data: bytes | None = None,
        encoding: str = "senml_cbor",
        started: float | None = None,
        msg_key: Any = None,
        duplicate: bool = False,
        at: float | None = None,
    ) -> None:
        """A datagram arrived now (or at world time ``at`` s, for a statistics-only module
        that hands its deliveries over later). ``data`` is the application payload of a data
        message."""
        self._uplinks += 1
        now = self.world.now if at is None else at
        # the event only where it is recorded or decoded into (not for statistics only)
        keep = self.detail == "datagram" or (data is not None and self.detail != "off")
        up = (
            ev.NbiotUplink(source=self.name, module=module, op=op, protocol=protocol, bytes=nbytes)
            if keep
            else None
        )
        if data is not None:
            if duplicate:
                self._duplicates += 1
            elif self.detail == "off":
                pass  # statistics only: the module's own ledger counts the readouts
            elif up is not None:
                try:
                    if encoding == "senml_cbor":
                        decoded = payload.decode_senml_cbor(data)
                    elif encoding == "mbus":
                        decoded = [payload.decode_mbus_message(data)[1]]
                    else:
                        decoded = [payload.decode_json(data)]
                except payload.PayloadError as exc:
                    self.decode_errors += 1
                    up.error = str(exc)
                    decoded = []
                stamps = {int(d.utc_time.timestamp()) for d in decoded}
                self.delivered[module] |= stamps
                up.readouts = len(decoded)
                up.times = sorted(stamps) if len(stamps) <= 4 else [min(stamps), max(stamps)]
                up.order = [int(d.utc_time.timestamp()) for d in decoded][:1]
            if started is not None:
                lat = now - started
                if up is not None:
                    up.latency_s = round(lat, 6)
                if not duplicate:
                    self._latencies[module].append(lat)
            if up is not None:
                up.duplicate = duplicate
        if up is not None and (
            self.detail == "datagram" or (self.detail == "message" and data is not None)
        ):
            self.world.emit(up)
