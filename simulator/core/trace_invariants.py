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

from array import array
from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from simulator.core.accounting import AccountingError

_Values = tuple[int, int, frozenset[int] | None]  # lo, hi, every stamp (None: only [lo, hi])


def _kind(ev: Any) -> str:
    return ev["kind"] if isinstance(ev, Mapping) else ev.kind


def _at(ev: Any) -> str:
    t, source = (ev["t"], ev["source"]) if isinstance(ev, Mapping) else (ev.t, ev.source)
    return f"t={t} {_kind(ev)} from {source}"


_EPOCH = datetime(1970, 1, 1)
_US = timedelta(microseconds=1)


def _code(x: Any) -> tuple[str, int | float] | None:
    """A span bound as an 8-byte number with the same order and equality, or None.

    A float is its own number. A canonical naive ISO 8601 text (``datetime.isoformat()`` of a
    naive time: fixed-width fields, the fraction absent or 6 digits) becomes microseconds
    since 1970; for such texts text order is time order (a text without fraction is a prefix
    of, so before, the same second with one), so ``<`` and ``==`` agree with the texts'."""
    if type(x) is float:
        return "d", x
    if type(x) is str:
        try:
            t = datetime.fromisoformat(x)
        except ValueError:
            return None
        if t.tzinfo is None and t.isoformat() == x:
            return "q", (t - _EPOCH) // _US
    return None


class _Spans:
    """One key's delivered spans ``(first, last, trace line)``, in arrival order, for an exact
    at-most-once check in little memory (issue 15: a year of hourly reports of 250 meters is
    2.2 M spans; as tuples of texts ~270 bytes each, here 24).

    Why every span is kept: the check must name, for any later span, the first earlier span
    it overlaps, and a later span can overlap any earlier one. Spans [1, 1], [3, 3], ...,
    [2k+1, 2k+1] followed by [2j+1, 2j+1] overlap exactly span j, for every j, so forgetting
    any span lets some duplicate through. (The common case, a span after every earlier one,
    is decided by the latest bound alone, without a scan: :meth:`deliver`.)

    So the spans stay, packed: bounds as numbers (:func:`_code`) in arrays, the line as its
    ``t`` (a float) with the text ``" {kind} from {source}"`` shared by the key. A bound that
    does not pack, a ``t`` that is not a float, a different text, or bounds of another
    kind turn the key back to plain tuples, exactly as kept before. Decoded bounds are the
    texts that came in (canonical texts only are packed)."""

    __slots__ = ("_type", "_lo", "_hi", "_t", "_tail", "_plain", "_top")

    def __init__(self) -> None:
        self._top: Any = None  # the latest ``last`` so far (a bound, as it came in)
        self._type = ""  # array type code of the packed bounds, "" while empty
        self._lo: Any = None
        self._hi: Any = None
        self._t = array("d")
        self._tail = ""
        self._plain: list[tuple[Any, Any, str]] | None = None

    def deliver(self, first: Any, last: Any, t: Any, tail: str) -> tuple[Any, Any, str] | None:
        """The first earlier span that ``[first, last]`` overlaps, as ``(first, last, line)``,
        else None; then append the span. A span that starts after the latest ``last`` so far
        overlaps nothing and is appended without a scan (a slot's year of reports is not
        checked pairwise)."""
        top = self._top
        self._top = last if top is None or last > top else top
        return self.overlap_add(first, last, t, tail, scan=top is not None and not top < first)

    def overlap_add(
        self, first: Any, last: Any, t: Any, tail: str, scan: bool = True
    ) -> tuple[Any, Any, str] | None:
        """With ``scan``: the first earlier span (arrival order) that ``[first, last]``
        overlaps, as ``(first, last, line)``, else None; then append the span."""
        lo, hi = _code(first), _code(last)
        packs = (
            self._plain is None
            and lo is not None
            and hi is not None
            and lo[0] == hi[0]
            and (not self._type or (lo[0] == self._type and tail == self._tail))
            and type(t) is float
        )
        if not packs:
            plain = self._unpack()
            found = None
            if scan:
                found = next((x for x in plain if not (last < x[0] or x[1] < first)), None)
            plain.append((first, last, f"t={t}{tail}"))
            return found
        assert lo is not None and hi is not None
        if not self._type:
            self._type, self._tail = lo[0], tail
            self._lo, self._hi = array(lo[0]), array(lo[0])
        a_, b_ = lo[1], hi[1]
        found = None
        if scan:
            for i, (a, b) in enumerate(zip(self._lo, self._hi, strict=True)):
                if not (b_ < a or b < a_):
                    found = (self._decode(a), self._decode(b), f"t={self._t[i]}{self._tail}")
                    break
        self._lo.append(a_)
        self._hi.append(b_)
        self._t.append(t)
        return found

    def _decode(self, n: int | float) -> Any:
        if self._type == "d":
            return n
        return (_EPOCH + timedelta(microseconds=n)).isoformat()

    def _unpack(self) -> list[tuple[Any, Any, str]]:
        if self._plain is None:
            self._plain = [
                (self._decode(a), self._decode(b), f"t={t}{self._tail}")
                for a, b, t in zip(self._lo or (), self._hi or (), self._t, strict=True)
            ]
            self._lo = self._hi = None
            self._t = array("d")
        return self._plain

    def __len__(self) -> int:
        return len(self._plain) if self._plain is not None else len(self._t)


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
        # (gateway, slot, meter) -> its delivered spans (first, last, trace line)
        self._done: dict[tuple[str, str, str], _Spans] = defaultdict(_Spans)
        self.errors: list[str] = []

    def __call__(self, ev: Any) -> None:
        if _kind(ev) != "push_attempt" or not ev.get("ok"):
            return
        new = ev.get("new_values")
        if not new or not isinstance(new, Mapping):
            return
        source = ev["source"] if isinstance(ev, Mapping) else ev.source
        t = ev["t"] if isinstance(ev, Mapping) else ev.t
        tail = f" {_kind(ev)} from {source}"  # the trace line is f"t={t}{tail}" (_at)
        report = ev.get("report")
        done = self._done
        for meter, (first, last, _n) in new.items():
            hit = done[(source, report, meter)].deliver(first, last, t, tail)
            if hit is not None:
                a, b, earlier = hit
                self.errors.append(
                    f"cme3100 {source} report {ev.get('report')!r} meter {meter}: values "
                    f"read in [{max(a, first)}, {min(b, last)}] delivered twice as new: "
                    f"{earlier}; again t={t}{tail}"
                )


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
        self._done: dict[str, _Spans] = defaultdict(_Spans)  # source -> delivered windows
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
        t = ev["t"] if isinstance(ev, Mapping) else ev.t
        tail = f" {_kind(ev)} from {source}"  # the trace line is f"t={t}{tail}" (_at)
        hit = self._done[source].deliver(first, last, t, tail)
        if hit is not None:
            a, b, earlier = hit
            self.errors.append(
                f"{_kind(ev)} {source}: values of [{max(a, first)}, {min(b, last)}] "
                f"delivered twice: {earlier}; again t={t}{tail}"
            )


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
