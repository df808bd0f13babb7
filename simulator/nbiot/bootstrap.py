"""LwM2M 1.1 bootstrap: the messages a CMi6140 exchanges with a Bootstrap-Server, and that
server on the world side.

Modes (OMA-TS-LightweightM2M_Core V1.1 §6.1.3; the module's ``lwm2m_bootstrap`` setting):

* **Factory Bootstrap** (§6.1.3.1): the LwM2M Server Account (Security object /0 instance
  with Bootstrap-Server = false, Server object /1 instance) is written at manufacture; the
  module goes straight to DTLS + Register. Nothing is sent for it.
* **Client Initiated Bootstrap** (§6.1.3.3): the module holds only a Bootstrap-Server
  Account. It opens a DTLS session with the Bootstrap-Server, sends **Bootstrap-Request**
  ``POST /bs?ep={Endpoint Client Name}`` (answered 2.04 Changed), then the server sends its
  operations as CoAP CON requests the module acknowledges: **Bootstrap-Delete** ``DELETE /``
  (2.02 Deleted; "/" removes every instance except the Bootstrap-Server Account),
  **Bootstrap-Write** ``PUT /0/1`` (the LwM2M Server's Security instance) and ``PUT /1/0``
  (its Server instance), each 2.04 Changed, and **Bootstrap-Finish** ``POST /bs`` (2.04),
  which the server "MUST send" after the last write. Methods, URIs and response codes:
  OMA LwM2M 1.1 Transport, Bootstrap Interface, Table "Operation to Method and URI Mapping
  (Bootstrap Interface)". Without the Finish within EXCHANGE_LIFETIME (RFC 7252 §4.8.2:
  247 s) the client considers the bootstrap failed (Core §6.1.3.3 / §6.1.6 as cited by an
  OMA 1.2.2 compliance checklist, "new in 1.1"; the Bootstrap-Delete / -Write clauses there
  are §6.1.7.6 / §6.1.7.5).

The writes are encoded in OMA-TLV (Content-Format 11542; Core §7.4.3: type byte, 8-bit
identifier, length inline or in a 1-3 byte field) and their CoAP size comes from ``aiocoap``
like every other message (:mod:`.coap`). The values are a bench example account: a
``coaps://`` URI, PSK mode, the endpoint name as PSK identity, a 16-byte key, short server id 1,
the module's registration lifetime and binding ``UQ``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from functools import lru_cache

from aiocoap.numbers.codes import Code

from simulator.nbiot import coap
from simulator.nbiot.server import Outages

#: OMA-TLV Content-Format (OMA LwM2M 1.1 Transport, IANA CoAP Content-Formats).
TLV_FORMAT = 11542
#: RFC 7252 §4.8.2 EXCHANGE_LIFETIME with the default transmission parameters (s).
EXCHANGE_LIFETIME_S = 247.0
#: Bench LwM2M Server account the Bootstrap-Server writes (Security /0/1, Server /1/0).
SERVER_URI = "coaps://lwm2m.example.net:5684"
PSK_KEY_B = 16  # AES-128 PSK (TLS-PSK-WITH-AES-128-CCM-8, RADIO §4.1)
SHORT_SERVER_ID = 1


class BootstrapError(ValueError):
    """A TLV value that cannot be encoded."""


def tlv(rid: int, value: bytes) -> bytes:
    """One OMA-TLV "Resource with Value" (Core §7.4.3): type byte 0b11, identifier, length.

    Raises :class:`BootstrapError` for a resource id above 65535 or a value over 16 MiB.
    """
    if not 0 <= rid <= 0xFFFF or len(value) >= 1 << 24:
        raise BootstrapError(f"TLV resource {rid} / {len(value)} B is outside the TLV ranges")
    kind = 0b11000000 | (0b00100000 if rid > 0xFF else 0)
    ident = rid.to_bytes(2 if rid > 0xFF else 1, "big")
    n = len(value)
    if n < 8:
        return bytes([kind | n]) + ident + value
    width = 1 if n <= 0xFF else 2 if n <= 0xFFFF else 3
    return bytes([kind | (width << 3)]) + ident + n.to_bytes(width, "big") + value


def _int(v: int) -> bytes:
    """A TLV Integer: the shortest of 1, 2, 4, 8 bytes, signed big-endian (Core §7.4.3)."""
    for fmt in (">b", ">h", ">i", ">q"):
        try:
            return struct.pack(fmt, v)
        except struct.error:
            continue
    raise BootstrapError(f"integer {v} does not fit a TLV Integer")


def security_instance(endpoint: str) -> bytes:
    """TLV of the LwM2M Server's Security instance (/0/1): URI, not a Bootstrap-Server, PSK
    mode (0), PSK identity = endpoint name, the key, short server id (OMA object 0)."""
    return b"".join(
        (
            tlv(0, SERVER_URI.encode()),
            tlv(1, b"\x00"),
            tlv(2, _int(0)),
            tlv(3, endpoint.encode()),
            tlv(5, b"\xa5" * PSK_KEY_B),
            tlv(10, _int(SHORT_SERVER_ID)),
        )
    )


def server_instance(lifetime_s: int) -> bytes:
    """TLV of the Server instance (/1/0): short server id, lifetime (s), notification storing,
    binding ``UQ`` (OMA object 1)."""
    return b"".join(
        (
            tlv(0, _int(SHORT_SERVER_ID)),
            tlv(1, _int(lifetime_s)),
            tlv(6, b"\x01"),
            tlv(7, b"UQ"),
        )
    )


@dataclass(frozen=True)
class BootstrapOp:
    """One Bootstrap-Server request: ``op`` (``delete``, ``write``, ``discover``,
    ``bootstrap_finish``), its ``path``, and the CoAP bytes down (request) and up (the
    module's piggy-backed response)."""

    op: str
    path: str
    down_b: int
    up_b: int


@lru_cache(maxsize=64)
def request_size(endpoint: str = coap.DEFAULT_ENDPOINT) -> int:
    """Bytes of the Bootstrap-Request ``POST /bs?ep=...`` (CoAP CON, no payload)."""
    return coap.message_size(Code.POST, uri_path=("bs",), uri_query=(f"ep={endpoint}",))


@lru_cache(maxsize=64)
def operations(endpoint: str = coap.DEFAULT_ENDPOINT, lifetime_s: int = 86400) -> tuple:
    """The Bootstrap-Server's requests after a Bootstrap-Request, in order (module docstring):
    Delete ``/``, Write ``/0/1``, Write ``/1/0``, Bootstrap-Finish."""
    ack = coap.changed_ack_size()
    deleted = coap.message_size(Code.DELETED, confirmable=False)
    sec, srv = security_instance(endpoint), server_instance(lifetime_s)
    return (
        BootstrapOp("delete", "/", coap.message_size(Code.DELETE), deleted),
        BootstrapOp(
            "write",
            "/0/1",
            coap.message_size(
                Code.PUT, uri_path=("0", "1"), content_format=TLV_FORMAT, payload_len=len(sec)
            ),
            ack,
        ),
        BootstrapOp(
            "write",
            "/1/0",
            coap.message_size(
                Code.PUT, uri_path=("1", "0"), content_format=TLV_FORMAT, payload_len=len(srv)
            ),
            ack,
        ),
        BootstrapOp("bootstrap_finish", "/bs", coap.message_size(Code.POST, uri_path=("bs",)), ack),
    )


class BootstrapServer(Outages):
    """The world-side LwM2M Bootstrap-Server: it answers unless it is in one of its
    ``outages`` (:class:`.server.Outages`; raises :class:`.server.OutageError` for a bad
    window). ``requests`` counts the Bootstrap-Requests it acknowledged, ``finished`` the
    bootstraps whose Bootstrap-Finish the module acknowledged.
    """

    def __init__(self, outages: list[tuple[float, float]] | None = None) -> None:
        super().__init__(outages)
        self.requests = 0
        self.finished = 0
