"""The at-most-once checks keep their spans packed (issue 15: a year-long run's memory); they
must say exactly what the plain check said. The reference below is the check as it was before
packing (simulator/core/trace_invariants.py at eaf570c, spans as tuples of the raw values),
run side by side on random event streams: overlaps, gaps, out-of-order spans, texts that do
and do not pack (aware, space-separated, fractions), float and int bounds, int ``t``.
"""

from __future__ import annotations

import random
import tracemalloc
from collections import defaultdict
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import pytest

from simulator.core import trace_invariants
from simulator.core.trace_invariants import Cme3100Once, PushWindowOnce, _Spans


def _kind(ev: Any) -> str:
    return ev["kind"]


def _at(ev: Any) -> str:
    return f"t={ev['t']} {_kind(ev)} from {ev['source']}"


class RefCme3100Once:
    """Cme3100Once before packing (eaf570c), for dict events."""

    def __init__(self) -> None:
        self._done: dict = defaultdict(list)
        self._latest: dict = {}
        self.errors: list[str] = []

    def __call__(self, ev: Any) -> None:
        if _kind(ev) != "push_attempt" or not ev.get("ok"):
            return
        new = ev.get("new_values")
        if not new or not isinstance(new, Mapping):
            return
        source = ev["source"]
        line = _at(ev)
        report = ev.get("report")
        latest = self._latest
        for meter, (first, last, _n) in new.items():
            key = (source, report, meter)
            done = self._done[key]
            top = latest.get(key)
            latest[key] = last if top is None or last > top else top
            if top is None or top < first:
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


class RefPushWindowOnce:
    """PushWindowOnce before packing (eaf570c), for dict events."""

    _DELIVERED = {
        "stream_push": lambda ev: bool(ev.get("ok")),
        "push": lambda ev: ev.get("outcome") == "delivered",
    }

    def __init__(self) -> None:
        self._done: dict = defaultdict(list)
        self._latest: dict = {}
        self.errors: list[str] = []

    def __call__(self, ev: Any) -> None:
        delivered = self._DELIVERED.get(_kind(ev))
        if delivered is None or not delivered(ev):
            return
        window = ev.get("window")
        if not window:
            return
        first, last = window
        source = ev["source"]
        line = _at(ev)
        top = self._latest.get(source)
        self._latest[source] = last if top is None or last > top else top
        if top is not None and not top < first:
            for a, b, earlier in self._done[source]:
                if not (last < a or b < first):
                    self.errors.append(
                        f"{_kind(ev)} {source}: values of [{max(a, first)}, {min(b, last)}] "
                        f"delivered twice: {earlier}; again {line}"
                    )
                    break
        self._done[source].append((first, last, line))


T0 = datetime(2026, 1, 5)


def _iso(rng: random.Random, k: int) -> str:
    """Read time number ``k`` as report times are written, now and then in a form that does
    not pack (space separator, an offset) or with a fraction."""
    t = T0 + timedelta(seconds=k * 3600 + rng.choice([0, 0, 0, 5, 17]))
    roll = rng.random()
    if roll < 0.1:
        t += timedelta(microseconds=rng.choice([1, 500000, 999999]))
    if roll > 0.97:
        return t.isoformat(sep=" ")
    if roll > 0.95:
        return t.isoformat() + "+00:00"
    return t.isoformat()


def _bounds(rng: random.Random, as_text: bool) -> tuple[Any, Any]:
    lo = rng.randrange(0, 30)
    hi = lo + rng.choice([0, 0, 1, 2, 5])
    if as_text:
        a, b = _iso(rng, lo), _iso(rng, hi)
        return (a, b) if a <= b else (b, a)
    if rng.random() < 0.05:  # ints do not pack
        return lo, hi
    return lo * 3600.0 + rng.choice([0.0, 0.25]), hi * 3600.0 + 0.5


def _t(rng: random.Random, i: int) -> Any:
    return i if rng.random() < 0.03 else i * 3600.0 + rng.choice([0.0, 0.125, 1e-3])


@pytest.mark.parametrize("seed", range(150))
def test_packed_cme3100_once_says_what_the_plain_check_said(seed):
    rng = random.Random(seed)
    ref, new = RefCme3100Once(), Cme3100Once()
    text = rng.random() < 0.8  # read times are texts; floats (and ints) try the other packing
    for i in range(rng.randrange(5, 60)):
        spans = {}
        for meter in rng.sample(["81000001", "81000002", "82000001"], rng.randrange(1, 4)):
            first, last = _bounds(rng, as_text=text)
            spans[meter] = [first, last, 1]
        ev = {
            "kind": "push_attempt",
            "t": _t(rng, i),
            "source": rng.choice(["gw", "gw", "gw2"]),
            "report": rng.choice(["hourly", "daily"]),
            "ok": rng.random() < 0.9,
            "new_values": spans,
        }
        ref(ev)
        new(ev)
    assert new.errors == ref.errors


@pytest.mark.parametrize("seed", range(150))
def test_packed_push_window_once_says_what_the_plain_check_said(seed):
    rng = random.Random(seed)
    ref, new = RefPushWindowOnce(), PushWindowOnce()
    text = rng.random() < 0.5  # cme2100 windows are texts, stream windows world seconds
    for i in range(rng.randrange(5, 80)):
        kind = rng.choice(["stream_push", "stream_push", "push"])
        ev = {
            "kind": kind,
            "t": _t(rng, i),
            "source": rng.choice(["a", "a", "b"]),
            "ok": rng.random() < 0.9,
            "outcome": rng.choice(["delivered", "delivered", "failed"]),
            "window": list(_bounds(rng, as_text=text)),
        }
        ref(ev)
        new(ev)
    assert new.errors == ref.errors


def test_random_streams_do_find_duplicates():
    """The comparison above is not between two silent checks: most streams give errors."""
    found = 0
    for seed in range(50):
        rng = random.Random(seed)
        ref = RefCme3100Once()
        for i in range(30):
            first, last = _bounds(rng, as_text=True)
            ref(
                {
                    "kind": "push_attempt",
                    "t": float(i),
                    "source": "gw",
                    "report": "r",
                    "ok": True,
                    "new_values": {"m": [first, last, 1]},
                }
            )
        found += bool(ref.errors)
    assert found > 40


def test_canonical_texts_pack_and_decode_to_themselves():
    spans = _Spans()
    texts = ["2026-01-05T00:00:05", "2026-01-05T00:00:05.000001", "0001-01-01T00:00:00"]
    for i, x in enumerate(texts):
        spans.overlap_add(x, x, float(i), " push_attempt from gw", scan=False)
    assert spans._plain is None and len(spans) == 3
    found = spans.overlap_add(texts[1], texts[1], 9.0, " push_attempt from gw")
    assert found == (texts[1], texts[1], "t=1.0 push_attempt from gw")


@pytest.mark.parametrize(
    "x", ["2026-01-05 00:00:05", "2026-01-05T00:00:05+00:00", "2026-01-05T00:00:05.5", 5]
)
def test_bounds_that_do_not_pack_turn_the_key_plain(x):
    spans = _Spans()
    spans.overlap_add("2026-01-05T00:00:00", "2026-01-05T00:00:00", 1.0, " k from s", scan=False)
    spans.overlap_add(x, x, 2.0, " k from s", scan=False)
    assert spans._plain == [
        ("2026-01-05T00:00:00", "2026-01-05T00:00:00", "t=1.0 k from s"),
        (x, x, "t=2.0 k from s"),
    ]


def test_hourly_spans_cost_under_30_bytes_each():
    """Hourly reports of 50 meters for 2000 h: the packed check holds ~24 bytes a span, the
    plain one held ~270 (issue 15). Everything the listener allocates is counted."""
    meters = [f"{81000001 + i}" for i in range(50)]
    events = []
    for h in range(2000):
        t = (T0 + timedelta(hours=h)).isoformat()
        events.append({"kind": "push_attempt", "t": h * 3600.0, "source": "gw", "report": "r",
                       "ok": 1, "new_values": {m: [t, t, 1] for m in meters}})  # fmt: skip
    tracemalloc.start()
    once = Cme3100Once()
    for ev in events:
        once(ev)
    held = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert not once.errors
    assert held / (len(events) * len(meters)) < 30


def test_code_keeps_order_of_canonical_texts():
    rng = random.Random(1)
    texts = [
        (
            T0 + timedelta(seconds=rng.randrange(10**6), microseconds=rng.choice([0, 1, 7]))
        ).isoformat()
        for _ in range(500)
    ]
    codes = [trace_invariants._code(x)[1] for x in texts]
    for i in range(len(texts) - 1):
        (a, ca), (b, cb) = (texts[i], codes[i]), (texts[i + 1], codes[i + 1])
        assert (a < b) == (ca < cb) and (a == b) == (ca == cb)
