"""The CMe3100 push engine: one SimPy process per report slot (seed 002 §6.9, §6.32).

At each firing of its schedule a slot builds its report from the value database through its
Value Period ledger (:mod:`.value_period`), renders it (:mod:`.reports`) and hands the bytes
to the sink of its protocol (:mod:`simulator.sinks`: in-world by default, a real transport
when the run asks). A failed attempt is retried as Table 9 says (:mod:`.retries`): the retry
rebuilds the report (values read since the first attempt ride along) and is sent
``spacing_s`` after the failed attempt ended. After the last attempt the ledger settles: a
delivered report marks its values delivered; an undelivered one leaves them for the next
report, so nothing is lost until the Value Period drops it, and then it is named
(``values_lost`` event, the gateway log, the run summary).

Where the manual is silent (docs/cme3100.md "Push reports"):

- an attempt that is answered (any status) or refused takes no world time; one that times
  out takes the protocol's timeout (-1, "the server decides": :data:`SERVER_TIMEOUT_S`);
- a firing that falls while the slot is still retrying an earlier report is skipped (the
  next report carries those values);
- a preset schedule waits for a readout round in progress (002 §6.9.1); a custom cron does
  not, and the round's values go with the next report;
- an e-mail report is delivered when every recipient's server accepted it.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from simulator.core import events as ev
from simulator.gateways.cme3100.clock import GatewayClock, Ticker
from simulator.gateways.cme3100.gateway_settings import (
    ReportSlot,
    parse_schedule,
    parse_value_period,
)
from simulator.gateways.cme3100.readout import Readout
from simulator.gateways.cme3100.reports.envelope import ftp_report, http_report, mail_reports
from simulator.gateways.cme3100.reports.identity import GatewayIdentity
from simulator.gateways.cme3100.reports.render import Rendered, render
from simulator.gateways.cme3100.retries import RetryPlan, retry_plan, schedule_period_s
from simulator.gateways.cme3100.value_period import DeliveryLedger, Selection
from simulator.sinks.base import Delivery, Report, Sink

if TYPE_CHECKING:
    from simulator.core.world import World

#: How long an attempt to a server that "decides" its own timeout (-1) hangs (s, bench).
SERVER_TIMEOUT_S = 300.0


def envelope(
    rendered: Rendered, slot: ReportSlot, identity: GatewayIdentity, sequence: int
) -> list[Report]:
    """What goes on the wire for one report file of ``slot`` (HTTP POST, FTP file, or one
    e-mail per recipient)."""
    if slot.protocol == "http":
        return [
            http_report(rendered, identity, slot.target, user=slot.user, password=slot.password)
        ]
    if slot.protocol == "ftp":
        return [ftp_report(rendered, slot.target)]
    to = [a.strip() for a in slot.target.split(",") if a.strip()]
    return mail_reports(rendered, identity, to=to, sequence=sequence)


@dataclass
class SlotStats:
    """What one slot did: attempts, retries and their start times (world s)."""

    reports: int = 0
    delivered: int = 0
    failed: int = 0
    attempts: int = 0
    retries: list[float] = field(default_factory=list)
    skipped_firings: int = 0
    bytes: int = 0


class PushSlot:
    """Report slot ``index`` (1-5) of a gateway: ``slot`` its settings, ``sink`` where its
    protocol's reports go, ``readouts()`` the value database as ``{meter: [Readout]}`` in
    read order, ``round_done()`` an event that fires when no readout round is running."""

    def __init__(
        self,
        world: World,
        index: int,
        slot: ReportSlot,
        sink: Sink,
        identity: GatewayIdentity,
        *,
        readouts: Callable[[], dict[str, list[Readout]]],
        round_done: Callable[[], Any],
        timeout_s: float,
        plan: Callable[[float], RetryPlan],
        source: str,
        on_result: Callable[[float, int, bool, str], None] = lambda *a: None,
        meters: Callable[[], list] = list,
        clock: GatewayClock | None = None,
    ) -> None:
        self.world, self.index, self.slot, self.sink = world, index, slot, sink
        self.identity = identity
        self.readouts, self.round_done = readouts, round_done
        self.timeout_s = SERVER_TIMEOUT_S if timeout_s < 0 else timeout_s
        self.schedule, self.synced = parse_schedule(slot.schedule, world.rng(f"{source}/cron"))
        self.period_s = schedule_period_s(self.schedule, world.clock(0).replace(tzinfo=None))
        self.plan = plan(self.period_s)
        self.ledger = DeliveryLedger(parse_value_period(slot.value_period), slot.value_interval)
        self.source = source
        self.on_result = on_result
        self.meters = meters  # the meter list with states, for x007 status reports
        #: the gateway's clock: the schedule fires on it and reports carry its time
        self.clock = clock if clock is not None else GatewayClock(world)
        self.ticker = Ticker(self.clock, self.schedule)
        self.stats = SlotStats()
        self._sequence = 0

    def start(self) -> PushSlot:
        self.world.process(self._loop())
        return self

    def _local(self) -> datetime:
        return self.clock.local()

    def _loop(self) -> Generator:
        while True:
            nxt = yield from self.ticker.next()
            if self.synced:
                yield self.round_done()
            yield from self.send()
            # firings that passed while waiting or retrying are skipped: the next report
            # carries their values
            self.stats.skipped_firings += self.ticker.passed(nxt)

    def send(self) -> Generator:
        """One report with its retries (a generator for ``world.process``); returns True
        when it was delivered."""
        world, stats = self.world, self.stats
        stats.reports += 1
        ok = False
        selection: Selection | None = None
        for attempt in range(self.plan.attempts):
            if attempt:
                stats.retries.append(world.now)
            selection = self.ledger.select(self.readouts(), self._local())
            ok, duration = yield from self._attempt(attempt, selection)
            if ok or attempt == self.plan.count:
                break
            yield world.timeout(self.plan.spacing_s)
        assert selection is not None
        for meter, times in _by_meter(selection.lost).items():
            world.emit(
                ev.ValuesLost(
                    source=self.source,
                    report=self.slot.name,
                    meter=meter,
                    read_at=[t.isoformat() for t in times],
                )
            )
        self.ledger.settle(selection, ok)
        stats.delivered += ok
        stats.failed += not ok
        self.on_result(world.now, self.index, ok, self.slot.name)
        return ok

    def _attempt(self, attempt: int, selection: Selection) -> Generator:
        world, stats = self.world, self.stats
        stats.attempts += 1
        files = render(
            self.slot.template,
            self.identity,
            self._local(),
            readouts=selection.values,
            meters=self.meters() if self.slot.template % 1000 == 7 else (),
        )
        deliveries: list[Delivery] = []
        sent = 0
        for rendered in files:
            self._sequence += 1
            for report in envelope(rendered, self.slot, self.identity, self._sequence):
                deliveries.append(self.sink.deliver(report))
                sent += len(report.body)
        timed_out = any(d.reason == "timeout" for d in deliveries)
        duration = self.timeout_s if timed_out else 0.0
        ok = all(d.ok for d in deliveries)
        failed = next((d for d in deliveries if not d.ok), None)
        status = (failed or (deliveries[-1] if deliveries else Delivery(True))).status
        world.emit(
            ev.PushAttempt(
                source=self.source,
                report=self.slot.name,
                protocol=self.slot.protocol,
                template=self.slot.template,
                attempt=attempt,
                ok=ok,
                status=status,
                reason="" if ok else (failed.reason if failed else ""),
                values=len(selection.values),
                resent=len(selection.resent),
                bytes=sent,
                file=files[0].name if files else "",
                duration_s=duration,
                new_values=_new_values(selection),
            )
        )
        if ok:
            stats.bytes += sent
        if duration:
            yield world.timeout(duration)
        return ok, duration


def _new_values(selection: Selection) -> dict[str, list]:
    """Per meter, ``[first, last, count]`` of the values carried for the first time (read
    times ISO 8601): the trace's evidence for the at-most-once check (issue 14)."""
    resent = {r.key for r in selection.resent}
    out: dict[str, list] = {}
    for r in selection.values:  # by meter, then read time
        if resent and r.key in resent:
            continue
        span = out.get(r.meter)
        iso = r.read_at.isoformat()
        if span is None:
            out[r.meter] = [iso, iso, 1]
        else:
            span[1] = iso
            span[2] += 1
    return out


def _by_meter(readouts: tuple[Readout, ...]) -> dict[str, list[datetime]]:
    out: dict[str, list[datetime]] = {}
    for r in readouts:
        out.setdefault(r.meter, []).append(r.read_at)
    return out


def slot_plan(
    adaptive: bool, job_retries: int, job_offset_s: float
) -> Callable[[float], RetryPlan]:
    """The retry rule of every slot of one gateway (002 §6.32.1, §6.33)."""
    from simulator.gateways.cme3100.retries import JobSettings

    job = JobSettings(scheduled_retries=job_retries, scheduled_offset_s=job_offset_s)
    return lambda period_s: retry_plan(period_s, adaptive=adaptive, job=job)
