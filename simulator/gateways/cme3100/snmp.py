"""The CMe3100 SNMP v2c service as a model: status codes, the two lists, traps on change.

Seed 002 §6.30 (CME3100.md §7). The model holds state and answers from it; it does no I/O.
:mod:`.snmp_agent` puts the same values on a real UDP port with pysnmp, and sends the traps
to real receivers, when a run asks for real sinks.

Codes (Table 8 and the list texts of §6.30):

- Status Report (aggregate): 1 OK, 2 WARNING, 3 ERROR, by :func:`aggregate`;
- Meter Status List, per meter: 1 last readout OK, 2 last message not decryptable or never
  read, 3 last readout failed;
- Report Status List, per push report: 1 last report OK, 3 failed.

Traps: each time the aggregate changes, one notification ("the status changed", carrying the
new Status Report value) to every configured recipient (host, port), sent as an SNMPv2
INFORM with ``trap_retries`` retries and ``trap_timeout_ms`` per try (bench defaults 3 and
5000 ms, CME3100.md Gaps #10). Why INFORM: §6.30.2 says the timeout is how long the gateway
"will wait for a response from the SNMP manager", and a v2c SNMPv2-Trap is never answered, so
retries and a timeout only mean something for an acknowledged INFORM (RFC 3416 §4.2.7).
No change, no notification.

The OIDs are the bench's own, on the ``experimental`` arc (RFC 2578: 1.3.6.1.3), never
Elvaco's (their MIB is not public; CME3100.md Gaps #12). They are defined here and only here;
:data:`MIB_FILE` is the same tree as an SMIv2 module (a test checks they agree).

Time is world seconds passed in by the caller.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path
from typing import Protocol

from simulator.gateways.cme3100.log import GatewayLog, Severity
from simulator.gateways.cme3100.readout import ReadoutStatus

Oid = tuple[int, ...]

#: The SMIv2 module of the OIDs below.
MIB_FILE = Path(__file__).parent / "data" / "MBENCH-CME3100-MIB.txt"
MIB_MODULE = "MBENCH-CME3100-MIB"

# -- the bench MIB (one place) ---------------------------------------------------------------
#: mbenchCme3100 ::= { experimental 3100 }
ROOT: Oid = (1, 3, 6, 1, 3, 3100)
#: notifications live under .0 so their OIDs map to SNMPv1 traps cleanly (RFC 3584 §3)
NOTIFICATIONS: Oid = ROOT + (0,)
STATUS_CHANGE: Oid = NOTIFICATIONS + (1,)  # mbenchStatusChange
OBJECTS: Oid = ROOT + (1,)
STATUS_REPORT: Oid = OBJECTS + (1,)  # mbenchStatusReport, scalar (instance .0)
METER_TABLE: Oid = OBJECTS + (2,)  # mbenchMeterStatusTable
METER_ENTRY: Oid = METER_TABLE + (1,)  # INDEX { mbenchMeterIndex }
METER_INDEX, METER_ADDRESS, METER_STATUS = 1, 2, 3  # columns
REPORT_TABLE: Oid = OBJECTS + (3,)  # mbenchReportStatusTable
REPORT_ENTRY: Oid = REPORT_TABLE + (1,)  # INDEX { mbenchReportIndex }
REPORT_INDEX, REPORT_NAME, REPORT_STATUS = 1, 2, 3  # columns
CONFORMANCE: Oid = ROOT + (2,)
#: SNMPv2-MIB::sysUpTime.0 and snmpTrapOID.0 (RFC 3418), the first two varbinds of a
#: notification (RFC 3416 §4.2.6).
SYS_UPTIME: Oid = (1, 3, 6, 1, 2, 1, 1, 3, 0)
SNMP_TRAP_OID: Oid = (1, 3, 6, 1, 6, 3, 1, 1, 4, 1, 0)

#: Bench defaults (CME3100.md §7, §9 and Gaps #10).
DEFAULT_PORT = 161
DEFAULT_COMMUNITY = "public"
DEFAULT_TRAP_PORT = 162
DEFAULT_TRAP_RETRIES = 3
DEFAULT_TRAP_TIMEOUT_MS = 5000
#: Report slots of the Push reports page (seed 004 §6.13.1 shot: Report 1-5).
REPORT_SLOTS = range(1, 6)
#: Source name in the gateway log (seed 004 §6.14.1 shot: ``SNMPService``).
LOG_SOURCE = "SNMPService"


class SnmpError(ValueError):
    """Bad SNMP setting or input: says which setting or which meter/report."""


class Status(IntEnum):
    """Table 8 status codes (also the Report Status List's 1 and 3)."""

    OK = 1
    WARNING = 2
    ERROR = 3


class MeterStatus(IntEnum):
    """Meter Status List codes (§6.30)."""

    READ = 1
    NOT_READ = 2  # not decryptable, or never read
    FAILED = 3


@dataclass(frozen=True)
class TrapRecipient:
    """Where traps go: ``host`` (name or address) and UDP ``port``."""

    host: str
    port: int = DEFAULT_TRAP_PORT


@dataclass(frozen=True)
class SnmpSettings:
    """The SNMP service page (seed 002 §6.30.1-2, seed 004 shot). ``port`` UDP port the agent
    listens on; ``community`` the v2c community (read-only); ``trap_timeout_ms`` per try.
    Raises :class:`SnmpError` naming the bad setting."""

    port: int = DEFAULT_PORT
    community: str = DEFAULT_COMMUNITY
    recipients: tuple[TrapRecipient, ...] = ()
    trap_retries: int = DEFAULT_TRAP_RETRIES
    trap_timeout_ms: int = DEFAULT_TRAP_TIMEOUT_MS

    def __post_init__(self) -> None:
        problems = []
        if not 0 <= self.port <= 65535:
            problems.append(f"port: {self.port} is not 0..65535")
        if not self.community or not self.community.isprintable():
            problems.append(f"community: {self.community!r} must be printable and not empty")
        for i, r in enumerate(self.recipients):
            if not r.host or not 1 <= r.port <= 65535:
                problems.append(f"recipients[{i}]: {r.host!r}:{r.port} is not host:1..65535")
        if not 0 <= self.trap_retries <= 255:
            problems.append(f"trap_retries: {self.trap_retries} is not 0..255")
        if self.trap_timeout_ms < 1:
            problems.append(f"trap_timeout_ms: {self.trap_timeout_ms} must be >= 1")
        if problems:
            raise SnmpError("; ".join(problems))


@dataclass(frozen=True)
class Notification:
    """One status-change notification to one recipient: ``at`` world s, ``uptime_cs`` the
    agent's sysUpTime (1/100 s) at that moment, ``old``/``new`` Status Report values."""

    at: float
    recipient: TrapRecipient
    old: Status
    new: Status
    uptime_cs: int


def notification_varbinds(n: Notification) -> dict[Oid, int | Oid]:
    """The varbinds of ``n`` as sent (RFC 3416 §4.2.6): sysUpTime.0 (1/100 s, mod 2^32),
    snmpTrapOID.0 = mbenchStatusChange, mbenchStatusReport.0 = the new Table 8 status."""
    return {
        SYS_UPTIME: n.uptime_cs % 2**32,
        SNMP_TRAP_OID: STATUS_CHANGE,
        STATUS_REPORT + (0,): int(n.new),
    }


@dataclass(frozen=True)
class TrapDelivery:
    """What became of one notification: acknowledged (``ok``) after ``attempts`` sends
    (0 = not known: the real sender is not told which try was answered)."""

    notification: Notification
    ok: bool
    attempts: int
    reason: str = ""


class TrapSink(Protocol):
    """Sends notifications: ``deliver(notification, retries, timeout_ms) -> TrapDelivery``;
    never raises for a delivery failure."""

    def deliver(self, n: Notification, retries: int, timeout_ms: int) -> TrapDelivery: ...


def attempt_times(at: float, retries: int, timeout_ms: int) -> tuple[float, ...]:
    """World times (s) of the sends of an unanswered INFORM: one at ``at``, then one retry
    per timeout."""
    return tuple(at + k * timeout_ms / 1000.0 for k in range(retries + 1))


@dataclass
class WorldTrapReceiver:
    """The in-world trap receiver: acknowledges every INFORM unless it is down. ``down``
    holds ``(start, end)`` world-time intervals (s, end excluded) when it answers nothing; a
    notification is delivered on the first try that falls outside them."""

    down: list[tuple[float, float]] = field(default_factory=list)
    received: list[Notification] = field(default_factory=list)

    def deliver(self, n: Notification, retries: int, timeout_ms: int) -> TrapDelivery:
        for k, t in enumerate(attempt_times(n.at, retries, timeout_ms)):
            if not any(a <= t < b for a, b in self.down):
                self.received.append(n)
                return TrapDelivery(n, True, k + 1)
        return TrapDelivery(n, False, retries + 1, "no acknowledgement")


def part_status(outcomes: Iterable[bool]) -> Status:
    """One half of Table 8: OK if nothing failed (also when there is nothing), ERROR if all
    failed, WARNING if some but not all failed."""
    results = list(outcomes)
    if all(results):
        return Status.OK
    if not any(results):
        return Status.ERROR
    return Status.WARNING


def aggregate(readout: Iterable[bool], reports: Iterable[bool]) -> Status:
    """The Status Report (seed 002 §6.30 Table 8), from the outcome of each meter of the last
    readout round and the last outcome of each push report:

    - 3 ERROR: the last round failed for every meter in it, or every report failed;
    - 2 WARNING: otherwise, if any meter or any report failed;
    - 1 OK: otherwise.

    A meter counts as failed unless it was read OK (not decryptable is a failure here; the
    Meter Status List still tells it apart with code 2). Before the first readout round, and
    with no report sent yet (or none configured), that half has nothing failed and counts as
    OK: Table 8 defines WARNING and ERROR by failures, and an idle gateway has none. So a
    freshly started gateway reports 1, and the first failure is a change (a trap).
    """
    return max(part_status(readout), part_status(reports))


class SnmpModel:
    """The SNMP service's state (module doc).

    ``trap_sink`` gets each notification (default: a :class:`WorldTrapReceiver`); ``log``
    (optional) gets a line per status change and per undelivered notification;
    ``started_at`` world s when the agent started (sysUpTime 0).
    """

    def __init__(
        self,
        settings: SnmpSettings | None = None,
        *,
        trap_sink: TrapSink | None = None,
        log: GatewayLog | None = None,
        started_at: float = 0.0,
    ) -> None:
        self.settings = settings or SnmpSettings()
        self.trap_sink: TrapSink = trap_sink if trap_sink is not None else WorldTrapReceiver()
        self.log = log
        self.started_at = started_at
        self._meters: list[str] = []
        self._meter_status: dict[str, MeterStatus] = {}
        self._round: dict[str, bool] = {}
        self._reports: dict[int, tuple[str, bool]] = {}
        self.status = Status.OK
        #: every delivery, in order
        self.deliveries: list[TrapDelivery] = []
        self._view: tuple[tuple[Oid, int | str], ...] = ()
        self._view_of: tuple | None = None  # the state self._view shows
        self._rebuild()

    # -- inputs --------------------------------------------------------------------------
    def set_meters(self, meters: Sequence[str]) -> None:
        """The meter list, in list order (the Meter Status List index is 1-based in this
        order). New meters start at 2 (never read); meters no longer listed are dropped.
        Raises :class:`SnmpError` on a duplicate."""
        if len(set(meters)) != len(meters):
            dup = next(m for m in meters if list(meters).count(m) > 1)
            raise SnmpError(f"meters: {dup} is listed twice")
        self._meters = list(meters)
        self._meter_status = {m: self._meter_status.get(m, MeterStatus.NOT_READ) for m in meters}
        self._round = {m: ok for m, ok in self._round.items() if m in self._meter_status}
        self._rebuild()

    def readout_round(self, at: float, results: Mapping[str, ReadoutStatus]) -> list[TrapDelivery]:
        """A readout round ended at ``at`` (world s) with ``results`` per meter (a manual
        readout of one meter is a round of one). Returns the trap deliveries it caused.
        Raises :class:`SnmpError` for a meter not in the meter list."""
        for meter in results:
            if meter not in self._meter_status:
                raise SnmpError(f"readout_round: meter {meter} is not in the meter list")
        for meter, status in results.items():
            self._meter_status[meter] = {
                ReadoutStatus.OK: MeterStatus.READ,
                ReadoutStatus.NOT_DECRYPTABLE: MeterStatus.NOT_READ,
                ReadoutStatus.FAILED: MeterStatus.FAILED,
            }[status]
        self._round = {m: s == ReadoutStatus.OK for m, s in results.items()}
        return self._update(at)

    def report_result(self, at: float, slot: int, ok: bool, name: str = "") -> list[TrapDelivery]:
        """Push report ``slot`` (1-5) ended at ``at`` (world s), delivered or not. Returns
        the trap deliveries it caused. Raises :class:`SnmpError` for a slot outside 1-5."""
        if slot not in REPORT_SLOTS:
            raise SnmpError(f"report_result: slot {slot} is not 1..5")
        self._reports[slot] = (name or f"Report {slot}", bool(ok))
        return self._update(at)

    # -- outputs -------------------------------------------------------------------------
    def meter_status(self, meter: str) -> MeterStatus:
        """Meter Status List code of ``meter``; raises :class:`SnmpError` if not listed."""
        try:
            return self._meter_status[meter]
        except KeyError:
            raise SnmpError(f"meter {meter} is not in the meter list") from None

    def report_status(self, slot: int) -> Status | None:
        """Report Status List code of ``slot`` (OK or ERROR = 3), None if never sent."""
        entry = self._reports.get(slot)
        return None if entry is None else (Status.OK if entry[1] else Status.ERROR)

    def view(self) -> tuple[tuple[Oid, int | str], ...]:
        """Every readable instance and its value (int or text), in OID order. Immutable, so
        an agent on another thread may read it while the model moves on."""
        return self._view

    def get(self, community: str, oid: Oid) -> int | str | None:
        """GET as the agent answers it: the value, or None (no such instance, or a wrong
        community: the agent then does not answer at all)."""
        if community != self.settings.community:
            return None
        return dict(self._view).get(tuple(oid))

    def walk(self, community: str, prefix: Oid = ROOT) -> list[tuple[Oid, int | str]]:
        """GETNEXT from ``prefix`` until leaving it; [] for a wrong community."""
        if community != self.settings.community:
            return []
        prefix = tuple(prefix)
        view = self._view
        i = bisect_right(view, (prefix,))
        out = []
        while i < len(view) and view[i][0][: len(prefix)] == prefix:
            out.append(view[i])
            i += 1
        return out

    # -- internals -----------------------------------------------------------------------
    def _update(self, at: float) -> list[TrapDelivery]:
        new = aggregate(self._round.values(), (ok for _, ok in self._reports.values()))
        old, self.status = self.status, new
        self._rebuild()
        if new == old:
            return []
        if self.log is not None:
            self.log.log(
                at,
                Severity.INFO if new is Status.OK else Severity.WARNING,
                LOG_SOURCE,
                f"Status changed from {old.name} to {new.name}",
            )
        uptime = max(0, round((at - self.started_at) * 100))
        out = []
        for r in self.settings.recipients:
            n = Notification(at, r, old, new, uptime)
            d = self.trap_sink.deliver(n, self.settings.trap_retries, self.settings.trap_timeout_ms)
            out.append(d)
            if not d.ok and self.log is not None:
                self.log.log(
                    at,
                    Severity.WARNING,
                    LOG_SOURCE,
                    f"Trap to {r.host}:{r.port} failed: {d.reason}",
                )
        self.deliveries.extend(out)
        return out

    def _rebuild(self) -> None:
        # the view is a function of these alone: a round or report that changed none of them
        # (every hour of a healthy building) keeps the published view
        state = (
            self.status,
            tuple(self._meters),
            tuple(self._meter_status.items()),
            tuple(self._reports.items()),
        )
        if state == self._view_of:
            return
        self._view_of = state
        rows: list[tuple[Oid, int | str]] = [(STATUS_REPORT + (0,), int(self.status))]
        for i, m in enumerate(self._meters, start=1):
            rows.append((METER_ENTRY + (METER_ADDRESS, i), m))
            rows.append((METER_ENTRY + (METER_STATUS, i), int(self._meter_status[m])))
        for slot, (name, ok) in self._reports.items():
            rows.append((REPORT_ENTRY + (REPORT_NAME, slot), name))
            rows.append((REPORT_ENTRY + (REPORT_STATUS, slot), int(1 if ok else 3)))
        self._view = tuple(sorted(rows))
