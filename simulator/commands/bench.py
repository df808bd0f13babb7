"""``meterbench bench``: run, save, compare and plot the benches (docs/benchmarks.md).

* ``meterbench bench run [--results DIR] [-- PYTEST ARGS]``: run ``pytest benches
  --benchmark-only`` and save the JSON as ``DIR/<commit>.json`` (``-dirty`` appended when the
  work tree has uncommitted changes). Exit: pytest's.
* ``meterbench bench compare BASELINE RESULT [--threshold 0.2]``: normalised figures benchmark
  by benchmark; exit 1 if one grew by more than the threshold, 2 for an unreadable file.
  RESULT may be a folder (its newest ``*.json``).
* ``meterbench bench history [--results DIR] [--out PNG] [-k TEXT]``: plot the saved results.
* ``meterbench bench readme RESULT [--readme PAGE]... [--check]``: write the performance
  tables generated from RESULT between the markers of README.md and of every docs/*.md page
  that has them, found from the current directory (or only the PAGEs given); ``--check``:
  exit 1 if one differs. Exit 2 for no page, a named page without a block, a bad marker or a
  marker no benchmark matches (the page and line named).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from simulator.cli import EXIT_CHECKS_FAILED, EXIT_OK, EXIT_USAGE

RESULTS = Path("benches/results")


def add_parser(sub) -> None:
    p = sub.add_parser("bench", help="run, save, compare and plot the benches")
    verbs = p.add_subparsers(dest="bench_verb", metavar="ACTION")
    r = verbs.add_parser("run", help="run the benches and save DIR/<commit>.json")
    r.add_argument("--results", type=Path, default=RESULTS, metavar="DIR")
    r.add_argument(
        "pytest_args", nargs=argparse.REMAINDER, metavar="PYTEST_ARG", help="passed to pytest"
    )
    r.set_defaults(func=_run)
    c = verbs.add_parser("compare", help="fail on a normalised regression over the threshold")
    c.add_argument("baseline", type=Path)
    c.add_argument("result", type=Path, help="result file, or a folder (newest file)")
    c.add_argument("--threshold", type=float, default=0.20, help="0.2 = 20 %% (default)")
    c.set_defaults(func=_compare)
    h = verbs.add_parser("history", help="plot the saved results over commits (PNG)")
    h.add_argument("--results", type=Path, default=RESULTS, metavar="DIR")
    h.add_argument("--out", type=Path, default=Path("bench-history.png"))
    h.add_argument("-k", dest="match", default="", help="only benchmarks whose name has TEXT")
    h.set_defaults(func=_history)
    m = verbs.add_parser("readme", help="write the README's and docs' performance tables")
    m.add_argument("result", type=Path)
    m.add_argument(
        "--readme",
        type=Path,
        action="append",
        metavar="PAGE",
        help="only this page (repeatable; default README.md and docs/*.md with bench markers)",
    )
    m.add_argument("--check", action="store_true", help="exit 1 if a page's table differs")
    m.set_defaults(func=_readme)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def commit_name() -> str:
    """``git rev-parse --short HEAD``, ``-dirty`` appended for uncommitted changes; "nogit"
    outside a repository."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "nogit"
    return sha + ("-dirty" if dirty else "")


def _run(args) -> int:
    args.results.mkdir(parents=True, exist_ok=True)
    out = args.results / f"{commit_name()}.json"
    cmd = [sys.executable, "-m", "pytest", "benches", "--benchmark-only"]
    extra = args.pytest_args[1:] if args.pytest_args[:1] == ["--"] else args.pytest_args
    cmd += [f"--benchmark-json={out}", *extra]
    rc = subprocess.call(cmd)
    print(f"meterbench bench run: {out}" if out.exists() else "meterbench bench run: no result")
    return rc


def _compare(args) -> int:
    from simulator.report.benchmarks import BenchFileError, compare, load, newest

    try:
        path = newest(args.result) if args.result.is_dir() else args.result
        cmp = compare(load(args.baseline), load(path), args.threshold)
    except (BenchFileError, FileNotFoundError, ValueError) as exc:
        print(f"meterbench bench compare: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(f"{args.baseline} -> {path} (normalised figures; threshold {args.threshold:.0%})")
    print("\n".join(cmp.lines()))
    bad = cmp.regressions
    if bad:
        print(f"{len(bad)} regression(s) over {args.threshold:.0%}", file=sys.stderr)
        return EXIT_CHECKS_FAILED
    return EXIT_OK


def _history(args) -> int:
    from simulator.report.bench_history import plot, results_in
    from simulator.report.benchmarks import BenchFileError

    try:
        out = plot(results_in(args.results), args.out, args.match)
    except (BenchFileError, FileNotFoundError, ValueError) as exc:
        print(f"meterbench bench history: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(f"meterbench bench history: {out}")
    return EXIT_OK


def _readme(args) -> int:
    from simulator.report.benchmarks import (
        BenchFileError,
        blocks,
        load,
        pages_with_tables,
        with_tables,
    )

    def fail(message: str) -> int:
        print(f"meterbench bench readme: {message}", file=sys.stderr)
        return EXIT_USAGE

    try:
        result = load(args.result)
        pages = list(dict.fromkeys(args.readme or pages_with_tables(Path("."))))
    except (BenchFileError, OSError) as exc:
        return fail(str(exc))
    if not pages:
        return fail("no README.md or docs/*.md with bench markers here (run it at the repo root)")
    texts, new = {}, {}
    for page in pages:
        try:
            texts[page] = page.read_text(encoding="utf-8")
            if not blocks(texts[page]):
                return fail(f"{page}: no <!-- bench:begin --> ... <!-- bench:end --> block")
            new[page] = with_tables(texts[page], result, args.result.as_posix())
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            return fail(f"{page}: {exc}")
    stale = [p for p in pages if new[p] != texts[p]]
    if args.check:
        for p in stale:
            print(f"{p}: the table differs from {args.result}", file=sys.stderr)
        return EXIT_CHECKS_FAILED if stale else EXIT_OK
    for p in stale:
        p.write_text(new[p], encoding="utf-8")
    names = ", ".join(str(p) for p in pages)
    print(f"meterbench bench readme: {names}: tables from {args.result} ({len(stale)} rewritten)")
    return EXIT_OK
