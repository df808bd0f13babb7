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

Writing is batched: recorded events wait in a list and every :data:`BATCH` events are encoded
together (msgspec, :func:`~simulator.core.events.encode_lines`) and written to the sink, the
rest at :meth:`Trace.flush`; so an event must not be changed after it is recorded (none is:
kept traces are written at the end from the same objects). A run may write only some kinds
(``write_kinds``, e.g. :data:`FRAME_KINDS` for ``meterbench run --trace-level frames``);
listeners and the kept list still get every event, so the level never changes a model.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TextIO

from simulator.core.events import HEADER_KIND, TraceEvent, encode_lines, header_line

__all__ = ["BATCH", "FRAME_KINDS", "TRACE_LEVELS", "Trace", "TraceEvent"]

#: Events encoded and written to the sink together.
BATCH = 4096

#: Kinds written at trace level ``frames``: what crossed a medium (wired frames and talkovers,
#: radio telegrams, NB-IoT datagrams, SMS, Virtual M-Bus and bridge exchanges and bytes).
FRAME_KINDS = frozenset(
    {
        "frame",
        "talkover",
        "wmbus_tx",
        "wmbus_rx",
        "wmbus_collision",
        "stream_rx",
        "nbiot.uplink",
        "nbiot.coap_tx",
        "nbiot.mqttsn_tx",
        "nbiot.dtls_tx",
        "sms",
        "virtual_mbus",
        "bridge_exchange",
        "bridge_bytes",
    }
)

#: Trace levels of a run: every event, frames only (:data:`FRAME_KINDS`), or no trace file
#: (the summary only).
TRACE_LEVELS = ("all", "frames", "summary")


class Trace:
    """An append-only, ordered list of :class:`TraceEvent`.

    ``keep=False`` stops the trace from holding events in memory (city-scale runs); events
    still reach listeners and the optional ``sink`` (a text file receiving JSON lines).
    Listeners are called synchronously with each event, in registration order. A ``sink``
    gets the header line at once and the event lines in batches: call :meth:`flush` before
    reading or closing it. ``write_kinds`` (None: all) limits the kinds written to the sink;
    ``count`` counts every recorded event, ``written`` those encoded for the sink so far.
    """

    def __init__(
        self,
        *,
        keep: bool = True,
        sink: TextIO | None = None,
        write_kinds: frozenset[str] | None = None,
    ) -> None:
        self.keep = keep
        self.sink = sink
        self.write_kinds = write_kinds
        self._events: list[TraceEvent] = []
        #: (listener, the kinds it asked for or None for every kind), in subscription order
        self._listeners: list[tuple[Callable[[TraceEvent], None], frozenset[str] | None]] = []
        self._pending: list[TraceEvent] = []
        self.count = 0
        self.written = 0
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
        if self.sink is not None and (self.write_kinds is None or event.kind in self.write_kinds):
            pending = self._pending
            pending.append(event)
            if len(pending) >= BATCH:
                self.flush()
        if self._listeners:
            kind = event.kind
            for listener, wanted in self._listeners:
                if wanted is None or kind in wanted:
                    listener(event)
        return event

    def wants(self, kind: str) -> bool:
        """Whether an event of ``kind`` would reach anyone (kept, written or listened to).

        A hot producer may then skip building one that would not and call :meth:`skip`
        instead: ``count`` stays what recording it would have made it."""
        if self.keep or any(k is None or kind in k for _, k in self._listeners):
            return True
        return self.sink is not None and (self.write_kinds is None or kind in self.write_kinds)

    def skip(self, n: int = 1) -> None:
        """Count ``n`` events a producer did not build because nobody wants them
        (:meth:`wants`)."""
        self.count += n

    def flush(self) -> None:
        """Encode and write the events waiting for the sink (a no-op without one).

        Raises TypeError (from :func:`~simulator.core.events.encode_lines`) for an event
        field JSON cannot hold."""
        if self._pending:
            batch, self._pending = self._pending, []  # an encoding error loses only this batch
            lines = encode_lines(batch)
            self.written += len(batch)
            self.sink.write(lines.decode("utf-8"))  # type: ignore[union-attr]

    def subscribe(
        self, listener: Callable[[TraceEvent], None], kinds: Iterable[str] | None = None
    ) -> None:
        """Call ``listener(event)`` for every event recorded from now on, or only for those
        of ``kinds`` (event ``kind`` strings; producers may then skip building the others,
        :meth:`wants`)."""
        self._listeners.append((listener, None if kinds is None else frozenset(kinds)))

    def unsubscribe(self, listener: Callable[[TraceEvent], None]) -> None:
        """Stop calling ``listener`` (its first subscription); ValueError if it has none."""
        for i, (known, _) in enumerate(self._listeners):
            if known == listener:
                del self._listeners[i]
                return
        raise ValueError(f"{listener!r} is not subscribed")

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
        return self._lines().decode("utf-8")

    def write_jsonl(self, path: str | Path) -> Path:
        """Write the header and the kept events as JSON lines to ``path``; return the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8", newline="\n") as fh:
            fh.write(self._lines().decode("utf-8"))
        return path

    def _lines(self) -> bytes:
        return header_line().encode() + b"\n" + encode_lines(self._events)

    @staticmethod
    def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
        """Read a trace file's events back as dicts, header line skipped (reports, tests)."""
        with Path(path).open(encoding="utf-8") as fh:
            rows = [json.loads(line) for line in fh if line.strip()]
        return [r for r in rows if r.get("kind") != HEADER_KIND]

    def extend(self, events: Iterable[TraceEvent]) -> None:
        for ev in events:
            self.record(ev)
