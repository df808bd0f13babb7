"""Radio benches: the city run end to end, the kernel alone, and the event model.

City runs (issue 15, "wM-Bus city" row): ``meterbench run`` of the shipped
``fixtures/scenarios/stream-city-100k.toml`` (100,000 meters, 6 km x 6 km, 25 receivers, 24 h,
plots on) and of the same city with 10,000 meters (same area and receivers, the count changed
in a temporary copy). Each run is ``meterbench run`` in a fresh Python process, so its peak
RSS (``resource.getrusage(RUSAGE_SELF).ru_maxrss``, read in that process) belongs to that run
alone. ``extra_info``: ``wall_s`` (the command, interpreter start to exit), ``run_wall_s``
(summary.json ``wall_seconds``: build, radio, statistics, files and plots), ``cpu_s`` (user +
system CPU of the run's process: steadier than wall time on a shared machine), ``peak_rss_mb``,
``meter_days_per_s`` (meters x simulated days / ``wall_s``), and on the 100k case the
100k/10k ratios of both walls and of the CPU time (target: at most 11).

Kernel cases time :func:`run_kernel` alone (in process, no files): 10,000 meters over 3 km
(both interference rules) and 100,000 over 6 km, 25 receivers on a 5 x 5 grid, Oulu path loss,
80 % indoor, 15-min intervals, water-profile time on air from the PHY model. A last case times
the SimPy event model on 500 meters for 1 h, so the kernel's speed-up on the same kind of work
is visible.

Run: ``pytest benches/bench_radio.py --benchmark-only -s`` (``-k city`` for the runs alone).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from simulator.core.world import World
from simulator.wmbus.channel import Channel
from simulator.wmbus.meter import RadioMeter, airtime_s
from simulator.wmbus.radio_kernel import RadioSetup, run_kernel
from simulator.wmbus.radio_world import RadioWorld
from simulator.wmbus.receiver import Receiver

ROOT = Path(__file__).resolve().parents[1]
CITY = ROOT / "fixtures" / "scenarios" / "stream-city-100k.toml"

#: Runs one scenario in this (fresh) process and prints its own wall time and peak RSS.
_CHILD = """
import json, resource, sys, time
t0 = time.perf_counter()
from simulator.cli import main
rc = main(["run", sys.argv[1], "--out", sys.argv[2], "--quiet"])
wall = time.perf_counter() - t0
use = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({
    "rc": rc, "child_wall_s": wall, "cpu_s": use.ru_utime + use.ru_stime,
    "peak_rss_mb": use.ru_maxrss / 1024,  # ru_maxrss is in KiB on Linux
}))
"""

_CITY_RUNS: dict[int, dict] = {}


def _city_scenario(meters: int, folder: Path) -> Path:
    """The shipped 100k city file, or a copy of it with ``meters`` meters (same city)."""
    if meters == 100_000:
        return CITY
    text = CITY.read_text()
    assert "count = 100000\n" in text, "the shipped city file changed its meter count line"
    path = folder / f"stream-city-{meters // 1000}k.toml"
    path.write_text(text.replace("count = 100000\n", f"count = {meters}\n"))
    return path


def _city_run(meters: int, folder: Path) -> dict:
    """Run the city with ``meters`` meters in a fresh process; its figures."""
    scenario = _city_scenario(meters, folder)
    out = folder / f"out-{meters}"
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, str(scenario), str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    wall = time.perf_counter() - t0
    child = json.loads(proc.stdout.strip().splitlines()[-1])
    assert child["rc"] == 0, proc.stderr
    summary = json.loads((out / "summary.json").read_text())
    days = summary["sim_seconds"] / 86400.0
    figures = {
        "meters": summary["meters"],
        "receivers": summary["receivers"],
        "sim_days": days,
        "wall_s": round(wall, 3),
        "run_wall_s": summary["wall_seconds"],
        "cpu_s": round(child["cpu_s"], 3),
        "peak_rss_mb": round(child["peak_rss_mb"], 1),
        "meter_days_per_s": round(summary["meters"] * days / wall),
        "transmissions": summary["transmissions"],
        "receptions": summary["receptions"],
        "collisions_lost": summary["collisions_lost"],
    }
    _CITY_RUNS[meters] = figures
    return figures


@pytest.mark.slow
@pytest.mark.parametrize("meters", [10_000, 100_000])
def test_city_run(benchmark, tmp_path, meters):
    """One ``meterbench run`` of the city per round, in its own process."""
    result = {}
    benchmark.pedantic(lambda: result.update(_city_run(meters, tmp_path)), rounds=1, iterations=1)
    benchmark.extra_info.update(result)
    if meters == 100_000:
        small = _CITY_RUNS.get(10_000) or _city_run(10_000, tmp_path)
        benchmark.extra_info.update(
            wall_s_10k=small["wall_s"],
            ratio_wall_100k_over_10k=round(result["wall_s"] / small["wall_s"], 2),
            ratio_run_wall_100k_over_10k=round(result["run_wall_s"] / small["run_wall_s"], 2),
            ratio_cpu_100k_over_10k=round(result["cpu_s"] / small["cpu_s"], 2),
        )
    print(f"\ncity run {meters} meters: {benchmark.extra_info}")


def city(n: int, side_m: float, seed: int = 1, interference: str = "pairwise") -> RadioSetup:
    rng = np.random.default_rng(seed)
    xy = rng.uniform(-side_m / 2, side_m / 2, (n, 2))
    modes = rng.choice(["T1", "C1A", "C1B", "S1"], size=n, p=[0.6, 0.25, 0.1, 0.05])
    meters = [
        RadioMeter(
            id=30_000_000 + i,
            x=float(xy[i, 0]),
            y=float(xy[i, 1]),
            mode=str(modes[i]),
            indoor=bool(i % 5),
            interval_s=900.0,
        )
        for i in range(n)
    ]
    step = side_m / 5
    receivers = [
        Receiver(
            f"r{k}",
            -side_m / 2 + (k % 5 + 0.5) * step,
            -side_m / 2 + (k // 5 + 0.5) * step,
            interference=interference,
        )
        for k in range(25)
    ]
    airtime = np.array([airtime_s(str(m), "water") for m in modes])  # C1 includes the ELL
    return RadioSetup.build(meters, receivers, Channel.preset("oulu"), seed, airtime=airtime)


def _kernel(benchmark, n: int, side: float, rounds: int, interference: str = "pairwise") -> None:
    setup = city(n, side, interference=interference)
    result = {}

    def go():
        run = run_kernel(setup, 86400.0)
        result.update(tx=run.transmissions, rx=len(run.receptions))

    benchmark.pedantic(go, rounds=rounds, iterations=1)
    mean = benchmark.stats.stats.mean
    benchmark.extra_info.update(
        meters=n,
        receivers=25,
        telegrams=result["tx"],
        receptions=result["rx"],
        interference=interference,
        telegrams_per_s=round(result["tx"] / mean),
        meter_days_per_s=round(n / mean),
    )


@pytest.mark.parametrize("interference", ["pairwise", "sum"])
def test_kernel_10k_meters_24h(benchmark, interference):
    _kernel(benchmark, 10_000, 3000.0, rounds=3, interference=interference)


@pytest.mark.slow
def test_kernel_100k_meters_24h(benchmark):
    _kernel(benchmark, 100_000, 6000.0, rounds=1)


@pytest.mark.parametrize("interference", ["pairwise", "sum"])
def test_event_model_500_meters_1h(benchmark, interference):
    setup = city(500, 1000.0, interference=interference)
    sent = {}

    def go():
        world = World(1)
        model = RadioWorld(world, setup, 3600.0, trace_tx=False)
        world.run(until=3601)
        sent["n"] = model.sent

    benchmark.pedantic(go, rounds=2, iterations=1)
    benchmark.extra_info.update(
        meters=500,
        telegrams=sent["n"],
        interference=interference,
        telegrams_per_s=round(sent["n"] / benchmark.stats.stats.mean),
    )
