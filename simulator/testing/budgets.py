"""Timing budgets of a rig applied to the suite's limits: tolerance and adapter latency.

A QA lab measures on the *bench* side of an M-Bus slave adapter, not on the wire the device
under test (DUT) sees. With ``[timing] adapter_latency_ms = L`` (docs/rigs.md):

* a **request** reaches the bench 0..L *after* it was on the wire, so the bench's time of a
  request is the wire time plus 0..L (the bridge times it from the bytes' arrival,
  :func:`simulator.bridge.bridge.wire_start`);
* a **reply** leaves the bench at its trace time (the bridge's writer never writes early) and
  reaches the wire 0..L *later*, so the bench's time of a reply is the wire time minus 0..L.

A time span the bench measures from one event to the next therefore differs from the same
span on the wire by ``offset(second) - offset(first)``, with offset(request) in [0, L] and
offset(reply) in [-L, 0]:

=================== ===================== ================================================
span                bench minus wire      what it means for a limit on the wire
=================== ===================== ================================================
reply -> request    0 .. +2L              looks longer, never shorter: a lower limit needs
                                          no relaxation (a DUT short by up to 2L is not
                                          seen: a blind spot, not a false failure)
request -> request  -L .. +L              may look shorter by L: a lower limit is relaxed
                                          by L
request -> reply    -2L .. 0              the DUT sees a reply up to 2L later than the
                                          bench sent it (used to place late replies)
=================== ===================== ================================================

A lower limit is relaxed by how much shorter the span can look, plus ``tolerance_ms``; it is
never tightened. The rule per idle time of the suite is :data:`GAP_SPANS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Endpoint = Literal["request", "reply"]

#: Which events bound each idle gap of :func:`simulator.testing.observe.idle_gaps`
#: (seed 002 §6.25.2 Table 7 as the master model reads them).
GAP_SPANS: dict[str, tuple[Endpoint, Endpoint]] = {
    "request_idle": ("reply", "request"),  # reply's last byte -> next request
    "collision_idle": ("reply", "request"),  # garbled reception's end -> next request
    "timeout+request_idle": ("request", "request"),  # unanswered request's end -> next request
    "init_idle": ("request", "request"),  # SND_NKE's end -> next request
}

#: The rig setting(s) (``[dut.mbus]`` ``*_ms``) whose sum is each idle gap's nominal minimum.
GAP_SETTINGS: dict[str, tuple[str, ...]] = {
    "request_idle": ("request_idle",),
    "collision_idle": ("collision_idle",),
    "timeout+request_idle": ("response_timeout", "request_idle"),
    "init_idle": ("init_idle",),
}

_OFFSET: dict[Endpoint, tuple[int, int]] = {"request": (0, 1), "reply": (-1, 0)}


def span_error(first: Endpoint, second: Endpoint, latency_s: float) -> tuple[float, float]:
    """How much a span from ``first`` to ``second`` can look ``(shorter, longer)`` on the
    bench than on the wire, in s, for an adapter latency of ``latency_s`` s (module doc)."""
    lo = _OFFSET[second][0] - _OFFSET[first][1]
    hi = _OFFSET[second][1] - _OFFSET[first][0]
    return max(0.0, -lo * latency_s), max(0.0, hi * latency_s)


@dataclass(frozen=True)
class Budget:
    """A lower limit on the wire turned into the lower limit the bench checks (all in s).

    ``low = nominal_s - tolerance_s - latency_s``, where ``latency_s`` is the part of the
    adapter latency that can make the span look shorter (0, L or 2L; :func:`span_error`).
    """

    rule: str
    span: str
    nominal_s: float
    tolerance_s: float
    adapter_latency_s: float
    latency_s: float

    @property
    def low(self) -> float:
        return self.nominal_s - self.tolerance_s - self.latency_s

    def to_json(self) -> dict[str, Any]:
        """Recorded with the measurement (``measure(..., budget=...)``)."""
        return {
            "rule": self.rule,
            "span": self.span,
            "nominal_s": self.nominal_s,
            "tolerance_s": self.tolerance_s,
            "adapter_latency_s": self.adapter_latency_s,
            "latency_relaxation_s": self.latency_s,
        }


def gap_budget(rig: Any, rule: str) -> Budget:
    """The budget of the idle gap ``rule`` (a key of :data:`GAP_SPANS`) on ``rig``.

    Raises ``KeyError`` for an unknown rule. The adapter latency applies on every rig as the
    rig states it (``rigs/sim.toml`` has 0: virtual time has no adapter).
    """
    first, second = GAP_SPANS[rule]
    latency = rig.timing.adapter_latency_ms / 1000.0
    shorter, _ = span_error(first, second, latency)
    return Budget(
        rule=rule,
        span=f"{first} -> {second}",
        nominal_s=sum(rig.dut.mbus.seconds(s) for s in GAP_SETTINGS[rule]),
        tolerance_s=rig.timing.tolerance_ms / 1000.0,
        adapter_latency_s=latency,
        latency_s=shorter,
    )


def late_reply_delay(rig: Any, fraction: float = 0.8) -> tuple[float, float]:
    """Bench-side delay (s) for a reply that must reach the DUT *inside* its response timeout,
    and the latest the DUT can see it (s after its request, on the wire).

    The wire adds up to 2L to a request -> reply span (module doc), and the tolerance is kept
    free as well: ``delay = min(fraction x timeout, timeout - 2L - tolerance)``. Raises
    ``ValueError`` when the budgets leave no room (``delay <= 0``).
    """
    timeout = rig.dut.mbus.seconds("response_timeout")
    latency = rig.timing.adapter_latency_ms / 1000.0
    # the bench's request -> reply span looks shorter than the wire's by up to this much
    longer, _ = span_error("request", "reply", latency)
    tol = rig.timing.tolerance_ms / 1000.0
    delay = min(fraction * timeout, timeout - longer - tol)
    if delay <= 0:
        raise ValueError(
            f"response timeout {timeout * 1000:g} ms leaves no room for a reply after adapter "
            f"latency 2 x {latency * 1000:g} ms and tolerance {tol * 1000:g} ms"
        )
    return delay, delay + longer
