"""``meterbench suite [--rig RIG] [-k EXPR] [--out DIR]``: run the conformance suite on a rig.

Runs the packaged suite (:mod:`simulator.testing.suites.test_mbus_master`) with pytest and the
meterbench plugin, and writes DIR/junit.xml (measurements as properties), DIR/record.json
(rig, device, git commit, outcomes, measurements) and DIR/report.html. Exit status
(:mod:`simulator.cli` convention, from pytest's and the record): 0 every test passed or was
skipped for a missing feature, 1 a test failed, 2 usage error (bad rig file, ``-k`` selecting
nothing, ``--out`` naming a file), 3 bench fault (a test stopped by a
:class:`~simulator.testing.bench.BenchError` such as a missing adapter, or pytest's internal
error), 130 interrupted.
"""

from __future__ import annotations

import os
import sys
from importlib.metadata import entry_points
from pathlib import Path

from simulator.cli import (
    EXIT_BENCH_FAULT,
    EXIT_CHECKS_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    out_dir,
)

SUITES = Path(__file__).resolve().parent.parent / "testing" / "suites"


def add_parser(sub) -> None:
    p = sub.add_parser("suite", help="run the M-Bus master conformance suite on a rig")
    p.add_argument(
        "--rig",
        type=Path,
        default=None,
        help="rig file (default: $MBENCH_RIG, else rigs/sim.toml, else the packaged simulated rig)",
    )
    p.add_argument(
        "-k",
        dest="keyword",
        default=None,
        metavar="EXPR",
        help="only tests matching this pytest -k expression",
    )
    p.add_argument(
        "--out",
        type=out_dir,
        default=Path("meterbench-results") / "suite",
        help="folder for junit.xml, record.json and report.html",
    )
    p.add_argument("-x", "--exitfirst", action="store_true", help="stop at the first failure")
    p.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    p.set_defaults(func=main)


def pytest_args(
    rig: Path | None,
    keyword: str | None,
    out: Path,
    *,
    exitfirst: bool = False,
    extra: list[str] | None = None,
) -> list[str]:
    """The pytest command line the verb runs (also used by tests)."""
    args = [
        str(SUITES / "test_mbus_master.py"),
        "-q",
        "-p",
        "no:cacheprovider",
        "-o",
        "junit_family=xunit1",  # record_property needs xunit1 properties
        # meterbench is already imported when pytest starts, so pytest cannot rewrite its
        # asserts; the warning about that is noise for a suite user
        "-W",
        "ignore::pytest.PytestAssertRewriteWarning",
        f"--junitxml={out / 'junit.xml'}",
        f"--mbench-record={out / 'record.json'}",
    ]
    if not any(ep.name == "meterbench" for ep in entry_points(group="pytest11")):
        args[1:1] = ["-p", "simulator.testing.plugin"]  # not installed as an entry point
    if rig is not None:
        args.append(f"--rig={rig}")
    if keyword:
        args += ["-k", keyword]
    if exitfirst:
        args.append("-x")
    return args + list(extra or [])


def main(args) -> int:
    import pytest

    from simulator.rig import default_rig_path, load_rig
    from simulator.scenario import ScenarioError
    from simulator.testing.html_report import write_report

    env = os.environ.get("MBENCH_RIG")
    path, source = (
        (args.rig, "--rig")
        if args.rig is not None
        else (Path(env), "$MBENCH_RIG")
        if env
        else (default_rig_path(), "default")
    )
    # a bad rig file is one clear error here, not a UsageError traceback per suite test
    try:
        rig = load_rig(path)
    except ScenarioError as exc:
        print(f"meterbench suite: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if rig.mode == "lab" and source != "--rig":
        print(
            f"meterbench suite: {path} (from {source}) is lab rig {rig.name!r}; a lab rig runs "
            f"only when named explicitly: --rig {path}",
            file=sys.stderr,
        )
        return EXIT_USAGE
    hint = "" if source == "--rig" else "; name a lab rig with --rig"
    print(f"meterbench suite: rig {rig.name} (mode {rig.mode}) from {path} ({source}{hint})")
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    code = int(
        pytest.main(
            pytest_args(
                args.rig, args.keyword, out, exitfirst=args.exitfirst, extra=args.pytest_args
            )
        )
    )
    record = out / "record.json"
    if record.is_file():
        html = write_report(record, out / "report.html")
        print(f"wrote: {out / 'junit.xml'}, {record}, {html}")
    else:
        print("meterbench suite: no test record was written (usage error?)", file=sys.stderr)
    return exit_status(code, record)


# pytest.ExitCode -> the meterbench convention (TESTS_FAILED is refined by the record)
_PYTEST_EXIT = {0: EXIT_OK, 1: EXIT_CHECKS_FAILED, 2: EXIT_INTERRUPTED, 3: EXIT_BENCH_FAULT}
BENCH_FAULTS = ("BenchError", "BenchFault", "ReceiverUnavailable")


def exit_status(pytest_code: int, record: Path) -> int:
    """The verb's exit status for pytest's ``pytest_code`` and the JSON ``record`` it wrote.

    A test stopped by a bench fault (its message names one of :data:`BENCH_FAULTS`) makes the
    run a bench fault (3) rather than a failure of the device under test (1).
    """
    if pytest_code == 1 and record.is_file():
        import json

        tests = json.loads(record.read_text(encoding="utf-8")).get("tests", [])
        bad = [t for t in tests if t["outcome"] in ("failed", "error")]
        if any(any(n in (t.get("message") or "") for n in BENCH_FAULTS) for t in bad):
            return EXIT_BENCH_FAULT
    return _PYTEST_EXIT.get(pytest_code, EXIT_USAGE)  # 4 usage error, 5 no tests collected
