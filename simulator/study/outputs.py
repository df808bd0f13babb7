"""Study outputs: per figure, the mean and 95 % Student t interval over seeds at each point,
as a table (``study.csv``, ``study.md``) and as plots against each varied parameter
(``study-<figure>-vs-<parameter>.png``).

A plot against parameter P has one line per combination of the other varied parameters
(named in the legend); points sit at the parameter's value (or its ``plot_as`` number; text
values are spread evenly and named on the axis). Error bars are the interval
(:mod:`simulator.study.stats`). Failed runs and figures that are not numbers are left out;
the ``n`` column says how many seeds a mean stands on.
"""

from __future__ import annotations

import csv
import math
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from simulator.study.results import ResultsTable, encode
from simulator.study.spec import Figure, Parameter, Sweep
from simulator.study.stats import Estimate, estimate

LEVEL = 0.95
METHOD = "mean over seeds, 95 % Student t interval"


@dataclass(frozen=True)
class Cell:
    """One point's estimate of one figure; ``failed`` runs of the point."""

    point: int
    values: dict[str, Any]
    figure: Figure
    est: Estimate | None
    failed: int


def _number(v: Any) -> float | None:
    if isinstance(v, bool):
        return float(v)
    if isinstance(v, int | float) and math.isfinite(v):
        return float(v)
    return None


def cells(sweep: Sweep, table: ResultsTable) -> list[Cell]:
    """Every (point, figure) estimate from the table's ok rows, in point then figure order."""
    by_point: dict[int, list] = defaultdict(list)
    for run in sweep.runs:
        by_point[run.point].append(run)
    out = []
    for point, runs in sorted(by_point.items()):
        rows = [table.values(r.key) for r in runs]
        ok = [r for r in rows if r and r["status"] == "ok"]
        failed = sum(1 for r in rows if r and r["status"] != "ok")
        for f in sweep.figures:
            nums = [x for x in (_number(r[f.key]) for r in ok) if x is not None]
            est = estimate(nums, LEVEL) if nums else None
            out.append(Cell(point, runs[0].values, f, est, failed))
    return out


def _fmt(x: float) -> str:
    if math.isnan(x):
        return ""
    return f"{x:.6g}"


def write_table(sweep: Sweep, all_cells: list[Cell], out: Path) -> list[Path]:
    """``study.csv`` (one row per point and figure) and ``study.md`` (one table per figure)."""
    params = [p.path for p in sweep.parameters]
    csv_path, md_path = out / "study.csv", out / "study.md"
    with csv_path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(
            ["point", *params, "figure", "n", "failed", "mean", "sd", "ci95_low", "ci95_high"]
        )
        for c in all_cells:
            e = c.est
            nums = (
                ["", "", "", ""] if e is None else [_fmt(v) for v in (e.mean, e.sd, e.low, e.high)]
            )
            w.writerow(
                [c.point, *(encode(c.values[p]) for p in params), c.figure.key]
                + [0 if e is None else e.n, c.failed, *nums]
            )
    lines = [
        f"# Sweep {sweep.name}: {sweep.scenario_name}",
        "",
        f"{len(sweep.runs) // len(sweep.seeds)} points x {len(sweep.seeds)} seeds "
        f"({', '.join(map(str, sweep.seeds))}); {METHOD}.",
    ]
    for f in sweep.figures:
        lines += ["", f"## {f.axis()}", "", f"`{f.key}`", ""]
        head = [p.axis() for p in sweep.parameters] + ["n", "failed", "mean", "95 % CI"]
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for c in (c for c in all_cells if c.figure is f):
            e = c.est
            mean = "" if e is None else _fmt(e.mean)
            ci = "" if e is None or math.isnan(e.half) else f"{_fmt(e.low)} .. {_fmt(e.high)}"
            row = [_cell(p, c.values[p.path]) for p in sweep.parameters]
            row += [str(0 if e is None else e.n), str(c.failed), mean, ci]
            lines.append("| " + " | ".join(row) + " |")
    md_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return [csv_path, md_path]


def _cell(p: Parameter, value: Any) -> str:
    text = encode(value)
    return f"{text} ({_fmt(p.x(value))})" if p.plot_as is not None else text


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower() or "x"


def plot(sweep: Sweep, all_cells: list[Cell], out: Path) -> list[Path]:
    """One PNG per figure and varied parameter (see the module doc)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = []
    for f in sweep.figures:
        mine = [c for c in all_cells if c.figure is f and c.est is not None]
        for p in sweep.parameters:
            others = [q for q in sweep.parameters if q is not p]
            fig, ax = plt.subplots(figsize=(7.0, 4.5), dpi=110)
            ticks = _axis(ax, p)
            groups: dict[tuple, list[Cell]] = defaultdict(list)
            for c in mine:
                groups[tuple(encode(c.values[q.path]) for q in others)].append(c)
            for gkey, members in groups.items():
                members.sort(key=lambda c: p.values.index(c.values[p.path]))
                xs = [ticks(c.values[p.path]) for c in members]
                ys = [c.est.mean for c in members]
                err = [0.0 if math.isnan(c.est.half) else c.est.half for c in members]
                label = (
                    ", ".join(
                        f"{q.label} = {v}{' ' + q.unit if q.unit else ''}"
                        for q, v in zip(others, gkey, strict=True)
                    )
                    or "mean over seeds"
                )
                ax.errorbar(xs, ys, yerr=err, marker="o", capsize=4, label=label)
            n = sorted({c.est.n for c in mine})
            seeds = f"{n[0]}" if len(n) == 1 else f"{n[0]}-{n[-1]}" if n else "0"
            ax.set_xlabel(p.axis())
            ax.set_ylabel(f.axis())
            ax.set_title(
                f"{sweep.scenario_name}: {f.label} vs {p.label}\n"
                f"sweep {sweep.name}; {seeds} seeds per point, bars: 95 % Student t interval",
                fontsize=10,
            )
            ax.grid(True, alpha=0.3)
            ax.legend(fontsize=8)
            fig.tight_layout()
            path = out / f"study-{_slug(f.key)}-vs-{_slug(p.path)}.png"
            fig.savefig(path)
            plt.close(fig)
            files.append(path)
    return files


def _axis(ax, p: Parameter):
    """How a parameter's values map onto x (numbers, ``plot_as``, or evenly spread text)."""
    if p.plot_as is not None or all(_number(v) is not None for v in p.values):
        return lambda v: p.x(v)
    ax.set_xticks(range(len(p.values)), [encode(v) for v in p.values])
    return lambda v: p.values.index(v)


def write(sweep: Sweep, table: ResultsTable, out: Path) -> list[Path]:
    """The study table and plots of ``sweep`` from ``table`` into ``out``; their paths."""
    all_cells = cells(sweep, table)
    return write_table(sweep, all_cells, out) + plot(sweep, all_cells, out)
