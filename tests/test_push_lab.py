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
