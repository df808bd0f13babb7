"""Receivers that fail on a schedule: outages are part of a scenario.

:class:`OutageSink` wraps an in-world sink (:class:`~simulator.sinks.base.WorldSink`) and
answers every report that arrives inside an :class:`Outage` window with that outage's fault
instead of accepting it. The clock is the world's (``clock() -> world s``), never the wall.

Faults and what the gateway sees (the status is the protocol's own reply code):

===========  =============  ==============  ============  =========================================
fault        HTTP           FTP             SMTP          meaning
===========  =============  ==============  ============  =========================================
refuse       None           None            None          connection refused (nothing listens)
5xx          503            451             451           server error, try later
timeout      None           None            None          server hangs past the gateway's timeout
auth         401            530             535           login failure (bad user or password)
disk_full    507            552             552           no space for the report
===========  =============  ==============  ============  =========================================

A ``timeout`` delivery has ``reason == "timeout"``; the push engine then counts the attempt
as lasting the protocol's timeout (seed 002 §6.32.4).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from pydantic import Field

from simulator.scenario import StrictModel
from simulator.sinks.base import Delivery, Report, WorldSink

FAULTS = ("refuse", "5xx", "timeout", "auth", "disk_full")
PROTOCOLS = ("http", "ftp", "mail")

#: The reply code of each fault per protocol (None: nothing answered), shared with the real
#: receivers (:mod:`.receiver`).
CODES: dict[str, dict[str, int | None]] = {
    "refuse": {"http": None, "ftp": None, "mail": None},
    "5xx": {"http": 503, "ftp": 451, "mail": 451},
    "timeout": {"http": None, "ftp": None, "mail": None},
    "auth": {"http": 401, "ftp": 530, "mail": 535},
    "disk_full": {"http": 507, "ftp": 552, "mail": 552},
}
#: The ``Delivery.reason`` of each fault.
REASONS = {
    "refuse": "connection refused",
    "5xx": "server error",
    "timeout": "timeout",
    "auth": "login failed",
    "disk_full": "disk full",
}


@dataclass(frozen=True)
class Outage:
    """The receiver fails with ``fault`` from ``start_s`` (inclusive) to ``end_s`` (exclusive),
    world seconds. Raises ``ValueError`` for an unknown fault or an empty window."""

    start_s: float
    end_s: float
    fault: str = "refuse"

    def __post_init__(self) -> None:
        if self.fault not in FAULTS:
            raise ValueError(f"outage fault {self.fault!r}: one of {FAULTS}")
        if not self.end_s > self.start_s:
            raise ValueError(f"outage window [{self.start_s}, {self.end_s}) s is empty")

    def covers(self, t: float) -> bool:
        return self.start_s <= t < self.end_s


class OutageModel(StrictModel):
    """A head-end outage as a scenario (``[[outages]]``) or a lab rig (``[[push.outages]]``)
    writes it: ``protocol``'s receiver fails with ``fault`` from ``start_h`` for ``hours``
    (h after the run's start)."""

    protocol: Literal["http", "ftp", "mail"]
    start_h: float = Field(ge=0)
    hours: float = Field(gt=0)
    fault: Literal[FAULTS] = "refuse"  # type: ignore[valid-type]

    def window(self, origin_s: float = 0.0) -> Outage:
        """The outage as an :class:`Outage` window, ``origin_s`` + start (s)."""
        start = origin_s + self.start_h * 3600.0
        return Outage(start, start + self.hours * 3600.0, self.fault)


@dataclass
class OutageSink:
    """An in-world receiver of ``protocol`` reports that fails inside ``outages`` (module
    doc). ``inner`` keeps what was accepted; ``deliveries`` every ``(t, report, delivery)``.
    ``keep = False`` (a long run): ``deliveries`` stays empty and so do ``inner``'s lists
    (:class:`~simulator.sinks.base.WorldSink` ``keep``); the accepted reports then reach only
    ``inner.on_receive``."""

    protocol: str
    clock: Callable[[], float]
    outages: Sequence[Outage] = ()
    inner: WorldSink = field(default_factory=WorldSink)
    deliveries: list[tuple[float, Report, Delivery]] = field(default_factory=list)
    keep: bool = True

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"sink protocol {self.protocol!r}: one of {PROTOCOLS}")
        if not self.keep:
            self.inner.keep = False

    def outage_at(self, t: float) -> Outage | None:
        return next((o for o in self.outages if o.covers(t)), None)

    def deliver(self, report: Report) -> Delivery:
        now = self.clock()
        outage = self.outage_at(now)
        if outage is None:
            delivery = self.inner.deliver(report)
        else:
            code = CODES[outage.fault][self.protocol]
            delivery = Delivery(False, code, reason=REASONS[outage.fault])
        if self.keep:
            self.deliveries.append((now, report, delivery))
        return delivery

    @property
    def received(self) -> list[Report]:
        """The reports accepted, in order."""
        return self.inner.received
