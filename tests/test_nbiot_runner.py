"""The nbiot runner end to end on a small fleet, through the CLI, and its determinism."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from simulator.cli import main
from simulator.scenario import RunOptions, load_toml

ROOT = Path(__file__).resolve().parent.parent
FLEET = ROOT / "fixtures" / "scenarios" / "nbiot-fleet.toml"

SMALL = textwrap.dedent("""\
    kind = "nbiot"
    name = "small"
    seed = 3
    hours = 25
    [fleet]
    modules = 40
    coupling_loss = { distribution = "uniform", low_db = 130.0, high_db = 162.0 }
    [module]
    transmit_interval_min = 1440
    readouts_per_telegram = 24
    [[time_sync]]
    at_h = 5.5
    modules = [0, 1]
    [output]
    trace = "message"
    """)


def _run(tmp_path: Path, name: str, text: str = SMALL, seed: int | None = None):
    scn = tmp_path / f"{name}.toml"
    scn.write_text(text)
    out = tmp_path / name
    rc = main(
        ["run", str(scn), "--out", str(out), "--quiet"]
        + ([] if seed is None else ["--seed", str(seed)])
    )
    return rc, out


def test_small_fleet_end_to_end_through_the_cli(tmp_path, capsys):
    rc, out = _run(tmp_path, "a")
    assert rc == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["modules"] == 40
    # 01:00 .. 24:00 (the run stops before 25:00), plus the two time-sync readouts
    assert summary["readouts_produced"] == 40 * 24 + 2
    # one daily transmission (00:00-01:00 on day 2) delivers the first 24 hours
    assert 0.8 < summary["delivered_ratio"] <= 1.0
    assert summary["latency_s"]["count"] >= 38
    assert summary["latency_s"]["p50"] > 0
    assert summary["energy_j_per_day"]["mean"] > 0
    spread = summary["transmission_spread"]
    assert 0 <= spread["min_s"] <= spread["max_s"] <= 3600
    assert set(summary["by_ce_level"]) <= {"CE0", "CE1", "CE2", "no coverage"}
    assert summary["design_point_164db"]["target_s"] == 10.0
    for f in (
        "trace.jsonl",
        "modules.csv",
        "latency_hist.png",
        "transmission_spread.png",
        "battery_vs_coupling_loss.png",
    ):
        assert (out / f).stat().st_size > 0
    assert (out / "latency_hist.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len((out / "modules.csv").read_text().splitlines()) == 41
    assert "readouts delivered / produced" in capsys.readouterr().out


def test_same_seed_same_trace_other_seed_other_trace(tmp_path):
    _, a = _run(tmp_path, "a")
    _, b = _run(tmp_path, "b")
    _, c = _run(tmp_path, "c", seed=4)
    ta, tb, tc = ((d / "trace.jsonl").read_bytes() for d in (a, b, c))
    assert ta == tb and len(ta) > 10_000
    assert ta != tc
    assert (a / "modules.csv").read_bytes() == (b / "modules.csv").read_bytes()


def test_bad_scenario_reports_every_problem_and_exits_2(tmp_path, capsys):
    bad = SMALL.replace("modules = 40", "modules = 0").replace(
        "readouts_per_telegram = 24", "readouts_per_telegram = 24\nreadout_interval_min = 2"
    )
    rc, _ = _run(tmp_path, "bad", bad)
    err = capsys.readouterr().err
    assert rc == 2
    assert "fleet.modules" in err and "module.readout_interval_min" in err and "5..1440" in err


def test_shipped_fleet_scenario_validates_and_runs_shortened(tmp_path):
    from simulator.devices import run_scenario

    doc = load_toml(FLEET)
    assert doc.kind == "nbiot"
    doc.data["fleet"]["modules"] = 30
    result = run_scenario(doc, RunOptions(out_dir=tmp_path, hours=25))
    assert result.summary["modules"] == 30
    assert result.summary["readouts_delivered"] > 0
    # the fleet uses the RFC 7925 IoT-profile DTLS timer (docs/nbiot.md, "DTLS timers")
    assert result.summary["dtls_timer_profile"] == "rfc7925"
    ce0 = result.summary["by_ce_level"]["CE0"]
    assert {"ra_collisions", "dtls_retransmissions", "coap_retransmissions"} <= set(ce0)


@pytest.mark.parametrize("protocol", ["mqttsn"])
def test_mqttsn_fleet_delivers(tmp_path, protocol):
    text = SMALL.replace("[module]", f'[module]\nprotocol = "{protocol}"\nmqttsn_qos = 1')
    rc, out = _run(tmp_path, "m", text)
    assert rc == 0
    assert json.loads((out / "summary.json").read_text())["delivered_ratio"] > 0.8


def test_modules_without_coverage_show_no_latency_in_the_console(tmp_path, capsys):
    # nothing delivered -> no latency: the table says "-", not "None s"
    text = SMALL.replace("modules = 40", "modules = 3").replace(
        "low_db = 130.0, high_db = 162.0", "low_db = 180.0, high_db = 185.0"
    )
    rc, out = _run(tmp_path, "dark", text)
    assert rc == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["by_ce_level"]["no coverage"]["latency_p50_s"] is None
    row = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("no coverage")]
    assert len(row) == 1 and row[0].split("|")[1].split(",")[1].strip() == "-", row


def test_short_run_prints_no_none(tmp_path, capsys):
    # issue 16: a run shorter than the first transmission has no latency, spread or KS yet;
    # the console says "-" and why, never "None"
    text = SMALL.replace("hours = 25", "hours = 2")
    rc, out = _run(tmp_path, "short", text)
    assert rc == 0
    printed = capsys.readouterr().out
    assert "latency" in printed and "None" not in printed, printed
    assert "(no telegram arrived)" in printed
    assert "no transmission yet in [0, 3600] s" in printed
    summary = json.loads((out / "summary.json").read_text())
    assert summary["latency_s"]["count"] == 0 and summary["latency_s"]["p50"] is None
