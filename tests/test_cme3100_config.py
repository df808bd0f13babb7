"""CMe3100 configuration (docs/cme3100.md "Configuration"; seed 002 §6.12, §6.31.1; seed 003
§9.1; CME3100.md §11): the gateway's settings from a CAD file fetched through a Source (the
Stream Plugin's parser and result codes), and a backup that re-imports to the same state."""

from __future__ import annotations

import base64
import json
import textwrap

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.core.world import World
from simulator.devices import run_scenario
from simulator.gateways.cme3100.gateway import Cme3100
from simulator.gateways.cme3100.gateway_config import ConfigError, import_config
from simulator.gateways.cme3100.gateway_settings import PRESETS, Cme3100Settings
from simulator.gateways.cme3100.installation import LICENCE_STEPS
from simulator.mbus.bus import Bus
from simulator.mbus.master import Master
from simulator.mbus.meterlist import MeterListEntry
from simulator.scenario import RunOptions
from simulator.sinks.base import WorldSink, WorldSource

URL = "http://cfg.invalid/gw.cad"


def gateway(settings: Cme3100Settings | None = None, files: dict | None = None) -> Cme3100:
    world = World(3)
    s = settings or Cme3100Settings(auto_config={"enabled": True, "url": URL})
    sinks = {r.name: WorldSink() for r in (*s.reports, *s.event_reports)}
    return Cme3100(
        world, s, Master(Bus(world)), sinks, meter_list=[], config_source=WorldSource(files or {})
    )


def test_the_cad_file_sets_the_gateway_settings_at_the_default_time(tmp_path):
    """Enabled with the default schedule 30 0 * * * (004 §6.31.1): the sync at 00:30 sets a
    15-minute readout; rounds follow the new schedule from then on."""
    (tmp_path / "gw.cad").write_text(
        "Sync-Mode: server\nSync-Id: gw-1\nSync-Config-0: readout_schedule=15min\n"
        "Sync-Config-1: readout.response_timeout_ms=800\n"
    )
    (tmp_path / "gw.toml").write_text(
        textwrap.dedent(
            f"""\
            kind = "cme3100"
            [[slaves]]
            template = "water"
            count = 1
            id = 55000001
            [gateway.auto_config]
            enabled = true
            url = "{URL}"
            [config_server]
            files = {{ "{URL}" = "gw.cad" }}
            """
        )
    )
    out = tmp_path / "out"
    run_scenario(tmp_path / "gw.toml", RunOptions(out, hours=1.3))
    trace = [json.loads(x) for x in (out / "trace.jsonl").read_text().splitlines()[1:]]
    sync = [e for e in trace if e["kind"] == "cad_sync"]
    assert [(e["t"], e["code"], e["sync_id"], e["applied"]) for e in sync] == [
        (1800.0, 900, "gw-1", ["readout.response_timeout_ms", "readout_schedule"])
    ]
    assert [e["started"] for e in trace if e["kind"] == "readout_round"] == [
        2700.0,
        3600.0,
        4500.0,
    ]
    changed = [e["detail"] for e in trace if e.get("event") == "configuration-changed"]
    assert changed == ["auto configuration: readout_schedule, readout"]


def test_a_bad_cad_file_changes_nothing_and_names_every_problem():
    cad = (
        "Sync-Mode: server\nSync-Config-0: licence=33\nSync-Config-1: no.such=1\n"
        "Sync-Config-2: serial=0000000001\nSync-Config-3: time.rtc_drift_ppm=5|/etc/x.cfg\n"
    )
    gw = gateway(files={URL: cad.encode()})
    before = gw.export()
    result = gw.auto.sync()
    assert result.code == 921 and gw.export() == before
    text = "\n".join(result.problems)
    assert "line 5: config file /etc/x.cfg is not modelled" in text
    gw = gateway(files={URL: cad.replace("|/etc/x.cfg", "").encode()})
    result = gw.auto.sync()
    keys = [p.split(":")[1].strip() for p in result.problems]
    assert result.code == 921 and keys == ["no.such", "serial"]  # checked before validation
    gw = gateway(files={URL: b"Sync-Mode: server\nSync-Config-0: licence=33\n"})
    result = gw.auto.sync()
    assert result.code == 921 and "licence" in result.problems[0] and gw.settings.licence == 8


def test_the_cad_fetch_logs_in_with_basic_auth():
    s = Cme3100Settings(auto_config={"enabled": True, "url": URL, "user": "u", "password": "p"})
    gw = gateway(s, files={URL: b"Sync-Mode: server\nSync-Config-0: time.rtc_drift_ppm=12.5\n"})
    assert gw.auto.sync().code == 900 and gw.settings.time.rtc_drift_ppm == 12.5
    ((url, headers),) = gw.config_source.requests
    assert ("Authorization", "Basic " + base64.b64encode(b"u:p").decode()) in headers


# -- backup ----------------------------------------------------------------------------------------
def installed(settings: Cme3100Settings, n: int) -> Cme3100:
    gw = gateway(settings)
    gw.installation.install(
        [MeterListEntry(f"P{i}", f"{55000000 + i}", 2400, "secondary") for i in range(n)]
    )
    return gw


def test_a_backup_re_imports_to_the_same_state():
    gw = installed(Cme3100Settings(licence=32, readout_schedule="?0-59 * * * *"), 40)
    gw.set_meter_state("P3", "passive")
    gw.load_licence(64)  # all active but P3 (by hand)
    gw.set_meter_state("P5", "passive")
    text = gw.export()
    again = gateway(Cme3100Settings())
    again.restore(import_config(text))
    assert again.export() == text
    assert again.settings == gw.settings
    assert [(m.position, m.order, m.state, m.by_hand) for m in again.installation.meters] == [
        (m.position, m.order, m.state, m.by_hand) for m in gw.installation.meters
    ]
    # the restored installation keeps counting: the next meter is installed as number 41
    again.installation.install([MeterListEntry("new", "56000000", 2400, "secondary")])
    assert again.installation.meter("new").order == 41


@pytest.mark.parametrize(
    "edit, where",
    [
        (lambda d: d["settings"].update(licence=100), "settings.licence"),
        (lambda d: d["meters"][1].update(state="gone"), "meters[1].state"),
        (lambda d: d.update(version=9), "version 9"),
        (lambda d: d["meters"][1].update(order=1), "orders repeat"),
    ],
)
def test_a_bad_backup_says_where(edit, where):
    doc = json.loads(installed(Cme3100Settings(), 3).export())
    edit(doc)
    with pytest.raises(ConfigError, match=where.replace("[", r"\[").replace("]", r"\]")):
        import_config(json.dumps(doc))


def test_a_backup_with_more_active_meters_than_its_licence_is_refused():
    doc = json.loads(installed(Cme3100Settings(licence=32), 10).export())
    doc["settings"]["licence"] = 8
    with pytest.raises(ConfigError, match="10 active meters exceed the licence of 8"):
        import_config(json.dumps(doc))


CRONS = [*PRESETS, "*/7 * * * *", "0 5 * * *|8 10 * * *|22 17 * * *", "?0-59 * * * *"]
finite = st.floats(min_value=0, max_value=1e5, allow_nan=False)
timing = st.fixed_dictionaries(
    {
        "response_timeout_ms": st.floats(min_value=1, max_value=60_000),
        "readout_retries": st.integers(0, 20),
        "selection_retries": st.integers(0, 20),
        "init_idle_ms": st.floats(min_value=0, max_value=600_000),
        "collision_idle_ms": st.floats(min_value=0, max_value=600_000),
        "request_idle_ms": st.floats(min_value=0, max_value=600_000),
    }
)
report = st.fixed_dictionaries(
    {
        "template": st.sampled_from([1101, 2001, 3001, 3115, 2109]),
        "schedule": st.sampled_from(CRONS),
        "value_period": st.sampled_from(["auto", "3 days", "12 hours"]),
        "value_interval": st.sampled_from(["all", "1h", "1day"]),
        "target": st.sampled_from(["http://h.invalid/a", "ftp://f.invalid/b", "a@b.invalid"]),
        "user": st.none() | st.text(min_size=1, max_size=8),
        "password": st.text(max_size=8),
    }
)
SETTINGS = st.fixed_dictionaries(
    {
        "serial": st.from_regex(r"\A[0-9]{10}\Z"),  # the serial is ASCII digits only
        "licence": st.sampled_from(LICENCE_STEPS),
        "readout_schedule": st.sampled_from(CRONS),
        "search_baud": st.sampled_from([300, 2400, 9600]),
        "search": timing,
        "readout": timing,
        "multi_telegram": st.sampled_from(["off", "auto"]),
        "multi_telegram_limit": st.integers(0, 1000),
        "adaptive_retries": st.booleans(),
        "job_retries": st.integers(0, 20),
        "job_retry_offset_s": finite,
        "http_timeout_s": st.floats(min_value=-1, max_value=1e4),
        "status_byte_logging": st.sampled_from(["always", "never", "on-change", "on-error"]),
        "reports": st.lists(report, max_size=5).map(
            lambda rs: [{**r, "name": f"r{i}"} for i, r in enumerate(rs)]
        ),
        "time": st.fixed_dictionaries(
            {
                "rtc_drift_ppm": st.floats(min_value=-1000, max_value=1000),
                "ntp": st.booleans(),
                "sync_schedule": st.sampled_from(CRONS),
                "accepted_diff_s": finite,
            }
        ),
        "continuous_readout": st.booleans(),
        "job_manual_retries": st.integers(0, 20),
        "auto_config": st.fixed_dictionaries(
            {
                "enabled": st.booleans(),
                "schedule": st.sampled_from(CRONS),
                "url": st.none() | st.just(URL),
            }
        ),
        "snmp": st.fixed_dictionaries(
            {"enabled": st.booleans(), "community": st.from_regex(r"\A[a-z0-9]{1,12}\Z")}
        ),
    }
)


@settings(max_examples=60, deadline=None)
@given(SETTINGS, st.integers(0, 20), st.data())
def test_any_valid_settings_and_meter_list_round_trip(data, meters, draw):
    s = Cme3100Settings.model_validate(data)
    gw = installed(s, meters)
    for m in gw.installation.meters:
        if draw.draw(st.booleans()):
            gw.set_meter_state(m.position, draw.draw(st.sampled_from(["active", "passive"])))
    text = gw.export()
    backup = import_config(text)
    assert backup.settings == gw.settings
    again = gateway(Cme3100Settings())
    again.restore(backup)
    assert again.export() == text
