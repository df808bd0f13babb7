"""``meterbench run [SCENARIO] [--out DIR] [--seed N] [--hours H] [--trace-level LEVEL]``.

With no SCENARIO, runs the default building scenario shipped with the package. The scenario's
``kind`` selects its device in the registry and the run skeleton
(:func:`simulator.devices.run_scenario`) writes DIR/trace.jsonl, the kind's CSV files and
plots, and DIR/summary.json; this verb prints the table. Exit 2 for a bad scenario (every
problem listed with file:line).
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from simulator.cli import EXIT_OK, EXIT_USAGE, out_dir
from simulator.core.memory import keep_freed_memory
from simulator.core.trace import TRACE_LEVELS
from simulator.devices import run_scenario
from simulator.report.console import Progress, format_table
from simulator.scenario import DEFAULT_SCENARIO, RunOptions, ScenarioError


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
        type=out_dir,
        default=None,
        help="results folder (default: ./meterbench-results/<scenario name>)",
    )
    p.add_argument("--seed", type=int, default=None, help="override the scenario's seed")
    p.add_argument(
        "--hours", type=_hours, default=None, help="override the simulated duration (h, > 0)"
    )
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.add_argument(
        "--real-sinks",
        action="store_true",
        help="push reports through real clients to local HTTP/FTP/SMTP receivers (cme3100)",
    )
    p.add_argument(
        "--trace-level",
        choices=TRACE_LEVELS,
        default="all",
        help="trace.jsonl holds every event (all, default), only frames/telegrams/datagrams "
        "(frames), or is not written (summary)",
    )
    p.add_argument(
        "--event-path",
        action="store_true",
        help="no exact fast path: every wait through the event loop (same trace, slower)",
    )
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
    keep_freed_memory()  # one run, then exit: reuse freed memory (simulator.core.memory)
    path = args.scenario or DEFAULT_SCENARIO
    out = args.out or Path("meterbench-results") / path.stem
    opts = RunOptions(
        out_dir=out,
        seed=args.seed,
        hours=args.hours,
        progress=Progress(enabled=not args.quiet),
        quiet=args.quiet,
        real_sinks=args.real_sinks,
        trace_level=args.trace_level,
        event_path=args.event_path,
    )
    try:
        result = run_scenario(path, opts)
    except ScenarioError as exc:
        print(f"meterbench run: {path}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    summary = result.summary
    rows = [*result.table, ("wall time", f"{summary['wall_seconds']:.2f} s")]
    title = f"meterbench run: {path.name} ({summary['kind']}, seed {summary['seed']})"
    print(format_table(rows, title=title))
    print("wrote: " + ", ".join(str(f) for f in result.files))
    return EXIT_OK
