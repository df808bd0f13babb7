"""Radio meters (telegrams through the codec, airtime), duty cycle, redundancy arithmetic."""

from __future__ import annotations

import numpy as np
import pytest

from simulator.core.rng import stream
from simulator.core.world import World
from simulator.gateways.cme3100 import redundancy as red
from simulator.wmbus import telegram
from simulator.wmbus.channel import Channel
from simulator.wmbus.dutycycle import DutyCycleAccount, sub_band
from simulator.wmbus.meter import RadioMeter
from simulator.wmbus.radio_kernel import RadioSetup, duty_cycle_violations, run_kernel
from simulator.wmbus.radio_world import RadioWorld
from simulator.wmbus.receiver import Receiver


@pytest.mark.parametrize("mode,fmt", [("T1", "A"), ("C1A", "A"), ("C1B", "B"), ("S1", "A")])
def test_meter_telegram_decodes_with_growing_counter(mode, fmt):
    m = RadioMeter(id=12345678, x=0.0, y=0.0, mode=mode, profile="heat", manufacturer="KAM")
    early, late = m.telegram(0.0, 1), m.telegram(36000.0, 2)
    t0 = telegram.parse_telegram(early, fmt=fmt)
    t1 = telegram.parse_telegram(late, fmt=fmt)
    assert t0.link.id == 12345678 and t0.link.manufacturer == "KAM" and t0.link.c == 0x44
    assert t0.link.device_type == 0x04
    e0 = next(r.value for r in t0.records if r.quantity == "energy")
    e1 = next(r.value for r in t1.records if r.quantity == "energy")
    # the energy register is the integral of the meter's power (heat.toml), kWh resolution
    power = m.meter_type.profiles(stream(m.seed, m.profile_stream))["power"]
    t = np.linspace(0.0, 36000.0, 3601)
    wh = float(np.trapezoid([power.at(x) for x in t], t)) / 3600.0
    assert wh > 1000 and e1 - e0 == pytest.approx(wh, abs=1000)


def test_encrypted_meter_needs_its_key():
    key = bytes(range(16))
    m = RadioMeter(id=22222222, x=0.0, y=0.0, security_mode=5, key=key)
    raw = m.telegram(100.0, 7)
    t = telegram.parse_telegram(raw, keys=key)
    assert t.decrypted and t.security_mode == 5
    from simulator.wmbus.frame import WMBusError

    with pytest.raises(WMBusError):
        telegram.parse_telegram(raw, keys=bytes(16))


def test_airtime_follows_phy_chip_rates():
    from simulator.wmbus.phy import time_on_air

    t1 = RadioMeter(id=1, x=0, y=0, mode="T1").airtime_s()
    s1 = RadioMeter(id=1, x=0, y=0, mode="S1").airtime_s()
    c1 = RadioMeter(id=1, x=0, y=0, mode="C1A").airtime_s()
    raw = RadioMeter(id=1, x=0, y=0, mode="T1").telegram(0.0, 0)
    assert t1 == pytest.approx(time_on_air("T1", len(raw), "A"))
    assert s1 > 5 * t1 > 5 * c1 * 0.9  # S1: 32.768 kchip/s Manchester + long preamble


@pytest.mark.parametrize("mode", ["C1A", "C1B"])
def test_c1_meters_carry_ell_i_and_it_counts_in_time_on_air(mode):
    """OMS C-mode meters send ELL I (CI 8C: CC, ACC) before the TPL (PROTOCOL.md §5.3): three
    more bytes on air than the same telegram without ELL, and the time on air grows by what
    the PHY model gives for those bytes; T1 and S1 meters stay without ELL."""
    from simulator.wmbus.meter import FRAME_FORMAT, PHY_MODE
    from simulator.wmbus.phy import time_on_air

    m = RadioMeter(id=12345678, x=0.0, y=0.0, mode=mode, profile="heat", manufacturer="KAM")
    raw = m.telegram(0.0, 0x21)
    t = telegram.parse_telegram(raw, fmt=m.frame_format)
    assert t.ell == {"ci": "8C", "cc": 0, "acc": 0x21}
    assert t.tpl["access_no"] == 0x21 and len(t.records) == 3
    bare = telegram.build_telegram(
        manufacturer="KAM",
        id=12345678,
        version=1,
        device_type=m.device_type,
        records=m.records(0.0),
        access_no=0x21,
        fmt=FRAME_FORMAT[mode],
    )
    assert telegram.parse_telegram(bare, fmt=m.frame_format).ell is None
    assert raw[0] - bare[0] == 3  # L-field: CI 8C, CC, ACC
    phy, fmt = PHY_MODE[mode], FRAME_FORMAT[mode]
    assert m.airtime_s() == pytest.approx(time_on_air(phy, len(raw), fmt))
    assert m.airtime_s() - time_on_air(phy, len(bare), fmt) == pytest.approx(
        time_on_air(phy, len(raw), fmt) - time_on_air(phy, len(bare), fmt)
    )
    assert m.airtime_s() > time_on_air(phy, len(bare), fmt)
    for other in ("T1", "S1"):
        plain = RadioMeter(id=12345678, x=0.0, y=0.0, mode=other, profile="heat")
        assert telegram.parse_telegram(plain.telegram(0.0, 1)).ell is None


def test_c1_meter_with_ell_encryption_is_kamstrup_style():
    """ELL II (CI 8D) with SN security mode 1 = AES-128-CTR over payload CRC + TPL CI 78 + APL
    (PROTOCOL.md §5.6): decodes with the key, the wrong key is a typed error, and the on-air
    length is what the codec builds (SN and payload CRC add 6 bytes to ELL I, TPL CI 78 is 4
    bytes shorter than CI 7A with ACC, status and config)."""
    from simulator.wmbus.frame import WrongKeyError

    key = bytes(range(16))
    m = RadioMeter(id=33333333, x=0.0, y=0.0, mode="C1A", key=key, ell_encryption=True)
    raw = m.telegram(3600.0 + 59.0, 0x45)
    t = telegram.parse_telegram(raw, keys=key)
    assert t.decrypted and t.ell["ci"] == "8D" and t.ell["security_mode"] == 1
    assert t.ell["sn"] == (1 << 29) | (60 << 4) | 0x5  # minute 60, session = ACC mod 16
    assert t.tpl_ci == 0x78
    assert t.records[0].value == pytest.approx(m.records(3659.0)[0].value)
    with pytest.raises(WrongKeyError):
        telegram.parse_telegram(raw, keys=bytes(16))
    plain = RadioMeter(id=33333333, x=0.0, y=0.0, mode="C1A")
    assert raw[0] == plain.telegram(3659.0, 0x45)[0] + 6 - 4  # L-fields
    assert m.airtime_s() > plain.airtime_s()
    # encryption in the ELL is for C1 meters, with a key, instead of TPL security
    with pytest.raises(ValueError, match="C1 mode"):
        RadioMeter(id=1, x=0.0, y=0.0, mode="T1", key=key, ell_encryption=True)
    with pytest.raises(ValueError, match="security_mode 0"):
        RadioMeter(id=1, x=0.0, y=0.0, mode="C1B", key=key, security_mode=5, ell_encryption=True)


def test_duty_cycle_account_warns_once_per_hour():
    acc = DutyCycleAccount(sub_band("T1"))  # 0.1 % -> 3.6 s per hour
    assert sub_band("S1").duty_cycle == 0.01
    hits = [acc.add(t, 0.5) for t in range(0, 3600, 360)]  # 10 x 0.5 s = 5 s
    assert hits.count(True) == 1 and hits.index(True) == 7
    assert acc.worst() == pytest.approx(5 / 3600)


def test_duty_cycle_violation_in_event_model_and_kernel():
    meters = [
        RadioMeter(id=1, x=1.0, y=0.0, interval_s=2.0, jitter=0.1),  # 10 ms / 2 s = 0.5 %
        RadioMeter(id=2, x=1.0, y=0.0, interval_s=60.0, jitter=0.1),
    ]  # 0.017 %
    setup = RadioSetup.build(
        meters,
        [Receiver("r", 0.0, 0.0)],
        Channel.preset("oulu"),
        1,
        airtime=np.array([0.010, 0.010]),
    )
    world = World(1)
    RadioWorld(world, setup, 7200.0)
    world.run(until=7201)
    warnings = world.trace.select("duty_cycle")
    assert {e.source for e in warnings} == {"meter/00000001"}
    assert [e["hour"] for e in warnings] == [0, 1]
    v = duty_cycle_violations(setup, run_kernel(setup, 7200.0).duty_cycle)
    assert v["meters"] == [0] and v["meter_hours"] == 2


def test_receivers_per_window_hist_is_the_histogram_of_the_dense_array():
    rng = np.random.default_rng(5)
    for n in (0, 1, 500):
        meter, receiver = rng.integers(0, 40, n), rng.integers(0, 6, n)
        t = rng.uniform(0, 3700, n)
        dense = red.receivers_per_window(meter, t, receiver, 40, 6, 900.0, 3600.0)
        hist = red.receivers_per_window_hist(meter, t, receiver, 40, 6, 900.0, 3600.0)
        assert hist.tolist() == np.bincount(dense.ravel()).tolist()


def test_redundancy_factor_is_the_dense_per_receiver_count():
    """The factor from heard (meter, receiver) pairs equals §3.3's definition on the dense
    per-receiver ratio table, for random receptions and thresholds (0 and 1 included)."""
    rng = np.random.default_rng(5)
    for _ in range(50):
        n_m, n_r, n = int(rng.integers(1, 30)), int(rng.integers(1, 6)), int(rng.integers(0, 300))
        meter, receiver = rng.integers(0, n_m, n), rng.integers(0, n_r, n)
        t = np.sort(rng.uniform(0, 3700, n))
        for threshold in (0.0, 0.5, 0.74, 0.98, 1.0):
            ratio = red.per_receiver_ratio(meter, t, receiver, n_m, n_r, 900.0, 3600.0)
            factor = red.redundancy_factor(meter, t, receiver, n_m, n_r, 900.0, 3600.0, threshold)
            assert factor.tolist() == (ratio > threshold).sum(axis=1).tolist()


def test_redundancy_and_ratio_by_hand():
    # meter 0 heard by receivers 0 and 1 in window 0, by 0 in window 1; meter 1 never
    meter = np.array([0, 0, 0, 0])
    t = np.array([10.0, 20.0, 30.0, 910.0])
    receiver = np.array([0, 1, 0, 0])
    per_w = red.receivers_per_window(meter, t, receiver, 2, 2, 900.0, 1800.0)
    assert per_w.tolist() == [[2, 1], [0, 0]]
    hist = red.receivers_per_window_hist(meter, t, receiver, 2, 2, 900.0, 1800.0)
    assert hist.tolist() == [2, 1, 1]
    assert red.reception_ratio(meter, t, 2, 900.0, 1800.0).tolist() == [1.0, 0.0]
    assert red.per_receiver_ratio(meter, t, receiver, 2, 2, 900.0, 1800.0).tolist() == [
        [1.0, 0.5],
        [0.0, 0.0],
    ]
    assert red.redundancy_factor(meter, t, receiver, 2, 2, 900.0, 1800.0, 0.98).tolist() == [1, 0]
    assert red.redundancy_factor(meter, t, receiver, 2, 2, 1800.0, 1800.0, 0.98).tolist() == [2, 0]
    start, mean, count = red.ratio_by_distance(
        np.array([10.0, 60.0, 70.0]), np.array([1.0, 0.5, 0.0]), 50.0
    )
    assert start.tolist() == [0.0, 50.0] and mean.tolist() == [1.0, 0.25]
    assert count.tolist() == [1, 2]
