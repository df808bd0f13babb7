"""UDP head-ends for a lab rig: a CoAP/LwM2M endpoint (aiocoap) and an MQTT-SN gateway.

A physical CMi6140 (or any NB-IoT module) pointed at this machine sends LwM2M over CoAP or
MQTT-SN over plain UDP; these sinks answer as a server would and record every message with its
arrival (wall-clock) time. DTLS is out of scope here: the module must be configured without
security (the product allows that, seed 001 integration notes).

::

    with CoapSink() as coap, MqttSnSink() as mqtt:       # 127.0.0.1, ephemeral ports
        ... coap.port, mqtt.port ...
        coap.messages  # CoapRecord list: method, path, query, content_format, payload, decoded
        mqtt.messages  # MqttSnRecord list: msg_type, topic_id, qos, payload, decoded / error

* CoAP (RFC 7252 via ``aiocoap``): ``POST /rd`` (LwM2M Register) answers 2.01 Created with a
  Location-Path ``/rd/<n>``; ``POST /rd/<n>`` (Update) and ``POST /dp`` (Send) answer 2.04
  Changed; anything else 2.04 as well (recorded). SenML CBOR bodies (Content-Format 112) are
  decoded with :func:`simulator.nbiot.payload.decode_senml_cbor`.
* MQTT-SN 1.2: CONNECT -> CONNACK, REGISTER -> REGACK (topic ids from 1), PUBLISH (QoS -1, 0,
  1) recorded and, for QoS 1, acknowledged with PUBACK; PINGREQ -> PINGRESP; DISCONNECT ->
  DISCONNECT. A malformed datagram is recorded with its error and does not stop the gateway.

Each sink runs its own asyncio loop in a daemon thread and binds 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass
from typing import Any

import aiocoap
import aiocoap.resource as resource

from simulator.nbiot import mqttsn, payload


@dataclass(frozen=True)
class CoapRecord:
    """One CoAP request as received."""

    wall: float
    remote: str
    method: str
    path: str
    query: tuple[str, ...]
    content_format: int | None
    payload: bytes
    decoded: Any = None
    error: str | None = None


@dataclass(frozen=True)
class MqttSnRecord:
    """One MQTT-SN datagram as received."""

    wall: float
    remote: str
    msg_type: int | None
    payload: bytes = b""
    topic_id: int | None = None
    qos: int | None = None
    decoded: Any = None
    error: str | None = None


class _ThreadedLoop:
    """Runs ``_serve`` on a private event loop in a daemon thread."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._lock = threading.Lock()

    async def _open(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    async def _close(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def _main(self) -> None:
        self._loop = asyncio.new_event_loop()
        try:
            self._loop.run_until_complete(self._run())
        finally:
            self._loop.close()

    async def _run(self) -> None:
        self._stop = asyncio.Event()
        try:
            await self._open()
        except BaseException as exc:  # reported to the starting thread
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        await self._stop.wait()
        await self._close()

    def start(self):
        self._thread = threading.Thread(target=self._main, name=type(self).__name__, daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError(f"{type(self).__name__} did not start within 10 s")
        if self._error is not None:
            raise RuntimeError(f"{type(self).__name__} failed to start: {self._error}")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(10)
        self._thread = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _Root(resource.Resource):
    """Catch-all CoAP resource: every path lands here (LwM2M /rd, /rd/<n>, /dp, ...)."""

    def __init__(self, sink: CoapSink) -> None:
        super().__init__()
        self.sink = sink

    async def render(self, request: aiocoap.Message) -> aiocoap.Message:
        path = tuple(request.opt.uri_path)
        cf = request.opt.content_format
        cf_int = int(cf) if cf is not None else None
        decoded, error = None, None
        if cf_int == payload.CONTENT_FORMAT_SENML_CBOR:
            try:
                decoded = payload.decode_senml_cbor(request.payload)
            except payload.PayloadError as exc:
                error = str(exc)
        elif cf_int == payload.CONTENT_FORMAT_JSON:
            try:
                decoded = payload.decode_json(request.payload)
            except payload.PayloadError as exc:
                error = str(exc)
        elif cf_int == payload.CONTENT_FORMAT_OCTETS:
            try:
                decoded = payload.decode_mbus_message(request.payload)[1]
            except payload.PayloadError as exc:
                error = str(exc)
        rec = CoapRecord(
            time.time(),
            str(request.remote.hostinfo),
            str(request.code),
            "/" + "/".join(path),
            tuple(request.opt.uri_query),
            cf_int,
            bytes(request.payload),
            decoded,
            error,
        )
        with self.sink._lock:
            self.sink.messages.append(rec)
        if request.code == aiocoap.POST and path == ("rd",):
            with self.sink._lock:
                self.sink._registrations += 1
                loc = f"{self.sink._registrations:x}"
            return aiocoap.Message(code=aiocoap.CREATED, location_path=("rd", loc))
        if error is not None:
            return aiocoap.Message(code=aiocoap.BAD_REQUEST, payload=error.encode()[:200])
        return aiocoap.Message(code=aiocoap.CHANGED)


class CoapSink(_ThreadedLoop):
    """A recording CoAP server (LwM2M server side) on ``host``:``port`` (0 = ephemeral)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__()
        self.host, self.port = host, port
        self.messages: list[CoapRecord] = []
        self._registrations = 0
        self._ctx: aiocoap.Context | None = None

    async def _open(self) -> None:
        self._ctx = await aiocoap.Context.create_server_context(
            _Root(self), bind=(self.host, self.port), transports=["udp6"]
        )
        iface = self._ctx.request_interfaces[0].token_interface.message_interface
        self.port = iface.transport.get_extra_info("socket").getsockname()[1]

    async def _close(self) -> None:
        if self._ctx is not None:
            await self._ctx.shutdown()


class _MqttSnProtocol(asyncio.DatagramProtocol):
    def __init__(self, sink: MqttSnSink) -> None:
        self.sink = sink
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        reply = self.sink._handle(data, f"{addr[0]}:{addr[1]}")
        if reply and self.transport is not None:
            self.transport.sendto(reply, addr)


class MqttSnSink(_ThreadedLoop):
    """A recording MQTT-SN 1.2 gateway on ``host``:``port`` (0 = ephemeral)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__()
        self.host, self.port = host, port
        self.messages: list[MqttSnRecord] = []
        self.topics: dict[str, int] = {}
        self._transport: asyncio.DatagramTransport | None = None

    async def _open(self) -> None:
        loop = asyncio.get_running_loop()
        self._transport, _ = await loop.create_datagram_endpoint(
            lambda: _MqttSnProtocol(self), local_addr=(self.host, self.port)
        )
        self.port = self._transport.get_extra_info("sockname")[1]

    async def _close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def _record(self, rec: MqttSnRecord) -> None:
        with self._lock:
            self.messages.append(rec)

    def _handle(self, data: bytes, remote: str) -> bytes | None:
        now = time.time()
        try:
            msg_type, body = mqttsn.parse(data)
        except mqttsn.MqttSnError as exc:
            self._record(MqttSnRecord(now, remote, None, bytes(data), error=str(exc)))
            return None
        if msg_type == mqttsn.PUBLISH:
            try:
                pub = mqttsn.Publish.decode(data)
            except mqttsn.MqttSnError as exc:
                self._record(MqttSnRecord(now, remote, msg_type, bytes(data), error=str(exc)))
                return None
            decoded, error = None, None
            try:
                decoded = payload.decode_senml_cbor(pub.data)
            except payload.PayloadError:
                try:
                    decoded = payload.decode_json(pub.data)
                except payload.PayloadError as exc:
                    error = f"payload is neither SenML CBOR nor JSON: {exc}"
            self._record(
                MqttSnRecord(now, remote, msg_type, pub.data, pub.topic_id, pub.qos, decoded, error)
            )
            return mqttsn.puback(pub.topic_id, pub.msg_id) if pub.qos == 1 else None
        self._record(MqttSnRecord(now, remote, msg_type, body))
        if msg_type == mqttsn.CONNECT:
            return mqttsn.connack()
        if msg_type == mqttsn.REGISTER and len(body) >= 4:
            name = body[4:].decode("utf-8", errors="replace")
            with self._lock:
                topic = self.topics.setdefault(name, len(self.topics) + 1)
            return mqttsn.regack(topic, int.from_bytes(body[2:4], "big"))
        if msg_type == mqttsn.PINGREQ:
            return mqttsn.frame(mqttsn.PINGRESP, b"")
        if msg_type == mqttsn.DISCONNECT:
            return mqttsn.frame(mqttsn.DISCONNECT, b"")
        return None


__all__ = ["CoapRecord", "CoapSink", "MqttSnRecord", "MqttSnSink"]
