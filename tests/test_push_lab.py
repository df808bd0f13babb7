"""The push suite's lab path (simulator/testing/push_lab.py) on a pty, without hardware: the
bench's receivers, setup confirm, bridge and evidence, with a client playing the gateway (a
SND_NKE on the pty's other end, a real HTTP POST to the target the setup sheet names)."""

from __future__ import annotations

import base64
import re
import threading
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import serial
from test_push_setup import SPEC

from simulator.rig import TransportSpec, load_rig
from simulator.testing.push_lab import run_push_lab

LAB = Path(__file__).resolve().parent.parent / "rigs" / "lab-cme3100-push.toml"
SND_NKE_FD = bytes.fromhex("1040FD3D16")


def _post(url: str, body: bytes) -> int:
    req = urllib.request.Request(url, data=body, method="POST")
    req.add_header("Authorization", "Basic " + base64.b64encode(b"gw:pw-http").decode())
    req.add_header("Content-Type", "text/plain")
    with urllib.request.urlopen(req, timeout=5) as resp:
        return resp.status


def test_a_lab_pass_on_a_pty_gives_wire_frames_and_mapped_arrivals(tmp_path):
    link = tmp_path / "dut"
    rig = load_rig(LAB).model_copy(
        update={
            "transports": [TransportSpec(name="dut", pty=True, pty_link=str(link))],
            "receivers": SPEC,
        }
    )
    shown: list[str] = []
    played: list[int] = []

    def gateway(sheet: str) -> None:  # plays the unit once the bridge listens
        url = re.search(r"\| values-http \| \d+ \| `([^`]+)`", sheet).group(1)
        stray = url.rsplit("/", 1)[0] + "/not-a-report"
        time.sleep(1.0)
        with serial.Serial(str(link), 2400, timeout=0.5) as port:
            port.write(SND_NKE_FD)
            port.flush()
            played.append(len(port.read(1)))  # the E5 of the meter at FD? none selected: 0
        played.append(_post(url, b"ID;value\n12345678;42\n"))
        played.append(_post(stray, b"x"))

    def confirm(sheet: str) -> bool:
        shown.append(sheet)
        threading.Thread(target=gateway, args=(sheet,), daemon=True).start()
        return True

    before = datetime.now(UTC)
    ev = run_push_lab(rig, tmp_path / "run", confirm, hours=4 / 3600)

    assert shown and "values-http" in shown[0]
    assert (tmp_path / "run" / "setup" / "meterlist.csv").is_file()
    assert played[1:] == [200, 200], played
    sent = [f for f in ev.frames if f["direction"] == "m2s"]
    assert [f["hex"].upper() for f in sent] == [SND_NKE_FD.hex().upper()]
    hour = ev.start
    assert hour.minute == hour.second == 0 and 0 <= (before - hour).total_seconds() < 3600
    begun = (before - hour).total_seconds()  # bench s of the run's start
    assert 0.5 < sent[0]["t"] - begun < 4.0
    got = ev.arrivals["values-http"]
    assert len(got) == 1 and got[0].delivery.ok and got[0].report.body == b"ID;value\n12345678;42\n"
    assert sent[0]["t"] < got[0].t < begun + 4.5
    assert all(not v for k, v in ev.arrivals.items() if k != "values-http")  # stray: unmapped
    assert ev.reports["values-http"]["period_s"] == 900.0
    assert ev.active and len(ev.active) + len(ev.passive) > len(ev.active)
    wire = (tmp_path / "run" / "wire.log").read_text()  # the bridge's raw bytes, stamped
    got_bytes = [ln for ln in wire.splitlines() if " bridge_bytes in " in ln]
    assert got_bytes and SND_NKE_FD.hex().upper() in got_bytes[0].upper(), wire
    stamp = datetime.fromisoformat(got_bytes[0].split(" ", 1)[0])
    assert 0.5 < (stamp - before).total_seconds() < 4.0


def test_the_lab_receivers_play_the_rigs_outage_plan(tmp_path):
    """Issue 12: in the lab the receivers fail as the rig's [[push.outages]] say, timed from the
    pass's start, so the retry and recovery checks see a failing head-end."""
    import urllib.error

    from simulator.sinks.outages import OutageModel

    link = tmp_path / "dut"
    push = load_rig(LAB).push.model_copy(
        update={"outages": [OutageModel(protocol="http", start_h=0, hours=2.5 / 3600, fault="5xx")]}
    )
    rig = load_rig(LAB).model_copy(
        update={
            "transports": [TransportSpec(name="dut", pty=True, pty_link=str(link))],
            "receivers": SPEC,
            "push": push,
        }
    )
    codes: list[int] = []

    def gateway(sheet: str) -> None:
        url = re.search(r"\| values-http \| \d+ \| `([^`]+)`", sheet).group(1)
        for wait in (0.8, 2.7):  # inside the outage, then after it
            time.sleep(wait)
            try:
                codes.append(_post(url, b"ID;value\n12345678;42\n"))
            except urllib.error.HTTPError as exc:
                codes.append(exc.code)

    def confirm(sheet: str) -> bool:
        threading.Thread(target=gateway, args=(sheet,), daemon=True).start()
        return True

    ev = run_push_lab(rig, tmp_path / "run", confirm, hours=4.5 / 3600)
    assert codes == [503, 200], codes
    got = ev.arrivals["values-http"]
    assert [a.delivery.ok for a in got] == [False, True]
    assert got[0].delivery.reason == "5xx" and got[0].delivery.status == 503


def test_snmp_check_on_a_lab_rig_reads_the_units_agent_or_errors_as_a_bench_fault():
    """Issue 12: on a lab rig the SNMP check reads the unit's agent ([dut] snmp); a rig that
    names none is a bench fault (BenchError -> ERROR), not the gateway's failure."""
    import pytest

    from simulator.testing.bench import BenchError
    from simulator.testing.push_bench import snmp_agent_of

    rig = load_rig(LAB)
    with pytest.raises(BenchError, match=r"\[dut\] snmp names no SNMP agent"):
        with snmp_agent_of(None, rig):
            pass
    dut = rig.dut.model_copy(update={"snmp": "192.0.2.20:1161", "snmp_community": "ops"})
    with snmp_agent_of(None, rig.model_copy(update={"dut": dut})) as agent:
        assert agent == ("192.0.2.20", 1161, "ops")
    dut = rig.dut.model_copy(update={"snmp": "gw.lab"})
    assert dut.snmp_address() == ("gw.lab", 161)


def test_rig_outage_plans_are_checked_when_the_rig_loads(tmp_path):
    """A sim rig plays the scenario's outages, so [[push.outages]] there is a mistake; a lab
    outage needs the receiver of its protocol; a bad [dut] snmp is named."""
    import pytest

    from simulator.scenario import ScenarioError

    text = LAB.read_text().replace('"../fixtures/', f'"{LAB.parent.parent}/fixtures/')
    bad = text.replace('mode = "lab"', 'mode = "sim"').replace('url = "/dev/ttyUSB0"', "pty = true")
    (tmp_path / "sim.toml").write_text(bad)
    with pytest.raises(ScenarioError, match="only a lab rig plays"):
        load_rig(tmp_path / "sim.toml")
    no_http = re.sub(r"\[receivers\.http\]\n(.+\n)+?\n", "", text)
    assert "[receivers.http]" not in no_http
    (tmp_path / "lab.toml").write_text(no_http.replace('serial = ""', 'serial = ""\nsnmp = "a b"'))
    with pytest.raises(ScenarioError) as err:
        load_rig(tmp_path / "lab.toml")
    msg = str(err.value)  # both problems at once
    assert "'a b' is not host or host:port" in msg and "needs [receivers.http]" in msg, msg
