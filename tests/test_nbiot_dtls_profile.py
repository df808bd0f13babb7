"""DTLS handshake timer profiles: RFC 6347 (1 s initial) vs the RFC 7925 IoT profile (9 s).

A spurious retransmission is a flight resent although nothing was lost (no residual loss,
``extra_loss`` 0): its timer expired before the answer, which was still on the way.
"""

from __future__ import annotations

import pytest

from simulator.core.world import World
from simulator.nbiot import dtls
from simulator.nbiot.config import ConfigStore, ModuleConfig
from simulator.nbiot.module import Cmi6140
from simulator.nbiot.network import NetworkParams
from simulator.nbiot.server import NbiotServer

H = 3600.0
SEEDS = range(8)


def _handshakes(profile: str, coupling_loss_db: float, *, min_timeout_s: float | None = None):
    """Per seed: (dtls_tx events, server uplinks) of a module sending hourly for 3.2 h
    (a full handshake first, then resumptions after PSM), with no loss at all."""
    runs = []
    for seed in SEEDS:
        w = World(seed)
        srv = NbiotServer(w, detail="datagram")
        # without a Connection ID: a resumption after every PSM, many handshakes to count
        cfg = ModuleConfig(
            dtls_timer_profile=profile, dtls_min_timeout_s=min_timeout_s, dtls_connection_id=False
        )
        m = Cmi6140(
            w,
            1,
            srv,
            config=cfg,
            coupling_loss_db=coupling_loss_db,
            detail="datagram",
            network=NetworkParams(residual_loss=(0.0, 0.0, 0.0)),
        )
        w.run(3.2 * H)
        runs.append((w.trace.select("nbiot.dtls_tx", m.name), w.trace.select("nbiot.uplink")))
    return runs


def _count(runs):
    flights = sum(1 for tx, _ in runs for e in tx if e["attempt"] == 0)
    resent = sum(1 for tx, _ in runs for e in tx if e["attempt"] > 0)
    return flights, resent


def test_profiles_give_the_rfc_initial_timers_and_the_manual_maximum():
    assert dtls.TIMER_PROFILES == {"rfc6347": 1.0, "rfc7925": 9.0}
    cfg = ModuleConfig()  # the NB-IoT default: the RFC 7925 IoT profile
    assert cfg.dtls_timer_profile == "rfc7925" and cfg.dtls_initial_timeout_s == 9.0
    assert ModuleConfig(dtls_timer_profile="rfc6347").dtls_initial_timeout_s == 1.0
    iot = ModuleConfig(dtls_timer_profile="rfc7925")
    timing = dtls.DtlsTiming.for_profile("rfc7925", iot.dtls_max_timeout_s)
    # 9 s doubling, the seed-001 "DTLS max timeout" 90 s last (>= RFC 7925's "no less than 60")
    assert timing.timeouts() == [9, 18, 36, 72, 90]
    assert (
        ModuleConfig(dtls_timer_profile="rfc7925", dtls_min_timeout_s=4).dtls_initial_timeout_s == 4
    )
    with pytest.raises(ValueError, match="unknown DTLS timer profile"):
        dtls.DtlsTiming.for_profile("rfc9999", 60)
    with pytest.raises(ValueError, match="above dtls_max_timeout_s"):
        ModuleConfig(dtls_timer_profile="rfc7925", dtls_max_timeout_s=5)
    store = ConfigStore()
    store.write("dtls_timer_profile", "rfc6347")  # writable like any parameter
    assert store.config.dtls_initial_timeout_s == 1.0


def test_iot_profile_has_no_spurious_retransmissions_up_to_ce1_where_rfc6347_has_many():
    # 154 dB: the worst CE1 coupling loss (round trip about 2-4 s, RRC set-up included)
    flights, resent = _count(_handshakes("rfc7925", 154.0))
    assert flights >= len(SEEDS) * 5 and resent == 0
    flights_1s, resent_1s = _count(_handshakes("rfc6347", 154.0))
    assert flights_1s == flights and resent_1s >= flights  # more than one copy per flight


def test_at_ce2_the_iot_profile_cuts_spurious_retransmissions_and_handshake_time():
    """CE2 (160 dB): a flight's round trip is 5-7 s, and 8-10 s for the first flight out of
    PSM (re-synchronisation + random access + RRC set-up). RFC 6347's 1 s timer resends every
    flight several times; the 9 s IoT-profile timer only catches the slowest first flights
    (and what their extra copies delay); a timer above the CE2 round trip removes them all."""
    rfc6347, iot, slow = (
        _handshakes("rfc6347", 160.0),
        _handshakes("rfc7925", 160.0),
        _handshakes("rfc7925", 160.0, min_timeout_s=16.0),
    )
    flights, resent_1s = _count(rfc6347)
    assert resent_1s >= 2 * flights
    assert _count(iot)[0] == flights
    assert 0 < _count(iot)[1] <= flights / 2
    assert _count(slow) == (flights, 0)
    # with fewer copies on the air the handshakes end sooner: the data arrive earlier
    first_send = (
        [min(e.t for e in ups if e["op"] == "send") for _, ups in rfc6347],
        [min(e.t for e in ups if e["op"] == "send") for _, ups in iot],
    )
    assert sum(first_send[1]) < sum(first_send[0])


def test_the_answer_to_an_earlier_copy_ends_the_wait():
    """RFC 6347 §4.2.4: a late answer to the first copy of a flight is accepted, so at CE2
    with the 1 s timer a flight still completes within one round trip of its first copy plus
    the air time of the copies queued before the answer, not after the timer reached the RTT."""
    for tx, _ups in _handshakes("rfc6347", 160.0)[:3]:
        first = [e for e in tx if e["handshake"] == "full" and e["attempt"] == 0]
        # flight 3 starts when flight 1 is answered: well before 1+2+4+8 = 15 s of timers
        # plus a further round trip (27-36 s when late answers were discarded)
        assert first[1].t - first[0].t < 20.0
