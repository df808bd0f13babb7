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
    coupling_loss = { distribution = "fixed", value_db = 160.0 }
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
    """CE2 (32 repetitions): each CoAP ACK takes about 1 s of the whole NPDSCH carrier and
    each Send about 10 s of one NPUSCH subcarrier in twelve. 100 modules in an hour barely
    load the cell; 2500 need more downlink time than the hour has: the queue grows, CoAP
    gives up and resends, and almost nothing gets through (saturation, not unlimited
    throughput)."""
    light, heavy = _cell(tmp_path, 100), _cell(tmp_path, 2500)
    lu, ld = light["data_channels"]["uplink"], light["data_channels"]["downlink"]
    hu, hd = heavy["data_channels"]["uplink"], heavy["data_channels"]["downlink"]
    assert lu["utilisation"] < 0.05 and ld["utilisation"] < 0.05 and ld["wait_p50_s"] == 0.0
    assert hd["utilisation"] > 0.9 and hd["wait_p99_s"] > 1000.0  # saturated
    assert hu["utilisation"] > 10 * lu["utilisation"] and hu["wait_p99_s"] > lu["wait_p99_s"]
    assert heavy["delivered_ratio"] < 0.5 * light["delivered_ratio"]
