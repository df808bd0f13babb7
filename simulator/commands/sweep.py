"""``meterbench sweep SPEC [--out DIR] [--scheduler ADDR] [--workers N]``: run a study.

SPEC is a sweep file (:mod:`simulator.study.spec`, docs/sweeps.md). It is validated in full
first (exit 2, every problem with file:line). Its runs go to Dask as tasks
(:mod:`simulator.study.execute`); DIR/results.csv gets one row per run as it finishes, runs
already there with status ok are not run again (resume), and at the end DIR gets the study
table and plots (:mod:`simulator.study.outputs`). Exit 0 when every run is ok, 1 when some
failed (their errors are in the table), 3 when the Dask scheduler cannot be reached or the
local cluster does not start, 130 on Ctrl-C (the table keeps what finished).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from simulator.cli import EXIT_BENCH_FAULT, EXIT_CHECKS_FAILED, EXIT_OK, EXIT_USAGE, out_dir
from simulator.scenario import ScenarioError


def add_parser(sub) -> None:
    p = sub.add_parser("sweep", help="run a parameter sweep on Dask and write its study")
    p.add_argument("spec", type=Path, help="sweep TOML (docs/sweeps.md)")
    p.add_argument(
        "--out",
        type=out_dir,
        default=None,
        help="results folder (default: ./meterbench-results/sweep-<sweep name>)",
    )
    p.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDR",
        help="Dask scheduler, e.g. tcp://HOST:8786 (default: Dask's scheduler-address config, "
        "else a LocalCluster on this machine)",
    )
    p.add_argument(
        "--workers", type=_positive, default=None, help="LocalCluster workers (default: cores)"
    )
    p.add_argument("--check", action="store_true", help="validate SPEC and list its runs only")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=main)


def _positive(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {n}")
    return n


def main(args) -> int:
    from simulator.report.page import write_page
    from simulator.study import execute, outputs
    from simulator.study.results import ResultsTable
    from simulator.study.spec import load_sweep

    try:
        sweep = load_sweep(args.spec)
    except ScenarioError as exc:
        print(f"meterbench sweep: {args.spec}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    out = args.out or Path("meterbench-results") / f"sweep-{sweep.name}"
    print(
        f"meterbench sweep: {sweep.name} on {sweep.scenario_name} ({sweep.kind}): "
        f"{sweep.points} points x {len(sweep.seeds)} seeds = {len(sweep.runs)} runs"
    )
    if args.check:
        return EXIT_OK
    out.mkdir(parents=True, exist_ok=True)
    table = ResultsTable(out / "results.csv", sweep)
    skipped = len(table.finished())
    if skipped:
        print(f"resuming: {skipped} run(s) already in {table.path}")
    t0 = time.perf_counter()
    if skipped < len(sweep.runs):
        try:
            client, cluster = execute.connect(args.scheduler, args.workers)
        except execute.ClusterError as exc:
            print(f"meterbench sweep: {exc}", file=sys.stderr)
            return EXIT_BENCH_FAULT
        try:
            workers = len(client.scheduler_info().get("workers", {}))
            print(f"dask: {client.scheduler.address}, {workers} worker(s)")
            progress = execute.SweepProgress(
                len(sweep.runs), skipped=skipped, enabled=not args.quiet
            )
            execute.run_sweep(sweep, table, client, progress=progress)
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
    wall = time.perf_counter() - t0
    stale = table.rewrite()
    if stale:
        print(f"dropped {stale} row(s) of runs no longer in the sweep")
    files = [table.path, *outputs.write(sweep, table, out)]
    failed = sum(1 for r in sweep.runs if (table.values(r.key) or {}).get("status") != "ok")
    # the results page of the sweep's folder: its tables and plots (docs/results-page.md)
    rows = [("runs", f"{len(sweep.runs) - failed} ok, {failed} failed"), ("wall", f"{wall:.1f} s")]
    files.append(write_page(out, f"Sweep {sweep.name} of {sweep.scenario_name}", rows))
    print(f"wall time {wall:.1f} s; {len(sweep.runs) - failed} ok, {failed} failed")
    print("wrote: " + ", ".join(str(f) for f in files))
    return EXIT_CHECKS_FAILED if failed else EXIT_OK
