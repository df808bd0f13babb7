"""The trace: everything observable, in order, with its time, source and outcome.

A trace event is one observable thing: a frame on the wired bus, a telegram in the air, an
uplink, an SMS, a push report, a bus overload. Suites assert on the trace, never on a model's
private state, so one assertion serves a simulated and a physical device under test.

Every event is a typed record of :mod:`simulator.core.events` (``TraceEvent`` is re-exported
here). A trace file is JSON lines: one header line (``{"format":"meterbench-trace",
"kind":"trace_header","schema":2}``), then one line per event with sorted keys and times
rounded to the nanosecond, so the same scenario and seed give a byte-identical file. ``wall``
(Unix seconds) is present only for events recorded in real time (bridge runs); virtual-time
runs never read the wall clock. docs/trace.md and docs/trace.schema.json describe the lines.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TextIO

from simulator.core.events import HEADER_KIND, TraceEvent, header_line

__all__ = ["Trace", "TraceEvent"]


class Trace:
    """An append-only, ordered list of :class:`TraceEvent`.

    ``keep=False`` stops the trace from holding events in memory (city-scale runs); events
    still reach listeners and the optional ``sink`` (a text file receiving JSON lines).
    Listeners are called synchronously with each event, in registration order. A ``sink``
    gets the header line at once.
    """

    def __init__(self, *, keep: bool = True, sink: TextIO | None = None) -> None:
        self.keep = keep
        self.sink = sink
        self._events: list[TraceEvent] = []
        self._listeners: list[Callable[[TraceEvent], None]] = []
        self.count = 0
        if sink is not None:
            sink.write(header_line() + "\n")

    def record(self, event: TraceEvent) -> TraceEvent:
        """Append ``event`` (its ``t`` set) and hand it to the listeners and the sink; return it.

        Producers build typed events (:mod:`simulator.core.events`); ``TypeError`` for
        anything else.
        """
        if not isinstance(event, TraceEvent):
            raise TypeError(f"a trace records typed events, not {type(event).__name__}")
        self.count += 1
        if self.keep:
            self._events.append(event)
        if self.sink is not None:
            self.sink.write(event.to_json() + "\n")
        for listener in self._listeners:
            listener(event)
        return event

    def subscribe(self, listener: Callable[[TraceEvent], None]) -> None:
        """Call ``listener(event)`` for every event recorded from now on."""
        self._listeners.append(listener)

    def unsubscribe(self, listener: Callable[[TraceEvent], None]) -> None:
        self._listeners.remove(listener)

    def __iter__(self) -> Iterator[TraceEvent]:
        return iter(self._events)

    def __len__(self) -> int:
        return len(self._events)

    def __getitem__(self, index: int) -> TraceEvent:
        return self._events[index]

    def select(
        self, kind: str | None = None, source: str | None = None, **match: Any
    ) -> list[TraceEvent]:
        """Events of ``kind`` (and ``source``, if given) whose fields equal every ``match`` item.

        ``source`` ending in ``*`` matches by prefix (``"slave/*"``).
        """
        out = []
        for ev in self._events:
            if kind is not None and ev.kind != kind:
                continue
            if source is not None:
                if source.endswith("*"):
                    if not ev.source.startswith(source[:-1]):
                        continue
                elif ev.source != source:
                    continue
            if any(ev.get(k) != v for k, v in match.items()):
                continue
            out.append(ev)
        return out

    def to_jsonl(self) -> str:
        """The trace file's text: header line, then the kept events."""
        return header_line() + "\n" + "".join(ev.to_json() + "\n" for ev in self._events)

    def write_jsonl(self, path: str | Path) -> Path:
        """Write the header and the kept events as JSON lines to ``path``; return the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8", newline="\n") as fh:
            fh.write(header_line() + "\n")
            for ev in self._events:
                fh.write(ev.to_json() + "\n")
        return path

    @staticmethod
    def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
        """Read a trace file's events back as dicts, header line skipped (reports, tests)."""
        with Path(path).open(encoding="utf-8") as fh:
            rows = [json.loads(line) for line in fh if line.strip()]
        return [r for r in rows if r.get("kind") != HEADER_KIND]

    def extend(self, events: Iterable[TraceEvent]) -> None:
        for ev in events:
            self.record(ev)
