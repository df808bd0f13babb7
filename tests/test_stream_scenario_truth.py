"""Issue 16 "Scenario truth": shipped stream scenarios are physically sensible (every meter's
radio mode is one a receiver listens to, unless the file says it studies exactly that)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from simulator.devices import run_scenario
from simulator.scenario import RunOptions, ScenarioError, load_toml
from simulator.wmbus.receiver import RADIO_MODES
from simulator.wmbus.scenario_model import validate

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "fixtures" / "scenarios"

DEAF = """\
kind = "stream"
name = "deaf-s1"
seed = 2
hours = 1.0
[meters]
count = 300
width_m = 400.0
height_m = 400.0
modes = { T1 = 0.5, S1 = 0.5 }
[receivers]
grid = [2, 2]
radio_mode = "T1_C1A_C1B"
[report]
plots = false
"""


@pytest.mark.parametrize("path", sorted(SCENARIOS.glob("stream*.toml")), ids=lambda p: p.stem)
def test_every_shipped_meter_mode_is_heard_by_the_receivers(path):
    sc = validate(load_toml(path))
    hears = RADIO_MODES[sc.receivers.radio_mode]
    sent = {mode for mode, weight in sc.meters.modes.items() if weight > 0}
    assert sent <= hears | set(sc.meters.unheard_modes), (path.name, sent - hears)
    assert not sc.meters.unheard_modes  # no shipped scenario studies unheard meters


def test_meters_in_a_mode_no_receiver_hears_are_an_error_at_their_line(tmp_path):
    path = tmp_path / "deaf.toml"
    path.write_text(DEAF)
    with pytest.raises(ScenarioError) as exc:
        run_scenario(load_toml(path), RunOptions(out_dir=tmp_path / "o"))
    assert len(exc.value.issues) == 1
    text = str(exc.value)
    assert "deaf.toml:9: meters.modes: S1 meters (50 % of the meters)" in text, text
    assert 'unheard_modes = ["S1"]' in text
    assert not (tmp_path / "o" / "trace.jsonl").exists()  # nothing built


def test_a_scenario_that_studies_unheard_meters_says_so_and_they_stay_unheard(tmp_path):
    path = tmp_path / "deaf.toml"
    path.write_text(DEAF.replace("modes = {", 'unheard_modes = ["S1"]\nmodes = {'))
    res = run_scenario(load_toml(path), RunOptions(out_dir=tmp_path / "o"))
    rows = list(csv.DictReader((tmp_path / "o" / "meters.csv").open()))
    s1 = [r for r in rows if r["mode"] == "S1"]
    t1 = [r for r in rows if r["mode"] == "T1"]
    assert len(s1) > 100 and len(t1) > 100
    assert all(r["heard_by_receivers"] == "0" for r in s1)  # the physics the check guards
    assert sum(r["heard_by_receivers"] != "0" for r in t1) > 0.5 * len(t1)
    assert res.summary["meters_heard"] < len(rows)


def test_unheard_modes_names_only_known_modes(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(DEAF.replace("modes = {", 'unheard_modes = ["S9"]\nmodes = {'))
    with pytest.raises(ScenarioError) as exc:
        validate(load_toml(path))
    assert ":9: meters.unheard_modes" in str(exc.value) and "S9" in str(exc.value)


# -- the Stream Plugin in a run: CAD auto-configuration on its cron, show.only.filtered ------

SMALL = (SCENARIOS / "stream-small.toml").read_text()
CAD = """\
Sync-Mode: server
Sync-Id: night
Sync-Notify-URL: http://results.invalid/notify
Sync-Config-0: filter.manufacturer=ELV|/currentpluginconfig/stream.cfg
"""


def _small(tmp_path: Path, properties: str, extra: str = "", hours: float = 1.0, base=SMALL):
    """stream-small with these plugin properties and extra tables, without plots."""
    text = base.replace('"filter.manufacturer" = "ELV,KAM" }', properties + " }").replace(
        "[report]", extra + "\n[report]\nplots = false"
    )
    path = tmp_path / "small.toml"
    path.write_text(text)
    out = tmp_path / "out"
    return run_scenario(load_toml(path), RunOptions(out_dir=out, hours=hours)), out


SYNC = (
    '"filter.manufacturer" = "ELV,KAM", "sync.enabled" = "true", '
    '"configuration.server.url" = "http://cfg.invalid/stream.cad", '
    '"configuration.server.cron" = "30 * * * *"'
)


def test_cad_auto_configuration_runs_on_its_cron_and_applies(tmp_path):
    (tmp_path / "stream.cad").write_text(CAD)
    server = '[config_server]\nfiles = { "http://cfg.invalid/stream.cad" = "stream.cad" }'
    res, _out = _small(tmp_path, SYNC, server)
    syncs = res.simulation.ctx.world.trace.select("cad_sync")
    # 4 plugins, one firing each at 00:30 in one hour
    assert [(e.t, e["code"], e["sync_id"]) for e in syncs] == [(1800.0, 900, "night")] * 4
    assert all(e["applied"] == ["filter.manufacturer"] for e in syncs)
    a = res.summary["auto_configuration"]
    assert a == {"syncs": 4, "result_codes": {"900": 4}, "notifications": 4}
    # applied: KAM telegrams were accepted before 00:30 and are filtered after it
    makers = {f"{m.id:08d}": m.manufacturer for m in res.simulation.setup.meters}
    rx = res.simulation.ctx.world.trace.select("stream_rx")
    kam = [e for e in rx if makers[e["meter"]] == "KAM"]
    assert any(e["accepted"] for e in kam if e.t < 1800)
    assert kam and not any(e["accepted"] for e in kam if e.t > 1800)
    assert ("CAD auto-configuration", "4 syncs (900 x4)") in res.table


def test_cad_result_codes_for_a_missing_file_and_a_wrong_mode(tmp_path):
    (tmp_path / "client.cad").write_text(CAD.replace("Sync-Mode: server", "Sync-Mode: client"))
    server = '[config_server]\nfiles = { "http://cfg.invalid/stream.cad" = "client.cad" }'
    res, _ = _small(tmp_path, SYNC, server)
    assert res.summary["auto_configuration"]["result_codes"] == {"920": 4}
    res, _ = _small(tmp_path, SYNC)  # no such file on the configuration server: 921
    assert res.summary["auto_configuration"]["result_codes"] == {"921": 4}
    syncs = res.simulation.ctx.world.trace.select("cad_sync")
    assert "HTTP 404" in syncs[0]["problems"][0]


def test_without_sync_enabled_nothing_is_fetched_and_the_summary_has_no_cad_key(tmp_path):
    res, _ = _small(tmp_path, '"filter.manufacturer" = "ELV,KAM"')
    assert "auto_configuration" not in res.summary
    assert not res.simulation.ctx.world.trace.select("cad_sync")


def test_sync_on_the_kernel_engine_is_an_error_at_its_line(tmp_path):
    path = tmp_path / "k.toml"
    path.write_text(
        DEAF.replace('"T1_C1A_C1B"', '"S1"')
        .replace("[report]", '[plugin]\nproperties = { "sync.enabled" = "true" }\n[report]')
        .replace("T1 = 0.5, S1 = 0.5", "S1 = 1.0")
    )
    with pytest.raises(ScenarioError) as exc:
        validate(load_toml(path))
    assert ":14: plugin.properties.sync.enabled" in str(exc.value), str(exc.value)
    assert 'engine = "event"' in str(exc.value)


@pytest.mark.parametrize("only", [False, True])
def test_show_only_filtered_lists_only_accepted_meters_in_the_analyzer(tmp_path, only):
    props = '"filter.manufacturer" = "ELV,KAM"' + (
        ', "show.only.filtered" = "true"' if only else ""
    )
    _res, out = _small(tmp_path, props, hours=0.5)
    rows = [
        line.split(";")
        for k in range(4)
        for line in (out / f"analyzer-rx0{k}.csv").read_text().splitlines()[1:]
    ]
    assert rows and {r[4] for r in rows if r[1] == "Accepted"} == {"ELV", "KAM"}
    filtered = [r for r in rows if r[1] == "Filtered"]
    if only:
        assert filtered == []  # seed 003 §6.1: only filtered (accepted) meters in the UI
    else:
        assert filtered and {r[4] for r in filtered} == {"DME"}


def test_a_cad_cannot_send_a_run_with_a_real_server_to_the_outside(tmp_path):
    # [plugin] sink = "http": pushes go to a real local server; a CAD that points
    # receiving.server.url elsewhere makes those pushes fail in the bench, not leave it
    cad = CAD.replace("filter.manufacturer=ELV", "receiving.server.url=http://evo.elvaco.se/sp/")
    (tmp_path / "stream.cad").write_text(cad)
    server = '[config_server]\nfiles = { "http://cfg.invalid/stream.cad" = "stream.cad" }'
    text = SMALL.replace("push = true", 'push = true\nsink = "http"')
    res, _ = _small(tmp_path, SYNC, server, base=text)
    pushes = res.simulation.ctx.world.trace.select("stream_push")
    before = [e for e in pushes if e.t < 1800]
    after = [e for e in pushes if e.t > 1800]
    assert before and all(e["ok"] for e in before)
    assert after and not any(e["ok"] for e in after)
    assert all("outside the bench" in str(e["status"]) for e in after)
