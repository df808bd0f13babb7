"""The Stream Plugin hands its reports to a sink (simulator.sinks.base): the in-world sink and
the real HTTP transport get the same bytes, and the model itself opens no socket."""

from __future__ import annotations

import socket

import pytest
from test_stream_plugin import sender_process

from simulator.core.world import World
from simulator.gateways.cme3100.settings import StreamSettings
from simulator.gateways.cme3100.stream import ProductIdentity, StreamPlugin
from simulator.sinks.base import Report, WorldSink
from simulator.sinks.http import HttpSink
from simulator.sinks.http_client import HttpPost

METERS = [40000001 + i for i in range(6)]


def _run(url: str, sink) -> World:
    world = World(7)
    settings = StreamSettings.from_properties(
        {"receiving.server.url": url, "receiving.server.push.cron": "*/15 * * * *"}
    )
    plugin = StreamPlugin(world, settings, identity=ProductIdentity(serial=42), sink=sink).start()
    sender_process(world, plugin, METERS, period=120.0, until=1800.0)
    world.run(until=1800.0 + 1)
    return world


def test_in_world_sink_and_real_http_get_identical_bytes():
    with HttpSink() as server:
        url = server.url("/stream")
        in_world = WorldSink()
        world_a = _run(url, in_world)
        world_b = _run(url, HttpPost())
    real = server.posts("/stream")
    assert len(real) == len(in_world.received) == 2  # 00:15 and 00:30
    assert [r.body for r in real] == [r.body for r in in_world.received]
    for req, rep in zip(real, in_world.received, strict=True):
        assert req.headers["Content-Type"] == rep.content_type
        assert req.headers["User-Agent"] == rep.header("User-Agent")
        assert req.chunked and rep.target == url
    # and the run itself cannot tell the two sinks apart
    assert world_a.trace.to_jsonl() == world_b.trace.to_jsonl()


def test_the_model_opens_no_socket_with_the_in_world_sink(monkeypatch):
    def no_io(*args, **kwargs):
        raise AssertionError("a model opened a socket")

    monkeypatch.setattr(socket, "socket", no_io)
    monkeypatch.setattr(socket, "create_connection", no_io)
    sink = WorldSink()
    world = _run("http://head-end.invalid/stream", sink)
    assert [e["ok"] for e in world.trace.select("stream_push")] == [True, True]
    assert len(sink.received) == 2


def test_in_world_sink_fails_on_schedule_and_the_plugin_retries():
    sink = WorldSink()
    sink.fail_next(1, status=503)
    sink.fail_next(1, status=None)  # then the head-end is unreachable once
    world = _run("http://head-end.invalid/stream", sink)
    pushes = world.trace.select("stream_push")
    assert [(e.t, e["ok"], e["status"]) for e in pushes][:3] == [
        (900.0, False, 503),
        (960.0, False, "unreachable"),
        (1020.0, True, 200),
    ]
    ids = {line.split(b";")[1] for line in sink.received[0].parts}
    assert ids == {f"{m:08d}".encode() for m in METERS}  # nothing lost by the failures


def test_report_body_is_its_parts_and_headers_are_case_insensitive():
    r = Report("http://x/", (b"a\n", b"b\n"), "text/plain", (("User-Agent", "ua"),))
    assert r.body == b"a\nb\n" and r.header("user-agent") == "ua" and r.header("x") == ""


@pytest.mark.parametrize("status", [500, 404])
def test_real_transport_reports_an_http_error_as_not_delivered(status):
    with HttpSink() as server:
        server.fail_next(1, status=status)
        d = HttpPost().deliver(Report(server.url("/r"), (b"x\n",), "text/plain"))
    assert (d.ok, d.status) == (False, status)


def test_stream_run_with_a_real_http_head_end_writes_the_same_files(tmp_path):
    from pathlib import Path

    from simulator.devices import run_scenario
    from simulator.scenario import RunOptions

    src = Path(__file__).parent.parent / "fixtures" / "scenarios" / "stream-small.toml"
    text = src.read_text()
    assert 'sink = "http"' not in text  # shipped with the in-world head-end
    real = tmp_path / "real.toml"
    real.write_text(text.replace("push = true", 'push = true\nsink = "http"'))
    out = {}
    for name, path in (("world", src), ("http", real)):
        out[name] = tmp_path / name
        run_scenario(path, RunOptions(out_dir=out[name], hours=0.5))
    for f in ("trace.jsonl", "headend.csv"):
        a, b = (out[n] / f for n in ("world", "http"))
        assert a.read_bytes() == b.read_bytes(), f
    assert len((out["http"] / "headend.csv").read_text().splitlines()) > 1


def test_real_transport_sends_the_reports_own_headers():
    report = Report(
        "",
        (b"a;b\n", b"c;d\n"),
        "text/plain; charset=windows-1252",
        (
            ("User-Agent", "Model/CMe3100"),
            ("Filename", "0016_x.csv"),
            ("Authorization", "Basic eA=="),
        ),
    )
    with HttpSink() as server:
        d = HttpPost().deliver(
            Report(server.url("/r"), report.parts, report.content_type, report.headers)
        )
        (req,) = server.posts("/r")
    assert d.ok and req.chunked and req.body == b"a;b\nc;d\n"
    assert req.headers["Filename"] == "0016_x.csv" and req.headers["Authorization"] == "Basic eA=="
    assert req.headers["User-Agent"] == "Model/CMe3100"
