"""CMe3100 meter value database: rows, queries, storage limit, status-byte log (seed 002
Table 11, §6.14.3)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from simulator.gateways.cme3100.value_db import (
    CAPACITY_ROWS,
    MAX_ROWS_PER_METER,
    Readout,
    ReadoutStatus,
    StatusByteLogging,
    ValueDatabase,
    ValueDbError,
    rows_per_meter,
)
from simulator.mbus.frames import LongFrame
from simulator.mbus.telegram import decode_telegram

A, B = "12345678", "87654321"


def rsp(status: int = 0, access: int = 1) -> bytes:
    """A real RSP_UD (CI 72 long header) with the given status byte, built by the codec."""
    header = bytes.fromhex("78563412") + bytes.fromhex("9315") + bytes([0x01, 0x07, 0])
    body = header[:-1] + bytes([access, status, 0x00, 0x00]) + bytes.fromhex("0413E8030000")
    return LongFrame(0x08, 0x00, 0x72, body).to_bytes()


def rd(at, meter, status, status_byte=None, message="", telegrams=(), position=None):
    """One readout in the shared record (read_at: local time of world time ``at``)."""
    return Readout(
        meter=meter,
        read_at=datetime(2026, 1, 5) + timedelta(seconds=at),
        telegrams=telegrams,
        status=status,
        position=position,
        at=at,
        status_byte=status_byte,
        message=message,
    )


def ok(at: float, meter: str = A, status: int = 0) -> Readout:
    return rd(at, meter, ReadoutStatus.OK, status, "Readout successfully", (rsp(status),))


def test_row_keeps_everything_and_raw_telegram_decodes_back():
    db = ValueDatabase()
    two = (rsp(0, 1), rsp(0, 2))
    db.store(rd(900.0, A, ReadoutStatus.OK, 0x00, "Readout successfully", two, position=3))
    row = db.latest(A)
    assert (row.at, row.meter, row.position, row.telegram_count) == (900.0, A, 3, 2)
    assert row.telegrams == two
    assert decode_telegram(row.telegrams[1]).header.access_no == 2


def test_queries_by_meter_and_time_range_and_latest():
    db = ValueDatabase()
    for t in (0.0, 900.0, 1800.0, 2700.0):
        db.store(ok(t, A))
    db.store(rd(900.0, B, ReadoutStatus.FAILED, message="No response"))
    assert [r.at for r in db.readouts(A, since=900.0, until=1800.0)] == [900.0, 1800.0]
    assert [r.at for r in db.readouts(A, since=901.0)] == [1800.0, 2700.0]
    assert db.readouts("99999999") == []
    assert db.latest(A).at == 2700.0
    assert {m: r.status for m, r in db.latest_all().items()} == {
        A: ReadoutStatus.OK,
        B: ReadoutStatus.FAILED,
    }
    assert db.latest(B).telegram_count == 0


def test_rule_reproduces_table_11():
    per_year_15min, per_year_hourly = 365 * 96, 365 * 24
    # 15-min: 1 meter 15 y, 32: 4 y, 128: 1 y, 256: 0.5 y, 512: 0.25 y
    for meters, years in ((1, 15), (32, 4), (128, 1), (256, 0.5), (512, 0.25)):
        assert rows_per_meter(meters) / per_year_15min == pytest.approx(years)
    # hourly: 32: > 15 y, 128: 4 y, 256: 2 y (512: the bench keeps 1 y, the table 0.5 y)
    assert rows_per_meter(32) / per_year_hourly > 15
    assert rows_per_meter(128) / per_year_hourly == pytest.approx(4)
    assert rows_per_meter(256) / per_year_hourly == pytest.approx(2)
    assert rows_per_meter(1) == MAX_ROWS_PER_METER and CAPACITY_ROWS == 4_485_120


def test_limit_drops_oldest_and_counts_them():
    db = ValueDatabase(capacity_rows=10, max_rows_per_meter=6)
    for t in range(8):
        db.store(ok(float(t), A))
    assert db.limit == 6
    assert [r.at for r in db.readouts(A)] == [2.0, 3.0, 4.0, 5.0, 6.0, 7.0]
    assert db.dropped(A) == 2
    # a second meter halves the budget: A is trimmed at once to 5 rows
    db.store(ok(8.0, B))
    assert db.limit == 5
    assert [r.at for r in db.readouts(A)] == [3.0, 4.0, 5.0, 6.0, 7.0]
    assert (db.dropped(A), db.dropped(B), db.dropped()) == (3, 0, 3)


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        (StatusByteLogging.ALWAYS, [0.0, 1.0, 2.0, 3.0, 4.0]),
        (StatusByteLogging.NEVER, []),
        (StatusByteLogging.ON_CHANGE, [0.0, 2.0, 4.0]),
        (StatusByteLogging.ON_ERROR, [2.0, 3.0]),
    ],
)
def test_status_byte_logging_modes(mode, expected):
    db = ValueDatabase(status_byte_logging=mode)
    # status bytes 00, 00, 14 (power low + temporary error), 14, 00 (and a failed readout
    # in between, which has no status byte and writes nothing)
    for t, byte in ((0.0, 0x00), (1.0, 0x00), (2.0, 0x14), (3.0, 0x14), (4.0, 0x00)):
        db.store(ok(t, A, byte))
        if t == 1.0:
            db.store(rd(1.5, A, ReadoutStatus.FAILED, message="No response"))
    assert [e.created for e in db.meter_log(A)] == expected


def test_status_byte_text_and_default_mode():
    db = ValueDatabase()
    assert db.status_byte_logging is StatusByteLogging.ON_CHANGE
    first = db.store(ok(0.0, A, 0x00))
    err = db.store(ok(1.0, A, 0x14))
    manuf = db.store(ok(2.0, A, 0x20))
    assert first.message == "M-Bus status ok"
    assert err.message == "M-Bus status 0x14: power_low, temporary_error"
    assert err.source == f"MeterLog:{A}"
    assert manuf.message == "M-Bus status 0x20: manufacturer"
    # manufacturer bits are not an error in ON_ERROR mode
    on_err = ValueDatabase(status_byte_logging=StatusByteLogging.ON_ERROR)
    assert on_err.store(ok(0.0, A, 0x20)) is None


def test_bad_input_is_a_typed_error():
    db = ValueDatabase()
    db.store(ok(10.0, A))
    with pytest.raises(ValueDbError, match="older than the latest"):
        db.store(ok(9.0, A))
    with pytest.raises(ValueDbError, match="8 digits"):
        db.store(ok(11.0, "1234"))
    with pytest.raises(ValueDbError, match="no telegram"):
        db.store(rd(11.0, A, ReadoutStatus.OK, 0))


def test_only_the_newest_row_of_a_meter_keeps_its_decoded_telegrams():
    """Readout.decoded is a cache the next report uses: a year of rows must not hold
    decoded telegrams (memory), and dropping them leaves the value unchanged."""
    import dataclasses

    db = ValueDatabase()
    rows = [dataclasses.replace(ok(t), decoded=(decode_telegram(rsp()),)) for t in (1.0, 2.0)]
    other = dataclasses.replace(ok(1.5, B), decoded=(decode_telegram(rsp()),))
    before = [dataclasses.replace(r) for r in rows]
    for r in (rows[0], other, rows[1]):
        db.store(r)
    first, newest = db.readouts(A)
    assert first.decoded == () and len(newest.decoded) == 1
    assert len(db.latest(B).decoded) == 1  # another meter's newest row keeps its own
    assert [first, newest] == before  # the value is the same without the cache
