"""Typed trace events: the shipped schema, traces of real runs against it, the validator's
errors (bad line, schema 1 file), the deprecated kwargs shim, and frame facts from bytes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from simulator.cli import main
from simulator.core import Trace, World, events
from simulator.core.trace_schema import (
    TraceVersionError,
    events_markdown,
    schema_text,
    trace_schema,
    validate_trace,
)
from simulator.mbus.frames import (
    REQ_UD2,
    SND_NKE,
    LongFrame,
    ShortFrame,
    frame_facts,
)

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "fixtures" / "scenarios"
FRAME = {"direction": "m2s", "hex": "e5", "summary": "E5", "outcome": "ok", "end": 1.0}


def test_shipped_schema_is_the_generated_one():
    shipped = (ROOT / "docs" / "trace.schema.json").read_text(encoding="utf-8")
    assert shipped == schema_text(), "regenerate: meterbench trace schema > docs/trace.schema.json"


def test_schema_has_every_kind_closed_and_described():
    schema = trace_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    defs = schema["$defs"]
    assert set(defs) == set(events.EVENT_TYPES) | {"trace_header"}
    for kind, d in defs.items():
        assert d["properties"]["kind"] == {"const": kind}
        assert d["additionalProperties"] is False
    frame = defs["frame"]["properties"]
    assert "bit/s" in frame["baud"]["description"]
    assert frame["hex"]["pattern"] == "^([0-9a-f]{2})*$"
    assert "function" not in defs["frame"]["required"]  # optional: absent for a timeout
    assert "error" in defs["readout"]["required"]  # nullable but always written
    assert defs["readout"]["properties"]["error"]["anyOf"][1] == {"type": "null"}


def _run(name: str, out: Path, *extra: str) -> Path:
    assert main(["run", str(SCENARIOS / name), "--out", str(out), "--quiet", *extra]) == 0
    return out / "trace.jsonl"


@pytest.mark.parametrize(
    ("name", "extra"),
    [
        ("mbus-small.toml", ()),
        ("mbus-overload.toml", ()),
        ("mbus-meterlist.toml", ()),
        ("cme2100-small.toml", ()),
        ("stream-small.toml", ("--hours", "0.5")),
        ("nbiot-fleet.toml", ("--hours", "2")),
    ],
)
def test_traces_of_shipped_scenarios_validate(tmp_path, name, extra):
    trace = _run(name, tmp_path, *extra)
    assert trace.read_text().splitlines()[0] == (
        '{"format":"meterbench-trace","kind":"trace_header","schema":2}'
    )
    assert validate_trace(trace) == []


def test_nbiot_datagram_detail_events_validate(tmp_path):
    text = (SCENARIOS / "nbiot-fleet.toml").read_text(encoding="utf-8")
    assert 'trace = "message"' in text, "nbiot-fleet.toml changed: update this test"
    scenario = tmp_path / "nbiot-datagram.toml"
    assert "modules = 2000" in text, "nbiot-fleet.toml changed: update this test"
    text = text.replace('trace = "message"', 'trace = "datagram"')
    scenario.write_text(text.replace("modules = 2000", "modules = 40"))
    out = tmp_path / "out"
    assert main(["run", str(scenario), "--out", str(out), "--quiet", "--hours", "25"]) == 0
    trace = out / "trace.jsonl"
    kinds = {json.loads(line)["kind"] for line in trace.read_text().splitlines()}
    assert {"nbiot.coap_tx", "nbiot.dtls_tx", "nbiot.rrc_connected", "nbiot.uplink"} <= kinds
    assert validate_trace(trace) == []


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def test_a_bad_line_is_reported_with_its_line_number_and_field(tmp_path, capsys):
    t = Trace()
    t.record(events.Frame(t=0.1, source="master", baud=2400, **FRAME))
    t.record(events.Frame(t=0.2, source="master", baud="2400", **FRAME))  # wrong type
    t.record(events.Scan(t=0.3, source="master", found=[1]))
    path = tmp_path / "trace.jsonl"
    t.write_jsonl(path)
    with path.open("a") as fh:
        fh.write('{"kind":"scan","t":1,"source":"m","found":[1],"colour":"red"}\n')
        fh.write("{not json\n")
    errors = validate_trace(path)
    assert [(e.line, e.field) for e in errors] == [(3, "baud"), (5, "colour"), (6, "")]
    assert main(["trace", "validate", str(path)]) == 1
    out = capsys.readouterr().out
    assert f"{path}:3: field 'baud': '2400' is not of type 'integer'" in out


def test_a_schema_1_trace_gives_one_clear_error(tmp_path, capsys):
    # version 1: the untyped traces before this schema, no header line
    v1 = _write(tmp_path / "v1.jsonl", ['{"kind":"scan","source":"master","t":0.0,"found":[]}'])
    with pytest.raises(TraceVersionError, match="schema version 1 trace.*expected schema 2"):
        validate_trace(v1)
    old = _write(
        tmp_path / "old.jsonl", ['{"format":"meterbench-trace","kind":"trace_header","schema":1}']
    )
    with pytest.raises(
        TraceVersionError, match="trace schema version 1, this meterbench reads version 2"
    ):
        validate_trace(old)
    assert main(["trace", "validate", str(v1)]) == 1
    assert main(["trace", "validate", str(tmp_path / "missing.jsonl")]) == 2
    err = capsys.readouterr().err
    assert "expected schema 2" in err and "cannot read" in err


def test_valid_file_exits_0(tmp_path):
    t = Trace()
    t.record(events.Frame(t=0.1, source="master", baud=2400, **FRAME))
    assert main(["trace", "validate", str(t.write_jsonl(tmp_path / "t.jsonl"))]) == 0


def test_producers_emit_typed_events_only_and_a_trace_line_reads_back_typed():
    w = World(seed=1)
    assert not hasattr(w, "record")  # no untyped producer path left
    with pytest.raises(TypeError):
        w.trace.record(0.0, "scan", "m", found=[])  # the old kwargs form is gone
    e = w.emit(events.SecurityState(source="gw", from_="factory_key", to="password_set"))
    assert e["from"] == "factory_key"
    line = e.to_json()
    assert line == (
        '{"from":"factory_key","kind":"security_state","source":"gw","t":0.0,"to":"password_set"}'
    )
    back = json.loads(line)
    kind, source, t = back.pop("kind"), back.pop("source"), back.pop("t")
    again = events.from_fields(kind, source, back)  # a reader rebuilding the typed event
    again.t = t
    assert again.to_json() == line
    with pytest.raises(KeyError, match="unknown trace event kind 'tick'"):
        events.from_fields("tick", "test", {"n": 1})
    with pytest.raises(TypeError, match="trace event 'scan'.*colour"):
        events.from_fields("scan", "m", {"found": [], "colour": "red"})


def test_optional_fields_are_omitted_until_set_and_readers_see_fields():
    e = events.Search(t=1.0, source="master", result="none", mask="FFFFFFFFFFFFFFFF")
    assert "address" not in e.fields and e.get("address", "-") == "-" and "address" not in e
    with pytest.raises(KeyError):
        e["address"]
    e.address = "12345678"
    assert e["address"] == "12345678" and json.loads(e.to_json())["address"] == "12345678"


def test_frame_facts_from_the_bytes():
    nke = frame_facts(ShortFrame(SND_NKE, 3).to_bytes())
    assert (nke.function, nke.address, nke.ci, nke.fcb) == ("SND_NKE", 3, None, None)
    req = frame_facts(ShortFrame(REQ_UD2 | 0x20, 5).to_bytes())
    assert (req.function, req.address, req.fcb, req.summary) == (
        "REQ_UD2",
        5,
        1,
        "REQ_UD2 a=5 FCB=1",
    )
    assert frame_facts(b"\xe5").function == "ACK"
    select = frame_facts(LongFrame(0x53, 253, 0x52, bytes.fromhex("78563412ffffffff")).to_bytes())
    assert (select.function, select.address, select.ci, select.fcb) == ("SND_UD", 253, "52", 0)
    bad = frame_facts(b"\x10\x40\x03\x00\x16")
    assert bad.summary == "garbled" and bad.function is None and "checksum" in bad.error
    assert bad.trace_fields() == {}


def test_docs_event_table_is_current():
    text = (ROOT / "docs" / "trace.md").read_text(encoding="utf-8")
    table = text.split("<!-- events:begin -->\n")[1].split("<!-- events:end -->")[0]
    assert table == events_markdown(), "regenerate the table from trace_schema.events_markdown()"
