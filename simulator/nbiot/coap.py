"""CoAP confirmable exchanges as a CMi6140 uses them for LwM2M (RFC 7252, encoded by aiocoap).

* Retransmission (RFC 7252 §4.2, §4.8): the first timeout is uniform in
  [ACK_TIMEOUT, ACK_TIMEOUT x ACK_RANDOM_FACTOR] = [2, 3] s and doubles on each of the
  MAX_RETRANSMIT = 4 retransmissions, so sends fall at 0, [2,3], [6,9], [14,21], [30,45] s and the
  sender gives up at [62, 93] s (MAX_TRANSMIT_WAIT 93 s). RADIO-NBIOT.md §4.2 and §8 anchor 1.
* LwM2M operations (OMA LwM2M 1.1 transport; RADIO-NBIOT.md §4.3): Register ``POST /rd?ep=..
  &lt=..&lwm2m=1.1&b=UQ`` with a link-format body -> 2.01 Created + Location-Path; Update
  ``POST /rd/{loc}`` -> 2.04; Send ``POST /dp`` with SenML CBOR (Content-Format 112) -> 2.04.
  Message sizes are those of the real encoding by ``aiocoap`` (4-byte token).
"""

from __future__ import annotations

import random
import warnings
from dataclasses import dataclass
from functools import lru_cache

import aiocoap
from aiocoap.numbers.codes import Code

#: RFC 7252 §4.8 defaults.
ACK_TIMEOUT_S = 2.0
ACK_RANDOM_FACTOR = 1.5
MAX_RETRANSMIT = 4
#: RFC 7252 §4.8.2 derived: MAX_TRANSMIT_WAIT = ACK_TIMEOUT * (2**(MAX_RETRANSMIT+1) - 1) * factor.
MAX_TRANSMIT_WAIT_S = 93.0


@dataclass(frozen=True)
class CoapTiming:
    """Transmission parameters (RFC 7252 §4.8); the module's configuration may change them."""

    ack_timeout_s: float = ACK_TIMEOUT_S
    ack_random_factor: float = ACK_RANDOM_FACTOR
    max_retransmit: int = MAX_RETRANSMIT

    def timeouts(self, rng: random.Random) -> list[float]:
        """The MAX_RETRANSMIT + 1 successive timeouts (s): initial random, then doubling."""
        first = rng.uniform(self.ack_timeout_s, self.ack_timeout_s * self.ack_random_factor)
        return [first * d for d in _doublings(self.max_retransmit + 1)]

    @property
    def max_transmit_wait_s(self) -> float:
        return self.ack_timeout_s * (2 ** (self.max_retransmit + 1) - 1) * self.ack_random_factor


@lru_cache(maxsize=16)
def _doublings(n: int) -> tuple[int, ...]:
    """1, 2, 4, ... 2**(n-1): the factors of the successive timeouts (the same ints as 2**k)."""
    return tuple(2**k for k in range(n))


#: Endpoint Client Name of the example messages (an IMEI URN, OMA LwM2M Core §7.4.1).
DEFAULT_ENDPOINT = "urn:imei:359999000000001"
LINK_FORMAT = b"</1/0>,</3/0>,</4/0>,</10/0>,</33906/0>,</33907/0>,</33908/0>,</33909/0>"


def _message(code: Code, *, confirmable: bool, payload_len: int = 0, **options) -> bytes:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        msg = aiocoap.Message(code=code, payload=b"\0" * payload_len, **options)
        msg.mtype = aiocoap.CON if confirmable else aiocoap.ACK
        msg.mid = 0x1234
        msg.token = b"\x01\x02\x03\x04"
        return msg.encode()


def message_size(code: Code, *, confirmable: bool = True, payload_len: int = 0, **options) -> int:
    """Bytes of a CoAP message (CON request, or with ``confirmable`` False a piggy-backed ACK)
    with ``payload_len`` payload bytes and aiocoap ``options`` (``uri_path``, ...)."""
    return len(_message(code, confirmable=confirmable, payload_len=payload_len, **options))


@lru_cache(maxsize=256)
def register_size(endpoint: str = DEFAULT_ENDPOINT, lifetime_s: int = 86400) -> int:
    """Bytes of the LwM2M Register request (CoAP)."""
    return len(
        _message(
            Code.POST,
            confirmable=True,
            payload_len=len(LINK_FORMAT),
            uri_path=("rd",),
            content_format=40,
            uri_query=(f"ep={endpoint}", f"lt={lifetime_s}", "lwm2m=1.1", "b=UQ"),
        )
    )


@lru_cache(maxsize=8)
def created_ack_size() -> int:
    """Bytes of the piggy-backed 2.01 Created ACK with Location-Path /rd/5a3f."""
    return len(_message(Code.CREATED, confirmable=False, location_path=("rd", "5a3f")))


@lru_cache(maxsize=8)
def update_size() -> int:
    """Bytes of the LwM2M registration Update request (no body)."""
    return len(_message(Code.POST, confirmable=True, uri_path=("rd", "5a3f")))


@lru_cache(maxsize=1024)
def send_size(payload_len: int, content_format: int = 112) -> int:
    """Bytes of the LwM2M Send request ``POST /dp`` carrying ``payload_len`` bytes."""
    return len(
        _message(
            Code.POST,
            confirmable=True,
            payload_len=payload_len,
            uri_path=("dp",),
            content_format=content_format,
        )
    )


@lru_cache(maxsize=8)
def changed_ack_size() -> int:
    """Bytes of a piggy-backed 2.04 Changed ACK."""
    return len(_message(Code.CHANGED, confirmable=False))
