"""NB-IoT fleet throughput: module-days simulated per wall-clock second, 10,000 CMi6140s.

The fleet is the shipped ``fixtures/scenarios/nbiot-fleet.toml`` (hourly readouts, one daily
SenML CBOR transmission over LwM2M/DTLS, normal coupling-loss distribution) scaled to 10,000
modules and run for 25 h of virtual time (so the daily transmission happens), trace kept off
(statistics only) and, in a second case, streamed as JSON lines to a file.

Run: ``pytest benches/bench_nbiot.py --benchmark-only``; ``extra_info`` holds
``module_days_per_s`` (the figure of interest) and the event counts.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from simulator.core.trace import Trace
from simulator.core.world import World
from simulator.nbiot.runner import build
from simulator.nbiot.scenario_model import NbiotScenario
from simulator.scenario import load_toml

FLEET = Path(__file__).resolve().parent.parent / "fixtures" / "scenarios" / "nbiot-fleet.toml"
MODULES = 10_000
HOURS = 25.0


def _scenario(trace: str) -> NbiotScenario:
    doc = load_toml(FLEET)
    doc.data["fleet"]["modules"] = MODULES
    doc.data["output"]["trace"] = trace
    return doc.validate(NbiotScenario)


def _simulate(scn: NbiotScenario, sink=None) -> dict:
    world = World(scn.seed, trace=Trace(keep=False, sink=sink))
    server, modules = build(scn, world)
    t0 = time.perf_counter()
    world.run(HOURS * 3600)
    world.trace.flush()  # the writer batches lines: the last batch is part of the cost
    wall = time.perf_counter() - t0
    return {
        "wall_s": wall,
        "module_days_per_s": MODULES * HOURS / 24 / wall,
        "readouts": sum(m.produced for m in modules),
        "uplinks": server.uplinks,
        "trace_events": world.trace.count,
    }


@pytest.mark.parametrize("trace", ["off", "message"])
def test_fleet_module_days_per_second(benchmark, tmp_path, trace):
    scn = _scenario(trace)

    def once():
        if trace == "off":
            return _simulate(scn)
        with (tmp_path / "trace.jsonl").open("w") as fh:
            return _simulate(scn, fh)

    info = benchmark.pedantic(once, rounds=1, iterations=1)
    benchmark.extra_info.update(
        {k: round(v, 2) if isinstance(v, float) else v for k, v in info.items()}
    )
    assert info["readouts"] == MODULES * 24
    assert info["uplinks"] > 0.9 * MODULES
