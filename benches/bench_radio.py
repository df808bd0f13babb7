"""Radio kernel throughput: telegrams simulated per wall-clock second.

Two city sizes with 25 receivers on a 5 x 5 grid (Oulu path loss, 80 % indoor, 15-min
intervals, water-profile telegrams whose time on air comes from the PHY model, C1 with ELL):
10,000 meters for 24 h (~960k telegrams) with the pairwise and the summed interference rule,
and 100,000 meters for 24 h (~9.6M telegrams, one round). A third case times the SimPy event
model on 500 meters for 1 h (both rules), so the kernel's speed-up over the event model on the
same kind of work is visible.

Run: ``pytest benches/bench_radio.py --benchmark-only``; ``extra_info`` holds telegrams per
wall second and the counts.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from simulator.core.world import World
from simulator.wmbus.channel import Channel
from simulator.wmbus.meter import RadioMeter, airtime_s
from simulator.wmbus.radio_kernel import RadioSetup, run_kernel
from simulator.wmbus.radio_world import RadioWorld
from simulator.wmbus.receiver import Receiver


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
        t0 = time.perf_counter()
        tx, rec = run_kernel(setup, 86400.0)
        result.update(tx=len(tx), rx=len(rec), wall=time.perf_counter() - t0)

    benchmark.pedantic(go, rounds=rounds, iterations=1)
    benchmark.extra_info.update(
        meters=n,
        receivers=25,
        telegrams=result["tx"],
        receptions=result["rx"],
        interference=interference,
        telegrams_per_s=round(result["tx"] / benchmark.stats.stats.mean),
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
