"""Statistics-only runs (trace "off") take readouts lazily instead of waking every readout
interval (issue 15). The lazy path must give the same modules: same readouts (times, values,
sequence), same deliveries, same energy, for random small scenarios including time syncs,
transmissions on the readout grid (T_delay 0), expiry by maximum age and both upload orders."""

from __future__ import annotations

import random

import pytest

from simulator.core.world import World
from simulator.nbiot import schedule
from simulator.nbiot.config import ModuleConfig
from simulator.nbiot.module import Cmi6140, MeterProfile
from simulator.nbiot.payload import PayloadError
from simulator.nbiot.runner import build
from simulator.nbiot.scenario_model import NbiotScenario
from simulator.nbiot.server import NbiotServer


def _scenario(rng: random.Random, detail: str) -> NbiotScenario:
    interval = rng.choice([5, 15, 60, 120, 1440])
    return NbiotScenario.model_validate(
        {
            "seed": rng.randrange(1000),
            "hours": rng.choice([7.0, 26.0, 50.5]),
            "fleet": {"modules": 6, "coupling_loss": {"mean_db": 148.0, "sigma_db": 9.0}},
            "module": {
                "readout_interval_min": interval,
                "transmit_interval_min": rng.choice([60, 180, 1440]),
                "transmit_delay_min": rng.choice([0, 0, 30, 60]),
                "readouts_per_telegram": rng.choice([1, 12, 24]),
                "upload_max_age_h": rng.choice([1, 72]),
                "upload_order": rng.choice(["fifo", "lifo"]),
            },
            "network": {"extra_loss": rng.choice([0.0, 0.3])},
            "time_sync": rng.choice(
                [[], [{"at_h": 3.5, "clock_error_s": -70.0}], [{"at_h": 5.0, "modules": [1]}]]
            ),
            "output": {"trace": detail, "plots": False},
        }
    )


def _modules(scn: NbiotScenario):
    world = World(scn.seed)
    _, modules = build(scn, world)
    end = scn.hours * 3600
    world.run(end)
    out = []
    for m in modules:
        s = m.summary(end)
        readouts = [(r.seq, r.local_time, r.energy_kwh, r.volume_dl) for r in m.unsent]
        out.append((s, sorted(m.at_server), readouts))
    return out


@pytest.mark.parametrize("case", range(16))
def test_lazy_readouts_give_the_same_modules_as_the_event_path(case):
    rng = random.Random(case)
    state = rng.getstate()
    event = _modules(_scenario(rng, "message"))
    rng.setstate(state)
    lazy = _modules(_scenario(rng, "off"))
    assert lazy == event


@pytest.mark.parametrize(
    "meter", [MeterProfile(power_w=40_000), MeterProfile(energy0_kwh=2**31 - 30)]
)
def test_a_register_out_of_range_fails_the_same_on_the_sized_path(meter):
    """Statistics-only packs are sized, not encoded, but a register that does not fit its
    M-Bus record (power INT16 from the start; energy INT32 after about six hours at 5 kW)
    still stops the run with the encoder's error, as on the event path."""
    errors = []
    for detail in ("message", "off"):
        world = World(3)
        server = NbiotServer(world, detail=detail)
        cfg = ModuleConfig(readout_interval_min=60, transmit_interval_min=60, transmit_delay_min=0)
        Cmi6140(world, 7, server, config=cfg, detail=detail, meter=meter)
        with pytest.raises(PayloadError) as err:
            world.run(30 * 3600)
        errors.append((str(err.value), world.now))
    assert errors[0] == errors[1]


def test_lazy_slots_follow_next_slot_after_the_interval_is_reconfigured():
    """The lazy path counts a day-dividing grid by adding the interval; a slot left on the
    old grid by a reconfiguration (60 -> 45 min: 02:00 is not on the 45-min grid) must
    still be followed by schedule.next_slot's slots, as lazy readouts did before."""
    world = World(5)
    m = Cmi6140(world, 9, NbiotServer(world, detail="off"), detail="off", start=False)
    m.catch_up(1.5 * 3600)  # 01:00 taken; the next slot is 02:00
    m.store.write("readout_interval_min", 45)
    m.catch_up(6 * 3600)
    slot, expected = m.unsent[0].local_time, []
    while len(expected) < len(m.unsent):
        expected.append(slot)
        slot = schedule.next_slot(slot, 60 if slot.hour < 2 else 45)
    assert [r.local_time for r in m.unsent] == expected
    assert [r.local_time.strftime("%H:%M") for r in m.unsent][:4] == [
        "01:00",
        "02:00",
        "02:15",
        "03:00",
    ]


def test_the_grid_catch_up_resumes_from_its_kept_world_microseconds():
    """The grid catch-up keeps the world µs of the slot where it stopped (no datetime
    arithmetic at the next call): over random catch-ups, direct clock changes and time syncs
    it takes the same readouts as a twin module whose kept value is cleared before each."""
    rng = random.Random(11)
    world = World(3)
    server = NbiotServer(world, detail="off")
    kept, fresh = (Cmi6140(world, i, server, detail="off", start=False) for i in (1, 2))
    t = 0.0
    for _ in range(400):
        t += rng.uniform(0, 3 * 3600)
        if rng.random() < 0.2:
            error = rng.choice([0.0, -70.0, 0.5, rng.uniform(-900, 900)])
            kept.clock_error_s = fresh.clock_error_s = error  # not through sync_time
        fresh._lazy_us = (None, 0.0, 0)
        inclusive = rng.random() < 0.5
        kept.catch_up(t, inclusive=inclusive)
        fresh.catch_up(t, inclusive=inclusive)
    assert kept.produced == fresh.produced > 500
    assert [(r.seq, r.local_time, r.t) for r in kept.unsent] == [
        (r.seq, r.local_time, r.t) for r in fresh.unsent
    ]


def test_meter_clock_on_a_utc_start_is_the_time_zone_arithmetic():
    """A module on a UTC world start reads its clock with naive datetimes (no time-zone
    replace per call): the same microseconds as the aware arithmetic it stands for."""
    from datetime import UTC, timedelta

    rng = random.Random(5)
    world = World(1)
    m = Cmi6140(world, 1, NbiotServer(world), start=False)
    for _ in range(2000):
        m.clock_error_s = rng.choice([0.0, rng.uniform(-900, 900), -70.0])
        t = rng.choice([rng.uniform(0, 4e7), float(rng.randrange(0, 10**6)), 1e-7])
        shift = timedelta(seconds=m.clock_error_s)
        local = (world.clock(t) + shift).replace(tzinfo=None)
        assert m.local_at(t) == local
        aware = ((local - shift).replace(tzinfo=UTC) - world.start).total_seconds()
        assert m.world_time_of(local) == aware


def test_a_statistics_only_server_tallies_as_it_receives():
    """``NbiotServer.tally`` (the deferred handover's call, in random handovers) against
    ``receive(at=...)`` on a twin server: the same uplink, duplicate and latency figures over
    random deliveries."""
    rng = random.Random(5)
    by_receive = NbiotServer(World(1), detail="off")
    by_handover = NbiotServer(World(1), detail="off")
    held: dict[str, list] = {}
    at = 0.0
    for _ in range(3000):
        at += rng.expovariate(0.1)
        module = f"cmi6140/{rng.randrange(4):08d}"
        item = {"op": rng.choice(["send", "update", "register"]), "protocol": "coap"}
        item["nbytes"] = rng.randrange(20, 200)
        if rng.random() < 0.7:
            item.update(data=b"x", encoding="senml_cbor", duplicate=rng.random() < 0.2)
            item["started"] = at - rng.uniform(0, 90) if rng.random() < 0.9 else None
        by_receive.receive(module, at=at, **item)
        held.setdefault(module, []).append((at, None, item))
        if rng.random() < 0.3:
            by_handover.tally(module, held.pop(module))
    for module, deliveries in held.items():
        by_handover.tally(module, deliveries)
    assert by_handover.uplinks == by_receive.uplinks == 3000
    assert 0 < by_handover.duplicates == by_receive.duplicates
    assert {k: list(v) for k, v in by_handover.latencies.items()} == {
        k: list(v) for k, v in by_receive.latencies.items()
    }
    with pytest.raises(ValueError, match="detail 'off', not 'message'"):
        NbiotServer(World(1)).tally("m", [])
