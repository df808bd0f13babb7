"""LwM2M bootstrap of the CMi6140 (OMA LwM2M 1.1 Core §6.1.3, §6.2.1.1; simulator.nbiot.bootstrap).

* Client Initiated Bootstrap: DTLS with the Bootstrap-Server, Bootstrap-Request, the server's
  Delete / Writes, Bootstrap-Finish, then DTLS + Register with the LwM2M server, in that order,
  costed on the radio like every other exchange.
* A silent Bootstrap-Server: the attempt fails (DTLS or CoAP timers, or EXCHANGE_LIFETIME
  without a Finish), the telegram is retried ``communication_retry_count`` times, the readouts
  stay stored and the next transmission bootstraps again.
* Bootstrap on Registration Failure: after ``lwm2m_registration_attempts`` failed attempts.
* Factory Bootstrap sends nothing to a Bootstrap-Server.
"""

from __future__ import annotations

import pytest

from simulator.core.world import World
from simulator.nbiot import bootstrap, coap, dtls
from simulator.nbiot.bootstrap import BootstrapServer
from simulator.nbiot.config import ModuleConfig
from simulator.nbiot.module import Cmi6140
from simulator.nbiot.network import NetworkParams
from simulator.nbiot.server import NbiotServer, OutageError

H = 3600.0
CI = "client_initiated"


def _run(hours, *, seed=1, loss=140.0, bs=None, server_outages=None, network=None, **cfg):
    w = World(seed)
    srv = NbiotServer(w, detail="datagram", outages=server_outages)
    config = ModuleConfig(transmit_interval_min=60, **cfg)
    m = Cmi6140(
        w,
        3,
        srv,
        config=config,
        coupling_loss_db=loss,
        detail="datagram",
        bootstrap_server=bs,
        network=network,
    )
    w.run(hours * H)
    return w, m


def _steps(w):
    """The bootstrap / registration story of the trace, in trace order."""
    out = []
    for e in w.trace.select():
        if e.kind == "nbiot.bootstrap_op":
            out.append((e.t, f"{e['op']} {e['path']}"))
        elif e.kind == "nbiot.bootstrap":
            out.append((e.t, f"bootstrap {e['outcome']}"))
        elif e.kind == "nbiot.uplink" and e["op"] in ("register", "send"):
            out.append((e.t, f"server got {e['op']}"))
    return out


# -- messages -------------------------------------------------------------------------------
def test_tlv_reproduces_the_oma_device_object_example():
    # OMA LwM2M Core, TLV example "Read /3/0" (Device object): published byte strings
    assert bootstrap.tlv(0, b"Open Mobile Alliance") == bytes.fromhex(
        "C8 00 14 4F 70 65 6E 20 4D 6F 62 69 6C 65 20 41 6C 6C 69 61 6E 63 65"
    )
    assert bootstrap.tlv(3, b"1.0") == bytes.fromhex("C3 03 31 2E 30")
    assert bootstrap.tlv(9, bootstrap._int(100)) == bytes.fromhex("C1 09 64")
    assert bootstrap.tlv(13, bootstrap._int(1367491215)) == bytes.fromhex("C4 0D 51 82 42 8F")
    assert bootstrap.tlv(14, b"+02:00") == bytes.fromhex("C6 0E 2B 30 32 3A 30 30")
    # 16-bit identifier, 16-bit length field
    assert bootstrap.tlv(300, b"x" * 300)[:5] == bytes([0b11110000, 0x01, 0x2C, 0x01, 0x2C])


def test_bootstrap_messages_follow_the_interface_table():
    ops = bootstrap.operations()
    assert [(o.op, o.path) for o in ops] == [
        ("delete", "/"),
        ("write", "/0/1"),
        ("write", "/1/0"),
        ("bootstrap_finish", "/bs"),
    ]
    # the Security write carries the URI, PSK identity and key: the largest request
    assert max(ops, key=lambda o: o.down_b).path == "/0/1"
    assert bootstrap.request_size() > bootstrap.request_size("urn:imei:1") > 0


# -- client initiated bootstrap -------------------------------------------------------------
def test_client_initiated_bootstrap_then_register_in_order():
    w, m = _run(2, lwm2m_bootstrap=CI)
    names = [s for _, s in _steps(w)]
    assert names[:8] == [
        "bootstrap_request /bs",
        "delete /",
        "write /0/1",
        "write /1/0",
        "bootstrap_finish /bs",
        "bootstrap done",
        "server got register",
        "server got send",
    ]
    # the Bootstrap-Server's DTLS handshake comes before the request, the LwM2M server's
    # full handshake between the Finish and the Register
    kinds = [e.kind for e in w.trace.select() if e.kind != "nbiot.readout"]
    first_req = kinds.index("nbiot.bootstrap_op")
    done = kinds.index("nbiot.bootstrap")
    assert kinds[1:first_req].count("nbiot.dtls_tx") == 3
    assert kinds[done:].index("nbiot.dtls_tx") < kinds[done:].index("nbiot.uplink")
    assert (m.bootstraps, m.bootstraps_failed) == (1, 0)
    assert m.bootstrap_server.requests == m.bootstrap_server.finished == 1
    assert m.summary(w.now)["bootstraps"] == 1
    # the bootstrap does not reach the LwM2M server
    assert all(e["op"] != "bootstrap_request" for e in w.trace.select("nbiot.uplink"))


def _floor_s(net: NetworkParams, level: int, security: bool = True) -> float:
    """Air time and NPDCCH grants of every datagram of one bootstrap, no retransmission."""
    ovh = dtls.RECORD_OVERHEAD_B if security else 0
    ups = [b for d, b in dtls.FULL_HANDSHAKE if d == "up"] + [bootstrap.request_size() + ovh]
    downs = [b for d, b in dtls.FULL_HANDSHAKE if d == "down"] + [coap.changed_ack_size() + ovh]
    for op in bootstrap.operations():
        downs.append(op.down_b + ovh)
        ups.append(op.up_b + ovh)
    grant = net.npdcch_rmax[level] / 1000
    ul_rate = net.ul_peak_bps / net.data_repetitions[level]
    dl_rate = net.dl_peak_bps / net.data_repetitions[level]
    ip = net.ip_udp_overhead_b
    air = sum((b + ip) * 8 / ul_rate for b in ups) + sum((b + ip) * 8 / dl_rate for b in downs)
    return air + grant * (len(ups) + len(downs)) + net.core_delay_s * (len(ups) + len(downs))


@pytest.mark.parametrize(
    ("loss", "level", "slack_s"),
    [(140.0, 0, 1.0), (150.0, 1, 2.5)],
)
def test_bootstrap_time_is_its_datagrams_on_air(loss, level, slack_s):
    # no spread, no loss: the bootstrap lasts its 16 datagrams' grants, air time and core
    # delays, plus the random access out of PSM (bounded by slack_s)
    net = NetworkParams(transfer_sigma=0.0, residual_loss=(0.0, 0.0, 0.0))
    w, m = _run(2, lwm2m_bootstrap=CI, loss=loss, network=net)
    assert m.radio.ce_level == level
    (done,) = w.trace.select("nbiot.bootstrap")
    floor = _floor_s(net, level)
    assert floor <= done["duration_s"] <= floor + slack_s, (done["duration_s"], floor)


def test_bootstrap_costs_more_at_higher_ce_levels():
    durations = []
    for loss in (140.0, 150.0, 160.0):
        w, _ = _run(2, lwm2m_bootstrap=CI, loss=loss)
        (done,) = w.trace.select("nbiot.bootstrap")
        assert done["outcome"] == "done"
        durations.append(done["duration_s"])
    assert durations == sorted(durations)
    assert durations[2] >= _floor_s(NetworkParams(), 2) * 0.8  # CE2: tens of seconds
    assert durations[0] < 5.0


# -- a silent Bootstrap-Server --------------------------------------------------------------
def test_silent_bootstrap_server_fails_each_attempt_and_the_next_transmission_retries():
    bs = BootstrapServer(outages=[(0.0, 1.5 * H)])
    w, m = _run(3, lwm2m_bootstrap=CI, bs=bs)
    ends = list(w.trace.select("nbiot.bootstrap"))
    failed = [e for e in ends if e["outcome"] == "failed"]
    cfg = m.config
    # each telegram attempt starts with the bootstrap: 1 + communication_retry_count
    assert len(failed) == cfg.communication_retry_count + 1
    timing = dtls.DtlsTiming.for_profile(cfg.dtls_timer_profile, cfg.dtls_max_timeout_s)
    for e in failed:  # the ClientHello is resent on the DTLS timer, then the handshake gives up
        assert e["failed_at"] == "dtls"
        assert e["duration_s"] == pytest.approx(sum(timing.timeouts()))
    (tg_failed,) = [e for e in w.trace.select("nbiot.telegram") if not e["ok"]]
    assert tg_failed["attempts"] == cfg.communication_retry_count + 1
    # after the outage the next transmission bootstraps, registers and sends both readouts
    (done,) = [e for e in ends if e["outcome"] == "done"]
    assert done.t > 1.5 * H
    sends = [e for e in w.trace.select("nbiot.uplink") if e["op"] == "send"]
    assert sends[0].t > done.t and sends[0]["readouts"] == 2
    assert (m.bootstraps, m.bootstraps_failed) == (1, 4)
    assert m.accounting()["pending"] <= 1


def test_silent_bootstrap_server_without_dtls_times_out_the_bootstrap_request():
    bs = BootstrapServer(outages=[(0.0, 10 * H)])
    w = World(1)
    srv = NbiotServer(w, detail="datagram")
    m = Cmi6140(
        w,
        3,
        srv,
        config=ModuleConfig(lwm2m_bootstrap=CI, transmit_interval_min=60),
        detail="datagram",
        security=False,
        bootstrap_server=bs,
    )
    w.run(2 * H)
    failed = list(w.trace.select("nbiot.bootstrap"))
    assert failed and all(e["failed_at"] == "bootstrap_request" for e in failed)
    # RFC 7252: the CON Bootstrap-Request gives up after MAX_TRANSMIT_WAIT, [62, 93] s
    assert all(62.0 <= e["duration_s"] <= coap.MAX_TRANSMIT_WAIT_S + 1e-9 for e in failed)
    tx = [e for e in w.trace.select("nbiot.coap_tx") if e["op"] == "bootstrap_request"]
    assert max(e["attempt"] for e in tx) == coap.MAX_RETRANSMIT
    assert m.bootstrap_server.requests == 0


def test_server_silent_after_the_request_fails_at_exchange_lifetime():
    # first run: when does the module receive the Bootstrap-Server's Delete?
    w0, _ = _run(2, lwm2m_bootstrap=CI)
    req_ack = next(e.t for e in w0.trace.select("nbiot.bootstrap_op") if e["op"] == "delete")
    start = next(e.t for e in w0.trace.select("nbiot.dtls_tx"))
    # same run, but the server goes silent just before the Delete reaches the module: it
    # never hears the module's 2.02 and stops sending; no Finish within EXCHANGE_LIFETIME
    bs = BootstrapServer(outages=[(req_ack - 1e-3, 10 * H)])
    w, m = _run(2, lwm2m_bootstrap=CI, bs=bs)
    first = next(iter(w.trace.select("nbiot.bootstrap")))
    assert first["outcome"] == "failed" and first["failed_at"] == "delete /"
    assert m.bootstrap_server.requests >= 1 and m.bootstrap_server.finished == 0
    # the module gives up EXCHANGE_LIFETIME (247 s) after the request was acknowledged
    assert first.t - start == pytest.approx(first["duration_s"])
    assert req_ack < first.t <= req_ack + bootstrap.EXCHANGE_LIFETIME_S


def test_bad_outage_window_is_refused():
    with pytest.raises(OutageError, match="ends before it starts"):
        BootstrapServer(outages=[(10.0, 5.0)])


# -- bootstrap on registration failure ------------------------------------------------------
def _reg_failure_run(**cfg):
    # the LwM2M server is silent for 6 h; the Bootstrap-Server answers
    return _run(8, server_outages=[(0.0, 6 * H)], **cfg)


def test_bootstrap_again_after_the_failed_registration_attempts():
    w, m = _reg_failure_run(lwm2m_bootstrap=CI)
    ends = [e for e in w.trace.select("nbiot.bootstrap")]
    reasons = [e["reason"] for e in ends]
    assert reasons[0] == "first_start" and "registration_failure" in reasons
    # between two bootstraps: exactly lwm2m_registration_attempts failed DTLS handshakes with
    # the LwM2M server (the bootstrap's own handshake succeeds)
    n = m.config.lwm2m_registration_attempts
    kinds = [
        e.kind
        for e in w.trace.select()
        if e.kind in ("nbiot.bootstrap", "nbiot.dtls_failed") and e.t < 6 * H
    ]
    first, second = [i for i, k in enumerate(kinds) if k == "nbiot.bootstrap"][:2]
    assert kinds[first + 1 : second] == ["nbiot.dtls_failed"] * n
    # once the server is back: registered and delivering
    regs = [e for e in w.trace.select("nbiot.uplink") if e["op"] == "register"]
    assert regs and regs[0].t >= 6 * H
    assert m.accounting()["delivered"] > 0


def test_no_second_bootstrap_when_the_server_object_says_so():
    w, m = _reg_failure_run(lwm2m_bootstrap=CI, lwm2m_bootstrap_on_registration_failure=False)
    assert [e["reason"] for e in w.trace.select("nbiot.bootstrap")] == ["first_start"]


def test_factory_bootstrap_sends_nothing_to_the_bootstrap_server():
    silent = BootstrapServer(outages=[(0.0, 100 * H)])
    w, m = _run(8, bs=silent, server_outages=[(0.0, 6 * H)])  # default: factory
    assert m.config.lwm2m_bootstrap == "factory"
    assert not list(w.trace.select("nbiot.bootstrap_op"))
    assert not list(w.trace.select("nbiot.bootstrap"))
    assert m.bootstrap_server.requests == 0 and m.bootstraps == 0
    # straight to DTLS + Register with the LwM2M server
    first = [e for e in w.trace.select() if e.kind in ("nbiot.dtls_tx", "nbiot.coap_tx")]
    assert first[0].kind == "nbiot.dtls_tx"
    assert next(e for e in first if e.kind == "nbiot.coap_tx")["op"] == "register"
    assert m.accounting()["delivered"] > 0


def test_factory_trace_does_not_depend_on_the_bootstrap_server():
    a, _ = _run(4)
    b, _ = _run(4, bs=BootstrapServer(outages=[(0.0, 100 * H)]))
    assert a.trace.to_jsonl() == b.trace.to_jsonl()


# -- a scenario file ------------------------------------------------------------------------
FLEET = """\
kind = "nbiot"
name = "bootstrap-fleet"
seed = 3
hours = 30
[fleet]
modules = 30
coupling_loss = {{ distribution = "uniform", low_db = 130.0, high_db = 155.0 }}
[module]
transmit_interval_min = 1440
transmit_delay_min = 360
lwm2m_bootstrap = "client_initiated"
[servers]
bootstrap_outages_h = [[0, {until}]]
[output]
trace = "message"
plots = false
"""


def _fleet(tmp_path, until):
    import json

    from simulator.cli import main

    scn = tmp_path / f"b{until}.toml"
    scn.write_text(FLEET.format(until=until))
    out = tmp_path / f"out{until}"
    assert main(["run", str(scn), "--out", str(out), "--quiet"]) == 0
    return json.loads((out / "summary.json").read_text())


def test_fleet_summary_counts_bootstraps_and_a_silent_bootstrap_server(tmp_path):
    ok = _fleet(tmp_path, 0)  # never out: every module bootstraps once at its first send
    assert ok["lwm2m_bootstrap"] == {"mode": CI, "done": 30, "failed": 0}
    # out until 27 h: a module whose first transmission (24-30 h) comes early fails its
    # 1 + communication_retry_count attempts (225 s each) and sends nothing in this run; one
    # that comes just before 27 h succeeds on a retry
    late = _fleet(tmp_path, 27)
    bs = late["lwm2m_bootstrap"]
    assert 0 < bs["done"] < 30
    never = 30 - bs["done"]
    assert 4 * never <= bs["failed"] < 4 * never + 4 * bs["done"]
    assert late["readouts_delivered"] < ok["readouts_delivered"]


def test_scenario_outage_window_must_be_ordered(tmp_path, capsys):
    from simulator.cli import main

    scn = tmp_path / "bad.toml"
    scn.write_text(FLEET.format(until=0).replace("[[0, 0]]", "[[5, 1]]"))
    assert main(["run", str(scn), "--out", str(tmp_path / "o"), "--quiet"]) != 0
    assert "bootstrap_outages_h: [5, 1] ends before it starts" in capsys.readouterr().err
