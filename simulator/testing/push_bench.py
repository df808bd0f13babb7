"""The CMe3100 push suite's bench: run the rig's push scenario and collect the evidence.

On a sim rig the bench runs the rig's ``[push] scenario`` (a ``kind = "cme3100"`` scenario)
through the device registry in virtual time: the emulated meters on the wire, the gateway
model pushing through real clients (HTTP, FTP, SMTP) to real receivers on 127.0.0.1 that fail
during the scenario's outages (:mod:`simulator.gateways.cme3100.real_head_ends`). An arrival
is what the receiver answered, as the client saw it, stamped with world time; SNMP traps go
to the in-world receiver and reach the evidence as the lab's trap receiver would record them
(:func:`sim_traps`). The evidence it hands to
:mod:`simulator.testing.push_checks` is what a lab has too: the frames on the wire and what
each head-end received and answered. What the bench *expects* (which meters are active, how
long a report may hang) comes from the rig's scenario and meter list, not from the model.

On a lab rig the physical gateway is the device under test, fed by the bridge and pushing
to real receivers on the bench host, in real time (:mod:`simulator.testing.push_lab`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from simulator.devices import run_scenario
from simulator.mbus.meterlist import read_meter_list
from simulator.rig import Rig
from simulator.scenario import RunOptions, load_toml
from simulator.testing.bench import BenchError
from simulator.testing.push_checks import Arrival, PushEvidence, TrapArrival


def run_push(
    rig: Rig,
    out: Path,
    confirm: Callable[[str], bool] | None = None,
    *,
    lab_hours: float | None = None,
) -> tuple[PushEvidence, Any]:
    """Run the rig's push scenario into ``out`` (trace, head-end files, summary) and return
    the evidence and the run outcome (None on a lab rig). On a lab rig the pass runs in real
    time through :func:`simulator.testing.push_lab.run_push_lab` for ``lab_hours`` (default
    ``[push] hours``), the setup shown through ``confirm(sheet) -> bool``. Raises :class:`BenchError` for a rig without ``[push]``, a
    lab rig whose adapter cannot be opened, or a lab run without ``confirm``."""
    if rig.push is None:
        raise BenchError(f"rig {rig.name!r} has no [push] section (the push suite's scenario)")
    if rig.mode == "lab":
        check_adapter(rig)  # a missing adapter is named first: that is what the lab fixes
        if confirm is None:
            raise BenchError(
                f"rig {rig.name!r}: the lab push run needs an operator to confirm the setup"
            )
        from simulator.testing.push_lab import run_push_lab

        return run_push_lab(rig, out, confirm, hours=lab_hours), None
    path = rig.resolve(rig.push.scenario)
    doc = load_toml(path)
    # always real: report bytes go through real clients to local receivers (issue 12)
    outcome = run_scenario(doc, RunOptions(out, hours=rig.push.hours, quiet=True, real_sinks=True))
    sim = outcome.simulation
    settings = sim.sc.gateway
    frames = [
        e
        for e in map(json.loads, (out / "trace.jsonl").read_text().splitlines()[1:])
        if e["kind"] == "frame"
    ]
    arrivals = {
        name: [Arrival(t, report, delivery) for t, report, delivery in sink.deliveries]
        for name, sink in sim.sinks.items()
    }
    reports = {
        s.slot.name: {
            "protocol": s.slot.protocol,
            "template": s.slot.template,
            "period_s": s.period_s,
        }
        for s in sim.gateway.slots
    }
    for er in settings.event_reports:
        reports[er.name] = {"protocol": er.protocol, "template": er.template, "period_s": None}
    active, passive = expected_states(doc, settings.licence)
    evidence = PushEvidence(
        frames=frames,
        arrivals=arrivals,
        reports=reports,
        start=sim.sc.start,
        active=active,
        passive=passive,
        timeout_s={p: settings.timeout_s(p) for p in ("http", "ftp", "mail")},
        traps=sim_traps(sim.gateway.snmp),
    )
    return evidence, outcome


def sim_traps(snmp: Any) -> list[TrapArrival]:
    """The notifications of a simulated gateway's SNMP model (:class:`~simulator.gateways.
    cme3100.snmp.SnmpModel`) as the lab's trap receiver records them: one per send, at its
    world s (:func:`~simulator.gateways.cme3100.snmp.attempt_times`), an unanswered send
    (the in-world receiver was down) without varbinds and not ``acknowledged``, the answered
    one with the varbinds the INFORM carries (:func:`~simulator.gateways.cme3100.snmp.
    notification_varbinds`)."""
    from simulator.gateways.cme3100.snmp import attempt_times, notification_varbinds

    s = snmp.settings
    out = []
    for d in snmp.deliveries:
        sends = attempt_times(d.notification.at, s.trap_retries, s.trap_timeout_ms)
        dropped = sends[: max(d.attempts, 1) - 1] if d.ok else sends
        out += [TrapArrival(t, {}, acknowledged=False) for t in dropped]
        if d.ok:
            at = sends[max(d.attempts, 1) - 1]
            out.append(TrapArrival(at, notification_varbinds(d.notification)))
    return sorted(out, key=lambda a: a.t)


def expected_states(doc, licence: int) -> tuple[list[str], list[str]]:
    """The IDs the bench expects active and passive: the meter list's wired meters in list
    order, the first ``licence`` active (seed 002 §6.5: the latest installed turn passive)."""
    ml = doc.data.get("install", {}).get("meter_list")
    if ml is None:
        return [], []
    ids = [e.secondary[:8] for e in read_meter_list(doc.resolve_path(ml)) if e.mode != "esecondary"]
    return ids[:licence], ids[licence:]


def check_adapter(rig: Rig) -> None:
    """Open and close the rig's ``dut`` transport; :class:`BenchError` with the rig, the
    transport and the OS reason when it cannot be opened (a fast dry run of a lab rig)."""
    from simulator.bridge.serve import open_rig_transport
    from simulator.bridge.transports import os_reason

    spec = rig.transport("dut")
    if spec is None:
        raise BenchError(f"rig {rig.name!r} has no transport named 'dut'")
    where = spec.url or spec.tcp or "pty"
    try:
        transport = open_rig_transport(spec)
    except OSError as exc:
        raise BenchError(
            f"rig {rig.name}: transport dut {where} cannot be opened: {os_reason(exc)}"
        ) from None
    try:
        error = getattr(transport, "open_error", None)
        if error is not None:
            raise BenchError(f"rig {rig.name}: transport dut {where} cannot be opened: {error}")
    finally:
        transport.close()


@contextmanager
def snmp_agent_of(outcome: Any, rig: Any = None) -> Iterator[tuple[str, int, str]]:
    """``(host, port, community)`` of the gateway's SNMP agent: on a sim rig the model's
    agent served on 127.0.0.1 for as long as the block runs; on a lab rig (``outcome`` None)
    the unit's agent named by the rig's ``[dut] snmp``. Raises :class:`BenchError` when a
    lab rig names none (the bench cannot look, the unit is not to blame)."""
    if outcome is None:
        address = rig.dut.snmp_address() if rig is not None else None
        if address is None:
            name = rig.name if rig is not None else "?"
            raise BenchError(f"rig {name}: [dut] snmp names no SNMP agent of the unit to read")
        yield (*address, rig.dut.snmp_community)
        return
    from simulator.gateways.cme3100.snmp_agent import SnmpAgent

    with SnmpAgent(outcome.simulation.gateway.snmp, "127.0.0.1", port=0) as agent:
        yield "127.0.0.1", agent.port, "public"
