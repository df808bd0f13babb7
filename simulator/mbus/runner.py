"""``meterbench run`` for ``kind = "mbus"``: build the segment, install the meters, read them.

The run: validate the scenario (every problem at once), build the bus (master port, cable)
and the slaves, then one master process installs the meters (secondary search at each of
``readout.search_bauds``, a primary scan, or a CMe3100 meter list) and reads every installed
meter each ``readout.interval_min`` on the interval boundary (a round that overruns the next
boundary makes the master skip to the following one, as a cron-driven gateway would).

Files in ``options.out_dir``: ``trace.jsonl`` (every frame, readout, search step, fault and
overload; JSON lines, byte-identical for the same scenario and seed) and ``readouts.csv`` (one
row per record per successful readout). The summary has ``meters_found``, ``readouts_ok``,
``readouts_failed``, ``collisions``, ``sim_seconds``, ``seed`` and more (docs/mbus.md).
"""

from __future__ import annotations

import csv
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simulator.core import events as ev
from simulator.core.trace import Trace
from simulator.core.world import World
from simulator.mbus.address import SecondaryAddress, SecondaryMask
from simulator.mbus.bus import Bus
from simulator.mbus.electrical import Cable, MasterPort
from simulator.mbus.faults import Fault
from simulator.mbus.frames import parse_frame
from simulator.mbus.master import Master, MasterSettings, Readout
from simulator.mbus.meterlist import read_meter_list
from simulator.mbus.profiles import TEMPLATES, RecordSpec
from simulator.mbus.scenario_model import (
    MbusScenario,
    SlaveGroup,
    group_ids,
    group_primaries,
    validate,
)
from simulator.mbus.slave import ResponseDelay, Slave, read_hex_file
from simulator.mbus.telegram import decode_telegram
from simulator.scenario import RunOptions, RunResult, ScenarioDoc, ScenarioError

CSV_COLUMNS = (
    "time",
    "t_s",
    "meter",
    "address",
    "telegram",
    "function",
    "storage",
    "tariff",
    "subunit",
    "quantity",
    "unit",
    "value",
)


@dataclass
class Meter:
    """An installed meter: how the master addresses it, at which baud, under which name."""

    position: str
    target: int | SecondaryAddress | SecondaryMask
    baud: int
    ok: int = 0
    failed: int = 0


@dataclass
class Segment:
    """Everything a run builds: world, bus, slaves, master."""

    world: World
    bus: Bus
    slaves: list[Slave]
    master: Master
    scenario: MbusScenario
    meters: list[Meter] = field(default_factory=list)


def master_settings(sc: MbusScenario) -> MasterSettings:
    s = sc.bus.master.settings
    return MasterSettings(
        response_timeout=s.response_timeout_ms / 1000,
        readout_retries=s.readout_retries,
        selection_retries=s.selection_retries,
        init_idle=s.init_idle_ms / 1000,
        collision_idle=s.collision_idle_ms / 1000,
        request_idle=s.request_idle_ms / 1000,
        multi_telegram=s.multi_telegram == "auto",
        max_telegrams=s.multi_telegram_limit,
        send_nke=s.send_nke,
        hex_search=s.hex_search,
        f_nibble_search=s.f_nibble_search,
    )


def build_slaves(world: World, group: SlaveGroup, doc: ScenarioDoc) -> list[Slave]:
    """The slaves of one ``[[slaves]]`` group."""
    faults = [
        Fault(
            f.kind,
            f.probability,
            None if f.delay_ms is None else f.delay_ms / 1000,
            f.count,
            tuple(f.commands),
        )
        for f in group.faults
    ]
    if group.delay_ms is not None:
        delay = ResponseDelay(group.delay_ms[0] / 1000, group.delay_ms[1] / 1000, unit="s")
    else:
        delay = ResponseDelay(*group.delay_window)
    common: dict[str, Any] = dict(
        bauds=tuple(group.bauds),
        baud=group.baud,
        unit_loads=group.unit_loads,
        delay=delay,
        faults=faults,
        distance_m=group.distance_m,
        space_current_ma=group.space_current_ma,
        status=group.status,
    )
    if group.telegram is not None:
        files = group.telegram if isinstance(group.telegram, list) else [group.telegram]
        golden = [read_hex_file(doc.resolve_path(f)) for f in files]
        header = decode_telegram(parse_frame(golden[0])).header
        if header.address is None:
            raise ScenarioError(
                [
                    doc.issue(
                        ("slaves",),
                        f"golden telegram {files[0]} has no "
                        "long header (CI 72): no secondary address",
                    )
                ]
            )
        return [
            Slave(
                world,
                header.address,
                primary=group.primary,
                golden=golden,
                name=_name(header.address),
                **common,
            )
        ]
    assert group.template is not None
    tpl = TEMPLATES[group.template]
    out = []
    for ident, prim in zip(group_ids(group), group_primaries(group), strict=True):
        addr = SecondaryAddress(
            ident,
            group.manufacturer.upper(),
            group.version,
            tpl.medium if group.medium is None else group.medium,
        )
        name = _name(addr)
        records = tpl.build(world.rng(f"{name}/profile"), group.telegrams)
        if group.profile:
            records = [_override(r, group.profile.get(r.quantity)) for r in records]
        out.append(
            Slave(
                world,
                addr,
                primary=prim,
                records=records,
                telegrams=group.telegrams,
                name=name,
                **common,
            )
        )
    return out


def _override(spec: RecordSpec, fields: dict[str, float] | None) -> RecordSpec:
    """The record with its profile's parameters replaced (validated in scenario_model)."""
    if not fields:
        return spec
    return dataclasses.replace(spec, profile=dataclasses.replace(spec.profile, **fields))


def _name(addr: SecondaryAddress) -> str:
    # The full 16-hex address keeps names (and so random streams) unique even for two meters
    # that share an ID and differ only in manufacturer/version/medium.
    return f"slave/{addr}"


def build(
    doc: ScenarioDoc,
    sc: MbusScenario,
    seed: int,
    trace: Trace | None = None,
    *,
    realtime: bool = False,
) -> Segment:
    """Build world, bus, slaves and master for a validated scenario.

    ``realtime=True`` builds the same segment in a real-time world (the serial bridge's
    ``meterbench serve``); the master is built but only started by :func:`run`.
    """
    world = World(seed, start=sc.start, trace=trace, realtime=realtime)
    port = MasterPort(
        max_unit_loads=sc.bus.master.max_unit_loads,
        mark_voltage=sc.bus.master.mark_voltage,
        collision_detector=sc.bus.master.collision_detector,
        collision_threshold_ma=sc.bus.master.collision_threshold_ma,
    )
    c = sc.bus.cable
    cable = Cable(
        length_m=c.length_m,
        ohm_per_m=c.ohm_per_m,
        nf_per_m=c.nf_per_m,
        overspeed_ber=c.overspeed_ber,
    )
    bus = Bus(world, baud=sc.bus.baud, master=port, cable=cable)
    slaves = [s for g in sc.slaves for s in build_slaves(world, g, doc)]
    for s in slaves:
        bus.attach(s)
    master = Master(bus, master_settings(sc))
    return Segment(world, bus, slaves, master, sc)


def _install(seg: Segment, doc: ScenarioDoc) -> Any:
    """Master process part 1: find or list the meters (generator)."""
    r = seg.scenario.readout
    master, bus = seg.master, seg.bus
    if r.install == "meter_list":
        assert r.meter_list is not None
        for e in read_meter_list(doc.resolve_path(r.meter_list)):
            if e.mode == "esecondary":
                seg.world.emit(
                    ev.Install(
                        source=master.name,
                        position=e.position,
                        skipped="esecondary: a wireless meter, not on the wired bus",
                    )
                )
                continue
            seg.meters.append(Meter(e.position, e.target, e.baud))
        seg.world.emit(ev.Install(source=master.name, method="meter_list", meters=len(seg.meters)))
        return
    for baud in r.search_bauds:
        bus.baud = baud
        if r.install == "primary_scan":
            found_p = yield from master.scan_primary(range(0, 251))
            seg.meters += [Meter(f"p{p}@{baud}", p, baud) for p in found_p]
        else:
            found = yield from master.search_secondary(r.search_mask)
            known = {str(m.target) for m in seg.meters}
            seg.meters += [Meter(str(a), a, baud) for a in found if str(a) not in known]
    seg.world.emit(ev.Install(source=master.name, method=r.install, meters=len(seg.meters)))


def _rows(world: World, meter: Meter, ro: Readout) -> list[list[Any]]:
    rows = []
    when = world.clock(ro.finished).isoformat()
    for ti, tg in enumerate(ro.telegrams):
        addr = str(tg.header.address) if tg.header.address is not None else ""
        for rec in tg.records:
            value = rec.value
            if hasattr(value, "isoformat"):
                value = value.isoformat()
            elif isinstance(value, bytes):
                value = value.hex()
            rows.append(
                [
                    when,
                    round(ro.finished, 6),
                    meter.position,
                    addr,
                    ti,
                    rec.function,
                    rec.storage,
                    rec.tariff,
                    rec.subunit,
                    rec.quantity,
                    rec.unit,
                    value,
                ]
            )
    return rows


def run(doc: ScenarioDoc, options: RunOptions) -> RunResult:
    """Run an ``mbus`` scenario (see the module doc); :class:`ScenarioError` if invalid."""
    sc = validate(doc)
    seed, hours = options.resolve(sc.seed, sc.hours)
    end = hours * 3600.0
    out = Path(options.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    trace_path, csv_path = out / "trace.jsonl", out / "readouts.csv"
    progress = options.report
    stats = {"rounds": 0, "readouts_ok": 0, "readouts_failed": 0, "records": 0, "rounds_skipped": 0}
    with (
        trace_path.open("w", encoding="utf-8", newline="\n") as sink,
        csv_path.open("w", encoding="utf-8", newline="") as fcsv,
    ):
        writer = csv.writer(fcsv, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        seg = build(doc, sc, seed, Trace(keep=False, sink=sink))
        world, master, bus = seg.world, seg.master, seg.bus
        interval = sc.readout.interval_min * 60.0

        def main():
            progress(0.0, "installing meters")
            yield from _install(seg, doc)
            k = int(world.now // interval) + 1
            while k * interval < end:
                yield world.timeout(k * interval - world.now)
                stats["rounds"] += 1
                for meter in seg.meters:
                    bus.baud = meter.baud
                    ro = yield from master.read(meter.target)
                    if ro.ok:
                        meter.ok += 1
                        stats["readouts_ok"] += 1
                        rows = _rows(world, meter, ro)
                        stats["records"] += len(rows)
                        writer.writerows(rows)
                    else:
                        meter.failed += 1
                        stats["readouts_failed"] += 1
                progress(
                    min(world.now / end, 1.0),
                    f"round {stats['rounds']}: "
                    f"{stats['readouts_ok']} ok, {stats['readouts_failed']} failed",
                )
                nxt = int(world.now // interval) + 1
                stats["rounds_skipped"] += max(0, nxt - k - 1)
                k = nxt

        world.process(main())
        world.run(until=end)
        events = world.trace.count
    progress(1.0, "done")
    c = bus.counters
    summary = {
        "scenario": sc.name or doc.path.stem,
        "seed": seed,
        "sim_seconds": end,
        "slaves": len(seg.slaves),
        "unit_loads": bus.unit_loads,
        "overloaded": bus.overloaded,
        "max_baud": bus.max_baud,
        "meters_found": len(seg.meters),
        "meters_read": sum(1 for m in seg.meters if m.ok),
        "rounds": stats["rounds"],
        "rounds_skipped": stats["rounds_skipped"],
        "readouts_ok": stats["readouts_ok"],
        "readouts_failed": stats["readouts_failed"],
        "records": stats["records"],
        "requests": c["requests"],
        "timeouts": c["timeouts"],
        "collisions": c["collisions"],
        "talkovers": c["talkovers"],
        "bus_seconds": round(c["bus_seconds"], 6),
        "trace_events": events,
    }
    table = [
        (
            "slaves on the bus",
            f"{len(seg.slaves)} ({bus.unit_loads} UL of "
            f"{bus.port.max_unit_loads}{', OVERLOADED' if bus.overloaded else ''})",
        ),
        # a meter list names its meters, found or not: "found" would count a missing one
        (
            "meters listed" if sc.readout.install == "meter_list" else "meters found",
            str(len(seg.meters)),
        ),
        ("readouts ok / failed", f"{stats['readouts_ok']} / {stats['readouts_failed']}"),
        ("collisions", str(c["collisions"])),
        ("bus time used", f"{c['bus_seconds']:.1f} s ({100 * c['bus_seconds'] / end:.2f} %)"),
        ("sim time", f"{hours:g} h"),
        ("trace events", str(events)),
    ]
    return RunResult(summary=summary, table=table, files=[trace_path, csv_path])
