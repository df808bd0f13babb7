"""The CMe3100 push suite on a lab rig: the physical gateway reads the bench's meters through
the serial bridge and pushes to the bench's receivers, in real time (issue 12).

:func:`run_push_lab` starts the rig's receivers (:class:`~simulator.testing.receivers.Receivers`),
writes the unit's setup and asks the operator to confirm it
(:func:`~simulator.testing.push_setup.prepare_lab`), builds the push scenario's emulated
meters in a real-time world behind a :class:`~simulator.bridge.bridge.SerialBridge` on the
rig's ``dut`` transport, runs for ``[push] hours`` of wall time and returns the same
:class:`~simulator.testing.push_checks.PushEvidence` the sim rig gives: the bus's ``frame``
events (requests the bridge received, replies it sent), each report's arrivals and the SNMP
notifications the trap receiver got (``traps``).

The receivers play the head-end outages of the rig's ``[[push.outages]]`` (else the
scenario's ``[[outages]]``), timed from the moment the bridge starts (:func:`play_outages`),
so the retries, recovery and timeout checks have something to see in the lab.

Bench time 0 is the top of the UTC hour the run starts in (``start``), as on the sim rig
where the scenario starts on the hour: the schedule check counts rounds from it, and the
values check compares the gateway's report stamps with ``start`` + bench s, so the unit's
clock must be on UTC (NTP) within ``clock_tolerance_s``.
"""

from __future__ import annotations

import posixpath
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

from simulator.building.runner import build_segment
from simulator.building.scenario_model import MbusScenario
from simulator.core.trace import Trace
from simulator.core.world import World
from simulator.gateways.cme3100.gateway_settings import Cme3100Settings, parse_schedule
from simulator.gateways.cme3100.retries import schedule_period_s
from simulator.rig import Rig
from simulator.scenario import load_toml
from simulator.sinks.base import Delivery
from simulator.sinks.receiver import FtpMeta, HttpMeta, Received, SmtpMeta, TrapMeta
from simulator.sinks.snmp_traps import plain_varbinds
from simulator.testing.bench import BenchError
from simulator.testing.evidence import wire_log
from simulator.testing.push_checks import Arrival, PushEvidence, TrapArrival
from simulator.testing.push_setup import gateway_setup, load_scenario, prepare_lab
from simulator.testing.receivers import Receivers


def _addresses(items) -> set[str]:
    """Mail addresses compared as mail servers compare them: no brackets, any case."""
    return {a.strip().strip("<>").lower() for a in items if a.strip()}


def _names_report(m: object) -> bool:
    """Whether an attempt got far enough to say which report it is (the HTTP path, the FTP
    file, the mail recipients); a refused, hung or failed login of FTP or SMTP did not."""
    if isinstance(m, HttpMeta):
        return True
    if isinstance(m, FtpMeta):
        return bool(m.path)
    return isinstance(m, SmtpMeta) and bool(m.rcpt_tos)


def report_of(rec: Received, settings: Cme3100Settings) -> str | None:
    """The name of the report (or event report) of ``settings`` that ``rec`` is an attempt
    of: HTTP by the target URL's path, FTP by the folder the file went into (the target's
    path), mail by a recipient. An attempt cut short before it named its report (FTP or
    SMTP refused, hung, login failed) is the protocol's report when there is only one. None
    for an attempt no report explains (an SNMP trap, a stray client, an ambiguous failure)."""
    m = rec.meta
    mine = [r for r in (*settings.reports, *settings.event_reports) if r.protocol == rec.protocol]
    for r in mine:
        path = urlsplit(r.target).path
        if isinstance(m, HttpMeta) and m.path.split("?")[0] == path:
            return r.name
        if isinstance(m, FtpMeta) and m.path:
            if posixpath.dirname(m.path).strip("/") == path.strip("/"):
                return r.name
        if isinstance(m, SmtpMeta) and _addresses(m.rcpt_tos) & _addresses(r.target.split(",")):
            return r.name
    if not rec.accepted and not _names_report(m) and len(mine) == 1:
        return mine[0].name
    return None


def delivery_of(rec: Received) -> Delivery:
    """What the gateway was told: ok when the receiver accepted, else the fault or status."""
    if rec.accepted:
        return Delivery(True, rec.status)
    return Delivery(False, rec.status, reason=rec.fault or f"status {rec.status}")


def arrivals_from(
    records: list[Received], settings: Cme3100Settings, world_time: Callable[[float], float]
) -> dict[str, list[Arrival]]:
    """Every report's arrivals (bench s from ``world_time(at_monotonic)``), in arrival order;
    an attempt no report of ``settings`` explains is left out."""
    out: dict[str, list[Arrival]] = {
        r.name: [] for r in (*settings.reports, *settings.event_reports)
    }
    for rec in sorted(records, key=lambda r: r.at_monotonic):
        name = report_of(rec, settings)
        if name is not None:
            out[name].append(Arrival(world_time(rec.at_monotonic), rec.report(), delivery_of(rec)))
    return out


def traps_from(records: list[Received], world_time: Callable[[float], float]) -> list[TrapArrival]:
    """The SNMP notifications among ``records`` (bench s from ``world_time(at_monotonic)``),
    in arrival order, their varbinds decoded; a dropped one (receiver fault) has no varbinds
    and ``acknowledged`` False."""
    out = []
    for rec in sorted(records, key=lambda r: r.at_monotonic):
        if rec.protocol != "snmp":
            continue
        varbinds = plain_varbinds(rec.meta) if isinstance(rec.meta, TrapMeta) else {}
        out.append(TrapArrival(world_time(rec.at_monotonic), varbinds, rec.accepted))
    return out


#: The receiver table that takes each report protocol.
RECEIVER_OF = {"http": "http", "ftp": "ftp", "mail": "smtp"}


def play_outages(rig: Rig, rx: Receivers, outages: list, origin_unix_s: float) -> list[str]:
    """Schedule ``outages`` (:class:`~simulator.sinks.outages.OutageModel`, h from
    ``origin_unix_s``) on the receivers of their protocols; returns one line per outage for
    the log. Raises :class:`BenchError` for an outage whose protocol has no receiver."""
    running = rx.all()
    lines = []
    for o in outages:
        table = RECEIVER_OF[o.protocol]
        receiver = running.get(table)
        if receiver is None:
            raise BenchError(f"rig {rig.name}: an outage of {o.protocol} needs [receivers.{table}]")
        receiver.faults.fail_during([o.window(origin_unix_s)])
        lines.append(f"{o.protocol} {o.fault} from +{o.start_h:g} h for {o.hours:g} h")
    return lines


def report_settings(settings: Cme3100Settings, start: datetime) -> dict[str, dict]:
    """``PushEvidence.reports`` of ``settings``: protocol, template, schedule period (s)."""
    naive = start.replace(tzinfo=None)
    reports = {
        r.name: {
            "protocol": r.protocol,
            "template": r.template,
            "period_s": schedule_period_s(parse_schedule(r.schedule)[0], naive),
        }
        for r in settings.reports
    }
    for er in settings.event_reports:
        reports[er.name] = {"protocol": er.protocol, "template": er.template, "period_s": None}
    return reports


def run_push_lab(
    rig: Rig,
    out: Path,
    confirm: Callable[[str], bool],
    *,
    hours: float | None = None,
    bench_host: str | None = None,
) -> PushEvidence:
    """Run the push suite's lab pass into ``out`` (setup files, ``trace.jsonl``, the bridge's
    ``wire.log``: :func:`~simulator.testing.evidence.wire_log`) for
    ``hours`` (default ``[push] hours``) of real time and return the evidence. Raises
    :class:`BenchError` when the adapter cannot be opened, a receiver cannot bind, or the
    operator declines the setup. ``bench_host`` (default ``[push] bench_host``): the bench's
    address the unit is given when the receivers bind a wildcard."""
    from simulator.bridge.serve import BridgeService, open_rig_transport
    from simulator.bridge.transports import os_reason
    from simulator.testing.push_bench import check_adapter, expected_states

    assert rig.push is not None
    check_adapter(rig)
    sc, path = load_scenario(rig)
    doc = load_toml(path)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    duration_s = 3600.0 * (rig.push.hours if hours is None else hours)
    bench_host = bench_host or rig.push.bench_host
    with Receivers.for_rig(rig) as rx:
        prepare_lab(rig, rx, out / "setup", confirm, bench_host)
        settings = gateway_setup(rig, rx, bench_host).settings
        trace = Trace()
        world = World(rig.seed, start=datetime.now(UTC), trace=trace, realtime=True)
        mbus = MbusScenario(
            kind="mbus", seed=rig.seed, start=world.start, bus=sc.bus, slaves=sc.slaves
        )
        seg = build_segment(world, doc, mbus)  # its master is never started: the unit reads
        spec = rig.transport("dut")
        try:
            transport = open_rig_transport(spec)
        except OSError as exc:
            raise BenchError(f"rig {rig.name}: transport dut: {os_reason(exc)}") from None
        service = BridgeService(world, seg.bus)
        service.attach(
            transport, baud=spec.baud, echo=spec.echo, reply_timeout=rig.timing.reply_timeout_s
        )
        service.start()
        plan = rig.push.outages if rig.push.outages is not None else sc.outages
        play_outages(rig, rx, plan, time.time())
        try:
            time.sleep(duration_s)
        finally:
            service.stop()
        wall, mono = datetime.now(UTC), time.monotonic()
        world0 = wall - timedelta(seconds=service.driver.world_time(mono))
        start = world0.replace(minute=0, second=0, microsecond=0)
        shift = (world0 - start).total_seconds()  # world s -> bench s
        records = [rec for r in rx.all().values() for rec in r.received]

        def bench_s(mono: float) -> float:
            return service.driver.world_time(mono) + shift

        arrivals = arrivals_from(records, settings, bench_s)
        traps = traps_from(records, bench_s)
    trace.write_jsonl(out / "trace.jsonl")
    # the bridge's raw wire log (timestamped bytes), for every test's evidence folder
    (out / "wire.log").write_text(wire_log(trace), encoding="utf-8")
    frames = [
        {**e, **{k: e[k] + shift for k in ("t", "end", "start") if isinstance(e.get(k), float)}}
        for e in Trace.read_jsonl(out / "trace.jsonl")
        if e["kind"] == "frame"
    ]
    active, passive = expected_states(doc, settings.licence)
    return PushEvidence(
        frames=frames,
        arrivals=arrivals,
        reports=report_settings(settings, start),
        start=start,
        active=active,
        passive=passive,
        timeout_s={p: settings.timeout_s(p) for p in ("http", "ftp", "mail")},
        traps=traps,
    )
