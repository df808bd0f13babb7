"""Bus physics: frame timing, collisions, aligned E5, overload, cable voltage drop, max baud."""

from __future__ import annotations

import random

import pytest

from simulator.core.world import World
from simulator.mbus.address import SecondaryAddress
from simulator.mbus.bus import Bus
from simulator.mbus.electrical import (
    INSTALLATION_TABLE,
    JYSTY_OHM_PER_M,
    Cable,
    MasterPort,
    max_baud,
    rc_time_constant,
    voltages_at,
)
from simulator.mbus.faults import Fault
from simulator.mbus.frames import ShortFrame
from simulator.mbus.master import Master, MasterSettings
from simulator.mbus.slave import ResponseDelay, Slave
from simulator.mbus.wire import frame_time, response_window
from simulator.meters.wired import heat_records


def slave(world, n, primary=None, **kw):
    kw.setdefault("records", heat_records(random.Random(n)))
    return Slave(
        world,
        SecondaryAddress(10000000 + n, "ELV", 1, 4),
        primary=n if primary is None else primary,
        **kw,
    )


def exchange(world, bus, frame: bytes, timeout=1.0, idle=0.0):
    box = {}

    def proc():
        yield world.timeout(idle)
        yield from bus.transmit(frame)
        box["rx"] = yield from bus.receive(timeout)

    world.process(proc())
    world.run()
    return box["rx"]


def run(world, gen):
    box = {}

    def proc():
        box["v"] = yield from gen

    world.process(proc())
    world.run()
    return box["v"]


def test_request_and_reply_occupy_the_wire_n_times_11_over_baud():
    w = World(seed=1)
    bus = Bus(w, baud=2400)
    bus.attach(slave(w, 1))
    rx = exchange(w, bus, ShortFrame(0x7B, 1).to_bytes())
    m2s, s2m = w.trace.select("frame")
    assert m2s["end"] - m2s.t == pytest.approx(frame_time(5, 2400))
    assert s2m["end"] - s2m.t == pytest.approx(frame_time(len(rx.data), 2400))
    lo, hi = response_window(2400)
    assert lo <= s2m.t - m2s["end"] <= hi and s2m["in_window"]
    assert s2m["outcome"] == "ok" and s2m["senders"] == ["slave/10000001"]
    assert rx.clean and not rx.collision


def test_no_answer_is_a_timeout_after_exactly_the_timeout():
    w = World(seed=1)
    bus = Bus(w)
    rx = exchange(w, bus, ShortFrame(0x7B, 9).to_bytes(), timeout=0.75)
    assert rx.empty
    ev = w.trace.select("frame", direction="s2m")[0]
    assert ev["outcome"] == "timeout"
    assert ev.t == pytest.approx(frame_time(5, 2400) + 0.75)


def test_two_slaves_answering_collide_into_uart_errors():
    w = World(seed=1)
    bus = Bus(w)
    a, b = slave(w, 1, primary=7), slave(w, 2, primary=7)  # same primary address
    bus.attach(a)
    bus.attach(b)
    rx = exchange(w, bus, ShortFrame(0x7B, 7).to_bytes())
    assert rx.senders == 2 and rx.collision
    assert not rx.clean
    ev = w.trace.select("frame", direction="s2m")[0]
    assert ev["outcome"] == "collision"
    assert sorted(ev["senders"]) == ["slave/10000001", "slave/10000002"]
    assert ev["uart_errors"] > 0
    assert bus.counters["collisions"] == 1


@pytest.mark.parametrize("detector", [False, True])
def test_aligned_e5_decodes_clean_unless_the_current_detector_is_on(detector):
    w = World(seed=1)
    bus = Bus(w, master=MasterPort(collision_detector=detector))
    fixed = ResponseDelay(0.010, 0.010, unit="s")
    bus.attach(slave(w, 1, delay=fixed))
    bus.attach(slave(w, 2, delay=fixed))
    rx = exchange(w, bus, ShortFrame(0x40, 254).to_bytes())  # broadcast with reply
    assert rx.data == b"\xe5" and rx.senders == 2
    assert all(c.ok for c in rx.chars)  # the UART alone sees one clean E5
    ev = w.trace.select("frame", direction="s2m")[0]
    if detector:
        assert rx.collision_detected and not rx.clean
        assert ev["outcome"] == "collision" and ev["collision_detected"]
    else:
        assert rx.clean and ev["outcome"] == "ok"


def test_detector_threshold_is_on_the_summed_space_current():
    w = World(seed=1)
    # two weak senders: 2 x 11 mA = 22 mA < 25 mA: even the detector misses it
    bus = Bus(w, master=MasterPort(collision_detector=True))
    fixed = ResponseDelay(0.010, 0.010, unit="s")
    bus.attach(slave(w, 1, delay=fixed, space_current_ma=11))
    bus.attach(slave(w, 2, delay=fixed, space_current_ma=11))
    rx = exchange(w, bus, ShortFrame(0x40, 254).to_bytes())
    assert rx.senders == 2 and not rx.collision_detected


def test_overload_trips_the_master_until_load_is_reduced():
    w = World(seed=1)
    bus = Bus(w, master=MasterPort(max_unit_loads=32))
    slaves = [slave(w, n) for n in range(1, 33)]
    for s in slaves:
        bus.attach(s)
    big = slave(w, 40, unit_loads=2)
    bus.attach(big)
    assert bus.unit_loads == 34 and bus.overloaded
    m = Master(bus, MasterSettings(send_nke=False))
    r = run(w, m.read(1))
    assert not r.ok and r.error == "bus_overload"
    trips = w.trace.select("bus_overload")
    assert trips and trips[0]["unit_loads"] == 34 and trips[0]["limit"] == 32
    assert trips[0]["current_ma"] == pytest.approx(51.0) and trips[0]["limit_ma"] == 48.0
    assert {e["outcome"] for e in w.trace.select("frame")} == {"overload"}
    assert slaves[0].answered == 0
    bus.detach(big)
    assert not bus.overloaded
    assert run(w, m.read(1)).ok


def test_voltage_drop_formula_on_a_trunk():
    cable = Cable(length_m=1000)
    # one 48 mA load at 1000 m: 48 mA x 82.9 Ohm = 3.98 V drop
    (v,) = voltages_at(16.0, cable, [(1000, 48.0)])
    assert v == pytest.approx(16.0 - 0.048 * 1000 * JYSTY_OHM_PER_M)
    # two loads: the near one sees only the drop of both currents over its own distance
    near, far = voltages_at(16.0, cable, [(200, 10.0), (800, 10.0)])
    r = JYSTY_OHM_PER_M
    assert near == pytest.approx(16.0 - r * (10 * 200 + 10 * 200) / 1000)
    assert far == pytest.approx(16.0 - r * (10 * 200 + 10 * 800) / 1000)


def test_slave_below_12_v_in_space_does_not_answer():
    w = World(seed=1)
    # CMe3100: 28 V mark, 16 V space; 32 UL at 1500 m drop 48 mA x 124 Ohm = 6 V -> 10 V
    bus = Bus(w, master=MasterPort(max_unit_loads=64), cable=Cable(length_m=1500))
    slaves = [slave(w, n) for n in range(1, 33)]
    for s in slaves:
        bus.attach(s)
    v = bus.space_voltage_at(slaves[0])
    assert v == pytest.approx(16.0 - 0.048 * 1500 * JYSTY_OHM_PER_M)
    assert v < 12.0 and not bus.powered(slaves[0])
    assert bus.mark_voltage_at(slaves[0]) == pytest.approx(v + 12.0)
    rx = exchange(w, bus, ShortFrame(0x40, 1).to_bytes())
    assert rx.empty
    # fewer slaves: less current, less drop: 8 UL x 1.5 mA over 1500 m -> 14.5 V
    for s in slaves[8:]:
        bus.detach(s)
    assert bus.powered(slaves[0])
    assert not exchange(w, bus, ShortFrame(0x40, 1).to_bytes()).empty


def test_max_baud_follows_the_installation_table():
    assert max_baud(1000, 350, 250) == 9600
    assert max_baud(4000, 350, 64) == 9600
    assert max_baud(4000, 350, 65) == 2400
    assert max_baud(4000, 1000, 64) == 2400
    assert max_baud(7000, 5000, 16) == 300
    assert max_baud(7000, 5000, 17) is None
    assert max_baud(10000, 10000, 1) == 300
    assert len(INSTALLATION_TABLE) == 7
    # 1000 m of JYStY: RC = 82.9 Ohm x 180 nF = 14.9 us, far below a 9600 bit/s bit (104 us)
    assert rc_time_constant(Cable(length_m=1000)) == pytest.approx(
        82.857e-6 * 180e-9 * 1e6, rel=1e-3
    )


def test_bus_above_max_baud_corrupts_replies():
    w = World(seed=3)
    # 3000 m trunk, 1 slave: fits "large developments" (2400) but not 9600.
    bus = Bus(
        w,
        baud=9600,
        master=MasterPort(mark_voltage=42),
        cable=Cable(length_m=3000, overspeed_ber=0.02),
    )
    s = slave(w, 1, baud=9600)
    bus.attach(s)
    assert bus.max_baud == 2400 and bus.overspeed(9600) and not bus.overspeed(2400)
    bad = 0
    for _ in range(10):
        rx = exchange(w, bus, ShortFrame(0x7B, 1).to_bytes())
        bad += not rx.clean
    ev = w.trace.select("frame", direction="s2m")
    assert sum(e["bit_errors"] for e in ev) > 0
    assert bad >= 5  # 2 % BER x ~700 bits per reply: nearly every reply is hit
    # at 2400 bit/s the same segment is clean
    bus.baud = 2400
    s.baud = 2400
    assert all(exchange(w, bus, ShortFrame(0x7B, 1).to_bytes()).clean for _ in range(5))


def test_early_reply_loses_its_first_bits_and_late_reply_is_ignored():
    w = World(seed=1)
    bus = Bus(w)
    bus.attach(slave(w, 1, faults=[Fault("early")]))
    rx = exchange(w, bus, ShortFrame(0x7B, 1).to_bytes())
    assert not rx.empty and rx.data[:1] != b"\x68"
    ev = w.trace.select("frame", direction="s2m")[-1]
    assert ev["outcome"] in ("garbled", "checksum") and not ev["in_window"]

    w = World(seed=1)
    bus = Bus(w)
    bus.attach(slave(w, 1, faults=[Fault("late")]))
    rx = exchange(w, bus, ShortFrame(0x7B, 1).to_bytes(), timeout=1.0)
    assert rx.empty
    # after a 2 s request idle the late reply (at ~1.21 s) is long over: nobody heard it
    rx2 = exchange(w, bus, ShortFrame(0x7B, 2).to_bytes(), timeout=0.2, idle=2.0)
    assert rx2.empty
    outcomes = [e["outcome"] for e in w.trace.select("frame", direction="s2m")]
    assert outcomes == ["timeout", "ignored", "timeout"]


def test_late_reply_accepted_by_a_patient_master_is_flagged_out_of_window():
    w = World(seed=1)
    bus = Bus(w)
    bus.attach(slave(w, 1, faults=[Fault("late", delay=0.5)]))
    rx = exchange(w, bus, ShortFrame(0x7B, 1).to_bytes(), timeout=1.0)  # CMe3100: 1000 ms
    assert rx.clean
    ev = w.trace.select("frame", direction="s2m")[-1]
    assert ev["outcome"] == "ok" and not ev["in_window"] and ev["delay"] == pytest.approx(0.5)


def test_bad_frame_from_the_master_is_delivered_and_ignored():
    w = World(seed=1)
    bus = Bus(w)
    s = slave(w, 1)
    bus.attach(s)
    rx = exchange(w, bus, b"\x10\x7b\x01\x00\x16")  # wrong checksum
    assert rx.empty
    assert w.trace.select("frame", direction="m2s")[0]["outcome"] == "checksum"


def test_talkover_deafens_only_the_slave_that_is_still_sending():
    # Slave 1's reply is delayed into the next request, addressed to slave 2: slave 1 is busy
    # sending and misses it; slave 2 (silent on the line) hears it and answers.
    w = World(seed=1)
    bus = Bus(w)
    s1 = slave(w, 1, faults=[Fault("late", delay=0.1)])
    s2 = slave(w, 2, delay=ResponseDelay(0.5, 0.5, unit="s"))
    bus.attach(s1)
    bus.attach(s2)

    def proc():
        yield from bus.transmit(ShortFrame(0x7B, 1).to_bytes())
        yield w.timeout(0.12)  # slave 1's ~0.3 s RSP_UD started at 0.1 s
        yield from bus.transmit(ShortFrame(0x40, 1).to_bytes())  # SND_NKE to 1: not heard
        yield from bus.transmit(ShortFrame(0x7B, 2).to_bytes())  # REQ_UD2 to 2: heard
        yield from bus.receive(1.0)
        yield from bus.receive(1.0)

    w.process(proc())
    w.run()
    reqs = w.trace.select("frame", direction="m2s")
    assert "talkover" not in reqs[0].fields
    assert reqs[1]["talkover"] == [s1.name] and reqs[2]["talkover"] == [s1.name]
    assert bus.counters["talkovers"] == 2
    senders = [r["senders"] for r in w.trace.select("frame", direction="s2m")]
    flat = [n for group in senders for n in group]
    assert flat.count(s1.name) == 1  # only its first (late) reply, never an E5 to SND_NKE
    assert flat.count(s2.name) == 1


def test_voltages_at_equals_the_pairwise_sum_for_unordered_loads_and_ties():
    cable = Cable(length_m=1000)
    rng = random.Random(5)
    loads = [(rng.choice([0.0, 250.0, 500.0, rng.uniform(0, 1000)]), rng.uniform(1, 20))]
    loads += [
        (rng.choice([0.0, 250.0, rng.uniform(0, 1000)]), rng.uniform(1, 20)) for _ in range(40)
    ]
    expected = [
        28.0 - cable.ohm_per_m * sum(i * min(x, xi) for xi, i in loads) / 1000 for x, _ in loads
    ]
    assert voltages_at(28.0, cable, loads) == pytest.approx(expected, abs=1e-9)


def test_building_a_bus_computes_its_electrics_once_not_per_attach(monkeypatch):
    # The bus used to recompute every voltage (O(n^2)) at each attach: cubic in meters.
    import simulator.mbus.bus as bus_module

    calls = []
    real = bus_module.voltages_at
    monkeypatch.setattr(bus_module, "voltages_at", lambda *a: calls.append(1) or real(*a))
    w = World(seed=1)
    bus = Bus(w, master=MasterPort(max_unit_loads=256, mark_voltage=42.0))
    slaves = [slave(w, n) for n in range(1, 251)]
    for s in slaves:
        bus.attach(s)
    assert calls == []
    assert all(bus.powered(s) for s in slaves) and bus.unit_loads == 250
    assert len(calls) == 1
    bus.detach(slaves[0])
    assert bus.unit_loads == 249 and not bus.overloaded and len(calls) == 2
