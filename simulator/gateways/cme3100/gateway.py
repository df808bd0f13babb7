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

Local time is UTC in this model (no time zone setting yet): report times and ``created``
columns are the world clock. Models never do real I/O: sinks are passed in.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import simpy

from simulator.core import events as ev
from simulator.core.world import World
from simulator.gateways.cme3100.gateway_settings import Cme3100Settings, parse_schedule
from simulator.gateways.cme3100.installation import Installation, InstalledMeter
from simulator.gateways.cme3100.log import GatewayLog, Severity
from simulator.gateways.cme3100.push import PushSlot, envelope, slot_plan
from simulator.gateways.cme3100.readout import Readout, ReadoutStatus
from simulator.gateways.cme3100.reports.bodies import Event, MeterEntry
from simulator.gateways.cme3100.reports.identity import GatewayIdentity
from simulator.gateways.cme3100.reports.render import render
from simulator.gateways.cme3100.snmp import SnmpModel, SnmpSettings, TrapRecipient, TrapSink
from simulator.gateways.cme3100.transparent_mbus import TransparentMbus
from simulator.gateways.cme3100.value_db import StatusByteLogging, ValueDatabase
from simulator.gateways.cme3100.virtual_mbus import VirtualMbus, VirtualMeter
from simulator.mbus.address import SecondaryAddress
from simulator.mbus.master import Master
from simulator.mbus.meterlist import MeterListEntry
from simulator.mbus.settings import MasterSettings, MbusTiming
from simulator.sinks.base import Sink

#: Log source names (004 §6.14.1 shot style).
LOG_READOUT, LOG_PUSH, LOG_SYSTEM = "MeterReadout", "PushReport", "System"


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
        self._installed = False
        self.schedule, _ = parse_schedule(settings.readout_schedule, world.rng(f"{name}/cron"))
        self.rounds = RoundStats()
        self._running = False
        self._round_end = world.event()  # fires when the current or next round ends
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
                meters=self.meter_entries,
            )
            for i, slot in enumerate(settings.reports)
        ]
        self.event_log: list[tuple[float, str, str]] = []
        self._event_seq = 0
        # Transparent M-Bus shares the bus with readouts (docs/cme3100.md "Services"); without
        # an enabled service there is no lock, and the rounds run exactly as before
        services = [
            (i, s)
            for i, s in enumerate((settings.transparent_mbus_1, settings.transparent_mbus_2), 1)
            if s.enabled
        ]
        self.bus_lock = simpy.Resource(world.env, capacity=1) if services else None
        self.transparent = [
            TransparentMbus(
                world, master.bus, s, bus_lock=self.bus_lock, name=f"{name}/transparent{i}"
            )
            for i, s in services
        ]

    # -- settings of the master ---------------------------------------------------------------
    def _master_settings(self, timing: MbusTiming) -> MasterSettings:
        s = self.settings
        return MasterSettings.from_timing(
            timing, multi_telegram=s.multi_telegram == "auto", max_telegrams=s.multi_telegram_limit
        )

    # -- processes ------------------------------------------------------------------------------
    def start(self) -> Cme3100:
        """Start up (install, then the readout loop) and every push report slot."""
        self.world.process(self._main())
        for slot in self.slots:
            slot.start()
        return self

    def _main(self) -> Generator:
        self.raise_event("startup", f"firmware {self.identity.application}")
        yield from self._holding_bus(self.install())
        while True:
            nxt = self.schedule.next_after(self.world.clock())
            yield self.world.timeout((nxt - self.world.start).total_seconds() - self.world.now)
            yield from self.read_all("schedule")
            # firings that passed during the round are skipped (counted)
            t = nxt
            while (t := self.schedule.next_after(t)) <= self.world.clock():
                self.rounds.skipped += 1

    def install(self) -> Generator:
        """Install the meter list, or search the bus (block A timing, search baud)."""
        world, master = self.world, self.master
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
        result = self.installation.install(entries)
        self._installed = True
        self.snmp.set_meters([_meter_id(m) for m in self.installation.meters])
        world.emit(ev.Install(source=self.name, method=method, meters=len(result.installed)))
        self.raise_event(
            "installation-done",
            f"{len(result.installed)} installed, {len(self.installation.active())} active",
        )
        if self.installation.exceeded:
            self.raise_event(
                "licence-exceeded",
                f"{len(self.installation.meters)} meters, licence {self.installation.licence}",
            )

    def read_all(self, trigger: str = "manual") -> Generator:
        """One readout round over the active meters (block B timing, each meter's baud)."""
        world, master, rounds = self.world, self.master, self.rounds
        self._running = True
        started = world.now
        rounds.rounds += 1
        rounds.round_starts.append(started)
        master.settings = self._master_settings(self.settings.readout)
        results: dict[str, ReadoutStatus] = {}
        failed: list[str] = []
        try:
            for meter in self.installation.active():
                readout = yield from self._holding_bus(self.read_meter(meter))
                results[readout.meter] = ReadoutStatus(readout.status)
                if readout.status != ReadoutStatus.OK:
                    failed.append(meter.position)
        finally:
            self._running = False
            end, self._round_end = self._round_end, world.event()
            end.succeed()
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
        self._snmp(self.snmp.readout_round(world.now, results))
        if failed:
            self.raise_event("readout-failed", ", ".join(failed[:10]))

    def _holding_bus(self, proc: Generator) -> Generator:
        """Run ``proc`` holding the bus lock (when a Transparent M-Bus service shares it)."""
        if self.bus_lock is None:
            return (yield from proc)
        with self.bus_lock.request() as req:
            yield req
            return (yield from proc)

    def read_meter(self, meter: InstalledMeter) -> Generator:
        """Read one meter and store the readout (a manual readout of one meter, 002 §6.22)."""
        world, master = self.world, self.master
        master.bus.baud = meter.entry.baud
        ro = yield from master.read(meter.entry.target)
        status = ReadoutStatus.OK if ro.ok else ReadoutStatus.FAILED
        telegrams = tuple(ro.frames) if ro.ok else ()
        readout = Readout(
            meter=_meter_id(meter),
            read_at=world.clock(ro.finished).replace(tzinfo=None),
            telegrams=telegrams,
            status=status,
            position=meter.order,
            primary_address=meter.entry.primary,
            at=ro.finished,
            status_byte=ro.telegrams[0].header.status if ro.ok and ro.telegrams else None,
            message="Readout successfully" if ro.ok else (ro.error or "failed"),
        )
        entry = self.db.store(readout)
        if entry is not None:
            self.log.log(world.now, entry.type, entry.source, entry.message)
        if not ro.ok:
            self.log.log(
                world.now, Severity.WARNING, LOG_READOUT, f"{meter.position}: {readout.message}"
            )
        return readout

    # -- events and reports -------------------------------------------------------------------
    def raise_event(self, name: str, detail: str = "") -> None:
        """Something happened that event reports may send (x005, CME3100.md §6)."""
        world = self.world
        self.event_log.append((world.now, name, detail))
        world.emit(ev.GatewayEvent(source=self.name, event=name, detail=detail))
        self.log.log(world.now, Severity.INFO, LOG_SYSTEM, f"event {name}: {detail}")
        at = world.clock().replace(tzinfo=None)
        for er in self.settings.event_reports:
            if name not in er.events:
                continue
            event = Event(name, at, (("detail", detail.replace(";", ",")),) if detail else ())
            for rendered in render(er.template, self.identity, at, event=event):
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

    # -- views --------------------------------------------------------------------------------
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

    def _by_meter(self) -> dict[str, list[Readout]]:
        return {m: self.db.readouts(m) for m in self.db.meters()}

    def round_done(self):
        """An event for a synced report (002 §6.9.1): it fires when the round running now, or
        the one the readout schedule starts at this very instant, has ended; at once when no
        round is running or due."""
        world = self.world
        due = self.schedule.next_after(world.clock() - timedelta(microseconds=1)) == world.clock()
        if self._running or (due and self._installed):
            return self._round_end
        return world.event().succeed()

    def local_time(self) -> datetime:
        return self.world.clock().replace(tzinfo=None)


def _meter_id(meter: InstalledMeter) -> str:
    """The 8-digit identification reports print for ``meter`` (primary meters without a
    secondary address print their position's digits)."""
    sec = meter.entry.secondary
    if sec and sec != "00000000":
        return f"{SecondaryAddress.parse(sec).id:08d}" if len(sec) == 16 else sec[:8]
    return f"{meter.entry.primary or 0:08d}"


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
