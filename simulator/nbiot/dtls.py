"""DTLS 1.2 PSK handshakes over NB-IoT (RFC 6347; sizes measured with mbedtls, RADIO §4.1).

* Full handshake with cookie: 6 flights / 6 datagrams, 3 round trips: ClientHello (105 B),
  HelloVerifyRequest (60), ClientHello + cookie (137), ServerHello + ServerHelloDone (131),
  ClientKeyExchange + CCS + Finished (104), CCS + Finished (67); 604 B in all
  (python-mbedtls 2.10.1, TLS-PSK-WITH-AES-128-CCM-8; RADIO-NBIOT.md §4.1 [C]).
* Session resumption (abbreviated handshake): 3 flights / 1.5 round trips: ClientHello with
  the session id, ServerHello + CCS + Finished, CCS + Finished; sizes are a bench estimate
  (about 350 B, RADIO-NBIOT.md §4.1 [C-estimate]).
* Connection ID (RFC 9146): the session survives the NAT rebinding after PSM, so no handshake
  is needed when the module wakes; without it the module resumes the session.
* Retransmission (RFC 6347 §4.2.4.1): a flight is resent when its timer expires; the timer
  starts at 1 s and doubles up to the "DTLS max timeout" (seed 001 §7.5, default 90 s), which is
  the last timeout used, after which the handshake fails (mbedtls semantics:
  1, 2, 4, ..., 64, 90 s). The timer resets when a flight is answered.
* Application records add 29 B (13 B header + 8 B explicit nonce + 8 B CCM-8 tag).
"""

from __future__ import annotations

from dataclasses import dataclass

RECORD_OVERHEAD_B = 29
#: (direction, bytes) per datagram; "up" = module -> server.
FULL_HANDSHAKE: tuple[tuple[str, int], ...] = (
    ("up", 105),
    ("down", 60),
    ("up", 137),
    ("down", 131),
    ("up", 104),
    ("down", 67),
)
RESUMPTION: tuple[tuple[str, int], ...] = (("up", 137), ("down", 148), ("up", 67))


@dataclass(frozen=True)
class DtlsTiming:
    """Handshake retransmission timer bounds (s)."""

    min_timeout_s: float = 1.0
    max_timeout_s: float = 90.0

    def timeouts(self) -> list[float]:
        """Successive flight timeouts: doubling from the minimum, the last one the maximum."""
        out: list[float] = []
        t = self.min_timeout_s
        while True:
            out.append(t)
            if t >= self.max_timeout_s:
                return out
            t = min(2 * t, self.max_timeout_s)


def flights(kind: str) -> list[tuple[tuple[str, int], ...]]:
    """The handshake as (client flight, server answer) pairs; the last has no answer needed.

    ``kind`` is ``"full"`` or ``"resume"``. Each pair is a tuple of datagrams.
    """
    seq = {"full": FULL_HANDSHAKE, "resume": RESUMPTION}.get(kind)
    if seq is None:
        raise ValueError(f"unknown DTLS handshake kind {kind!r}; 'full' or 'resume'")
    return [seq[i : i + 2] for i in range(0, len(seq), 2)]


def handshake_bytes(kind: str) -> int:
    return sum(size for pair in flights(kind) for _, size in pair)
