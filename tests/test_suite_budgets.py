"""Adapter latency and tolerance in the conformance suite's timing limits.

A lab bench sees a request up to L (``adapter_latency_ms``) after it was on the wire and puts
a reply on the wire up to L after its trace time (simulator/testing/budgets.py). So a gap
between two requests (init idle, timeout + request idle) may look shorter by up to L and its
lower limit is relaxed by L; a gap from a reply to a request can only look longer and is not
relaxed. Checked twice: on hand-built traces with a lab rig, and end to end through
``meterbench suite`` with a simulated master whose idle times are short by a known amount.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from simulator.core import events
from simulator.core.trace import Trace
from simulator.mbus.frames import REQ_UD2, SND_NKE, LongFrame, ShortFrame, frame_facts
from simulator.rig import load_rig
from simulator.testing.budgets import gap_budget, late_reply_delay, span_error
from simulator.testing.plugin import Measurement
from simulator.testing.suites.test_mbus_master import _check_gaps

ROOT = Path(__file__).resolve().parent.parent
SIM_RIG = ROOT / "rigs" / "sim.toml"
LAB_RIG = ROOT / "rigs" / "lab-cme3100-usb.toml"  # adapter_latency_ms 16, tolerance_ms 5
FRAME_5 = 5 * 11 / 2400  # a 5-byte short frame at 2400 bit/s (s)
E5 = 11 / 2400


def test_span_error_per_direction():
    L = 0.016
    assert span_error("request", "request", L) == (L, L)
    assert span_error("reply", "request", L) == (0.0, 2 * L)  # only ever looks longer
    assert span_error("request", "reply", L) == (2 * L, 0.0)  # the wire adds up to 2L
    assert span_error("reply", "request", 0.0) == (0.0, 0.0)


def test_gap_budgets_of_the_lab_rig():
    rig = load_rig(LAB_RIG)
    assert (rig.timing.adapter_latency_ms, rig.timing.tolerance_ms) == (16, 5)
    expect = {
        "request_idle": 2.0 - 0.005,
        "collision_idle": 5.0 - 0.005,
        "timeout+request_idle": 3.0 - 0.005 - 0.016,
        "init_idle": 10.0 - 0.005 - 0.016,
    }
    for rule, low in expect.items():
        b = gap_budget(rig, rule)
        assert b.low == pytest.approx(low, abs=1e-12), rule
        assert b.to_json()["adapter_latency_s"] == 0.016
    assert gap_budget(rig, "init_idle").to_json()["latency_relaxation_s"] == 0.016
    assert gap_budget(rig, "request_idle").to_json()["latency_relaxation_s"] == 0.0


def test_sim_rig_limits_are_unchanged():
    rig = load_rig(SIM_RIG)
    for rule, nominal in [("request_idle", 2.0), ("init_idle", 10.0), ("collision_idle", 5.0)]:
        assert gap_budget(rig, rule).low == pytest.approx(nominal - 1e-6, abs=1e-12)
    assert gap_budget(rig, "timeout+request_idle").low == pytest.approx(3.0 - 1e-6, abs=1e-12)
    assert late_reply_delay(rig) == (0.8, 0.8)


def test_late_reply_is_kept_inside_the_timeout_on_the_wire(tmp_path):
    rig = load_rig(LAB_RIG)
    delay, latest = late_reply_delay(rig)
    assert (delay, latest) == (0.8, pytest.approx(0.832))
    tight = tmp_path / "tight.toml"
    tight.write_text(
        LAB_RIG.read_text().replace("response_timeout_ms = 1000", "response_timeout_ms = 100")
    )
    delay, latest = late_reply_delay(load_rig(tight))
    assert delay == pytest.approx(0.1 - 0.032 - 0.005) and latest == pytest.approx(0.095)
    none = tmp_path / "none.toml"
    none.write_text(
        LAB_RIG.read_text().replace("response_timeout_ms = 1000", "response_timeout_ms = 30")
    )
    with pytest.raises(ValueError, match="no room"):
        late_reply_delay(load_rig(none))


# -- hand-built traces through the suite's own gap check ----------------------------------------
def _readout_trace(init_gap: float, request_gap: float) -> Trace:
    """SND_NKE to 3, E5, REQ_UD2 after ``init_gap`` (from the SND_NKE's end), RSP_UD, then a
    REQ_UD2 to 4 ``request_gap`` after that reply's end. Bench-side times, as a lab records."""
    tr = Trace()

    def frame(t, end, direction, data, **kw):
        facts = frame_facts(data)
        tr.record(
            events.Frame(
                t=t,
                source="bus",
                direction=direction,
                hex=data.hex(),
                summary=facts.summary,
                outcome="ok",
                baud=2400,
                end=end,
                **facts.trace_fields(),
                **kw,
            )
        )

    def req(c, a):
        return ShortFrame(c, a).to_bytes()

    rsp = LongFrame(0x08, 3, 0x72, bytes(12)).to_bytes()
    frame(0.0, FRAME_5, "m2s", req(SND_NKE, 3))
    frame(FRAME_5 + 0.01, FRAME_5 + 0.01 + E5, "s2m", b"\xe5", senders=["s3"])
    t = FRAME_5 + init_gap
    frame(t, t + FRAME_5, "m2s", req(REQ_UD2, 3))
    reply_end = t + FRAME_5 + 0.3
    frame(t + FRAME_5 + 0.01, reply_end, "s2m", rsp, senders=["s3"])
    frame(reply_end + request_gap, reply_end + request_gap + FRAME_5, "m2s", req(REQ_UD2, 4))
    return tr


def _run_check(trace: Trace, rig, rule: str) -> Measurement:
    taken: list[Measurement] = []

    def measure(name, value, unit, low=None, high=None, *, budget=None, samples=None):
        budget = budget.to_json() if hasattr(budget, "to_json") else budget
        taken.append(Measurement(name, float(value), unit, low, high, budget, samples))
        return taken[-1]

    _check_gaps(trace, rig, measure, rule)
    assert len(taken) == 1
    return taken[0]


@pytest.mark.parametrize(
    ("short_ms", "passes"), [(0.0, True), (15.0, True), (17.0, False), (30.0, False)]
)
def test_lab_init_idle_short_by_less_than_the_latency_passes(short_ms, passes):
    rig = load_rig(LAB_RIG)  # L = 16 ms, tolerance 5 ms: the limit is 10 s - 21 ms
    m = _run_check(_readout_trace(10.0 - 0.005 - short_ms / 1000, 2.5), rig, "init_idle")
    assert m.value == pytest.approx(10.0 - 0.005 - short_ms / 1000, abs=1e-9)
    assert m.passed is passes
    assert m.budget["latency_relaxation_s"] == 0.016 and m.budget["span"] == "request -> request"


@pytest.mark.parametrize(("short_ms", "passes"), [(0.0, True), (4.0, True), (8.0, False)])
def test_lab_request_idle_is_not_relaxed_by_the_latency(short_ms, passes):
    # a reply -> request gap only looks longer on the bench: tolerance only (5 ms)
    rig = load_rig(LAB_RIG)
    m = _run_check(_readout_trace(10.0, 2.0 - short_ms / 1000), rig, "request_idle")
    assert m.passed is passes
    assert m.budget["latency_relaxation_s"] == 0.0 and m.low == pytest.approx(1.995)


# -- end to end: `meterbench suite` on a sim rig with adapter latency and a short master --------
def _suite(tmp_path: Path, name: str, sim_section: str) -> dict[str, dict]:
    rig = tmp_path / f"{name}.toml"
    text = SIM_RIG.read_text().replace("adapter_latency_ms = 0", "adapter_latency_ms = 16")
    rig.write_text(text + "\n[dut.sim]\n" + textwrap.dedent(sim_section))
    out = tmp_path / name
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "simulator.cli",
            "suite",
            "--out",
            str(out),
            "--rig",
            str(rig),
            "-k",
            "init_idle or silent or request_idle_between",
        ],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=ROOT,
    )
    record = json.loads((out / "record.json").read_text())
    tests = {t["nodeid"].split("::")[-1]: t for t in record["tests"]}
    assert len(tests) == 3, proc.stdout + proc.stderr
    return tests


def _gap(tests, test: str) -> dict:
    return next(m for m in tests[test]["measurements"] if m["name"].endswith(" min"))


def test_suite_relaxes_request_to_request_gaps_by_the_adapter_latency(tmp_path):
    # 8 ms short (< L = 16 ms): init idle and timeout + request idle pass; request idle
    # (reply -> request, not relaxed) fails
    tests = _suite(tmp_path, "short8", "init_idle_ms = 9992\nrequest_idle_ms = 1992\n")
    assert tests["test_init_idle_after_snd_nke"]["outcome"] == "passed"
    assert tests["test_silent_meter_retried_exactly_readout_retries_times"]["outcome"] == "passed"
    assert tests["test_request_idle_between_requests"]["outcome"] == "failed"
    init = _gap(tests, "test_init_idle_after_snd_nke")
    assert init["value"] == pytest.approx(9.992, abs=1e-3) and init["low"] < init["value"]
    assert init["budget"]["latency_relaxation_s"] == 0.016
    silent = _gap(tests, "test_silent_meter_retried_exactly_readout_retries_times")
    assert silent["value"] == pytest.approx(2.992, abs=1e-3)
    assert _gap(tests, "test_request_idle_between_requests")["budget"]["latency_relaxation_s"] == 0


def test_suite_fails_gaps_short_by_more_than_the_adapter_latency(tmp_path):
    tests = _suite(tmp_path, "short24", "init_idle_ms = 9976\nresponse_timeout_ms = 976\n")
    assert tests["test_init_idle_after_snd_nke"]["outcome"] == "failed"
    assert tests["test_silent_meter_retried_exactly_readout_retries_times"]["outcome"] == "failed"
    assert tests["test_request_idle_between_requests"]["outcome"] == "passed"
    assert _gap(tests, "test_init_idle_after_snd_nke")["value"] == pytest.approx(9.976, abs=1e-3)
