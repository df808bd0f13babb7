"""The core: world clock, seeded random streams, trace serialisation, scenario error locations."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime

import pytest

from simulator.core import Trace, World, events, stream
from simulator.scenario import KeyLocator, ScenarioError, StrictModel, load_toml


def test_streams_are_named_and_reproducible():
    a1, a2, b = stream(7, "a"), stream(7, "a"), stream(7, "b")
    xs = [a1.random() for _ in range(5)]
    assert xs == [a2.random() for _ in range(5)]
    assert xs != [b.random() for _ in range(5)]
    assert [stream(8, "a").random() for _ in range(5)] != xs


def test_world_clock_and_timeouts_in_virtual_time():
    w = World(seed=1, start=datetime(2026, 3, 1, tzinfo=UTC))
    seen = []

    def proc():
        yield w.timeout(90.0)
        seen.append((w.now, w.clock().isoformat()))
        w.emit(events.Scan(source="test", found=[1]))

    w.process(proc())
    w.run()
    assert seen == [(90.0, "2026-03-01T00:01:30+00:00")]
    assert w.trace[0].to_json() == '{"found":[1],"kind":"scan","source":"test","t":90.0}'
    assert w.trace[0].wall is None  # virtual time never reads the wall clock


def test_naive_start_is_rejected():
    with pytest.raises(ValueError, match="timezone-aware"):
        World(start=datetime(2026, 1, 1))


def test_trace_select_and_jsonl_roundtrip(tmp_path):
    t = Trace()
    common = {"summary": "", "outcome": "ok", "baud": 2400, "end": 1.0}
    t.record(events.Frame(t=0.5, source="master", direction="m2s", hex="1040014116", **common))
    t.record(events.Frame(t=0.6, source="slave/1", direction="s2m", hex="e5", **common))
    assert [e.source for e in t.select("frame", source="slave/*")] == ["slave/1"]
    assert len(t.select("frame", direction="m2s")) == 1
    path = t.write_jsonl(tmp_path / "trace.jsonl")
    assert path.read_text().splitlines()[0] == (
        '{"format":"meterbench-trace","kind":"trace_header","schema":2}'
    )
    rows = Trace.read_jsonl(path)  # the header is skipped
    assert rows[1] == {
        "t": 0.6,
        "kind": "frame",
        "source": "slave/1",
        "direction": "s2m",
        "hex": "e5",
        **common,
    }


def test_locator_finds_keys_in_tables_and_arrays_of_tables():
    text = textwrap.dedent(
        """\
        kind = "mbus"
        seed = 3
        [bus]
        baud = 2400
        [[slaves]]
        id = 1
        [[slaves]]
        id = 2
        baud = 9
        [slaves.faults]
        silent = true
        """
    )
    loc = KeyLocator(text)
    assert loc.line(("seed",)) == 2
    assert loc.line(("bus", "baud")) == 4
    assert loc.line(("slaves", 1, "baud")) == 9
    assert loc.line(("slaves", 1, "faults", "silent")) == 11
    assert loc.line(("slaves", 0, "missing")) == 5  # falls back to the enclosing table


class _Slave(StrictModel):
    id: int
    baud: int = 2400


class _Doc(StrictModel):
    kind: str
    slaves: list[_Slave]


def test_scenario_reports_every_error_at_once_with_lines(tmp_path):
    f = tmp_path / "bad.toml"
    f.write_text(
        'kind = "mbus"\n[[slaves]]\nid = "x"\n[[slaves]]\nid = 2\nbaud = "fast"\nbuad = 1\n'
    )
    doc = load_toml(f)
    with pytest.raises(ScenarioError) as info:
        doc.validate(_Doc)
    issues = {(i.key, i.line) for i in info.value.issues}
    assert issues == {("slaves.0.id", 3), ("slaves.1.baud", 6), ("slaves.1.buad", 7)}
    assert f"{f}:7: slaves.1.buad: unknown key" in str(info.value)


def test_toml_syntax_error_names_the_line(tmp_path):
    f = tmp_path / "broken.toml"
    f.write_text('kind = "mbus"\nseed = = 1\n')
    with pytest.raises(ScenarioError) as info:
        load_toml(f)
    assert info.value.issues[0].line == 2


def test_a_scenario_without_kind_is_one_clear_error(tmp_path):
    from simulator.devices import for_document

    f = tmp_path / "nokind.toml"
    f.write_text("seed = 1\n[[slaves]]\nid = 1\n")
    with pytest.raises(ScenarioError) as info:
        for_document(load_toml(f))
    (issue,) = info.value.issues
    assert issue.key == "kind" and "missing" in issue.message and "mbus" in issue.message
