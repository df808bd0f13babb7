"""Value Period / Value Interval and delivery accounting (seed 002 §6.32.2-6.32.3)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.gateways.cme3100.readout import Readout
from simulator.gateways.cme3100.value_period import (
    AUTO_MAX_READOUTS,
    DeliveryLedger,
    ValuePeriod,
    ValuePeriodError,
    by_meter,
    interval_start,
    months_back,
)

T0 = datetime(2024, 3, 4, 0, 0)  # a Monday
TG = (bytes.fromhex("080172"),)  # a telegram stands for "the readout has values"


def hourly(meters, hours, start=T0, failed=()):
    """Readouts at hh:00:05 for ``hours`` hours; ``failed`` = hours whose readout failed."""
    out = []
    for h in range(hours):
        t = start + timedelta(hours=h, seconds=5)
        for m in meters:
            ok = h not in failed
            out.append(Readout(m, t, TG if ok else (), "ok" if ok else "no reply"))
    return out


def run_hourly_reports(ledger, readouts, hours, fail, start=T0):
    """A report at hh:10 each hour; ``fail(h)`` says whether that report's delivery fails.
    Returns {key: times delivered} and every selection."""
    db = by_meter(readouts)
    got: dict = {}
    selections = []
    for h in range(hours):
        sel = ledger.select(db, start + timedelta(hours=h, minutes=10))
        ok = not fail(h)
        ledger.settle(sel, ok)
        selections.append(sel)
        if ok:
            for r in sel.values:
                got[r.key] = got.get(r.key, 0) + 1
    return got, selections


def test_auto_outage_shorter_than_180_readouts_delivers_everything_once():
    meters = ("00000001", "00000002", "00000003")
    rs = hourly(meters, 72)
    ledger = DeliveryLedger()
    got, sels = run_hourly_reports(ledger, rs, 72, fail=lambda h: 10 <= h < 40)  # 30 h down
    assert got == {r.key: 1 for r in rs}
    assert ledger.lost == [] and ledger.delivered == len(rs) == 216
    # the first report after the outage carries the 30 unsent hours + its own, per meter
    assert len(sels[40].values) == 31 * 3
    assert [len(s.values) for s in sels[41:]] == [3] * 31


def test_auto_outage_longer_than_180_readouts_names_exactly_the_oldest_as_lost():
    meter = "05047168"
    hours = 230
    rs = hourly((meter,), hours)
    ledger = DeliveryLedger()
    down = range(5, 215)  # reports at hours 5..214 fail (210 hours)
    got, sels = run_hourly_reports(ledger, rs, hours, fail=lambda h: h in down)
    # At hour 215 the meter has 216 readouts (hours 0..215); the 180 last are hours 36..215,
    # so the unsent hours 5..35 (31 readouts) are lost, named in order, and never delivered.
    lost_hours = list(range(5, 36))
    expected_lost = [(meter, T0 + timedelta(hours=h, seconds=5)) for h in lost_hours]
    assert ledger.lost == expected_lost
    assert len(sels[215].values) == AUTO_MAX_READOUTS
    assert sels[215].values[0].read_at == T0 + timedelta(hours=36, seconds=5)
    for r in rs:
        assert (got.get(r.key, 0) == 1) != (r.key in expected_lost), r.key
    # lost values were reported once each, at the report that found them
    assert sum(len(s.lost) for s in sels) == len(expected_lost)


def test_failed_readouts_count_towards_the_180():
    meter = "00000001"
    rs = hourly((meter,), 200, failed=range(100, 110))
    ledger = DeliveryLedger()
    sel = ledger.select(by_meter(rs), T0 + timedelta(hours=199, minutes=10))
    # the last 180 readouts are hours 20..199, 10 of them failed: 170 values
    assert len(sel.values) == 170
    assert [r.read_at.hour for r in sel.lost[:2]] == [0, 1] and len(sel.lost) == 20


def test_select_is_pure_and_settle_needs_the_latest_selection():
    rs = by_meter(hourly(("00000001",), 3))
    ledger = DeliveryLedger()
    at = T0 + timedelta(hours=2, minutes=10)
    first = ledger.select(rs, at)
    assert ledger.select(rs, at) == first
    ledger.settle(first, True)
    with pytest.raises(ValuePeriodError, match="stale"):
        ledger.settle(first, True)
    assert ledger.select(rs, at).values == ()


def test_out_of_order_readouts_are_an_error():
    a = Readout("00000001", T0 + timedelta(hours=1), TG)
    b = Readout("00000001", T0, TG)
    with pytest.raises(ValuePeriodError, match="00000001"):
        DeliveryLedger().select({"00000001": [a, b]}, T0 + timedelta(hours=2))


def test_fixed_period_one_day_carries_exactly_the_last_day():
    meter = "00000001"
    rs = hourly((meter,), 24 * 4)
    db = by_meter(rs)
    ledger = DeliveryLedger(ValuePeriod.fixed(1, "days"))
    day = timedelta(days=1)
    sel = ledger.select(db, T0 + day)
    assert [r.read_at for r in sel.values] == [
        T0 + timedelta(hours=h, seconds=5) for h in range(24)
    ]
    ledger.settle(sel, True)
    # the next day's report fails; the one after carries only its own day: day 2 is lost
    s2 = ledger.select(db, T0 + 2 * day)
    ledger.settle(s2, False)
    s3 = ledger.select(db, T0 + 3 * day)
    assert [r.read_at.day for r in s3.values] == [6] * 24
    assert [r.read_at for r in s3.lost] == [
        T0 + day + timedelta(hours=h, seconds=5) for h in range(24)
    ]
    ledger.settle(s3, True)
    assert ledger.delivered == 48 and len(ledger.lost) == 24 and ledger.resent == 0


def test_fixed_period_longer_than_the_schedule_resends_and_counts_it():
    rs = hourly(("00000001",), 24 * 3)
    ledger = DeliveryLedger(ValuePeriod.fixed(2, "day"))
    for d in (1, 2):
        sel = ledger.select(by_meter(rs), T0 + timedelta(days=d))
        ledger.settle(sel, True)
    assert len(sel.values) == 48 and len(sel.resent) == 24
    assert ledger.delivered == 48 and ledger.resent == 24


@pytest.mark.parametrize(
    ("amount", "unit", "at", "start"),
    [
        (90, "minutes", datetime(2024, 3, 4, 12), datetime(2024, 3, 4, 10, 30)),
        (2, "hours", datetime(2024, 3, 4, 12), datetime(2024, 3, 4, 10)),
        (1, "week", datetime(2024, 3, 4, 12), datetime(2024, 2, 26, 12)),
        (1, "month", datetime(2024, 3, 31, 0), datetime(2024, 2, 29, 0)),
        (13, "months", datetime(2024, 1, 15), datetime(2022, 12, 15)),
    ],
)
def test_fixed_period_start(amount, unit, at, start):
    assert ValuePeriod.fixed(amount, unit).start(at) == start


def test_months_back_clamps():
    assert months_back(datetime(2023, 3, 31), 1) == datetime(2023, 2, 28)


def test_bad_period_settings():
    with pytest.raises(ValuePeriodError, match="unit"):
        ValuePeriod.fixed(1, "fortnight")
    with pytest.raises(ValuePeriodError, match="amount"):
        ValuePeriod.fixed(0, "day")
    with pytest.raises(ValuePeriodError, match="Value Interval"):
        DeliveryLedger(interval="2h")


def test_value_interval_keeps_the_first_of_each_hour():
    meter = "00000001"
    rs = [Readout(meter, T0 + timedelta(minutes=15 * i, seconds=3), TG) for i in range(4 * 6)]
    ledger = DeliveryLedger(interval="1h")
    db = by_meter(rs)
    s1 = ledger.select(db, T0 + timedelta(hours=2, minutes=20))  # 10 readouts so far
    assert [r.read_at.strftime("%H:%M") for r in s1.values] == ["00:00", "01:00", "02:00"]
    assert len(s1.thinned) == 7
    ledger.settle(s1, True)
    s2 = ledger.select(db, T0 + timedelta(hours=6))
    assert [r.read_at.strftime("%H:%M") for r in s2.values] == ["03:00", "04:00", "05:00"]
    ledger.settle(s2, True)
    assert ledger.delivered == 6 and ledger.thinned == 18 and ledger.lost == []


@pytest.mark.parametrize(
    ("interval", "t", "start"),
    [
        ("15min", datetime(2024, 3, 6, 10, 44, 59), datetime(2024, 3, 6, 10, 30)),
        ("1h", datetime(2024, 3, 6, 10, 44), datetime(2024, 3, 6, 10)),
        ("1day", datetime(2024, 3, 6, 10, 44), datetime(2024, 3, 6)),
        ("1week", datetime(2024, 3, 10, 23, 59), datetime(2024, 3, 4)),  # Sunday -> Monday
        ("1month", datetime(2024, 3, 31, 23, 59), datetime(2024, 3, 1)),
        ("all", datetime(2024, 3, 6), None),
    ],
)
def test_interval_start(interval, t, start):
    assert interval_start(t, interval) == start


# -- the property: every value delivered exactly once or lost, never both, never twice -----

events = st.lists(
    st.tuples(
        st.sampled_from(["read", "read", "fail_read", "report_ok", "report_fail"]),
        st.sampled_from(["00000001", "00000002"]),
    ),
    max_size=120,
)


@settings(max_examples=300, deadline=None)
@given(events, st.integers(1, 6), st.sampled_from(["all", "1h"]))
def test_property_each_value_delivered_once_or_lost(evs, cap, interval):
    ledger = DeliveryLedger(ValuePeriod.auto(max_readouts=cap), interval=interval)
    db: dict[str, list[Readout]] = {}
    t = T0
    delivered: dict = {}
    lost: list = []
    thinned: set = set()
    for kind, meter in [*evs, ("report_ok", "")]:
        t += timedelta(minutes=20)
        if kind in ("read", "fail_read"):
            ok = kind == "read"
            db.setdefault(meter, []).append(Readout(meter, t, TG if ok else ()))
            continue
        sel = ledger.select(db, t)
        ok = kind == "report_ok"
        ledger.settle(sel, ok)
        lost += [r.key for r in sel.lost]
        thinned |= {r.key for r in sel.thinned_out} | (
            {r.key for r in sel.thinned} if ok else set()
        )
        if ok:
            for r in sel.values:
                delivered[r.key] = delivered.get(r.key, 0) + 1
    values = {r.key for rs in db.values() for r in rs if r.is_value}
    assert all(n == 1 for n in delivered.values())
    assert len(lost) == len(set(lost))
    assert not set(lost) & set(delivered) and not thinned & (set(lost) | set(delivered))
    # the last report succeeded: every value is settled one way
    assert set(delivered) | set(lost) | thinned == values
    assert ledger.lost == lost and ledger.delivered == len(delivered)
    if interval == "all":
        assert not thinned
