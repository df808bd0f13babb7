"""Stream Plugin settings (seed 003 §6.1) and the cron patterns of seed 002 §6.39.1."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from simulator.gateways.cme3100.cron import CronError, CronSchedule
from simulator.gateways.cme3100.settings import SettingsError, StreamSettings

T0 = datetime(2026, 1, 5, 0, 0, tzinfo=UTC)  # a Monday


def fires(pattern: str, n: int, start: datetime = T0, rng=None) -> list[str]:
    s = CronSchedule.parse(pattern, rng)
    out, t = [], start
    for _ in range(n):
        t = s.next_after(t)
        out.append(t.strftime("%a %d %H:%M"))
    return out


def test_seed_002_table_10_examples():
    assert fires("15 * * * *", 3) == ["Mon 05 00:15", "Mon 05 01:15", "Mon 05 02:15"]
    assert fires("*/15 * * * *", 3) == ["Mon 05 00:15", "Mon 05 00:30", "Mon 05 00:45"]
    assert fires("* 12 * * mon", 2) == ["Mon 05 12:00", "Mon 05 12:01"]
    assert fires("59 11 * * 1-5", 6)[-2:] == ["Fri 09 11:59", "Mon 12 11:59"]
    assert fires("59 11 * * 1,2,3,4,5", 5) == fires("59 11 * * 1-5", 5)
    assert fires("*/15 9-17 * * *", 2) == ["Mon 05 09:00", "Mon 05 09:15"]
    assert fires("* 12 10-16/2 * *", 1) == ["Sat 10 12:00"]
    assert fires("0 5 * * *|8 10 * * *|22 17 * * *", 4) == [
        "Mon 05 05:00",
        "Mon 05 10:08",
        "Mon 05 17:22",
        "Tue 06 05:00",
    ]
    # day of month AND day of week (seed 002: "every Monday if the day is the 16th")
    assert fires("* 12 16 * mon", 1)[0].startswith("Mon 16")  # 2026-02-16 is a Monday
    assert CronSchedule.parse("* 12 16 * mon").next_after(T0).month == 2


def test_random_field_is_drawn_once_from_the_given_stream():
    a = CronSchedule.parse("?1-30 0 * * *", random.Random(1))
    b = CronSchedule.parse("?1-30 0 * * *", random.Random(1))
    minute = a.next_after(T0).minute
    assert 1 <= minute <= 30 and b.next_after(T0).minute == minute
    assert a.next_after(a.next_after(T0)).minute == minute  # same minute the next day
    picks = {
        CronSchedule.parse("?1-30 0 * * *", random.Random(s)).next_after(T0).minute
        for s in range(40)
    }
    assert len(picks) > 5


def test_six_field_cad_example_and_bad_patterns():
    assert CronSchedule.parse("15 0 * * * *").next_after(T0).strftime("%H:%M") == "00:15"
    for bad, what in [
        ("", "empty"),
        ("* * * *", "4 fields"),
        ("61 * * * *", "minute 61"),
        ("*/0 * * * *", "step"),
        ("5-1 * * * *", "backwards"),
        ("* * * * funday", "day of week"),
        ("0 0 30 2 *", "never fires"),
    ]:
        with pytest.raises(CronError, match=what):
            CronSchedule.parse(bad).next_after(T0)


def test_settings_defaults_and_round_trip():
    s = StreamSettings()
    assert str(s.push_cron) == "*/15 * * * *" and str(s.configuration_cron) == "30 0 * * *"
    props = {
        "receiving.server.url": "http://evo.elvaco.se/sp/",
        "receiving.server.push.cron": "*/5 * * * *",
        "filter.manufacturer": "ELV,ABB",
        "filter.device.type": "1B,02",
        "filter.allow.list": "00028954",
        "radio.mode": "C1A_C1B_WIDE",
        "usb.baud.rate": "57600",
        "service.enabled": "true",
        "sync.enabled": "true",
        "show.only.filtered": "false",
        "configuration.server.url": "https://middleware.x/c.cad",
        "configuration.server.cron": "15 0 * * * *",
    }
    s = StreamSettings.from_properties(props)
    assert s.filter_device_type == (0x1B, 0x02) and s.allow_list == (28954,)
    assert StreamSettings.from_properties(s.to_properties()) == s


def test_bad_settings_report_every_problem_and_change_nothing():
    s = StreamSettings()
    with pytest.raises(SettingsError) as exc:
        s.updated(
            {
                "receiving.server.url": "ftp://x",
                "radio.mode": "T2",
                "usb.baud.rate": "1200",
                "filter.manufacturer": "EL",
                "filter.device.type": "1G",
                "service.enabled": "yes",
                "receiving.server.push.cron": "*/15 * *",
                "no.such.key": "1",
            }
        )
    keys = [k for k, _ in exc.value.problems]
    assert keys == [
        "receiving.server.url",
        "radio.mode",
        "usb.baud.rate",
        "filter.manufacturer",
        "filter.device.type",
        "service.enabled",
        "receiving.server.push.cron",
        "no.such.key",
    ]
    assert s == StreamSettings()
