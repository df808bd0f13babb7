"""NPRACH preamble collisions between modules of one cell (simulator.nbiot.nprach)."""

from __future__ import annotations

import random
import statistics
import textwrap

import pytest

from simulator.devices import run_scenario
from simulator.nbiot.network import NetworkParams, Radio, Timeline
from simulator.nbiot.nprach import NprachCell
from simulator.scenario import RunOptions, load_toml


def test_claims_on_one_opportunity_and_subcarrier_collide_first_claim_wins():
    cell = NprachCell((0.32, 0.64, 2.56), (24, 12, 12))
    assert cell.next_opportunity(0, 1.0) == pytest.approx(1.28)
    assert cell.next_opportunity(2, 2.56) == pytest.approx(2.56)
    t = cell.next_opportunity(1, 10.0)
    assert cell.claim(1, t, 5) is True
    assert cell.claim(1, t, 5) is False  # same opportunity, same subcarrier
    assert cell.claim(1, t, 6) is True  # another subcarrier
    assert cell.claim(1, t + 0.64, 5) is True  # the next opportunity
    assert cell.claim(0, t, 5) is True  # another CE level has its own resource
    assert cell.collisions == [0, 1, 0] and cell.claims == [1, 4, 0]
    with pytest.raises(ValueError, match=r"outside 0\.\.11 of CE1"):
        cell.claim(1, t, 12)
    with pytest.raises(ValueError, match="positive"):
        NprachCell((0.32, 0.0, 2.56), (24, 12, 12))


@pytest.mark.parametrize("seed", range(4))
def test_a_preamble_is_the_next_opportunity_a_drawn_subcarrier_and_a_claim(seed):
    """``NprachCell.preamble`` against its definition on a twin cell and a twin stream:
    the same opportunities, outcomes, counts and stream state, through crowded opportunities
    (collisions), every CE level and enough claims to prune."""
    periods, subcarriers = (0.32, 0.64, 2.56), (24, 12, 12)
    fast, slow = NprachCell(periods, subcarriers), NprachCell(periods, subcarriers)
    rng_fast, rng_slow = random.Random(seed), random.Random(seed)
    times = random.Random(100 + seed)
    t = 0.0
    for _ in range(12_000):
        t += times.choice([0.0, 0.0, 0.01, times.uniform(0, 2.0)])
        level = times.randrange(3)
        got = fast.preamble(level, t, rng_fast)
        t_opp = slow.next_opportunity(level, t)
        won = slow.claim(level, t_opp, rng_slow.randrange(subcarriers[level]))
        assert got == (t_opp, won)
    assert fast.claims == slow.claims and fast.collisions == slow.collisions
    assert sum(fast.collisions) > 100 and fast._horizon > 0  # crowded, and pruned
    assert rng_fast.random() == rng_slow.random()


def test_simultaneous_contenders_match_the_balls_into_bins_expectation():
    """n UEs waking at the same instant contend on the same opportunity; each picks one of S
    subcarriers, so the expected number of distinct subcarriers (one winner each) is
    S (1 - (1 - 1/S)^n). 30 UEs on CE0's 24 subcarriers: 17.3 winners, 12.7 losers."""
    n, s = 30, 24
    net = NetworkParams(residual_loss=(0.0, 0.0, 0.0))
    winners = []
    for trial in range(60):
        cell = NprachCell(net.nprach_period_s, net.nprach_subcarriers)
        rng = random.Random(trial)
        lost = 0
        for _ in range(n):
            radio = Radio(130.0, net, rng, psm=False, cell=cell)
            tl = Timeline()
            radio.uplink(100.0, 50, tl)
            lost += sum(
                1 for _, kind, f in tl.events if kind == "nbiot.ra_collision" and f["attempt"] == 0
            )
        winners.append(n - lost)
    expected = s * (1 - (1 - 1 / s) ** n)
    assert statistics.mean(winners) == pytest.approx(expected, abs=0.5)


def test_a_module_alone_never_collides_and_without_a_cell_nothing_is_shared():
    net = NetworkParams()
    cell = NprachCell(net.nprach_period_s, net.nprach_subcarriers)
    radio = Radio(150.0, net, random.Random(1), cell=cell)
    t = 0.0
    for k in range(50):  # one module, many connections: its claims never overlap
        done, _ = radio.uplink(t + k * 3600.0, 80, Timeline())
        radio.release_if_done()
    assert radio.times.ra_collisions == 0 and cell.collisions == [0, 0, 0]


CROWD = textwrap.dedent("""\
    kind = "nbiot"
    seed = 9
    hours = 2.5
    [fleet]
    modules = 400
    security = false
    coupling_loss = { distribution = "fixed", value_db = 140.0 }
    [module]
    transmit_interval_min = 60
    transmit_delay_min = DELAY
    [network]
    nprach_collisions = COLLISIONS
    shared_data_channels = false  # NPRACH alone here (test_nbiot_channel.py: data channels)
    [output]
    trace = "off"
    plots = false
    """)


def _crowd(tmp_path, delay: int, collisions: bool = True) -> dict:
    f = tmp_path / f"crowd-{delay}-{collisions}.toml"
    f.write_text(CROWD.replace("DELAY", str(delay)).replace("COLLISIONS", str(collisions).lower()))
    return run_scenario(load_toml(f), RunOptions(out_dir=tmp_path / f.stem)).summary


def test_crowded_cell_shows_collisions_and_the_spread_window_avoids_them(tmp_path):
    """400 modules at CE0 (24 subcarriers every 0.32 s). With T_delay = 0 they all transmit
    at the full hour and collide heavily (first-opportunity winners about 24 of 400); spread
    over T_delay = 60 min, collisions are rare. Lost contentions back off and retry, so the
    readouts still arrive, later."""
    crowded, spread = _crowd(tmp_path, 0), _crowd(tmp_path, 60)
    assert crowded["ra_collisions"] > 400  # at least one lost contention per module
    assert spread["ra_collisions"] < crowded["ra_collisions"] / 20
    assert crowded["by_ce_level"]["CE0"]["ra_collisions"] == crowded["ra_collisions"]
    assert crowded["latency_s"]["p50"] > spread["latency_s"]["p50"]
    assert crowded["delivered_ratio"] > 0.9
    alone = _crowd(tmp_path, 0, collisions=False)
    assert alone["ra_collisions"] == 0
