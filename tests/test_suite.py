"""The conformance suite runs on the sim rig (as CI does) and catches a non-conforming master."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SIM_RIG = ROOT / "rigs" / "sim.toml"


def run_suite(out: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "simulator.cli", "suite", "--out", str(out), *args],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=ROOT,
    )


def outcomes(out: Path) -> dict[str, str]:
    record = json.loads((out / "record.json").read_text())
    return {t["nodeid"].split("::")[-1]: t["outcome"] for t in record["tests"]}


def test_suite_passes_on_the_sim_rig(tmp_path):
    proc = run_suite(tmp_path, "--rig", str(SIM_RIG))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    got = outcomes(tmp_path)
    assert len(got) >= 10 and set(got.values()) == {"passed"}, got
    record = json.loads((tmp_path / "record.json").read_text())
    assert record["rig"]["name"] == "sim" and record["device"]["model"] == "CMe3100 (model)"
    assert record["git_commit"] is None or len(record["git_commit"]) == 40
    measured = {m["name"]: m for t in record["tests"] for m in t["measurements"]}
    assert measured["request_idle min"]["low"] < 2.0 <= measured["request_idle min"]["value"] + 1e-6
    assert measured["REQ_UD2 attempts to a silent meter"]["value"] == 2  # readout retries 1
    junit = (tmp_path / "junit.xml").read_text()
    assert 'name="measurement:request_idle min"' in junit
    html = (tmp_path / "report.html").read_text()
    assert "test_secondary_search_finds_every_slave" in html and "request_idle min" in html


def test_suite_catches_a_master_that_ignores_its_idle_times(tmp_path):
    rig = tmp_path / "sloppy.toml"
    rig.write_text(
        SIM_RIG.read_text() + "\n[dut.sim]\nrequest_idle_ms = 500\nreadout_retries = 3\n"
    )
    out = tmp_path / "out"
    proc = run_suite(out, "--rig", str(rig))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    got = outcomes(out)
    assert got["test_request_idle_between_requests"] == "failed"
    assert got["test_silent_meter_retried_exactly_readout_retries_times"] == "failed"
    assert got["test_init_idle_after_snd_nke"] == "passed"
    assert "request_idle min = 0.5" in (out / "report.html").read_text()


def test_missing_features_skip_with_the_reason(tmp_path):
    rig = tmp_path / "plain.toml"
    text = SIM_RIG.read_text()
    start = text.index("features = [")
    end = text.index("]", start) + 1
    rig.write_text(text[:start] + 'features = ["virtual_time"]' + text[end:])
    out = tmp_path / "out"
    proc = run_suite(out, "--rig", str(rig), "-k", "late_reply or one_bus or idle")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    record = json.loads((out / "record.json").read_text())
    skipped = [t for t in record["tests"] if t["outcome"] == "skipped"]
    assert {t["nodeid"].split("::")[-1] for t in skipped} >= {
        "test_late_reply_inside_response_timeout_is_accepted",
        "test_reads_300_and_2400_bit_s_meters_on_one_bus",
        "test_collision_idle_after_collision",
    }
    assert all("lacks feature" in t["message"] for t in skipped)


def test_bad_rig_file_is_one_clear_error_before_any_test_runs(tmp_path):
    rig = tmp_path / "bad.toml"
    rig.write_text('name = "x"\nmode = "simx"\n')
    proc = run_suite(tmp_path / "out", "--rig", str(rig))
    assert proc.returncode == 2
    assert f"{rig}:2: mode:" in proc.stderr and "Traceback" not in proc.stderr + proc.stdout
    assert not (tmp_path / "out").exists()  # no report of a suite that never ran
