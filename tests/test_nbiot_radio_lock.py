"""RadioLock (simulator/nbiot/radio_lock.py) must order a module's processes exactly as the
``simpy.Resource(capacity=1)`` it replaced: random processes that arrive together (integer
times, so ties are common), hold the radio for zero or more seconds and also do other work at
the same instants, logged step by step under both locks."""

from __future__ import annotations

import random
from contextlib import contextmanager

import pytest
import simpy

from simulator.core.world import World
from simulator.nbiot.radio_lock import RadioLock


class _SimpyLock:
    """The old way: a SimPy resource, used as the module used it."""

    def __init__(self, world: World) -> None:
        self.res = simpy.Resource(world.env, capacity=1)

    @contextmanager
    def request(self):
        with self.res.request() as req:
            yield _Req(req)


class _Req:
    def __init__(self, req) -> None:
        self.req = req

    def acquire(self):
        yield self.req


def _log(seed: int, make_lock) -> list[tuple]:
    rng = random.Random(seed)
    world = World(0)
    lock = make_lock(world)
    log: list[tuple] = []

    def user(name: str, plan: list[tuple[int, int]]):
        for wait, hold in plan:
            yield from world.sleep(wait)
            log.append((world.now, name, "ask"))
            with lock.request() as use:
                yield from use.acquire()
                log.append((world.now, name, "got"))
                if hold:
                    yield from world.sleep(hold)
                log.append((world.now, name, "done"))
            log.append((world.now, name, "after"))

    def other(name: str, times: list[int]):
        for wait in times:
            yield world.timeout(wait)
            log.append((world.now, name, "tick"))

    for i in range(rng.randint(2, 5)):
        plan = [(rng.randint(0, 3), rng.choice([0, 0, 1, 2])) for _ in range(rng.randint(1, 6))]
        world.process(user(f"u{i}", plan))
    world.process(other("x", [rng.randint(0, 2) for _ in range(8)]))
    world.run(100)
    return log


@pytest.mark.parametrize("seed", range(60))
def test_radio_lock_orders_processes_as_the_simpy_resource(seed):
    old = _log(seed, _SimpyLock)
    new = _log(seed, RadioLock)
    assert any(kind == "got" for _, _, kind in old)
    assert new == old


def test_a_waiting_request_gets_the_radio_when_it_is_released():
    world = World(0)
    lock = RadioLock(world)
    got = []

    def user(name, hold):
        with lock.request() as use:
            yield from use.acquire()
            got.append((world.now, name))
            yield world.timeout(hold)

    world.process(user("a", 5))
    world.process(user("b", 1))
    world.run(10)
    assert got == [(0.0, "a"), (5.0, "b")]
    assert not lock.busy and not lock.waiting
