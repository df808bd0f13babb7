"""Checks of the CMe3100 push suite, on evidence a lab has too: the wire and the head-ends.

Every check takes :class:`PushEvidence` (the M-Bus frames the bench saw on the wire, with
times, and every report each head-end received, with its arrival time and the answer it
gave) and returns a list of violations (empty = pass), so the suite's tests and the mutation
tests in ``tests/test_cme3100_suite.py`` use the same code. Nothing here reads the gateway
model's state: a check must hold for a physical gateway on a lab rig.

Times are bench seconds (world time on the sim rig, the bridge's clock in the lab); report
``created`` times are the gateway's local clock, matched to the wire with ``clock_tolerance_s``.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from simulator.gateways.cme3100.headend import report_text, values_in
from simulator.gateways.cme3100.readout import user_data
from simulator.gateways.cme3100.reports.names import VALUE_KINDS
from simulator.gateways.cme3100.reports.parse import parse_install
from simulator.gateways.cme3100.retries import adaptive_plan
from simulator.gateways.cme3100.snmp import SNMP_TRAP_OID, STATUS_CHANGE, STATUS_REPORT
from simulator.mbus.errors import MBusError
from simulator.mbus.telegram import decode_telegram
from simulator.sinks.base import Delivery, Report


@dataclass(frozen=True)
class WireRead:
    """One RSP_UD a meter sent and the gateway received clean: ``meter`` 8-digit ID, ``end``
    bench s of its last byte, ``body`` the telegram from the C-field (no CS, no stop byte)."""

    meter: str
    end: float
    body: bytes


@dataclass(frozen=True)
class Arrival:
    """One report at a head-end: bench s, the report, the answer the head-end gave."""

    t: float
    report: Report
    delivery: Delivery


@dataclass(frozen=True)
class TrapArrival:
    """One SNMP notification at the bench's trap receiver: bench s, its varbinds decoded
    (``{OID tuple: int, text or OID tuple}``, sysUpTime.0 and snmpTrapOID.0 first, RFC 3416
    §4.2.6), and whether the receiver took it (False: dropped by a receiver fault)."""

    t: float
    varbinds: dict[tuple[int, ...], Any]
    acknowledged: bool = True

    @property
    def trap_oid(self) -> tuple[int, ...] | None:
        """snmpTrapOID.0: which notification this is (None: not in the varbinds)."""
        return self.varbinds.get(SNMP_TRAP_OID)

    @property
    def status(self) -> int | None:
        """mbenchStatusReport.0 it carries: the new Table 8 status (1 OK, 2 WARNING, 3 ERROR)."""
        return self.varbinds.get(STATUS_REPORT + (0,))


@dataclass
class PushEvidence:
    """What a push run left: ``frames`` (trace ``frame`` events as dicts), ``arrivals`` per
    report name, the report settings (``reports``: name -> protocol, template, schedule
    period s), ``start`` the calendar time of bench time 0 (the gateway's local clock is
    compared with it), the ``passive``/``active`` meter IDs the bench expects from the meter
    list and the licence, the gateway's push ``timeout_s`` per protocol, and the SNMP
    ``traps`` the bench received (:class:`TrapArrival`, arrival order)."""

    frames: list[dict[str, Any]]
    arrivals: dict[str, list[Arrival]]
    reports: dict[str, dict[str, Any]]
    start: datetime
    active: list[str]
    passive: list[str]
    timeout_s: dict[str, float] = field(default_factory=dict)
    clock_tolerance_s: float = 2.0
    traps: list[TrapArrival] = field(default_factory=list)

    # -- derived views ------------------------------------------------------------------------
    def wire_reads(self) -> list[WireRead]:
        out = []
        for e in self.frames:
            if e.get("direction") != "s2m" or e.get("outcome") != "ok" or not e.get("hex"):
                continue
            try:
                raw = bytes.fromhex(e["hex"])
                tg = decode_telegram(raw)
            except (MBusError, ValueError):
                continue
            if tg.header.address is None:
                continue
            out.append(WireRead(f"{tg.header.address.id:08d}", e["end"], user_data(raw)))
        return out

    def selected(self) -> list[tuple[float, str]]:
        """(bench s, ID) of every secondary selection (SND_UD CI 52) the gateway sent."""
        out = []
        for e in self.frames:
            if e.get("direction") == "m2s" and e.get("ci") == "52":
                raw = bytes.fromhex(e["hex"])
                out.append((e["t"], raw[7:11][::-1].hex()))
        return out

    def local(self, t: float) -> datetime:
        return (self.start + timedelta(seconds=t)).replace(tzinfo=None)


def _value_reports(ev: PushEvidence) -> Iterable[tuple[str, Arrival]]:
    for name, arrivals in ev.arrivals.items():
        if ev.reports[name]["template"] % 1000 in VALUE_KINDS:
            for a in arrivals:
                if a.delivery.ok:
                    yield name, a


def _match(reads: list[WireRead], meter: str, created: datetime, ev: PushEvidence):
    """The wire read of ``meter`` whose time is ``created`` (to the second, +- tolerance)."""
    for r in reads:
        if r.meter == meter and abs((ev.local(r.end) - created).total_seconds()) <= (
            ev.clock_tolerance_s + 1
        ):
            return r
    return None


def check_values(ev: PushEvidence) -> list[str]:
    """Every value in every received report is what the meter sent on the wire when the
    gateway read it: raw reports (x001) carry the very telegram bytes; value reports carry
    each record's value (decoded from the wire with the project's codec)."""
    reads = ev.wire_reads()
    out: list[str] = []
    for name, a in _value_reports(ev):
        protocol, template = ev.reports[name]["protocol"], ev.reports[name]["template"]
        if template % 1000 == 1:
            for row in parse_install(report_text(a.report, protocol)):
                r = _match(reads, row.meter, row.created, ev)
                if r is None:
                    out.append(f"{name}: {row.meter} at {row.created}: no such read on the wire")
                elif row.raw != r.body and row.telegram_no == 0:
                    out.append(f"{name}: {row.meter} at {row.created}: telegram differs")
        else:
            for meter, created in values_in(a.report, protocol, template):
                if _match(reads, meter, created, ev) is None:
                    out.append(f"{name}: {meter} at {created}: no such read on the wire")
    return out


def check_schedule(
    ev: PushEvidence, period_s: float, tolerance_s: float, end_s: float
) -> list[str]:
    """Readout rounds start on the clock (every ``period_s`` from the hour, within
    ``tolerance_s``), each round selects every active meter, and passive meters are never
    addressed."""
    out: list[str] = []
    sel = ev.selected()
    if not sel:
        return ["no selection on the wire: the gateway read nothing"]
    passive = set(ev.passive) & {m for _, m in sel}
    if passive:
        out.append(f"passive meters addressed: {sorted(passive)}")
    first = sel[0][0]
    k = int(first // period_s)
    while (k + 1) * period_s < end_s - period_s:  # every complete round after install
        lo, hi = k * period_s, (k + 1) * period_s
        in_round = [(t, m) for t, m in sel if lo <= t < hi]
        if k * period_s >= first:
            if not in_round or in_round[0][0] - lo > tolerance_s:
                start = in_round[0][0] - lo if in_round else None
                out.append(f"round at {lo:.0f} s: first selection after {start} s")
            missing = set(ev.active) - {m for _, m in in_round}
            if missing:
                out.append(f"round at {lo:.0f} s: not read {sorted(missing)}")
        k += 1
    return out


def attempts_per_firing(arrivals: list[Arrival], period_s: float) -> dict[int, list[Arrival]]:
    """A head-end's arrivals grouped by the report firing they belong to."""
    groups: dict[int, list[Arrival]] = defaultdict(list)
    for a in arrivals:
        groups[int(a.t // period_s)].append(a)
    return groups


def check_retries(ev: PushEvidence, name: str) -> list[str]:
    """While a head-end fails, each report is attempted 1 + Table 9's retries times, the
    retries Table 9's spacing apart (from the end of the failed attempt: a hung attempt ends
    after the protocol's timeout) - as the head-end sees them arrive."""
    rep = ev.reports[name]
    plan = adaptive_plan(rep["period_s"])
    timeout = ev.timeout_s.get(rep["protocol"], 60.0)
    out: list[str] = []
    for k, group in sorted(attempts_per_firing(ev.arrivals[name], rep["period_s"]).items()):
        failed = [a for a in group if not a.delivery.ok]
        if not failed:
            continue
        if all(not a.delivery.ok for a in group) and len(group) != plan.attempts:
            out.append(f"{name} firing {k}: {len(group)} attempts, Table 9 says {plan.attempts}")
        for a, b in zip(group, group[1:], strict=False):
            took = timeout if a.delivery.reason == "timeout" else 0.0
            gap = b.t - a.t - took
            if abs(gap - plan.spacing_s) > 1.0:
                out.append(f"{name} firing {k}: retry {gap:.1f} s after, not {plan.spacing_s} s")
    return out


def check_recovery(ev: PushEvidence, name: str) -> list[str]:
    """After an outage the next delivered report carries every value read since the last
    delivered one, once: each value read on the wire before a report's last delivery is at
    the head-end exactly once (Value Period Auto, within 180 readouts)."""
    rep = ev.reports[name]
    got: Counter[tuple[str, datetime]] = Counter()
    for a in ev.arrivals[name]:
        if a.delivery.ok:
            got.update(values_in(a.report, rep["protocol"], rep["template"]))
    ok_times = [a.t for a in ev.arrivals[name] if a.delivery.ok]
    if not ok_times:
        return [f"{name}: nothing delivered"]
    out = [f"{name}: {m} at {t} delivered {n} times" for (m, t), n in got.items() if n > 1]
    last = max(ok_times)
    for r in ev.wire_reads():
        if r.meter in ev.active and r.end < last - 1.0:
            created = ev.local(r.end).replace(microsecond=0)
            near = [
                k
                for k in got
                if k[0] == r.meter
                and abs((k[1] - created).total_seconds()) <= 1 + ev.clock_tolerance_s
            ]
            if not near:
                out.append(f"{name}: {r.meter} read at {created} never delivered")
    return out


def failed_meters_in_status_report(ev: PushEvidence, name: str) -> dict[str, str]:
    """``{meter: last-status}`` of the latest delivered x007 status report."""
    rep = ev.reports[name]
    delivered = [a for a in ev.arrivals[name] if a.delivery.ok]
    if not delivered:
        return {}
    text = report_text(delivered[-1].report, rep["protocol"])
    rows = [line.split(";") for line in text.splitlines() if line and not line.startswith("#")]
    return {r[2]: r[-1] for r in rows if r[-1] not in ("ok", "")}  # "": never read (passive)


def check_events(ev: PushEvidence, name: str, expected: Iterable[str]) -> list[str]:
    """Each expected event report (x005 ``event`` key) arrived at the head-end."""
    seen = set()
    for a in ev.arrivals[name]:
        if a.delivery.ok:
            for line in report_text(a.report, ev.reports[name]["protocol"]).splitlines():
                cells = line.split(";")
                if len(cells) == 3 and cells[1] == "event":
                    seen.add(cells[2])
    return [f"event {e!r} never arrived" for e in expected if e not in seen]


def check_status_traps(ev: PushEvidence, status: int) -> list[str]:
    """The SNMP notifications follow Table 8 (002 §6.30, CME3100.md §7): at least one
    acknowledged trap arrived, each is mbenchStatusChange, each carries a status other than
    the one before (a notification only on a change; a retransmitted INFORM, same varbinds,
    counts once), and the last carries ``status``, the aggregated status the agent shows."""
    got: list[TrapArrival] = []
    for t in ev.traps:
        if t.acknowledged and not (got and got[-1].varbinds == t.varbinds):
            got.append(t)
    if not got:
        return ["no SNMP trap arrived"]
    out = [f"trap at {t.t:.1f} s is {t.trap_oid}, not mbenchStatusChange"
           for t in got if t.trap_oid != STATUS_CHANGE]  # fmt: skip
    for a, b in zip(got, got[1:], strict=False):
        if a.status == b.status:
            out.append(f"traps at {a.t:.1f} s and {b.t:.1f} s both say {a.status}: no change")
    if got[-1].status != status:
        out.append(f"the last trap ({got[-1].t:.1f} s) says {got[-1].status}, not {status}")
    return out
