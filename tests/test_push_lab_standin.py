"""The push suite's lab path end to end without hardware: run_push_lab on a pty with the
project's CMe3100 model as the "physical" gateway in a separate real-time process
(tests/standin_cme3100.py), set up from the CAD the bench wrote, reading the bench's meters
over the pty and pushing raw-telegram reports (x001) to the bench's HTTP receiver.

Real duration: about 150 s (readout and report every minute, fixtures/scenarios/
cme3100-lab-standin.toml: 9 meters, licence 8). Opt-in, because it runs in real time with a
second process and a pty: ``MBENCH_LAB_STANDIN=1 python3 -m pytest
tests/test_push_lab_standin.py`` (it passed in 155 s on the 2-core development machine)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from simulator.rig import HttpReceiverSpec, PushBench, ReceiversSpec, TransportSpec, load_rig
from simulator.testing import push_checks as pc
from simulator.testing.push_lab import run_push_lab

ROOT = Path(__file__).resolve().parent.parent
LAB = ROOT / "rigs" / "lab-cme3100-push.toml"
SCENARIO = ROOT / "fixtures" / "scenarios" / "cme3100-lab-standin.toml"
RUN_S = 150.0


@pytest.mark.slow
@pytest.mark.skipif(
    os.environ.get("MBENCH_LAB_STANDIN") != "1",
    reason="150 s in real time with a stand-in gateway process: set MBENCH_LAB_STANDIN=1",
)
def test_the_lab_path_passes_values_schedule_and_licence_with_a_stand_in_gateway(tmp_path):
    link = tmp_path / "dut"
    rig = load_rig(LAB).model_copy(
        update={
            "transports": [TransportSpec(name="dut", pty=True, pty_link=str(link))],
            "receivers": ReceiversSpec(
                http=HttpReceiverSpec(path="/bench", user="gw", password="pw-http")
            ),
            "push": PushBench(scenario=str(SCENARIO), hours=RUN_S / 3600),
        }
    )
    out = tmp_path / "run"
    procs: list[subprocess.Popen] = []

    def confirm(sheet: str) -> bool:  # the "operator" powers the stand-in up with the CAD
        cad = out / "setup" / "cme3100.cad"
        cmd = [sys.executable, str(ROOT / "tests" / "standin_cme3100.py")]
        cmd += [str(link), str(SCENARIO), str(cad), str(RUN_S)]
        procs.append(subprocess.Popen(cmd, cwd=ROOT, stderr=subprocess.PIPE, text=True))
        return True

    try:
        ev = run_push_lab(rig, out, confirm)
    finally:
        for p in procs:
            p.kill()
            err = p.communicate()[1]
    assert ev.active == [f"9100000{i}" for i in range(1, 9)] and ev.passive == ["92000001"], err
    got = ev.arrivals["values-http"]
    assert [a for a in got if a.delivery.ok], f"no report arrived; stand-in said:\n{err}"
    assert pc.check_values(ev) == []
    assert len({m for _, m in ev.selected()}) == 8  # the passive meter never selected
    end = max(f["end"] for f in ev.frames)
    assert pc.check_schedule(ev, 60.0, 10.0, end + 60.0) == []
