"""The pytest plugin: rig selection, feature skips, measurements in JUnit/JSON, and inertness."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from importlib.metadata import entry_points
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SIM_RIG = ROOT / "rigs" / "sim.toml"


def _plugin_args() -> list[str]:
    # the entry point exists once the project is pip-installed; load the module otherwise
    installed = any(ep.name == "meterbench" for ep in entry_points(group="pytest11"))
    return [] if installed else ["-p", "simulator.testing.plugin"]


def pytest_in(tmp_path: Path, body: str, *args: str, env: dict | None = None):
    (tmp_path / "test_x.py").write_text(textwrap.dedent(body))
    full_env = {k: v for k, v in os.environ.items() if k != "MBENCH_RIG"}
    full_env.update(env or {})
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-rs",
            *_plugin_args(),
            "test_x.py",
            *args,
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env=full_env,
    )


def test_requires_feature_skips_with_reason_and_runs_when_present(tmp_path):
    proc = pytest_in(
        tmp_path,
        """
        import pytest
        @pytest.mark.requires_feature("unit_load_emulation")
        def test_needs_hw(): pass
        @pytest.mark.requires_feature("virtual_time")
        def test_sim_only(rig): assert rig.name == "sim"
    """,
        f"--rig={SIM_RIG}",
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 passed, 1 skipped" in proc.stdout
    assert "rig 'sim' lacks feature 'unit_load_emulation'" in proc.stdout


def test_measurements_land_in_junit_and_json_and_fail_outside_limits(tmp_path):
    proc = pytest_in(
        tmp_path,
        """
        def test_inside(measure):
            measure("reply delay", 0.012, "s", low=0.00458, high=0.1875)
        def test_outside(measure):
            measure("reply delay", 0.002, "s", low=0.00458, budget={"tolerance_s": 0.001})
    """,
        f"--rig={SIM_RIG}",
        "-o",
        "junit_family=xunit1",
        "--junitxml=j.xml",
        "--mbench-record=rec.json",
    )
    assert proc.returncode == 1
    assert "reply delay = 0.002 s outside [0.00458, +inf] s" in proc.stdout
    junit = (tmp_path / "j.xml").read_text()
    assert junit.count('name="measurement:reply delay"') == 2
    rec = json.loads((tmp_path / "rec.json").read_text())
    by = {t["nodeid"].split("::")[-1]: t for t in rec["tests"]}
    assert by["test_inside"]["outcome"] == "passed"
    assert by["test_inside"]["measurements"][0] == {
        "name": "reply delay",
        "value": 0.012,
        "unit": "s",
        "low": 0.00458,
        "high": 0.1875,
        "budget": None,
        "passed": True,
    }
    assert by["test_outside"]["outcome"] == "failed"
    assert by["test_outside"]["measurements"][0]["passed"] is False
    assert by["test_outside"]["measurements"][0]["budget"] == {"tolerance_s": 0.001}
    assert rec["rig"]["name"] == "sim" and rec["device"]["firmware"] == "meterbench"


def test_rig_from_env_and_bad_rig_is_a_usage_error_listing_problems(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "bad"\nmode = "sim"\nfeatures = ["warp_drive"]\n[dut.mbus]\nbaud = 7\n')
    proc = pytest_in(
        tmp_path,
        "def test_uses_rig(rig): pass\n\ndef test_again(rig): pass\n",
        env={"MBENCH_RIG": str(bad)},
    )
    assert proc.returncode == 4  # pytest's usage error
    out = proc.stdout + proc.stderr
    assert "bad.toml:5" in out and "dut.mbus.baud" in out
    assert out.count("dut.mbus.baud") == 1  # reported once, not once per test


def test_plugin_is_inert_for_tests_that_do_not_use_it(tmp_path):
    # A broken rig is never read when no test asks for the bench: plain tests are unaffected.
    bad = tmp_path / "bad.toml"
    bad.write_text("this is not toml")
    proc = pytest_in(
        tmp_path, "def test_plain(): assert 1 + 1 == 2\n", env={"MBENCH_RIG": str(bad)}
    )
    assert proc.returncode == 0 and "1 passed" in proc.stdout, proc.stdout + proc.stderr


def test_default_rig_is_packaged_copy_outside_a_checkout(tmp_path):
    proc = pytest_in(
        tmp_path,
        """
        from simulator.rig import PACKAGED_SIM_RIG
        def test_default(rig):
            assert rig.path == str(PACKAGED_SIM_RIG)
    """,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_bench_fixtures_run_a_simulated_readout(tmp_path):
    proc = pytest_in(
        tmp_path,
        """
        from simulator.testing.bench import MeterSpec
        def test_read(bench, dut, bus_trace):
            run = bench.setup([MeterSpec(12345678, primary=4)])
            readout = dut.read(4)
            assert readout.ok
            frames = [e for e in bus_trace if e.kind == "frame"]
            assert any(e["summary"].startswith("RSP_UD a=4") for e in frames)
            assert run.trace is bench.current.trace
    """,
        f"--rig={SIM_RIG}",
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
