"""The CMe3100 system log: severities, a minimum level, and the one-minute flood protection.

Seed 002 §6.14 (CME3100.md §8): each entry has a type (severity), a created time, a source
(origin, e.g. ``SNMPService``) and a message. Severities are error, warning, info and debug;
the "minimum severity level" setting is ``0`` (everything but debug, the default) or ``-1``
(debug too). The bench numbers the levels ``debug -1, info 0, warning 1, error 2`` so that
both settings of §6.14.2 mean what the manual says.

Flood protection (seed 002 §4.2, as CME3100.md §8 states it), per ``(source, message)``:

1. the first occurrence is logged and opens a one-minute window ``[t, t + 60 s)``;
2. repeats inside the window are suppressed and counted;
3. when the window ends (at ``t + 60 s`` exactly) and something was suppressed, one summary
   line is logged, created at the window end, same source and severity, message
   ``Suppressed <n> repeated message(s): <message>``; nothing was suppressed: no summary;
4. the next repeat at or after the window end is logged once and opens a new window.

Time is world seconds passed in by the caller (the log never reads a clock). The log holds no
process: a summary is written when the log next hears of a time at or past the window end
(:meth:`GatewayLog.log` or :meth:`GatewayLog.advance`), always with the window-end time, so
entries stay in time order whatever the caller's rhythm. Entries below the minimum level are
dropped before flood protection (they never open a window).

Retention: entries older than :data:`MAX_AGE_S` (the "1 month" of §4.2, taken as 31 days so
nothing goes before a calendar month has passed) are deleted as time moves on and counted in
:attr:`GatewayLog.expired`. The 100 MB size limit is not modelled (entry sizes on the device
are not known).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from enum import IntEnum

#: Length of the flood-protection window (s), seed 002 §4.2.
FLOOD_WINDOW_S = 60.0
#: Log history kept (s): "1 month" (seed 002 §4.2) read as 31 days.
MAX_AGE_S = 31 * 86400.0


class LogError(ValueError):
    """Bad input to the log: says what and which argument."""


class Severity(IntEnum):
    """Entry type; the value is the level the minimum-level setting compares with."""

    DEBUG = -1
    INFO = 0
    WARNING = 1
    ERROR = 2


@dataclass(frozen=True)
class LogEntry:
    """One log line: ``created`` world s; ``type`` the severity; ``source`` the origin."""

    created: float
    type: Severity
    source: str
    message: str


@dataclass
class _Window:
    start: float
    severity: Severity
    suppressed: int = 0

    @property
    def end(self) -> float:
        return self.start + FLOOD_WINDOW_S


class GatewayLog:
    """The system log (module doc). ``min_level`` is ``0`` (default, no debug) or ``-1``."""

    def __init__(self, min_level: int = 0) -> None:
        if min_level not in (-1, 0, 1, 2):
            raise LogError(f"min_level: {min_level!r} is not one of -1, 0, 1, 2")
        self.min_level = min_level
        self._entries: deque[LogEntry] = deque()
        self._windows: dict[tuple[str, str], _Window] = {}
        self._now = float("-inf")
        #: entries deleted by the retention rule
        self.expired = 0
        #: repeats suppressed by flood protection, in all
        self.suppressed = 0

    def log(self, at: float, severity: Severity, source: str, message: str) -> LogEntry | None:
        """Log ``message`` from ``source`` at world time ``at`` (s). Returns the entry written,
        or None when it is below the minimum level or suppressed.

        Raises :class:`LogError` if ``at`` is earlier than a time already seen (the log is
        written in time order) or ``severity`` is not a :class:`Severity`."""
        if not isinstance(severity, Severity):
            raise LogError(f"severity: {severity!r} is not a Severity")
        self.advance(at)
        if severity < self.min_level:
            return None
        key = (source, message)
        window = self._windows.get(key)
        if window is not None:  # advance() removed every window that had ended
            window.suppressed += 1
            self.suppressed += 1
            return None
        self._windows[key] = _Window(at, severity)
        return self._append(LogEntry(at, severity, source, message))

    def advance(self, now: float) -> None:
        """Move the log's time to ``now`` (world s): write the summaries of windows that
        ended at or before ``now`` (in end-time order) and apply retention."""
        if now < self._now:
            raise LogError(f"at: {now} s is earlier than {self._now} s already logged")
        self._now = now
        ended = sorted(
            ((w.end, key) for key, w in self._windows.items() if w.end <= now),
            key=lambda item: item[0],
        )
        for end, key in ended:
            window = self._windows.pop(key)
            if window.suppressed:
                text = f"Suppressed {window.suppressed} repeated message(s): {key[1]}"
                self._append(LogEntry(end, window.severity, key[0], text))
        while self._entries and self._entries[0].created < now - MAX_AGE_S:
            self._entries.popleft()
            self.expired += 1

    def entries(
        self,
        *,
        min_severity: Severity = Severity.DEBUG,
        since: float | None = None,
        until: float | None = None,
    ) -> list[LogEntry]:
        """Entries filtered as the System Log page does (§6.14.1): severity at least
        ``min_severity``, created in ``[since, until]`` (world s, either open)."""
        return [
            e
            for e in self._entries
            if e.type >= min_severity
            and (since is None or e.created >= since)
            and (until is None or e.created <= until)
        ]

    def _append(self, entry: LogEntry) -> LogEntry:
        self._entries.append(entry)
        return entry
