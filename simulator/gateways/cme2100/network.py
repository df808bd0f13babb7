"""The mobile network between the bench's head-end and the CMe2100: latency, loss, late and
duplicate delivery of each SMS (settings: :class:`~.settings.SmsNetworkSettings`).

Each SMS, either way, gets its latency from the stream ``sms/latency`` (``[gateway]
sms_latency_s``, as before). With ``[sms_network]`` probabilities above zero, the stream
``sms/network`` then decides, in this order: lost (no copy arrives), held by the SMS centre
(``late_s`` more), delivered twice (a second copy ``duplicate_after_s`` after the first).
Every outcome but a plain delivery is traced as ``sms_network`` (source ``network``). With
all probabilities zero (the default) nothing is drawn from ``sms/network`` and nothing is
traced, so runs stay byte-identical to runs without the setting.
"""

from __future__ import annotations

from simulator.core import events as ev
from simulator.core.world import World
from simulator.gateways.cme2100.settings import SmsNetworkSettings

SOURCE = "network"


class SmsNetwork:
    """Routes SMS: :meth:`route` gives the delays of the copies that arrive.

    ``latency``: (low, high) in s, uniform per SMS (one fixed value when low == high).
    """

    def __init__(
        self,
        world: World,
        latency: tuple[float, float],
        settings: SmsNetworkSettings | None = None,
    ) -> None:
        self.world = world
        self.latency = latency
        self.settings = settings or SmsNetworkSettings()
        self._latency_rng = world.rng("sms/latency")
        self._rng = world.rng("sms/network") if self.settings.active else None
        self.counts = {
            d: {"lost": 0, "late": 0, "duplicated": 0} for d in ("to_gateway", "from_gateway")
        }

    def _latency(self) -> float:
        lo, hi = self.latency
        return lo if lo == hi else self._latency_rng.uniform(lo, hi)

    def route(self, direction: str, text: str) -> list[float]:
        """Delays in s (from now) of each copy of ``text`` that arrives; ``[]`` = lost.

        ``direction`` is ``to_gateway`` or ``from_gateway``.
        """
        rng, s = self._rng, self.settings
        if rng is None:
            return [self._latency()]
        if s.loss_probability and rng.random() < s.loss_probability:
            self._note(direction, text, "lost", [])
            return []
        first = self._latency()
        fate = []
        if s.late_probability and rng.random() < s.late_probability:
            first += rng.uniform(*s.late_s)
            fate.append("late")
        delays = [first]
        if s.duplicate_probability and rng.random() < s.duplicate_probability:
            delays.append(first + rng.uniform(*s.duplicate_after_s))
            fate.append("duplicated")
        if fate:
            self._note(direction, text, "+".join(fate), delays)
        return delays

    def _note(self, direction: str, text: str, fate: str, delays: list[float]) -> None:
        for part in fate.split("+"):
            self.counts[direction][part] += 1
        self.world.emit(
            ev.SmsNetwork(
                source=SOURCE,
                direction=direction,
                text=text,
                fate=fate,
                delays_s=[round(d, 6) for d in delays],
            )
        )
