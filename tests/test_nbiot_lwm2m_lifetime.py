"""LwM2M registration lifetime (OMA LwM2M 1.1 Core: Register `lt`, Registration Update).

The module keeps its registration alive: an Update rides with a transmission when the next
transmission would come after the lifetime ends, and goes on its own when transmissions are
rarer than the lifetime. The server never sees a Send from a lapsed registration.
"""

from __future__ import annotations

from simulator.core.world import World
from simulator.nbiot.config import ModuleConfig
from simulator.nbiot.module import Cmi6140
from simulator.nbiot.server import NbiotServer

H = 3600.0


def _ops(lifetime_s, transmit_min, days, seed=1):
    w = World(seed)
    srv = NbiotServer(w, detail="datagram")
    cfg = ModuleConfig(
        transmit_interval_min=transmit_min, readouts_per_telegram=24, lwm2m_lifetime_s=lifetime_s
    )
    m = Cmi6140(w, 3, srv, config=cfg, coupling_loss_db=140.0)
    w.run(days * 86400)
    ups = [(e.t, e["op"]) for e in w.trace.select("nbiot.uplink")]
    return m, [(t, op) for t, op in ups if op in ("register", "update", "send")]


def _gaps_ok(ops, lifetime_s):
    """Every Register/Update is followed by the next one within the lifetime."""
    refresh = [t for t, op in ops if op in ("register", "update")]
    return all(b - a <= lifetime_s for a, b in zip(refresh, refresh[1:], strict=False))


def test_daily_transmissions_carry_an_update_when_the_lifetime_is_a_day():
    m, ops = _ops(86400, 1440, 5)
    sends = [t for t, op in ops if op == "send"]
    updates = [t for t, op in ops if op == "update"]
    # one refresh a day: with the transmission, or on its own when the day's random send
    # time falls after the lifetime ends (24 h + U[0, 60 min] vs exactly 24 h)
    assert len(sends) == 4 and len(updates) == len(sends) - 1  # the first has the Register
    assert 0 < m.lifetime_updates <= len(updates)
    assert _gaps_ok(ops, 86400) and m.registration_lapses == 0


def test_a_long_lifetime_needs_fewer_updates():
    m, ops = _ops(7 * 86400, 1440, 9)
    assert [op for _, op in ops].count("update") == 1  # one a week
    assert [op for _, op in ops].count("send") == 8
    assert m.registration_lapses == 0


def test_transmissions_rarer_than_the_lifetime_get_standalone_updates():
    m, ops = _ops(6 * 3600, 2880, 5)  # a transmission every 2 days, lifetime 6 h
    assert m.lifetime_updates >= 10  # registered at the first transmission (48 h), then 6-hourly
    assert _gaps_ok(ops, 6 * 3600) and m.registration_lapses == 0
