"""The meterbench pytest plugin (entry point ``pytest11: meterbench``).

Options: ``--rig PATH`` (or env ``MBENCH_RIG``; default ``rigs/sim.toml`` in the working
directory, else the copy shipped in the package) and ``--mbench-record PATH`` (a JSON test
record). Marker: ``@pytest.mark.requires_feature("name", ...)`` skips a test, with the reason,
when the rig lacks a feature (:data:`simulator.rig.KNOWN_FEATURES`).

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
========== ========= =================================================================

Measurements land in the JUnit XML as properties (``record_property``, name
``measurement:<name>``, value a JSON object) and, with ``--mbench-record``, in a JSON record
together with the rig, the device under test and the git commit.

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


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "requires_feature(name, ...): skip unless the meterbench rig has every named feature",
    )
    config.addinivalue_line("markers", "cme3100: the CMe3100 push suite (docs/cme3100-suite.md)")
    path = config.getoption("--mbench-record", default=None)
    if path:
        config.stash[_RECORD_KEY] = TestRecord(Path(path), config)


def rig_path(config: pytest.Config) -> Path:
    """The rig file this session uses (option, env var, cwd, packaged copy)."""
    from simulator.rig import default_rig_path

    opt = config.getoption("--rig", default=None) or os.environ.get("MBENCH_RIG")
    return Path(opt) if opt else default_rig_path(config.invocation_params.dir)


def load_session_rig(config: pytest.Config):
    """The session's rig, loaded once.

    A bad rig file ends the session at the first test that needs it, with one message listing
    every problem (file:line, key) and exit code 4 (usage error): reporting the same file once
    per test would bury it.
    """
    if _RIG_KEY not in config.stash:
        from simulator.rig import load_rig
        from simulator.scenario import ScenarioError

        try:
            config.stash[_RIG_KEY] = load_rig(rig_path(config))
        except ScenarioError as exc:
            pytest.exit(f"meterbench rig: {exc}", returncode=pytest.ExitCode.USAGE_ERROR)
    return config.stash[_RIG_KEY]


def pytest_runtest_setup(item: pytest.Item) -> None:
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
def bench(rig):
    """The session's bench; ``bench.setup(meters)`` gives each test a fresh run."""
    from simulator.testing.bench import Bench

    b = Bench(rig)
    yield b
    b.teardown()


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
            entry["outcome"] = "failed" if report.when == "call" else "error"
            entry["message"] = str(report.longrepr)[-2000:]
        elif report.skipped and entry["outcome"] == "passed":
            entry["outcome"] = "skipped"
            lr = report.longrepr
            entry["message"] = lr[2] if isinstance(lr, tuple) else str(lr)
        if report.when == "call" or (report.when == "setup" and report.skipped):
            entry["measurements"] = [m.to_json() for m in item.stash.get(_MEASUREMENTS, [])]

    def write(self) -> None:
        rig_info: dict[str, Any] = {"path": str(rig_path(self.config))}
        device: dict[str, Any] = {}
        try:
            rig = load_session_rig(self.config)
            rig_info.update(name=rig.name, mode=rig.mode, features=rig.features)
            device = {
                "model": rig.dut.model,
                "firmware": rig.dut.firmware,
                "serial": rig.dut.serial,
                "mbus": rig.dut.mbus.model_dump(),
            }
        except pytest.UsageError as exc:
            rig_info["error"] = str(exc)
        doc = {
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


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    record = item.config.stash.get(_RECORD_KEY, None)
    if record is not None:
        record.add(item, outcome.get_result())


def pytest_sessionfinish(session: pytest.Session) -> None:
    record = session.config.stash.get(_RECORD_KEY, None)
    if record is not None:
        record.write()
