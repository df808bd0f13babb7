"""The push suite's lab path (simulator/testing/push_lab.py) for FTP, mail and SNMP traps, on a
pty without hardware: a client plays the gateway with the project's real clients (an FTP
upload into the report's folder, an e-mail to the report's recipient through the SMTP server
the setup sheet names, an SNMP INFORM to the sheet's trap receiver) and the evidence must map
each arrival to its report with the answer the receiver gave (tests/test_push_lab.py does
HTTP)."""

from __future__ import annotations

import re
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from test_push_setup import SPEC

from simulator.gateways.cme3100.snmp import (
    SNMP_TRAP_OID,
    STATUS_CHANGE,
    STATUS_REPORT,
    SYS_UPTIME,
    Notification,
    Status,
    TrapRecipient,
)
from simulator.gateways.cme3100.snmp_agent import InformSender
from simulator.rig import TransportSpec, load_rig
from simulator.sinks.base import Report
from simulator.sinks.ftp_client import FtpUpload
from simulator.sinks.outages import OutageModel
from simulator.sinks.receiver import FtpMeta, Received, SmtpMeta
from simulator.sinks.smtp_client import SmtpSend
from simulator.testing.push_lab import report_of, run_push_lab
from simulator.testing.push_setup import gateway_setup

LAB = Path(__file__).resolve().parent.parent / "rigs" / "lab-cme3100-push.toml"
CSV = b"ID;value\r\n12345678;42\r\n"
SND_NKE_FD = bytes.fromhex("1040FD3D16")
MAIL = b"From: gw@cme3100.lab\r\nSubject: values\r\n\r\n12345678;42\r\n"


def _rig(tmp_path: Path, outages: list | None = None):
    rig = load_rig(LAB)
    push = rig.push.model_copy(update={"outages": outages or []})
    link = str(tmp_path / "dut")
    return rig.model_copy(
        update={
            "transports": [TransportSpec(name="dut", pty=True, pty_link=link)],
            "receivers": SPEC,
            "push": push,
        }
    )


class Gateway:
    """Plays the unit from the setup sheet alone: the targets, logins and servers it names."""

    def __init__(self, sheet: str) -> None:
        ftp = re.search(r"\| values-ftp \| \d+ \| `([^`]+)` \| (\S+) / (\S+) \|", sheet)
        self.ftp_folder, self.ftp_login = ftp.group(1), (ftp.group(2), ftp.group(3))
        self.mail_to = re.search(r"\| values-mail \| \d+ \| `([^`]+)`", sheet).group(1)
        smtp = re.search(r"SMTP server \(mail reports\): `([^`]+)` port (\d+)", sheet)
        self.smtp = (smtp.group(1), int(smtp.group(2)))
        traps = re.search(r"community `([^`]+)`, trap receivers `([^`:]+):(\d+)`", sheet)
        self.community = traps.group(1)
        self.trap_to = TrapRecipient(traps.group(2), int(traps.group(3)))
        self.got: dict[str, list] = {"ftp": [], "mail": [], "trap": []}

    def push_ftp(self, name: str) -> None:
        report = Report(f"{self.ftp_folder}/{name}", (CSV,), "text/csv")
        self.got["ftp"].append(FtpUpload(*self.ftp_login, timeout=3).deliver(report))

    def push_mail(self) -> None:
        report = Report(self.mail_to, (MAIL,), "message/rfc822", (("From", "gw@cme3100.lab"),))
        self.got["mail"].append(SmtpSend(*self.smtp, timeout=3).deliver(report))

    def trap(self, new: Status) -> None:
        sender = InformSender(self.community)
        try:
            n = Notification(0.0, self.trap_to, Status.OK, new, uptime_cs=4200)
            self.got["trap"].append(sender.deliver(n, retries=0, timeout_ms=2000))
        finally:
            sender.close()


def _run(tmp_path, rig, play, seconds: float):
    gateways: list[Gateway] = []

    def confirm(sheet: str) -> bool:
        gateways.append(Gateway(sheet))
        threading.Thread(target=play, args=(gateways[0],), daemon=True).start()
        return True

    before = datetime.now(UTC)
    ev = run_push_lab(rig, tmp_path / "run", confirm, hours=seconds / 3600)
    return ev, gateways[0], (before - ev.start).total_seconds()  # bench s of the run's start


def test_ftp_mail_and_trap_arrivals_map_to_their_reports(tmp_path):
    def play(gw: Gateway) -> None:
        time.sleep(1.0)
        gw.push_ftp("values_0001.csv")
        gw.push_mail()
        gw.trap(Status.WARNING)

    ev, gw, begun = _run(tmp_path, _rig(tmp_path), play, 4.0)

    assert [d.ok for d in gw.got["ftp"]] == [True], gw.got["ftp"]  # the folder is there
    assert [d.ok for d in gw.got["mail"]] == [True], gw.got["mail"]
    assert [d.ok for d in gw.got["trap"]] == [True], gw.got["trap"]  # INFORM acknowledged
    ftp = ev.arrivals["values-ftp"]
    assert len(ftp) == 1 and ftp[0].delivery.ok and ftp[0].delivery.status == 226
    assert ftp[0].report.body == CSV and ftp[0].report.header("Filename") == "values_0001.csv"
    mail = ev.arrivals["values-mail"]
    assert len(mail) == 1 and mail[0].delivery.ok and mail[0].delivery.status == 250
    assert b"12345678;42" in mail[0].report.body and mail[0].report.target == gw.mail_to
    others = {k: v for k, v in ev.arrivals.items() if k not in ("values-ftp", "values-mail")}
    assert not any(others.values()), others  # nothing else arrived; the trap is no report
    assert 0.5 < ftp[0].t - begun < 4.0 and ftp[0].t <= mail[0].t
    (trap,) = ev.traps
    assert trap.acknowledged and mail[0].t <= trap.t < begun + 4.5
    assert list(trap.varbinds)[:2] == [SYS_UPTIME, SNMP_TRAP_OID]
    assert trap.varbinds[SYS_UPTIME] == 4200 and trap.trap_oid == STATUS_CHANGE
    assert trap.status == trap.varbinds[STATUS_REPORT + (0,)] == int(Status.WARNING)


def test_ftp_and_mail_attempts_cut_short_by_an_outage_count_for_their_report(tmp_path):
    """A refused FTP connection and a mail login failure never name their report (no file,
    no recipient); with one report per protocol they are still that report's failed
    attempts, so the retry check sees them."""
    window = 2.5 / 3600
    outages = [
        OutageModel(protocol="ftp", start_h=0, hours=window, fault="refuse"),
        OutageModel(protocol="mail", start_h=0, hours=window, fault="auth"),
    ]

    def play(gw: Gateway) -> None:
        for wait, name in ((0.8, "values_0001.csv"), (2.2, "values_0002.csv")):
            time.sleep(wait)  # inside the outage, then after it
            gw.push_ftp(name)
            gw.push_mail()

    ev, gw, _ = _run(tmp_path, _rig(tmp_path, outages), play, 4.5)

    assert [d.ok for d in gw.got["ftp"]] == [False, True], gw.got["ftp"]
    assert [(d.ok, d.status) for d in gw.got["mail"]] == [(False, 535), (True, 250)]
    ftp, mail = ev.arrivals["values-ftp"], ev.arrivals["values-mail"]
    assert [(a.delivery.ok, a.delivery.reason) for a in ftp] == [(False, "refuse"), (True, "")]
    assert [(a.delivery.ok, a.delivery.status) for a in mail] == [(False, 535), (True, 250)]
    assert mail[0].delivery.reason == "auth" and ev.traps == []


def test_report_of_by_folder_and_recipient_without_a_run(tmp_path):
    """The mapping alone: the FTP folder from the file's path (not the receiver's disk
    root), a recipient in any case or in brackets, and a failure that names no report is
    left out when the protocol has two reports (which one is unknown)."""
    from simulator.testing.receivers import Receivers

    rig = _rig(tmp_path)
    with Receivers(SPEC, rig_name="t") as rx:
        settings = gateway_setup(rig, rx).settings

    def rec(protocol, meta, status=226, fault=None):
        return Received(protocol, 0.0, 0.0, b"", "127.0.0.1:1", meta, status, fault)

    root = "/tmp/meterbench-ftp-x"
    assert report_of(rec("ftp", FtpMeta("ftpgw", "/push/a.csv", "a.csv", root)), settings) == (
        "values-ftp"
    )
    assert (
        report_of(rec("ftp", FtpMeta("ftpgw", "/elsewhere/a.csv", "a.csv", root)), settings) is None
    )
    shouted = SmtpMeta("gw@x", ("<METERS@head-end.invalid>",))
    assert report_of(rec("mail", shouted, 250), settings) == "values-mail"
    refused = rec("ftp", None, None, "refuse")
    assert report_of(refused, settings) == "values-ftp"
    two = settings.model_copy(
        update={
            "reports": [*settings.reports, settings.reports[2].model_copy(update={"name": "b"})]
        }
    )
    assert two.reports[2].protocol == "ftp"
    assert report_of(refused, two) is None


def test_each_lab_tests_evidence_folder_gets_the_wire_log_traps_and_reports(tmp_path):
    """The suite on a pty lab rig (a pass of 3 s, operator auto, no gateway: the checks
    fail, which is fine here): every test's evidence folder holds the run's trace, the
    bridge's raw wire log, the received reports and the traps."""
    import subprocess
    import sys

    import pytest
    import serial

    root = LAB.parent.parent
    text = LAB.read_text().replace('"../fixtures/', f'"{root}/fixtures/')
    text = text.replace('url = "/dev/ttyUSB0"', f'pty = true\npty_link = "{tmp_path / "dut"}"')
    text = text.replace("hours = 2 ", f"hours = {3 / 3600} ")
    text = re.sub(r"\[\[push\.outages\]\]\n(.+\n)+?\n", "", text)
    host = _lan_address()  # a lab rig refuses loopback: the gateway could not reach it
    if host is None:
        pytest.skip("this host has no non-loopback IPv4 address to bind the receivers to")
    # receivers on every address, the unit given the bench's LAN address ([push] bench_host)
    text = re.sub(r'host = "192\.0\.2\.10"\nport = \d+', 'host = "0.0.0.0"\nport = 0', text)
    text = text.replace("[push]\n", f'[push]\nbench_host = "{host}"\n')
    assert '\nhost = "192.0.2.10"' not in text and "\n[[push.outages]]" not in text
    (tmp_path / "rig.toml").write_text(text)
    out = tmp_path / "evidence"
    tests = "every_reported_value or documented_events"
    done = threading.Event()

    def master() -> None:  # a master on the pty: the bridge's log must show its bytes
        while not done.wait(0.3):
            try:
                with serial.Serial(str(tmp_path / "dut"), 2400, timeout=0.2) as port:
                    port.write(SND_NKE_FD)
                    port.read(1)
            except (OSError, serial.SerialException):
                pass  # not there yet, or the adapter check's pty: try again

    threading.Thread(target=master, daemon=True).start()
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rig"]
        + [str(tmp_path / "rig.toml"), "-m", "cme3100", "-k", tests, "--operator", "auto"]
        + ["--mbench-evidence", str(out), "simulator/testing/suites"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=root,
    )
    done.set()
    assert "2 failed" in proc.stdout, proc.stdout[-3000:] + proc.stderr[-2000:]
    folders = sorted(p for p in out.iterdir() if p.is_dir())
    assert len(folders) == 2, folders
    for f in folders:
        names = {p.name for p in f.iterdir()}
        assert {"trace.jsonl", "wire.log", "received.json", "traps.json"} <= names, names
        assert "bridge_bytes in 1040fd3d16" in (f / "wire.log").read_text()  # bytes, stamped
    assert (folders[0] / "wire.log").read_bytes() == (folders[1] / "wire.log").read_bytes()


def _lan_address() -> str | None:
    """This host's IPv4 address on its default route (no packet is sent), None without one."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("198.51.100.1", 9))  # TEST-NET-2: only picks the route
        except OSError:
            return None
        address = s.getsockname()[0]
    return None if address.startswith("127.") else address


def test_a_lab_rig_binding_every_address_needs_the_bench_host(tmp_path):
    """Receivers on 0.0.0.0 cannot tell the unit where to push: without [push] bench_host
    the rig is refused when it loads (the suite used to stop later with a BenchError)."""
    import pytest

    from simulator.scenario import ScenarioError

    root = LAB.parent.parent
    text = LAB.read_text().replace('"../fixtures/', f'"{root}/fixtures/')
    text = text.replace('host = "192.0.2.10"\nport = 2121', 'host = "0.0.0.0"\nport = 2121')
    (tmp_path / "rig.toml").write_text(text)
    with pytest.raises(ScenarioError, match=r"receivers\.ftp\.host.*give \[push\] bench_host"):
        load_rig(tmp_path / "rig.toml")
    (tmp_path / "rig.toml").write_text(text.replace("[push]\n", '[push]\nbench_host = "gw-lan"\n'))
    assert load_rig(tmp_path / "rig.toml").push.bench_host == "gw-lan"
