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
* Retransmission: a flight is resent when its timer expires; the timer starts at the
  profile's initial value and doubles up to the "DTLS max timeout" (seed 001 §7.5, default
  90 s), which is the last timeout used, after which the handshake fails (mbedtls semantics:
  1, 2, 4, ..., 64, 90 s). The timer resets when a flight is answered. Profiles
  (:data:`TIMER_PROFILES`):

  - ``"rfc6347"``: initial timer 1 s (RFC 6347 §4.2.4.1, "initial timer value of 1 second",
    doubling "up to no less than 60 seconds");
  - ``"rfc7925"``: initial timer 9 s (RFC 7925 §11, the TLS/DTLS IoT profile: "an initial
    timer value of 9 seconds with exponential back off up to no less than 60 seconds", quoted
    in draft-ietf-uta-tls13-iot-profile §Timeouts), for links whose round trip exceeds 1 s.
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


#: Initial retransmission timer (s) per timer profile (see the module docstring).
TIMER_PROFILES: dict[str, float] = {"rfc6347": 1.0, "rfc7925": 9.0}


@dataclass(frozen=True)
class DtlsTiming:
    """Handshake retransmission timer bounds (s)."""

    min_timeout_s: float = 1.0
    max_timeout_s: float = 90.0

    @classmethod
    def for_profile(
        cls, profile: str, max_timeout_s: float, min_timeout_s: float | None = None
    ) -> DtlsTiming:
        """Timer of ``profile`` (``"rfc6347"`` or ``"rfc7925"``); ``min_timeout_s`` overrides
        the profile's initial timer. Raises ``ValueError`` for an unknown profile."""
        if profile not in TIMER_PROFILES:
            raise ValueError(
                f"unknown DTLS timer profile {profile!r}; one of {list(TIMER_PROFILES)}"
            )
        initial = TIMER_PROFILES[profile] if min_timeout_s is None else min_timeout_s
        return cls(initial, max_timeout_s)

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
