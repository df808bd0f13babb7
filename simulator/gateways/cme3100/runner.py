"""``meterbench run`` for ``kind = "cme3100"``: a CMe3100 reads its meters and pushes reports.

The run builds the wired segment exactly as ``kind = "mbus"`` does
(:func:`simulator.building.runner.build_segment`), puts a
:class:`~simulator.gateways.cme3100.gateway.Cme3100` on its master, and gives the gateway one
in-world head-end per protocol (:class:`~simulator.sinks.outages.OutageSink`) that fails
during the scenario's ``[[outages]]``.

The summary counts deliveries **at the head-end**: every accepted report is parsed back
(:mod:`.headend`) and each value ``(meter, read time)`` is matched against the value database.
Per report: reports, attempts, retries and their spacing (s), values delivered, delivered
twice, lost (out of the Value Period, named in ``values_lost`` events and the log) and pending
(read after the last delivery, at the end of the run); ``exactly_once`` says that every value
read from an active meter was delivered once, or is named lost, or was read after the last
delivered report (pending), and that none arrived twice or unasked.

Files: ``trace.jsonl``, ``push_attempts.csv``, ``readouts.csv``, ``headend/<report>/...`` (every
report the head-ends accepted, as received), ``readout_rounds.png`` and ``push_delivery.png``.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Generator
from operator import itemgetter
from pathlib import Path
from typing import Any, NamedTuple

import pydantic

from simulator.building.runner import build_segment
from simulator.building.scenario_model import MbusScenario
from simulator.core import events as ev
from simulator.core.trace_invariants import Cme3100Once
from simulator.devices.registry import BuildContext, DeviceKind, Outcome
from simulator.gateways.cme3100.gateway import Cme3100
from simulator.gateways.cme3100.gateway_scenario import Cme3100Scenario, validate
from simulator.gateways.cme3100.headend import HeadEndTally, meter_account, time_key
from simulator.gateways.cme3100.readout import ReadoutStatus
from simulator.gateways.cme3100.real_head_ends import RealHeadEnds
from simulator.gateways.cme3100.reports.names import VALUE_KINDS
from simulator.mbus.meterlist import read_meter_list
from simulator.mbus.request_paths import (
    direct_field,
    event_field,
    event_readouts_field,
    fast_readouts_field,
    request_paths,
)
from simulator.mbus.sim_dut import SimDut
from simulator.sinks.base import WorldSink, WorldSource
from simulator.sinks.outages import OutageSink

ATTEMPT_COLUMNS = (
    "t_s", "time", "report", "protocol", "template", "attempt", "ok", "status", "reason",
    "values", "bytes", "file",
)  # fmt: skip
READOUT_COLUMNS = ("t_s", "read_at", "meter", "position", "status", "status_byte", "telegrams")
_SECOND_US = 1_000_000  # time_key units (us) in a second
_at_meter = itemgetter(0, 1)  # the merge key of ValueDatabase.cells rows: (at, meter)


class Cme3100Run:
    """The segment, the gateway and its head-ends, built in the skeleton's world."""

    def __init__(self, ctx: BuildContext) -> None:
        sc: Cme3100Scenario = ctx.scenario
        self.ctx, self.sc = ctx, sc
        world = ctx.world
        mbus = MbusScenario(
            kind="mbus",
            seed=ctx.seed,
            start=sc.start,
            hours=ctx.hours,
            bus=sc.bus,
            slaves=sc.slaves,
        )
        self.seg = build_segment(world, ctx.doc, mbus)
        # one head-end per report, failing during its protocol's outages
        outages = {
            p: [o.window() for o in sc.outages if o.protocol == p] for p in ("http", "ftp", "mail")
        }
        settings = sc.gateway
        self.real: RealHeadEnds | None = None
        if ctx.options.real_sinks:  # real receivers on 127.0.0.1, real clients (module doc)
            self.real = RealHeadEnds(lambda: world.now, outages).start()
            ctx.on_close(self.real.stop)
            settings = self.real.retarget(settings)
            self.sinks = {
                r.name: self.real.client(r.protocol, r.user, r.password)
                for r in [*settings.reports, *settings.event_reports]
            }
        # the head-end side of every report: files written and values counted as each
        # accepted report arrives, so no body is kept (issue 15)
        slots = {r.name for r in settings.reports}
        self.tallies = {
            r.name: HeadEndTally(
                r.protocol, r.template, ctx.out / "headend" / _safe(r.name), r.name in slots
            )
            for r in [*settings.reports, *settings.event_reports]
        }
        if self.real is None:  # in-world head-ends keep nothing: their tally takes each report
            self.sinks = {
                r.name: OutageSink(
                    r.protocol,
                    clock=lambda: world.now,
                    outages=outages[r.protocol],
                    inner=WorldSink(on_receive=self.tallies[r.name].take),
                    keep=False,
                )
                for r in [*settings.reports, *settings.event_reports]
            }
        meter_list = None
        if sc.install.meter_list is not None:
            entries = read_meter_list(ctx.doc.resolve_path(sc.install.meter_list))
            meter_list = [e for e in entries if e.mode != "esecondary"]  # wireless: not wired
        files = sc.config_server.read(ctx.doc)
        self.gateway = Cme3100(
            world,
            settings,
            self.seg.master,
            self.sinks,
            meter_list=meter_list,
            search=sc.install.search,
            config_source=WorldSource(files),
        ).start()
        for action in sc.actions:
            world.process(self._act(action))
        self.attempts: list[_Attempt] = []  # without the events' new_values (a year: GBs)
        self.rounds: list[ev.ReadoutRound] = []
        # each value delivered at most once per report unless the trace shows it resent
        self.once = Cme3100Once()
        # one listener, for push attempts and rounds only: the wired readouts' frame events
        # then need not be built at --trace-level summary (Trace.wants)
        world.trace.subscribe(self._collect, kinds=("push_attempt", "readout_round"))
        self.attempt_csv = ctx.csv("push_attempts.csv", ATTEMPT_COLUMNS)

    def _act(self, action: Any) -> Generator:
        """One scenario action at its world time (docs/cme3100.md)."""
        gw = self.gateway
        yield self.ctx.world.timeout(action.at_h * 3600.0)
        if action.do == "clock_step":
            gw.step_clock(action.step_s, "scenario")
        elif action.do == "meter_state":
            gw.set_meter_state(action.position, action.state)
        elif action.do == "licence":
            gw.load_licence(action.licence)
        elif action.do == "read_all":
            yield from gw.manual_read()
        elif action.do == "read_meter":
            yield from gw.manual_read(action.position)
        else:
            gw.auto.sync()

    def _collect(self, e: Any) -> None:
        kind = e.kind
        if kind == "push_attempt":
            self._attempt(e)
            self.once(e)
        elif kind == "readout_round" and isinstance(e, ev.ReadoutRound):
            self.rounds.append(e)

    def _attempt(self, e: Any) -> None:
        if isinstance(e, ev.PushAttempt):
            self.attempts.append(_Attempt(e.report, e.t, e.ok, e.attempt, e.duration_s))
            when = self.ctx.world.clock(e.t).replace(tzinfo=None).isoformat()
            self.attempt_csv.writerow(
                [round(e.t, 3), when, e.report, e.protocol, e.template, e.attempt, e.ok]
                + [e.status, e.reason, e.values, e.bytes, e.file]
            )

    def advance(self, until: float, last: bool) -> None:
        self.ctx.world.run(until=until)

    def status(self) -> str:
        r = self.gateway.rounds
        return f"round {r.rounds}: {r.ok} ok, {r.failed} failed; {len(self.attempts)} pushes"

    # -- results ------------------------------------------------------------------------------
    def finish(self) -> Outcome:
        gw, ctx = self.gateway, self.ctx
        self.once.check()  # AccountingError: the run's own trace shows a value sent twice
        if self.real is not None:  # real head-ends: the clients kept what was accepted
            for name, sink in self.sinks.items():
                for report in sink.received:
                    self.tallies[name].take(report)
        reports = {slot.slot.name: self._slot_figures(slot) for slot in gw.slots}
        self._write_readouts()
        inst = gw.installation
        figures: dict[str, Any] = {
            "licence": inst.licence,
            "meters_installed": len(inst.meters),
            "meters_active": len(inst.active()),
            "meters_passive": len(inst.passive()),
            "passive_meters": [m.position for m in inst.passive()],
            "readout_rounds": gw.rounds.rounds,
            "readout_rounds_skipped": gw.rounds.skipped,
            "readouts_ok": gw.rounds.ok,
            "readouts_failed": gw.rounds.failed,
            "values_read": sum(len(self._values_read(m)) for m in gw.db.meters()),
            "values_dropped_by_storage": gw.db.dropped(),
            "reports": reports,
            "events": dict(Counter(name for _, name, _ in gw.event_log)),
            "snmp_status": int(gw.snmp.status),
            "log_entries": len(gw.log.entries()),
            "exactly_once": all(r["exactly_once"] for r in reports.values()),
            "real_sinks": self._real_figures(),
            **request_paths(gw.master),
        }
        table = [
            ("meters installed / active / passive", f"{len(inst.meters)} / "
             f"{len(inst.active())} / {len(inst.passive())} (licence {inst.licence})"),
            ("readout rounds", f"{gw.rounds.rounds} ({gw.rounds.ok} ok, {gw.rounds.failed} "
             f"failed readouts, {gw.rounds.skipped} firings skipped)"),
        ]  # fmt: skip
        for name, r in reports.items():
            table.append(
                (
                    f"{name} ({r['protocol']} {r['template']})",
                    f"{r['delivered']}/{r['reports']} reports, {r['retries']} retries, "
                    f"values {r['values_delivered']} delivered, {r['delivered_twice']} twice, "
                    f"{r['values_lost']} lost, {r['values_pending']} pending",
                )
            )
        table.append(("every value exactly once", "yes" if figures["exactly_once"] else "NO"))
        table.append(("sim time", f"{ctx.hours:g} h"))
        return Outcome(figures, table)

    def _real_figures(self) -> dict[str, dict[str, int]] | None:
        """With real sinks: per protocol, reports the receiver accepted (server side) and
        whether they are byte for byte what the clients delivered (client side)."""
        if self.real is None:
            return None
        out = {}
        for protocol in ("http", "ftp", "mail"):
            server = self.real.received_bodies(protocol)
            client = [
                rep.body
                for name, sink in self.sinks.items()
                if self._protocol_of(name) == protocol
                for _t, rep, d in sink.deliveries
                if d.ok
            ]
            same = (
                sorted(server) == sorted(client)
                if protocol != "mail"
                else len(server) == len(client)
            )
            out[protocol] = {"received": len(server), "delivered": len(client), "same": int(same)}
        return out

    def _protocol_of(self, name: str) -> str:
        s = self.sc.gateway
        return next(r.protocol for r in [*s.reports, *s.event_reports] if r.name == name)

    def _values_read(self, meter: str) -> set[int]:
        """Every value stored from active meter ``meter``: the :func:`time_key` of its read
        times to the second. Built per meter when needed: a year of 250 meters held at once
        as (meter, datetime) pairs was ~250 MB at the end of the run. Read from the value
        database's time column: no row is built."""
        # time_key(t.replace(microsecond=0)) == k - k % 1 s: the microseconds are k's
        # remainder (floor division, also before 1970)
        return {k - k % _SECOND_US for k in self.gateway.db.time_keys(meter, ReadoutStatus.OK)}

    def _slot_figures(self, slot: Any) -> dict[str, Any]:
        """The slot's accounting, meter by meter: sets of (meter, time) over the whole run
        are the sums of the per-meter sets of time keys (values are keyed by meter)."""
        name, tally = slot.slot.name, self.tallies[slot.slot.name]
        accounts = slot.slot.template % 1000 in VALUE_KINDS  # x007: no values to account
        db_meters = self.gateway.db.meters() if accounts else []
        lost: dict[str, set[int]] = {}
        for m, t in slot.ledger.lost:
            lost.setdefault(m, set()).add(time_key(t.replace(microsecond=0)))
        attempts = [a for a in self.attempts if a.report == name]
        # a value read before the last delivered report was built must be in a report or
        # lost; only later ones may still be pending
        last_ok = max((a.t for a in attempts if a.ok), default=None)
        cut = None if last_ok is None else time_key(self.gateway.clock.local(last_ok))
        total = [0] * 6  # delivered, twice, unknown, lost, missing, pending
        lost_delivered = False
        for meter in dict.fromkeys([*db_meters, *tally.meters(), *lost]):
            read_m = self._values_read(meter) if accounts else set()
            acc = meter_account(read_m, tally.counts(meter), lost.get(meter, set()), cut)
            total = [a + b for a, b in zip(total, acc[:6], strict=True)]
            lost_delivered = lost_delivered or acc.lost_delivered
        delivered, twice, unknown, n_lost, missing, pending = total
        gaps = sorted(
            {
                round(b.t - (a.t + a.duration_s), 3)
                for a, b in zip(attempts, attempts[1:], strict=False)
                if b.attempt == a.attempt + 1
            }
        )
        return {
            "protocol": slot.slot.protocol,
            "template": slot.slot.template,
            "schedule": slot.slot.schedule,
            "period_s": slot.period_s,
            "retry_plan": {"retries": slot.plan.count, "spacing_s": slot.plan.spacing_s},
            "reports": slot.stats.reports,
            "delivered": slot.stats.delivered,
            "failed": slot.stats.failed,
            "attempts": slot.stats.attempts,
            "retries": len(slot.stats.retries),
            "retry_gaps_s": gaps,
            "values_delivered": delivered,
            "delivered_twice": twice,
            "values_unknown": unknown,
            "values_lost": n_lost,
            "values_pending": pending,
            "values_missing": missing,
            "exactly_once": twice == 0 and unknown == 0 and not missing and not lost_delivered,
        }

    def _write_readouts(self) -> None:
        gw, ctx = self.gateway, self.ctx
        w = ctx.csv("readouts.csv", READOUT_COLUMNS)
        # each meter's rows are in time order: merging them gives what a stable sort of all
        # rows by (at, meter) gives (ties go to the earlier meter, as in the sort), without
        # a year's millions of sort keys at once (~150 MB at the end of the run); the rows'
        # cells come from the database's columns (no Readout built), (at, meter) first
        rows = heapq.merge(*(gw.db.cells(m) for m in gw.db.meters()), key=_at_meter)
        w.writerows(  # one call for the whole table (a year: millions of rows)
            (
                round(at, 6),
                read_at.isoformat(),
                meter,
                position,
                status,
                "" if byte is None else f"{byte:02x}",
                telegrams,
            )
            for at, meter, read_at, position, status, byte, telegrams in rows
        )

    def plots(self, out: Path) -> list[Path]:
        """readout_rounds.png and push_delivery.png (:mod:`simulator.report.figures`)."""
        from simulator.report import figures as fg

        run = fg.RunLabel(self.ctx.name, self.ctx.seed)
        start = self.ctx.world.start
        rounds = [fg.Round(r.started, r.ok, r.failed, r.meters) for r in self.rounds]
        marks = [fg.Mark(a.report, a.t, a.ok, a.attempt > 0) for a in self.attempts]
        return [
            fg.rounds_plot(rounds, start, self.ctx.end, out / "readout_rounds.png", run),
            fg.timeline_plot(
                marks, start, self.ctx.end, out / "push_delivery.png", run, "Push report attempts"
            ),
        ]


class _Attempt(NamedTuple):
    """What the summary and the plot need of one ``push_attempt`` event."""

    report: str
    t: float
    ok: bool
    attempt: int
    duration_s: float


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


class _ReportFigures(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")

    protocol: str
    template: int
    schedule: str
    period_s: float = pydantic.Field(description="report schedule period (s)")
    retry_plan: dict[str, float] = pydantic.Field(description="Table 9 row: retries, spacing_s")
    reports: int = pydantic.Field(description="reports built (each with its retries)")
    delivered: int
    failed: int = pydantic.Field(description="reports not delivered after every retry")
    attempts: int
    retries: int
    retry_gaps_s: list[float] = pydantic.Field(
        description="distinct gaps between a failed attempt's end and its retry (s)"
    )
    values_delivered: int = pydantic.Field(description="values the head-end got (distinct)")
    delivered_twice: int = pydantic.Field(description="values the head-end got more than once")
    values_unknown: int = pydantic.Field(description="values at the head-end never read")
    values_lost: int = pydantic.Field(description="unsent values out of the Value Period")
    values_pending: int = pydantic.Field(description="read after the last delivery")
    values_missing: int = pydantic.Field(
        description="read before the last delivery, yet neither delivered nor named lost"
    )
    exactly_once: bool


class Cme3100Summary(pydantic.BaseModel):
    """Figures of a ``cme3100`` run (docs/cme3100.md)."""

    model_config = pydantic.ConfigDict(extra="forbid")

    licence: int
    meters_installed: int
    meters_active: int
    meters_passive: int
    passive_meters: list[str] = pydantic.Field(description="positions, latest installed")
    readout_rounds: int
    readout_rounds_skipped: int = pydantic.Field(description="firings passed during a round")
    readouts_ok: int
    readouts_failed: int
    values_read: int = pydantic.Field(description="OK readouts stored (values)")
    values_dropped_by_storage: int = pydantic.Field(description="value database limit (§4)")
    reports: dict[str, _ReportFigures] = pydantic.Field(description="per report slot")
    events: dict[str, int] = pydantic.Field(description="gateway events raised, by name")
    snmp_status: int = pydantic.Field(description="Table 8 status at the end: 1, 2 or 3")
    log_entries: int
    exactly_once: bool = pydantic.Field(description="every report's accounting holds")
    real_sinks: dict[str, dict[str, int]] | None = pydantic.Field(
        None, description="--real-sinks: per protocol received (server) / delivered (client)"
    )
    requests_direct: int = direct_field()
    requests_event: int = event_field()
    readouts_fast: int = fast_readouts_field()
    readouts_event: int = event_readouts_field()


DEVICE = DeviceKind(
    name="cme3100",
    title="a CMe3100 gateway reading wired meters and pushing reports",
    scenario=Cme3100Scenario,
    validate=validate,
    build=Cme3100Run,
    summary=Cme3100Summary,
    plots=True,
    sim_dut=SimDut,  # its M-Bus master is the master model: the master suite runs on it too
)
