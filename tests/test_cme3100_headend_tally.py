"""The cme3100 run's head-end keeps no report body (issue 15): each accepted report is
written to headend/ and its values counted as it arrives (HeadEndTally), and the summary's
accounting is worked out meter by meter on integer time keys.

The reference is the accounting as it was (runner._slot_figures at eaf570c, on sets of
(meter, datetime) over every accepted report kept to the end), applied to the same reports,
which a spy on HeadEndTally.take collects; the runs cover lost and pending values, a fixed
Value Period that sends values again (delivered twice), a mail report to two recipients,
a status report (no values) and outages."""

from __future__ import annotations

from collections import Counter

import pytest

from simulator.devices import run_scenario
from simulator.gateways.cme3100 import headend
from simulator.gateways.cme3100.headend import HeadEndTally, time_key, values_in
from simulator.gateways.cme3100.readout import ReadoutStatus
from simulator.gateways.cme3100.reports.names import VALUE_KINDS
from simulator.gateways.cme3100.value_period import DeliveryLedger
from simulator.scenario import RunOptions
from simulator.sinks.base import Report, WorldSink
from simulator.sinks.outages import Outage, OutageSink

SCENARIO = """\
kind = "cme3100"
seed = 7
[[slaves]]
template = "water"
count = 3
id = 55000001
[gateway]
readout_schedule = "15min"
[[gateway.reports]]
name = "hourly"
template = 3001
schedule = "hourly"
target = "http://h.invalid/v"
[[gateway.reports]]
name = "fixed"
template = 2115
schedule = "hourly"
value_period = "3 hours"
target = "ftp://h.invalid/f"
[[gateway.reports]]
name = "mail"
template = 1101
schedule = "0 */6 * * *"
target = "a@h.invalid, b@h.invalid"
[[gateway.reports]]
name = "status"
template = 3007
schedule = "hourly"
target = "http://h.invalid/s"
[[outages]]
protocol = "http"
start_h = 2
hours = {down_h}
[[outages]]
protocol = "mail"
start_h = 5
hours = 8
"""


def reference_figures(sim, slot, received: list[Report]) -> dict:
    """eaf570c's accounting of one slot over every report its head-end accepted."""
    db = sim.gateway.db
    read = {
        (r.meter, r.read_at.replace(microsecond=0))
        for m in db.meters()
        for r in db.readouts(m)
        if r.status == ReadoutStatus.OK
    }
    values_read = len(read)
    got: Counter = Counter()
    first_target = None
    for report in received:
        if slot.slot.protocol == "mail":
            first_target = first_target or report.target
            if report.target != first_target:
                continue
        got.update(values_in(report, slot.slot.protocol, slot.slot.template))
    if slot.slot.template % 1000 not in VALUE_KINDS:
        read = set()
    lost = {(m, t.replace(microsecond=0)) for m, t in slot.ledger.lost}
    delivered = set(got) & read
    attempts = [a for a in sim.attempts if a.report == slot.slot.name]
    last_ok = max((a.t for a in attempts if a.ok), default=None)
    cut = None if last_ok is None else sim.gateway.clock.local(last_ok)
    undelivered = read - delivered - lost
    missing = {v for v in undelivered if cut is not None and v[1] <= cut}
    twice = sum(1 for n in got.values() if n > 1)
    unknown = len(set(got) - read)
    return {
        "values_read": values_read,
        "values_delivered": len(delivered),
        "delivered_twice": twice,
        "values_unknown": unknown,
        "values_lost": len(lost),
        "values_pending": len(undelivered - missing),
        "values_missing": len(missing),
        "exactly_once": twice == 0 and unknown == 0 and not missing and not (lost & delivered),
    }


@pytest.mark.parametrize("down_h, broken", [(1, False), (4, False), (50, False), (4, True)])
def test_accounting_as_each_report_arrives_equals_the_kept_reports_accounting(
    tmp_path, monkeypatch, down_h, broken
):
    """``broken``: the gateway forgets the values of a failed report as if delivered, so
    values go missing and the accounting must say so the same way."""
    if broken:
        settle = DeliveryLedger.settle
        monkeypatch.setattr(DeliveryLedger, "settle", lambda self, sel, ok: settle(self, sel, True))
    spied: dict[int, list[Report]] = {}
    take = HeadEndTally.take

    def spy(self, report):
        spied.setdefault(id(self), []).append(report)
        take(self, report)

    monkeypatch.setattr(HeadEndTally, "take", spy)
    path = tmp_path / "gw.toml"
    path.write_text(SCENARIO.format(down_h=down_h))
    out = tmp_path / "out"
    res = run_scenario(path, RunOptions(out, hours=down_h + 30, quiet=True))
    sim, summary = res.simulation, res.summary
    seen = Counter()
    for slot in sim.gateway.slots:
        received = spied.get(id(sim.tallies[slot.slot.name]), [])
        ref = reference_figures(sim, slot, received)
        assert summary["values_read"] == ref.pop("values_read")
        figures = {k: summary["reports"][slot.slot.name][k] for k in ref}
        assert figures == ref, slot.slot.name
        seen.update(k for k, v in ref.items() if v)
        # the files are the reports as accepted, in order
        files = sorted((out / "headend" / slot.slot.name).iterdir())
        assert [f.read_bytes() for f in files] == [r.body for r in received]
    # the runs exercise what the accounting distinguishes
    assert seen["values_delivered"] and seen["delivered_twice"] and seen["values_pending"]
    if down_h == 50:
        assert seen["values_lost"]
    if broken:
        assert seen["values_missing"] and not summary["exactly_once"]
    # the in-world head-ends kept nothing
    assert all(not s.received and not s.deliveries for s in sim.sinks.values())


def test_tally_counts_first_recipient_only_and_writes_every_copy(tmp_path):
    text = "#device-identification;created;value\n55000001;2026-01-05 01:00:00;1\n"
    body = text.encode("cp1252")
    tally = HeadEndTally("http", 3101, tmp_path / "h")
    for _ in range(2):
        tally.take(Report("http://h", (body,), "text/csv", (("Filename", "v.csv"),)))
    assert tally.counts("55000001") == {time_key(headend.parse_time("2026-01-05 01:00:00")): 2}
    assert [p.name for p in sorted((tmp_path / "h").iterdir())] == ["0001-v.csv", "0002-v.csv"]


def test_time_key_refuses_aware_times():
    from datetime import UTC, datetime

    with pytest.raises(ValueError, match="aware"):
        time_key(datetime(2026, 1, 5, tzinfo=UTC))


def test_sinks_keep_by_default_and_hand_over_when_asked():
    report = Report("http://h", (b"x",), "text/plain")
    kept = OutageSink("http", clock=lambda: 0.0)
    assert kept.deliver(report).ok and kept.received == [report] and len(kept.deliveries) == 1
    taken: list[Report] = []
    lean = OutageSink(
        "http", clock=lambda: 0.0, inner=WorldSink(on_receive=taken.append), keep=False
    )
    assert lean.deliver(report).ok and taken == [report]
    assert lean.received == [] and lean.deliveries == [] and lean.inner.deliveries == []
    down = OutageSink(
        "http",
        clock=lambda: 5.0,
        outages=[Outage(0.0, 10.0)],
        inner=WorldSink(on_receive=taken.append),
        keep=False,
    )
    assert not down.deliver(report).ok and taken == [report]  # a refused report is not taken


def _reference_sets(read, got, lost, cut):
    """The set arithmetic of reference_figures over (meter, datetime) values."""
    delivered = set(got) & read
    undelivered = read - delivered - lost
    missing = {v for v in undelivered if cut is not None and v[1] <= cut}
    return (
        len(delivered),
        sum(1 for n in got.values() if n > 1),
        len(set(got) - read),
        len(lost),
        len(missing),
        len(undelivered - missing),
        bool(lost & delivered),
    )


@pytest.mark.parametrize("seed", range(200))
def test_meter_by_meter_sums_equal_the_whole_run_sets(seed):
    """Random reads, arrivals (some twice, some never read), lost values and a cut that often
    falls on a read time exactly: the per-meter sums equal the set arithmetic."""
    import random
    from datetime import datetime, timedelta

    rng = random.Random(seed)
    t0 = datetime(2026, 1, 5)
    times = [t0 + timedelta(minutes=15 * k) for k in range(40)]
    meters = ["55000001", "55000002", "55000003"]
    read = {(m, t) for m in meters for t in rng.sample(times, rng.randrange(0, 30))}
    got: Counter = Counter()
    for _ in range(rng.randrange(0, 60)):
        got[(rng.choice(meters + ["66000001"]), rng.choice(times))] += 1
    lost = {v for v in read if rng.random() < 0.1} | {(meters[0], times[-1])}
    cut = rng.choice([None, rng.choice(times), rng.choice(times) + timedelta(seconds=1)])
    ref = _reference_sets(read, got, lost, cut)
    total = [0] * 6
    any_lost_delivered = False
    for m in dict.fromkeys([*meters, "66000001"]):
        acc = headend.meter_account(
            {time_key(t) for mm, t in read if mm == m},
            Counter({time_key(t): n for (mm, t), n in got.items() if mm == m}),
            {time_key(t) for mm, t in lost if mm == m},
            None if cut is None else time_key(cut),
        )
        total = [a + b for a, b in zip(total, acc[:6], strict=True)]
        any_lost_delivered = any_lost_delivered or acc.lost_delivered
    assert (*total, any_lost_delivered) == ref


@pytest.mark.parametrize("seed", range(20))
def test_readouts_csv_rows_come_in_the_order_of_a_stable_sort_by_time_and_meter(seed):
    """_write_readouts merges the meters' time-ordered rows; the order must be the one the
    stable ``sorted(all rows, key=(at, meter))`` gave, ties in time included."""
    import random
    from datetime import datetime, timedelta
    from types import SimpleNamespace

    from simulator.gateways.cme3100.readout import Readout
    from simulator.gateways.cme3100.runner import Cme3100Run
    from simulator.gateways.cme3100.value_db import ValueDatabase

    rng = random.Random(seed)
    db = ValueDatabase()
    meters = [f"{rng.randrange(10**7, 10**8)}" for _ in range(5)]
    clock = {m: 0.0 for m in meters}
    for i in range(200):
        m = rng.choice(meters)
        clock[m] += rng.choice([0.0, 0.0, 1.0, 2.5])  # equal times within and across meters
        status = rng.choice(["ok", "failed"])
        db.store(
            Readout(
                m,
                datetime(2026, 1, 5) + timedelta(seconds=clock[m]),
                (b"\x08\x01\x72" + bytes([i % 256]),) if status == "ok" else (),
                status=status,
                at=clock[m],
                message=str(i),
            )
        )
    written: list = []
    fake = SimpleNamespace(
        gateway=SimpleNamespace(db=db),
        ctx=SimpleNamespace(csv=lambda *a: SimpleNamespace(writerows=written.extend)),
    )
    Cme3100Run._write_readouts(fake)
    rows = [r for m in db.meters() for r in db.rows(m)]
    expected = sorted(rows, key=lambda r: (r.at, r.meter))
    assert [(w[0], w[2], w[4]) for w in written] == [
        (round(r.at, 6), r.meter, r.status) for r in expected
    ]
    # the rows themselves, not only their printed columns, are in that order
    assert [w[1] for w in written] == [r.read_at.isoformat() for r in expected]
