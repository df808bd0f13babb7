"""The suite's HTML report: run facts, a measurement table per test, the timing histogram per
baud, evidence links, JUnit properties matching the record; and the page as a real browser
(headless Chromium) draws it."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from simulator import __version__
from simulator.testing import browser
from simulator.testing.html_report import render

ROOT = Path(__file__).resolve().parent.parent
SIM_RIG = ROOT / "rigs" / "sim.toml"
LAB_RIG = ROOT / "rigs" / "lab-cme3100-usb.toml"
BAR_BLUE = (0x3B, 0x6E, 0xA8)  # report_plots' histogram bars


def suite(out: Path, rig: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "simulator.cli", "suite", "--rig", str(rig), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=ROOT,
    )


@pytest.fixture(scope="module")
def sim_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sim-suite")
    proc = suite(out, SIM_RIG)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out


def _text(html: str) -> str:
    return re.sub(r"<[^>]+>", " ", html)


def test_report_header_has_the_run_facts(sim_run):
    record = json.loads((sim_run / "record.json").read_text())
    text = _text((sim_run / "report.html").read_text())
    for fact in (
        __version__,
        "sim",
        "none (simulated",  # the sim rig has no transport (the plugin says "none (simulated DUT)")
        "CMe3100 (model)",
        record["device"]["firmware"],
        record["git_commit"] or "unknown",
    ):
        assert fact in text, fact
    for label in ("meterbench version", "adapter / transport", "DUT serial", "git commit"):
        assert label in text


def test_lab_rig_header_names_its_adapter(tmp_path):
    # the lab dry run fails fast (no /dev/ttyUSB0) but the report still says where it looked
    suite(tmp_path, LAB_RIG)
    text = _text((tmp_path / "report.html").read_text())
    assert "dut: /dev/ttyUSB0 2400 bit/s 8N1" in text
    assert "lab-cme3100-usb" in text and "1.9.3" in text


def test_every_measurement_is_a_row_with_value_unit_limits_and_verdict(sim_run):
    record = json.loads((sim_run / "record.json").read_text())
    html = (sim_run / "report.html").read_text()
    rows = re.findall(
        r"<tr><td>([^<]*)</td><td class='num'>([^<]*)</td><td>([^<]*)</td>"
        r"<td class='num'>([^<]*)</td><td class='num'>([^<]*)</td>"
        r"<td class='(PASS|FAIL)'>",
        html,
    )
    want = [m for t in record["tests"] for m in t["measurements"]]
    assert len(rows) == len(want) >= 10
    for (name, value, unit, low, high, verdict), m in zip(rows, want, strict=True):
        assert name == m["name"] and unit == m["unit"]
        assert float(value) == pytest.approx(m["value"], rel=1e-5)
        assert low == ("" if m["low"] is None else f"{m['low']:.6g}")
        assert high == ("" if m["high"] is None else f"{m['high']:.6g}")
        assert verdict == ("PASS" if m["passed"] else "FAIL")


def test_junit_properties_carry_the_same_measurements(sim_run):
    record = json.loads((sim_run / "record.json").read_text())
    props = {
        p.get("name")[len("measurement:") :]: json.loads(p.get("value"))
        for p in ET.parse(sim_run / "junit.xml").iter("property")
        if p.get("name", "").startswith("measurement:")
    }
    want = {m["name"]: m for t in record["tests"] for m in t["measurements"]}
    assert props == want
    # the gap measurements keep every gap (the histograms' data), not only the min
    gaps = want["request_idle min"]
    assert len(gaps["samples"]) >= 2 and min(gaps["samples"]) == gaps["value"]


def test_timing_histogram_per_baud_is_embedded(sim_run):
    html = (sim_run / "report.html").read_text()
    imgs = re.findall(
        r"<img alt='timing histogram at (\d+) bit/s' src='data:image/png;base64,", html
    )
    assert imgs == ["2400"]


def test_failed_measurement_and_evidence_links(tmp_path):
    evidence = tmp_path / "evidence" / "test_a"
    record = {
        "rig": {"name": "r", "mode": "lab", "transport": "dut: /dev/ttyUSB9"},
        "device": {"model": "CMe3100", "serial": "12345678", "firmware": "2.0", "mbus": {}},
        "meterbench_version": "9.9.9",
        "tests": [
            {
                "nodeid": "t.py::test_a",
                "outcome": "failed",
                "duration_s": 1.0,
                "message": "boom",
                "evidence": {"trace": str(evidence / "trace.jsonl"), "wire log": "w/wire.log"},
                "measurements": [
                    {
                        "name": "gap",
                        "value": 0.5,
                        "unit": "ms",
                        "low": 1.0,
                        "high": None,
                        "budget": {"baud": 300},
                        "passed": False,
                        "samples": [0.5, 2.0, 3.0],
                    },
                ],
            },
            {
                "nodeid": "t.py::test_b",
                "outcome": "passed",
                "measurements": [],
                "evidence": str(evidence),
            },
        ],
    }
    html = render(record, base=tmp_path)
    text = _text(html)
    assert "9.9.9" in text and "12345678" in text and "dut: /dev/ttyUSB9" in text
    assert "<td class='FAIL'>FAIL</td>" in html
    assert "<a href='evidence/test_a/trace.jsonl'>trace</a>" in html
    assert "<a href='w/wire.log'>wire log</a>" in html
    assert "<a href='evidence/test_a'>evidence</a>" in html
    assert "timing histogram at 300 bit/s" in html


def screenshot(html: Path, png: Path, height: int = 2400) -> Path:
    """Headless Chromium's screenshot of the page ``html`` (1200 px wide)."""
    if browser.chromium() is None:
        pytest.skip("no chromium binary on PATH (apt-get install chromium) to draw the report")
    return browser.screenshot(html, png, height=height)


def test_report_drawn_by_chromium_shows_text_tables_and_histogram(sim_run, tmp_path):
    PIL = pytest.importorskip("PIL.Image", reason="Pillow is needed to look at the screenshot")
    from PIL import ImageStat

    png = screenshot(sim_run / "report.html", tmp_path / "report.png", height=4000)
    assert png.stat().st_size > 20_000
    img = PIL.open(png).convert("RGB")
    assert img.size == (1200, 4000)
    assert max(ImageStat.Stat(img).stddev) > 20  # not a blank page
    # the histogram PNG was decoded and drawn: its bar colour is on screen
    colours = img.resize((300, 1000)).getcolors(maxcolors=300 * 1000)
    bars = sum(
        n for n, px in colours if all(abs(a - b) < 12 for a, b in zip(px, BAR_BLUE, strict=True))
    )
    assert bars > 50, bars
