"""``meterbench run [SCENARIO] [--out DIR] [--seed N] [--hours H]``: run a scenario.

With no SCENARIO, runs the default building scenario shipped with the package. The runner
for the scenario's ``kind`` writes its files into DIR (trace.jsonl, readouts.csv, plots...);
this verb adds ``wall_seconds`` to the summary, writes DIR/summary.json and prints the table.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

from simulator.report.console import Progress, format_table
from simulator.scenario import DEFAULT_SCENARIO, RunOptions, ScenarioError, load_toml, runner_for


def add_parser(sub) -> None:
    p = sub.add_parser("run", help="run a scenario in virtual time and write its results")
    p.add_argument(
        "scenario",
        nargs="?",
        type=Path,
        default=None,
        help="scenario TOML (default: the building scenario shipped with meterbench)",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="results folder (default: ./meterbench-results/<scenario name>)",
    )
    p.add_argument("--seed", type=int, default=None, help="override the scenario's seed")
    p.add_argument(
        "--hours", type=_hours, default=None, help="override the simulated duration (h, > 0)"
    )
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=main)


def _hours(text: str) -> float:
    # checked here for every kind: a runner would blame the file's `hours` line (or crash)
    try:
        hours = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (math.isfinite(hours) and hours > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number of hours > 0, got {text!r}")
    return hours


def main(args) -> int:
    path = args.scenario or DEFAULT_SCENARIO
    try:
        doc = load_toml(path)
        runner = runner_for(doc)
        out = args.out or Path("meterbench-results") / path.stem
        out.mkdir(parents=True, exist_ok=True)
        opts = RunOptions(
            out_dir=out,
            seed=args.seed,
            hours=args.hours,
            progress=Progress(enabled=not args.quiet),
            quiet=args.quiet,
        )
        t0 = time.perf_counter()  # wall time of the whole run, for the summary only
        result = runner.run(doc, opts)
        wall = time.perf_counter() - t0
    except ScenarioError as exc:
        print(f"meterbench run: {path}: {exc}", file=sys.stderr)
        return 2
    summary = dict(result.summary)
    summary["wall_seconds"] = round(wall, 3)
    (out / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    rows = list(result.table) + [("wall time", f"{wall:.2f} s")]
    print(
        format_table(rows, title=f"meterbench run: {path.name} (seed {summary.get('seed', '?')})")
    )
    written = [*result.files, out / "summary.json"]
    print("wrote: " + ", ".join(str(f) for f in written))
    return 0
