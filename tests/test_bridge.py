"""The serial bridge against the simulated bus in real time: timing, robustness, options.

A real master would be a gateway; here the test is the master, writing requests on the far
end of a pty (or a TCP socket) and timing what comes back. Kept short: each test runs a
real-time world for well under two seconds.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import serial

from simulator.bridge.pty import PtyTransport
from simulator.bridge.realtime import RealtimeDriver
from simulator.bridge.serve import BridgeService
from simulator.bridge.tcp_service import TcpServerTransport
from simulator.core.trace_schema import validate_trace
from simulator.core.world import World
from simulator.mbus.bus import Bus
from simulator.mbus.slave import ResponseDelay
from simulator.mbus.wire import response_window
from simulator.testing.bench import MeterSpec

pytestmark = pytest.mark.timeout(60)

SND_NKE_1 = bytes.fromhex("1040014116")
REQ_UD2_1 = bytes.fromhex("105b015c16")
# fixed reply delay of 20 ms: inside the 2400 bit/s window (4.58 .. 187.5 ms)
FIXED_20MS = ResponseDelay(0.020, 0.020, unit="s")


def make_service(meters, *, baud=2400, transport=None, **options):
    world = World(7, realtime=True)
    bus = Bus(world, baud=baud)
    for m in meters:
        bus.attach(m.build(world))
    service = BridgeService(world, bus)
    transport = transport or PtyTransport()
    service.attach(transport, **options)
    return service.start(), transport


def read_exactly(port, n: int, timeout: float = 2.0) -> bytes:
    out = b""
    end = time.monotonic() + timeout
    while len(out) < n and time.monotonic() < end:
        out += port.read(n - len(out))
    return out


def read_stamped(port, n: int) -> tuple[bytes, list[float]]:
    """``n`` bytes read one by one, each with the monotonic time (s) it was seen.

    A stamp is never earlier than the byte's write, but a loaded machine can wake this reader
    late (4 ms scheduler ticks), so a single gap between two stamps says little; a span over
    many characters does.
    """
    data, stamps = b"", []
    for _ in range(n):
        byte = port.read(1)
        stamps.append(time.monotonic())
        assert byte, f"timed out after {len(data)} of {n} bytes"
        data += byte
    return data, stamps


def test_reply_starts_after_the_modelled_delay_and_is_paced():
    # Three readouts of one meter. Scheduling latency only ever adds to a measured delay, so
    # every delay is at least the slave's 20 ms and the best one shows where the bridge put
    # the reply; pacing is judged over the whole reply (~60 characters, ~0.3 s), where a
    # late wake-up of this reader moves the span by a few ms and a burst would collapse it.
    service, pty = make_service([MeterSpec(11111111, primary=1, delay=FIXED_20MS)])
    delays, spans = [], []
    try:
        with serial.Serial(pty.path, 2400, timeout=1.0) as port:
            time.sleep(0.05)  # let the bridge notice the terminal is open
            for _ in range(3):
                t0 = time.monotonic()
                port.write(REQ_UD2_1)
                head, stamps = read_stamped(port, 4)
                assert head[0] == head[3] == 0x68 and head[1] == head[2]
                tail, more = read_stamped(port, head[1] + 2)
                assert tail[-1] == 0x16
                stamps += more
                frame_end = t0 + 5 * 11 / 2400  # the request occupies the wire 22.9 ms
                delays.append(stamps[0] - frame_end)
                spans.append((stamps[-1] - stamps[0], len(stamps)))
                time.sleep(0.05)
    finally:
        service.stop()
    lo, _hi = response_window(2400)
    assert lo < 0.020 - 0.001
    assert all(d >= 0.020 - 0.001 for d in delays), delays  # never before the slave's 20 ms
    assert min(delays) == pytest.approx(0.020, abs=0.008), delays
    for span, n in spans:  # paced: one character time (11 bits) apart, not a burst
        assert span == pytest.approx((n - 1) * 11 / 2400, abs=0.02), (span, n)
    for ex in service.world.trace.select("bridge_exchange"):
        assert ex["delay"] == pytest.approx(0.020, abs=1e-6)


def test_master_unplug_and_replug_keeps_the_world_running():
    service, pty = make_service([MeterSpec(11111111, primary=1)])
    try:
        port = serial.Serial(pty.path, 2400, timeout=1.0)
        port.write(SND_NKE_1)
        assert port.read(1) == b"\xe5"
        port.close()  # USB unplug as the bridge sees it
        time.sleep(0.2)
        t_before = service.world.now
        with serial.Serial(pty.path, 2400, timeout=1.0) as again:
            time.sleep(0.05)
            again.write(SND_NKE_1)
            assert again.read(1) == b"\xe5"
        assert service.world.now > t_before
    finally:
        service.stop()
    states = [e["state"] for e in service.world.trace.select("bridge_port")]
    assert "gone" in states and states[-1] in ("back", "gone")
    assert states.count("back") >= 1
    assert len(service.world.trace.select("bridge_exchange")) == 2


def test_line_noise_is_logged_and_skipped():
    service, pty = make_service([MeterSpec(11111111, primary=1)])
    try:
        with serial.Serial(pty.path, 2400, timeout=1.0) as port:
            time.sleep(0.05)
            port.write(b"\x00\xff\x55\xaa\x13" + SND_NKE_1)
            assert port.read(1) == b"\xe5"
            port.write(SND_NKE_1[:3])  # a frame cut short, then silence
            time.sleep(0.1)
            port.write(SND_NKE_1)
            assert port.read(1) == b"\xe5"
    finally:
        service.stop()
    junk = service.world.trace.select("bridge_junk")
    assert [j["hex"] for j in junk] == ["00ff55aa13", "104001"]
    assert "incomplete frame" in junk[1]["reason"]


def test_echo_writes_the_masters_bytes_back_first():
    service, pty = make_service([MeterSpec(11111111, primary=1)], echo=True)
    try:
        with serial.Serial(pty.path, 2400, timeout=1.0) as port:
            time.sleep(0.05)
            port.write(SND_NKE_1)
            assert read_exactly(port, 6) == SND_NKE_1 + b"\xe5"
    finally:
        service.stop()
    assert service.world.trace.select("bridge_bytes", direction="echo")[0]["hex"] == SND_NKE_1.hex()


def test_collision_is_written_as_the_garbled_bytes_the_model_produced():
    # two meters on one primary address: both answer, their replies collide on the wire
    meters = [
        MeterSpec(11111111, primary=1, delay=ResponseDelay(0.02, 0.02, "s")),
        MeterSpec(22222222, primary=1, delay=ResponseDelay(0.0215, 0.0215, "s")),
    ]
    service, pty = make_service(meters)
    try:
        with serial.Serial(pty.path, 2400, timeout=0.5) as port:
            time.sleep(0.05)
            port.write(SND_NKE_1)
            got = port.read(16)
    finally:
        service.stop()
    rx = [e for e in service.world.trace.select("frame", direction="s2m")]
    assert rx[0]["outcome"] == "collision" and len(rx[0]["senders"]) == 2
    assert got == bytes.fromhex(rx[0]["hex"]) and got != b"\xe5"


def test_follows_the_line_speed_the_master_sets_300_bit_s():
    service, pty = make_service(
        [
            MeterSpec(
                11111111, primary=1, baud=300, medium="gas", delay=ResponseDelay(0.05, 0.05, "s")
            )
        ]
    )
    try:
        with serial.Serial(pty.path, 300, timeout=2.0) as port:
            time.sleep(0.05)
            port.write(REQ_UD2_1)
            head, stamps = read_stamped(port, 12)  # the first 12 characters: 0.4 s at 300
            assert head[0] == head[3] == 0x68
    finally:
        service.stop()
    # 36.7 ms per character, judged over 11 gaps (see read_stamped), not 4.6 ms as at 2400
    assert stamps[-1] - stamps[0] == pytest.approx(11 * 11 / 300, abs=0.02)
    change = service.world.trace.select("bridge_baud")[0]
    assert (change["old"], change["new"]) == (2400, 300)


def test_acknowledged_baud_switch_moves_the_bridge():
    service, pty = make_service([MeterSpec(11111111, primary=1)])
    switch = bytes.fromhex("680303685301bd1116")  # SND_UD a=1 CI BD -> 9600 bit/s
    try:
        with serial.Serial(pty.path, 2400, timeout=1.0) as port:
            time.sleep(0.05)
            port.write(switch)
            assert port.read(1) == b"\xe5"  # acknowledged at the old rate
            port.write(SND_NKE_1)  # now at 9600 (a pty carries any rate)
            assert port.read(1) == b"\xe5"
    finally:
        service.stop()
    change = service.world.trace.select("bridge_baud")[0]
    assert (change["old"], change["new"]) == (2400, 9600)
    assert service.world.trace.select("bridge_exchange")[1]["baud"] == 9600


def test_tcp_one_client_at_a_time_idle_timeout_and_reconnect():
    tcp = TcpServerTransport("127.0.0.1", 0, idle_timeout=0.3)
    service, _ = make_service([MeterSpec(11111111, primary=1)], transport=tcp)
    addr = tcp.address
    try:
        first = socket.create_connection(addr, timeout=1.0)
        time.sleep(0.1)
        second = socket.create_connection(addr, timeout=1.0)
        assert second.recv(16) == b""  # refused: closed at once
        second.close()
        first.sendall(SND_NKE_1)
        assert first.recv(16) == b"\xe5"
        time.sleep(0.6)  # silent longer than the idle timeout: disconnected
        assert first.recv(16) == b""
        first.close()
        third = socket.create_connection(addr, timeout=1.0)
        time.sleep(0.1)
        third.sendall(SND_NKE_1)
        assert third.recv(16) == b"\xe5"
        third.close()
    finally:
        service.stop()
    assert tcp.rejected == 1 and tcp.clients == 2
    reasons = [e.get("reason", "") for e in service.world.trace.select("bridge_port", state="gone")]
    assert any("idle" in r for r in reasons)


def test_driver_maps_clocks_and_refuses_virtual_worlds():
    with pytest.raises(ValueError, match="realtime"):
        RealtimeDriver(World(1))
    d = RealtimeDriver(World(1, realtime=True))
    m = time.monotonic()
    assert d.mono_time(d.world_time(m)) == pytest.approx(m)


@pytest.mark.slow
def test_serve_command_over_tcp_with_a_scenario(tmp_path):
    scenario = tmp_path / "s.toml"
    scenario.write_text(
        'kind = "mbus"\nseed = 1\n[[slaves]]\ntemplate = "water"\nid = 12345678\nprimary = 4\n'
    )
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port_no = probe.getsockname()[1]
    probe.close()
    trace = tmp_path / "trace.jsonl"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "simulator.cli",
            "serve",
            str(scenario),
            "--tcp",
            f"127.0.0.1:{port_no}",
            "--seconds",
            "3",
            "--trace",
            str(trace),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parent,
    )
    try:
        assert "tcp: 127.0.0.1" in proc.stdout.readline()
        with serial.serial_for_url(f"socket://127.0.0.1:{port_no}", timeout=1.0) as port:
            port.write(bytes.fromhex("1040044416"))
            assert port.read(1) == b"\xe5"
        out, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "requests=1" in out and trace.is_file()
    assert '"kind":"bridge_exchange"' in trace.read_text()
    assert validate_trace(trace) == []  # bridge events (wall times included) match the schema


@pytest.mark.slow
def test_serve_command_stopped_by_sigterm_still_writes_its_trace(tmp_path):
    # kill, systemd and timeout stop a service with SIGTERM: it must end like Ctrl-C does
    scenario = tmp_path / "s.toml"
    scenario.write_text(
        'kind = "mbus"\nseed = 1\n[[slaves]]\ntemplate = "water"\nid = 12345678\nprimary = 4\n'
    )
    trace = tmp_path / "trace.jsonl"
    cmd = [sys.executable, "-m", "simulator.cli", "serve", str(scenario), "--tcp", "127.0.0.1:0"]
    proc = subprocess.Popen(
        [*cmd, "--trace", str(trace)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parent,
    )
    try:
        first = proc.stdout.readline()
        assert "tcp: 127.0.0.1:" in first
        port_no = int(first.split()[1].rsplit(":", 1)[1])
        assert "serving 1 simulated slave" in proc.stdout.readline()  # signal handlers set
        with serial.serial_for_url(f"socket://127.0.0.1:{port_no}", timeout=1.0) as port:
            port.write(bytes.fromhex("1040044416"))
            assert port.read(1) == b"\xe5"
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "requests=1" in out and trace.is_file()
    assert '"kind":"bridge_exchange"' in trace.read_text()
    assert validate_trace(trace) == []  # bridge events (wall times included) match the schema


PACED_MASTER = """
import sys, time, serial
path, rounds = sys.argv[1], int(sys.argv[2])
char = 11 / 2400
with serial.Serial(path, 2400, timeout=1.0) as port:
    port.write(bytes.fromhex("1040014116"))  # SND_NKE: the bridge is reading, not backing off
    assert port.read(1) == b"\\xe5"
    for _ in range(rounds):
        time.sleep(0.05)
        t_next = time.monotonic()
        for byte in bytes.fromhex("1040014116"):  # SND_NKE again, now paced at line rate
            while time.monotonic() < t_next:
                pass  # busy-wait: sleep() granularity would blur the pacing
            t_last = time.monotonic()  # before the write: a preemption right after the
            port.write(bytes([byte]))  # write can only lengthen the measured delay
            t_next += char
        first = port.read(1)
        print(time.monotonic() - t_last, first.hex())
"""


def test_paced_request_from_an_adapter_is_answered_after_its_last_byte():
    # A USB slave adapter delivers the master's request byte by byte at line rate: the frame
    # ended on the wire when its last byte arrived, so the reply must start the slave's delay
    # after that byte, not one request duration (22.9 ms at 2400 bit/s) later. The master is
    # another process, as a real one is (a busy loop in this process would starve the reader).
    # Scheduling latency on a loaded machine only ever adds to a measured delay (4 ms ticks),
    # so each delay must be at least the modelled 20 ms, and the best of several rounds shows
    # where the bridge put the reply: ~20 ms, not the ~43 ms of a request taken as a burst.
    rounds = 6
    service, pty = make_service([MeterSpec(11111111, primary=1, delay=FIXED_20MS)])
    try:
        out = subprocess.run(
            [sys.executable, "-c", PACED_MASTER, str(pty.path), str(rounds)],
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        ).stdout.split()
    finally:
        service.stop()
    delays, firsts = [float(d) for d in out[0::2]], out[1::2]
    assert firsts == ["e5"] * rounds
    assert all(d >= 0.020 - 0.001 for d in delays), delays  # never before the slave's delay
    assert min(delays) == pytest.approx(0.020, abs=0.008), delays
    exchanges = service.world.trace.select("bridge_exchange")[1:]
    requests = service.world.trace.select("frame", direction="m2s")[1:]
    assert len(exchanges) == len(requests) == rounds
    for ex, request in zip(exchanges, requests, strict=True):
        assert request["end"] == pytest.approx(ex["request_end"], abs=1e-6)
        assert ex["delay"] == pytest.approx(0.020, abs=1e-6)


def test_every_reply_in_the_window_reaches_the_master():
    # A wildcard selection (SND_UD CI 52, mask all F) matches three meters that answer E5
    # 5 ms, 60 ms and 120 ms after the request: three separate receptions, all inside the
    # 2400 bit/s window (187.5 ms). On a real wire the master sees all three E5.
    from simulator.mbus.address import SecondaryMask
    from simulator.mbus.frames import LongFrame

    delays = (0.005, 0.060, 0.120)
    meters = [
        MeterSpec(10000001 + i, primary=i + 1, delay=ResponseDelay(d, d, "s"))
        for i, d in enumerate(delays)
    ]
    select_all = LongFrame(0x53, 0xFD, 0x52, SecondaryMask.parse("F" * 16).to_bytes()).to_bytes()
    service, pty = make_service(meters)
    try:
        with serial.Serial(pty.path, 2400, timeout=1.0) as port:
            time.sleep(0.05)
            port.write(select_all)
            got = read_exactly(port, 3)
            port.timeout = 0.3
            extra = port.read(8)  # nothing beyond the three E5
            port.write(SND_NKE_1)  # the bridge still serves the next request
            assert read_exactly(port, 1) == b"\xe5"
    finally:
        service.stop()
    assert got == b"\xe5\xe5\xe5" and extra == b""
    trace = service.world.trace
    s2m = trace.select("frame", direction="s2m")
    assert [e["outcome"] for e in s2m] == ["ok"] * 4, s2m
    ex = trace.select("bridge_exchange")[0]
    assert ex["receptions"] == 3
    measured = [ex["delay"]] + [m["delay"] for m in ex["more"]]
    assert measured == pytest.approx(list(delays), abs=1e-6)
    # each E5 written at its own modelled instant (world time of the write vs. request end)
    written = [t for e in trace.select("bridge_bytes", direction="out") for t in e["byte_t"]]
    offsets = [t - ex["request_end"] for t in written[:3]]
    assert offsets == pytest.approx(list(delays), abs=0.015), offsets
