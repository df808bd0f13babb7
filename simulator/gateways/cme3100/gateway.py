"""The CMe3100 as one simulated device: installation, readout rounds, value database, push
and event reports, SNMP status and the log (seed 002 §4.2, §4.5.1, §6.5-6.9, §6.14, §6.20-6.33,
§6.39; CME3100.md).

:class:`Cme3100` sits on a wired M-Bus (:class:`simulator.mbus.master.Master` on a
:class:`~simulator.mbus.bus.Bus`) in a :class:`~simulator.core.world.World`:

- **start-up** (world time 0): a ``startup`` event, then installation from the meter list or
  a search (secondary or primary, block A timing at the search baud, 004 §6.25.1), then
  ``installation-done`` (and ``licence-exceeded`` when more meters are installed than the
  licence allows: the latest installed turn passive, :mod:`.installation`);
- **readout rounds** on the readout schedule (preset or cron, on the clock: ``0 * * * *``
  reads at minute 0 whatever time the run starts): every active meter in install order with
  block B timing at its own baud; each result goes to the value database (:mod:`.value_db`,
  raw telegrams, status byte) and to the SNMP model; a round that overruns the next firing
  makes the gateway skip that firing (counted); a round in which a meter failed raises
  ``readout-failed``;
- **push reports**: one :class:`~simulator.gateways.cme3100.push.PushSlot` per configured
  report, **event reports** on the events they list, both through the sink of their protocol;
- **SNMP** (:mod:`.snmp`): the Table 8 status after every round and report, with a
  notification to each trap recipient on a change (``snmp_status`` event).

The gateway's own clock (:mod:`.clock`: world time + RTC drift, NTP sync on its schedule,
steps) is what every schedule fires on and what report times and ``created`` columns print;
local time is UTC in this model (no time zone setting yet). Readout modes besides the
schedule (continuous, manual, job retries) and the operator's actions are in docs/cme3100.md
"Readout modes" and "Installation". Models never do real I/O: sinks are passed in.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache

from simulator.core import events as ev
from simulator.core.world import World
from simulator.gateways.cme3100.bus_lock import CONTINUOUS, BusLock
from simulator.gateways.cme3100.clock import GatewayClock, Ticker
from simulator.gateways.cme3100.gateway_config import Backup, auto_configuration, export_config
from simulator.gateways.cme3100.gateway_settings import Cme3100Settings, parse_schedule
from simulator.gateways.cme3100.installation import Installation, InstalledMeter, LicenceError
from simulator.gateways.cme3100.log import GatewayLog, Severity
from simulator.gateways.cme3100.push import PushSlot, envelope, slot_plan
from simulator.gateways.cme3100.readout import Readout, ReadoutStatus
from simulator.gateways.cme3100.reports.bodies import Event, MeterEntry
from simulator.gateways.cme3100.reports.identity import GatewayIdentity
from simulator.gateways.cme3100.reports.render import render
from simulator.gateways.cme3100.retries import JobSettings, RetryPlan
from simulator.gateways.cme3100.snmp import SnmpModel, SnmpSettings, TrapRecipient, TrapSink
from simulator.gateways.cme3100.transparent_mbus import TransparentMbus
from simulator.gateways.cme3100.value_db import StatusByteLogging, ValueDatabase
from simulator.gateways.cme3100.virtual_mbus import VirtualMbus, VirtualMeter
from simulator.mbus.address import SecondaryAddress
from simulator.mbus.master import Master
from simulator.mbus.meterlist import MeterListEntry
from simulator.mbus.settings import MasterSettings, MbusTiming
from simulator.sinks.base import Sink, Source

#: Log source names (004 §6.14.1 shot style).
LOG_READOUT, LOG_PUSH, LOG_SYSTEM = "MeterReadout", "PushReport", "System"
#: Continuous readout with no active meter looks again this often (s, bench).
CONTINUOUS_IDLE_S = 60.0


@dataclass
class RoundStats:
    """Readout rounds so far: started, skipped firings, meter readouts ok / failed."""

    rounds: int = 0
    skipped: int = 0
    ok: int = 0
    failed: int = 0
    round_starts: list[float] = field(default_factory=list)


class Cme3100:
    """One CMe3100 (module doc).

    ``master``: the gateway's M-Bus master on the bus of the emulated meters; ``sinks``: the
    :class:`~simulator.sinks.base.Sink` of each report and event report, by report name (its
    head-end: in-world, or a real transport); ``trap_sink``: where SNMP notifications go (default: the in-world receiver);
    ``meter_list``: the Table 4 entries to install at start-up, or None to search.
    """

    def __init__(
        self,
        world: World,
        settings: Cme3100Settings,
        master: Master,
        sinks: Mapping[str, Sink],
        *,
        meter_list: list[MeterListEntry] | None = None,
        search: str = "secondary",
        trap_sink: TrapSink | None = None,
        name: str = "cme3100",
        config_source: Source | None = None,
    ) -> None:
        self.world, self.settings, self.master, self.sinks = world, settings, master, sinks
        self.name = name
        self.identity = GatewayIdentity(serial=settings.serial)
        self.installation = Installation(settings.licence)
        self.db = ValueDatabase(status_byte_logging=StatusByteLogging(settings.status_byte_logging))
        self.log = GatewayLog()
        snmp = settings.snmp
        self.snmp = SnmpModel(
            SnmpSettings(
                port=snmp.port,
                community=snmp.community,
                recipients=tuple(TrapRecipient(t.host, t.port) for t in snmp.traps),
                trap_retries=snmp.trap_retries,
                trap_timeout_ms=snmp.trap_timeout_ms,
            ),
            trap_sink=trap_sink,
            log=self.log,
        )
        self.meter_list, self.search = meter_list, search
        self.schedule, _ = parse_schedule(settings.readout_schedule, world.rng(f"{name}/cron"))
        self.clock = GatewayClock(world, settings.time.rtc_drift_ppm)
        self.ticker = Ticker(self.clock, self.schedule)
        self.bus = BusLock(world)
        #: continuous readout's latest readout per meter: RAM only, never stored or reported
        self.ram: dict[str, Readout] = {}
        self._continuous: object | None = None
        self.last_round: list[Readout] = []
        #: where Auto Configuration fetches its CAD file (in-world by default)
        self.config_source = config_source
        self._auto_loop: object | None = None
        self.auto = auto_configuration(self, config_source)
        self.auto_ticker = Ticker(self.clock, self.schedule)  # its schedule set when started
        self.rounds = RoundStats()
        self._idle = world.event().succeed()  # fired while no readout round runs or is due
        self._rounds_due = 0
        self._round_results: dict[str, ReadoutStatus] = {}
        self._installed = False
        self._next_round: list = []  # synced reports waiting for a round due this instant
        plan = slot_plan(
            settings.adaptive_retries, settings.job_retries, settings.job_retry_offset_s
        )
        self.slots = [
            PushSlot(
                world,
                i + 1,
                slot,
                sinks[slot.name],
                self.identity,
                readouts=self._by_meter,
                round_done=self.round_done,
                timeout_s=settings.timeout_s(slot.protocol),
                plan=plan,
                source=f"{name}/report{i + 1}",
                on_result=self._report_result,
                clock=self.clock,
                meters=self.meter_entries,
            )
            for i, slot in enumerate(settings.reports)
        ]
        self.event_log: list[tuple[float, str, str]] = []
        self._event_seq = 0
        # Transparent M-Bus shares the bus with the gateway's own jobs through its BusLock
        # (docs/cme3100.md "Services"); with no service enabled nothing else takes the bus
        self.transparent = [
            TransparentMbus(world, master.bus, s, bus_lock=self.bus, name=f"{name}/transparent{i}")
            for i, s in enumerate((settings.transparent_mbus_1, settings.transparent_mbus_2), 1)
            if s.enabled
        ]

    # -- settings of the master ---------------------------------------------------------------
    def _master_settings(self, timing: MbusTiming) -> MasterSettings:
        s = self.settings
        return MasterSettings.from_timing(
            timing, multi_telegram=s.multi_telegram == "auto", max_telegrams=s.multi_telegram_limit
        )

    # -- processes ------------------------------------------------------------------------------
    def start(self) -> Cme3100:
        """Start up (install, then the readout loop), every push report slot and the NTP
        sync."""
        self.world.process(self._main())
        for slot in self.slots:
            slot.start()
        if self.settings.time.ntp:
            self.world.process(self._ntp())
        self._start_auto_config()
        return self

    # -- configuration (docs/cme3100.md "Configuration") ---------------------------------------
    def _start_auto_config(self) -> None:
        ac = self.settings.auto_config
        if self._auto_loop is not None:  # a changed schedule applies from now
            self.auto_ticker.schedule, _ = parse_schedule(
                ac.schedule, self.world.rng(f"{self.name}/cad-cron")
            )
            self.clock.wake()
        elif ac.enabled and ac.url:
            self.auto_ticker.schedule, _ = parse_schedule(
                ac.schedule, self.world.rng(f"{self.name}/cad-cron")
            )
            self._auto_loop = self.world.process(self._auto_config())

    def _auto_config(self) -> Generator:
        """Auto Configuration on its schedule (002 §6.31.1) while enabled with a URL."""
        while True:
            yield from self.auto_ticker.next()
            ac = self.settings.auto_config
            if not (ac.enabled and ac.url):
                break
            self.auto.sync()
        self._auto_loop = None

    def restore(self, backup: Backup) -> None:
        """Take the settings and installed meters of an imported backup
        (:func:`~.gateway_config.import_config`) before :meth:`start`; the start-up then
        installs nothing new."""
        self.settings = backup.settings
        self.installation = backup.installation()
        self.snmp.set_meters([_meter_id(m) for m in self.installation.meters])
        self.meter_list = []

    def export(self) -> str:
        """The configuration backup text (:func:`~.gateway_config.export_config`)."""
        return export_config(self.settings, self.installation)

    def _main(self) -> Generator:
        self.raise_event("startup", f"firmware {self.identity.application}")
        yield from self.install()
        if self.settings.continuous_readout:
            self._start_continuous()
        while True:
            nxt = yield from self.ticker.next()
            failed = yield from self.read_all("schedule")
            if failed:
                self.world.process(self._job_retries(failed, self._job_plan(manual=False)))
            # firings that passed during the round are skipped (counted)
            self.rounds.skipped += self.ticker.passed(nxt)

    def install(self) -> Generator:
        """Install the meter list, or search the bus (block A timing, search baud)."""
        yield from self.bus.acquire("install")
        try:
            entries, method = yield from self._install_entries()
        finally:
            self.bus.release()
        result = self.installation.install(entries)
        self._installed = True
        self.snmp.set_meters([_meter_id(m) for m in self.installation.meters])
        self.world.emit(ev.Install(source=self.name, method=method, meters=len(result.installed)))
        readouts: list[Readout] = []
        if any(er.template % 1000 == 1 for er in self._reports_on("installation-done")):
            # a commission report is configured: read every active meter once for it
            yield from self.read_all("install")
            readouts = self.last_round
        self.raise_event(
            "installation-done",
            f"{len(result.installed)} installed, {len(self.installation.active())} active",
            readouts,
        )
        if self.installation.exceeded:
            self.raise_event(
                "licence-exceeded",
                f"{len(self.installation.meters)} meters, licence {self.installation.licence}",
            )

    def _install_entries(self) -> Generator:
        master = self.master
        if self.meter_list is not None:
            entries = list(self.meter_list)
            method = "meter_list"
        else:
            master.settings = self._master_settings(self.settings.search)
            master.bus.baud = self.settings.search_baud
            if self.search == "primary":
                found_p = yield from master.scan_primary(range(0, 251))
                entries = [
                    MeterListEntry(f"p{p}", "00000000", self.settings.search_baud, "primary", p)
                    for p in found_p
                ]
            else:
                found = yield from master.search_secondary()
                entries = [
                    MeterListEntry(str(a), str(a), self.settings.search_baud, "secondary")
                    for a in found
                ]
            method = f"{self.search}_search"
        return entries, method

    def read_all(
        self, trigger: str = "manual", meters: list[InstalledMeter] | None = None
    ) -> Generator:
        """One readout round over ``meters`` (default: the active meters; block B timing,
        each meter's baud) once the bus is free -> the meters that failed. ``trigger``:
        schedule, manual, retry, install."""
        if not self._rounds_due:  # a due round counts as running: preset reports wait for it
            self._idle = self.world.event()
        self._rounds_due += 1
        yield from self.bus.acquire(trigger)
        try:
            return (yield from self._round(trigger, meters))
        finally:
            self.bus.release()
            self._rounds_due -= 1
            if not self._rounds_due:
                idle, self._idle = self._idle, self.world.event().succeed()
                idle.succeed()
                waiting, self._next_round = self._next_round, []
                for event in waiting:
                    event.succeed()

    def _round(self, trigger: str, meters: list[InstalledMeter] | None) -> Generator:
        world, master, rounds = self.world, self.master, self.rounds
        started = world.now
        rounds.rounds += 1
        rounds.round_starts.append(started)
        master.settings = self._master_settings(self.settings.readout)
        results: dict[str, ReadoutStatus] = {}
        failed: list[InstalledMeter] = []
        self.last_round: list[Readout] = []
        for meter in self.installation.active() if meters is None else meters:
            readout = yield from self.read_meter(meter)
            yield from self.bus.pass_turn(trigger)  # a waiting Transparent request goes now
            self.last_round.append(readout)
            results[readout.meter] = ReadoutStatus(readout.status)
            if readout.status != ReadoutStatus.OK:
                failed.append(meter)
        ok = sum(1 for s in results.values() if s == ReadoutStatus.OK)
        rounds.ok += ok
        rounds.failed += len(failed)
        world.emit(
            ev.ReadoutRound(
                source=self.name,
                trigger=trigger,
                started=round(started, 9),
                meters=len(results),
                ok=ok,
                failed=len(failed),
                passive=len(self.installation.passive()),
            )
        )
        # Table 8 looks at the last readout round: a job retry updates that round's outcome
        # for the meters it re-read rather than counting as a round of its own (bench rule)
        merged = {**self._round_results, **results} if trigger == "retry" else results
        self._round_results = merged
        self._snmp(self.snmp.readout_round(world.now, merged))
        return failed

    def read_meter(self, meter: InstalledMeter, *, store: bool = True) -> Generator:
        """Read one meter (the caller holds the bus) -> its :class:`Readout`; stored in the
        value database and logged unless ``store`` is False (continuous readout)."""
        world, master = self.world, self.master
        master.bus.baud = meter.entry.baud
        ro = yield from master.read(meter.entry.target)
        status = ReadoutStatus.OK if ro.ok else ReadoutStatus.FAILED
        telegrams = tuple(ro.frames) if ro.ok else ()
        readout = Readout(
            meter=_meter_id(meter),
            read_at=self.clock.local(ro.finished),
            telegrams=telegrams,
            status=status,
            position=meter.order,
            primary_address=meter.entry.primary,
            at=ro.finished,
            status_byte=ro.telegrams[0].header.status if ro.ok and ro.telegrams else None,
            message="Readout successfully" if ro.ok else (ro.error or "failed"),
            decoded=tuple(ro.telegrams) if ro.ok else (),  # decode_telegram of each frame
        )
        if not store:
            return readout
        entry = self.db.store(readout)
        if entry is not None:
            self.log.log(world.now, entry.type, entry.source, entry.message)
        if not ro.ok:
            self.log.log(
                world.now, Severity.WARNING, LOG_READOUT, f"{meter.position}: {readout.message}"
            )
        return readout

    # -- readout modes (docs/cme3100.md "Readout modes") ----------------------------------------
    def _job_plan(self, manual: bool) -> RetryPlan:
        s = self.settings
        return JobSettings(
            s.job_retries, s.job_retry_offset_s, s.job_manual_retries, s.job_manual_retry_offset_s
        ).plan(manual=manual)

    def _job_retries(self, failed: list[InstalledMeter], plan: RetryPlan) -> Generator:
        """Job retries (002 §6.33): re-read the meters that failed, ``plan.spacing_s`` after
        the round ended, up to ``plan.count`` times; meters still failing (or switched
        passive meanwhile, then not retried) raise one ``readout-failed``."""
        for _ in range(plan.count):
            yield self.world.timeout(plan.spacing_s)
            retry = [m for m in failed if m.state == "active"]
            if not retry:
                break
            failed = yield from self.read_all("retry", retry)
            if not failed:
                break
        if failed:
            self.raise_event("readout-failed", ", ".join(m.position for m in failed[:10]))

    def manual_read(self, position: str | None = None) -> Generator:
        """Meters > "Read all & store", or one meter's readout (002 §6.22): a manual job
        with the manual job retries; a passive or unknown meter is logged, not read."""
        meters = None
        if position is not None:
            try:
                meter = self.installation.meter(position)
            except KeyError:
                meter = None
            if meter is None or meter.state != "active":
                why = "not installed" if meter is None else "passive"
                self.log.log(self.world.now, Severity.WARNING, LOG_READOUT, f"{position}: {why}")
                return
            meters = [meter]
        failed = yield from self.read_all("manual", meters)
        yield from self._job_retries(failed, self._job_plan(manual=True))

    def _start_continuous(self) -> None:
        if self._continuous is None:
            self._continuous = self.world.process(self._continuous_loop())

    def _continuous_loop(self) -> Generator:
        """Continuous readout (002 §6.23): active meters back to back into :attr:`ram`,
        yielding the bus to any round between two meters."""
        while self.settings.continuous_readout:
            active = self.installation.active()
            if not active:
                yield self.world.timeout(CONTINUOUS_IDLE_S)
                continue
            for meter in active:
                if meter.state != "active":
                    continue
                yield from self.bus.acquire("continuous", CONTINUOUS)
                try:
                    self.master.settings = self._master_settings(self.settings.readout)
                    readout = yield from self.read_meter(meter, store=False)
                finally:
                    self.bus.release()
                self.ram[readout.meter] = readout
        self._continuous = None

    # -- time (docs/cme3100.md "Time") ---------------------------------------------------------
    def _ntp(self) -> Generator:
        """NTP sync on its schedule (002 §6.3.1): a difference of at least the accepted one
        steps the clock to true (world) time; a smaller one changes nothing."""
        schedule, _ = parse_schedule(
            self.settings.time.sync_schedule, self.world.rng(f"{self.name}/ntp-cron")
        )
        self.ntp_ticker = Ticker(self.clock, schedule)
        while True:
            yield from self.ntp_ticker.next()
            diff = self.clock.offset_s()
            if self.settings.time.ntp and abs(diff) >= self.settings.time.accepted_diff_s:
                self.step_clock(-diff, "ntp")

    def step_clock(self, seconds: float, reason: str = "scenario") -> None:
        """Step the gateway clock by ``seconds`` (s, + forward) now (Gaps #13)."""
        before = self.clock.local()
        self.clock.step(seconds, reason)
        after = self.clock.local()
        self.world.emit(
            ev.ClockStep(
                source=self.name,
                reason=reason,
                step_s=round(seconds, 6),
                before=before.isoformat(),
                after=after.isoformat(),
            )
        )
        self.log.log(
            self.world.now, Severity.INFO, LOG_SYSTEM, f"clock {seconds:+.3f} s ({reason})"
        )

    # -- operator actions (docs/cme3100.md "Installation", "Configuration") -------------------
    def set_meter_state(self, position: str, state: str) -> bool:
        """Switch one meter active or passive (002 §6.16.2); True if done. Refused (logged,
        nothing changes) beyond the licence or for an unknown meter."""
        try:
            self.installation.set_state(position, state)  # type: ignore[arg-type]
        except (LicenceError, KeyError) as exc:
            self.log.log(self.world.now, Severity.ERROR, LOG_SYSTEM, f"{position}: {exc}")
            return False
        self.raise_event("configuration-changed", f"meter {position} {state}")
        return True

    def load_licence(self, licence: int) -> None:
        """Load a licence file of ``licence`` meters (002 §4.5.1); raises
        :class:`~.installation.LicenceError` for a size that is no licence step."""
        self.installation.set_licence(licence)
        self.settings = self.settings.model_copy(update={"licence": self.installation.licence})
        self.raise_event("configuration-changed", f"licence {licence}")
        if self.installation.exceeded:
            self.raise_event(
                "licence-exceeded",
                f"{len(self.installation.meters)} meters, licence {self.installation.licence}",
            )

    def configure(self, new: Cme3100Settings, why: str = "configuration") -> list[str]:
        """Apply ``new`` settings now -> the top-level keys that changed (a
        ``configuration-changed`` event names them). Schedules, the clock, the licence,
        continuous readout, M-Bus and job settings take effect at once; what
        :data:`~.gateway_config.RESTART_KEYS` names is refused by the callers."""
        old, self.settings = self.settings, new
        changed = [k for k in type(new).model_fields if getattr(old, k) != getattr(new, k)]
        if not changed:
            return changed
        if new.readout_schedule != old.readout_schedule:
            self.schedule, _ = parse_schedule(
                new.readout_schedule, self.world.rng(f"{self.name}/cron")
            )
            self.ticker.schedule = self.schedule
        if new.time.sync_schedule != old.time.sync_schedule and hasattr(self, "ntp_ticker"):
            self.ntp_ticker.schedule, _ = parse_schedule(
                new.time.sync_schedule, self.world.rng(f"{self.name}/ntp-cron")
            )
        if new.time.rtc_drift_ppm != old.time.rtc_drift_ppm:
            self.clock.set_drift(new.time.rtc_drift_ppm)
        else:
            self.clock.wake()  # every schedule looks again
        if new.licence != old.licence:
            self.installation.set_licence(new.licence)
        if new.continuous_readout:
            self._start_continuous()
        if new.auto_config != old.auto_config:
            self._start_auto_config()
        self.raise_event("configuration-changed", f"{why}: {', '.join(changed)}")
        return changed

    # -- events and reports -------------------------------------------------------------------
    def _reports_on(self, name: str) -> list:
        return [er for er in self.settings.event_reports if name in er.events]

    def raise_event(self, name: str, detail: str = "", readouts: Sequence[Readout] = ()) -> None:
        """Something happened that event reports may send (x005, CME3100.md §6)."""
        world = self.world
        self.event_log.append((world.now, name, detail))
        world.emit(ev.GatewayEvent(source=self.name, event=name, detail=detail))
        self.log.log(world.now, Severity.INFO, LOG_SYSTEM, f"event {name}: {detail}")
        at = self.clock.local()
        for er in self._reports_on(name):
            event = Event(name, at, (("detail", detail.replace(";", ",")),) if detail else ())
            # an x001 event report is the commission report: the install readout's values
            content = {"readouts": readouts} if er.template % 1000 == 1 else {"event": event}
            for rendered in render(er.template, self.identity, at, **content):
                self._event_seq += 1
                for report in envelope(rendered, er, self.identity, self._event_seq):  # type: ignore[arg-type]
                    delivery = self.sinks[er.name].deliver(report)
                    world.emit(
                        ev.PushAttempt(
                            source=f"{self.name}/events",
                            report=er.name,
                            protocol=er.protocol,
                            template=er.template,
                            attempt=0,
                            ok=delivery.ok,
                            status=delivery.status,
                            reason=delivery.reason,
                            values=0,
                            resent=0,
                            bytes=len(report.body),
                            file=rendered.name,
                            duration_s=0.0,
                        )
                    )

    def _report_result(self, at: float, slot: int, ok: bool, name: str) -> None:
        if not ok:
            self.log.log(at, Severity.ERROR, LOG_PUSH, f"{name}: not delivered")
        self._snmp(self.snmp.report_result(at, slot, ok, name))

    def _snmp(self, deliveries: list) -> None:
        if not deliveries:
            return
        n = deliveries[0].notification
        self.world.emit(
            ev.SnmpStatus(
                source=self.name,
                old=int(n.old),
                new=int(n.new),
                traps=sum(1 for d in deliveries if d.ok),
                recipients=len(deliveries),
            )
        )

    # -- services (002 §6.26-6.28, docs/cme3100.md "Services") -------------------------------
    def virtual_meters(self) -> list[VirtualMeter]:
        """Every installed meter as the Virtual M-Bus service presents it."""
        return [
            VirtualMeter(_meter_id(m), m.entry.primary, m.entry.secondary)
            for m in self.installation.meters
        ]

    def virtual_mbus(self) -> VirtualMbus:
        """The Virtual M-Bus service over this gateway's value database (its settings)."""
        s = self.settings.virtual_mbus
        return VirtualMbus(self.db, self.virtual_meters, expiry_s=s.expiry_s, expired=s.expired)

    def meter_entries(self) -> list[MeterEntry]:
        """The meter list as the x007 status report shows it: state, last read, last status."""
        out = []
        for m in self.installation.meters:
            meter = _meter_id(m)
            last = self.db.latest(meter)
            addr = _address_of(m, last)
            out.append(
                MeterEntry(
                    position=m.order,
                    meter=meter,
                    primary_address=m.entry.primary,
                    manufacturer=addr.manufacturer if addr else "",
                    version=addr.version if addr else 0,
                    medium=addr.medium if addr else 0,
                    baud_rate=m.entry.baud,
                    addressing=m.entry.mode,
                    state=m.state,
                    last_read=None if last is None else last.read_at,
                    last_status="" if last is None else str(last.status),
                )
            )
        return out

    # -- views --------------------------------------------------------------------------------
    def _by_meter(self) -> dict[str, Sequence[Readout]]:
        # views, not copies: every report attempt reads them (the ledger bisects)
        return {m: self.db.rows(m) for m in self.db.meters()}

    def round_done(self):
        """An event for a synced report (002 §6.9.1): it fires when the round running (or due
        and waiting for the bus) has ended, or the round the readout schedule starts at this
        very instant, whichever process SimPy happens to run first; at once otherwise."""
        local = self.clock.local()
        due_now = self.schedule.next_after(local - timedelta(microseconds=1)) == local
        if self._installed and due_now and not self._rounds_due:
            event = self.world.event()
            self._next_round.append(event)
            return event
        return self._idle

    def local_time(self) -> datetime:
        return self.clock.local()


def _meter_id(meter: InstalledMeter) -> str:
    """The 8-digit identification reports print for ``meter`` (primary meters without a
    secondary address print their position's digits)."""
    sec = meter.entry.secondary
    if sec and sec != "00000000":
        return _id_digits(sec) if len(sec) == 16 else sec[:8]
    return f"{meter.entry.primary or 0:08d}"


@lru_cache(maxsize=4096)
def _id_digits(secondary: str) -> str:
    # Every readout of a meter names it: parse its 16-hex secondary address once.
    return f"{SecondaryAddress.parse(secondary).id:08d}"


def _address_of(meter: InstalledMeter, last: Readout | None) -> SecondaryAddress | None:
    """The meter's full secondary address: from its latest telegram, else from the list."""
    if last is not None and last.telegrams:
        from simulator.mbus.errors import MBusError
        from simulator.mbus.telegram import decode_telegram

        try:
            return decode_telegram(last.telegrams[0]).header.address
        except MBusError:  # a stored telegram the codec rejects: fall back to the list
            pass
    sec = meter.entry.secondary
    return SecondaryAddress.parse(sec) if len(sec) == 16 else None
