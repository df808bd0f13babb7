"""Runner for ``kind = "nbiot"``: a fleet of CMi6140 modules in one cell, in virtual time.

The registered kind (``DEVICE``) builds, in the skeleton's world, one world-side server and
N modules whose coupling losses are drawn from the scenario's distribution, runs the requested
hours and reports, per module and for the fleet: uplink latency distribution (server arrival
minus the start of the telegram's transmission), energy per day from the state power model,
battery-life estimate, readouts delivered vs produced, and the spread of transmission times in
the randomisation window. Files in ``options.out_dir``: ``trace.jsonl`` (unless
``[output] trace = "off"``), ``modules.csv``, and PNG plots (matplotlib, Agg backend).
"""

from __future__ import annotations

import csv
import math
import random
from pathlib import Path
from typing import Any

import numpy as np
import pydantic

from simulator.core.accounting import check_balance
from simulator.core.memory import fewer_collections
from simulator.core.trace_invariants import NbiotOnce
from simulator.core.world import World
from simulator.devices.registry import BuildContext, DeviceKind, Outcome
from simulator.nbiot.bootstrap import BootstrapServer
from simulator.nbiot.channel import DataChannel
from simulator.nbiot.module import Cmi6140
from simulator.nbiot.network import exception_report_latency
from simulator.nbiot.nprach import NprachCell
from simulator.nbiot.scenario_model import NbiotScenario
from simulator.nbiot.scenario_model import validate as validate_nbiot
from simulator.nbiot.server import NbiotServer


def coupling_losses(scn: NbiotScenario, world: World) -> np.ndarray:
    """One coupling loss (dB) per module, from the named stream ``fleet/coupling_loss``."""
    cl, n = scn.fleet.coupling_loss, scn.fleet.modules
    rng = world.np_rng("fleet/coupling_loss")
    if cl.distribution == "fixed":
        return np.full(n, cl.value_db)
    if cl.distribution == "uniform":
        return rng.uniform(cl.low_db, cl.high_db, n)
    return np.clip(rng.normal(cl.mean_db, cl.sigma_db, n), cl.low_db, cl.high_db)


def build(scn: NbiotScenario, world: World) -> tuple[NbiotServer, list[Cmi6140]]:
    """The server and the modules of a scenario, started in ``world``."""
    hours = [(a * 3600.0, b * 3600.0) for a, b in scn.servers.server_outages_h]
    server = NbiotServer(world, detail=scn.output.trace, outages=hours)
    bs = BootstrapServer([(a * 3600.0, b * 3600.0) for a, b in scn.servers.bootstrap_outages_h])
    net = scn.network
    # One cell: the fleet shares its NPRACH opportunities (preamble collisions, .nprach).
    cell = (
        NprachCell(net.nprach_period_s, net.nprach_subcarriers) if net.nprach_collisions else None
    )
    # One carrier: the fleet shares the NPUSCH / NPDSCH air time (.channel).
    channels = (
        (DataChannel("uplink"), DataChannel("downlink")) if net.shared_data_channels else None
    )
    modules = []
    for i, loss in enumerate(coupling_losses(scn, world)):
        modules.append(
            Cmi6140(
                world,
                scn.fleet.first_id + i,
                server,
                config=scn.module,
                coupling_loss_db=float(round(loss, 2)),
                network=scn.network,
                power=scn.power,
                clock_error_s=scn.initial_clock_error_s,
                security=scn.fleet.security,
                detail=scn.output.trace,
                cell=cell,
                channels=channels,
                bootstrap_server=bs,
            )
        )
    for sync in scn.time_sync:
        chosen = (
            modules
            if sync.modules == "all"
            else [modules[i] for i in sync.modules if 0 <= i < len(modules)]
        )
        world.process(_sync_at(world, sync.at_h * 3600, chosen, sync.clock_error_s))
    return server, modules


def _sync_at(world: World, t: float, modules: list[Cmi6140], error_s: float):
    yield world.timeout(t - world.now)
    for m in modules:
        m.sync_time(error_s)


def _pct(values: list[float] | np.ndarray, q: float) -> float | None:
    arr = np.asarray(values, dtype=float)
    arr = arr[np.isfinite(arr)]
    return None if arr.size == 0 else round(float(np.percentile(arr, q)), 3)


def ks_uniform(samples: list[float], low: float, high: float) -> float:
    """Kolmogorov-Smirnov distance of ``samples`` from U[low, high] (0 = perfect)."""
    if not samples or high <= low:
        return float("nan")
    x = np.sort((np.asarray(samples) - low) / (high - low))
    n = x.size
    ecdf_hi = np.arange(1, n + 1) / n
    ecdf_lo = np.arange(0, n) / n
    return float(max(np.max(ecdf_hi - x), np.max(x - ecdf_lo)))


class NbiotRun:
    """A fleet of modules and the server, built in the skeleton's world."""

    def __init__(self, ctx: BuildContext) -> None:
        self.ctx, self.scn = ctx, ctx.scenario
        # each readout delivered at most once unless the trace shows a retransmission
        self.once = NbiotOnce()
        ctx.world.trace.subscribe(self.once)
        self.server, self.modules = build(self.scn, ctx.world)

    def advance(self, until: float, last: bool) -> None:
        with fewer_collections():  # a fleet's heap is large: collect less often
            self.ctx.world.run(until=until)

    def status(self) -> str:
        return f"{len(self.modules)} modules, {self.ctx.world.now / 3600:.1f} h"

    def finish(self) -> Outcome:
        ctx = self.ctx
        self.once.check()
        figures, rows, self.per_module = _summarise(
            self.scn, ctx.seed, ctx.hours, self.server, self.modules, ctx.end
        )
        return Outcome(figures, rows, [_write_csv(ctx.out / "modules.csv", self.per_module)])

    def plots(self, out: Path) -> list[Path]:
        from simulator.report.figures import RunLabel

        run = RunLabel(self.ctx.name, self.ctx.seed)
        return _plots(
            out, run, self.ctx.hours, self.scn, self.server, self.modules, self.per_module
        )


def _summarise(
    scn: NbiotScenario,
    seed: int,
    hours: float,
    server: NbiotServer,
    modules: list[Cmi6140],
    end: float,
) -> tuple[dict[str, Any], list[tuple[str, str]], list[dict]]:
    days = hours / 24.0
    per_module = []
    all_lat: list[float] = []
    windows: list[float] = []
    for m in modules:
        s = m.summary(end)
        lat = server.latencies.get(m.name, [])
        all_lat += lat
        windows += m.tx_window_s
        # readouts taken = delivered + pending + expired, each readout in one state (issue 14)
        check_balance(
            m.name,
            "readouts taken",
            s["produced"],
            delivered=s["delivered"],
            pending=s["pending"],
            expired=s["expired"],
        )
        s["latency_p50_s"] = _pct(lat, 50)
        s["latency_max_s"] = round(max(lat), 3) if lat else None
        s["energy_j_per_day"] = s["energy_j"] / days
        s["battery_years"] = m.power.battery_years(s["energy_j_per_day"])
        per_module.append(s)
    produced = sum(s["produced"] for s in per_module)
    delivered = sum(s["delivered"] for s in per_module)
    cfg = scn.module
    lo, hi = (
        cfg.transmit_offset_min * 60.0,
        (cfg.transmit_offset_min + cfg.transmit_delay_min) * 60.0,
    )
    by_ce: dict[str, Any] = {}
    for level in range(4):
        group = [s for s in per_module if s["ce_level"] == level]
        if not group:
            continue
        name = f"CE{level}" if level < 3 else "no coverage"
        lat = [
            x
            for m in modules
            if m.radio.ce_level == level
            for x in server.latencies.get(m.name, [])
        ]
        by_ce[name] = {
            "modules": len(group),
            "latency_p50_s": _pct(lat, 50),
            "latency_p95_s": _pct(lat, 95),
            "energy_j_per_day_mean": round(
                float(np.mean([s["energy_j_per_day"] for s in group])), 3
            ),
            "battery_years_median": _finite(np.median([s["battery_years"] for s in group])),
            "delivered_ratio": _ratio(
                sum(s["delivered"] for s in group), sum(s["produced"] for s in group)
            ),
            "ra_collisions": sum(s["ra_collisions"] for s in group),
            "dtls_retransmissions": sum(s["dtls_retransmissions"] for s in group),
            "coap_retransmissions": sum(s["coap_retransmissions"] for s in group),
        }
    channels = modules[0].radio.channels if modules else None
    data_channels = (
        {
            ch.name: {
                "utilisation": round(ch.utilisation(end), 6),
                "bookings": ch.bookings,
                "wait_p50_s": _pct(waits, 50),
                "wait_p95_s": _pct(waits, 95),
                "wait_p99_s": _pct(waits, 99),
                "wait_max_s": _pct(waits, 100),
            }
            for ch in channels
            for waits in [ch.waits]
        }
        if channels
        else None
    )
    design = exception_report_latency(scn.network, 164.0, random.Random(seed), samples=400)
    summary: dict[str, Any] = {
        "modules": len(modules),
        "readouts_produced": produced,
        "readouts_delivered": delivered,
        "delivered_ratio": _ratio(delivered, produced),
        "readouts_pending": sum(s["pending"] for s in per_module),
        "readouts_expired": sum(s["expired"] for s in per_module),
        "uplinks_at_server": server.uplinks,
        "ra_collisions": sum(s["ra_collisions"] for s in per_module),
        "dtls_timer_profile": cfg.dtls_timer_profile,
        "dtls_retransmissions": sum(s["dtls_retransmissions"] for s in per_module),
        "coap_retransmissions": sum(s["coap_retransmissions"] for s in per_module),
        "duplicates_at_server": server.duplicates,
        "lwm2m_bootstrap": {
            "mode": cfg.lwm2m_bootstrap,
            "done": sum(s["bootstraps"] for s in per_module),
            "failed": sum(s["bootstraps_failed"] for s in per_module),
        },
        "latency_s": {
            "p50": _pct(all_lat, 50),
            "p95": _pct(all_lat, 95),
            "p99": _pct(all_lat, 99),
            "max": _pct(all_lat, 100),
            "count": len(all_lat),
        },
        "energy_j_per_day": {
            "mean": round(float(np.mean([s["energy_j_per_day"] for s in per_module])), 3)
        },
        "battery_years": {
            "median": _finite(np.median([s["battery_years"] for s in per_module])),
            "p5": _finite(np.percentile([s["battery_years"] for s in per_module], 5)),
        },
        "transmission_spread": {
            "count": len(windows),
            "window_s": [lo, hi],
            "min_s": _pct(windows, 0),
            "max_s": _pct(windows, 100),
            "ks_uniform": round(ks_uniform(windows, lo, hi), 4) if windows else None,
        },
        "by_ce_level": by_ce,
        "data_channels": data_channels,
        "design_point_164db": {
            "p50_s": _pct(design, 50),
            "p99_s": _pct(design, 99),
            "target_s": 10.0,
        },
    }
    lat_s, spread = summary["latency_s"], summary["transmission_spread"]
    design_s = summary["design_point_164db"]
    rows = [
        ("modules", str(len(modules))),
        ("simulated", f"{hours:g} h"),
        (
            "readouts delivered / produced",
            f"{delivered} / {produced} ({summary['delivered_ratio']:.2%})",
        ),
        (
            "uplink latency p50 / p95 / p99",
            _txt(lat_s["p50"], lat_s["p95"], lat_s["p99"], unit="s")
            + ("" if lat_s["count"] else " (no telegram arrived)"),
        ),
        ("random-access collisions (lost contentions)", str(summary["ra_collisions"])),
        (
            f"DTLS ({cfg.dtls_timer_profile}) / CoAP retransmissions",
            f"{summary['dtls_retransmissions']} / {summary['coap_retransmissions']}",
        ),
        (
            f"LwM2M bootstraps ({cfg.lwm2m_bootstrap}) done / failed",
            f"{summary['lwm2m_bootstrap']['done']} / {summary['lwm2m_bootstrap']['failed']}",
        ),
        ("energy per day (mean)", f"{summary['energy_j_per_day']['mean']:.2f} J"),
        (
            "battery life (median, 5th pct)",
            _txt(summary["battery_years"]["median"], summary["battery_years"]["p5"], unit="years"),
        ),
        (
            "transmission spread in window",
            (
                f"{spread['min_s']} .. {spread['max_s']} s of [{lo:g}, {hi:g}] s, "
                f"KS {spread['ks_uniform']}"
                if spread["count"]
                else f"no transmission yet in [{lo:g}, {hi:g}] s"
            ),
        ),
        (
            "164 dB exception report p50 / p99",
            _txt(design_s["p50_s"], design_s["p99_s"], unit="s") + " (3GPP target 10 s)",
        ),
    ]
    for name, ch in (data_channels or {}).items():
        if ch["wait_p50_s"] is None:  # nothing queued yet: "-" and why, not "None"
            waits = "- (nothing sent on it yet)"
        else:
            waits = f"{ch['wait_p50_s']} / {ch['wait_p99_s']} s"
        rows.append(
            (
                f"{name} data channel: utilisation, queueing p50 / p99",
                f"{ch['utilisation']:.1%}, {waits}",
            )
        )
    for name, g in by_ce.items():
        rows.append(
            (
                f"{name}: modules, latency p50, battery",
                # a group with nothing delivered has no latency: "-", not "None s"
                f"{g['modules']}, {_txt(g['latency_p50_s'], unit='s')}, "
                f"{_txt(g['battery_years_median'], unit='y')}",
            )
        )
    return summary, rows, per_module


def _txt(*values: float | None, unit: str) -> str:
    """Figures joined by `` / `` with their unit; a missing one (None: nothing to measure in
    this run, e.g. no telegram arrived yet) is ``-``, never ``None``."""
    text = " / ".join("-" if v is None else f"{v}" for v in values)
    return text if all(v is None for v in values) else f"{text} {unit}"


def _finite(x: float) -> float | None:
    return round(float(x), 2) if math.isfinite(x) else None


def _ratio(a: int, b: int) -> float:
    return round(a / b, 6) if b else 0.0


def _write_csv(path: Path, rows: list[dict]) -> Path:
    cols = [
        "module",
        "coupling_loss_db",
        "ce_level",
        "produced",
        "delivered",
        "sent",
        "pending",
        "expired",
        "dropped_by_age",
        "unsent",
        "failed_telegrams",
        "ra_collisions",
        "dtls_retransmissions",
        "coap_retransmissions",
        "latency_p50_s",
        "latency_max_s",
        "energy_j_per_day",
        "battery_years",
    ]
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=cols, extrasaction="ignore", lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow({k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()})
    return path


def _plots(
    out: Path,
    run: Any,
    hours: float,
    scn: NbiotScenario,
    server: NbiotServer,
    modules: list[Cmi6140],
    per_module: list[dict],
) -> list[Path]:
    """latency_hist.png, transmission_spread.png, battery_vs_coupling_loss.png (rules:
    :mod:`simulator.report.figures`)."""
    from simulator.report import figures as fg

    plt = fg.pyplot()
    files = []
    lat = np.asarray([x for v in server.latencies.values() for x in v], dtype=float)
    fig, ax = plt.subplots(figsize=(7, 4))
    if lat.size:
        ax.hist(lat, bins=60, color=fg.GOOD, label=f"telegrams at the server ({lat.size})")
        for q, ls in ((50, "--"), (95, ":")):
            v = float(np.percentile(lat, q))
            ax.axvline(v, color="black", ls=ls, lw=1, label=f"{q}th percentile: {v:.2f} s")
        ax.set_xlabel("uplink latency: server arrival - start of transmission (s)")
        ax.set_ylabel("telegrams (count)")
        ax.legend(fontsize="small")
    else:
        fg.no_data(ax, f"no telegram reached the server in {hours:g} h")
    ax.set_title(fg.run_title("Uplink latency", run))
    files.append(fg.save(fig, out / "latency_hist.png", run))

    cfg = scn.module
    lo, hi = cfg.transmit_offset_min, cfg.transmit_offset_min + cfg.transmit_delay_min
    win = np.asarray([x for m in modules for x in m.tx_window_s], dtype=float) / 60.0
    fig, ax = plt.subplots(figsize=(7, 4))
    if win.size:
        ax.hist(win, bins=60, color=fg.GOOD, label=f"transmissions ({win.size})")
        ax.axvspan(
            lo, hi, color=fg.NEUTRAL, alpha=0.15, label="randomisation window (offset + delay)"
        )
        ax.set_xlabel("send time after the planned full hour (min)")
        ax.set_ylabel("transmissions (count)")
        ax.legend(fontsize="small", loc="lower right")
    else:
        fg.no_data(ax, f"no transmission yet (window {lo:g}-{hi:g} min after the hour)")
    ax.set_title(fg.run_title("Spread of transmission times in the randomisation window", run))
    files.append(fg.save(fig, out / "transmission_spread.png", run))

    fig, ax = plt.subplots(figsize=(7, 4.5))
    names = {0: "CE0", 1: "CE1", 2: "CE2", 3: "no coverage"}
    markers = {0: "o", 1: "s", 2: "D", 3: "x"}
    for level, name in names.items():
        rows = [r for r in per_module if r["ce_level"] == level]
        if rows:
            ax.scatter(
                [r["coupling_loss_db"] for r in rows],
                [min(r["battery_years"], 50) for r in rows],
                s=8 if level < 3 else 14,
                c=fg.SERIES[level] if level < 3 else fg.BAD,
                marker=markers[level],
                lw=0.8,
                label=f"{name} ({len(rows)} modules)",
            )
    ax.set_xlabel("coupling loss (dB)")
    ax.set_ylabel(f"battery life (years, {scn.power.battery_wh:g} Wh, capped at 50)")
    ax.legend(fontsize="small", title="coverage level")
    ax.set_title(fg.run_title("Battery-life estimate per module", run))
    files.append(fg.save(fig, out / "battery_vs_coupling_loss.png", run))
    return files


class _Latency(pydantic.BaseModel):
    p50: float | None = pydantic.Field(description="median uplink latency (s)")
    p95: float | None = pydantic.Field(description="95th percentile (s)")
    p99: float | None = pydantic.Field(description="99th percentile (s)")
    max: float | None = pydantic.Field(description="largest (s)")
    count: int = pydantic.Field(description="telegrams that arrived")


class _Spread(pydantic.BaseModel):
    count: int = pydantic.Field(description="transmissions")
    window_s: list[float] = pydantic.Field(description="randomisation window [low, high] (s)")
    min_s: float | None = pydantic.Field(description="earliest send time in the window (s)")
    max_s: float | None = pydantic.Field(description="latest send time in the window (s)")
    ks_uniform: float | None = pydantic.Field(description="KS distance to uniform")


class _CeGroup(pydantic.BaseModel):
    modules: int
    latency_p50_s: float | None = pydantic.Field(description="median latency (s)")
    latency_p95_s: float | None = pydantic.Field(description="95th percentile latency (s)")
    energy_j_per_day_mean: float = pydantic.Field(description="mean energy per day (J)")
    battery_years_median: float | None = pydantic.Field(description="median battery life (y)")
    delivered_ratio: float = pydantic.Field(ge=0, le=1)
    ra_collisions: int
    dtls_retransmissions: int
    coap_retransmissions: int


class _Channel(pydantic.BaseModel):
    utilisation: float = pydantic.Field(description="booked air time / simulated time")
    bookings: int = pydantic.Field(description="datagrams carried")
    wait_p50_s: float | None = pydantic.Field(description="median queueing delay (s)")
    wait_p95_s: float | None = pydantic.Field(description="95th percentile (s)")
    wait_p99_s: float | None = pydantic.Field(description="99th percentile (s)")
    wait_max_s: float | None = pydantic.Field(description="largest (s)")


class _Bootstrap(pydantic.BaseModel):
    mode: str = pydantic.Field(description="lwm2m_bootstrap: factory or client_initiated")
    done: int = pydantic.Field(description="Client Initiated Bootstraps finished (all modules)")
    failed: int = pydantic.Field(
        description="bootstraps that got no answer (DTLS, Bootstrap-Request, a server request, "
        "or no Finish within EXCHANGE_LIFETIME)"
    )


class NbiotSummary(pydantic.BaseModel):
    """Figures of an ``nbiot`` fleet run (docs/nbiot.md)."""

    model_config = pydantic.ConfigDict(extra="forbid")

    modules: int = pydantic.Field(description="CMi6140 modules in the cell")
    readouts_produced: int = pydantic.Field(description="readouts the modules took")
    readouts_delivered: int = pydantic.Field(
        description="readouts a telegram carried to the server, acknowledged or not"
    )
    delivered_ratio: float = pydantic.Field(ge=0, le=1)
    readouts_pending: int = pydantic.Field(
        description="readouts still stored at the end that no copy of reached the server"
    )
    readouts_expired: int = pydantic.Field(
        description="readouts dropped by max age before any copy reached the server "
        "(produced = delivered + pending + expired)"
    )
    uplinks_at_server: int
    ra_collisions: int = pydantic.Field(description="lost NPRACH contentions")
    dtls_timer_profile: str
    dtls_retransmissions: int
    coap_retransmissions: int
    duplicates_at_server: int
    lwm2m_bootstrap: _Bootstrap
    latency_s: _Latency
    energy_j_per_day: dict[str, float] = pydantic.Field(description="mean energy per day (J)")
    battery_years: dict[str, float | None] = pydantic.Field(description="median, p5 (years)")
    transmission_spread: _Spread
    by_ce_level: dict[str, _CeGroup]
    data_channels: dict[str, _Channel] | None = pydantic.Field(
        description="the cell's shared NPUSCH (uplink) / NPDSCH (downlink): utilisation and "
        "queueing delay; null when not shared"
    )
    design_point_164db: dict[str, float | None] = pydantic.Field(
        description="exception-report latency at 164 dB coupling loss, p50/p99 vs target (s)"
    )


DEVICE = DeviceKind(
    name="nbiot",
    title="a fleet of CMi6140 NB-IoT modules in one cell",
    scenario=NbiotScenario,
    validate=validate_nbiot,
    build=NbiotRun,
    summary=NbiotSummary,
    trace=lambda scn: "off" if scn.output.trace == "off" else "full",
    plots=True,
    plots_enabled=lambda scn: scn.output.plots,
)
