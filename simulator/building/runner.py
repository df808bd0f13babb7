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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pydantic

from simulator.building.scenario_model import (
    MbusScenario,
    SlaveGroup,
    group_ids,
    group_primaries,
    validate,
)
from simulator.core import events as ev
from simulator.core.accounting import check_balance
from simulator.core.trace import Trace
from simulator.core.world import World
from simulator.devices.registry import BuildContext, DeviceKind, Outcome
from simulator.mbus.address import SecondaryAddress, SecondaryMask
from simulator.mbus.bus import Bus
from simulator.mbus.electrical import Cable, MasterPort
from simulator.mbus.faults import Fault
from simulator.mbus.frames import parse_frame
from simulator.mbus.master import Master, MasterSettings, Readout
from simulator.mbus.meterlist import read_meter_list
from simulator.mbus.request_paths import (
    direct_field,
    event_field,
    event_readouts_field,
    fast_readouts_field,
    request_paths,
)
from simulator.mbus.sim_dut import SimDut
from simulator.mbus.slave import ResponseDelay, Slave, read_hex_file
from simulator.mbus.telegram import decode_telegram
from simulator.meters.wired import TEMPLATES
from simulator.scenario import ScenarioDoc, ScenarioError

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
    """The scenario's ``[bus.master.settings]`` as the master model's settings (s)."""
    return sc.bus.master.settings.master()


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
        records = tpl.build(world.rng(f"{name}/profile"), group.telegrams, group.profile)
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
    return build_segment(world, doc, sc)


def build_segment(world: World, doc: ScenarioDoc, sc: MbusScenario) -> Segment:
    """Bus, cable, slaves and master of a validated scenario in an existing ``world``."""
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


class ReadoutRows:
    """``readouts.csv`` (:data:`CSV_COLUMNS`): one row per record of each successful readout.

    The text is what ``csv.writer(fh, lineterminator="\\n")`` writes for the whole row
    (QUOTE_MINIMAL, ","): that quotes each field on its own and joins them with commas (the
    one row-level rule, a lone empty field written ``""``, never applies to 12 fields), so
    the fields that repeat are formatted once: the readout's time, meter, address and
    telegram per telegram, the record's coding (function .. unit) once per run. An int or
    float value is written as ``repr`` (what the csv module writes, never quoted); any other
    value goes through the csv writer with its row.
    """

    def __init__(self, fh: Any) -> None:
        self._fh = fh
        self._out: list[str] = []
        # the same line end as the file's writer: csv quotes a field holding any of its chars
        self._text = csv.writer(_Collect(self._out), lineterminator="\n")
        fh.write(self._csv(list(CSV_COLUMNS)) + "\n")
        self._coding: dict[tuple[Any, ...], str] = {}
        self._fields: dict[str, str] = {}

    def _csv(self, fields: list[Any]) -> str:
        self._text.writerow(fields)
        return self._out.pop()[:-1]  # without its line end

    def write(self, world: World, meter: Meter, ro: Readout) -> int:
        """Write the rows of ``ro`` (read from ``meter``); returns how many."""
        lines = []
        when, t_s = world.clock(ro.finished).isoformat(), round(ro.finished, 6)
        coding = self._coding
        position = self._fields.get(meter.position)
        if position is None:  # quoted as the csv module would, once per meter
            text = self._csv([meter.position]) if meter.position else ""  # not a lone ""
            position = self._fields[meter.position] = text
        for ti, tg in enumerate(ro.telegrams):
            addr = str(tg.header.address) if tg.header.address is not None else ""
            # time, t_s, address and index never need quoting (digits, "-:.+T", hex)
            head = f"{when},{t_s!r},{position},{addr},{ti}"
            for rec in tg.records:
                value = rec.value
                kind = type(value)
                key = (rec.function, rec.storage, rec.tariff, rec.subunit, rec.quantity, rec.unit)
                if kind is int or kind is float:
                    text = coding.get(key)
                    if text is None:
                        text = coding[key] = self._csv(list(key))
                    lines.append(f"{head},{text},{value!r}\n")
                    continue
                if hasattr(value, "isoformat"):
                    value = value.isoformat()
                elif isinstance(value, bytes):
                    value = value.hex()
                lines.append(self._csv([when, t_s, meter.position, addr, ti, *key, value]) + "\n")
        self._fh.write("".join(lines))
        return len(lines)


class _Collect:
    """A file-like sink for csv.writer that keeps each line it writes."""

    def __init__(self, out: list[str]) -> None:
        self.write = out.append


class MbusRun:
    """A built ``mbus`` segment whose master installs the meters, then reads them each round."""

    def __init__(self, ctx: BuildContext) -> None:
        sc: MbusScenario = ctx.scenario
        self.ctx, self.sc = ctx, sc
        self.seg = build_segment(ctx.world, ctx.doc, sc)
        self.rows = ReadoutRows(ctx.text("readouts.csv"))
        self.stats = dict.fromkeys(
            ("rounds", "readouts_ok", "readouts_failed", "records", "rounds_skipped"), 0
        )
        self.rounds: list[tuple[float, int, int, int]] = []  # (start s, ok, failed, meters)
        self._started = 0  # readouts begun; the run's end may cut the last one
        self._reading = False
        ctx.world.process(self._main())

    def _main(self):
        seg, stats, end = self.seg, self.stats, self.ctx.end
        world, master, bus = seg.world, seg.master, seg.bus
        interval = self.sc.readout.interval_min * 60.0
        yield from _install(seg, self.ctx.doc)
        k = int(world.now // interval) + 1
        while k * interval < end:
            yield from world.sleep(k * interval - world.now)
            stats["rounds"] += 1
            started, ok0, failed0 = world.now, stats["readouts_ok"], stats["readouts_failed"]
            for meter in seg.meters:
                bus.baud = meter.baud
                self._started += 1
                self._reading = True
                ro = yield from master.read(meter.target)
                self._reading = False
                if ro.ok:
                    meter.ok += 1
                    stats["readouts_ok"] += 1
                    stats["records"] += self.rows.write(world, meter, ro)
                else:
                    meter.failed += 1
                    stats["readouts_failed"] += 1
            ok, failed = stats["readouts_ok"] - ok0, stats["readouts_failed"] - failed0
            self.rounds.append((started, ok, failed, len(seg.meters)))
            nxt = int(world.now // interval) + 1
            stats["rounds_skipped"] += max(0, nxt - k - 1)
            k = nxt

    def advance(self, until: float, last: bool) -> None:
        self.seg.world.run(until=until)

    def status(self) -> str:
        s = self.stats
        if not s["rounds"]:
            return "installing meters"
        return f"round {s['rounds']}: {s['readouts_ok']} ok, {s['readouts_failed']} failed"

    def finish(self) -> Outcome:
        seg, bus, stats, end = self.seg, self.seg.bus, self.stats, self.ctx.end
        c = bus.counters
        # issue 14: every readout begun ended ok or failed, or was cut by the end of the run
        check_balance(
            "mbus master", "readouts started", self._started,
            ok=stats["readouts_ok"], failed=stats["readouts_failed"], cut=int(self._reading),
        )  # fmt: skip
        check_balance(
            "mbus master", "meter readouts", sum(m.ok + m.failed for m in seg.meters),
            ok=stats["readouts_ok"], failed=stats["readouts_failed"],
        )  # fmt: skip
        figures = {
            "slaves": len(seg.slaves),
            "unit_loads": bus.unit_loads,
            "overloaded": bus.overloaded,
            "max_baud": bus.max_baud,
            "meters_found": len(seg.meters),
            "meters_read": sum(1 for m in seg.meters if m.ok),
            **stats,
            "requests": c["requests"],
            "timeouts": c["timeouts"],
            "collisions": c["collisions"],
            "talkovers": c["talkovers"],
            "bus_seconds": round(c["bus_seconds"], 6),
            **request_paths(seg.master),
        }
        table = [
            (
                "slaves on the bus",
                f"{len(seg.slaves)} ({bus.unit_loads} UL of "
                f"{bus.port.max_unit_loads}{', OVERLOADED' if bus.overloaded else ''})",
            ),
            # a meter list names its meters, found or not: "found" would count a missing one
            (
                "meters listed" if self.sc.readout.install == "meter_list" else "meters found",
                str(len(seg.meters)),
            ),
            ("readouts ok / failed", f"{stats['readouts_ok']} / {stats['readouts_failed']}"),
            ("collisions", str(c["collisions"])),
            ("bus time used", f"{c['bus_seconds']:.1f} s ({100 * c['bus_seconds'] / end:.2f} %)"),
            ("sim time", f"{self.ctx.hours:g} h"),
        ]
        return Outcome(figures, table)

    def plots(self, out: Path) -> list[Path]:
        """readout_rounds.png and meters.png (:mod:`simulator.report.figures`)."""
        from simulator.report import figures as fg

        run = fg.RunLabel(self.ctx.name, self.ctx.seed)
        rounds = [fg.Round(*r) for r in self.rounds]
        return [
            fg.rounds_plot(
                rounds, self.ctx.world.start, self.ctx.end, out / "readout_rounds.png", run
            ),
            meters_plot(self.seg.meters, out / "meters.png", run),
        ]


#: The most meters :func:`meters_plot` draws (those with the most failures).
MAX_METERS_DRAWN = 40


def meters_plot(meters: list[Meter], path: Path, run: Any) -> Path:
    """Readouts OK and failed per installed meter, most failures on top (at most
    :data:`MAX_METERS_DRAWN` meters; the title says how many are left out)."""
    from simulator.report import figures as fg

    plt = fg.pyplot()
    ranked = sorted(meters, key=lambda m: (-m.failed, m.ok, m.position))[:MAX_METERS_DRAWN]
    ranked.reverse()  # barh draws bottom-up: the worst meter ends on top
    fig, ax = plt.subplots(figsize=(8, 1.6 + 0.25 * max(4, len(ranked))))
    if ranked and any(m.ok + m.failed for m in ranked):
        names = [f"{m.position} @{m.baud}" for m in ranked]
        ok = [m.ok for m in ranked]
        ax.barh(names, ok, color=fg.GOOD, label="read OK")
        ax.barh(
            names,
            [m.failed for m in ranked],
            left=ok,
            color=fg.BAD,
            hatch="xx",
            edgecolor="white",
            label="failed",
        )
        ax.set_xlabel("readouts (count)")
        ax.set_ylabel("meter (name @ bit/s)")
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize="small")
        ax.tick_params(axis="y", labelsize=7)
    else:
        fg.no_data(ax, "no meter installed or read in this run")
    left = len(meters) - len(ranked)
    what = "Readouts per meter" + (
        f" ({len(ranked)} with the most failures of {len(meters)})" if left else ""
    )
    ax.set_title(fg.run_title(what, run))
    return fg.save(fig, path, run)


class MbusSummary(pydantic.BaseModel):
    """Figures of an ``mbus`` run (docs/mbus.md)."""

    model_config = pydantic.ConfigDict(extra="forbid")

    slaves: int = pydantic.Field(description="slaves attached to the bus")
    unit_loads: int = pydantic.Field(description="unit loads drawn (1 UL = 1.5 mA)")
    overloaded: bool = pydantic.Field(description="the master port's unit-load limit exceeded")
    max_baud: int = pydantic.Field(description="highest rate the cable allows (bit/s)")
    meters_found: int = pydantic.Field(description="meters installed (found or listed)")
    meters_read: int = pydantic.Field(description="installed meters read at least once")
    rounds: int = pydantic.Field(description="readout rounds started")
    readouts_ok: int = pydantic.Field(description="successful readouts")
    readouts_failed: int = pydantic.Field(description="failed readouts")
    records: int = pydantic.Field(description="data records read (rows of readouts.csv)")
    rounds_skipped: int = pydantic.Field(description="rounds skipped because one overran")
    requests: int = pydantic.Field(description="frames the master sent")
    timeouts: int = pydantic.Field(description="requests without a reply")
    collisions: int = pydantic.Field(description="receptions with more than one sender")
    talkovers: int = pydantic.Field(description="requests that overlapped a reply (half duplex)")
    bus_seconds: float = pydantic.Field(description="time the bus carried frames (s)")
    requests_direct: int = direct_field()
    requests_event: int = event_field()
    readouts_fast: int = fast_readouts_field()
    readouts_event: int = event_readouts_field()


DEVICE = DeviceKind(
    name="mbus",
    title="a wired M-Bus segment read by a gateway's master",
    scenario=MbusScenario,
    validate=validate,
    build=MbusRun,
    summary=MbusSummary,
    plots=True,
    sim_dut=SimDut,
)
