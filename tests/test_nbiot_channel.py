"""The cell's shared data channels (simulator/nbiot/channel.py): booking, M/D/1 queueing,
and a loaded cell that shows queueing delay and saturation instead of unlimited throughput."""

from __future__ import annotations

import bisect
import random
import statistics
import textwrap

import pytest

from simulator.devices.skeleton import RunOptions, run_scenario
from simulator.nbiot import channel
from simulator.nbiot.channel import DataChannel
from simulator.scenario import load_toml


def test_bookings_never_overlap_and_fill_gaps_left_ahead():
    ch = DataChannel("uplink")
    assert ch.book(10.0, 2.0) == 10.0
    assert ch.book(11.0, 1.0) == 12.0  # waits for the first
    assert ch.book(20.0, 5.0) == 20.0  # booked ahead (a module computes its timeline early)
    assert ch.book(13.5, 4.0) == 13.5  # fits the gap 13..20
    assert ch.book(14.0, 3.0) == 25.0  # no gap of 3 s before 25
    assert ch.bookings == 5 and sorted(ch.waits) == [0.0, 0.0, 0.0, 1.0, 11.0]
    assert ch.utilisation(100.0) == pytest.approx(0.15)


class _OneIntervalPerBooking:
    """The calendar as it was before blocks (e54b894): one sorted interval per booking, the
    gap search walks them one by one. The reference the block calendar must agree with."""

    def __init__(self) -> None:
        self.starts: list[float] = []
        self.ends: list[float] = []
        self.latest = 0.0

    def book(self, t: float, air_s: float) -> float:
        i = bisect.bisect_right(self.starts, t)
        start = t
        if i > 0 and self.ends[i - 1] > start:
            start = self.ends[i - 1]
        while i < len(self.starts) and self.starts[i] < start + air_s:
            start = max(start, self.ends[i])
            i += 1
        self.starts.insert(i, start)
        self.ends.insert(i, start + air_s)
        if t > self.latest + 3600.0:
            k = bisect.bisect_left(self.ends, t - 3600.0)
            del self.starts[:k], self.ends[:k]
        self.latest = max(self.latest, t)
        return start


@pytest.mark.parametrize("chunk", [1, 2, 64])
def test_each_way_a_booking_joins_blocks_and_forgetting_inside_a_block(chunk, monkeypatch):
    monkeypatch.setattr(channel, "CHUNK", chunk)  # small chunks: every case crosses one
    ch, ref = DataChannel("downlink"), _OneIntervalPerBooking()
    steps = [
        ((0.0, 1.0), 0.0),
        ((3.0, 1.0), 3.0),
        ((2.0, 1.0), 2.0),  # touches the block after: [2, 4)
        ((2.5, 0.5), 4.0),  # ... so 2.5 is busy
        ((1.0, 1.0), 1.0),  # fills the gap exactly: one block [0, 4.5)
        ((0.5, 0.1), 4.5),
        ((100.0, 50.0), 100.0),
        ((100.0, 4950.0), 150.0),  # touches the block before: [100, 5100), ends 150 and 5100
        ((3800.0, 1.0), 5100.0),  # an hour after every request: forget what ended before 200
        ((110.0, 20.0), 110.0),  # the booking that ended at 150 is forgotten, as before
        ((9000.0, 10.0), 9000.0),
        ((9020.0, 10.0), 9020.0),
        ((9030.0, 10.0), 9030.0),  # [9020, 9040) with two bookings
        ((9010.0, 10.0), 9010.0),  # fills [9010, 9020): one block of four bookings
        ((12636.0, 1.0), 12636.0),  # forget the three that ended before 9036
        ((9022.0, 5.0), 9022.0),
    ]
    for (t, air), start in steps:
        assert ch.book(t, air) == ref.book(t, air) == start


def _check_blocks(ch: DataChannel) -> None:
    """What the gap search relies on, whichever way a booking went in: blocks sorted and
    apart, each block's bookings ending at its end, chunks within size, each chunk's first
    start up to date and its bound on the largest inner gap never below it."""
    for c, k in enumerate(ch._chunks):
        assert 0 < len(k.starts) <= 2 * channel.CHUNK
        assert ch._firsts[c] == k.starts[0]
        assert all(p[-1] == e for p, e in zip(k.pieces, k.ends, strict=True))
        gaps = [b - a for a, b in zip(k.ends, k.starts[1:], strict=False)]
        assert all(g > 0 for g in gaps)
        assert k.maxgap >= max(gaps, default=float("-inf"))  # a bound: never too small
    edges = [(k.starts[0], k.ends[-1]) for k in ch._chunks]
    assert all(a[1] < b[0] for a, b in zip(edges, edges[1:], strict=False))


@pytest.mark.parametrize("chunk", [2, 64])
@pytest.mark.parametrize("seed", range(8))
def test_blocks_of_touching_bookings_give_the_starts_of_one_interval_per_booking(
    seed, chunk, monkeypatch
):
    """Saturated bursts (bookings touch and merge into blocks), requests behind and ahead of
    the latest one, quiet hours that make the calendar forget, and requests that land on the
    forgotten part of a block afterwards."""
    monkeypatch.setattr(channel, "CHUNK", chunk)
    rng = random.Random(seed)
    blocks, reference = DataChannel("downlink"), _OneIntervalPerBooking()
    t, waits = 0.0, []
    for _ in range(3000):
        r = rng.random()
        if r < 0.01:
            t += rng.uniform(3600.0, 4500.0)  # a quiet spell: the next request forgets ...
        elif r < 0.8:
            t += rng.expovariate(4.0)  # ... while a burst (faster than service) still queues
        ask = t + rng.choice([0.0, 0.0, -rng.uniform(0, 5000), rng.uniform(0, 600)])
        air = rng.choice([0.25, 0.5, 1.5, rng.uniform(0.01, 3.0)])
        start = reference.book(ask, air)
        assert blocks.book(ask, air) == start
        _check_blocks(blocks)
        waits.append(start - ask)
    assert blocks.blocks() < len(reference.starts)  # blocks did form
    # zero waits are only counted: the same waits as one float per booking, zeros and all
    assert 0 < waits.count(0.0) < len(waits) == blocks.bookings
    assert sorted(blocks.waits) == sorted(waits)


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
