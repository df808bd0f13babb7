"""Runner of ``kind = "stream"`` scenarios: wM-Bus meters, radio, receivers, Stream Plugin.

``meterbench run fixtures/scenarios/stream-city.toml`` builds the meters and receivers the
file describes (:mod:`simulator.wmbus.scenario_model`), runs the radio either with the
vectorised kernel (``engine = "kernel"``: city scale, receptions only) or the SimPy event model
(``engine = "event"``: telegram bytes built by the codec, one CMe3100 Stream Plugin per
receiver, pushes to a head-end: in the world, or with ``[plugin] sink = "http"`` a real
local HTTP server), and writes into the results folder:

- ``meters.csv``: per meter position, distance to the nearest receiver, receivers that heard
  it, reception ratio per resolution, redundancy factor;
- ``trace.jsonl``: the event model's full trace; the kernel writes one ``radio_receiver``
  event per receiver (receptions, collisions) instead of one event per telegram;
- ``redundancy.png``, ``ratio_vs_distance.png``, ``map.png`` (matplotlib, Agg backend);
- event engine with ``push = true``: ``headend.csv`` (every report line the head-end got)
  and ``analyzer-<receiver>.csv``.

The summary gives meters heard, the redundancy histogram (receivers per push window), the
redundancy factor of seed 003 §3.3 at each resolution, reception ratio vs distance, and
duty-cycle violations.
"""

from __future__ import annotations

import csv
import hashlib
from collections import Counter
from pathlib import Path

import numpy as np
import pydantic

from simulator.core import events as ev
from simulator.core.accounting import check_balance
from simulator.core.rng import numpy_stream
from simulator.core.trace_invariants import PushWindowOnce
from simulator.devices.registry import BuildContext, DeviceKind, Outcome
from simulator.gateways.cme3100 import redundancy as red
from simulator.gateways.cme3100.settings import SettingsError, StreamSettings
from simulator.scenario import ScenarioDoc, ScenarioError
from simulator.wmbus.channel import Channel
from simulator.wmbus.listener import OUTCOMES, Listener
from simulator.wmbus.meter import ELL_MODES, MODES
from simulator.wmbus.meter_columns import MeterColumns
from simulator.wmbus.radio_kernel import (
    RadioSetup,
    access_number,
    duty_cycle_violations,
    run_kernel,
    sends_fragments,
)
from simulator.wmbus.receiver import Receiver
from simulator.wmbus.scenario_model import StreamScenario
from simulator.wmbus.scenario_model import validate as validate_stream

#: What a receiver's hearing of a fragment can give (simulator/wmbus/listener.OUTCOMES)
_AFL_OUTCOMES = ("full", "fragment_held", "fragment_error", "undecoded")


def _pick(rng: np.random.Generator, weights: dict[str, float], n: int) -> np.ndarray:
    names = list(weights)
    p = np.array([weights[k] for k in names], dtype=float)
    return np.array(names)[rng.choice(len(names), size=n, p=p / p.sum())]


def meter_key(seed: int, meter_id: int) -> bytes:
    """The AES-128 key of an encrypted generated meter (derived from seed and ID)."""
    return hashlib.sha256(f"{seed}/key/{meter_id}".encode()).digest()[:16]


def build_meters(sc: StreamScenario, seed: int) -> MeterColumns:
    """The scenario's meters, placed and typed from the ``stream/meters`` random stream, as
    columns (a ``Sequence[RadioMeter]``: a city builds no object per meter up front)."""
    m = sc.meters
    rng = numpy_stream(seed, "stream/meters")
    n = m.count
    x = rng.uniform(-m.width_m / 2, m.width_m / 2, n)
    y = rng.uniform(-m.height_m / 2, m.height_m / 2, n)
    indoor = rng.random(n) < m.indoor_fraction
    basement = rng.random(n) < m.basement_fraction
    floor = np.where(basement, -1, rng.integers(0, m.max_floor + 1, n))
    modes = _pick(rng, m.modes, n)
    profiles = _pick(rng, m.profiles, n)
    mans = _pick(rng, m.manufacturers, n)
    enc = rng.random(n) < m.encrypted_fraction
    in_ell = enc & m.ell_encryption & np.isin(modes, sorted(ELL_MODES))
    security = np.where(enc & ~in_ell, m.security_mode, 0)
    # AFL fragments: mode-7 meters without an ELL (S1, T1); C1 mode-7 meters send whole
    fragments = (security == 7) & ~np.isin(modes, sorted(ELL_MODES))
    return MeterColumns(
        id=30_000_000 + np.arange(n, dtype=np.int64),
        x=x,
        y=y,
        mode=modes,
        manufacturer=mans,
        profile=profiles,
        indoor=indoor,
        floor=np.where(indoor, floor, 0),
        security_mode=security,
        ell_encryption=in_ell,
        encrypted=enc,
        # CI 79 has no TPL header: meters with TPL mode 5 keep sending full frames
        frame=np.where(enc & ~in_ell, "full", m.frame),
        full_every=m.full_every,
        fragment_size=np.where(fragments, m.fragment_size or 0, 0),
        fragment_gap_s=m.fragment_gap_s,
        key=lambda meter_id: meter_key(seed, meter_id),
        tx_power_dbm=m.tx_power_dbm,
        interval_s=m.interval_s,
        jitter=m.jitter,
        seed=seed,
    )


def build_receivers(sc: StreamScenario) -> list[Receiver]:
    r = sc.receivers
    if r.positions is not None:
        pos = list(r.positions)
    else:
        cols, rows = r.grid
        w, h = sc.meters.width_m, sc.meters.height_m
        pos = [
            (-w / 2 + (c + 0.5) * w / cols, -h / 2 + (k + 0.5) * h / rows)
            for k in range(rows)
            for c in range(cols)
        ]
    capture = None if r.capture_db < 0 else r.capture_db
    return [
        Receiver(
            f"rx{k:02d}",
            float(px),
            float(py),
            serial=62_000_000 + k,
            radio_mode=r.radio_mode,
            capture_db=capture,
            noise_floor_dbm=r.noise_floor_dbm,
            interference=r.interference,
        )
        for k, (px, py) in enumerate(pos)
    ]


#: Where the plugins push in the world (``[plugin] sink = "world"``); never resolved.
HEADEND_URL = "http://head-end.invalid/stream"


def _settings(doc: ScenarioDoc, sc: StreamScenario) -> StreamSettings:
    try:
        return StreamSettings.from_properties(sc.plugin.properties)
    except SettingsError as exc:
        raise ScenarioError(
            [doc.issue(("plugin", "properties", k), m) for k, m in exc.problems]
        ) from None


def _push_window_s(settings: StreamSettings, world_start) -> float:
    first = settings.push_cron.next_after(world_start)
    return (settings.push_cron.next_after(first) - first).total_seconds()


class _LocalOnly:
    """A real sink that posts only below ``prefix`` (the run's own local server): a URL set
    later (a CAD file's ``receiving.server.url``) never makes a run talk to the outside; such
    a push fails with the reason instead."""

    def __init__(self, sink, prefix: str) -> None:
        self.sink, self.prefix = sink, prefix

    def deliver(self, report):
        from simulator.sinks.base import Delivery

        if not report.target.startswith(self.prefix):
            return Delivery(False, None, reason=f"{report.target} is outside the bench")
        return self.sink.deliver(report)


class _EventEngine:
    """The SimPy event model: telegram bytes, one Stream Plugin per receiver pushing to the
    head-end: an in-world sink by default, a real local HTTP server when the file says
    ``[plugin] sink = "http"`` (the report bytes are the same either way)."""

    def __init__(self, ctx: BuildContext, sc, setup: RadioSetup, settings) -> None:
        from simulator.gateways.cme3100.stream import ProductIdentity, StreamPlugin
        from simulator.sinks.base import WorldSink
        from simulator.sinks.http import HttpSink
        from simulator.sinks.http_client import HttpPost
        from simulator.wmbus.radio_world import RadioWorld

        self.ctx, self.setup, self.push = ctx, setup, sc.plugin.push
        world = ctx.world
        self.server = HttpSink().start() if sc.plugin.push and sc.plugin.sink == "http" else None
        self.in_world = WorldSink()
        if sc.plugin.push:
            url = self.server.url("/stream") if self.server else HEADEND_URL
            settings = settings.updated({"receiving.server.url": url})
        sink = _LocalOnly(HttpPost(), self.server.url("/")) if self.server else self.in_world
        self.plugins = plugins = [
            StreamPlugin(
                world, settings, identity=ProductIdentity(serial=rcv.serial), sink=sink
            ).start()
            for rcv in setup.receivers
        ]
        # CAD auto-configuration on each plugin's configuration.server.cron (seed 003 §9.1):
        # files from the scenario's in-world [config_server], result notifications to an
        # in-world result server of their own (never mixed with the stream reports)
        self.auto: list = []
        self.notified = WorldSink()
        if settings.sync_enabled:
            from simulator.gateways.cme3100.cad import AutoConfiguration
            from simulator.sinks.base import WorldSource

            files = sc.config_server.read(ctx.doc)
            self.auto = [
                AutoConfiguration(p, WorldSource(files), notify_sink=self.notified).start()
                for p in plugins
            ]
        cache: dict[tuple[int, int], list[bytes]] = {}
        # compact meters and fragmenting mode-7 meters: each receiver decodes their telegrams
        # against its own memory of formats and open AFL messages (simulator/wmbus/listener)
        compact = bool(np.any(setup.meters.frame == "compact"))
        self.fragmenting = sends_fragments(setup.meters)
        self.listeners = (
            [Listener() for _ in setup.receivers] if compact or self.fragmenting else []
        )
        #: outcome -> AFL fragments of fragmenting meters heard (receivers x fragments)
        self.afl_counts: Counter[str] = Counter()

        def on_receive(
            r: int, m: int, seq: int, t_start: float, rssi: float, fragment: int | None = None
        ) -> None:
            frames = cache.get((m, seq))
            meter = setup.meters[m]
            if frames is None:
                cache.clear()  # only the telegram on the air now is needed again
                acc = access_number(meter.id, seq)
                frames = cache[(m, seq)] = meter.frames(t_start, acc, seq)
            raw = frames[fragment or 0]
            rcv = setup.receivers[r]
            if meter.frame == "compact" or fragment is not None:
                heard = self.listeners[r].hear(raw, meter.key)
                if fragment is not None:
                    self.afl_counts[heard.outcome] += 1
                sig = heard.signature
                world.emit(
                    ev.WmbusDecode(
                        source=f"receiver/{rcv.id}",
                        meter=f"{meter.id:08d}",
                        seq=seq,
                        outcome=heard.outcome,
                        signature=ev.UNSET if sig is None else f"{sig:04X}",
                        fragment=ev.UNSET if fragment is None else fragment,
                    )
                )
            # the plugin forwards every frame it hears, a fragment too (it does not decode)
            plugins[r].receive(
                raw, rssi_dbm=rssi, mode=meter.mode, receiver_serial=rcv.serial, receiver=rcv.id
            )

        self.model = RadioWorld(world, setup, ctx.end, on_receive=on_receive)

    def _headend_decodes(self, lines: list[list[str]]) -> dict[str, int]:
        """Outcomes of decoding the head-end's report lines of compact meters in the order
        they came, with one memory and every meter's key: the plugin pushes only the last
        telegram per meter and window (seed 003 §3.2), so the head-end sees few full frames."""
        from simulator.gateways.cme3100.container import parse_container

        meters = self.setup.meters
        compact = {f"{i:08d}" for i in meters.id[meters.frame == "compact"].tolist()}
        memory = Listener()
        for row in lines:
            if row[1] in compact:
                wireless = parse_container(bytes.fromhex(row[4])).wireless
                memory.hear(wireless, meter_key(self.ctx.seed, int(row[1])))
        return {k: int(memory.counts[k]) for k in OUTCOMES if memory.counts[k]}

    def advance(self, until: float, last: bool) -> None:
        try:
            self.ctx.world.run(until=until + (1.0 if last else 0.0))
        finally:
            if last and self.server is not None:
                self.server.stop()

    def status(self) -> str:
        return f"event model {self.ctx.world.now / 3600:.1f} h"

    def receptions(self):
        """(meter, receiver, t_start) arrays of every reception, extra figures, files."""
        world, model, out, server = self.ctx.world, self.model, self.ctx.out, self.server
        files: list[Path] = []
        rec = np.array([(m, r, p, t) for m, _s, r, p, t in model.received], dtype=float)
        rec = rec.reshape(-1, 4)
        extra: dict = {
            "transmissions": model.sent,
            "collisions_lost": len(model.lost),
            "duty_cycle_warnings": len(world.trace.select("duty_cycle")),
        }
        for p, rcv in zip(self.plugins, self.setup.receivers, strict=True):
            path = out / f"analyzer-{rcv.id}.csv"
            path.write_text(p.analyzer_csv())
            files.append(path)
        if self.push:
            bodies = (
                [r.text for r in server.posts("/stream")]
                if server
                else [r.body.decode() for r in self.in_world.received]
            )
            lines = [line.split(";") for text in bodies for line in text.splitlines()]
            per_push = [len(text.splitlines()) for text in bodies]
            dup = max((_max_repeats(text) for text in bodies), default=0)
            with (out / "headend.csv").open("w", newline="") as fh:
                w = csv.writer(fh, delimiter=";")
                w.writerow(["product serial", "device identification", "date", "count", "telegram"])
                w.writerows(lines)
            files.append(out / "headend.csv")
            pushes = world.trace.select("stream_push")
            for p in self.plugins:
                p.check_accounting()
            # every line the head-end got is a meter a plugin counted as pushed, and back
            check_balance(
                "head-end", "report lines", len(lines),
                pushed_by_plugins=sum(p.pushed_meters for p in self.plugins),
            )  # fmt: skip
            extra["headend"] = {
                "pushes_ok": sum(1 for e in pushes if e["ok"]),
                "pushes_failed": sum(1 for e in pushes if not e["ok"]),
                "report_lines": len(lines),
                "distinct_meters": len({row[1] for row in lines}),
                "max_lines_per_push": max(per_push, default=0),
                "max_repeats_of_a_meter_in_one_push": dup,
            }
        compact = int(np.sum(self.setup.meters.frame == "compact"))
        if self.listeners and compact:
            total = sum((lst.counts for lst in self.listeners), Counter()) - self.afl_counts
            extra["compact_frames"] = {
                "meters": compact,
                **{k: int(total[k]) for k in OUTCOMES},
            }
            if self.push:
                extra["compact_frames"]["headend"] = self._headend_decodes(lines)
        if self.fragmenting:
            extra["afl_fragments"] = {
                "meters": sum(m.fragment_size is not None for m in self.setup.meters),
                "fragments_sent": model.sent_fragments,
                "fragments_lost": model.lost_fragments,
                **{k: int(self.afl_counts[k]) for k in _AFL_OUTCOMES},
            }
        if self.auto:
            codes = Counter(str(res.code) for a in self.auto for res in a.results)
            extra["auto_configuration"] = {
                "syncs": sum(codes.values()),
                "result_codes": dict(sorted(codes.items())),
                "notifications": len(self.notified.received),
            }
        m, r, t = rec[:, 0].astype(np.int64), rec[:, 1].astype(np.int64), rec[:, 3]
        return m, r, t, extra, files


class _KernelEngine:
    """The vectorised radio kernel (city scale): receptions only, one ``radio_receiver`` trace
    event per receiver instead of one event per telegram."""

    def __init__(self, ctx: BuildContext, setup: RadioSetup) -> None:
        self.ctx, self.setup = ctx, setup
        self.result = None

    def advance(self, until: float, last: bool) -> None:
        if last:
            self.result = run_kernel(self.setup, self.ctx.end)

    def status(self) -> str:
        return "radio kernel" if self.result is None else "statistics"

    def receptions(self):
        setup, duration, world = self.setup, self.ctx.end, self.ctx.world
        run = self.result
        rec = run.receptions
        rx_m, rx_r, rx_t = rec.meter, rec.receiver, rec.t_start
        duty = duty_cycle_violations(setup, run.duty_cycle)
        extra = {
            "transmissions": run.transmissions,
            "collisions_lost": len(rec.lost_meter),
            "duty_cycle_meter_hours_over_limit": duty["meter_hours"],
            "worst_duty_cycle_percent": round(100 * duty["worst"], 4),
        }
        n_r = len(setup.receivers)
        got = np.bincount(rec.receiver, minlength=n_r)
        lost = np.bincount(rec.lost_receiver, minlength=n_r)
        for k, rcv in enumerate(setup.receivers):
            world.emit(
                ev.RadioReceiver(
                    source=f"receiver/{rcv.id}", receptions=int(got[k]), collisions=int(lost[k])
                ),
                at=duration,
            )
        return rx_m, rx_r, rx_t, extra, []


def _max_repeats(text: str) -> int:
    ids = [line.split(";")[1] for line in text.splitlines()]
    return max((ids.count(i) for i in set(ids)), default=0)


class StreamRun:
    """Meters, receivers and channel of a ``stream`` scenario on the chosen engine."""

    def __init__(self, ctx: BuildContext) -> None:
        sc: StreamScenario = ctx.scenario
        self.ctx, self.sc = ctx, sc
        # each telegram pushed at most once (a failed push keeps its memory for the next)
        self.once = PushWindowOnce()
        ctx.world.trace.subscribe(self.once)
        self.settings = _settings(ctx.doc, sc)
        meters = build_meters(sc, ctx.seed)
        receivers = build_receivers(sc)
        airtime = meters.airtime_s()
        self.channel = Channel.preset(
            sc.channel.preset,
            sigma_db=sc.channel.sigma_db,
            fading_sigma_db=sc.channel.fading_sigma_db,
            building_entry_db=sc.channel.building_entry_db,
        )
        self.setup = RadioSetup.build(meters, receivers, self.channel, ctx.seed, airtime=airtime)
        self.engine = (
            _KernelEngine(ctx, self.setup)
            if sc.engine == "kernel"
            else _EventEngine(ctx, sc, self.setup, self.settings)
        )

    def advance(self, until: float, last: bool) -> None:
        self.engine.advance(until, last)

    def status(self) -> str:
        return self.engine.status()

    def finish(self) -> Outcome:
        sc, setup, ctx = self.sc, self.setup, self.ctx
        self.once.check()
        n_m, n_r = len(setup.meters), len(setup.receivers)
        rx_m, rx_r, rx_t, extra, files = self.engine.receptions()
        window = _push_window_s(self.settings, ctx.world.clock(0))
        heard_by, ratios = _per_meter(sc, setup, rx_m, rx_r, rx_t, ctx.end)
        summary = _statistics(sc, setup, rx_m, rx_r, rx_t, ctx.end, window, heard_by, ratios)
        summary.update(
            {
                "engine": sc.engine,
                "meters": n_m,
                "receivers": n_r,
                **extra,
                "receptions": int(len(rx_m)),
                "channel": self.channel.model.name,
                "interference": sc.receivers.interference,
            }
        )
        self.summary, self.heard_by = summary, heard_by
        files.append(_meters_csv(ctx.out, setup, heard_by, ratios))
        heard = summary["meters_heard"]
        table = [
            ("meters / receivers", f"{n_m} / {n_r} ({sc.engine}, {self.channel.model.name})"),
            ("transmissions / receptions", f"{summary['transmissions']} / {len(rx_m)}"),
            ("collision losses", f"{summary['collisions_lost']} ({summary['interference']} rule)"),
            ("meters heard", f"{heard} ({100 * heard / n_m:.1f} %)"),
            ("receivers per push window", _hist_text(summary["receivers_per_push_window_hist"])),
        ]
        for res, r in summary["resolutions"].items():
            table.append(
                (
                    f"reception ratio @ {res}",
                    f"mean {r['mean_ratio']:.3f}, > {sc.report.redundancy_threshold:.0%}: "
                    f"{r['meters_above_threshold']} meters, redundancy >= 2: "
                    f"{r['meters_redundancy_2plus']}",
                )
            )
        table.append(("ratio vs distance", _distance_text(summary["ratio_vs_distance"])))
        if "auto_configuration" in summary:
            a = summary["auto_configuration"]
            codes = ", ".join(f"{k} x{v}" for k, v in a["result_codes"].items()) or "none yet"
            table.append(("CAD auto-configuration", f"{a['syncs']} syncs ({codes})"))
        if "compact_frames" in summary:
            c = summary["compact_frames"]
            table.append(
                (
                    "compact-frame meters",
                    f"{c['meters']}: {c['full']} full, {c['compact']} compact decoded, "
                    f"{c['unknown_format']} unknown format (receivers x telegrams)",
                )
            )
            if "headend" in c:
                got = ", ".join(f"{v} {k}" for k, v in c["headend"].items()) or "no lines"
                table.append(("compact meters at head-end", got))
        if "afl_fragments" in summary:
            a = summary["afl_fragments"]
            table.append(
                (
                    "AFL-fragmenting meters",
                    f"{a['meters']}: {a['fragments_sent']} fragments sent, {a['full']} messages "
                    f"joined, {a['fragment_error']} fragment errors (receivers x fragments)",
                )
            )
        if "headend" in summary:
            h = summary["headend"]
            table.append(
                (
                    "head-end",
                    f"{h['pushes_ok']} pushes ok, {h['pushes_failed']} failed, "
                    f"{h['report_lines']} lines, {h['distinct_meters']} meters",
                )
            )
        return Outcome(summary, table, files)

    def plots(self, out: Path) -> list[Path]:
        from simulator.report.figures import RunLabel

        run = RunLabel(self.ctx.name, self.ctx.seed)
        threshold = self.sc.report.redundancy_threshold
        return _plots(out, run, self.summary, self.setup, self.heard_by, threshold)


def _res_name(seconds: float) -> str:
    if seconds % 86400 == 0:
        return f"{int(seconds // 86400)} d"
    if seconds % 3600 == 0:
        return f"{int(seconds // 3600)} h"
    return f"{int(seconds // 60)} min" if seconds % 60 == 0 else f"{seconds:g} s"


def _per_meter(sc, setup, rx_m, rx_r, rx_t, duration) -> tuple[np.ndarray, dict]:
    """Per meter: receivers that heard it, and its reception ratio at each resolution that
    fits in the run (by resolution name); computed once for the summary and meters.csv."""
    n_m, n_r = len(setup.meters), len(setup.receivers)
    pairs = red.distinct(np.asarray(rx_m, dtype=np.int64) * n_r + np.asarray(rx_r, dtype=np.int64))
    heard_by = np.bincount(pairs // n_r, minlength=n_m)
    ratios = {
        _res_name(res): red.reception_ratio(rx_m, rx_t, n_m, res, duration)
        for res in sc.report.resolutions_s
        if res <= duration
    }
    return heard_by, ratios


def _statistics(sc, setup, rx_m, rx_r, rx_t, duration, window, heard_by, ratios) -> dict:
    n_m, n_r = len(setup.meters), len(setup.receivers)
    out: dict = {
        "meters_heard": int((heard_by > 0).sum()),
        "heard_by_receivers_hist": _hist(heard_by),
        "push_window_s": window,
    }
    if duration >= window:
        counts = red.receivers_per_window_hist(rx_m, rx_t, rx_r, n_m, n_r, window, duration)
        out["receivers_per_push_window_hist"] = {str(k): int(c) for k, c in enumerate(counts) if c}
    else:
        out["receivers_per_push_window_hist"] = {}
    nearest = setup.distance.min(axis=1)
    out["resolutions"] = {}
    ratio_for_distance = None
    for res in sc.report.resolutions_s:
        if res > duration:
            continue
        ratio = ratios[_res_name(res)]
        factor = red.redundancy_factor(
            rx_m, rx_t, rx_r, n_m, n_r, res, duration, sc.report.redundancy_threshold
        )
        out["resolutions"][_res_name(res)] = {
            "window_s": res,
            "mean_ratio": round(float(ratio.mean()), 4),
            "meters_above_threshold": int((ratio > sc.report.redundancy_threshold).sum()),
            "redundancy_factor_hist": _hist(factor),
            "meters_redundancy_2plus": int((factor >= 2).sum()),
        }
        if ratio_for_distance is None:
            ratio_for_distance = {}
        start, mean, count = red.ratio_by_distance(nearest, ratio, sc.report.distance_bin_m)
        ratio_for_distance[_res_name(res)] = [
            [float(s), round(float(v), 4), int(c)]
            for s, v, c in zip(start, mean, count, strict=True)
        ]
    out["ratio_vs_distance"] = ratio_for_distance or {}
    return out


def _hist(values: np.ndarray) -> dict[str, int]:
    counts = np.bincount(np.asarray(values, dtype=np.int64))
    return {str(k): int(c) for k, c in enumerate(counts) if c}


def _hist_text(h: dict[str, int]) -> str:
    total = sum(h.values()) or 1
    return ", ".join(f"{k}: {100 * v / total:.0f} %" for k, v in list(h.items())[:8])


def _distance_text(rvd: dict) -> str:
    if not rvd:
        return "(run shorter than every resolution)"
    name, rows = next(iter(rvd.items()))
    picks = rows[:: max(1, len(rows) // 5)][:6]
    return f"@ {name}: " + ", ".join(f"{int(s)} m {v:.2f}" for s, v, _ in picks)


def _meters_csv(out, setup, heard_by, ratios) -> Path:
    """meters.csv as ``csv.writer`` writes it (CRLF, floats as ``repr(round(v, digits))``),
    one format per row: ``%.1f`` is that text for one decimal (same correctly rounded
    digits), the ratios (few distinct values) are formatted once per value."""
    path = out / "meters.csv"
    nearest = setup.distance.min(axis=1)
    meters = setup.meters
    header = [
        "meter_id",
        "mode",
        "x_m",
        "y_m",
        "indoor",
        "floor",
        "nearest_receiver_m",
        "heard_by_receivers",
    ] + [f"ratio_{k.replace(' ', '')}" for k in ratios]
    columns = [
        meters.id.tolist(),
        meters.mode.tolist(),
        setup.x.tolist(),
        setup.y.tolist(),
        setup.indoor.astype(int).tolist(),
        meters.floor.tolist(),
        nearest.tolist(),
        heard_by.tolist(),
    ]
    for c in ratios.values():
        values, inverse = np.unique(c, return_inverse=True)
        text = np.array([repr(round(v, 4)) for v in values.tolist()], dtype=object)
        columns.append(text[inverse].tolist())
    row = "%08d,%s,%.1f,%.1f,%d,%d,%.1f,%d" + ",%s" * len(ratios) + "\r\n"
    with path.open("w", newline="") as fh:
        fh.write(",".join(header) + "\r\n")
        fh.write("".join([row % r for r in zip(*columns, strict=True)]))
    return path


def _plots(out: Path, run, summary: dict, setup: RadioSetup, heard_by, threshold: float):
    """redundancy.png, ratio_vs_distance.png, map.png (rules: :mod:`simulator.report.figures`)."""
    return [
        _redundancy_plot(out / "redundancy.png", run, summary),
        _distance_plot(out / "ratio_vs_distance.png", run, summary, threshold),
        _map_plot(out / "map.png", run, setup, heard_by),
    ]


def _redundancy_plot(path: Path, run, summary: dict) -> Path:
    """Receivers per push window: the windows no receiver heard are counted apart (left), so
    they cannot dwarf the redundancy of the heard ones (right, seed 003 §3.3)."""
    from simulator.report import figures as fg

    plt = fg.pyplot()
    h = {int(k): v for k, v in summary["receivers_per_push_window_hist"].items()}
    fig, (left, right) = plt.subplots(1, 2, figsize=(8, 4), gridspec_kw={"width_ratios": [1, 3.2]})
    total = sum(h.values())
    window = _res_name(summary["push_window_s"])
    if total:
        none, heard = h.get(0, 0), total - h.get(0, 0)
        left.bar(
            ["none", "1 or more"],
            [100 * none / total, 100 * heard / total],
            color=[fg.NEUTRAL, fg.GOOD],
            label="share of all meter-windows",
        )
        for k, share in enumerate((none, heard)):
            left.text(k, 100 * share / total + 2, f"{100 * share / total:.0f} %", ha="center")
        left.set_ylim(0, 135)
        left.set_yticks(range(0, 101, 20))
        left.set_ylabel("meter-windows (% of all)")
        left.set_xlabel("heard by (receivers)")
        left.legend(loc="upper center", fontsize="small")
        ks = sorted(k for k in h if k > 0)
        if heard:
            one = [100 * h[k] / heard if k == 1 else 0 for k in ks]
            more = [100 * h[k] / heard if k >= 2 else 0 for k in ks]
            right.bar(ks, one, color=fg.PARTLY, label="1 receiver: no redundancy")
            right.bar(
                ks,
                more,
                color=fg.GOOD,
                hatch="//",
                edgecolor="white",
                label="2 or more: redundant (manual §3.3)",
            )
            right.set_xticks(ks)
            right.set_xlabel("receivers that heard the meter in one push window (count)")
            right.set_ylabel("heard meter-windows (% of heard)")
            right.legend(loc="upper right", fontsize="small")
        else:
            fg.no_data(right, "no meter was heard in any push window")
    else:
        fg.no_data(left, "")
        fg.no_data(right, f"the run is shorter than one push window ({window})")
    fig.suptitle(fg.run_title(f"Redundancy: receivers per {window} push window", run))
    return fg.save(fig, path, run)


def _distance_plot(path: Path, run, summary: dict, threshold: float) -> Path:
    from simulator.report import figures as fg

    plt = fg.pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for k, (name, rows) in enumerate(summary["ratio_vs_distance"].items()):
        arr = np.array(rows, dtype=float).reshape(-1, 3)
        ax.plot(
            arr[:, 0], arr[:, 1], marker=".", color=fg.SERIES[k % 5], label=f"resolution {name}"
        )
    if ax.lines:
        ax.axhline(threshold, color="black", ls=":", lw=1, label=f"{threshold:.0%} target")
        ax.set_ylim(0, 1.05)
        ax.set_xlabel("distance to the nearest receiver (m, bin start)")
        ax.set_ylabel("mean reception ratio (fraction)")
        ax.legend(loc="lower left", fontsize="small")
    else:  # a run shorter than every resolution window has no ratio to plot
        fg.no_data(ax, "no complete window at any resolution")
    ax.set_title(fg.run_title("Reception ratio vs distance (Stream Plugin manual §3.4)", run))
    return fg.save(fig, path, run)


def _map_plot(path: Path, run, setup: RadioSetup, heard_by: np.ndarray) -> Path:
    """Meters by how many receivers heard them: never (vermillion cross), one (orange), two or
    more (blue). Never-heard meters are drawn first so a heard district is not painted over;
    the legend gives each class's count and share."""
    from simulator.report import figures as fg

    plt = fg.pyplot()
    from matplotlib.lines import Line2D

    fig, ax = plt.subplots(figsize=(7, 8))
    n = len(setup.meters)
    step = max(1, n // 20000)  # keep the file small for city runs
    x, y, hb = setup.x[::step], setup.y[::step], heard_by[::step]
    size = 5 if n <= 5000 else 1.5
    classes = (
        (hb == 0, heard_by == 0, fg.BAD, "x", "never heard"),
        (hb == 1, heard_by == 1, fg.PARTLY, "o", "heard by 1 receiver"),
        (hb >= 2, heard_by >= 2, fg.GOOD, "o", "heard by 2 or more"),
    )
    handles = []
    for mask, whole, color, marker, label in classes:
        count = int(whole.sum())
        text = f"{label}: {count} ({100 * count / n:.1f} %)"
        ax.scatter(
            x[mask],
            y[mask],
            s=size * (3 if marker == "x" else 1),
            c=color,
            lw=0.6,
            marker=marker,
            label=text,
        )
        handles.append(Line2D([], [], ls="", marker=marker, color=color, ms=7, mew=2, label=text))
    ax.scatter(
        [r.x for r in setup.receivers],
        [r.y for r in setup.receivers],
        marker="^",
        s=70,
        c="black",
        edgecolors="white",
        lw=1,
    )
    handles.append(
        Line2D(
            [],
            [],
            ls="",
            marker="^",
            color="black",
            ms=9,
            label=f"receivers ({len(setup.receivers)})",
        )
    )
    ax.set_aspect("equal")
    ax.set_xlabel("east (m)")
    ax.set_ylabel("north (m)")
    shown = "" if step == 1 else f", every {step}th drawn"
    ax.legend(
        handles=handles,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.1),
        ncol=2,
        fontsize="small",
        title=f"{n} meters{shown}",
    )
    ax.set_title(fg.run_title("Meters by receivers that heard them", run))
    return fg.save(fig, path, run)


__all__ = ["DEVICE", "build_meters", "build_receivers", "MODES"]


class _Resolution(pydantic.BaseModel):
    mean_ratio: float = pydantic.Field(description="mean reception ratio over meters")
    meters_above_threshold: int
    meters_redundancy_2plus: int
    redundancy_factor_hist: dict[str, int] = pydantic.Field(description="seed 003 §3.3")


class _HeadEnd(pydantic.BaseModel):
    pushes_ok: int
    pushes_failed: int
    report_lines: int
    distinct_meters: int
    max_lines_per_push: int
    max_repeats_of_a_meter_in_one_push: int


class _AutoConfig(pydantic.BaseModel):
    syncs: int = pydantic.Field(description="CAD synchronisations over all plugins")
    result_codes: dict[str, int] = pydantic.Field(
        description="result code (900, 920, 921; seed 003 §9.1) -> synchronisations"
    )
    notifications: int = pydantic.Field(description="results posted to Sync-Notify-URL")


class _AflFragments(pydantic.BaseModel):
    meters: int = pydantic.Field(description="meters sending AFL fragments (fragment_size)")
    fragments_sent: int = pydantic.Field(description="fragments put on the air")
    fragments_lost: int = pydantic.Field(
        description="fragments lost at a receiver to interference (receiver x fragment)"
    )
    full: int = pydantic.Field(description="messages joined and decoded, AFL MAC checked")
    fragment_held: int = pydantic.Field(description="fragments held for the rest")
    fragment_error: int = pydantic.Field(
        description="fragments that did not continue their message (one went missing)"
    )
    undecoded: int = pydantic.Field(description="messages not decoded (AFL MAC, key, frame)")


class _CompactFrames(pydantic.BaseModel):
    meters: int = pydantic.Field(description="meters sending compact frames")
    full: int = pydantic.Field(description="their full frames decoded (meter x receiver)")
    compact: int = pydantic.Field(description="compact frames decoded from a learned format")
    unknown_format: int = pydantic.Field(
        description="compact frames before the receiver heard the defining full frame"
    )
    compact_error: int = pydantic.Field(description="compact frames not fitting their format")
    fragment_held: int = pydantic.Field(description="AFL fragments waiting for the rest")
    fragment_error: int = pydantic.Field(description="AFL fragments after a missing one")
    undecoded: int = pydantic.Field(description="telegrams not decoded (no key, bad frame)")
    headend: dict[str, int] | None = pydantic.Field(
        None,
        description="with push: outcome -> report lines of compact meters, decoded in the "
        "order the head-end got them (one memory, every meter's key)",
    )


class StreamSummary(pydantic.BaseModel):
    """Figures of a ``stream`` run (docs/wmbus-radio.md, docs/stream-plugin.md)."""

    model_config = pydantic.ConfigDict(extra="forbid")

    engine: str = pydantic.Field(description="kernel | event")
    meters: int
    receivers: int
    transmissions: int = pydantic.Field(description="telegrams sent by all meters")
    receptions: int = pydantic.Field(description="telegrams received (meter x receiver)")
    collisions_lost: int = pydantic.Field(description="telegrams lost to a collision")
    channel: str = pydantic.Field(description="radio channel preset")
    interference: str = pydantic.Field(description="pairwise | sum")
    meters_heard: int = pydantic.Field(description="meters heard by at least one receiver")
    heard_by_receivers_hist: dict[str, int] = pydantic.Field(
        description="receivers that heard a meter -> meters"
    )
    push_window_s: float = pydantic.Field(description="Stream Plugin push interval (s)")
    receivers_per_push_window_hist: dict[str, int]
    resolutions: dict[str, _Resolution] = pydantic.Field(description="per resolution window")
    ratio_vs_distance: dict[str, list[list[float]]] = pydantic.Field(
        description="per resolution: [distance (m), mean reception ratio, meters] rows"
    )
    duty_cycle_warnings: int | None = pydantic.Field(None, description="event engine")
    duty_cycle_meter_hours_over_limit: int | None = pydantic.Field(None, description="kernel")
    worst_duty_cycle_percent: float | None = pydantic.Field(None, description="kernel (%)")
    headend: _HeadEnd | None = pydantic.Field(None, description="event engine with push")
    auto_configuration: _AutoConfig | None = pydantic.Field(
        None, description="event engine with sync.enabled"
    )
    compact_frames: _CompactFrames | None = pydantic.Field(
        None, description='event engine with meters.frame = "compact": receivers\' decodes'
    )
    afl_fragments: _AflFragments | None = pydantic.Field(
        None, description="event engine with meters.fragment_size: receivers' joins (per fragment)"
    )


DEVICE = DeviceKind(
    name="stream",
    title="wM-Bus meters, radio and a CMe3100 Stream Plugin",
    scenario=StreamScenario,
    validate=validate_stream,
    build=StreamRun,
    summary=StreamSummary,
    trace=lambda sc: "keep" if sc.engine == "event" else "full",
    plots=True,
    plots_enabled=lambda sc: sc.report.plots,
)
