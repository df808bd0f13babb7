"""Trace write cost: typed ``frame`` events recorded per second into a JSON-lines sink.

Run: ``python3 -m pytest benches/bench_trace.py --benchmark-only``. One round records
``N`` frame events (an s2m reception with its usual fields, as the bus writes it) through
``World.emit`` into a ``Trace(keep=False)`` whose sink is an in-memory text file, so the
figure covers building the event, serialising it and writing the line; events per second =
``N / mean`` (printed and stored in ``extra_info``). ``test_serialise_only`` isolates
``to_json``.
"""

from __future__ import annotations

import io

from simulator.core import Trace, World, events

N = 2000


def _frame(i: int) -> events.Frame:
    return events.Frame(
        source="master",
        direction="s2m",
        hex="e5",
        summary="E5",
        outcome="ok",
        baud=2400,
        end=round(i * 0.1 + 0.0045, 9),
        senders=["slave/12345678"],
        uart_errors=0,
        bit_errors=0,
        delay=0.008608794,
        in_window=True,
        collision_detected=False,
        function="ACK",
    )


def _report(benchmark, what: str) -> None:
    rate = N / benchmark.stats.stats.mean
    benchmark.extra_info["events_per_s"] = round(rate)
    print(f"\n{what}: {rate:,.0f} events/s ({1e6 / rate:.2f} us/event)")


def test_emit_frame_events_to_a_sink(benchmark):
    def run() -> int:
        sink = io.StringIO()
        world = World(1, trace=Trace(keep=False, sink=sink))
        for i in range(N):
            world.emit(_frame(i))
        return len(sink.getvalue())

    assert benchmark(run) > N * 100
    _report(benchmark, "emit + serialise + write")


def test_serialise_only(benchmark):
    evs = [_frame(i) for i in range(N)]
    for i, e in enumerate(evs):
        e.t = i * 0.1

    def run() -> int:
        return sum(len(e.to_json()) for e in evs)

    assert benchmark(run) > N * 100
    _report(benchmark, "to_json")
