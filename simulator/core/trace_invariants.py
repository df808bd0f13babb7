"""End-of-run invariants read from the run's own trace events, never from model state.

Two general invariants (issue 14, "Accounting invariants"; docs/trace.md):

* **at most once** -- :class:`NbiotOnce`: each readout value reaches the server in at most one
  non-``duplicate`` ``nbiot.uplink`` unless the trace records a retransmission (the module's
  ``nbiot.telegram`` reports ``attempts`` > 1, or ``ok = false`` so its readouts go again).
* **at most once, CMe3100** -- :class:`Cme3100Once`: within one report slot, the values a
  delivered ``push_attempt`` carries for the first time (``new_values``: per meter the first
  and last read time) never overlap those of an earlier delivered attempt; values a fixed
  Value Period sends again are counted apart (``resent``), and a failed attempt's values go
  again by design (``ok = false`` in the trace).
* **at most once, stream and CMe2100** -- :class:`PushWindowOnce`: a delivered push carries
  the values received (stream: telegrams, world s) or read (CMe2100: report rows, ISO time)
  in its ``window`` [first, last]; the windows of one source's delivered pushes never overlap.
  A failed push keeps its values for the next one, so only delivered pushes count.
* **every byte in = traced** -- :func:`check_bridge_bytes`: for each bridge, the bytes read
  (``bridge_bytes`` in) = request bytes (``bridge_exchange``) + junk (``bridge_junk``) + dropped
  input/requests (``bridge_dropped``); the reply bytes of the exchanges = bytes written
  (``bridge_bytes`` out) + dropped replies; and the bridge's counters agree with the trace.

Both raise :class:`~simulator.core.accounting.AccountingError` naming the kind, the value and
the trace lines (time, source) involved. Listeners (:class:`NbiotOnce`) work with traces that
keep nothing in memory (``keep=False``); :func:`check_bridge_bytes` takes any event iterable,
typed events or the dicts of :meth:`Trace.read_jsonl`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from simulator.core.accounting import AccountingError

_Values = tuple[int, int, frozenset[int] | None]  # lo, hi, every stamp (None: only [lo, hi])


def _kind(ev: Any) -> str:
    return ev["kind"] if isinstance(ev, Mapping) else ev.kind


def _at(ev: Any) -> str:
    t, source = (ev["t"], ev["source"]) if isinstance(ev, Mapping) else (ev.t, ev.source)
    return f"t={t} {_kind(ev)} from {source}"


def _overlap(a: _Values, b: _Values) -> bool:
    if a[2] is not None and b[2] is not None:
        return bool(a[2] & b[2])
    return not (a[1] < b[0] or b[1] < a[0])


class _Listener:
    """A trace listener that collects violations in ``errors``; :meth:`check` raises."""

    errors: list[str]

    def check(self) -> None:
        """Raise :class:`AccountingError` with the first violation (and how many there are)."""
        if self.errors:
            more = f" (and {len(self.errors) - 1} more)" if len(self.errors) > 1 else ""
            raise AccountingError(self.errors[0] + more)


class NbiotOnce(_Listener):
    """Trace listener for the nbiot kind: each readout delivered at most once (module doc).

    An uplink names its readouts' UTC times (``times``: all of them, or ``[min, max]`` when
    more than four; then the check compares ranges). Uplinks between two ``nbiot.telegram``
    events of a module belong to the module's telegram in flight. :meth:`check` raises
    :class:`AccountingError` for the first value delivered twice without a traced retransmission.
    """

    def __init__(self) -> None:
        self._window: dict[str, list[tuple[_Values, str]]] = defaultdict(list)
        self._done: dict[str, list[tuple[_Values, str]]] = defaultdict(list)
        self.errors: list[str] = []

    def __call__(self, ev: Any) -> None:
        kind = _kind(ev)
        if kind == "nbiot.uplink":
            self._uplink(ev)
        elif kind == "nbiot.telegram":
            self._telegram(ev)

    def _uplink(self, ev: Any) -> None:
        times = ev.get("times")
        if ev.get("duplicate") or not times:
            return  # a flagged retransmission, or no data message
        module = ev.get("module")
        exact = frozenset(times) if len(times) == ev.get("readouts") else None
        vals: _Values = (min(times), max(times), exact)
        for other, line in self._done[module]:
            if _overlap(vals, other):
                self.errors.append(
                    f"nbiot {module}: readouts {_show(vals)} delivered twice, no retransmission "
                    f"in the trace: {line}; again {_at(ev)}"
                )
        self._window[module].append((vals, _at(ev)))

    def _telegram(self, ev: Any) -> None:
        module = ev.get("source") if isinstance(ev, Mapping) else ev.source
        window = self._window.pop(module, [])
        attempts = ev.get("attempts") or 1
        firsts: list[tuple[_Values, str]] = []
        for vals, line in window:
            same = [x for x in window if _overlap(vals, x[0])]
            if len(same) > attempts:
                self.errors.append(
                    f"nbiot {module}: readouts {_show(vals)} arrived {len(same)} times for a "
                    f"telegram of {attempts} attempt(s): {same[0][1]}; again {same[1][1]}"
                )
            if not any(_overlap(vals, f[0]) for f in firsts):
                firsts.append((vals, line))
        if ev.get("ok"):
            self._done[module] += firsts
        # not ok: the trace shows these readouts go again, so a later arrival is a retransmission


class Cme3100Once(_Listener):
    """Trace listener for the cme3100 kind: each value delivered at most once per report slot
    (module doc). :meth:`check` raises :class:`AccountingError` naming the slot, the meter,
    the read times and both trace lines."""

    def __init__(self) -> None:
        # (gateway, slot, meter) -> [(first, last, trace line)]
        self._done: dict[tuple[str, str, str], list[tuple[str, str, str]]] = defaultdict(list)
        # (gateway, slot, meter) -> the latest ``last`` in its list: values read after it
        # overlap nothing, so a slot's year of reports is not checked pairwise
        self._latest: dict[tuple[str, str, str], str] = {}
        self.errors: list[str] = []

    def __call__(self, ev: Any) -> None:
        if _kind(ev) != "push_attempt" or not ev.get("ok"):
            return
        new = ev.get("new_values")
        if not new or not isinstance(new, Mapping):
            return
        source = ev["source"] if isinstance(ev, Mapping) else ev.source
        line = _at(ev)
        report = ev.get("report")
        latest = self._latest
        for meter, (first, last, _n) in new.items():
            key = (source, report, meter)
            done = self._done[key]
            top = latest.get(key)
            latest[key] = last if top is None or last > top else top
            if top is None or top < first:  # after every earlier span: no overlap
                done.append((first, last, line))
                continue
            for a, b, earlier in done:
                if not (last < a or b < first):
                    self.errors.append(
                        f"cme3100 {source} report {ev.get('report')!r} meter {meter}: values "
                        f"read in [{max(a, first)}, {min(b, last)}] delivered twice as new: "
                        f"{earlier}; again {line}"
                    )
                    break
            done.append((first, last, line))


class PushWindowOnce(_Listener):
    """Trace listener for the stream (``stream_push``, ``ok``) and cme2100 (``push``,
    ``outcome = delivered``) kinds: the ``window`` of each delivered push does not overlap
    an earlier delivered push's of the same source (module doc). :meth:`check` raises
    :class:`AccountingError` naming both trace lines."""

    _DELIVERED = {
        "stream_push": lambda ev: bool(ev.get("ok")),
        "push": lambda ev: ev.get("outcome") == "delivered",
    }

    def __init__(self) -> None:
        self._done: dict[str, list[tuple[Any, Any, str]]] = defaultdict(list)
        self._latest: dict[str, Any] = {}  # source -> latest ``last`` (as in Cme3100Once)
        self.errors: list[str] = []

    def __call__(self, ev: Any) -> None:
        delivered = self._DELIVERED.get(_kind(ev))
        if delivered is None or not delivered(ev):
            return
        window = ev.get("window")
        if not window:
            return
        first, last = window
        source = ev["source"] if isinstance(ev, Mapping) else ev.source
        line = _at(ev)
        top = self._latest.get(source)
        self._latest[source] = last if top is None or last > top else top
        if top is not None and not top < first:  # not after every earlier window: scan
            for a, b, earlier in self._done[source]:
                if not (last < a or b < first):
                    self.errors.append(
                        f"{_kind(ev)} {source}: values of [{max(a, first)}, {min(b, last)}] "
                        f"delivered twice: {earlier}; again {line}"
                    )
                    break
        self._done[source].append((first, last, line))


def _show(vals: _Values) -> str:
    return str(sorted(vals[2])) if vals[2] is not None else f"in [{vals[0]}, {vals[1]}]"


def check_bridge_bytes(
    events: Iterable[Any], counters: Mapping[str, Mapping[str, int]] | None = None
) -> dict[str, dict[str, int]]:
    """Every byte in = traced, per bridge (``source``); return the tallies per bridge.

    ``counters``: :attr:`SerialBridge.counters` by bridge name, compared with the trace when
    given (``bytes_in``, ``bytes_out`` = out + echo bytes, ``junk_bytes``). Raises
    :class:`AccountingError` naming the bridge and the figures that do not add up.
    """
    tally: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for ev in events:
        kind = _kind(ev)
        if not kind.startswith("bridge_"):
            continue
        src = ev["source"] if isinstance(ev, Mapping) else ev.source
        c = tally[src]
        if kind == "bridge_bytes":
            c[ev.get("direction")] += ev.get("n")
        elif kind == "bridge_junk":
            c["junk"] += ev.get("n")
        elif kind == "bridge_dropped":
            what = ev.get("what")
            c["dropped_in" if what in ("input", "request") else f"dropped_{what}"] += ev.get("n")
        elif kind == "bridge_exchange":
            c["requests"] += len(ev.get("request")) // 2
            more = ev.get("more") or []
            c["replies"] += len(ev.get("reply")) // 2 + sum(len(x["reply"]) // 2 for x in more)
    for name, c in tally.items():
        took = c["requests"] + c["junk"] + c["dropped_in"]
        if c["in"] != took:
            raise AccountingError(
                f"bridge {name}: bytes in {c['in']} != request {c['requests']} + junk "
                f"{c['junk']} + dropped {c['dropped_in']} (= {took})"
            )
        gone = c["out"] + c["dropped_reply"]
        if c["replies"] != gone:
            raise AccountingError(
                f"bridge {name}: reply bytes {c['replies']} != written {c['out']} + dropped "
                f"{c['dropped_reply']} (= {gone})"
            )
    for name, k in (counters or {}).items():
        c = tally.get(name, defaultdict(int))
        pairs = {
            "bytes_in": c["in"],
            "bytes_out": c["out"] + c["echo"],
            "junk_bytes": c["junk"],
        }
        for key, traced in pairs.items():
            if k[key] != traced:
                raise AccountingError(f"bridge {name}: counter {key} {k[key]} != traced {traced}")
    return {name: dict(c) for name, c in tally.items()}
