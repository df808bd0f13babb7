"""The CMe3100 meter value database: every readout with its time, status and raw telegrams.

What a row holds (seed 004 §6.14.4 shot "Readings": created, message, M-Bus status, telegram
counter; FTP template reference: the raw telegram per telegram), see :class:`Readout`. Meters
are keyed by their secondary address (8-digit identification number as text, as in the meter
list, seed 002 Table 4); the meter-list position is kept with each row.

Storage limit (seed 002 Table 11, CME3100.md §4 "capacity"). The table gives how far back
values reach: 15-min readouts: 1 meter 15 y, 32: 4 y, 128: 1 y, 256: 0.5 y, 512: 0.25 y;
hourly: 1 and 32: > 15 y, 128: 4 y, 256: 2 y, 512: 0.5 y. All but two of these are one
budget of rows shared by the meters: 128 meters x 1 y of 15-min readouts =
:data:`CAPACITY_ROWS` = 4 485 120 rows, with no meter keeping more than 15 y of 15-min readouts
(:data:`MAX_ROWS_PER_METER` = 525 600). The bench's rule:

    rows kept per meter = min(MAX_ROWS_PER_METER, CAPACITY_ROWS // meters in the database)

It reproduces every 15-min figure and the hourly 1/32/128/256-meter ones; for 512 meters
hourly it keeps 1 y where the table says 0.5 y (the table is not one budget there; the bench
keeps the simpler rule). When a meter is over its limit its oldest rows go, and every row that
goes is counted (:meth:`ValueDatabase.dropped`): nothing disappears silently. A new meter
lowers the limit for all, and all are trimmed at once.

M-Bus status byte logging (seed 002 §6.14.3, "meter log"): a :class:`StatusByteLogging`
mode decides which readouts write a status line to the meter's log (:meth:`meter_log`):

- ``ALWAYS``: every readout that has a status byte;
- ``NEVER``: none;
- ``ON_CHANGE`` (default, §6.14.3): the byte differs from that meter's previous status byte;
  the first status byte a meter ever reports counts as a change (there was none before);
- ``ON_ERROR``: the byte has an error bit set: application status (bits 0-1) not 0, power
  low (bit 2), permanent (bit 3) or temporary error (bit 4), EN 13757-3 / PROTOCOL.md §4.3;
  the manufacturer bits 5-7 are not errors.

A readout without a status byte (failed, not decryptable) writes no status line. A meter log
keeps at most as many lines as the meter keeps rows (it has at most one line per readout).
Times are world seconds passed in by the caller; the database never reads a clock.

Rows are held as columns per meter (:mod:`.meter_rows`, ~95 bytes a row instead of ~310 as
objects); a query builds the :class:`Readout` objects again, equal to the ones stored.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from enum import Enum

from simulator.core.text import is_decimal
from simulator.gateways.cme3100.log import LogEntry, Severity
from simulator.gateways.cme3100.meter_rows import MeterRows, RowKinds
from simulator.gateways.cme3100.readout import Readout, ReadoutStatus
from simulator.mbus.telegram import STATUS_APPLICATION, STATUS_BITS

#: Row budget of the whole database: 128 meters x 1 year of 15-min readouts (Table 11).
CAPACITY_ROWS = 128 * 365 * 96
#: Most rows one meter keeps: 15 years of 15-min readouts (Table 11, 1 meter).
MAX_ROWS_PER_METER = 15 * 365 * 96
#: Status byte bits the bench counts as an error for ``ON_ERROR`` (module doc).
STATUS_ERROR_MASK = 0x1F
#: Source name of meter-log lines.
METER_LOG_SOURCE = "MeterLog"


class ValueDbError(ValueError):
    """Bad input to the value database: says what and for which meter."""


class StatusByteLogging(Enum):
    """When the M-Bus status byte goes to the meter log (seed 002 §6.14.3)."""

    ALWAYS = "always"
    NEVER = "never"
    ON_CHANGE = "on-change"
    ON_ERROR = "on-error"


def rows_per_meter(meters: int) -> int:
    """Rows kept per meter when the database holds ``meters`` meters (module doc rule)."""
    return min(MAX_ROWS_PER_METER, CAPACITY_ROWS // max(1, meters))


def status_text(byte: int) -> str:
    """Meter-log text for a status byte: ``M-Bus status ok`` (seed 004 §6.14.4 shot) or
    ``M-Bus status 0x14: power_low, temporary_error``."""
    if byte == 0:
        return "M-Bus status ok"
    names = [name for bit, name in STATUS_BITS.items() if byte & bit]
    app = STATUS_APPLICATION[byte & 0x03]
    names = ([app] if app else []) + names + (["manufacturer"] if byte & 0xE0 else [])
    return f"M-Bus status 0x{byte:02X}: {', '.join(names)}"


class ValueDatabase:
    """Readouts per meter in time order, with the storage limit and status-byte log of the
    module doc. ``capacity_rows`` / ``max_rows_per_meter`` override the Table 11 budget (tests
    use small ones)."""

    def __init__(
        self,
        *,
        status_byte_logging: StatusByteLogging = StatusByteLogging.ON_CHANGE,
        capacity_rows: int = CAPACITY_ROWS,
        max_rows_per_meter: int = MAX_ROWS_PER_METER,
    ) -> None:
        if capacity_rows < 1 or max_rows_per_meter < 1:
            raise ValueDbError("capacity_rows and max_rows_per_meter must be >= 1")
        self.status_byte_logging = status_byte_logging
        self.capacity_rows = capacity_rows
        self.max_rows_per_meter = max_rows_per_meter
        self._rows: dict[str, MeterRows] = {}
        self._kinds = RowKinds()  # the rows' repeated fields, shared by the meters
        self._dropped: dict[str, int] = {}
        self._last_byte: dict[str, int] = {}
        self._meter_log: dict[str, list[LogEntry]] = {}

    @property
    def limit(self) -> int:
        """Rows each meter keeps now (module doc rule with this database's budget)."""
        n = max(1, len(self._rows))
        return min(self.max_rows_per_meter, self.capacity_rows // n)

    def store(self, readout: Readout) -> LogEntry | None:
        """Store one readout; returns the meter-log status line it wrote, if any.

        Raises :class:`ValueDbError` if the readout is older than that meter's latest row
        (rows go in time order), the meter is not 8 digits, or ``telegram_count`` and the
        status disagree (an OK readout needs at least one telegram)."""
        meter = readout.meter
        rows = self._rows.get(meter)
        if rows is None and (len(meter) != 8 or not is_decimal(meter)):  # a known one passed
            raise ValueDbError(f"meter {meter!r}: secondary address must be 8 digits")
        if readout.status == ReadoutStatus.OK and not readout.telegrams:
            raise ValueDbError(f"meter {meter}: an OK readout at {readout.at} s has no telegram")
        if readout.status_byte is not None and not 0 <= readout.status_byte <= 0xFF:
            raise ValueDbError(f"meter {meter}: status byte {readout.status_byte} not 0..255")
        last = rows.newest() if rows is not None else None
        if last is not None and readout.at < last.at:
            raise ValueDbError(
                f"meter {meter}: readout at {readout.at} s is older than the latest ({last.at} s)"
            )
        if rows is None:
            rows = self._rows[meter] = MeterRows(meter, self._kinds)
            self._dropped[meter] = 0
            self._trim_all()  # one more meter: a lower limit for every meter
        elif last is not None and last.decoded:
            # only a meter's newest row keeps the telegrams its reader decoded (a cache the
            # next report uses, not part of the value): memory stays one set per meter
            object.__setattr__(last, "decoded", ())
        rows.append(readout)
        self._trim(meter)
        return self._log_status_byte(readout)

    def readouts(
        self, meter: str, since: float | None = None, until: float | None = None
    ) -> list[Readout]:
        """Rows of ``meter`` with ``since <= at <= until`` (world s, either open), oldest
        first; an unknown meter has none."""
        rows = self._rows.get(meter)
        if rows is None:
            return []
        lo, hi = rows.span(since, until)
        return rows[lo:hi]

    def rows(self, meter: str) -> Sequence[Readout]:
        """All rows of ``meter``, oldest first, without a copy: a read-only view for readers
        that bisect (the push reports' Value Period ledger at every report, through
        :func:`~.meter_rows.count_read_through`); valid until the next :meth:`store`."""
        return self._rows.get(meter, ())

    def latest(self, meter: str) -> Readout | None:
        """The newest row of ``meter`` (None if never stored)."""
        rows = self._rows.get(meter)
        return rows.newest() if rows is not None else None

    def latest_value(self, meter: str) -> Readout | None:
        """The newest row of ``meter`` that carries telegrams (a failed readout after it does
        not hide it; the Virtual M-Bus service serves this one), or None."""
        rows = self._rows.get(meter)
        return rows.latest_value() if rows is not None else None

    def latest_all(self) -> dict[str, Readout]:
        """The newest row of every meter, by secondary address."""
        return {m: r for m, rows in self._rows.items() if (r := rows.newest()) is not None}

    def meters(self) -> list[str]:
        """Meters with rows, in the order they were first stored."""
        return list(self._rows)

    def time_keys(self, meter: str, status: str = ReadoutStatus.OK) -> list[int]:
        """Read times (:func:`~.headend.time_key`, us) of ``meter``'s rows with ``status``,
        oldest first, without building the rows (the run's accounting at the end)."""
        rows = self._rows.get(meter)
        return rows.time_keys(status) if rows is not None else []

    def cells(self, meter: str) -> Iterator[tuple]:
        """``meter``'s rows as ``(at, meter, read_at, position, status, status_byte,
        telegram count)``, oldest first, without building the rows (readouts.csv)."""
        rows = self._rows.get(meter)
        return rows.cells() if rows is not None else iter(())

    def dropped(self, meter: str | None = None) -> int:
        """Rows dropped by the storage limit: for ``meter``, or in all."""
        if meter is None:
            return sum(self._dropped.values())
        return self._dropped.get(meter, 0)

    def meter_log(self, meter: str) -> list[LogEntry]:
        """The meter's status-byte lines (seed 002 §6.14.3), oldest first."""
        return list(self._meter_log.get(meter, []))

    def _trim(self, meter: str, limit: int | None = None) -> None:
        limit = self.limit if limit is None else limit
        rows = self._rows[meter]
        excess = len(rows) - limit
        if excess > 0:
            rows.drop(excess)
            self._dropped[meter] += excess
        # the meter log has at most one line per readout: the same limit bounds it
        log = self._meter_log.get(meter)
        if log and len(log) > limit:
            del log[: len(log) - limit]

    def _trim_all(self) -> None:
        limit, logs = self.limit, self._meter_log
        for meter, rows in self._rows.items():  # only meters over the limit need a trim
            log = logs.get(meter)
            if len(rows) > limit or (log and len(log) > limit):
                self._trim(meter, limit)

    def _log_status_byte(self, readout: Readout) -> LogEntry | None:
        byte = readout.status_byte
        if byte is None:
            return None
        previous = self._last_byte.get(readout.meter)
        self._last_byte[readout.meter] = byte
        mode = self.status_byte_logging
        write = (
            mode is StatusByteLogging.ALWAYS
            or (mode is StatusByteLogging.ON_CHANGE and byte != previous)
            or (mode is StatusByteLogging.ON_ERROR and byte & STATUS_ERROR_MASK)
        )
        if not write:
            return None
        severity = Severity.WARNING if byte & STATUS_ERROR_MASK else Severity.INFO
        entry = LogEntry(
            readout.at, severity, f"{METER_LOG_SOURCE}:{readout.meter}", status_text(byte)
        )
        self._meter_log.setdefault(readout.meter, []).append(entry)
        return entry


__all__ = ["Readout", "ReadoutStatus", "StatusByteLogging", "ValueDatabase", "ValueDbError"]
