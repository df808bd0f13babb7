"""Serial bridge timing over a real pseudo-terminal (real time: these run for seconds).

1. **Reply start delay at 2400 bit/s.** The slave is configured to answer at the earliest
   instant EN 13757-2 allows, 11 bit times (4.583 ms) after the request's last byte, so any
   extra delay is the bridge's. The master (this benchmark) writes SND_NKE on the pty and
   times the E5: delay = first reply byte - (write + 5 character times). Reported: min, p50,
   p99, max (ms) and the same minus the 11-bit-time floor.
2. **Bytes-paced throughput.** The pacer writes a 600-byte burst at 9600 bit/s (one byte per
   1.146 ms); reported: achieved bytes/s against the nominal 872.7 bytes/s, and the per-byte
   lateness against the due instants (p50, p99, max in ms).

3. **Reply window per baud (300, 2400, 9600 bit/s)**, against ``meterbench serve --pty`` in
   its own process (:class:`~simulator.testing.serve_process.ServeProcess`), the master in
   this one at libmbus cadence: SND_NKE to the meter (which answers at a delay drawn inside
   the EN 13757-2 window), then SND_NKE to an absent address, waiting the libmbus timeout
   ((330 + 11) bit times + 150 ms) for a reply that never comes, and so on. Reported per baud:
   replies whose first byte the master saw inside the window measured from its request's end
   (write + 5 character times), and the start jitter (seen - modelled delay, the modelled one
   from the trace's ``bridge_exchange``): p50, p99, max in ms. A bridge that waits out empty
   windows falls behind by ~60 ms per absent address at 300 bit/s and leaves the window.
   ``MBENCH_WINDOW_N="300:20,2400:60,9600:60"`` sets the replies per baud.

Run: ``pytest benches/bench_bridge.py --benchmark-only -s``; the figures are in
``extra_info`` and printed (``-k window`` for the per-baud table only).
"""

from __future__ import annotations

import os
import queue
import statistics
import tempfile
import time
from pathlib import Path

import serial

from simulator.bridge.pacing import PacedWriter, char_times
from simulator.bridge.pty import PtyTransport
from simulator.bridge.serve import BridgeService
from simulator.core.world import World
from simulator.mbus.bus import Bus
from simulator.mbus.slave import ResponseDelay
from simulator.mbus.wire import response_window
from simulator.testing.bench import MeterSpec
from simulator.testing.serve_process import ServeProcess

SND_NKE_1 = bytes.fromhex("1040014116")
EXCHANGES = 60


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def reply_delays(n: int = EXCHANGES) -> list[float]:
    floor = response_window(2400)[0]
    world = World(1, realtime=True)
    bus = Bus(world, baud=2400)
    bus.attach(MeterSpec(11111111, primary=1, delay=ResponseDelay(floor, floor, "s")).build(world))
    service = BridgeService(world, bus)
    pty = PtyTransport()
    service.attach(pty)
    service.start()
    delays = []
    try:
        with serial.Serial(pty.path, 2400, timeout=1.0) as port:
            time.sleep(0.1)
            for _ in range(n):
                t0 = time.monotonic()
                port.write(SND_NKE_1)
                reply = port.read(1)
                t1 = time.monotonic()
                assert reply == b"\xe5"
                delays.append(t1 - (t0 + 5 * 11 / 2400))
                time.sleep(0.02)  # a master's idle time; lets the bus close the reception
    finally:
        service.stop()
    return delays


def test_bench_reply_start_delay_2400(benchmark):
    delays = benchmark.pedantic(reply_delays, rounds=1, iterations=1)
    floor = response_window(2400)[0]
    ms = [d * 1000 for d in delays]
    info = {
        "exchanges": len(ms),
        "floor_ms": round(floor * 1000, 3),
        "min_ms": round(min(ms), 3),
        "p50_ms": round(_pct(ms, 50), 3),
        "p99_ms": round(_pct(ms, 99), 3),
        "max_ms": round(max(ms), 3),
        "p50_over_floor_ms": round(_pct(ms, 50) - floor * 1000, 3),
        "below_floor": sum(d < floor for d in delays),
    }
    benchmark.extra_info.update(info)
    print("\nreply start delay at 2400 bit/s (ms):", info)
    assert info["below_floor"] == 0


def paced_burst(n: int = 600, baud: int = 9600) -> tuple[float, list[float]]:
    pty = PtyTransport()
    done: queue.Queue = queue.Queue()
    writer = PacedWriter(pty, done.put)
    try:
        with serial.Serial(pty.path, baud, timeout=2.0) as port:
            pty.reopen()  # the program has it open: its session starts (the reader does this)
            time.sleep(0.05)
            start = time.monotonic() + 0.01
            due = char_times(start, n, baud)
            writer.submit(bytes(i & 0xFF for i in range(n)), due)
            got = b""
            while len(got) < n:
                chunk = port.read(n - len(got))
                assert chunk, "pty stalled"
                got += chunk
            w = done.get(timeout=5)
    finally:
        writer.stop()
        pty.close()
    rate = (n - 1) / (w.mono[-1] - w.mono[0])
    lateness = [(m - d) * 1000 for m, d in zip(w.mono, w.due, strict=True)]
    return rate, lateness


def test_bench_paced_throughput_9600(benchmark):
    rate, lateness = benchmark.pedantic(paced_burst, rounds=1, iterations=1)
    nominal = 9600 / 11
    info = {
        "bytes_per_s": round(rate, 1),
        "nominal_bytes_per_s": round(nominal, 1),
        "ratio": round(rate / nominal, 4),
        "lateness_p50_ms": round(statistics.median(lateness), 3),
        "lateness_p99_ms": round(_pct(lateness, 99), 3),
        "lateness_max_ms": round(max(lateness), 3),
    }
    benchmark.extra_info.update(info)
    print("\npaced writer at 9600 bit/s:", info)
    assert min(lateness) >= 0  # never early


WINDOW_N = {300: 20, 2400: 60, 9600: 60}


def _window_n() -> dict[int, int]:
    spec = os.environ.get("MBENCH_WINDOW_N") or os.environ.get("BENCH_WINDOW_N")  # old name
    if not spec:
        return dict(WINDOW_N)
    return {int(b): int(n) for b, n in (part.split(":") for part in spec.split(","))}


def _snd_nke(address: int) -> bytes:
    return bytes([0x10, 0x40, address, (0x40 + address) & 0xFF, 0x16])


def window_probe(baud: int, n: int) -> dict:
    """``n`` replies at ``baud`` over a pty, absent-address probes in between (see doc)."""
    lo, hi = response_window(baud)
    duration = 5 * 11 / baud
    absent_wait = (330 + 11) / baud + 0.150  # libmbus reply timeout
    idle = 11 * 11 / baud  # libmbus: 11 character times between frames
    with tempfile.TemporaryDirectory() as tmp:
        scenario = Path(tmp) / "bus.toml"
        scenario.write_text(
            f'kind = "mbus"\nseed = 11\n[bus]\nbaud = {baud}\n[[slaves]]\n'
            f'template = "water"\nid = 12345678\nprimary = 4\nbaud = {baud}\n'
            "delay_window = [0.0, 0.3]\n"
        )
        srv = ServeProcess(scenario, "pty", Path(tmp) / "trace.jsonl", "--baud", str(baud))
        with srv:
            seen = []
            with serial.Serial(srv.path, baud, timeout=hi + 0.5) as port:
                time.sleep(0.1)
                for _ in range(n):
                    t0 = time.monotonic()
                    port.write(_snd_nke(4))
                    reply = port.read(1)
                    t1 = time.monotonic()
                    assert reply == b"\xe5", reply
                    seen.append(t1 - (t0 + duration))
                    time.sleep(idle)
                    port.write(_snd_nke(7))  # nobody has address 7
                    port.timeout = absent_wait
                    assert port.read(1) == b""
                    port.timeout = hi + 0.5
            events = srv.stop()
    modelled = [e["delay"] for e in events if e["kind"] == "bridge_exchange" and e["reply"]]
    assert len(modelled) == len(seen)
    jitter = [(s - m) * 1000 for s, m in zip(seen, modelled, strict=True)]
    late = [
        x
        for e in events
        if e["kind"] == "bridge_bytes" and e["direction"] == "out"
        for x in e.get("byte_late_ms", [])  # not in traces of bridges before sessions
    ]
    return {
        "baud": baud,
        "replies": len(seen),
        "inside_window": sum(lo <= s <= hi for s in seen),
        "jitter_p50_ms": round(_pct(jitter, 50), 3),
        "jitter_p99_ms": round(_pct(jitter, 99), 3),
        "jitter_max_ms": round(max(jitter), 3),
        "byte_late_p99_ms": round(_pct(late, 99), 3) if late else None,
        "absent_probes": len(seen),
    }


def window_table() -> list[dict]:
    return [window_probe(baud, n) for baud, n in sorted(_window_n().items())]


def test_bench_reply_window_per_baud(benchmark):
    rows = benchmark.pedantic(window_table, rounds=1, iterations=1)
    head = (
        "| bit/s | replies inside the window | start jitter p50 / p99 / max (ms) | "
        "byte lateness p99 (ms) | absent-address probes |"
    )
    lines = [head, "|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['baud']} | {r['inside_window']}/{r['replies']} | {r['jitter_p50_ms']} / "
            f"{r['jitter_p99_ms']} / {r['jitter_max_ms']} | {r['byte_late_p99_ms']} | "
            f"{r['absent_probes']} |"
        )
    benchmark.extra_info["rows"] = rows
    print("\nreply window per baud over a pty (meterbench serve in its own process):")
    print("\n".join(lines))
    assert all(r["inside_window"] == r["replies"] for r in rows)
