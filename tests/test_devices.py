"""The device registry and the run skeleton: every kind runs through them, summary.json of
every kind validates against the one shipped schema, and a new kind is one module."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import jsonschema
import pydantic
import pytest

from simulator.devices import registry, run_scenario
from simulator.devices.summary import COMMON_KEYS, schema, schema_text
from simulator.scenario import DEFAULT_SCENARIO, RunOptions, ScenarioError, load_toml

ROOT = Path(__file__).resolve().parents[1]
SCEN = ROOT / "fixtures" / "scenarios"
SCHEMA_FILE = ROOT / "docs" / "summary.schema.json"

#: One short run per kind (hours cut down so the whole file runs in seconds).
SHORT_RUNS = {
    "mbus": (SCEN / "mbus-small.toml", 2.0),
    "stream": (SCEN / "stream-small.toml", 0.25),
    "nbiot": (SCEN / "nbiot-fleet.toml", 1.0),
    "cme2100": (SCEN / "cme2100-small.toml", 2.0),
    "cme3100": (SCEN / "cme3100-building.toml", 3.0),
}


def test_every_shipped_scenario_names_a_registered_kind():
    files = [*SCEN.glob("*.toml"), DEFAULT_SCENARIO]
    kinds = {load_toml(f).kind for f in files}
    assert kinds <= set(registry.names())
    assert set(SHORT_RUNS) == set(registry.names()), "add a short run for the new kind"


def test_shipped_summary_schema_is_current():
    assert SCHEMA_FILE.read_text() == schema_text(), (
        "docs/summary.schema.json is stale: regenerate it with python3 -c "
        "'from simulator.devices.summary import schema_text; print(schema_text(), end=\"\")' "
        "> docs/summary.schema.json"
    )


@pytest.fixture(scope="module")
def summaries(tmp_path_factory) -> dict[str, dict]:
    out = {}
    for kind, (path, hours) in SHORT_RUNS.items():
        res = run_scenario(path, RunOptions(tmp_path_factory.mktemp(kind), hours=hours))
        written = json.loads((res.files[-1]).read_text())
        assert res.files[-1].name == "summary.json" and written == res.summary
        out[kind] = written
    return out


@pytest.mark.parametrize("kind", sorted(SHORT_RUNS))
def test_summary_of_every_kind_validates_against_the_one_schema(summaries, kind):
    summary = summaries[kind]
    jsonschema.validate(summary, json.loads(SCHEMA_FILE.read_text()))
    assert list(summary)[: len(COMMON_KEYS)] == list(COMMON_KEYS)  # common keys first
    assert summary["kind"] == kind and summary["schema_version"] == 1
    path, hours = SHORT_RUNS[kind]
    assert summary["sim_seconds"] == hours * 3600 and summary["scenario_path"] == str(path)


def test_the_schema_rejects_a_summary_that_drifts(summaries):
    validator = jsonschema.Draft202012Validator(schema())
    mbus = dict(summaries["mbus"])
    assert validator.is_valid(mbus)
    assert not validator.is_valid({**mbus, "readouts_okay": 1})  # a typo'd figure
    assert not validator.is_valid({k: v for k, v in mbus.items() if k != "seed"})
    assert not validator.is_valid({**mbus, "kind": "nbiot"})  # another kind's figures


def test_a_bad_kind_is_one_error_with_its_line(tmp_path):
    f = tmp_path / "x.toml"
    f.write_text('seed = 1\nkind = "cme9000"\n')
    with pytest.raises(ScenarioError) as info:
        run_scenario(f, RunOptions(tmp_path / "out"))
    (issue,) = info.value.issues
    assert issue.line == 2 and "cme9000" in issue.message and "mbus" in issue.message
    assert not (tmp_path / "out").exists()  # nothing built or written


TOY_KIND = '''
"""A toy device kind: a counter that ticks once per simulated minute."""
import pydantic
from simulator.core.events import TraceEvent, event
from simulator.devices.registry import DeviceKind, Outcome
from simulator.scenario import StrictModel


class ToyScenario(StrictModel):
    kind: str
    seed: int = 0
    hours: float = pydantic.Field(1.0, gt=0)
    step_s: float = pydantic.Field(60.0, gt=0)


@event
class Tick(TraceEvent):
    """A kind adds its own event types where it defines its world."""

    kind = "toy_tick"
    n: int


class ToySummary(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    ticks: int


class ToyRun:
    def __init__(self, ctx):
        self.ctx, self.ticks = ctx, 0
        ctx.world.process(self._tick())

    def _tick(self):
        while True:
            yield self.ctx.world.timeout(self.ctx.scenario.step_s)
            self.ticks += 1
            self.ctx.world.emit(Tick(source="toy", n=self.ticks))

    def advance(self, until, last):
        self.ctx.world.run(until=until)

    def status(self):
        return f"{self.ticks} ticks"

    def finish(self):
        return Outcome({"ticks": self.ticks}, [("ticks", str(self.ticks))])

    def plots(self, out):
        return []


DEVICE = DeviceKind(name="toy", title="a toy", scenario=ToyScenario, build=ToyRun,
                    summary=ToySummary)
'''


@pytest.fixture
def toy_kind(tmp_path, monkeypatch):
    pkg = tmp_path / "toykind"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(textwrap.dedent(TOY_KIND))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(registry.BUILTIN, "toy", "toykind")  # the one line a new kind adds
    yield
    from simulator.core.events import EVENT_TYPES

    registry._loaded.pop("toy", None)
    sys.modules.pop("toykind", None)
    EVENT_TYPES.pop("toy_tick", None)


def test_a_new_kind_is_one_module_and_one_registry_line(toy_kind, tmp_path):
    f = tmp_path / "toy.toml"
    f.write_text('kind = "toy"\nseed = 3\nhours = 2\nstep_s = 600\n')
    res = run_scenario(f, RunOptions(tmp_path / "out"))
    assert res.summary["ticks"] == 11  # 600 s steps in 2 h, the end instant excluded
    assert res.summary["trace_events"] == 11 and res.summary["seed"] == 3
    lines = (tmp_path / "out" / "trace.jsonl").read_text().splitlines()
    assert len(lines) == 12 and '"kind":"trace_header"' in lines[0]  # header + 11 ticks
    assert json.loads(lines[-1]) == {
        "kind": "toy_tick",
        "n": 11,
        "source": "toy",
        "t": 7200.0 - 600,
    }
    jsonschema.validate(res.summary, schema())  # the schema grows a branch for it


def test_a_kind_whose_figures_drift_from_its_model_fails_before_writing(toy_kind, tmp_path):
    import toykind

    toykind.ToyRun.finish = lambda self: toykind.Outcome({"ticks": 1, "tocks": 2})
    f = tmp_path / "toy.toml"
    f.write_text('kind = "toy"\n')
    with pytest.raises(pydantic.ValidationError, match="tocks"):
        run_scenario(f, RunOptions(tmp_path / "out"))
    assert not (tmp_path / "out" / "summary.json").exists()


def test_same_seed_same_trace_through_the_skeleton(tmp_path):
    a = run_scenario(SCEN / "mbus-small.toml", RunOptions(tmp_path / "a", hours=1))
    b = run_scenario(SCEN / "mbus-small.toml", RunOptions(tmp_path / "b", hours=1))
    ta, tb = (tmp_path / d / "trace.jsonl" for d in "ab")
    assert ta.read_bytes() == tb.read_bytes() and a.summary["seed"] == b.summary["seed"]


def test_the_sim_rig_finds_its_device_under_test_through_the_registry(tmp_path):
    from simulator.mbus.sim_dut import SimDut
    from simulator.rig import load_rig
    from simulator.testing.bench import Bench

    rig = load_rig(ROOT / "rigs" / "sim.toml")
    assert rig.dut.kind == "mbus" and registry.get("mbus").sim_dut is SimDut
    bench = Bench(rig)
    try:
        assert isinstance(bench.setup([]).dut, SimDut)
    finally:
        bench.teardown()
    for kind, why in (("cme9000", "unknown device kind"), ("nbiot", "no simulated device")):
        f = tmp_path / f"{kind}.toml"
        f.write_text(f'name = "x"\nmode = "sim"\n\n[dut]\nkind = "{kind}"\n')
        with pytest.raises(ScenarioError) as info:
            load_rig(f)
        (issue,) = info.value.issues
        assert issue.key == "dut.kind" and issue.line == 5 and why in issue.message
