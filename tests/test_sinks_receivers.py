"""The bench's real receivers (simulator.sinks.http/ftp/smtp/snmp_traps) with real clients.

Each protocol: the project's client (HttpPost, FtpUpload, SmtpSend, InformSender; for HTTP
also a plain POST from urllib) delivers a report and the receiver keeps the exact bytes; each
fault gives the client the Delivery the in-world OutageSink gives (CME3100.md §5, the table in
simulator/sinks/outages.py), a hang ends in reason "timeout" within the client's timeout;
faults on demand, for the next n and in wall-time windows; per-test FTP directories; a port
in use is a bench error naming receiver, address and OS reason.

All on 127.0.0.1 with ephemeral ports; client timeouts 0.5 s; every wait bounded.
"""

from __future__ import annotations

import base64
import socket
import threading
import time
import urllib.request

import pytest

from simulator.gateways.cme3100.snmp import (
    STATUS_REPORT,
    SnmpModel,
    SnmpSettings,
    TrapRecipient,
)
from simulator.gateways.cme3100.snmp_agent import InformSender
from simulator.gateways.cme3100.value_db import ReadoutStatus as R
from simulator.rig import load_rig
from simulator.sinks.base import Report
from simulator.sinks.ftp import FtpSink
from simulator.sinks.ftp_client import FtpUpload
from simulator.sinks.http import HttpSink
from simulator.sinks.http_client import HttpPost
from simulator.sinks.outages import FAULTS, Outage, OutageSink
from simulator.sinks.receiver import BindError
from simulator.sinks.smtp import SmtpSink
from simulator.sinks.smtp_client import SmtpSend
from simulator.sinks.snmp_traps import TrapReceiver
from simulator.testing.bench import BenchError
from simulator.testing.receivers import Receivers, ReceiverUnavailable

pytestmark = pytest.mark.timeout(60)

HOST = "127.0.0.1"
USER, PASSWORD = "gw", "s3cret"
TIMEOUT_S = 0.5  # the clients' timeout here; a hang must end within it (plus slack)
#: the CMe3100 sends CP1252 text: bytes above 0x7F must arrive untouched (° = 0xB0)
BODY = (b"#serial-number;created;energy,Wh\r\n", b"0016045167;2026-01-05 00:15:00;1\xb0,5\r\n")
MAIL = (
    b"From: CMe3100@elvaco.se\r\nTo: head@end\r\nSubject: CMe3100 1101\r\n\r\n0016045167;1\xb0\r\n"
)

#: What a client gets for each fault (status, reason): the protocols' own reply codes.
EXPECTED = {
    "http": {"refuse": None, "5xx": 503, "timeout": None, "auth": 401, "disk_full": 507},
    "ftp": {"refuse": None, "5xx": 451, "timeout": None, "auth": 530, "disk_full": 552},
    "mail": {"refuse": None, "5xx": 451, "timeout": None, "auth": 535, "disk_full": 552},
}


@pytest.fixture(scope="module")
def http():
    with HttpSink(user=USER, password=PASSWORD, hang_s=5.0) as sink:
        yield sink


@pytest.fixture(scope="module")
def ftp():
    with FtpSink(user=USER, password=PASSWORD, hang_s=5.0) as sink:
        yield sink


@pytest.fixture(scope="module")
def smtp():
    with SmtpSink(user=USER, password=PASSWORD, hang_s=5.0) as sink:
        yield sink


def _auth() -> tuple[tuple[str, str], ...]:
    token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    return (("Authorization", f"Basic {token}"), ("Filename", "0016045167_valuereport.csv"))


def _setup(protocol, http, ftp, smtp, session: str):
    """(receiver, sink, report) for one protocol, faults cleared."""
    if protocol == "http":
        receiver, sink = http, HttpPost(timeout=TIMEOUT_S)
        report = Report(http.url("/push"), BODY, "text/plain; charset=windows-1252", _auth())
    elif protocol == "ftp":
        receiver, sink = ftp, FtpUpload(USER, PASSWORD, timeout=TIMEOUT_S)
        (ftp.new_session(session) / "push").mkdir()
        report = Report(ftp.url("push/0016045167_valuereport.csv"), BODY, "text/plain")
    else:
        receiver = smtp
        sink = SmtpSend(HOST, smtp.port, timeout=TIMEOUT_S, user=USER, password=PASSWORD)
        report = Report("head@end", (MAIL,), "message/rfc822", (("From", "CMe3100@elvaco.se"),))
    receiver.recover()
    return receiver, sink, report


# -- the report arrives, byte for byte ------------------------------------------------------


def test_http_chunked_and_plain_posts_keep_the_exact_bytes(http):
    http.recover()
    n = len(http.received)
    report = Report(http.url("/push?x=1"), BODY, "text/plain; charset=windows-1252", _auth())
    assert HttpPost(timeout=TIMEOUT_S).deliver(report).ok
    # an independent client: urllib's plain POST with Content-Length
    req = urllib.request.Request(
        http.url("/plain"), data=b"".join(BODY), method="POST", headers=dict(_auth())
    )
    with urllib.request.urlopen(req, timeout=2) as resp:
        assert (resp.status, resp.read()) == (200, b"OK")
    chunked, plain = http.received[n:]
    assert chunked.data == plain.data == b"".join(BODY)
    assert (chunked.meta.chunked, plain.meta.chunked) == (True, False)
    assert plain.meta.header("Content-Length") == str(len(b"".join(BODY)))
    assert chunked.meta.path == "/push?x=1" and chunked.meta.method == "POST"
    assert chunked.meta.header("filename") == "0016045167_valuereport.csv"
    assert chunked.status == 200 and chunked.fault is None and chunked.accepted
    assert chunked.remote.startswith(f"{HOST}:")
    assert abs(chunked.at_unix - time.time()) < 5 and chunked.at_monotonic <= time.monotonic()
    assert chunked.report().body == chunked.data


def test_http_basic_auth_is_checked(http):
    http.recover()
    n = len(http.received)
    bad = (("Authorization", "Basic " + base64.b64encode(b"gw:wrong").decode()),)
    for headers in ((), bad):
        d = HttpPost(timeout=TIMEOUT_S).deliver(
            Report(http.url("/push"), BODY, "text/plain", headers)
        )
        assert (d.ok, d.status) == (False, 401)
    assert [(r.status, r.fault, r.accepted) for r in http.received[n:]] == [(401, None, False)] * 2


def test_ftp_upload_keeps_the_exact_bytes_and_where_it_went(ftp):
    _, sink, report = _setup("ftp", None, ftp, None, "bytes")
    d = sink.deliver(report)
    assert (d.ok, d.status) == (True, 226)
    (got,) = ftp.wait_received(1, timeout=2)[-1:]
    assert got.data == b"".join(BODY)
    assert (got.meta.user, got.meta.path) == (USER, "/push/0016045167_valuereport.csv")
    assert got.meta.directory == str(ftp.directory)
    assert (ftp.directory / "push" / got.meta.name).read_bytes() == got.data


def test_ftp_wrong_password_and_missing_folder():
    with FtpSink(user=USER, password=PASSWORD) as ftp:
        (ftp.directory / "push").mkdir()
        d = FtpUpload(USER, "wrong", timeout=TIMEOUT_S).deliver(
            Report(ftp.url("push/a.csv"), BODY, "")
        )
        assert (d.ok, d.status) == (False, 530)
        d = FtpUpload(USER, PASSWORD, timeout=TIMEOUT_S).deliver(
            Report(ftp.url("nofolder/a.csv"), BODY, "")
        )
        assert (d.ok, d.status) == (False, 550)
        # credentials in the URL win over the sink's
        url = ftp.url("push/b.csv").replace("ftp://", f"ftp://{USER}:{PASSWORD}@")
        assert FtpUpload("x", "y", timeout=TIMEOUT_S).deliver(Report(url, BODY, "")).ok
        assert [(r.status, r.fault) for r in ftp.received] == [(530, None), (226, None)]


def test_smtp_keeps_the_exact_message_and_envelope(smtp):
    _, sink, report = _setup("mail", None, None, smtp, "")
    n = len(smtp.received)
    assert sink.deliver(report).ok
    (got,) = smtp.received[n:]
    assert got.data == MAIL and got.status == 250
    assert (got.meta.mail_from, got.meta.rcpt_tos, got.meta.login) == (
        "CMe3100@elvaco.se",
        ("head@end",),
        USER,
    )
    # without AUTH the receiver that has credentials says so
    d = SmtpSend(HOST, smtp.port, timeout=TIMEOUT_S).deliver(report)
    assert (d.ok, d.status) == (False, 530)


# -- faults ----------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("protocol", ["http", "ftp", "mail"])
def test_each_fault_gives_the_client_what_the_in_world_sink_gives(protocol, fault, http, ftp, smtp):
    receiver, sink, report = _setup(protocol, http, ftp, smtp, f"fault-{fault}")
    n = len(receiver.received)
    receiver.fail_next(1, fault)
    t0 = time.monotonic()
    d = sink.deliver(report)
    elapsed = time.monotonic() - t0
    assert (d.ok, d.status) == (False, EXPECTED[protocol][fault]), d.reason
    in_world = OutageSink(protocol, lambda: 0.0, [Outage(0.0, 1.0, fault)]).deliver(report)
    assert d.status == in_world.status
    if fault == "timeout":
        assert d.reason == in_world.reason == "timeout"
        assert TIMEOUT_S * 0.9 <= elapsed < TIMEOUT_S + 1.5
    else:
        assert d.reason != "timeout" and elapsed < 2.0
    attempt = receiver.wait_received(n + 1, timeout=2, accepted=False)[n]
    assert (attempt.fault, attempt.status, attempt.accepted) == (fault, d.status, False)
    assert sink.deliver(report).ok  # fail_next(1) was one attempt only


def test_faults_on_demand_until_recovered(http):
    _, sink, report = _setup("http", http, None, None, "")
    http.fail("5xx", status=500)
    assert [sink.deliver(report).status for _ in range(3)] == [500, 500, 500]
    http.recover()
    assert sink.deliver(report).status == 200


def test_faults_in_a_wall_time_window(smtp):
    receiver, sink, report = _setup("mail", None, None, smtp, "")
    window = receiver.faults.fail_for(0.4, "disk_full")
    assert window.end_s - window.start_s == pytest.approx(0.4)
    assert sink.deliver(report).status == 552
    time.sleep(max(0.0, window.end_s - time.time()) + 0.05)
    assert sink.deliver(report).ok
    # a window in the future does not fail the present
    now = time.time()
    receiver.fail_during([Outage(now + 60, now + 120, "5xx")])
    assert sink.deliver(report).ok
    with pytest.raises(ValueError, match="fault"):
        receiver.fail_next(1, "flood")


def test_a_hang_is_released_at_stop_and_the_thread_joined():
    sink = FtpSink(hang_s=30.0).start()
    sink.fail("timeout")
    d = FtpUpload(timeout=TIMEOUT_S).deliver(Report(sink.url("a.csv"), BODY, ""))
    assert d.reason == "timeout"
    thread = sink._thread
    t0 = time.monotonic()
    sink.stop()
    assert time.monotonic() - t0 < 2.0
    assert not thread.is_alive()


# -- FTP per-test directories ----------------------------------------------------------------


def test_each_ftp_session_has_a_fresh_root(ftp):
    sink = FtpUpload(USER, PASSWORD, timeout=TIMEOUT_S)
    ftp.recover()
    a = ftp.new_session("test_a")
    assert sink.deliver(Report(ftp.url("one.csv"), (b"1",), "")).ok
    b = ftp.new_session("test_b")
    assert list(b.iterdir()) == []
    assert sink.deliver(Report(ftp.url("two.csv"), (b"2",), "")).ok
    assert [p.name for p in a.iterdir()] == ["one.csv"]
    assert [p.name for p in b.iterdir()] == ["two.csv"]
    assert list(ftp.new_session("test_a").iterdir()) == []  # the same name again: fresh
    for bad in ("../x", "a/b", "..", ""):
        with pytest.raises(ValueError, match="session name"):
            ftp.new_session(bad)


# -- SNMP traps ------------------------------------------------------------------------------


def test_trap_receiver_keeps_each_inform_and_can_drop_them():
    sender = InformSender()
    try:
        with TrapReceiver(HOST, community="public") as rx:
            settings = SnmpSettings(
                recipients=(TrapRecipient(HOST, rx.port),), trap_retries=1, trap_timeout_ms=300
            )
            model = SnmpModel(settings, trap_sink=sender, started_at=0.0)
            model.set_meters(["11111111", "22222222"])
            (d,) = model.readout_round(100.0, {"11111111": R.OK, "22222222": R.FAILED})
            assert d.ok, d.reason
            (got,) = rx.received
            assert int(got.meta.varbinds[STATUS_REPORT + (0,)]) == 2  # WARNING
            assert got.data[:1] == b"\x30" and b"public" in got.data  # the BER message
            rx.fail("timeout")  # drop: the INFORM is never acknowledged
            (d,) = model.readout_round(200.0, {"11111111": R.FAILED, "22222222": R.FAILED})
            assert not d.ok and d.attempts == 2
            assert [r.fault for r in rx.received[1:]] == ["timeout", "timeout"]
            with pytest.raises(ValueError, match="SNMP"):
                rx.fail("disk_full")
    finally:
        sender.close()


# -- bench faults: a receiver that cannot bind ---------------------------------------------


@pytest.mark.parametrize("cls", [HttpSink, FtpSink, SmtpSink, TrapReceiver])
def test_a_port_in_use_is_a_bind_error_naming_receiver_address_and_reason(cls):
    kind = socket.SOCK_DGRAM if cls is TrapReceiver else socket.SOCK_STREAM
    with socket.socket(socket.AF_INET, kind) as taken:
        taken.bind((HOST, 0))
        if kind == socket.SOCK_STREAM:
            taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(BindError) as err:
            cls(HOST, port).start()
    assert err.value.receiver == cls.name and err.value.port == port
    assert str(err.value) == (
        f"{cls.name} receiver cannot listen on {HOST}:{port}: [Errno 98] Address already in use"
    )


def _rig(tmp_path, ftp_port: int = 0):
    path = tmp_path / "rig.toml"
    path.write_text(
        'name = "bench-rx"\n'
        "[receivers.http]\n"
        'path = "/push"\n'
        f'user = "{USER}"\n'
        f'password = "{PASSWORD}"\n'
        "[receivers.ftp]\n"
        f"port = {ftp_port}\n"
        'root = "ftp-root"\n'
        "[receivers.smtp]\n"
        "[receivers.snmp_traps]\n"
        'community = "bench"\n'
    )
    return load_rig(path)


def test_the_rig_names_the_receivers_and_the_bench_runs_them(tmp_path):
    rig = _rig(tmp_path)
    before = set(threading.enumerate())
    with Receivers.for_rig(rig) as rx:
        assert set(rx.all()) == {"http", "ftp", "smtp", "snmp_traps"}
        assert rx.ftp.root == tmp_path / "ftp-root" and rx.snmp_traps.community == "bench"
        url = rx.http.url(rig.receivers.http.path)
        assert HttpPost(timeout=TIMEOUT_S).deliver(Report(url, BODY, "text/plain", _auth())).ok
        assert (
            FtpUpload(timeout=TIMEOUT_S, user="meterbench", password="meterbench")
            .deliver(Report(rx.ftp.url("r.csv"), BODY, ""))
            .ok
        )
        mail = Report("head@end", (MAIL,), "message/rfc822")
        assert SmtpSend(HOST, rx.smtp.port, timeout=TIMEOUT_S).deliver(mail).ok
        assert [len(r.accepted()) for r in rx.all().values()] == [1, 1, 1, 0]
    assert rx.all() == {}
    time.sleep(0.1)  # daemon helper threads of the libraries may take a moment to end
    assert {t for t in threading.enumerate() if t.is_alive()} <= before


def test_a_receiver_that_cannot_bind_is_a_bench_error_and_nothing_stays_up(tmp_path):
    with socket.socket() as taken:
        taken.bind((HOST, 0))
        taken.listen()
        port = taken.getsockname()[1]
        rx = Receivers.for_rig(_rig(tmp_path, ftp_port=port))
        with pytest.raises(ReceiverUnavailable) as err:
            rx.start()
    assert isinstance(err.value, BenchError)
    assert (err.value.table, err.value.receiver, err.value.address) == (
        "receivers.ftp",
        "FTP",
        f"{HOST}:{port}",
    )
    assert "[Errno 98] Address already in use" in str(err.value) and "bench-rx" in str(err.value)
    assert rx.all() == {}  # the HTTP receiver started first was stopped again


def test_parse_hook_result_and_error_are_kept(http):
    http.recover()
    http.parse = lambda r: r.data.count(b"\n")
    try:
        report = Report(http.url("/p"), BODY, "text/plain", _auth())
        HttpPost(timeout=TIMEOUT_S).deliver(report)
        http.parse = lambda r: int(r.data)
        HttpPost(timeout=TIMEOUT_S).deliver(report)
    finally:
        http.parse = None
    ok, bad = http.received[-2:]
    assert (ok.parsed, ok.parse_error) == (2, "")
    assert bad.parsed is None and bad.parse_error.startswith("ValueError")


def test_rig_receivers_table_is_validated_with_file_and_line(tmp_path):
    from simulator.scenario import ScenarioError

    path = tmp_path / "lab.toml"
    path.write_text(
        'name = "lab"\n'
        'mode = "lab"\n'
        "[[transports]]\n"
        'name = "dut"\n'
        'url = "/dev/ttyUSB0"\n'
        "[receivers.http]\n"
        'host = "127.0.0.1"\n'  # line 7: a physical gateway cannot reach the loopback
        "port = 8080\n"
        "[receivers.ftp]\n"
        'host = "0.0.0.0"\n'
        "port = 8080\n"  # line 11: the HTTP receiver's port on every address
    )
    with pytest.raises(ScenarioError) as err:
        load_rig(path)
    issues = {i.key: i for i in err.value.issues}
    # 0.0.0.0 on a lab rig also needs [push] bench_host: the address the unit is told
    assert set(issues) == {"receivers.http.host", "receivers.ftp.port", "receivers.ftp.host"}
    assert "bench_host" in str(issues["receivers.ftp.host"])
    assert issues["receivers.http.host"].line == 7 and "loopback" in str(err.value)
    assert issues["receivers.ftp.port"].line == 11 and "http receiver" in str(err.value)
    path.write_text('name = "x"\n[receivers.smtp]\nport = 70000\nfolder = "x"\n')
    with pytest.raises(ScenarioError) as err:
        load_rig(path)
    assert {(i.key, i.line) for i in err.value.issues} == {
        ("receivers.smtp.port", 3),
        ("receivers.smtp.folder", 4),
    }
