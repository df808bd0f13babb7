"""``World.sleep_or(d, e)`` stands for ``yield world.timeout(d) | e`` (the NB-IoT module's
transmit and readout loops wait so for their next slot or a time sync). It must keep the event
order: random processes that sleep, wait on a shared event that another process triggers and
replaces, and meet at the same instants run with both and must log the same steps."""

from __future__ import annotations

import random

import pytest

from simulator.core.world import World


def _log(seed: int, new: bool) -> tuple[list, dict]:
    world = World(0)
    env = world.env
    log: list = []
    shared = {"event": env.event(), "old": []}

    def sleeper(name: str):
        rng = random.Random(f"{seed}/{name}")  # its own draws, whatever the interleaving
        while True:
            d = rng.choice([0.0, 1.0, 2.0, 0.5, 3.0, rng.uniform(0, 3), -1.0])
            event = shared["event"]
            if shared["old"] and rng.random() < 0.1:
                event = rng.choice(shared["old"])  # processed already
            if new:
                yield from world.sleep_or(d, event)
            else:
                wake = world.timeout(d) | event
                wake.own_sleep = True
                yield wake
            log.append((env.now, name, event.triggered))
            if rng.random() < 0.4:  # World.sleep after it: direct only when that is exact
                yield from world.sleep(rng.choice([0.0, 1.0, rng.uniform(0, 2)]))
                log.append((env.now, name, "slept"))

    def syncer():
        rng = random.Random(f"{seed}/sync")
        while True:
            yield world.timeout(rng.choice([0.0, 1.0, 2.0, 0.5, rng.uniform(0, 4)]))
            event, shared["event"] = shared["event"], env.event()
            event.succeed()
            shared["old"].append(event)
            log.append((env.now, "sync"))

    def ticker(name: str):
        rng = random.Random(f"{seed}/{name}")
        while True:
            yield world.timeout(rng.choice([1.0, 2.0]))
            log.append((env.now, name))

    for i in range(4):
        world.process(sleeper(f"s{i}"))
    world.process(syncer())
    world.process(ticker("t"))
    world.run(30.0)
    log.append("run ends at 30")
    world.run(60.0)
    return log, dict(world.sleeps)


@pytest.mark.parametrize("seed", range(24))
def test_sleep_or_keeps_the_event_order_of_a_condition(seed):
    old, new = _log(seed, False), _log(seed, True)
    assert len(old[0]) > 100
    assert new == old


def test_a_failed_event_is_refused():
    world = World(0)
    event = world.event()

    def waiter():
        yield from world.sleep_or(5.0, event)

    def failer():
        yield world.timeout(1.0)
        event.fail(RuntimeError("x"))
        event.defused = True

    world.process(waiter())
    world.process(failer())
    with pytest.raises(ValueError, match="the event failed"):
        world.run(10.0)
