"""CMe3100 system log: severities, minimum level, flood protection (seed 002 §4.2, §6.14)."""

from __future__ import annotations

import pytest

from simulator.gateways.cme3100.log import (
    FLOOD_WINDOW_S,
    MAX_AGE_S,
    GatewayLog,
    LogEntry,
    LogError,
    Severity,
)

W = Severity.WARNING


def lines(log: GatewayLog) -> list[tuple[float, str, str]]:
    return [(e.created, e.source, e.message) for e in log.entries()]


def test_flood_window_boundaries_exact():
    log = GatewayLog()
    assert log.log(100.0, W, "MBus", "Readout failed") is not None
    assert log.log(130.0, W, "MBus", "Readout failed") is None  # inside the window
    assert log.log(159.999, W, "MBus", "Readout failed") is None  # last instant inside
    # at exactly 100 + 60 the window has ended: summary (created at the end), then logged
    assert log.log(160.0, W, "MBus", "Readout failed") is not None
    assert lines(log) == [
        (100.0, "MBus", "Readout failed"),
        (160.0, "MBus", "Suppressed 2 repeated message(s): Readout failed"),
        (160.0, "MBus", "Readout failed"),
    ]
    # muted again from 160: a repeat at 219.9 is suppressed, one at 220 is logged
    assert log.log(219.9, W, "MBus", "Readout failed") is None
    assert log.log(220.0, W, "MBus", "Readout failed") is not None
    assert lines(log)[-2:] == [
        (220.0, "MBus", "Suppressed 1 repeated message(s): Readout failed"),
        (220.0, "MBus", "Readout failed"),
    ]
    assert log.suppressed == 3


def test_summary_written_when_time_moves_on_without_a_repeat():
    log = GatewayLog()
    log.log(0.0, W, "A", "x")
    log.log(10.0, W, "A", "x")
    log.advance(59.0)
    assert len(log.entries()) == 1  # window not over yet
    log.log(500.0, Severity.INFO, "B", "other")  # any later time closes the window
    assert lines(log) == [
        (0.0, "A", "x"),
        (FLOOD_WINDOW_S, "A", "Suppressed 1 repeated message(s): x"),
        (500.0, "B", "other"),
    ]
    assert log.entries()[1].type is W  # the summary keeps the severity


def test_no_summary_when_nothing_was_suppressed_and_repeat_after_window_is_logged():
    log = GatewayLog()
    log.log(0.0, W, "A", "x")
    log.log(60.0, W, "A", "x")
    assert lines(log) == [(0.0, "A", "x"), (60.0, "A", "x")]


def test_origin_and_text_both_make_the_key():
    log = GatewayLog()
    log.log(0.0, W, "A", "x")
    log.log(1.0, W, "B", "x")  # other origin
    log.log(2.0, W, "A", "y")  # other text
    log.log(3.0, W, "A", "x")  # repeat
    assert lines(log) == [(0.0, "A", "x"), (1.0, "B", "x"), (2.0, "A", "y")]


def test_summaries_of_several_windows_in_end_time_order():
    log = GatewayLog()
    log.log(0.0, W, "A", "x")
    log.log(5.0, W, "B", "y")
    log.log(6.0, W, "B", "y")
    log.log(7.0, W, "A", "x")
    log.advance(1000.0)
    assert [e.created for e in log.entries()] == [0.0, 5.0, 60.0, 65.0]


def test_minimum_level_zero_drops_debug_and_minus_one_keeps_it():
    default = GatewayLog()
    assert default.log(0.0, Severity.DEBUG, "A", "d") is None
    assert default.entries() == []
    debug = GatewayLog(min_level=-1)
    assert debug.log(0.0, Severity.DEBUG, "A", "d") == LogEntry(0.0, Severity.DEBUG, "A", "d")


def test_filter_by_severity_and_dates():
    log = GatewayLog()
    log.log(0.0, Severity.INFO, "S", "started")
    log.log(10.0, Severity.ERROR, "S", "broken")
    log.log(20.0, Severity.WARNING, "S", "odd")
    assert [e.message for e in log.entries(min_severity=W)] == ["broken", "odd"]
    assert [e.message for e in log.entries(since=5.0, until=10.0)] == ["broken"]


def test_retention_deletes_entries_older_than_a_month_and_counts_them():
    log = GatewayLog()
    log.log(0.0, Severity.INFO, "S", "old")
    log.log(1.0, Severity.INFO, "S", "newer")
    log.advance(MAX_AGE_S)  # "old" is exactly 31 days old: kept
    assert len(log.entries()) == 2
    log.advance(MAX_AGE_S + 0.5)
    assert [e.message for e in log.entries()] == ["newer"]
    assert log.expired == 1


def test_bad_input_is_a_typed_error():
    log = GatewayLog()
    log.log(10.0, W, "A", "x")
    with pytest.raises(LogError, match="earlier"):
        log.log(9.0, W, "A", "x")
    with pytest.raises(LogError, match="severity"):
        log.log(11.0, "warning", "A", "x")  # type: ignore[arg-type]
    with pytest.raises(LogError, match="min_level"):
        GatewayLog(min_level=5)
