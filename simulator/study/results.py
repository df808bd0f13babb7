"""The results table of a sweep: one CSV row per run, keyed by the run's hash.

Columns: ``key`` (:func:`~simulator.study.spec.run_key`), ``point`` (0-based), ``seed``,
``status`` (``ok`` or ``failed``), ``error`` (why a run failed, else empty), ``wall_s``
(the run's wall time, s), one column per varied parameter (its dotted path) and one per
figure (its dotted summary key). Values that are not plain numbers or text (a receiver
grid ``[2, 2]``, a bool) are written as JSON.

CSV, not Parquet: the table is small (one row per run) and CSV needs no extra dependency.
Rows are appended and flushed as runs finish, so a sweep that stops keeps what it finished;
:meth:`ResultsTable.finished` is what a resumed sweep skips (rows with status ``ok``; failed
runs are run again). :meth:`ResultsTable.rewrite` leaves one row per run of the current
sweep, in point and seed order.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from simulator.study.spec import Sweep

FIXED = ("key", "point", "seed", "status", "error", "wall_s")


def encode(value: Any) -> str:
    """A cell: numbers and text as they are, None as empty, anything else as JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return repr(value)
    return json.dumps(value, separators=(",", ":"))


def decode(cell: str) -> Any:
    """The inverse of :func:`encode` for numbers, bools, lists and tables; text stays text."""
    if cell == "":
        return None
    try:
        return json.loads(cell)
    except ValueError:
        return cell


class ResultsTable:
    """The CSV file at ``path`` for ``sweep`` (see the module doc)."""

    def __init__(self, path: Path, sweep: Sweep) -> None:
        self.path = Path(path)
        self.sweep = sweep
        self.columns = [
            *FIXED,
            *(p.path for p in sweep.parameters),
            *(f.key for f in sweep.figures),
        ]
        self.rows: dict[str, dict[str, str]] = {}  # key -> row (text cells), latest wins
        if self.path.is_file():
            with self.path.open(encoding="utf-8", newline="") as fh:
                for row in csv.DictReader(fh):
                    if row.get("key"):
                        self.rows[row["key"]] = row
        self._fh = None

    def finished(self) -> set[str]:
        """Keys of runs of this sweep that finished with status ok (with every figure column)."""
        wanted = {r.key for r in self.sweep.runs}
        return {
            k
            for k, row in self.rows.items()
            if k in wanted and row.get("status") == "ok" and all(c in row for c in self.columns)
        }

    def add(self, run, status: str, error: str, wall_s: float, figures: dict[str, Any]) -> None:
        """Record a finished run and append its row to the file at once."""
        row = {
            "key": run.key,
            "point": str(run.point),
            "seed": str(run.seed),
            "status": status,
            "error": error,
            "wall_s": f"{wall_s:.3f}",
            **{p: encode(v) for p, v in run.values.items()},
            **{f.key: encode(figures.get(f.key)) for f in self.sweep.figures},
        }
        self.rows[run.key] = row
        if self._fh is None:
            fresh = not self.path.is_file() or self.path.stat().st_size == 0
            if not fresh and self._header() != self.columns:
                self.rewrite()  # an older table with other columns: start it anew
                fresh = False
            self._fh = self.path.open("a", encoding="utf-8", newline="")
            if fresh:
                csv.writer(self._fh, lineterminator="\n").writerow(self.columns)
        writer = csv.DictWriter(self._fh, self.columns, lineterminator="\n", extrasaction="ignore")
        writer.writerow(row)
        self._fh.flush()

    def _header(self) -> list[str]:
        with self.path.open(encoding="utf-8", newline="") as fh:
            return next(csv.reader(fh), [])

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def rewrite(self) -> int:
        """Rewrite the file: one row per run of this sweep, in point and seed order. Returns
        how many rows of runs no longer in the sweep were dropped."""
        self.close()
        order = {r.key: i for i, r in enumerate(self.sweep.runs)}
        stale = [k for k in self.rows if k not in order]
        for k in stale:
            del self.rows[k]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".csv.tmp")
        with tmp.open("w", encoding="utf-8", newline="") as fh:
            writer = csv.DictWriter(fh, self.columns, lineterminator="\n", extrasaction="ignore")
            writer.writeheader()
            for key in sorted(self.rows, key=order.__getitem__):
                writer.writerow({c: self.rows[key].get(c, "") for c in self.columns})
        tmp.replace(self.path)
        return len(stale)

    def values(self, key: str) -> dict[str, Any] | None:
        """The decoded row of run ``key``, or None."""
        row = self.rows.get(key)
        return None if row is None else {c: decode(row.get(c, "")) for c in self.columns}
