"""The cell's NPRACH shared by a fleet: random-access preamble collisions per opportunity.

Model (a simple, documented one; cf. jjalcaraz-upct/nb-iot-environment
``system/access_procedure.py``, where each contending UE draws one preamble per NPRACH
occurrence and UEs with the same preamble collide):

* Each CE level has its own NPRACH resource: opportunities every ``nprach_period_s`` (the
  same periods as :class:`.network.NetworkParams`, aligned to world time 0) with
  ``nprach_subcarriers`` preamble subcarriers (TS 36.331 ``nprach-NumSubcarriers`` is one of
  12, 24, 36, 48; the bench default 24 / 12 / 12 shares the 48 subcarriers of one carrier).
* A UE sends its preamble at the next opportunity of its CE level on a subcarrier drawn
  uniformly (TS 36.321 §5.1.2: random preamble selection).
* Two UEs on the same subcarrier of the same opportunity collide. The eNB sees one preamble
  and answers one RAR; both send Msg3 on the same grant and contention resolution (Msg4) lets
  ONE of them through. The bench lets the UE that claimed the subcarrier first (in simulation
  order, which is deterministic) win, and every later claimant fails the attempt and backs
  off (``ra_backoff_s``) before the next opportunity. No capture across subcarriers and no
  collision with other cells.

The radio of each module computes its timeline ahead of time, so a claim is checked against
the claims made so far; claims far in the past are dropped to keep memory flat.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field


@dataclass
class NprachCell:
    """Claims of (CE level, opportunity, subcarrier); ``periods_s`` / ``subcarriers`` per CE
    level. ``collisions`` counts lost claims per CE level."""

    periods_s: tuple[float, float, float]
    subcarriers: tuple[int, int, int]
    collisions: list[int] = field(default_factory=lambda: [0, 0, 0])
    claims: list[int] = field(default_factory=lambda: [0, 0, 0])
    # opportunity k of level l -> bit mask of the subcarriers claimed: key 3 k + l
    _taken: dict[int, int] = field(default_factory=dict)
    _horizon: int = 0

    def __post_init__(self) -> None:
        if any(p <= 0 for p in self.periods_s) or any(s < 1 for s in self.subcarriers):
            raise ValueError(
                f"NPRACH periods {self.periods_s} s and subcarriers {self.subcarriers} "
                "must be positive"
            )

    def next_opportunity(self, level: int, t: float) -> float:
        """The first NPRACH opportunity of ``level`` at or after ``t`` (s)."""
        period = self.periods_s[level]
        return math.ceil(t / period - 1e-9) * period

    def claim(self, level: int, t_opportunity: float, subcarrier: int) -> bool:
        """Send a preamble on ``subcarrier`` at ``t_opportunity``; False if it collides with
        an earlier claim (this UE loses contention resolution)."""
        if not 0 <= subcarrier < self.subcarriers[level]:
            raise ValueError(
                f"subcarrier {subcarrier} is outside 0..{self.subcarriers[level] - 1} of CE{level}"
            )
        k = round(t_opportunity / self.periods_s[level])
        return self._claim(level, k, subcarrier, t_opportunity)

    def preamble(self, level: int, t: float, rng: random.Random) -> tuple[float, bool]:
        """A UE's preamble at the first opportunity of ``level`` at or after ``t`` (s) on a
        subcarrier drawn from ``rng`` (one ``rng.randrange(subcarriers[level])``): returns
        (the opportunity's time s, won). The same as :meth:`next_opportunity`, the draw and
        :meth:`claim`, in fewer steps (``tests/test_nbiot_nprach.py`` compares them)."""
        period = self.periods_s[level]
        k = math.ceil(t / period - 1e-9)
        # randrange(n) is _randbelow(n): getrandbits(n.bit_length()) until below n (CPython)
        n = self.subcarriers[level]
        bits = n.bit_length()
        sc = rng.getrandbits(bits)
        while sc >= n:
            sc = rng.getrandbits(bits)
        # claim() finds this k again: round(k * period / period) == k while k < 2**50
        t = k * period
        return t, self._claim(level, k, sc, t)

    def _claim(self, level: int, k: int, subcarrier: int, t_opportunity: float) -> bool:
        self.claims[level] += 1
        key = 3 * k + level
        taken = self._taken.get(key, 0)
        bit = 1 << subcarrier
        if taken & bit:
            self.collisions[level] += 1
            return False
        self._taken[key] = taken | bit
        if len(self._taken) >= 4096:
            self._prune(t_opportunity)
        return True

    def _prune(self, now: float) -> None:
        # Claims are made at most a few minutes ahead of the simulation clock; an hour back
        # is safely over.
        if len(self._taken) < 4096 or now < self._horizon:
            return
        self._horizon = int(now) + 600
        periods = self.periods_s
        self._taken = {
            key: v for key, v in self._taken.items() if key // 3 * periods[key % 3] >= now - 3600.0
        }
