"""End to end: `meterbench run` on mbus scenarios (main() in-process and a subprocess)."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from simulator.cli import main

ROOT = Path(__file__).resolve().parent.parent
SMALL = ROOT / "fixtures" / "scenarios" / "mbus-small.toml"


def test_run_small_scenario_writes_trace_readouts_and_summary(tmp_path, capsys):
    out = tmp_path / "res"
    assert main(["run", str(SMALL), "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "meters found" in printed and "readouts ok / failed" in printed
    summary = json.loads((out / "summary.json").read_text())
    for key in (
        "meters_found",
        "readouts_ok",
        "readouts_failed",
        "collisions",
        "sim_seconds",
        "seed",
        "wall_seconds",
    ):
        assert key in summary, key
    assert summary["meters_found"] == 6 and summary["seed"] == 7
    lines = (out / "trace.jsonl").read_text().splitlines()
    assert lines and all(json.loads(line)["kind"] for line in lines)
    rows = list(csv.DictReader((out / "readouts.csv").open()))
    assert len({r["address"] for r in rows}) >= 4


def test_seed_override(tmp_path):
    assert main(["run", str(SMALL), "--out", str(tmp_path), "--quiet", "--seed", "99"]) == 0
    assert json.loads((tmp_path / "summary.json").read_text())["seed"] == 99


def test_bad_scenario_exits_2_with_every_problem(tmp_path, capsys):
    bad = ROOT / "fixtures" / "scenarios" / "mbus-bad.toml"
    assert main(["run", str(bad), "--out", str(tmp_path), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "10 problem(s)" in err and "mbus-bad.toml:24" in err


def test_default_scenario_from_any_directory(tmp_path):
    """`meterbench run` with no scenario works outside the repository (subprocess)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run(
        [sys.executable, "-m", "simulator.cli", "run", "--hours", "2", "--quiet"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "meterbench-results" / "building"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["scenario"] == "building" and summary["meters_found"] == 30
    assert summary["sim_seconds"] == 7200 and summary["readouts_ok"] > 0
    assert (out / "trace.jsonl").stat().st_size > 0
    assert (out / "readouts.csv").stat().st_size > 0


def test_bad_hours_option_is_a_usage_error_for_every_kind(tmp_path, capsys):
    # nbiot and stream runners crashed in SimPy on --hours 0; mbus blamed the file's hours line
    for name in ("mbus-small", "nbiot-fleet", "stream-small", "cme2100-small"):
        scenario = ROOT / "fixtures" / "scenarios" / f"{name}.toml"
        for hours in ("0", "-2", "nan"):
            with pytest.raises(SystemExit) as exc:
                main(["run", str(scenario), "--hours", hours, "--out", str(tmp_path), "--quiet"])
            assert exc.value.code == 2
            assert f"argument --hours: must be a finite number of hours > 0, got '{hours}'" in (
                capsys.readouterr().err
            )
    assert not any(tmp_path.iterdir())  # nothing ran
