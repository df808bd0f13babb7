"""Trace write cost per event: typed ``frame`` events recorded into a JSON-lines sink.

Run: ``python3 -m pytest benches/bench_trace.py --benchmark-only -s``. One round handles
``N`` frame events (an s2m reception with its usual fields, as the bus writes it); the sink is
an in-memory text file. Each test prints and stores ``us_per_event`` (mean / N) in
``extra_info``:

* ``test_trace_record_to_a_sink``: the trace's own cost, events built beforehand: ``record``
  (encode into the batch buffer) plus the batched writes and the final flush. This is the
  figure issue 15 targets (<= 1 us per event amortised).
* ``test_emit_frame_events_to_a_sink``: what a producer pays per event: build the event, emit it
  through ``World.emit`` and write it.
* ``test_serialise_only``: encoding alone (``encode_lines`` over the ``N`` events).

``us_per_event`` is the mean per round / N, ``us_per_event_min`` the best round / N (the
figure least disturbed by other load on a shared machine).
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
    stats = benchmark.stats.stats
    us, best = stats.mean / N * 1e6, stats.min / N * 1e6
    benchmark.extra_info["us_per_event"] = round(us, 3)
    benchmark.extra_info["us_per_event_min"] = round(best, 3)
    print(f"\n{what}: {us:.2f} us/event mean, {best:.2f} min ({1e6 / us:,.0f} events/s)")


def _flush(trace: Trace) -> None:
    getattr(trace, "flush", lambda: None)()  # older traces wrote each line at once


def test_trace_record_to_a_sink(benchmark):
    evs = [_frame(i) for i in range(N)]
    for i, e in enumerate(evs):
        e.t = i * 0.1

    def run() -> int:
        sink = io.StringIO()
        trace = Trace(keep=False, sink=sink)
        for e in evs:
            trace.record(e)
        _flush(trace)
        return len(sink.getvalue())

    assert benchmark(run) > N * 100
    _report(benchmark, "trace record + batched write")


def test_emit_frame_events_to_a_sink(benchmark):
    def run() -> int:
        sink = io.StringIO()
        world = World(1, trace=Trace(keep=False, sink=sink))
        for i in range(N):
            world.emit(_frame(i))
        _flush(world.trace)
        return len(sink.getvalue())

    assert benchmark(run) > N * 100
    _report(benchmark, "build + emit + write")


def test_serialise_only(benchmark):
    evs = [_frame(i) for i in range(N)]
    for i, e in enumerate(evs):
        e.t = i * 0.1
    encode = getattr(events, "encode_lines", None)

    def run() -> int:
        if encode is None:  # before the batched writer
            return sum(len(e.to_json()) for e in evs)
        return len(encode(evs))

    assert benchmark(run) > N * 100
    _report(benchmark, "encode only")
