"""The trace: everything observable, in order, with its time, source and outcome.

A trace event is one observable thing: a frame on the wired bus, a telegram in the air, an
uplink, an SMS, a push report, a bus overload. Suites assert on the trace, never on a model's
private state, so one assertion serves a simulated and a physical device under test.

Serialisation is JSON lines with sorted keys and times rounded to the nanosecond, so the same
scenario and seed give a byte-identical file. ``wall`` (Unix seconds) is present only for
events recorded in real time (bridge runs); virtual-time runs never read the wall clock.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO


@dataclass(frozen=True, slots=True)
class TraceEvent:
    """One observable event.

    ``t`` is world time in seconds since the scenario start; ``kind`` names what it is
    (``"frame"``, ``"readout"``, ``"telegram"``, ``"uplink"``, ...; see docs/trace.md);
    ``source`` names who produced or observed it (``"master"``, ``"slave/12345678"``,
    ``"bridge"``); ``fields`` holds the rest (JSON-serialisable values only).
    """

    t: float
    kind: str
    source: str
    fields: dict[str, Any] = field(default_factory=dict)
    wall: float | None = None

    def get(self, key: str, default: Any = None) -> Any:
        return self.fields.get(key, default)

    def __getitem__(self, key: str) -> Any:
        return self.fields[key]

    def to_json(self) -> str:
        obj: dict[str, Any] = {"t": round(self.t, 9), "kind": self.kind, "source": self.source}
        obj.update(self.fields)
        if self.wall is not None:
            obj["wall"] = round(self.wall, 6)
        return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=_json_default)


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return value.hex()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"trace field of type {type(value).__name__} is not JSON-serialisable")


class Trace:
    """An append-only, ordered list of :class:`TraceEvent`.

    ``keep=False`` stops the trace from holding events in memory (city-scale runs); events
    still reach listeners and the optional ``sink`` (a text file receiving JSON lines).
    Listeners are called synchronously with each event, in registration order.
    """

    def __init__(self, *, keep: bool = True, sink: TextIO | None = None) -> None:
        self.keep = keep
        self.sink = sink
        self._events: list[TraceEvent] = []
        self._listeners: list[Callable[[TraceEvent], None]] = []
        self.count = 0

    def record(
        self, t: float, kind: str, source: str, wall: float | None = None, **fields: Any
    ) -> TraceEvent:
        """Append an event and hand it to the listeners and the sink; return it."""
        event = TraceEvent(float(t), kind, source, fields, wall)
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
            if any(ev.fields.get(k) != v for k, v in match.items()):
                continue
            out.append(ev)
        return out

    def to_jsonl(self) -> str:
        return "".join(ev.to_json() + "\n" for ev in self._events)

    def write_jsonl(self, path: str | Path) -> Path:
        """Write the kept events as JSON lines to ``path``; return the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8", newline="\n") as fh:
            for ev in self._events:
                fh.write(ev.to_json() + "\n")
        return path

    @staticmethod
    def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
        """Read a trace file back as a list of dicts (for reports and tests)."""
        with Path(path).open(encoding="utf-8") as fh:
            return [json.loads(line) for line in fh if line.strip()]

    def extend(self, events: Iterable[TraceEvent]) -> None:
        for ev in events:
            self.record(ev.t, ev.kind, ev.source, ev.wall, **ev.fields)
