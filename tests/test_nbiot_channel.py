"""The cell's shared data channels (simulator/nbiot/channel.py): booking, M/D/1 queueing,
and a loaded cell that shows queueing delay and saturation instead of unlimited throughput."""

from __future__ import annotations

import random
import statistics
import textwrap

import pytest

from simulator.devices.skeleton import RunOptions, run_scenario
from simulator.nbiot.channel import DataChannel
from simulator.scenario import load_toml


def test_bookings_never_overlap_and_fill_gaps_left_ahead():
    ch = DataChannel("uplink")
    assert ch.book(10.0, 2.0) == 10.0
    assert ch.book(11.0, 1.0) == 12.0  # waits for the first
    assert ch.book(20.0, 5.0) == 20.0  # booked ahead (a module computes its timeline early)
    assert ch.book(13.5, 4.0) == 13.5  # fits the gap 13..20
    assert ch.book(14.0, 3.0) == 25.0  # no gap of 3 s before 25
    assert ch.waits == [0.0, 1.0, 0.0, 0.0, 11.0]
    assert ch.utilisation(100.0) == pytest.approx(0.15)


@pytest.mark.parametrize("rho", [0.3, 0.7])
def test_poisson_bookings_wait_as_m_d_1(rho):
    """Pollaczek-Khinchine for deterministic service S: mean wait rho S / (2 (1 - rho))."""
    rng, ch, s, t = random.Random(4), DataChannel("uplink"), 1.0, 0.0
    for _ in range(40_000):
        t += rng.expovariate(rho / s)
        ch.book(t, s)
    expected = rho * s / (2 * (1 - rho))
    assert statistics.mean(ch.waits) == pytest.approx(expected, rel=0.08)


CELL = textwrap.dedent("""
    kind = "nbiot"
    name = "loaded-cell"
    seed = 5
    hours = 1.6
    [fleet]
    modules = MODULES
    security = false
    coupling_loss = { distribution = "fixed", value_db = 150.0 }
    [module]
    transmit_interval_min = 60
    transmit_delay_min = 60
    readouts_per_telegram = 1
    [output]
    trace = "off"
    plots = false
    """)


def _cell(tmp_path, modules: int) -> dict:
    f = tmp_path / f"cell-{modules}.toml"
    f.write_text(CELL.replace("MODULES", str(modules)))
    return run_scenario(load_toml(f), RunOptions(out_dir=tmp_path / f.stem)).summary


def test_a_loaded_cell_queues_and_saturates(tmp_path):
    """CE1 (8 repetitions, 3 of 12 subcarriers): about 1.3 s of NPUSCH per Send and an ACK
    down. 100 modules in an hour barely load the carrier; 10,000 need more than the hour."""
    light, heavy = _cell(tmp_path, 100), _cell(tmp_path, 10_000)
    lu, hu = light["data_channels"]["uplink"], heavy["data_channels"]["uplink"]
    assert lu["utilisation"] < 0.05 and lu["wait_p50_s"] == 0.0
    assert hu["utilisation"] > 0.5  # over 1.6 h, most of it inside the one-hour window
    assert hu["wait_p99_s"] > 100 * max(lu["wait_p99_s"], 0.01)
    assert heavy["latency_s"]["p50"] > 5 * light["latency_s"]["p50"]
    assert heavy["delivered_ratio"] < light["delivered_ratio"]  # CoAP gives up: saturation
