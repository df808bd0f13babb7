"""CMi6140 behaviour in virtual time: schedules, randomised transmissions, time sync,
retransmission order (seed 001 §7.3). Assertions are on the trace."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from simulator.core.world import World
from simulator.nbiot import payload, schedule
from simulator.nbiot.config import ModuleConfig
from simulator.nbiot.module import Cmi6140
from simulator.nbiot.network import NetworkParams
from simulator.nbiot.runner import ks_uniform
from simulator.nbiot.server import NbiotServer

H = 3600.0


def _world(seed=1):
    w = World(seed)
    return w, NbiotServer(w)


@pytest.mark.parametrize("interval", [5, 15, 60, 120, 7])
@pytest.mark.parametrize("utc_offset", [0, 60, -300])
def test_readouts_fall_on_the_interval_grid_of_meter_time(interval, utc_offset):
    w, srv = _world()
    cfg = ModuleConfig(
        readout_interval_min=interval, utc_offset_min=utc_offset, transmit_interval_min=1440
    )
    m = Cmi6140(w, 1, srv, config=cfg, coupling_loss_db=130)
    w.run(26 * H)
    events = w.trace.select("nbiot.readout", m.name)
    stamps = [datetime.fromisoformat(e["local_time"]) for e in events]
    assert len(stamps) >= 26 * 60 // interval - 2
    for e, s in zip(events, stamps, strict=True):
        minute_of_day = s.hour * 60 + s.minute
        assert s.second == 0 and minute_of_day % interval == 0, s
        assert math.isclose(e.t, m.world_time_of(s), abs_tol=1e-6)  # made when the clock says
    gaps = {(b - a) for a, b in zip(stamps, stamps[1:], strict=False)}
    # the grid restarts at midnight: 7 min gives ..., 23:55, 00:00 (a 5-minute gap)
    expected = {timedelta(minutes=interval)}
    if 1440 % interval:
        expected.add(timedelta(minutes=1440 % interval))
    assert gaps == expected


def test_next_slot_examples_of_the_manual():
    at = datetime(2026, 1, 5, 11, 20)
    assert schedule.next_slot(at, 60) == datetime(2026, 1, 5, 12, 0)
    assert schedule.next_slot(datetime(2026, 1, 5, 12, 0), 120) == datetime(2026, 1, 5, 14, 0)
    assert schedule.next_slot(datetime(2026, 1, 5, 23, 58), 60) == datetime(2026, 1, 6, 0, 0)
    with pytest.raises(ValueError):
        schedule.next_slot(at, 0)


def test_transmissions_fall_inside_the_window_and_are_spread_uniformly():
    """Seed 001 §7.3.3: send time uniform in [T1 + T_offset, T1 + T_offset + T_delay].

    Tolerance: Kolmogorov-Smirnov distance below the 1 % critical value 1.63 / sqrt(n).
    """
    w, srv = _world(7)
    cfg = ModuleConfig(transmit_interval_min=60, transmit_offset_min=15, transmit_delay_min=30)
    mods = [
        Cmi6140(w, i, srv, config=cfg, coupling_loss_db=130, security=False) for i in range(150)
    ]
    w.run(6 * H)
    tx = w.trace.select("nbiot.transmission", "cmi6140/*", reason="schedule")
    offsets = [e["window_s"] for e in tx]
    n = len(offsets)
    assert n >= 150 * 5
    assert all(15 * 60 <= x <= 45 * 60 for x in offsets)
    for e in tx:  # planned on full hours
        assert datetime.fromisoformat(e["planned"]).minute == 0
    d = ks_uniform(offsets, 15 * 60, 45 * 60)
    assert d < 1.63 / math.sqrt(n), (d, n)
    # and not the trivial "everyone at the same time": the modules' first sends differ
    first = sorted(m.tx_window_s[0] for m in mods)
    assert first[-1] - first[0] > 20 * 60


def test_time_sync_past_a_planned_readout_gives_an_extra_readout_and_transmission():
    """Seed 001 §7.3.2: the 23:58 -> 00:02 case."""
    w, srv = _world()
    # The meter clock is 4 min behind: at true 00:02 it shows 23:58.
    m = Cmi6140(
        w,
        5,
        srv,
        coupling_loss_db=130,
        clock_error_s=-240,
        config=ModuleConfig(transmit_interval_min=1440),
    )

    def sync():
        yield w.timeout(24 * H + 120 - w.now)
        assert m.local_now() == datetime(2026, 1, 5, 23, 58)
        m.sync_time(0.0)

    w.process(sync())
    w.run(26 * H)
    sync_ev = w.trace.select("nbiot.time_sync", m.name)
    assert [(e["before"], e["after"]) for e in sync_ev] == [
        ("2026-01-05T23:58:00", "2026-01-06T00:02:00")
    ]
    stamps = [e["local_time"] for e in w.trace.select("nbiot.readout", m.name)]
    assert "2026-01-06T00:02:00" in stamps  # the extra readout at sync
    assert "2026-01-06T00:00:00" not in stamps  # time jumped over the planned one
    assert "2026-01-06T01:00:00" in stamps  # rescheduled on the new time
    extra = w.trace.select("nbiot.readout", m.name, reason="time_sync")
    assert len(extra) == 1 and extra[0].t == 24 * H + 120
    tx = w.trace.select("nbiot.transmission", m.name, reason="time_sync")
    assert len(tx) == 1 and tx[0].t == 24 * H + 120
    # the extra readout reached the server (sent as UTC; offset 0 here)
    extra_stamp = int(datetime(2026, 1, 6, 0, 2, tzinfo=UTC).timestamp())
    assert extra_stamp in srv.delivered[m.name]


def _outage_run(order: str, max_age_h: float = 72):
    w, srv = _world(3)
    net = NetworkParams(extra_loss=1.0)
    cfg = ModuleConfig(
        upload_order=order,
        max_uploads_per_transmission=3,
        readouts_per_telegram=1,
        communication_retry_count=0,
        upload_max_age_h=max_age_h,
        transmit_offset_min=0,
        transmit_delay_min=10,
    )
    m = Cmi6140(w, 9, srv, config=cfg, network=net, coupling_loss_db=130, security=False)

    def heal():
        yield w.timeout(10.5 * H)
        net.extra_loss = 0.0

    w.process(heal())
    w.run(11.5 * H)
    sends = [e for e in w.trace.select("nbiot.uplink", "server", op="send")]
    return m, [datetime.fromtimestamp(e["times"][0], UTC).hour for e in sends]


def test_fifo_sends_the_oldest_unsent_readouts_first_and_lifo_the_newest():
    m_fifo, fifo = _outage_run("fifo")
    m_lifo, lifo = _outage_run("lifo")
    # readouts 01:00 .. 11:00 stored; the first good transmission (after 11:00) sends three
    assert fifo[:3] == [1, 2, 3]
    assert lifo[:3] == [11, 10, 9]
    assert m_fifo.produced == m_lifo.produced == 11
    assert len(m_fifo.unsent) == len(m_lifo.unsent) == 11 - 3


def test_readouts_older_than_the_maximum_age_are_dropped():
    m, hours = _outage_run("fifo", max_age_h=4)
    # sent a few minutes after 11:00, so 07:00 is already older than 4 h
    assert hours[:3] == [8, 9, 10]
    assert m.expired == 7  # 01:00 .. 07:00


class _NoAckRadio:
    """Fault injection: once registered, every downlink (the ACK of a Send) is lost; uplinks
    reach the server as modelled."""

    def __init__(self, module):
        self._module, self._radio = module, module.radio

    def __getattr__(self, name):
        return getattr(self._radio, name)

    def downlink(self, t, nbytes, tl):
        if self._module._registered:
            return None
        return self._radio.downlink(t, nbytes, tl)


def test_a_reading_whose_ack_was_lost_is_delivered_not_expired():
    """Issue 14: it was counted both delivered (server) and expired (module max age)."""
    from simulator.nbiot.runner import _summarise

    w, srv = _world(4)
    cfg = ModuleConfig(
        upload_max_age_h=3,
        communication_retry_count=0,
        readouts_per_telegram=1,
        max_uploads_per_transmission=2,
        transmit_offset_min=0,
        transmit_delay_min=10,
        message_encoding="senml_cbor",
    )
    m = Cmi6140(w, 11, srv, config=cfg, coupling_loss_db=130, security=False)
    m.radio = _NoAckRadio(m)
    w.run(12 * H)
    assert m.failed_telegrams > 0 and m.expired > 0  # ACKs lost, readouts dropped by age
    acc = m.accounting()
    at_server = len(srv.delivered[m.name])
    assert acc["delivered"] == at_server > 0
    # the case of the issue: the module's own counts overlap the server's
    assert at_server + m.expired + len(m.unsent) > m.produced
    assert m.produced == acc["delivered"] + acc["pending"] + acc["expired"]
    summary, _, _ = _summarise(_fleet_scenario(), 1, 12, srv, [m], w.now)
    assert summary["readouts_delivered"] == at_server
    assert (
        summary["readouts_produced"]
        == summary["readouts_delivered"] + summary["readouts_pending"] + summary["readouts_expired"]
    )


def test_the_accounting_check_names_the_module_and_counts():
    from simulator.core.accounting import AccountingError
    from simulator.nbiot.runner import _summarise

    w, srv = _world(4)
    m = Cmi6140(w, 12, srv, config=ModuleConfig(), coupling_loss_db=130, security=False)
    w.run(3 * H)
    m.produced += 1  # a readout that is in no state
    with pytest.raises(
        AccountingError, match=r"cmi6140/00000012: readouts taken \d+ != delivered \d+ \+ pending"
    ):
        _summarise(_fleet_scenario(), 1, 3, srv, [m], w.now)


def _fleet_scenario():
    from simulator.nbiot.scenario_model import NbiotScenario

    return NbiotScenario.model_validate({"name": "acct", "fleet": {"modules": 1}})


@pytest.mark.parametrize("utc_offset", [60, -300, 30])
def test_the_utc_offset_shifts_reported_timestamps_not_the_meter_clock(utc_offset):
    """Seed 001 §7.3.1 (issue 14): readout on the hour stays on the hour; at 12:00 meter time
    a meter with offset +60 reports 11:00."""
    w, srv = _world(5)
    cfg = ModuleConfig(
        readout_interval_min=60,
        utc_offset_min=utc_offset,
        transmit_interval_min=60,
        transmit_offset_min=0,
        transmit_delay_min=5,
    )
    m = Cmi6140(w, 13, srv, config=cfg, coupling_loss_db=130, security=False)
    w.run(6 * H)
    readouts = w.trace.select("nbiot.readout", m.name, reason="schedule")
    assert [e.t for e in readouts] == [h * H for h in range(1, 6)]
    assert [e["local_time"][11:] for e in readouts] == [f"0{h}:00:00" for h in range(1, 6)]
    # each reported timestamp is meter time minus the offset
    local = {int(datetime(2026, 1, 5, h, tzinfo=UTC).timestamp()) for h in range(1, 6)}
    reported = {s + utc_offset * 60 for s in srv.delivered[m.name]}
    assert reported and reported <= local
    assert m.utc_now() == w.clock() - timedelta(minutes=utc_offset)


@pytest.mark.parametrize(
    ("encoding", "fmt"),
    [
        ("mbus", "pulse"),
        ("mbus", "combined"),
        ("mbus", "extended"),
        ("json", "pulse"),
        ("senml_cbor", "combined"),
    ],
)
def test_every_message_format_reaches_the_server_decoded(encoding, fmt):
    """Seed 001 §7.4: the server decodes each format/encoding; the registers are the meter's."""
    from simulator.nbiot.module import MeterProfile

    w, srv = _world(6)
    cfg = ModuleConfig(
        message_encoding=encoding,
        message_format=fmt,
        pulse_inputs=("volume", "energy"),
        readouts_per_telegram=1,
    )
    meter = MeterProfile(cooling_w=3000, pulse_a_per_h=7, pulse_b_per_h=2)
    m = Cmi6140(w, 13, srv, config=cfg, coupling_loss_db=130, security=False, meter=meter)
    bodies = []
    receive = srv.receive

    def spy(module, **kw):
        if kw.get("data") is not None and not kw.get("duplicate"):
            bodies.append(kw["data"])
        receive(module, **kw)

    srv.receive = spy
    w.run(6 * H)
    assert srv.decode_errors == 0 and bodies
    decode = {
        "mbus": lambda b: [payload.decode_mbus_message(b)[1]],
        "json": lambda b: [payload.decode_json(b)],
        "senml_cbor": payload.decode_senml_cbor,
    }[encoding]
    got = [d for b in bodies for d in decode(b)]
    hours = [(d.utc_time - got[0].utc_time).total_seconds() / 3600 for d in got]
    regs = got[-1].registers
    # the meter's registers grow with its load: cooling 3 kW, 7 and 2 pulses an hour
    if fmt == "pulse":
        assert regs["pulse_b"] - got[0].registers["pulse_b"] == int(2 * hours[-1])
        assert "cooling_kwh" not in regs
    if fmt == "combined":
        assert regs["cooling_kwh"] - got[0].registers["cooling_kwh"] == int(3 * hours[-1])
    if fmt == "extended":
        assert {"tariff2_wh", "tariff3_wh"} <= set(regs)
    assert {d.meter_id for d in got} == {13}
    assert m.accounting()["delivered"] == len(srv.delivered[m.name]) > 0
