"""Adaptive Retries (seed 002 §6.32.1 Table 9) and job retries (§6.33)."""

from __future__ import annotations

from datetime import datetime

import pytest

from simulator.gateways.cme3100.cron import CronSchedule
from simulator.gateways.cme3100.retries import (
    JobSettings,
    RetryError,
    RetryPlan,
    adaptive_plan,
    retry_plan,
    schedule_period_s,
)

MIN, HOUR = 60, 3600

# (period in s, Table 9 row as (retries, s between)): each band's edges, both sides.
TABLE9 = [
    (1 * MIN, (1, 0)),
    (15 * MIN, (1, 0)),
    (15 * MIN + 1, (2, 300)),
    (15.5 * MIN, (2, 300)),
    (16 * MIN, (2, 300)),
    (60 * MIN, (2, 300)),
    (60 * MIN + 1, (3, 500)),
    (61 * MIN, (3, 500)),
    (23 * HOUR, (3, 500)),
    (23 * HOUR + 1, (6, 3600)),
    (24 * HOUR, (6, 3600)),
    (31 * 24 * HOUR, (6, 3600)),
    (30, (1, 0)),  # below a minute (not a cron period): row 1
]


@pytest.mark.parametrize(("period", "row"), TABLE9)
def test_table9_bands(period, row):
    plan = adaptive_plan(period)
    assert (plan.count, plan.spacing_s) == row
    assert plan.source == "adaptive"


@pytest.mark.parametrize("period", [1 * MIN, 16 * MIN, 61 * MIN, 23 * HOUR + 1])
def test_every_band_retries_before_the_next_report(period):
    # The manual's purpose of Table 9: all retries are done before the next report is due.
    plan = adaptive_plan(period)
    assert plan.count * plan.spacing_s < period


@pytest.mark.parametrize("period", [0, -1, float("nan")])
def test_bad_period(period):
    with pytest.raises(RetryError, match="period"):
        adaptive_plan(period)


CRONS = [
    ("*/15 * * * *", 15 * MIN, (1, 0)),
    ("*/16 * * * *", 12 * MIN, (1, 0)),  # 0,16,32,48: the 48 -> 0 gap is the shortest
    ("*/30 * * * *", 30 * MIN, (2, 300)),
    ("0 * * * *", HOUR, (2, 300)),
    ("0 */2 * * *", 2 * HOUR, (3, 500)),
    ("0 5 * * *|8 10 * * *|22 17 * * *", 5 * HOUR + 8 * MIN, (3, 500)),
    ("0 0 * * *", 24 * HOUR, (6, 3600)),
    ("0 0 * * 1", 7 * 24 * HOUR, (6, 3600)),
    ("0 0 1 * *", 31 * 24 * HOUR, (6, 3600)),  # from 2024-01-01: Jan 31 days
    ("0,1 * * * *", MIN, (1, 0)),
    ("0 8-17 * * 1-5", HOUR, (2, 300)),
]


@pytest.mark.parametrize(("cron", "period", "row"), CRONS)
def test_period_from_cron(cron, period, row):
    after = datetime(2023, 12, 31, 23, 59)
    got = schedule_period_s(CronSchedule.parse(cron), after)
    assert got == period
    plan = retry_plan(got)
    assert (plan.count, plan.spacing_s) == row


def test_disabled_uses_job_settings_and_report_settings_first():
    assert retry_plan(HOUR, adaptive=False) == RetryPlan(3, 60.0, "job")  # Gaps #10
    job = JobSettings(scheduled_retries=5, scheduled_offset_s=120)
    assert retry_plan(HOUR, adaptive=False, job=job) == RetryPlan(5, 120.0, "job")
    own = RetryPlan(2, 10.0)
    assert retry_plan(HOUR, adaptive=False, job=job, report=own) == RetryPlan(2, 10.0, "report")
    # Adaptive on ignores both
    assert retry_plan(HOUR, adaptive=True, job=job, report=own) == RetryPlan(2, 300.0)


def test_manual_send_uses_manual_job_settings():
    assert retry_plan(HOUR, manual=True) == RetryPlan(0, 60.0, "job")
    job = JobSettings(manual_retries=1, manual_offset_s=5)
    assert retry_plan(HOUR, manual=True, job=job).attempts == 2


def test_attempt_starts():
    hourly = retry_plan(HOUR)
    assert hourly.attempt_starts(0.0) == [0.0, 300.0, 600.0]
    # spacing counts from the end of a failed attempt (a 60 s timeout each)
    assert hourly.attempt_starts(100.0, (60.0, 60.0)) == [100.0, 460.0, 820.0]
    assert retry_plan(24 * HOUR).attempt_starts(0.0)[-1] == 6 * 3600.0
    assert retry_plan(15 * MIN).attempt_starts(7.0) == [7.0, 7.0]


def test_bad_plan():
    with pytest.raises(RetryError, match="retries"):
        RetryPlan(-1, 0)
    with pytest.raises(RetryError, match="spacing"):
        RetryPlan(1, -5)
