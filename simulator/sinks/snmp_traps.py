"""The bench's SNMP notification receiver: pysnmp, v2c, community-checked (seed 002 §6.30).

A CMe3100 sends a notification to every trap receiver on each change of its aggregated
status (CME3100.md §7); the model's :class:`~simulator.gateways.cme3100.snmp_agent.
InformSender` sends INFORMs. :class:`TrapReceiver` is the receiving end with the common
receiver shape of :mod:`.receiver`::

    with TrapReceiver(community="public") as rx:            # 127.0.0.1, ephemeral UDP port
        ... TrapRecipient(rx.host, rx.port) ...
        rx.received        # Received records: raw datagram, TrapMeta(community, varbinds)

pysnmp acknowledges an INFORM (RFC 3416 §4.2.7) and drops a message with another community
(RFC 3584 §5.2.1: no answer). Faults: UDP has no connection to refuse or login to fail, so
only ``refuse`` and ``timeout`` exist here; both drop the datagram unanswered (an INFORM
sender then retries and times out), and the drop is recorded.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from typing import Any

from pysnmp.carrier.asyncio.dgram import udp
from pysnmp.entity import config, engine
from pysnmp.entity.rfc3413 import ntfrcv

from simulator.sinks.receiver import START_TIMEOUT_S, Receiver, TrapMeta


def plain_value(value: Any) -> int | str | tuple[int, ...]:
    """A received varbind value as plain Python: an OBJECT IDENTIFIER as its tuple, an OCTET
    STRING as text (UTF-8, bad bytes replaced), a number (INTEGER, TimeTicks, Counter,
    Gauge) as int (RFC 2578 §7.1)."""
    if hasattr(value, "asTuple"):
        return tuple(value.asTuple())
    if hasattr(value, "asOctets"):
        return bytes(value.asOctets()).decode("utf-8", "replace")
    return int(value)


def plain_varbinds(meta: TrapMeta) -> dict[tuple[int, ...], int | str | tuple[int, ...]]:
    """``meta``'s varbinds with :func:`plain_value` values, in the order received."""
    return {oid: plain_value(v) for oid, v in meta.varbinds.items()}


class _Transport(udp.UdpAsyncioTransport):
    """pysnmp's UDP transport that lets the receiver see (and drop) every datagram first."""

    sink: TrapReceiver

    def datagram_received(self, datagram, transportAddress) -> None:  # noqa: N803 (pysnmp)
        inj = self.sink.faults.take()
        remote = f"{transportAddress[0]}:{transportAddress[1]}"
        if inj is not None:
            self.sink._record(bytes(datagram), remote, None, None, inj.fault)
            return

        def process() -> None:  # the notification callback runs inside, synchronously
            self.sink._current = (bytes(datagram), remote)
            self._held = []
            try:
                self._callback_function(self, transportAddress, datagram)
            finally:
                self.sink._current = None
                held, self._held = self._held, None
                for message, address in held:
                    super(_Transport, self).send_message(message, address)

        self.loop.call_soon(process)

    def send_message(self, outgoingMessage, transportAddress) -> None:  # noqa: N803
        # pysnmp acknowledges an INFORM before it hands the notification over; the ack is
        # held until the record is made, so a sender that saw the ack finds it recorded
        if getattr(self, "_held", None) is not None:
            self._held.append((outgoingMessage, transportAddress))
            return
        super().send_message(outgoingMessage, transportAddress)


class TrapReceiver(Receiver):
    """A pysnmp notification receiver (v2c traps and INFORMs, ``community``) on UDP
    ``host``:``port`` (0 = ephemeral), in its own loop thread; see the module doc."""

    protocol = "snmp"
    name = "SNMP trap"

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, *, community: str = "public", **kw: Any
    ) -> None:
        super().__init__(host, port, **kw)
        self.community = community
        self._current: tuple[bytes, str] | None = None
        self._sock: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._engine: engine.SnmpEngine | None = None

    def _start(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.bind((self.host, self.port))
        except OSError as exc:
            sock.close()
            raise self._bind_error(exc) from exc
        self._sock, self.port = sock, sock.getsockname()[1]
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="snmp-trap-receiver", daemon=True
        )
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._setup(sock), self._loop).result(START_TIMEOUT_S)

    async def _setup(self, sock: socket.socket) -> None:
        self._engine = engine.SnmpEngine()
        transport_cls = type("TrapTransport", (_Transport,), {"sink": self})
        transport = transport_cls().open_server_mode(sock=sock)
        config.add_transport(self._engine, udp.DOMAIN_NAME, transport)
        config.add_v1_system(self._engine, "bench-rx", self.community)
        ntfrcv.NotificationReceiver(self._engine, self._on_notification)

    def _on_notification(self, _eng, _ref, _engine_id, _ctx, var_binds, _cb) -> None:
        data, remote = self._current or (b"", "")
        varbinds = {tuple(o): v for o, v in var_binds}
        self._record(data, remote, TrapMeta(self.community, varbinds), None)

    def _stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is not None and thread is not None:

            async def close() -> None:
                if self._engine is not None:
                    self._engine.close_dispatcher()

            try:
                asyncio.run_coroutine_threadsafe(close(), loop).result(START_TIMEOUT_S)
            finally:
                loop.call_soon_threadsafe(loop.stop)
                thread.join(START_TIMEOUT_S)
                loop.close()
        if self._sock is not None:
            self._sock.close()
        self._loop = self._thread = self._engine = self._sock = None
