"""MQTT-SN 1.2 messages and publish exchanges (OASIS MQTT-SN v1.2 spec, §5 and §6.13).

Message layout (§5.2): Length (1 octet, or 0x01 + 2 octets when the message is longer than
255 octets), MsgType, then the variable part. PUBLISH (MsgType 0x0C, §5.4.12): Flags, TopicId
(2), MsgId (2), Data. PUBACK (0x0D): TopicId, MsgId, ReturnCode. CONNECT (0x04): Flags,
ProtocolId 0x01, Duration (2), ClientId. CONNACK (0x05): ReturnCode. REGISTER (0x0A) / REGACK
(0x0B). Flags (§5.3.4): DUP bit 7, QoS bits 6-5 (0b11 = QoS -1), Retain bit 4, Will bit 3,
CleanSession bit 2, TopicIdType bits 1-0 (0 normal, 1 pre-defined, 2 short name).

QoS -1 publishes with a pre-defined topic id and MsgId 0, without CONNECT; QoS 0 and 1 need a
connection; QoS 1 waits for PUBACK and retransmits (DUP set) after Tretry, at most Nretry times
(§6.13: Tretry 10..15 s, Nretry 3..5). Malformed datagrams raise :class:`MqttSnError`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

CONNECT, CONNACK, REGISTER, REGACK, PUBLISH, PUBACK = 0x04, 0x05, 0x0A, 0x0B, 0x0C, 0x0D
PINGREQ, PINGRESP, DISCONNECT = 0x16, 0x17, 0x18
TOPIC_NORMAL, TOPIC_PREDEFINED, TOPIC_SHORT = 0, 1, 2
RC_ACCEPTED = 0x00
_QOS_BITS = {0: 0b00, 1: 0b01, 2: 0b10, -1: 0b11}
_BITS_QOS = {v: k for k, v in _QOS_BITS.items()}


class MqttSnError(ValueError):
    """A malformed MQTT-SN datagram (says what and at which offset)."""


def frame(msg_type: int, body: bytes) -> bytes:
    """Prefix ``msg_type`` and ``body`` with the MQTT-SN length field (§5.2.1)."""
    n = len(body) + 2
    if n <= 255:
        return bytes([n, msg_type]) + body
    n += 2
    if n > 0xFFFF:
        raise MqttSnError(f"message of {n} octets exceeds 65535")
    return b"\x01" + struct.pack(">H", n) + bytes([msg_type]) + body


def parse(datagram: bytes) -> tuple[int, bytes]:
    """Split a datagram into (MsgType, variable part); checks the length field."""
    if len(datagram) < 2:
        raise MqttSnError(f"datagram of {len(datagram)} octets is shorter than a header (2)")
    if datagram[0] == 0x01:
        if len(datagram) < 4:
            raise MqttSnError("3-octet length field truncated at offset 1")
        n, head = struct.unpack_from(">H", datagram, 1)[0], 3
    else:
        n, head = datagram[0], 1
    if n != len(datagram):
        raise MqttSnError(f"length field says {n} octets, datagram has {len(datagram)} (offset 0)")
    return datagram[head], bytes(datagram[head + 1 :])


@dataclass(frozen=True)
class Publish:
    """A PUBLISH message (§5.4.12)."""

    topic_id: int
    msg_id: int
    data: bytes
    qos: int = 0
    dup: bool = False
    retain: bool = False
    topic_id_type: int = TOPIC_NORMAL

    def encode(self) -> bytes:
        if self.qos not in _QOS_BITS:
            raise MqttSnError(f"QoS {self.qos} is not one of -1, 0, 1, 2")
        flags = (
            (self.dup << 7) | (_QOS_BITS[self.qos] << 5) | (self.retain << 4) | self.topic_id_type
        )
        return frame(PUBLISH, struct.pack(">BHH", flags, self.topic_id, self.msg_id) + self.data)

    @classmethod
    def decode(cls, datagram: bytes) -> Publish:
        msg_type, body = parse(datagram)
        if msg_type != PUBLISH:
            raise MqttSnError(f"MsgType 0x{msg_type:02X} is not PUBLISH (0x0C)")
        if len(body) < 5:
            raise MqttSnError(f"PUBLISH variable part of {len(body)} octets is shorter than 5")
        flags, topic, mid = struct.unpack_from(">BHH", body)
        return cls(
            topic,
            mid,
            body[5:],
            _BITS_QOS[(flags >> 5) & 3],
            bool(flags & 0x80),
            bool(flags & 0x10),
            flags & 3,
        )


def puback(topic_id: int, msg_id: int, rc: int = RC_ACCEPTED) -> bytes:
    return frame(PUBACK, struct.pack(">HHB", topic_id, msg_id, rc))


def connect(client_id: str, duration_s: int = 86400, clean: bool = False) -> bytes:
    dur = min(duration_s, 0xFFFF)
    return frame(CONNECT, struct.pack(">BBH", clean << 2, 0x01, dur) + client_id.encode())


def connack(rc: int = RC_ACCEPTED) -> bytes:
    return frame(CONNACK, bytes([rc]))


def register(topic_name: str, msg_id: int, topic_id: int = 0) -> bytes:
    return frame(REGISTER, struct.pack(">HH", topic_id, msg_id) + topic_name.encode())


def regack(topic_id: int, msg_id: int, rc: int = RC_ACCEPTED) -> bytes:
    return frame(REGACK, struct.pack(">HHB", topic_id, msg_id, rc))


def publish_size(payload_len: int) -> int:
    """Octets of a PUBLISH carrying ``payload_len`` octets (7-octet header, or 9 when long)."""
    return payload_len + (7 if payload_len + 7 <= 255 else 9)
