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
    assert "unheard_modes = [\"S1\"]" in text
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
