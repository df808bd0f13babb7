"""Counter-based random draws of the radio models (kernel and event model draw the same numbers).

The vectorised kernel draws all numbers at once, the event model one telegram at a time, so
every random quantity is a pure function of a stream key and the indices of what it is drawn
for: a SplitMix64 hash of the key (SHA-256 of ``"<seed>/<stream name>"``, as
:meth:`World.rng` derives its streams) and two counters ``a`` and ``b``:

``u(key, a, b) = mix(mix(key ^ a) ^ (b * M2 + C)) >> 11 / 2**53``   (U[0, 1))

with ``mix`` the SplitMix64 finaliser. Normal draws are Box-Muller on ``u(key, a, 2b)`` (radius)
and ``u(key, a, 2b + 1)`` (angle). :class:`FadingDraws` computes the same fading numbers with
the inner ``mix(key ^ a)`` done once per meter and lets the kernel skip the angle draw of a
packet that cannot rise above the noise floor whatever its angle.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np

#: Receivers per scenario the fading counter can address (receiver index < this).
MAX_RECEIVERS = 1024

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_C = np.uint64(0x632BE59BD9B4E019)
_TWO53 = float(2**53)
#: ``2 * MAX_RECEIVERS * M2 mod 2**64``: one step of the transmission number in the counter.
_SEQ_STEP = np.uint64((2 * MAX_RECEIVERS * int(_M2)) & ((1 << 64) - 1))
#: Angle draws (53-bit) in [LO, HI) have cos(2 pi u2) <= cos(0.52 pi) < 0.
_ANGLE_LO = np.uint64(int(0.26 * 2**53))
_ANGLE_HI = np.uint64(int(0.74 * 2**53))


def stream_key(seed: int, name: str) -> int:
    """64-bit key of the counter stream ``name`` under ``seed`` (SHA-256, like World.rng)."""
    return int.from_bytes(hashlib.sha256(f"{int(seed)}/{name}".encode()).digest()[:8], "big")


def _mix(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser on a uint64 array (wrap-around arithmetic intended)."""
    x = x + _GOLDEN
    x = (x ^ (x >> np.uint64(30))) * _M1
    x = (x ^ (x >> np.uint64(27))) * _M2
    return x ^ (x >> np.uint64(31))


def _mix_inplace(x: np.ndarray, tmp: np.ndarray) -> np.ndarray:
    """:func:`_mix` on a uint64 array, in place (``tmp``: scratch of the same shape)."""
    x += _GOLDEN
    np.right_shift(x, np.uint64(30), out=tmp)
    x ^= tmp
    x *= _M1
    np.right_shift(x, np.uint64(27), out=tmp)
    x ^= tmp
    x *= _M2
    np.right_shift(x, np.uint64(31), out=tmp)
    x ^= tmp
    return x


def counter_inner(key: int, a: np.ndarray | int) -> np.ndarray:
    """The ``a`` half of :func:`counter_uniform`: ``mix(key ^ a)`` (uint64), to reuse for
    many ``b`` (e.g. once per meter for all its transmissions)."""
    with np.errstate(over="ignore"):
        return _mix(np.uint64(key) ^ np.asarray(a, dtype=np.uint64))


def uniform_from_inner(inner: np.ndarray, b: np.ndarray | int) -> np.ndarray:
    """:func:`counter_uniform` given ``counter_inner(key, a)``, bit for bit."""
    b = np.asarray(b, dtype=np.uint64)
    with np.errstate(over="ignore"):
        x = np.bitwise_xor(inner, b * _M2 + _C)
        if x.ndim:  # a fresh array: mixed in place, without temporaries
            _mix_inplace(x, np.empty_like(x))
        else:  # one draw (the event model's send times): in-place ufuncs cost 3x here
            x = _mix(x)
    x >>= np.uint64(11)
    return x.astype(np.float64) / _TWO53


def counter_uniform(key: int, a: np.ndarray | int, b: np.ndarray | int) -> np.ndarray:
    """U[0, 1) draws, one per element of broadcast ``(a, b)`` (non-negative ints < 2**32)."""
    return uniform_from_inner(counter_inner(key, a), b)


def counter_normal(key: int, a: np.ndarray | int, b: np.ndarray | int) -> np.ndarray:
    """N(0, 1) draws (Box-Muller on two counter uniforms); ``b`` must be < 2**31."""
    b = np.asarray(b, dtype=np.uint64) * np.uint64(2)
    u1 = counter_uniform(key, a, b)
    u2 = counter_uniform(key, a, b + np.uint64(1))
    return np.sqrt(-2.0 * np.log1p(-u1)) * np.cos(2.0 * math.pi * u2)


class FadingDraws:
    """Per-packet fading (dB) of transmission ``seq`` of ``meter`` at receiver ``r``: the
    ``radio/fading`` stream, ``sigma_db * counter_normal(key, meter, seq * MAX_RECEIVERS + r)``,
    bit for bit, split in two steps so the kernel can stop after the first:

    :meth:`radius_bits` hashes the radius draw (53-bit integers ``u1 * 2**53``);
    :meth:`fading_db` finishes the packets that are still needed.
    """

    def __init__(self, seed: int, n_meters: int, sigma_db: float) -> None:
        self.h_meter = counter_inner(stream_key(seed, "radio/fading"), np.arange(n_meters))
        self.sigma_db = float(sigma_db)

    @staticmethod
    def seq_term(seq: np.ndarray) -> np.ndarray:
        """Per transmission: ``2 * seq * MAX_RECEIVERS * M2 + C`` (uint64, wraps)."""
        return np.asarray(seq, dtype=np.uint64) * _SEQ_STEP + _C

    @staticmethod
    def receiver_term(receiver: np.ndarray) -> np.ndarray:
        """Per receiver: ``2 * r * M2`` (uint64, wraps); ``(2b) M2 + C`` is the sum of both."""
        return np.asarray(receiver, dtype=np.uint64) * np.uint64(2) * _M2

    def radius_bits(
        self, h_meter: np.ndarray, seq_term: np.ndarray, receiver_term: np.ndarray
    ) -> np.ndarray:
        """53-bit radius draws (uint64) of packets given per packet ``h_meter[meter]``,
        :meth:`seq_term` and :meth:`receiver_term` (uint64, same shape; ``seq_term`` is
        overwritten and returned)."""
        x = seq_term
        x += receiver_term
        return self.radius_bits_of(h_meter, x, out=x)

    @staticmethod
    def radius_bits_of(
        h_meter: np.ndarray, term: np.ndarray, out: np.ndarray | None = None
    ) -> np.ndarray:
        """:meth:`radius_bits` given ``seq_term + receiver_term`` per packet (``term``, kept
        unless it is ``out``); written into ``out`` (default: a new array)."""
        x = np.bitwise_xor(term, h_meter, out=out)
        _mix_inplace(x, np.empty_like(x))
        x >>= np.uint64(11)
        return x

    def fading_db(
        self, bits: np.ndarray, meter: np.ndarray, seq_term: np.ndarray, receiver_term: np.ndarray
    ) -> np.ndarray:
        """Fading (dB) of packets whose :meth:`radius_bits` are ``bits``."""
        angle = self.angle_bits(self.h_meter[meter], seq_term + receiver_term)
        return self.fading_from_bits(bits, angle)

    @staticmethod
    def angle_bits(h_meter: np.ndarray, term: np.ndarray) -> np.ndarray:
        """53-bit angle draws (uint64, ``u2 * 2**53``) of packets given ``h_meter[meter]`` and
        ``seq_term + receiver_term`` per packet (``term`` is overwritten and returned)."""
        x = term
        x += _M2  # counter 2b + 1: the angle draw
        x ^= h_meter
        _mix_inplace(x, np.empty_like(x))
        x >>= np.uint64(11)
        return x

    def fading_from_bits(self, radius_bits: np.ndarray, angle_bits: np.ndarray) -> np.ndarray:
        """Fading (dB), ``sigma * sqrt(-2 ln(1 - u1)) * cos(2 pi u2)``, from the 53-bit draws
        of :meth:`radius_bits` and :meth:`angle_bits` (same operations, same order: bit for
        bit the fading of :func:`counter_normal`)."""
        u1 = radius_bits.astype(np.float64) / _TWO53
        u2 = angle_bits.astype(np.float64) / _TWO53
        return self.sigma_db * (np.sqrt(-2.0 * np.log1p(-u1)) * np.cos(2.0 * math.pi * u2))

    @staticmethod
    def cosine_negative(angle_bits: np.ndarray) -> np.ndarray:
        """Where the angle draw surely has ``cos(2 pi u2) < 0`` (``u2`` in [0.26, 0.74), a
        margin around the exact quarter points): such a packet's fading is not positive."""
        return angle_bits - _ANGLE_LO < _ANGLE_HI - _ANGLE_LO  # wraps below LO: one test

    def radius_bits_below(self, margin_db: np.ndarray) -> np.ndarray:
        """Per link: radius bits under which the fading is surely below ``margin_db`` (dB).

        A packet with ``radius_bits < result`` has ``sigma * sqrt(-2 ln(1 - u1)) <
        margin_db - 1e-6 dB`` whatever its angle, so its RSSI stays under a floor
        ``margin_db`` above the link's mean (the 1e-6 dB and 1e-12 relative slack cover
        rounding). 0 where ``margin_db`` is not positive (every packet counts).
        """
        m = np.asarray(margin_db, dtype=float) - 1e-6
        if self.sigma_db == 0.0:
            return np.where(m > 0, np.uint64(1 << 53), np.uint64(0)).astype(np.uint64)
        q = np.where(m > 0, m / self.sigma_db, 0.0)
        u = -np.expm1(-0.5 * q * q) * (1.0 - 1e-12)
        return np.floor(u * _TWO53).astype(np.uint64)
