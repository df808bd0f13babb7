"""The batched trace writer (issue 15, cheap trace): msgspec lines equal to the reference
``json`` encoding of the same fields, exact ``round_ns``, batches reaching the sink only on
flush, and the run's trace levels (all, frames, summary) leaving the model untouched."""

from __future__ import annotations

import io
import json
import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.cli import main
from simulator.core import Trace, World, events
from simulator.core.events import encode_lines, round_ns
from simulator.core.trace import BATCH, FRAME_KINDS

ROOT = Path(__file__).resolve().parents[1]
SMALL = ROOT / "fixtures" / "scenarios" / "mbus-small.toml"


def reference(ev: events.TraceEvent) -> str:
    """The line as the stdlib encoder wrote it before msgspec (sorted keys, compact)."""
    return json.dumps(ev.to_dict(), sort_keys=True, separators=(",", ":"))


def frame(**kw) -> events.Frame:
    base = dict(source="master", direction="s2m", hex="e5", summary="E5", outcome="ok")
    return events.Frame(**{**base, "baud": 2400, "end": 1.0, **kw})


# floats whose shortest repr Python and msgspec write alike (1e-4 <= |x| < 1e16, or 0)
plain = st.one_of(
    st.just(0.0),
    st.floats(1e-4, 1e15, allow_nan=False),
    st.floats(-1e15, -1e-4, allow_nan=False),
)
times = st.one_of(st.floats(0, 4e7, allow_nan=False), st.integers(0, 10**16).map(lambda n: n / 1e9))


@settings(max_examples=300, deadline=None)
@given(times)
def test_round_ns_is_round_to_9_digits_bit_for_bit(t):
    assert round_ns(t) == round(t, 9)
    assert round_ns(-t) == round(-t, 9)


def test_round_ns_near_ties_and_beyond_52_days():
    rng = random.Random(15)
    ties = [rng.randrange(10**15) / 1e9 + 5e-10 for _ in range(20000)]  # x.xxxxxxxxx5
    sums = [i * 0.1 + 0.0045 + rng.random() * 1e-6 for i in range(20000)]
    for t in [0.0000000005, 1.0000000005, 2.5e-9, 12345.0000000015, 4.6e6, *ties, *sums]:
        assert round_ns(t) == round(t, 9), t


@settings(max_examples=200, deadline=None)
@given(
    t=times.filter(lambda t: t == 0 or t >= 1e-4),
    end=plain,
    delay=st.one_of(st.none(), plain),
    summary=st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=20),
    senders=st.lists(st.text(alphabet="abc/0123", max_size=8), max_size=3),
    address=st.one_of(st.none(), st.integers(0, 255)),
)
def test_frame_lines_equal_the_stdlib_encoding(t, end, delay, summary, senders, address):
    ev = frame(end=end, summary=summary, senders=senders)
    if delay is not None:
        ev.delay = delay
    if address is not None:
        ev.address = address
    ev.t = t
    assert encode_lines([ev]).decode() == reference(ev) + "\n"
    assert ev.t == t  # the exact time is put back after encoding


def test_renamed_nested_nullable_wall_and_subclass_fields():
    class Header(str):  # e-mail headers are str subclasses
        pass

    evs = [
        events.SecurityState(source="gw", from_="open", to="locked"),
        events.BridgeExchange(
            source="bridge",
            request="10",
            summary="x",
            baud=2400,
            request_end=1.5,
            reply="e5",
            outcome="ok",
            queued_ms=0.25,
            receptions=2,
            more=[{"z": 1, "a": [0.5, None]}],
        ),
        events.Readout(
            source="master",
            target="p1",
            ok=True,
            attempts=1,
            telegrams=1,
            records=3,
            error=None,
            started=0.0,
            more_pending=False,
        ),
        events.Push(source="gw", outcome="delivered", error="", subject=Header("report")),
    ]
    evs[0].wall = 1700000000.1234567
    evs[1].t = 0.0  # t equal to its default is still written
    got = encode_lines(evs).decode().splitlines()
    assert got == [reference(e) for e in evs]
    assert '"from":"open"' in got[0] and '"wall":1700000000.123457' in got[0]
    assert '"more":[{"a":[0.5,null],"z":1}]' in got[1] and '"t":0.0' in got[1]
    assert '"error":null' in got[2] and "wall" not in got[2]


def test_floats_outside_the_plain_range_keep_their_value():
    """The documented byte difference: msgspec's notation, the same value when read."""
    ev = frame(end=1e-05, delay=1.5e16)
    line = encode_lines([ev]).decode()
    assert '"end":0.00001' in line and '"delay":1.5e16' in line
    assert json.loads(line) == json.loads(reference(ev))


def test_an_unencodable_value_is_a_type_error():
    with pytest.raises(TypeError, match="not JSON-serialisable"):
        encode_lines([frame(summary=object())])


def test_the_sink_gets_batches_and_the_rest_on_flush():
    sink = io.StringIO()
    world = World(1, trace=Trace(sink=sink))
    for i in range(BATCH + 10):
        world.env.run(until=i * 0.1 + 0.05)
        world.emit(frame(end=i * 0.1))
    written = sink.getvalue().splitlines()
    assert len(written) == 1 + BATCH  # header and the first batch; 10 wait
    world.trace.flush()
    assert sink.getvalue() == world.trace.to_jsonl()
    assert world.trace.written == BATCH + 10 == world.trace.count
    assert world.trace[0].t == 0.05  # kept events keep their exact times


def test_write_kinds_limit_the_sink_not_the_listeners():
    sink = io.StringIO()
    trace = Trace(sink=sink, write_kinds=FRAME_KINDS)
    seen = []
    trace.subscribe(seen.append)
    trace.record(frame())
    trace.record(events.Scan(source="master", found=[1]))
    trace.flush()
    lines = sink.getvalue().splitlines()
    assert [json.loads(x)["kind"] for x in lines[1:]] == ["frame"]
    assert len(seen) == 2 and len(trace) == 2 and trace.count == 2 and trace.written == 1
    assert FRAME_KINDS <= set(events.EVENT_TYPES)


def _run(out: Path, *extra: str) -> tuple[list[str] | None, dict]:
    assert main(["run", str(SMALL), "--out", str(out), "--quiet", *extra]) == 0
    summary = json.loads((out / "summary.json").read_text())
    summary.pop("wall_seconds")
    path = out / "trace.jsonl"
    return (path.read_text().splitlines() if path.exists() else None), summary


def test_trace_levels_change_the_file_not_the_run(tmp_path):
    full, s_all = _run(tmp_path / "all")
    frames, s_frames = _run(tmp_path / "frames", "--trace-level", "frames")
    none, s_none = _run(tmp_path / "summary", "--trace-level", "summary")
    assert s_all == s_frames == s_none
    assert none is None
    kept = [full[0]] + [x for x in full[1:] if json.loads(x)["kind"] in FRAME_KINDS]
    assert frames == kept and len(kept) < len(full)
    assert json.loads(frames[1])["kind"] == "frame"


def test_a_listener_for_some_kinds_gets_only_those_and_wants_follows():
    ev = events
    trace = Trace(keep=False)
    assert not trace.wants("frame")  # nobody: a producer may skip building it
    got, every = [], []
    trace.subscribe(got.append, kinds=("readout",))
    assert trace.wants("readout") and not trace.wants("frame")
    trace.record(ev.Readout(source="m", target="p1", ok=True, attempts=1, telegrams=1,
                            records=2, error=None, started=0.0, more_pending=False))  # fmt: skip
    trace.record(ev.Deselect(source="s", ci="56"))
    trace.skip(3)
    assert [e.kind for e in got] == ["readout"] and trace.count == 5
    trace.subscribe(every.append)
    assert trace.wants("frame")
    trace.unsubscribe(every.append)
    assert not trace.wants("frame")
    with pytest.raises(ValueError, match="not subscribed"):
        trace.unsubscribe(every.append)
