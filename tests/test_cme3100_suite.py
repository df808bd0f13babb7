"""The CMe3100 push suite passes on the sim rig, and each of its checks fails when the model is
broken on purpose (issue 12: "a mutation test per check, kept as tests")."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from simulator.rig import load_rig
from simulator.testing import push_checks as pc
from simulator.testing.bench import BenchError
from simulator.testing.push_bench import run_push

ROOT = Path(__file__).resolve().parent.parent
RIG = ROOT / "rigs" / "sim-cme3100.toml"


def test_the_push_suite_passes_on_the_sim_rig():
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rig", str(RIG)]
        + ["-m", "cme3100", "simulator/testing/suites"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "8 passed" in proc.stdout and "failed" not in proc.stdout


def evidence(tmp_path, hours: float):
    rig = load_rig(RIG)
    rig = rig.model_copy(update={"push": rig.push.model_copy(update={"hours": hours})})
    return run_push(rig, tmp_path / "run")


def test_the_unbroken_model_passes_every_check(tmp_path):
    ev, outcome = evidence(tmp_path, 12)
    assert pc.check_values(ev) == []
    assert pc.check_schedule(ev, 900, 30, outcome.summary["sim_seconds"]) == []
    for name in ("values-http", "status-http"):
        assert pc.check_retries(ev, name) == []
    assert pc.check_recovery(ev, "values-http") == []
    assert pc.check_events(ev, "events", ["startup", "readout-failed"]) == []


def test_mutation_values_stamped_with_a_wrong_read_time(tmp_path, monkeypatch):
    from simulator.gateways.cme3100 import gateway

    real = gateway.Readout

    def late(**kw):  # the gateway stamps each value two minutes after it read it
        from datetime import timedelta

        kw["read_at"] += timedelta(minutes=2)
        return real(**kw)

    monkeypatch.setattr(gateway, "Readout", late)
    ev, _ = evidence(tmp_path, 2)
    assert pc.check_values(ev)


def test_mutation_rounds_off_the_clock(tmp_path, monkeypatch):
    from simulator.gateways.cme3100 import gateway

    parse = gateway.parse_schedule
    monkeypatch.setattr(gateway, "parse_schedule", lambda text, rng=None: parse("5-59/15 * * * *"))
    ev, outcome = evidence(tmp_path, 2)
    assert pc.check_schedule(ev, 900, 30, outcome.summary["sim_seconds"])


def test_mutation_a_passive_meter_read(tmp_path, monkeypatch):
    from simulator.gateways.cme3100.installation import Installation

    monkeypatch.setattr(Installation, "active", lambda self: list(self.meters))
    ev, outcome = evidence(tmp_path, 1)
    assert pc.check_schedule(ev, 900, 30, outcome.summary["sim_seconds"])


def test_mutation_a_skipped_retry(tmp_path, monkeypatch):
    from simulator.gateways.cme3100 import gateway, push

    plan = push.slot_plan

    def one_less(*a):
        rule = plan(*a)
        return lambda p: push.RetryPlan(max(0, rule(p).count - 1), rule(p).spacing_s)

    monkeypatch.setattr(gateway, "slot_plan", one_less)
    ev, _ = evidence(tmp_path, 9)
    assert pc.check_retries(ev, "status-http")  # hourly: 2 retries at 300 s, one missing


def test_mutation_a_failed_report_settled_as_delivered(tmp_path, monkeypatch):
    from simulator.gateways.cme3100.value_period import DeliveryLedger

    settle = DeliveryLedger.settle
    monkeypatch.setattr(DeliveryLedger, "settle", lambda self, sel, ok: settle(self, sel, True))
    ev, _ = evidence(tmp_path, 9)
    assert pc.check_recovery(ev, "values-http")


def test_mutation_the_push_timeout_ignored(tmp_path, monkeypatch):
    from simulator.gateways.cme3100 import push

    monkeypatch.setattr(push, "SERVER_TIMEOUT_S", 0.0)
    real_init = push.PushSlot.__init__

    def no_timeout(self, *a, **kw):
        real_init(self, *a, **kw)
        self.timeout_s = 0.0  # a hung attempt is given up at once

    monkeypatch.setattr(push.PushSlot, "__init__", no_timeout)
    ev, _ = evidence(tmp_path, 12)
    assert pc.check_retries(ev, "values-http") or pc.check_retries(ev, "status-http")


def test_mutation_failed_meters_reported_ok(tmp_path, monkeypatch):
    import dataclasses

    from simulator.gateways.cme3100.gateway import Cme3100

    real = Cme3100.meter_entries
    monkeypatch.setattr(
        Cme3100,
        "meter_entries",
        lambda self: [dataclasses.replace(e, last_status="ok") for e in real(self)],
    )
    ev, _ = evidence(tmp_path, 2)
    assert pc.failed_meters_in_status_report(ev, "status-http") == {}  # the suite's check sees it


def test_mutation_an_event_never_sent(tmp_path, monkeypatch):
    from simulator.gateways.cme3100.gateway import Cme3100

    raise_event = Cme3100.raise_event

    def without_readout_failed(self, name, *a, **kw):
        return None if name == "readout-failed" else raise_event(self, name, *a, **kw)

    monkeypatch.setattr(Cme3100, "raise_event", without_readout_failed)
    ev, _ = evidence(tmp_path, 1)
    assert pc.check_events(ev, "events", ["readout-failed"])


def test_a_lab_rig_is_a_bench_error_not_a_device_failure(tmp_path):
    from simulator.rig import TransportSpec

    pty = [TransportSpec(name="dut", pty=True)]  # an adapter that opens: the next reason shows
    rig = load_rig(RIG).model_copy(update={"mode": "lab", "transports": pty})
    with pytest.raises(BenchError, match="needs an operator to confirm"):
        run_push(rig, tmp_path)


def test_the_lab_rig_collects_without_hardware_and_a_dry_run_errors_with_the_adapter():
    lab = ROOT / "rigs" / "lab-cme3100-push.toml"
    base = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rig", str(lab)]
    args = ["-m", "cme3100", "simulator/testing/suites"]
    collect = subprocess.run(
        [*base, *args, "--collect-only"], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert collect.returncode == 0 and "8/18 tests collected" in collect.stdout, collect.stdout
    run = subprocess.run([*base, *args], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert run.returncode == 1 and "8 errors" in run.stdout and " failed," not in run.stdout
    assert "transport dut /dev/ttyUSB0 cannot be opened" in run.stdout  # the adapter's reason


def test_mutation_snmp_meter_status_always_read(tmp_path, monkeypatch):
    """A model whose SNMP Meter Status List says "read" for every meter: the suite's SNMP
    reading (through the agent and a manager) shows no failed meter any more."""
    from simulator.gateways.cme3100.readout import ReadoutStatus
    from simulator.gateways.cme3100.snmp import METER_ENTRY, METER_STATUS, METER_TABLE, SnmpModel
    from simulator.testing.push_bench import snmp_agent_of
    from simulator.testing.snmp_manager import snmp_walk

    def all_ok(run):
        return lambda self, at, results: run(self, at, dict.fromkeys(results, ReadoutStatus.OK))

    def codes(ev_outcome):
        with snmp_agent_of(ev_outcome) as (host, port, _community):
            rows = snmp_walk(host, port, METER_TABLE)
        return sorted(v for o, v in rows if o[len(METER_ENTRY)] == METER_STATUS)

    _, outcome = evidence(tmp_path / "good", 2)
    assert 3 in codes(outcome)  # the unbroken model shows its failed meters
    monkeypatch.setattr(SnmpModel, "readout_round", all_ok(SnmpModel.readout_round))
    _, outcome = evidence(tmp_path / "broken", 2)
    assert 3 not in codes(outcome)


def test_quick_selects_the_lab_tests_that_fit_30_minutes():
    """Issue 12: ``--quick`` keeps the push tests whose stated lab duration fits the quick
    pass (plugin.QUICK_LAB_MINUTES) and deselects the rest; collection needs no hardware."""
    import subprocess
    import sys
    from pathlib import Path

    from simulator.testing.plugin import QUICK_LAB_MINUTES

    root = Path(__file__).resolve().parent.parent
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--collect-only"]
    cmd += ["--rig", str(root / "rigs" / "lab-cme3100-push.toml"), "-m", "cme3100"]
    cmd += [str(root / "simulator" / "testing" / "suites")]
    quick = subprocess.run([*cmd, "--quick"], capture_output=True, text=True, timeout=120)
    full = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    names = lambda p: {ln.split("::")[-1] for ln in p.stdout.splitlines() if "::" in ln}  # noqa: E731
    assert names(quick) == {
        "test_every_reported_value_is_what_the_meter_sent",
        "test_licence_the_latest_installed_are_not_read",
        "test_failed_meters_show_in_the_status_report_and_snmp",
        "test_documented_events_arrive",
    }, quick.stdout
    assert len(names(full)) == 8 and names(quick) < names(full)
    assert QUICK_LAB_MINUTES + 5 <= 30  # the pass plus setup stays within 30 min


def test_the_sim_rig_gives_its_traps_as_the_lab_receiver_would(tmp_path):
    """The suite's meters fail from the first round on: the aggregated status goes OK ->
    WARNING (Table 8) and one INFORM reaches the in-world receiver, in PushEvidence.traps
    with the varbinds a real trap receiver decodes (tests/test_push_lab_protocols.py)."""
    from simulator.gateways.cme3100.snmp import SNMP_TRAP_OID, STATUS_CHANGE, SYS_UPTIME

    ev, outcome = evidence(tmp_path, 1)
    first_read = min(f["t"] for f in ev.frames if f["direction"] == "m2s")
    assert [(t.status, t.acknowledged) for t in ev.traps] == [(2, True)], ev.traps
    (trap,) = ev.traps
    assert list(trap.varbinds)[:2] == [SYS_UPTIME, SNMP_TRAP_OID] and trap.trap_oid == STATUS_CHANGE
    assert first_read < trap.t < 1800  # after the gateway first read, in the first rounds
    assert trap.varbinds[SYS_UPTIME] == round(trap.t * 100)  # the agent started at 0


def test_mutation_a_trap_carrying_the_old_status(tmp_path, monkeypatch):
    """A model whose notification carries the status it left instead of the new one: the
    trap check (Table 8) sees the last trap disagree with the agent's WARNING."""
    from simulator.gateways.cme3100 import snmp

    ev, _ = evidence(tmp_path / "good", 1)
    assert pc.check_status_traps(ev, 2) == []
    real = snmp.Notification
    swapped = lambda at, r, old, new, up: real(at, r, new, old, up)  # noqa: E731
    monkeypatch.setattr(snmp, "Notification", swapped)
    ev, _ = evidence(tmp_path / "broken", 1)
    (problem,) = pc.check_status_traps(ev, 2)
    assert problem.startswith("the last trap (") and problem.endswith("says 1, not 2"), problem
    assert pc.check_status_traps(ev.__class__(**{**ev.__dict__, "traps": []}), 2) == [
        "no SNMP trap arrived"
    ]
