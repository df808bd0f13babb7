"""A lab rig end to end, with a stand-in for the physical gateway.

The "gateway" is a small pyserial program started by the rig's trigger command; it opens the
bench's pty (through the rig's stable link) and reads a meter by primary address with its own
idle times. The same trace checks the suite uses then run on what the bridge observed.
"""

from __future__ import annotations

import sys
import textwrap

import pytest

from simulator.rig import load_rig
from simulator.testing.bench import Bench, MeterSpec
from simulator.testing.observe import idle_gaps, requests_to

pytestmark = pytest.mark.timeout(60)

GATEWAY = textwrap.dedent("""
    import sys, time, serial
    link, procedure, target = sys.argv[1], sys.argv[2], int(sys.argv[3])
    assert procedure == "read"
    with serial.Serial(link, 2400, timeout=1.0) as port:
        time.sleep(0.1)
        port.write(bytes([0x10, 0x40, target, (0x40 + target) & 0xFF, 0x16]))  # SND_NKE
        assert port.read(1) == b"\\xe5"
        time.sleep(0.3)                                                      # init idle
        c = 0x7B
        port.write(bytes([0x10, c, target, (c + target) & 0xFF, 0x16]))       # REQ_UD2
        head = port.read(4)
        assert head[:1] == b"\\x68", head
        port.read(head[1] + 2)
""")


def test_lab_rig_bench_observes_a_gateway_through_the_bridge(tmp_path):
    script = tmp_path / "gateway.py"
    script.write_text(GATEWAY)
    link = tmp_path / "ttyDUT"
    rig_file = tmp_path / "lab.toml"
    rig_file.write_text(
        textwrap.dedent(f"""
        name = "lab-standin"
        mode = "lab"
        features = []
        [dut]
        model = "stand-in gateway"
        trigger = "{sys.executable} {script} {link} {{procedure}} {{target}}"
        quiet_s = 0.5
        [dut.mbus]
        init_idle_ms = 250
        [[transports]]
        name = "dut"
        pty = true
        pty_link = "{link}"
    """)
    )
    rig = load_rig(rig_file)
    bench = Bench(rig)
    try:
        run = bench.setup([MeterSpec(12345678, primary=3)])
        assert run.dut.read(3) is None  # a physical DUT only shows what it did on the wire
        trace = run.trace
        assert len(requests_to(trace, "SND_NKE", 3)) == 1
        assert len(requests_to(trace, "REQ_UD2", 3)) == 1
        init = [g.seconds for g in idle_gaps(trace) if g.rule == "init_idle"]
        assert init and init[0] >= rig.dut.mbus.seconds("init_idle")
        rsp = [e for e in trace.select("frame", direction="s2m") if e["outcome"] == "ok"]
        assert rsp[-1]["summary"].startswith("RSP_UD a=3")
        assert all(e.wall is not None for e in trace.select("bridge_bytes"))
    finally:
        bench.teardown()
    assert not link.exists()
