"""Wired M-Bus throughput: readout transactions per wall-clock second on a 250-meter bus.

Virtual time: the simulated bus needs ~0.2 s of wire time per readout plus the CMe3100 idle
times; what is measured here is how fast the simulator gets through them. 250 unit loads need
more than a CMe3100's integrated master (32 UL): the bus uses a level converter model with a
256 UL limit and a 42 V mark level on 100 m of cable.

Run: ``pytest benches/bench_bus.py --benchmark-only``; the figures of interest are printed in
``extra_info`` (readouts per wall second, simulated seconds per wall second).

The building year (issue 15: 250 meters behind a level converter, secondary search, then an
hourly readout for 8760 h, <= 10 s): ``test_building_year_250_meters`` runs the shipped
``fixtures/scenarios/mbus-250.toml`` through the run skeleton (trace and readouts.csv written)
twice: 1 h + N h (the secondary search, which ends at 36 min, and N hourly rounds of 250
readouts) and 1 h + 2N h. Every round reads the same 250 meters with the same requests (no
fault in the scenario; ``requests_event`` is only the 20 progress steps), so the year is
``t(1 h + N h) + (8759 - N) rounds x (t(1 h + 2N h) - t(1 h + N h)) / N`` (rounds at 1 h ..
8759 h). Both runs have rounds: a run without one draws an empty rounds plot, and the first
real plot's cost would count as readout time (it did until this was changed: the
extrapolation then said 320 CPU-s where the whole year takes 240).
``extra_info``: ``readouts_per_s`` (steady state), ``year_s_extrapolated``, ``base_s``, the
same per CPU second (``readouts_per_cpu_s``, ``year_cpu_s_extrapolated``: steadier on a shared
machine),
``peak_rss_mb`` (ru_maxrss of this process: run the test alone for the building's own figure).
``-s`` prints them.

``test_readouts_csv_rows_per_second``: the building's readouts.csv writer alone on one round of
mbus-250's readouts, beside the csv module's own writer on the same rows, and what the year's
rows cost at that rate (``year_csv_s``).

The whole year, not extrapolated: ``MBENCH_BUILDING_YEAR=1`` runs
``test_building_whole_year`` (8760 h at ``--trace-level summary``, about 4 min; readouts.csv
is ~1.7 GB in a temporary folder), the figures a note may quote as measured.
"""

from __future__ import annotations

import csv
import os
import random
import time
import timeit
from pathlib import Path

import pytest
from scenario_runs import peak_rss_mb, timed_run, whole_year

from simulator.building.runner import Meter, ReadoutRows, build_segment
from simulator.building.scenario_model import MbusScenario
from simulator.core.world import World
from simulator.mbus.address import SecondaryAddress
from simulator.mbus.bus import Bus
from simulator.mbus.electrical import Cable, MasterPort
from simulator.mbus.master import Master, MasterSettings
from simulator.mbus.slave import Slave
from simulator.meters.wired import TEMPLATES
from simulator.scenario import load_toml

METERS = 250
BUILDING = Path(__file__).resolve().parents[1] / "fixtures" / "scenarios" / "mbus-250.toml"
#: hourly rounds measured for the building year (the rest is extrapolated, see module doc)
YEAR_SAMPLE_ROUNDS = 24
YEAR_ROUNDS = 8759  # rounds at 1 h, 2 h, ... 8759 h of an 8760 h run


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


def _building(out: Path, hours: float, level: str) -> tuple[float, float, dict]:
    """Wall and CPU time (s) of one run of the building at trace ``level``, and its summary."""
    return timed_run(BUILDING, out, hours, level)


@pytest.mark.parametrize("level", ["all", "summary"])
def test_building_year_250_meters(benchmark, tmp_path, level):
    """The year with the full trace (``all``) and with none (``summary``: readouts.csv and
    summary.json only, ``meterbench run --trace-level summary``)."""
    base_s, base_cpu, first = _building(tmp_path / "base", 1.0 + YEAR_SAMPLE_ROUNDS, level)
    assert first["meters_found"] == METERS and first["rounds"] == YEAR_SAMPLE_ROUNDS
    box = {}

    def sample():
        box["wall"], box["cpu"], box["summary"] = _building(
            tmp_path / "sample", 1.0 + 2 * YEAR_SAMPLE_ROUNDS, level
        )

    benchmark.pedantic(sample, rounds=1, iterations=1)
    summary = box["summary"]
    assert summary["rounds"] == 2 * YEAR_SAMPLE_ROUNDS
    assert summary["readouts_ok"] == 2 * YEAR_SAMPLE_ROUNDS * METERS
    rest = YEAR_ROUNDS - YEAR_SAMPLE_ROUNDS
    per_round = (box["wall"] - base_s) / YEAR_SAMPLE_ROUNDS
    year = base_s + rest * per_round
    per_round_cpu = (box["cpu"] - base_cpu) / YEAR_SAMPLE_ROUNDS  # the shared machine's noise
    year_cpu = base_cpu + rest * per_round_cpu
    benchmark.extra_info.update(
        readouts_per_s=round(METERS / per_round, 1),
        year_s_extrapolated=round(year, 1),
        base_s=round(base_s, 3),
        readouts_per_cpu_s=round(METERS / per_round_cpu, 1),
        year_cpu_s_extrapolated=round(year_cpu, 1),
        requests_direct=summary["requests_direct"],
        requests_event=summary["requests_event"],
        peak_rss_mb=peak_rss_mb(),
    )
    print(
        f"\nmbus-250 (trace {level}): {METERS / per_round:.0f} readouts/s, "
        f"year (8760 h) extrapolated {year:.0f} s (target <= 10 s); CPU: "
        f"{METERS / per_round_cpu:.0f} readouts/s, year {year_cpu:.0f} s"
    )


@pytest.mark.skipif(
    os.environ.get("MBENCH_BUILDING_YEAR") != "1", reason="MBENCH_BUILDING_YEAR=1: about 4 min"
)
@pytest.mark.timeout(3600)  # over the suite's 300 s per test
def test_building_whole_year(benchmark, tmp_path):
    """The building's whole year at ``--trace-level summary`` (module doc)."""
    summary = whole_year(benchmark, "mbus-250", tmp_path / "year")
    assert summary["rounds"] == YEAR_ROUNDS and summary["readouts_failed"] == 0
    benchmark.extra_info.update(
        readouts=summary["readouts_ok"],
        records=summary["records"],
        readouts_csv_mb=round((tmp_path / "year" / "readouts.csv").stat().st_size / 1e6),
    )


def test_readouts_csv_rows_per_second(benchmark, tmp_path):
    """``readouts.csv`` writing alone: the building's writer (:class:`ReadoutRows`) on one
    round of the shipped mbus-250's 250 readouts, and the csv module's C writer on the same
    rows prebuilt as tuples (about the least Python can spend on a row; it must give the same
    bytes). Both are timed the same way, best of 3 writes of 20 rounds.

    ``year_csv_s`` = ``us_per_row`` x rows per round x 8759 rounds: the seconds the wired
    building's year spends on this file alone, a floor under issue 15's wired row while
    readouts.csv is text. (The CMe3100 writes its own readouts.csv, one row per readout.)
    """
    doc = load_toml(BUILDING)
    scenario = doc.validate(MbusScenario)
    seg = build_segment(World(scenario.seed, start=scenario.start), doc, scenario)
    meters = [Meter(str(s.address), s.address, scenario.bus.baud) for s in seg.slaves]
    readouts = read_all(seg.world, seg.master, [m.target for m in meters])
    assert len(readouts) == METERS and all(r.ok for r in readouts)
    rounds = 20
    pairs = list(zip(meters, readouts, strict=True)) * rounds
    path = tmp_path / "readouts.csv"

    def ours() -> int:
        with path.open("w", encoding="utf-8", newline="") as fh:
            rows = ReadoutRows(fh)
            return sum(rows.write(seg.world, m, ro) for m, ro in pairs)

    n = benchmark.pedantic(ours, rounds=3, iterations=1)
    with path.open(newline="") as fh:  # the same rows, prebuilt
        table = [tuple(r) for r in csv.reader(fh)]
    assert len(table) == n + 1  # and the header
    floor = tmp_path / "csv_writer.csv"

    def theirs() -> None:
        with floor.open("w", encoding="utf-8", newline="") as fh:
            csv.writer(fh, lineterminator="\n").writerows(table)

    floor_s = min(timeit.repeat(theirs, number=1, repeat=3))
    assert floor.read_bytes() == path.read_bytes()  # the same text
    per_row = benchmark.stats.stats.min / (n + 1)  # the header is written too
    per_round = n // rounds
    benchmark.extra_info.update(
        rows_per_round=per_round,
        us_per_row=round(per_row * 1e6, 3),
        csv_writer_us_per_row=round(floor_s / (n + 1) * 1e6, 3),
        year_csv_s=round(per_row * per_round * YEAR_ROUNDS, 1),
    )
