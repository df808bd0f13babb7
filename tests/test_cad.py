"""CAD auto-configuration (seed 003 §9.1, §6.2): parsing, bad files, and a real HTTP
configuration server that serves the file and takes result notifications."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from simulator.core.world import World
from simulator.gateways.cme3100.cad import AutoConfiguration, CadError, parse_cad
from simulator.gateways.cme3100.settings import StreamSettings
from simulator.gateways.cme3100.stream import ProductIdentity, StreamPlugin
from simulator.sinks.http import HttpSink
from simulator.sinks.http_client import HttpGet, HttpPost

CAD_DIR = Path(__file__).resolve().parent.parent / "fixtures" / "cad"
UA = re.compile(
    r"^TC65i/\d{15} Profile/IMP-NG Configuration/CLDC-1\.1 Model/CMe3100 "
    r"Hardware/\S+ Firmware/\S+ Application/\S+ Serial/\d{10}$"
)


def test_manual_example_parses():
    cad = parse_cad((CAD_DIR / "example.cad").read_text())
    assert cad.mode == "server" and cad.sync_id == "sm_elv" and cad.notify_url is None
    assert [(c.key, c.value) for c in cad.configs] == [
        ("receiving.server.url", "http://evo.elvaco.se/sp/"),
        ("receiving.server.push.cron", "*/5 * * * *"),
        ("configuration.server.cron", "15 0 * * * *"),
        ("filter.manufacturer", "ELV,ABB"),
        ("filter.device.type", "1B,02"),
    ]
    assert {c.path for c in cad.configs} == {"/currentpluginconfig/stream.cfg"}


def test_bad_file_reports_every_problem_with_its_line():
    with pytest.raises(CadError) as exc:
        parse_cad((CAD_DIR / "bad.cad").read_text(), "bad.cad")
    lines = [ln for ln, _ in exc.value.problems]
    assert lines == [2, 5, 6, 7, 8, None]
    text = str(exc.value)
    assert "bad.cad:2: Sync-Notify-URL" in text
    assert "bad.cad:8: Sync-Config-0 repeats line 3" in text
    assert "missing 1" in text


def test_cron_combinations_keep_their_bars_and_missing_mode_is_an_error():
    cad = parse_cad(
        "Sync-Mode: server\n"
        "Sync-Config-0: receiving.server.push.cron=0 5 * * *|8 10 * * *|/a/b.cfg\n"
    )
    assert cad.configs[0].value == "0 5 * * *|8 10 * * *" and cad.configs[0].path == "/a/b.cfg"
    with pytest.raises(CadError, match="Sync-Mode is missing"):
        parse_cad("Sync-Id: x\n")


def _setup(sink: HttpSink, cad_text: str, **settings):
    sink.add_file("/cfg/stream.cad", cad_text)
    world = World(1)
    props = {"configuration.server.url": sink.url("/cfg/stream.cad"), **settings}
    plugin = StreamPlugin(
        world,
        StreamSettings.from_properties(props),
        identity=ProductIdentity(serial=6000000),
        sink=HttpPost(),  # the notification goes to the real server too
    )
    return world, plugin, AutoConfiguration(plugin, source=HttpGet())  # a real server


def test_sync_applies_settings_and_notifies_900():
    with HttpSink() as sink:
        cad = (CAD_DIR / "example.cad").read_text() + f"Sync-Notify-URL: {sink.url('/result')}\n"
        sink.add_file("/files/keys.csv", "Address;Key\n")
        cad += f"Sync-File-0-URL: {sink.url('/files/keys.csv')},/config/keys.csv\n"
        world, plugin, auto = _setup(sink, cad)
        result = auto.sync()
    assert result.code == 900
    s = plugin.settings
    assert s.receiving_server_url == "http://evo.elvaco.se/sp/"
    assert str(s.push_cron) == "*/5 * * * *" and s.filter_manufacturer == ("ELV", "ABB")
    assert s.filter_device_type == (0x1B, 0x02)
    assert auto.files == {"/config/keys.csv": b"Address;Key\n"}
    gets = [r for r in sink.requests if r.method == "GET"]
    assert gets[0].path == "/cfg/stream.cad" and UA.match(gets[0].headers["User-Agent"])
    assert gets[0].headers["User-Agent"].endswith("Serial/0006000000")
    note = sink.posts("/result")
    assert len(note) == 1 and note[0].text.startswith("900 Success\nSync-Id: sm_elv")
    assert world.trace.select("cad_sync", code=900)


def test_sync_mode_not_server_gives_920_and_changes_nothing():
    with HttpSink() as sink:
        world, plugin, auto = _setup(
            sink,
            f"Sync-Mode: client\nSync-Notify-URL: {sink.url('/n')}\nSync-Config-0: radio.mode=S1\n",
        )
        before = plugin.settings
        assert auto.sync().code == 920
    assert plugin.settings is before
    assert sink.posts("/n")[0].text.startswith("920 ")


def test_bad_file_gives_921_with_line_numbers_and_changes_nothing():
    with HttpSink() as sink:
        bad = (CAD_DIR / "bad.cad").read_text().replace("not-a-url", sink.url("/n"))
        world, plugin, auto = _setup(sink, bad)
        before = plugin.settings
        result = auto.sync()
    assert result.code == 921 and plugin.settings is before
    body = sink.posts("/n")[0].text
    assert body.startswith("921 Error synchronizing files.")
    assert ":5: not a 'Key: value' line" in body and "missing 1" in body


def test_invalid_value_or_missing_file_gives_921_and_applies_nothing():
    with HttpSink() as sink:
        world, plugin, auto = _setup(
            sink,
            "Sync-Mode: server\nSync-Config-0: filter.manufacturer=KAM\n"
            "Sync-Config-1: radio.mode=T2\n",
        )
        before = plugin.settings
        result = auto.sync()
        assert result.code == 921 and plugin.settings is before
        assert any("line 3: radio.mode" in p for p in result.problems)
        sink.add_file(
            "/cfg/stream.cad",
            "Sync-Mode: server\n"
            "Sync-Config-0: filter.manufacturer=KAM\n"
            f"Sync-File-0-URL: {sink.url('/nope')},/x\n",
        )
        result = auto.sync()
        assert result.code == 921 and plugin.settings is before
        assert "HTTP 404" in result.problems[0]


def test_scheduled_sync_runs_at_the_configuration_cron_only_when_enabled():
    with HttpSink() as sink:
        world, plugin, auto = _setup(
            sink, "Sync-Mode: server\nSync-Config-0: radio.mode=S1\n", **{"sync.enabled": "true"}
        )
        auto.start()
        world.run(until=3600)
        assert [e.t for e in world.trace.select("cad_sync")] == [1800.0]  # 00:30 default
        assert plugin.settings.radio_mode == "S1"
        plugin.settings = plugin.settings.updated({"sync.enabled": "false"})
        world.run(until=2 * 86400)
        assert len(world.trace.select("cad_sync")) == 1


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=200))
def test_any_text_parses_or_gives_cad_error(text):
    try:
        parse_cad(text)
    except CadError as exc:
        assert exc.problems


def test_sync_in_the_world_fetches_from_the_in_world_source_without_sockets(monkeypatch):
    import socket

    from simulator.sinks.base import WorldSink, WorldSource

    def no_socket(*a, **k):
        raise AssertionError("a model opened a socket in virtual time")

    monkeypatch.setattr(socket, "socket", no_socket)
    url, notify = "http://config.invalid/stream.cad", "http://config.invalid/result"
    cad = (CAD_DIR / "example.cad").read_text() + f"Sync-Notify-URL: {notify}\n"
    source, sink = WorldSource({url: cad.encode()}), WorldSink()
    world = World(1)
    props = {"configuration.server.url": url}
    plugin = StreamPlugin(
        world,
        StreamSettings.from_properties(props),
        identity=ProductIdentity(serial=6000000),
        sink=sink,
    )
    result = AutoConfiguration(plugin, source=source).sync()
    assert result.code == 900 and [u for u, _ in source.requests] == [url]
    assert sink.received[0].target == notify and sink.received[0].body.startswith(b"900")
    assert AutoConfiguration(plugin, source=WorldSource()).sync().code == 921  # nothing there
