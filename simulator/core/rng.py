"""Seeded random streams, one per named consumer.

Every model draws from its own stream, named after what it is (``"slave/00000001/delay"``),
so adding a model or a draw in one place does not shift the numbers another model sees. The
derivation uses SHA-256 of ``"<seed>/<name>"`` (never Python's salted ``hash()``), so a stream
is the same on every machine and every run.
"""

from __future__ import annotations

import hashlib
import random

import numpy as np


def _derive(seed: int, name: str) -> int:
    digest = hashlib.sha256(f"{int(seed)}/{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def stream(seed: int, name: str) -> random.Random:
    """Return a ``random.Random`` seeded deterministically from ``seed`` and ``name``."""
    return random.Random(_derive(seed, name))


def numpy_stream(seed: int, name: str) -> np.random.Generator:
    """Return a NumPy ``Generator`` (PCG64) seeded deterministically from ``seed`` and ``name``."""
    return np.random.default_rng(_derive(seed, name))
