"""Mobile-terminated requests held while a CMi6140 sleeps (RADIO-NBIOT §8 anchor 4).

eDRX: a request arriving at a random time waits for the module's next paging time window,
on average about half the eDRX cycle (p95 about 0.95 of it) when the PTW is short. PSM: the
network holds it until the module's next uplink or periodic TAU, whichever comes first.
"""

from __future__ import annotations

import random
import statistics

from simulator.core.world import World
from simulator.nbiot.config import ModuleConfig
from simulator.nbiot.module import Cmi6140
from simulator.nbiot.server import NbiotServer

H = 3600.0


def _module(seed=3, **cfg):
    w = World(seed)
    srv = NbiotServer(w, detail="datagram")
    config = ModuleConfig(transmit_interval_min=10080, **cfg)  # weekly: hours of quiet
    return w, srv, Cmi6140(w, 7, srv, config=config, coupling_loss_db=140.0, detail="message")


def _requests(w, m, times):
    def gen():
        for t in times:
            yield w.timeout(t - w.now)
            m.mobile_terminated("read")

    w.process(gen())


def _poisson(rng, mean_s, start, end):
    t, out = start, []
    while True:
        t += rng.expovariate(1 / mean_s)
        if t >= end:
            return out
        out.append(t)


def test_edrx_wait_is_about_half_the_cycle():
    cycle = 81.92
    w, srv, m = _module(power_saving_mode="edrx", edrx_cycle_s=cycle, paging_time_window_s=2.56)
    _requests(w, m, _poisson(random.Random(5), 400.0, 60.0, 60 * H))
    w.run(61 * H)
    waits = sorted(s for via, s in m.mt_waits if via == "paging")
    assert len(waits) > 400
    assert abs(statistics.mean(waits) - cycle / 2) < 4.0  # standard error ~1.1 s
    p95 = waits[int(0.95 * len(waits))]
    assert 0.9 * cycle < p95 <= cycle
    # every request answered: the responses reached the server
    answers = [e for e in w.trace.select("nbiot.uplink") if e["op"] == "read_response"]
    assert len(answers) >= 0.97 * len(m.mt_waits)  # CE0 residual loss aside


def test_psm_holds_a_request_until_the_next_tau():
    w, srv, m = _module(power_saving_mode="psm", t3324_s=10, t3412_s=3600)
    _requests(w, m, [1000.0])
    w.run(2 * H)
    # booted idle at 0: T3324 10 s, then PSM; T3412 from 0 -> the TAU at 3600 s
    assert m.mt_waits == [("tau", 2600.0)]
    [d] = w.trace.select("nbiot.mt_delivered")
    assert d.t >= 3600.0 and d["via"] == "tau" and d["op"] == "read" and d["wait_s"] == 2600
    assert m.radio.times.tau == 1  # the TAU happened (as a connection, counted once)


def test_psm_mean_wait_is_about_half_the_tau_period():
    w, srv, m = _module(power_saving_mode="psm", t3324_s=10, t3412_s=3600)
    _requests(w, m, _poisson(random.Random(9), 5000.0, 100.0, 140 * H))
    w.run(141 * H)
    waits = [s for via, s in m.mt_waits if via == "tau"]
    assert len(waits) > 60 and all(0 < s <= 3600 for s in waits)
    assert abs(statistics.mean(waits) - 1800) < 300  # standard error ~125 s


def test_psm_request_rides_on_the_next_uplink_when_it_comes_before_the_tau():
    w = World(4)
    srv = NbiotServer(w, detail="message")
    cfg = ModuleConfig(transmit_interval_min=1440, power_saving_mode="psm", t3412_s=180000)
    m = Cmi6140(w, 8, srv, config=cfg, coupling_loss_db=140.0)
    _requests(w, m, [20 * H])
    w.run(26 * H)
    [(via, wait)] = m.mt_waits
    send = [e for e in w.trace.select("nbiot.uplink") if e["op"] == "send"][0]
    [d] = w.trace.select("nbiot.mt_delivered")
    assert via == "mo" and d.t >= send.t  # LwM2M queue mode: after the module was heard
    assert 4 * H <= wait <= 5 * H + 120  # the daily transmission: 24 h + U[0, 60 min]
