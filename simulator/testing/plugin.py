"""The meterbench pytest plugin (entry point ``pytest11: meterbench``).

Options: ``--rig PATH`` (or env ``MBENCH_RIG``; default ``rigs/sim.toml`` in the working
directory, else the copy shipped in the package; a **lab** rig must be named with ``--rig``:
from the env var or the default path it is a usage error), ``--mbench-record PATH`` (a JSON
test record), ``--mbench-evidence DIR`` (per-test evidence folders, :mod:`.evidence`; default
``evidence/`` next to the record, else ``results/evidence``; ``none`` = off),
``--operator terminal|auto`` and ``--operator-timeout S`` (:mod:`.operator`).
Markers: ``@pytest.mark.requires_feature("name", ...)`` skips a test, with the reason, when the
rig lacks a feature (:data:`simulator.rig.KNOWN_FEATURES`); ``@pytest.mark.lab_only`` needs a
lab rig named with ``--rig`` (usage error without ``--rig``, skip on a sim rig).

A :class:`~simulator.testing.bench.BenchError` raised in a test body (adapter gone, a receiver
that cannot bind, no operator answer) is a fault of the bench: the test is reported as ERROR
(``E``, "ERROR at call of ..."), its JUnit property ``mbench_bench_fault`` and its record entry
(``outcome: "error"``, ``bench_fault: true``) say so; a fixture raising it is an ERROR anyway.

Fixtures:

========== ========= =================================================================
name       scope     what
========== ========= =================================================================
rig        session   the validated :class:`~simulator.rig.Rig`
bench      session   the :class:`~simulator.testing.bench.Bench` (``bench.setup(meters)``)
dut        function  the device under test of the test's current setup
bus_trace  function  the trace of the test's current setup
measure    function  ``measure(name, value, unit, low=None, high=None, budget=None)``:
                     records a measurement with its limits (and the budget they came
                     from) and fails the test if it is outside them
operator   session   the :class:`~simulator.testing.operator.Operator` (``confirm(msg)``),
                     past pytest's capture; the bench's lab DUT asks through it
evidence   function  ``evidence.attach(name, data)``: a file for the test's evidence folder
========== ========= =================================================================

Measurements land in the JUnit XML as properties (``record_property``, name
``measurement:<name>``, value a JSON object) and, with ``--mbench-record``, in a JSON record
together with the run facts (rig, adapter, DUT model/serial/firmware, meterbench version:
:mod:`.run_facts`), the git commit and each test's evidence folder.

Cost for projects that never use these fixtures: none beyond option parsing; the rig is only
loaded when a fixture or the ``requires_feature`` marker needs it.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pytest

from simulator.testing.errors import BenchError
from simulator.testing.evidence import write_folder
from simulator.testing.operator import DEFAULT_TIMEOUT_S, Operator

_RIG_KEY = pytest.StashKey["Any"]()
_RECORD_KEY = pytest.StashKey["TestRecord"]()


@dataclass
class Measurement:
    """One measured value with its unit and limits (``None`` = no limit); ``passed``.

    ``budget``: how the limits were derived (for timing checks the nominal setting, the
    tolerance and the adapter latency applied, :meth:`simulator.testing.budgets.Budget.to_json`).
    """

    name: str
    value: float
    unit: str
    low: float | None = None
    high: float | None = None
    budget: dict[str, Any] | None = None
    samples: list[float] | None = None  # every value the test saw (the report's histograms)

    @property
    def passed(self) -> bool:
        if isinstance(self.value, float) and math.isnan(self.value):
            return False
        return (self.low is None or self.value >= self.low) and (
            self.high is None or self.value <= self.high
        )

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        if d["samples"] is None:
            del d["samples"]
        d["passed"] = self.passed
        return d


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("meterbench", "meterbench test bench")
    group.addoption(
        "--rig",
        default=None,
        metavar="PATH",
        help="rig file (default: $MBENCH_RIG, else rigs/sim.toml, else the packaged simulated rig)",
    )
    group.addoption(
        "--mbench-record",
        default=None,
        metavar="PATH",
        help="write a JSON test record (rig, device, git commit, measurements)",
    )
    group.addoption(
        "--mbench-evidence",
        default=None,
        metavar="DIR",
        help="per-test evidence folders (default: evidence/ next to --mbench-record, else "
        "results/evidence; 'none' = off)",
    )
    group.addoption(
        "--operator",
        default="terminal",
        choices=("terminal", "auto"),
        help="operator prompts: ask on the terminal (default) or log and confirm at once "
        "(auto: an unattended rig that confirms by hardware)",
    )
    group.addoption(
        "--quick",
        action="store_true",
        help=f"lab rigs: a pass of {QUICK_LAB_MINUTES} min of real time, and only the tests "
        f"marked lab_minutes(m) with m <= {QUICK_LAB_MINUTES} (the rest are deselected)",
    )
    group.addoption(
        "--operator-timeout",
        type=float,
        default=DEFAULT_TIMEOUT_S,
        metavar="S",
        help=f"seconds to wait for an operator's answer (default {DEFAULT_TIMEOUT_S:g})",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "requires_feature(name, ...): skip unless the meterbench rig has every named feature",
    )
    config.addinivalue_line("markers", "cme3100: the CMe3100 push suite (docs/cme3100-suite.md)")
    config.addinivalue_line(
        "markers", "lab_only: needs a lab rig named with --rig (skipped on a sim rig)"
    )
    config.addinivalue_line(
        "markers",
        "lab_minutes(m): the real minutes the test needs on a lab rig (--quick keeps those "
        f"with m <= {QUICK_LAB_MINUTES})",
    )
    path = config.getoption("--mbench-record", default=None)
    if path:
        config.stash[_RECORD_KEY] = TestRecord(Path(path), config)


#: The real duration of a ``--quick`` lab pass (min); with setup it stays within 30 min.
QUICK_LAB_MINUTES = 25


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``--quick``: deselect the tests whose ``lab_minutes`` exceed the quick pass."""
    if not config.getoption("--quick", default=False):
        return
    keep, drop = [], []
    for item in items:
        mark = item.get_closest_marker("lab_minutes")
        (drop if mark is not None and mark.args[0] > QUICK_LAB_MINUTES else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def quick_lab_hours(config: pytest.Config) -> float | None:
    """The lab pass length (h) ``--quick`` asks for, None without it."""
    return QUICK_LAB_MINUTES / 60 if config.getoption("--quick", default=False) else None


def rig_path(config: pytest.Config) -> Path:
    """The rig file this session uses (option, env var, cwd, packaged copy)."""
    return rig_source(config)[0]


def rig_source(config: pytest.Config) -> tuple[Path, str]:
    """The rig file and where its name came from: ``"--rig"``, ``"$MBENCH_RIG"`` or
    ``"default"``."""
    from simulator.rig import default_rig_path

    if opt := config.getoption("--rig", default=None):
        return Path(opt), "--rig"
    if env := os.environ.get("MBENCH_RIG"):
        return Path(env), "$MBENCH_RIG"
    return default_rig_path(config.invocation_params.dir), "default"


def pytest_report_header(config: pytest.Config) -> str:
    """Which rig the session uses and why (without loading it: the plugin stays inert)."""
    path, source = rig_source(config)
    hint = "" if source == "--rig" else "; name a lab rig with --rig"
    return f"meterbench rig: {path} ({source}{hint})"


def load_session_rig(config: pytest.Config):
    """The session's rig, loaded once.

    A bad rig file ends the session at the first test that needs it, with one message listing
    every problem (file:line, key) and exit code 4 (usage error): reporting the same file once
    per test would bury it.
    """
    if _RIG_KEY not in config.stash:
        from simulator.rig import load_rig
        from simulator.scenario import ScenarioError

        path, source = rig_source(config)
        try:
            rig = load_rig(path)
        except ScenarioError as exc:
            pytest.exit(f"meterbench rig: {exc}", returncode=pytest.ExitCode.USAGE_ERROR)
        if rig.mode == "lab" and source != "--rig":
            # a lab run drives real hardware and an operator: never by accident
            pytest.exit(
                f"meterbench rig: {path} (from {source}) is lab rig {rig.name!r}; a lab rig "
                f"runs only when named explicitly: --rig {path}",
                returncode=pytest.ExitCode.USAGE_ERROR,
            )
        config.stash[_RIG_KEY] = rig
    return config.stash[_RIG_KEY]


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("lab_only") is not None:
        path, source = rig_source(item.config)
        if source != "--rig":
            pytest.exit(
                f"{item.nodeid} is lab-only: name the lab rig with --rig PATH "
                f"(this session would use {path}, from {source})",
                returncode=pytest.ExitCode.USAGE_ERROR,
            )
        if load_session_rig(item.config).mode != "lab":
            pytest.skip(
                f"lab-only test; rig {load_session_rig(item.config).name!r} is not a lab rig"
            )
    marks = list(item.iter_markers("requires_feature"))
    if not marks:
        return
    from simulator.rig import KNOWN_FEATURES

    rig = load_session_rig(item.config)
    for mark in marks:
        for name in mark.args:
            if name not in KNOWN_FEATURES:
                raise pytest.UsageError(f"{item.nodeid}: unknown feature {name!r}")
            if not rig.has(name):
                pytest.skip(f"rig {rig.name!r} lacks feature {name!r} ({KNOWN_FEATURES[name]})")


# -- fixtures ---------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def rig(pytestconfig: pytest.Config):
    """The validated rig of this session."""
    return load_session_rig(pytestconfig)


@pytest.fixture(scope="session")
def operator(pytestconfig: pytest.Config) -> Operator:
    """The person at the bench (``--operator``, ``--operator-timeout``); prompts get past
    pytest's capture (module :mod:`simulator.testing.operator`)."""
    return Operator(
        mode=pytestconfig.getoption("--operator"),
        timeout_s=pytestconfig.getoption("--operator-timeout"),
        capture=pytestconfig.pluginmanager.getplugin("capturemanager"),
    )


@pytest.fixture(scope="session")
def bench(rig, operator):
    """The session's bench; ``bench.setup(meters)`` gives each test a fresh run."""
    from simulator.testing.bench import Bench

    b = Bench(rig, operator=operator)
    yield b
    b.teardown()


class Evidence:
    """Files a test adds to its evidence folder: ``attach(name, data)`` (``str``, ``bytes``, a
    :class:`Path` to copy, or a JSON-able object)."""

    def __init__(self) -> None:
        self.files: dict[str, Any] = {}

    def attach(self, name: str, data: Any) -> None:
        self.files[name] = data


_EVIDENCE = pytest.StashKey[Evidence]()


@pytest.fixture
def evidence(request: pytest.FixtureRequest) -> Evidence:
    """This test's :class:`Evidence` (written to its folder with the trace and the verdict)."""
    ev = Evidence()
    request.node.stash[_EVIDENCE] = ev
    return ev


class _Current:
    """Forwards attribute access to the bench's current run (set up inside the test body)."""

    def __init__(self, bench: Any, attr: str) -> None:
        self._bench = bench
        self._attr = attr

    def __getattr__(self, name: str) -> Any:
        run = self._bench.current
        if run is None:
            raise RuntimeError("call bench.setup(meters) before using the dut / bus_trace")
        return getattr(getattr(run, self._attr), name)

    def __iter__(self):
        run = self._bench.current
        if run is None:
            raise RuntimeError("call bench.setup(meters) before using the bus_trace")
        return iter(getattr(run, self._attr))


@pytest.fixture
def dut(bench):
    """The device under test of the current setup (simulated master or physical gateway)."""
    return _Current(bench, "dut")


@pytest.fixture
def bus_trace(bench):
    """The trace of the current setup."""
    return _Current(bench, "trace")


@pytest.fixture
def measure(request: pytest.FixtureRequest, record_property):
    """``measure(name, value, unit, low=None, high=None, *, budget=None, samples=None)
    -> Measurement``; fails if outside. ``budget``: a JSON-able dict (or an object with
    ``to_json()``) saying how the limits were derived; ``samples``: every value behind
    ``value`` (e.g. all gaps of which ``value`` is the shortest); both recorded with it."""
    taken: list[Measurement] = []
    request.node.stash[_MEASUREMENTS] = taken

    def _measure(
        name: str,
        value: float,
        unit: str,
        low: float | None = None,
        high: float | None = None,
        *,
        check: bool = True,
        budget: Any = None,
        samples: list[float] | None = None,
    ) -> Measurement:
        if budget is not None and hasattr(budget, "to_json"):
            budget = budget.to_json()
        m = Measurement(name, float(value), unit, low, high, budget, samples)
        taken.append(m)
        record_property(f"measurement:{name}", json.dumps(m.to_json(), sort_keys=True))
        if check and not m.passed:
            raise AssertionError(
                f"{name} = {m.value:.6g} {unit} outside [{_fmt(low, '-inf')}, {_fmt(high, '+inf')}] {unit}"
            )
        return m

    return _measure


_MEASUREMENTS = pytest.StashKey[list]()


def _fmt(x: float | None, unbounded: str) -> str:
    return unbounded if x is None else f"{x:.6g}"


# -- the JSON test record ---------------------------------------------------------------------
class TestRecord:
    """Collects per-test outcomes and measurements; written at the end of the session."""

    __test__ = False  # not a test class, whatever pytest's name rules say

    def __init__(self, path: Path, config: pytest.Config) -> None:
        self.path = path
        self.config = config
        self.tests: dict[str, dict[str, Any]] = {}
        self.started = time.time()

    def add(self, item: pytest.Item, report: pytest.TestReport) -> None:
        entry = self.tests.setdefault(
            item.nodeid,
            {"nodeid": item.nodeid, "outcome": "passed", "duration_s": 0.0, "measurements": []},
        )
        entry["duration_s"] = round(entry["duration_s"] + report.duration, 6)
        if report.failed:
            fault = getattr(report, "mbench_bench_fault", False)
            entry["outcome"] = "failed" if report.when == "call" and not fault else "error"
            if fault:
                entry["bench_fault"] = True
            entry["message"] = str(report.longrepr)[-2000:]
        elif report.skipped and entry["outcome"] == "passed":
            entry["outcome"] = "skipped"
            lr = report.longrepr
            entry["message"] = lr[2] if isinstance(lr, tuple) else str(lr)
        if report.when == "call" or (report.when == "setup" and report.skipped):
            entry["measurements"] = [m.to_json() for m in item.stash.get(_MEASUREMENTS, [])]
        folder = item.stash.get(_FOLDER, None)
        if folder is not None:
            try:
                entry["evidence"] = str(folder.relative_to(self.path.resolve().parent))
            except ValueError:
                entry["evidence"] = str(folder)

    def write(self) -> None:
        from simulator import __version__
        from simulator.testing.run_facts import run_facts

        path, source = rig_source(self.config)
        rig_info: dict[str, Any] = {"path": str(path), "chosen_by": source}
        device: dict[str, Any] = {}
        run: dict[str, Any] = {"meterbench_version": __version__}
        try:
            rig = load_session_rig(self.config)
            rig_info.update(name=rig.name, mode=rig.mode, features=rig.features)
            run = run_facts(rig)
            device = {**run["dut"], "mbus": rig.dut.mbus.model_dump()}
        except pytest.UsageError as exc:
            rig_info["error"] = str(exc)
        doc = {
            "run": run,
            "meterbench_version": __version__,
            "rig": rig_info,
            "device": device,
            "git_commit": git_commit(Path(str(self.config.rootpath))),
            "started": round(self.started, 3),
            "finished": round(time.time(), 3),
            "tests": list(self.tests.values()),
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def git_commit(where: Path) -> str | None:
    """``git rev-parse HEAD`` of the checkout at ``where`` (None outside a git checkout)."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=where,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


# -- bench faults and evidence ----------------------------------------------------------------
_FOLDER = pytest.StashKey[Path]()
_PHASES = pytest.StashKey[list]()
_MARK = pytest.StashKey[tuple]()  # (bench runs, operator prompts) when the test started
_RUN = pytest.StashKey[Any]()


def evidence_root(config: pytest.Config) -> Path | None:
    """Where per-test evidence folders go (``None``: ``--mbench-evidence none``)."""
    opt = config.getoption("--mbench-evidence", default=None)
    if opt == "none":
        return None
    if opt:
        return Path(opt).resolve()
    record = config.getoption("--mbench-record", default=None)
    if record:
        return Path(record).resolve().parent / "evidence"
    return Path(config.invocation_params.dir) / "results" / "evidence"


def _bench_of(item: pytest.Item):
    from simulator.testing.bench import Bench

    b = (getattr(item, "funcargs", None) or {}).get("bench")
    return b if isinstance(b, Bench) else None


def _operator_of(item: pytest.Item) -> Operator | None:
    funcargs = getattr(item, "funcargs", None) or {}
    op = funcargs.get("operator")
    if op is None and _bench_of(item) is not None:
        op = _bench_of(item).operator
    return op if isinstance(op, Operator) else None


def _verdict(item: pytest.Item) -> dict[str, Any]:
    outcome, message, duration = "passed", "", 0.0
    for rep in item.stash.get(_PHASES, []):
        duration += rep.duration
        if rep.failed:
            if getattr(rep, "mbench_bench_fault", False):
                outcome = "error (bench fault)"
            elif outcome == "passed" or rep.when == "call":
                outcome = "failed" if rep.when == "call" else "error"
            message = str(rep.longrepr)
        elif rep.skipped and outcome == "passed":
            outcome = "skipped"
            message = rep.longrepr[2] if isinstance(rep.longrepr, tuple) else str(rep.longrepr)
    ms = [m.to_json() for m in item.stash.get(_MEASUREMENTS, [])]
    return {"outcome": outcome, "message": message, "duration_s": duration, "measurements": ms}


def _keep_evidence(item: pytest.Item, report: pytest.TestReport) -> None:
    """Snapshot the test's bench run after the call; write its folder after teardown."""
    bench = _bench_of(item)
    op = _operator_of(item)
    if report.when == "setup":
        item.stash[_MARK] = (bench._runs if bench else 0, len(op.log) if op else 0)
    elif report.when == "call" and bench is not None and bench.current is not None:
        if bench._runs > item.stash.get(_MARK, (0, 0))[0]:
            item.stash[_RUN] = bench.current  # the session teardown may close it later
    elif report.when == "teardown":
        attached = item.stash.get(_EVIDENCE, None)
        root = evidence_root(item.config)
        if root is None or (bench is None and attached is None):
            return
        run = item.stash.get(_RUN, None)
        item.stash[_FOLDER] = write_folder(
            root,
            item.nodeid,
            verdict=_verdict(item),
            trace=run.trace if run is not None else None,
            attachments=attached.files if attached else None,
            prompts=op.log[item.stash.get(_MARK, (0, 0))[1] :] if op else (),
        )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report = outcome.get_result()
    if report.failed and call.excinfo is not None and call.excinfo.errisinstance(BenchError):
        # the bench, not the device under test, failed: report an ERROR (pytest_report_teststatus)
        report.mbench_bench_fault = True
        item.user_properties.append(("mbench_bench_fault", call.excinfo.exconly()[-500:]))
    item.stash.setdefault(_PHASES, []).append(report)
    _keep_evidence(item, report)
    record = item.config.stash.get(_RECORD_KEY, None)
    if record is not None:
        record.add(item, report)


def pytest_report_teststatus(report: pytest.TestReport, config: pytest.Config):
    """A bench fault in a test body shows as ERROR (``E``), like one in a fixture."""
    if report.when == "call" and report.failed and getattr(report, "mbench_bench_fault", False):
        return "error", "E", "ERROR"
    return None


def pytest_sessionfinish(session: pytest.Session) -> None:
    record = session.config.stash.get(_RECORD_KEY, None)
    if record is not None:
        record.write()
