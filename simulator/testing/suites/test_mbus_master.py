"""Conformance and timing suite for a gateway's M-Bus master (EN 13757-2/-3, seed 002 §6.25).

Runs unchanged on every rig (``meterbench suite --rig RIG``): each test sets up simulated
meters on the bench, lets the device under test do one procedure, and checks the bus
``frame`` events of the trace (:mod:`simulator.testing.observe`). Limits come from the rig's
``[dut.mbus]`` settings (Table 7: response timeout, readout/selection retries, init /
collision / request idle times), widened by the rig's ``[timing]`` budgets
(:mod:`simulator.testing.budgets`). Return values of the procedures are checked too where the
device under test gives them (the simulated master); a physical gateway only shows what it
did on the wire.

Timing budgets (``L`` = ``adapter_latency_ms``, ``tol`` = ``tolerance_ms``): the bench sees a
request up to L after it was on the wire and puts a reply on the wire up to L after its trace
time. Every lower limit is ``setting - tol - (how much shorter the span can look)``:

* after a reply (request idle, collision idle; reply -> request): the bench's gap can only
  look *longer* (by 0..2L), so the limit is ``setting - tol``, not relaxed by L;
* after an unanswered request (response timeout + request idle) and after a SND_NKE (init
  idle): request -> request, the gap can look shorter by up to L: ``setting - tol - L``;
* a late reply meant to arrive *inside* the response timeout is placed at
  ``min(0.8 x timeout, timeout - 2L - tol)`` on the bench, because the wire adds up to 2L;
  one meant to arrive *after* it is placed at ``timeout + 0.3 s`` (the wire only adds).

No timing check has an upper limit; counts (attempts, telegrams) are exact. Each timing
measurement records the budget it used (``budget`` in the JSON record).
"""

from __future__ import annotations

import pytest

from simulator.mbus.faults import Fault
from simulator.mbus.slave import ResponseDelay
from simulator.testing.bench import MeterSpec
from simulator.testing.budgets import gap_budget, late_reply_delay
from simulator.testing.observe import exchanges, idle_gaps, requests_to


def _limit(rig, name: str) -> float:
    return rig.dut.mbus.seconds(name)


def _reply_budget(rig, delay: float, latest_on_wire: float) -> dict[str, float]:
    """What a late-reply test assumed: the bench's delay and the span the DUT may see."""
    return {
        "bench_delay_s": delay,
        "earliest_on_wire_s": delay,
        "latest_on_wire_s": latest_on_wire,
        "response_timeout_s": rig.dut.mbus.seconds("response_timeout"),
        "adapter_latency_s": rig.timing.adapter_latency_ms / 1000.0,
        "tolerance_s": rig.timing.tolerance_ms / 1000.0,
    }


def _clean_rsp_ud_from(trace, slave_name: str):
    return [
        e
        for e in exchanges(trace)
        if e.answered
        and e.reply.get("outcome") == "ok"
        and e.reply.get("senders") == [slave_name]
        and e.reply.get("function") == "RSP_UD"
    ]


def _check_gaps(trace, rig, measure, rule: str, *, needed: bool = True) -> None:
    """The shortest gap of ``rule`` >= its budgeted lower limit (:func:`gap_budget`)."""
    gaps = [g.seconds for g in idle_gaps(trace) if g.rule == rule]
    if not gaps:
        assert not needed, f"no gap of kind {rule} in the trace"
        return
    budget = gap_budget(rig, rule)
    facts = {**budget.to_json(), "baud": rig.dut.mbus.baud}
    measure(f"{rule} min", min(gaps), "s", low=budget.low, budget=facts, samples=gaps)


# -- finding slaves ---------------------------------------------------------------------------
SEARCH_METERS = [
    MeterSpec(12345678, "ELV"),
    MeterSpec(12345679, "ELV"),  # differs from the first in the last digit only
    MeterSpec(12345778, "KAM", medium="water"),  # one digit away again, other manufacturer
    MeterSpec(90000001, "ELV", medium="electricity"),
]


@pytest.mark.requires_feature("collision_emulation")
def test_secondary_search_finds_every_slave(bench, rig, measure):
    """Every meter isolated by the wildcard search. Timing: collision idle after a garbled
    reception (reply -> request) >= ``collision_idle - tol`` (not relaxed by the latency)."""
    run = bench.setup(SEARCH_METERS)
    found = run.dut.search_secondary()
    trace = run.trace
    collided = [
        e for e in exchanges(trace) if e.reply is not None and len(e.reply.get("senders", [])) > 1
    ]
    assert collided, "wildcard selections never collided: the search was not exercised"
    isolated = [m for m in SEARCH_METERS if _clean_rsp_ud_from(trace, run.slaves[m.id].name)]
    measure(
        "slaves read alone during search",
        len(isolated),
        "",
        low=len(SEARCH_METERS),
        high=len(SEARCH_METERS),
    )
    if found is not None:
        assert sorted(map(str, found)) == sorted(str(m.address) for m in SEARCH_METERS)
    _check_gaps(trace, rig, measure, "collision_idle")


def test_primary_scan_finds_every_slave(bench, measure):
    meters = [
        MeterSpec(11111111, primary=1),
        MeterSpec(22222222, primary=7),
        MeterSpec(33333333, primary=250, medium="water"),
    ]
    run = bench.setup(meters)
    found = run.dut.scan_primary()
    answered = []
    for m in meters:
        nke = [
            e
            for e in exchanges(run.trace)
            if (e.function, e.address) == ("SND_NKE", m.primary)
            and e.answered
            and e.reply.get("function") == "ACK"
        ]
        if nke:
            answered.append(m.primary)
    measure("primaries acknowledged SND_NKE", len(answered), "", low=3, high=3)
    if found is not None:
        assert found == [1, 7, 250]


# -- reading ----------------------------------------------------------------------------------
@pytest.mark.requires_feature("multi_telegram")
def test_multi_telegram_meter_read_completely_with_fcb_toggling(bench, rig, measure):
    run = bench.setup([MeterSpec(44444444, primary=5, telegrams=3)])
    readout = run.dut.read(5)
    reqs = [e for e in exchanges(run.trace) if (e.function, e.address) == ("REQ_UD2", 5)]
    good = [e for e in reqs if e.answered and e.reply.get("outcome") == "ok"]
    limit = bench.settings.telegram_limit  # read limit 0 = automatic (seed 004 §6.25.3)
    measure("telegrams received", len(good), "", low=3, high=min(3, limit))
    fcbs = [e.request.get("fcb") for e in good]
    assert all(a != b for a, b in zip(fcbs, fcbs[1:], strict=False)), f"FCB did not toggle: {fcbs}"
    more = [e.reply.get("more_follow") for e in good]
    assert more[0] is True and more[-1] is False, f"more-follow flags (DIF 1F): {more}"
    if readout is not None:
        assert readout.ok and len(readout.telegrams) == 3


def test_silent_meter_retried_exactly_readout_retries_times(bench, rig, measure):
    """Exactly ``readout_retries + 1`` REQ_UD2. Timing: unanswered request -> next request
    (request -> request) >= ``response_timeout + request_idle - tol - L``."""
    silent = MeterSpec(55555555, primary=9, faults=(Fault("silent", commands=("REQ_UD2",)),))
    run = bench.setup([silent])
    readout = run.dut.read(9)
    retries = rig.dut.mbus.readout_retries
    n = len(requests_to(run.trace, "REQ_UD2", 9))
    measure("REQ_UD2 attempts to a silent meter", n, "", low=retries + 1, high=retries + 1)
    # unanswered request -> next request: relaxed by tolerance + L (module doc)
    _check_gaps(run.trace, rig, measure, "timeout+request_idle")
    if readout is not None:
        assert not readout.ok and readout.attempts == retries + 1


# -- timing -----------------------------------------------------------------------------------
def test_request_idle_between_requests(bench, rig, measure):
    """Reply's end -> next request (reply -> request) >= ``request_idle - tol``: the bench sees
    this gap longer than the wire does (by 0..2L), so the latency does not relax it."""
    run = bench.setup([MeterSpec(66666661, primary=1), MeterSpec(66666662, primary=2)])
    run.dut.read(1)
    run.dut.read(2)
    # reply -> request: the bench can only see this gap longer; relaxed by tolerance only
    _check_gaps(run.trace, rig, measure, "request_idle")


def test_init_idle_after_snd_nke(bench, rig, measure):
    """SND_NKE's end -> next request (request -> request) >= ``init_idle - tol - L``."""
    run = bench.setup([MeterSpec(77777771, primary=3)])
    run.dut.read(3)
    assert requests_to(run.trace, "SND_NKE", 3), "the readout did not start with SND_NKE"
    # SND_NKE -> next request: relaxed by tolerance + L (module doc)
    _check_gaps(run.trace, rig, measure, "init_idle")


@pytest.mark.requires_feature("collision_emulation")
def test_collision_idle_after_collision(bench, rig, measure):
    """Garbled reception's end -> next request (reply -> request) >= ``collision_idle - tol``
    (not relaxed by the latency, as for the request idle)."""
    # two meters whose IDs differ in the last digit always collide on the first wildcards
    run = bench.setup(SEARCH_METERS[:2])
    run.dut.search_secondary()
    # garbled reception -> next request: relaxed by tolerance only (module doc)
    _check_gaps(run.trace, rig, measure, "collision_idle")


@pytest.mark.requires_feature("late_reply_emulation")
def test_late_reply_inside_response_timeout_is_accepted(bench, rig, measure):
    """A reply the DUT sees inside its response timeout is taken: placed on the bench at
    ``min(0.8 x timeout, timeout - 2L - tol)`` (the wire adds up to 2L); one REQ_UD2."""
    # the wire adds up to 2 x adapter latency to the bench's delay: keep it inside the timeout
    try:
        delay, latest_on_wire = late_reply_delay(rig, 0.8)
    except ValueError as exc:
        pytest.skip(f"rig {rig.name!r}: {exc}")
    late = MeterSpec(
        88888881, primary=11, faults=(Fault("late", delay=delay, commands=("REQ_UD2",)),)
    )
    run = bench.setup([late])
    readout = run.dut.read(11)
    reqs = requests_to(run.trace, "REQ_UD2", 11)
    measure(
        "REQ_UD2 attempts with a reply inside the timeout",
        len(reqs),
        "",
        low=1,
        high=1,
        budget=_reply_budget(rig, delay, latest_on_wire),
    )
    replies = [e for e in exchanges(run.trace) if e.request in reqs and e.answered]
    assert replies and replies[0].reply.get("delay") == pytest.approx(delay, abs=0.01)
    if readout is not None:
        assert readout.ok


@pytest.mark.requires_feature("late_reply_emulation")
def test_reply_beyond_response_timeout_is_given_up(bench, rig, measure):
    """A reply at ``timeout + 0.3 s`` on the bench (later still on the wire) is given up:
    ``readout_retries + 1`` REQ_UD2 and a failed readout."""
    timeout = _limit(rig, "response_timeout")
    retries = rig.dut.mbus.readout_retries
    # the wire only adds latency to the bench's delay, so the reply stays beyond the timeout
    delay = timeout + 0.3
    late = MeterSpec(
        88888882, primary=12, faults=(Fault("late", delay=delay, commands=("REQ_UD2",)),)
    )
    run = bench.setup([late])
    readout = run.dut.read(12)
    n = len(requests_to(run.trace, "REQ_UD2", 12))
    measure(
        "REQ_UD2 attempts with a reply after the timeout",
        n,
        "",
        low=retries + 1,
        high=retries + 1,
        budget=_reply_budget(rig, delay, delay + 2 * rig.timing.adapter_latency_ms / 1000.0),
    )
    if readout is not None:
        assert not readout.ok


@pytest.mark.requires_feature("baud_300", "mixed_baud")
def test_reads_300_and_2400_bit_s_meters_on_one_bus(bench, measure):
    slow = MeterSpec(99999930, primary=30, baud=300, delay=ResponseDelay(0.05, 0.3))
    fast = MeterSpec(99999924, primary=24, baud=2400)
    run = bench.setup([slow, fast])
    r_slow = run.dut.read(30, baud=300)
    r_fast = run.dut.read(24, baud=2400)
    for spec in (slow, fast):
        got = _clean_rsp_ud_from(run.trace, run.slaves[spec.id].name)
        assert got, f"no clean RSP_UD from the {spec.baud} bit/s meter"
        assert got[0].reply.get("baud") == spec.baud
    measure("meters read at their own baud", 2, "", low=2, high=2)
    if r_slow is not None:
        assert r_slow.ok and r_fast.ok
