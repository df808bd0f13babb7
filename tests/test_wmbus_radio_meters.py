"""Radio meters (telegrams through the codec, airtime), duty cycle, redundancy arithmetic."""

from __future__ import annotations

import numpy as np
import pytest

from simulator.core.world import World
from simulator.gateways.cme3100 import redundancy as red
from simulator.wmbus import telegram
from simulator.wmbus.channel import Channel
from simulator.wmbus.dutycycle import DutyCycleAccount, sub_band
from simulator.wmbus.meter import RadioMeter
from simulator.wmbus.radio_kernel import RadioSetup, duty_cycle_violations, schedule
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
    assert e1 - e0 == pytest.approx(8000, abs=1000)  # 800 Wh/h for 10 h, kWh resolution


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
    v = duty_cycle_violations(setup, schedule(setup, 7200.0), 7200.0)
    assert v["meters"] == [0] and v["meter_hours"] == 2


def test_redundancy_and_ratio_by_hand():
    # meter 0 heard by receivers 0 and 1 in window 0, by 0 in window 1; meter 1 never
    meter = np.array([0, 0, 0, 0])
    t = np.array([10.0, 20.0, 30.0, 910.0])
    receiver = np.array([0, 1, 0, 0])
    per_w = red.receivers_per_window(meter, t, receiver, 2, 2, 900.0, 1800.0)
    assert per_w.tolist() == [[2, 1], [0, 0]]
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
