"""Rig files: the shipped rigs validate; bad rigs report every problem with file:line and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulator.rig import KNOWN_FEATURES, PACKAGED_SIM_RIG, default_rig_path, load_rig
from simulator.scenario import ScenarioError

ROOT = Path(__file__).resolve().parent.parent
RIGS = sorted((ROOT / "rigs").glob("*.toml"))


@pytest.mark.parametrize("path", RIGS, ids=[p.stem for p in RIGS])
def test_every_shipped_rig_is_valid(path):
    rig = load_rig(path)
    assert rig.path == str(path)
    assert all(f in KNOWN_FEATURES for f in rig.features)


def test_sim_rig_defaults_are_the_cme3100_factory_settings():
    rig = load_rig(ROOT / "rigs" / "sim.toml")
    m = rig.dut.mbus
    # seed 004 screenshots: 1000 ms, 1, 1, 10000 ms, 5000 ms, 2000 ms
    assert (m.response_timeout_ms, m.readout_retries, m.selection_retries) == (1000, 1, 1)
    assert (m.init_idle_ms, m.collision_idle_ms, m.request_idle_ms) == (10000, 5000, 2000)
    assert m.seconds("request_idle") == 2.0
    assert rig.mode == "sim" and rig.has("virtual_time") and not rig.has("unit_load_emulation")


def test_packaged_copy_matches_the_repository_rig():
    assert PACKAGED_SIM_RIG.read_text() == (ROOT / "rigs" / "sim.toml").read_text()


def test_default_rig_prefers_cwd_then_package(tmp_path):
    assert default_rig_path(tmp_path) == PACKAGED_SIM_RIG
    (tmp_path / "rigs").mkdir()
    (tmp_path / "rigs" / "sim.toml").write_text('name = "mine"\n')
    assert default_rig_path(tmp_path) == tmp_path / "rigs" / "sim.toml"


def test_bad_rig_lists_every_field_error_with_line(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(
        'name = "bad"\n'
        'mode = "sim"\n'
        "[dut.mbus]\n"
        "baud = 1234\n"
        "readout_retries = -1\n"
        "respons_timeout_ms = 5\n"
    )
    with pytest.raises(ScenarioError) as err:
        load_rig(path)
    issues = {i.key: i for i in err.value.issues}
    assert set(issues) == {
        "dut.mbus.baud",
        "dut.mbus.readout_retries",
        "dut.mbus.respons_timeout_ms",
    }
    assert issues["dut.mbus.baud"].line == 4
    assert issues["dut.mbus.readout_retries"].line == 5
    assert "unknown key" in issues["dut.mbus.respons_timeout_ms"].message
    assert str(path) in str(err.value)


def test_cross_field_problems_are_reported_together(tmp_path):
    path = tmp_path / "lab.toml"
    path.write_text(
        'name = "lab"\n'
        'mode = "lab"\n'
        'features = ["virtual_time", "teleportation"]\n'
        "[[transports]]\n"
        'name = "gw"\n'
        'url = "/dev/ttyUSB0"\n'
        "pty = true\n"
    )
    with pytest.raises(ScenarioError) as err:
        load_rig(path)
    text = str(err.value)
    assert "teleportation" in text
    assert "'virtual_time' needs mode" in text
    assert "exactly one of url" in text
    assert 'named "dut"' in text
    assert len(err.value.issues) == 4
    lines = {i.key: i.line for i in err.value.issues}
    assert lines["features.1"] == 3 and lines["transports.0"] == 4


def test_unreadable_and_broken_toml(tmp_path):
    with pytest.raises(ScenarioError, match="cannot read"):
        load_rig(tmp_path / "absent.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text('name = "x"\nmode = \n')
    with pytest.raises(ScenarioError, match=r"broken.toml:2"):
        load_rig(broken)
