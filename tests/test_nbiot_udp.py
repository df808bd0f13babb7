"""The lab-rig UDP endpoints: a real aiocoap client and a raw-socket MQTT-SN client."""

from __future__ import annotations

import asyncio
import socket
import struct
from datetime import datetime

import aiocoap
import pytest

from simulator.nbiot import payload
from simulator.sinks.udp import CoapSink, MqttSnSink


def _readouts():
    return [
        payload.Readout(
            12345678, datetime(2026, 1, 5, 12, 0), 1000 + i, 500, 4000, 150, 650, 420, 0
        )
        for i in range(3)
    ]


async def _coap_client(port: int, body: bytes):
    ctx = await aiocoap.Context.create_client_context()
    try:
        reg = await ctx.request(
            aiocoap.Message(
                code=aiocoap.POST,
                uri=f"coap://127.0.0.1:{port}/rd?ep=cmi6140-1&lt=86400&b=UQ",
                payload=b"</3/0>,</4/0>",
                content_format=40,
            )
        ).response
        send = await ctx.request(
            aiocoap.Message(
                code=aiocoap.POST,
                uri=f"coap://127.0.0.1:{port}/dp",
                payload=body,
                content_format=112,
            )
        ).response
        bad = await ctx.request(
            aiocoap.Message(
                code=aiocoap.POST,
                uri=f"coap://127.0.0.1:{port}/dp",
                payload=b"\xff\x00",
                content_format=112,
            )
        ).response
        return reg, send, bad
    finally:
        await ctx.shutdown()


@pytest.mark.timeout(60)
def test_coap_sink_registers_and_decodes_senml_from_a_real_aiocoap_client():
    body = payload.encode_senml_cbor(_readouts(), utc_offset_min=60)
    with CoapSink() as sink:
        assert sink.port > 0
        reg, send, bad = asyncio.run(_coap_client(sink.port, body))
        records = list(sink.messages)
    assert reg.code == aiocoap.CREATED
    assert tuple(reg.opt.location_path) == ("rd", "1")
    assert send.code == aiocoap.CHANGED
    assert bad.code == aiocoap.BAD_REQUEST  # a bad payload is answered, and the sink lives on
    assert [r.path for r in records] == ["/rd", "/dp", "/dp"]
    assert "ep=cmi6140-1" in records[0].query
    decoded = records[1].decoded
    assert [d.registers["energy_kwh"] for d in decoded] == [1000, 1001, 1002]
    # UTC offset +60: 12:00 meter time is sent as 11:00 UTC (seed 001 §7.3.1).
    assert decoded[0].utc_time.hour == 11
    assert records[2].error is not None and records[2].decoded is None


def _publish_datagram(topic_id: int, msg_id: int, qos_bits: int, data: bytes) -> bytes:
    # Built by hand from MQTT-SN v1.2 §5.2 / §5.4.12, independent of simulator.nbiot.mqttsn.
    flags = (qos_bits << 5) | 0b01  # TopicIdType 01 = pre-defined topic id
    body = bytes([0x0C, flags]) + struct.pack(">HH", topic_id, msg_id) + data
    return bytes([len(body) + 1]) + body


@pytest.mark.timeout(60)
def test_mqttsn_sink_takes_raw_publish_qos1_and_qos_minus1_and_survives_junk():
    data = payload.encode_senml_cbor(_readouts()[:1])
    with MqttSnSink() as sink, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        addr = ("127.0.0.1", sink.port)
        sock.sendto(b"\x05\x0c", addr)  # junk: length field says 5, datagram has 2
        sock.sendto(_publish_datagram(7, 0, 0b11, data), addr)  # QoS -1: no answer
        sock.sendto(_publish_datagram(7, 0x1234, 0b01, data), addr)  # QoS 1: PUBACK
        ack = sock.recv(64)
        connect = bytes([0x04, 0x04, 0x01]) + struct.pack(">H", 60) + b"cmi"
        sock.sendto(bytes([len(connect) + 1]) + connect, addr)
        connack = sock.recv(64)
        records = list(sink.messages)
    # PUBACK: Length 7, MsgType 0x0D, TopicId, MsgId, ReturnCode 0 (§5.4.13).
    assert ack == bytes([7, 0x0D]) + struct.pack(">HHB", 7, 0x1234, 0)
    assert connack == bytes([3, 0x05, 0])
    assert records[0].error and "length" in records[0].error
    assert [r.qos for r in records[1:3]] == [-1, 1]
    assert records[1].decoded[0].registers["energy_kwh"] == 1000
