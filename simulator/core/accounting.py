"""End-of-run accounting invariants: every item a run took is in exactly one final state.

A kind's ``finish`` calls :func:`check_balance` with what it took (readouts, telegrams) and the
states they ended in (delivered, pending, expired, ...); a run whose counts do not add up is a
model defect, so it stops with :class:`AccountingError` instead of reporting wrong figures
(issue 14, "Accounting invariants").
"""

from __future__ import annotations


class AccountingError(RuntimeError):
    """The counts of a run do not add up; the message names the run part and the counts."""


def check_balance(where: str, taken_name: str, taken: int, **states: int) -> None:
    """Raise :class:`AccountingError` unless ``taken == sum(states.values())``.

    ``where`` names the part (e.g. ``cmi6140/000001``); all counts are non-negative integers.
    """
    bad = {k: v for k, v in states.items() if v < 0}
    total = sum(states.values())
    if total != taken or bad:
        parts = " + ".join(f"{k} {v}" for k, v in states.items())
        raise AccountingError(
            f"{where}: {taken_name} {taken} != {parts} (= {total})"
            + (f"; negative: {bad}" if bad else "")
        )
