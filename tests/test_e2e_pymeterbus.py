"""End to end: an independent M-Bus master (pymeterbus) reads the simulated bus through the
bridge, over a pseudo-terminal and over the transparent M-Bus TCP service.

The scenario's slaves replay two golden telegrams from fixtures/telegrams; the expected values
come from the fixtures' hand-checked JSON, so neither side of the comparison is our decoder.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import meterbus
import pytest
import serial

from simulator.bridge.pty import PtyTransport
from simulator.bridge.serve import BridgeService, realtime_segment
from simulator.bridge.tcp_service import TcpServerTransport
from simulator.mbus.wire import response_window

ROOT = Path(__file__).resolve().parent.parent
TELEGRAMS = ROOT / "fixtures" / "telegrams"
HEAT = "handmade_heat_meter"  # primary 5
KAMSTRUP = "kamstrup_multical_601"  # unconfigured (primary 0), read by secondary address
KAMSTRUP_ADDRESS = "068558172D2C0804"

pytestmark = pytest.mark.timeout(60)


def expected(name: str) -> list:
    doc = json.loads((TELEGRAMS / f"{name}.json").read_text())
    return [
        r["value"]
        for r in doc["decode"]["records"]
        if isinstance(r["value"], int | float) and not isinstance(r["value"], bool)
    ]


def numeric(values) -> list:
    out = []
    for v in values:
        if isinstance(v, Decimal | int | float) and not isinstance(v, bool):
            out.append(float(v))
    return out


@pytest.fixture
def scenario(tmp_path) -> Path:
    path = tmp_path / "e2e.toml"
    path.write_text(
        'kind = "mbus"\nname = "e2e"\nseed = 3\n[bus]\nbaud = 2400\n'
        f'[[slaves]]\ntelegram = "{TELEGRAMS / (HEAT + ".hex")}"\nprimary = 5\n'
        f'[[slaves]]\ntelegram = "{TELEGRAMS / (KAMSTRUP + ".hex")}"\n'
    )
    return path


def serve(scenario: Path, transport):
    seg = realtime_segment(scenario)
    service = BridgeService(seg.world, seg.bus)
    service.attach(transport)
    return service.start()


def read_primary_and_secondary(port) -> tuple[list, list]:
    meterbus.send_ping_frame(port, 5)  # SND_NKE a=5
    assert meterbus.recv_frame(port, 1) == b"\xe5"
    meterbus.send_request_frame(port, 5)  # REQ_UD2 a=5
    heat = meterbus.load(meterbus.recv_frame(port, 1))
    meterbus.send_select_frame(port, KAMSTRUP_ADDRESS)  # SND_UD CI 52 to 253
    assert meterbus.recv_frame(port, 1) == b"\xe5"
    meterbus.send_request_frame(port, meterbus.ADDRESS_NETWORK_LAYER)  # REQ_UD2 a=253
    kam = meterbus.load(meterbus.recv_frame(port, 1))
    return [r.value for r in heat.records], [r.value for r in kam.records]


def check_values(heat_values, kam_values) -> None:
    assert numeric(heat_values)[:6] == pytest.approx(expected(HEAT)[:6])
    assert numeric(kam_values)[:6] == pytest.approx(expected(KAMSTRUP)[:6])


def check_trace(trace) -> None:
    ins = trace.select("bridge_bytes", direction="in")
    outs = trace.select("bridge_bytes", direction="out")
    assert ins and outs
    for ev in ins + outs:  # every byte with world and wall times
        assert ev.wall is not None and len(ev["byte_t"]) == len(ev["byte_wall"]) == ev["n"]
    assert sum(e["n"] for e in ins) == 5 + 5 + 17 + 5
    replies = trace.select("bridge_exchange")
    requests = trace.select("frame", direction="m2s")
    assert len(requests) == len(replies)
    assert [f["function"] for f in requests] == ["SND_NKE", "REQ_UD2", "SND_UD", "REQ_UD2"]
    lo, hi = response_window(2400)
    for r in replies:
        assert lo <= r["delay"] <= hi  # the modelled delay, inside EN 13757-2's window
    written = b"".join(bytes.fromhex(e["hex"]) for e in outs)
    assert written == b"".join(bytes.fromhex(r["reply"]) for r in replies)


def test_pymeterbus_reads_through_the_pty(scenario):
    pty = PtyTransport()
    service = serve(scenario, pty)
    try:
        with serial.Serial(pty.path, 2400, parity=serial.PARITY_NONE, timeout=1.0) as port:
            heat, kam = read_primary_and_secondary(port)
    finally:
        service.stop()
    check_values(heat, kam)
    check_trace(service.world.trace)


def test_pymeterbus_reads_through_the_tcp_service(scenario):
    tcp = TcpServerTransport("127.0.0.1", 0)
    service = serve(scenario, tcp)
    try:
        host, port_no = tcp.address
        with serial.serial_for_url(f"socket://{host}:{port_no}", timeout=1.0) as port:
            heat, kam = read_primary_and_secondary(port)
    finally:
        service.stop()
    check_values(heat, kam)
    check_trace(service.world.trace)
