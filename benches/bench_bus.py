"""Wired M-Bus throughput: readout transactions per wall-clock second on a 250-meter bus.

Virtual time: the simulated bus needs ~0.2 s of wire time per readout plus the CMe3100 idle
times; what is measured here is how fast the simulator gets through them. 250 unit loads need
more than a CMe3100's integrated master (32 UL): the bus uses a level converter model with a
256 UL limit and a 42 V mark level on 100 m of cable.

Run: ``pytest benches/bench_bus.py --benchmark-only``; the figures of interest are printed in
``extra_info`` (readouts per wall second, simulated seconds per wall second).
"""

from __future__ import annotations

import random
import time

from simulator.core.world import World
from simulator.mbus.address import SecondaryAddress
from simulator.mbus.bus import Bus
from simulator.mbus.electrical import Cable, MasterPort
from simulator.mbus.master import Master, MasterSettings
from simulator.mbus.slave import Slave
from simulator.meters.wired import TEMPLATES

METERS = 250


def build(seed: int = 1) -> tuple[World, Bus, Master, list[Slave]]:
    world = World(seed)
    bus = Bus(
        world,
        baud=2400,
        master=MasterPort(max_unit_loads=256, mark_voltage=42.0),
        cable=Cable(length_m=100),
    )
    media = ["heat", "water", "electricity", "gas"]
    slaves = []
    for i in range(METERS):
        tpl = TEMPLATES[media[i % 4]]
        s = Slave(
            world,
            SecondaryAddress(10_000_000 + i, "ELV", 1, tpl.medium),
            primary=i + 1,
            records=tpl.build(random.Random(i), 1),
        )
        bus.attach(s)
        slaves.append(s)
    assert not bus.overloaded and all(bus.powered(s) for s in slaves)
    master = Master(bus, MasterSettings(send_nke=False))
    return world, bus, master, slaves


def read_all(world: World, master: Master, targets) -> list:
    out = []

    def proc():
        for t in targets:
            out.append((yield from master.read(t)))

    world.process(proc())
    world.run()
    return out


def test_primary_readouts_per_second_250_meters(benchmark):
    world, bus, master, slaves = build()
    t0 = world.now

    def one_round():
        return read_all(world, master, range(1, METERS + 1))

    wall0 = time.perf_counter()
    results = benchmark.pedantic(one_round, rounds=3, iterations=1)
    wall = time.perf_counter() - wall0
    assert len(results) == METERS and all(r.ok for r in results)
    readouts = 3 * METERS
    benchmark.extra_info["readouts_per_wall_s"] = round(readouts / wall, 1)
    benchmark.extra_info["sim_s_per_wall_s"] = round((world.now - t0) / wall, 1)
    benchmark.extra_info["frames"] = bus.counters["requests"] + bus.counters["replies"]


def test_secondary_readouts_per_second_250_meters(benchmark):
    world, bus, master, slaves = build()
    targets = [s.address for s in slaves]

    def one_round():
        return read_all(world, master, targets)

    wall0 = time.perf_counter()
    results = benchmark.pedantic(one_round, rounds=3, iterations=1)
    wall = time.perf_counter() - wall0
    assert all(r.ok for r in results)
    benchmark.extra_info["readouts_per_wall_s"] = round(3 * METERS / wall, 1)


def test_secondary_search_250_meters(benchmark):
    def search():
        world, bus, master, slaves = build()
        box = {}

        def proc():
            box["found"] = yield from master.search_secondary()

        world.process(proc())
        world.run()
        return world, box["found"]

    world, found = benchmark.pedantic(search, rounds=1, iterations=1)
    assert len(found) == METERS
    benchmark.extra_info["sim_minutes"] = round(world.now / 60, 1)
