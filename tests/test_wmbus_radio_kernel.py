"""Radio kernel: pure-ALOHA capacity, kernel == event model, determinism, link budgets."""

from __future__ import annotations

import math

import numpy as np
import pytest

from simulator.core.world import World
from simulator.wmbus.channel import PRESETS, Channel, building_loss_db
from simulator.wmbus.dutycycle import hourly_duty_cycle
from simulator.wmbus.meter import RadioMeter
from simulator.wmbus.radio_draws import MAX_RECEIVERS, FadingDraws
from simulator.wmbus.radio_kernel import (
    RadioSetup,
    counter_normal,
    counter_uniform,
    iter_send_times,
    run_kernel,
    schedule,
)
from simulator.wmbus.radio_world import RadioWorld
from simulator.wmbus.receiver import Receiver


def _aloha_ratio(g: float, seed: int) -> float:
    tau, interval = 0.010, 10.0
    n = round(g * interval / tau)
    # every meter 2 m from the receiver, no shadowing or fading: only collisions lose telegrams
    meters = [
        RadioMeter(id=i + 1, x=2.0, y=0.0, mode="T1", interval_s=interval, jitter=0.5, indoor=False)
        for i in range(n)
    ]
    rx = [Receiver("r0", 0.0, 0.0, capture_db=None)]
    channel = Channel.preset("lorasim", sigma_db=0.0, fading_sigma_db=0.0)
    setup = RadioSetup.build(meters, rx, channel, seed, airtime=np.full(n, tau))
    # 400 intervals per meter: each test point has 20k..200k telegrams
    run = run_kernel(setup, 400 * interval)
    return len(run.receptions) / run.transmissions


@pytest.mark.parametrize("g", [0.05, 0.1, 0.2, 0.3, 0.5])
def test_pure_aloha_matches_exp_minus_2g(g):
    """RADIO-NBIOT.md §8 anchor 7: jittered senders, no capture -> P_s = exp(-2G) (2 %)."""
    ratio = _aloha_ratio(g, seed=7)
    expected = math.exp(-2 * g)
    assert abs(ratio - expected) / expected < 0.02, (g, ratio, expected)


def test_aloha_without_jitter_is_not_aloha():
    """Strictly periodic meters keep their phases: collisions persist instead of averaging
    out, so the success ratio is far from exp(-2G) for at least some seeds' meters."""
    tau, interval, n = 0.010, 10.0, 300
    meters = [
        RadioMeter(id=i + 1, x=2.0, y=0.0, interval_s=interval, jitter=0.0, indoor=False)
        for i in range(n)
    ]
    setup = RadioSetup.build(
        meters,
        [Receiver("r0", 0.0, 0.0, capture_db=None)],
        Channel.preset("lorasim", sigma_db=0.0, fading_sigma_db=0.0),
        3,
        airtime=np.full(n, tau),
    )
    heard = np.bincount(run_kernel(setup, 50 * interval).receptions.meter, minlength=n)
    # without jitter a meter is either always or never received
    assert set(np.unique(heard).tolist()) <= {0, 50}


def _small_setup(
    seed: int, capture: float | None = 6.0, interference: str = "pairwise"
) -> RadioSetup:
    rng = np.random.default_rng(seed)
    modes = ["T1", "C1A", "C1B", "S1"]
    meters = [
        RadioMeter(
            id=1000 + i,
            x=float(rng.uniform(-300, 300)),
            y=float(rng.uniform(-300, 300)),
            mode=modes[i % 4],
            interval_s=2.0,
            jitter=0.2,
            indoor=bool(i % 3),
            floor=int(i % 5) - 1,
            tx_power_dbm=10.0 + (i % 3) * 2,
        )
        for i in range(40)
    ]
    receivers = [
        Receiver(
            f"r{k}",
            x,
            y,
            capture_db=capture,
            radio_mode="T1_C1A_C1B" if k < 2 else "S1",
            interference=interference,
        )
        for k, (x, y) in enumerate([(0, 0), (150, 100), (-120, -80)])
    ]
    airtime = np.array([0.030 if m.mode == "S1" else 0.012 for m in meters])
    return RadioSetup.build(meters, receivers, Channel.preset("oulu"), seed, airtime=airtime)


def _event_run(
    setup: RadioSetup, seed: int, duration: float, until: float | None = None
) -> tuple[World, RadioWorld]:
    world = World(seed)
    model = RadioWorld(world, setup, duration)
    world.run(until=duration + 1 if until is None else until)
    return world, model


def _receptions(run) -> tuple[list, list]:
    """(meter, seq, receiver, rssi dBm, send time s) per reception and (meter, seq, receiver)
    per collision loss, sorted: the event model's ``received`` and ``lost`` shapes."""
    rec = run.receptions
    got = zip(
        rec.meter.tolist(),
        rec.seq.tolist(),
        rec.receiver.tolist(),
        rec.rssi_dbm.tolist(),
        rec.t_start.tolist(),
        strict=True,
    )
    lost = zip(
        rec.lost_meter.tolist(), rec.lost_seq.tolist(), rec.lost_receiver.tolist(), strict=True
    )
    return sorted(got), sorted(lost)


@pytest.mark.parametrize("chunk", [None, 3])
@pytest.mark.parametrize(
    "capture,interference", [(6.0, "pairwise"), (None, "pairwise"), (6.0, "sum"), (None, "sum")]
)
def test_kernel_equals_event_model(capture, interference, chunk):
    """Same seed, same receptions: every (meter, seq, receiver) with bit-identical RSSI and
    send time, and the same collision losses. ``chunk=3`` cuts the run into ~800 time chunks
    of 3 telegrams, so many telegrams and their partners straddle a chunk boundary."""
    setup = _small_setup(11, capture, interference)
    duration = 120.0
    kw = {} if chunk is None else {"chunk_transmissions": chunk}
    run = run_kernel(setup, duration, **kw)
    kernel_rx, kernel_lost = _receptions(run)
    world, model = _event_run(setup, 11, duration)
    assert len(kernel_rx) > 200  # the case is not trivially empty
    assert len(kernel_lost) > 5  # collisions happen in this case
    assert kernel_rx == sorted(model.received)
    assert kernel_lost == sorted(model.lost)
    # the event model's transmissions are the kernel's schedule
    assert len(world.trace.select("wmbus_tx")) == run.transmissions == len(schedule(setup, 120))
    collisions = world.trace.select("wmbus_collision")
    assert all(("interference_dbm" in e.fields) == (interference == "sum") for e in collisions)


def test_kernel_receptions_are_in_time_then_receiver_order_whatever_the_chunk():
    setup = _small_setup(3, 6.0, "sum")
    whole = run_kernel(setup, 60.0, chunk_transmissions=10**9).receptions
    dt, dr = np.diff(whole.t_start), np.diff(whole.receiver)
    assert np.all((dt > 0) | ((dt == 0) & (dr > 0)))
    assert np.any(dt == 0)  # one telegram heard by two receivers: the receiver order is tested
    for chunk in (1, 7, 100):
        part = run_kernel(setup, 60.0, chunk_transmissions=chunk).receptions
        for f in ("meter", "seq", "t_start", "receiver", "rssi_dbm", "lost_meter", "lost_seq"):
            assert np.array_equal(getattr(part, f), getattr(whole, f)), (chunk, f)


def test_kernel_duty_cycle_is_the_one_shot_schedule_sum():
    setup = _small_setup(4)
    run = run_kernel(setup, 7300.0, chunk_transmissions=500)
    tx = schedule(setup, 7300.0)
    one_shot = hourly_duty_cycle(tx.meter, tx.t_start, setup.airtime[tx.meter], 40, 3)
    assert run.duty_cycle.shape == (40, 3)
    assert np.array_equal(run.duty_cycle, one_shot)


def test_summed_interference_loses_more_than_pairwise_on_the_same_traffic():
    """Same schedule and RSSI; "sum" loses every telegram "pairwise" loses, and more."""
    duration = 120.0
    _pair_rx, lost_pair = _receptions(run_kernel(_small_setup(11, 6.0, "pairwise"), duration))
    _sum_rx, lost_sum = _receptions(run_kernel(_small_setup(11, 6.0, "sum"), duration))
    assert set(lost_pair) < set(lost_sum)
    got_pair = {rx[:3] for rx in _pair_rx}
    got_sum = {rx[:3] for rx in _sum_rx}
    assert got_sum < got_pair


def _interferer_setup(n_interferers: int, interference: str) -> RadioSetup:
    """One wanted meter at 10 dBm and ``n_interferers`` at 2 dBm, all 2 m from one receiver,
    outdoors, no shadowing or fading: every interferer is exactly 8 dB below the wanted one.
    Time on air 1000 s and one send each in [0, 10 s): every telegram overlaps every other."""
    meters = [RadioMeter(id=1, x=2.0, y=0.0, tx_power_dbm=10.0, indoor=False, interval_s=10.0)]
    meters += [
        RadioMeter(id=2 + k, x=0.0, y=2.0, tx_power_dbm=2.0, indoor=False, interval_s=10.0)
        for k in range(n_interferers)
    ]
    for m in meters:
        m.jitter = 0.0
    return RadioSetup.build(
        meters,
        [Receiver("r0", 0.0, 0.0, capture_db=6.0, interference=interference)],
        Channel.preset("lorasim", sigma_db=0.0, fading_sigma_db=0.0),
        4,
        airtime=np.full(len(meters), 1000.0),
    )


@pytest.mark.parametrize("interference", ["pairwise", "sum"])
@pytest.mark.parametrize("n_interferers", [1, 3])
def test_three_weak_interferers_break_capture_only_when_summed(n_interferers, interference):
    """Each interferer is 8 dB below the wanted telegram, so each passes the 6 dB capture
    threshold. Their power sum is 8 - 10 log10(3) = 3.2 dB below it: "sum" loses the wanted
    telegram with three interferers (one is still fine), "pairwise" keeps it. Both engines."""
    setup = _interferer_setup(n_interferers, interference)
    wanted_rssi, interferer_rssi = setup.mean_rssi[0, 0], setup.mean_rssi[1, 0]
    assert wanted_rssi - interferer_rssi == pytest.approx(8.0)
    assert interferer_rssi > setup.receivers[0].noise_floor_dbm
    # one tiny chunk at a time: the 1000 s telegrams span many chunks before they are decided
    run = run_kernel(setup, 10.0, chunk_transmissions=1)
    assert run.transmissions == 1 + n_interferers
    kernel_got = 0 in run.receptions.meter.tolist()
    world, model = _event_run(setup, 4, 10.0, until=1011.0)
    assert len(world.trace.select("wmbus_tx")) == run.transmissions
    event_got = any(m == 0 for m, *_ in model.received)
    expected = interference == "pairwise" or n_interferers == 1
    assert kernel_got == event_got == expected
    # the interferers themselves never get through: the wanted telegram is 8 dB stronger
    assert set(run.receptions.meter.tolist()) <= {0}


def test_receiver_rejects_unknown_interference_rule():
    with pytest.raises(ValueError, match="interference rule 'sinr'"):
        Receiver("r0", 0.0, 0.0, interference="sinr")


@pytest.mark.parametrize("interference", ["pairwise", "sum"])
def test_event_model_trace_is_deterministic(interference):
    def run() -> str:
        world = World(5)
        RadioWorld(world, _small_setup(5, 6.0, interference), 30.0)
        world.run(until=31.0)
        return world.trace.to_jsonl()

    a, b = run(), run()
    assert a == b and "wmbus_rx" in a


def test_schedule_matches_one_meter_recurrence_and_jitter_bounds():
    setup = _small_setup(2)
    tx = schedule(setup, 60.0)
    assert np.all(np.diff(tx.t_start) >= 0)
    for i in (0, 7, 39):
        mine = tx.t_start[tx.meter == i]
        assert mine.tolist() == list(iter_send_times(setup, i, 60.0))
        gaps = np.diff(mine)
        assert np.all(gaps >= 2.0 * 0.8 - 1e-12) and np.all(gaps <= 2.0 * 1.2 + 1e-12)


def test_counter_draws_are_uniform_and_normal():
    u = counter_uniform(123, np.arange(100_000), 5)
    assert 0.0 <= u.min() and u.max() < 1.0
    assert abs(u.mean() - 0.5) < 0.01
    z = counter_normal(123, np.arange(100_000), 9)
    assert abs(z.mean()) < 0.02 and abs(z.std() - 1.0) < 0.02
    # order independence: the same counters give the same numbers alone or in bulk
    assert counter_uniform(123, 77, 5)[()] == u[77]


def test_path_loss_presets_reproduce_published_anchor():
    """RADIO-NBIOT.md §8 anchor 8: Oulu PL(1 km) = 128.95 dB, PL(3 km) = 140.0 dB; a 113 dB
    T1 budget gives a median outdoor range near 205 m, about 46 m behind 15 dB of wall."""
    oulu = PRESETS["oulu"]
    assert oulu.path_loss_db(1000.0) == pytest.approx(128.95)
    assert oulu.path_loss_db(3000.0) == pytest.approx(140.0, abs=0.1)
    assert oulu.range_m(113.0) == pytest.approx(205, rel=0.03)
    assert oulu.range_m(113.0 - 15.0) == pytest.approx(46, rel=0.05)
    assert PRESETS["dortmund"].range_m(113.0) == pytest.approx(188, rel=0.03)
    assert building_loss_db(True, 0) == 15.0
    assert building_loss_db(True, 3) == 9.0
    assert building_loss_db(True, -1) == 22.0
    assert building_loss_db(False, -1) == 0.0


def test_fading_draws_split_in_two_steps_equal_counter_normal_bit_for_bit():
    setup = _small_setup(9)
    rng = np.random.default_rng(1)
    m = rng.integers(0, 40, 5000)
    seq = rng.integers(0, 100_000, 5000)
    r = rng.integers(0, MAX_RECEIVERS, 5000)
    draws = FadingDraws(setup.seed, 40, setup.channel.fading_sigma_db)

    def terms():
        return draws.h_meter[m], FadingDraws.seq_term(seq), FadingDraws.receiver_term(r)

    bits = draws.radius_bits(*terms())
    _h, seq_term, receiver_term = terms()
    split = draws.fading_db(bits, m, seq_term, receiver_term)
    assert np.array_equal(split, setup.fading_db(m, seq, r))


@pytest.mark.parametrize("sigma", [3.0, 0.5])
def test_fading_radius_bound_never_drops_a_packet_that_reaches_the_floor(sigma):
    """The kernel skips the angle draw of packets with radius bits under
    ``radius_bits_below(floor - mean)``; every such packet must stay under the floor.
    Margins are spread over 0-6 sigma and packed near multiples of the drawn radii."""
    draws = FadingDraws(3, 1000, sigma)
    rng = np.random.default_rng(2)
    n = 200_000
    m = rng.integers(0, 1000, n)
    seq = rng.integers(0, 10_000, n)
    r = rng.integers(0, 25, n)
    bits = draws.radius_bits(
        draws.h_meter[m], FadingDraws.seq_term(seq), FadingDraws.receiver_term(r)
    )
    radius_db = sigma * np.sqrt(-2.0 * np.log1p(-(bits.astype(float) / 2**53)))
    margin = np.where(rng.random(n) < 0.5, rng.uniform(0, 6 * sigma, n), radius_db + 1e-7)
    skipped = bits < draws.radius_bits_below(margin)
    assert skipped.mean() > 0.3  # the bound does skip packets
    assert np.all(radius_db[skipped] < margin[skipped])
    # and it is tight: packets just outside the slack are skipped
    assert np.all(bits < draws.radius_bits_below(radius_db + 1e-5))


def test_time_order_is_argsort_or_declines():
    """The packed-key sort of send times gives argsort's order whenever it answers, and
    declines (None) on ties; wide ranges (from 0 s) drop low bits and still order exactly."""
    from simulator.wmbus.radio_kernel import _time_order

    rng = np.random.default_rng(2)
    answered = declined = 0
    for _ in range(2000):
        n = int(rng.integers(1, 200))
        t = float(rng.choice([0.0, 900.0, 43200.0])) + rng.uniform(
            0, float(rng.choice([1e-9, 1.0, 900.0])), n
        )
        if rng.random() < 0.2:
            t[rng.integers(0, n, 2)] = t[0]  # a tie
        order = _time_order(t)
        if order is None:
            declined += 1
            continue
        answered += 1
        assert len(np.unique(t)) == n
        assert np.array_equal(order, np.argsort(t, kind="stable"))
    assert answered > 1000 and declined > 100


def test_cosine_negative_angles_have_a_negative_cosine():
    """The kernel skips the RSSI of a below-floor link's packet whose angle draw lies where
    the cosine is negative: on random 53-bit draws (and the bounds themselves) it must be."""
    rng = np.random.default_rng(4)
    lo, hi = int(0.26 * 2**53), int(0.74 * 2**53)
    edges = np.array([0, lo - 1, lo, lo + 1, hi - 1, hi, hi + 1, 2**53 - 1], dtype=np.uint64)
    angle = np.concatenate([edges, rng.integers(0, 2**53, 100_000, dtype=np.uint64)])
    skip = FadingDraws.cosine_negative(angle)
    cos = np.cos(2.0 * math.pi * (angle.astype(np.float64) / 2**53))
    assert np.all(cos[skip] < 0)
    assert 0.47 < skip.mean() < 0.49  # it skips most of the negative half, not more
