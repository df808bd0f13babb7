"""The module's delivery ledger (:class:`simulator.nbiot.seqset.SeqSet`) answers like a ``set``.

Telegrams of consecutive readouts arrive in random orders, with duplicates (a resent telegram
whose ACK was lost), single out-of-order readouts and gaps (readouts never delivered); after
every insertion membership, size and the sorted contents must equal a plain ``set``'s.
"""

from __future__ import annotations

import random

import pytest

from simulator.nbiot.seqset import SeqSet


def _batches(rng: random.Random, n: int) -> list[list[int]]:
    seqs = list(range(n))
    out = []
    i = 0
    while i < n:
        k = rng.randint(1, 30)
        out.append(seqs[i : i + k])
        i += k
    rng.shuffle(out)  # telegrams reach the server in any order
    out = [b for b in out if rng.random() > 0.15]  # some never arrive (gaps)
    out += [rng.choice(out) for _ in range(len(out) // 4)] if out else []  # resent copies
    out += [[rng.randrange(-5, n + 5)] for _ in range(n // 10)]  # single readouts
    out += [rng.sample(range(-5, n + 5), rng.randint(0, 6)) for _ in range(n // 20)]  # scattered
    rng.shuffle(out)
    return out


@pytest.mark.parametrize("case", range(40))
def test_answers_like_a_set_over_random_delivery_orders(case):
    rng = random.Random(case)
    n = rng.choice([10, 100, 600])
    ref: set[int] = set()
    got = SeqSet()
    for batch in _batches(rng, n):
        ref |= frozenset(batch)
        got |= frozenset(batch)
        assert len(got) == len(ref)
    assert list(got) == sorted(ref)
    assert all((x in got) == (x in ref) for x in range(-10, n + 10))
    other = set(rng.sample(range(-5, n + 5), n // 2))
    assert SeqSet(other).count_not_in(got) == len(other - ref)
    lo, hi = sorted(rng.sample(range(-10, n + 10), 2))
    assert got.count_in(lo, hi) == len([x for x in ref if lo <= x < hi])


def test_runs_stay_few_when_telegrams_arrive_in_order():
    got = SeqSet()
    for day in range(365):
        got |= frozenset(range(day * 24, day * 24 + 24))
    assert len(got) == 365 * 24 and got.runs() == 1
    got.add(10_000)  # one readout out of order: one more run, not one more per readout
    assert got.runs() == 2 and 10_000 in got and 9_999 not in got and 8_759 in got


@pytest.mark.parametrize("case", range(10))
def test_resent_and_overlapping_telegrams_at_the_end_answer_like_a_set(case):
    """The fleet's pattern: each telegram in order, often delivered twice (its ACK came after
    the retransmission), sometimes resent with readouts before or after it: a run inside,
    touching or crossing the end of the last one."""
    rng = random.Random(case)
    ref: set[int] = set()
    got = SeqSet()
    top = 0
    for _ in range(400):
        k = rng.randint(1, 24)
        batch = range(top, top + k)
        top += k
        for _ in range(rng.choice([1, 2, 2, 3])):
            got.add_run(batch.start, batch.stop)
            ref |= set(batch)
        lo = rng.randint(max(0, top - 30), top)  # a piece at, inside or beyond the end
        hi = lo + rng.randint(0, 3)
        got.add_run(lo, hi)
        ref |= set(range(lo, hi))
        top = max(top, hi)
        assert len(got) == len(ref)
    assert list(got) == sorted(ref)
