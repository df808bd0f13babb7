"""The sweep file: a base scenario, the parameters to vary, the seeds, the figures to collect.

Example (fixtures/sweeps/stream-receivers.toml; paths are relative to the sweep file)::

    name = "stream-receivers"
    scenario = "../scenarios/stream-city.toml"
    seeds = 3                      # seeds 1..3 (or a list: seeds = [7, 8, 9])
    combine = "grid"               # "grid": every combination; "zip": the i-th values together
    sample_seed = 0                # seeds the draws of `random` parameters

    [set]                          # the same for every point
    "meters.count" = 4000
    "report.plots" = false

    [vary."receivers.grid"]        # a dotted path into the scenario TOML
    values = [[1, 1], [2, 2], [3, 3]]
    plot_as = [1, 4, 9]            # where each value sits on a plot's x axis
    label = "receivers"
    unit = "count"
    # or: range = { start = 0, stop = 12, step = 3 }       (stop included)
    # or: linspace = { start = 10, stop = 20, num = 5 }
    # or: random = { low = 10, high = 20, samples = 4, log = false, integer = false }

    [[figures]]                    # a dotted path into summary.json
    key = "resolutions.1 d.mean_ratio"
    label = "reception ratio (1 d)"
    unit = "1"

A dotted path uses TOML's key syntax: a part holding a dot is quoted
(``'plugin.properties."filter.manufacturer"'``) and an integer part indexes an array
(``gateway.reports.0.schedule``). :func:`load_sweep` validates the file, the base scenario and
every point's scenario (the kind's own validation), and raises one
:class:`~simulator.scenario.ScenarioError` listing every problem with file:line; a problem
in a point's scenario is reported at the sweep line that made it.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pydantic
from pydantic import Field, field_validator, model_validator

from simulator.devices import registry
from simulator.devices.summary import CommonSummary
from simulator.scenario import (
    Issue,
    ScenarioDoc,
    ScenarioError,
    StrictModel,
    _split_key,
    is_file,
    load_toml,
)
from simulator.study.paths import set_path, split_path

#: The most runs (points x seeds) one sweep may hold: a bound on what validation expands.
MAX_RUNS = 100_000


class RangeModel(StrictModel):
    start: float
    stop: float
    step: float = Field(gt=0)

    @model_validator(mode="after")
    def _ordered(self):
        if self.stop < self.start:
            raise ValueError(f"stop {self.stop} is below start {self.start}")
        return self


class LinspaceModel(StrictModel):
    start: float
    stop: float
    num: int = Field(ge=2, le=10_000)


class RandomModel(StrictModel):
    low: float
    high: float
    samples: int = Field(ge=1, le=10_000)
    log: bool = False  # uniform in log(value): low must be > 0
    integer: bool = False  # rounded to whole numbers

    @model_validator(mode="after")
    def _ordered(self):
        if not self.low < self.high:
            raise ValueError(f"low {self.low} must be below high {self.high}")
        if self.log and self.low <= 0:
            raise ValueError("log needs low > 0")
        return self


class ParameterModel(StrictModel):
    """One varied parameter: exactly one of ``values``, ``range``, ``linspace``, ``random``."""

    values: list[Any] | None = Field(None, min_length=1, max_length=10_000)
    range: RangeModel | None = None
    linspace: LinspaceModel | None = None
    random: RandomModel | None = None
    label: str = ""
    unit: str = ""
    plot_as: list[float] | None = None

    @model_validator(mode="after")
    def _one_source(self):
        given = [k for k in ("values", "range", "linspace", "random") if getattr(self, k)]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of values, range, linspace, random"
                + (f" (got {', '.join(given)})" if given else "")
            )
        if self.plot_as is not None:
            if self.values is None:
                raise ValueError("plot_as goes with values")
            if len(self.plot_as) != len(self.values):
                raise ValueError(
                    f"plot_as has {len(self.plot_as)} numbers for {len(self.values)} values"
                )
        return self


class FigureModel(StrictModel):
    key: str = Field(min_length=1)
    label: str = ""
    unit: str = ""


class PointsModel(StrictModel):
    """The part of a sweep file that makes its points (validated on its own as well, so the
    points' scenarios are checked even when another part of the file is wrong)."""

    scenario: str = Field(min_length=1)
    combine: Literal["grid", "zip"] = "grid"
    sample_seed: int = 0
    set: dict[str, Any] = Field(default_factory=dict)
    vary: dict[str, ParameterModel] = Field(min_length=1)


class SweepModel(PointsModel):
    name: str = ""
    description: str = ""
    seeds: int | list[int] = 3
    figures: list[FigureModel] = Field(min_length=1)

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v):
        if isinstance(v, int):
            if not 1 <= v <= 1000:
                raise ValueError("seeds must count 1..1000 seeds")
        elif not v or len(set(v)) != len(v):
            raise ValueError("seeds must be a non-empty list of distinct integers")
        return v


@dataclass(frozen=True)
class Parameter:
    """A varied parameter: its dotted ``path``, parts, axis ``label`` and ``unit``, the
    ``values`` it takes and where each sits on a plot's x axis (``plot_as``, None = the value)."""

    path: str
    parts: tuple[Any, ...]
    label: str
    unit: str
    values: tuple[Any, ...]
    plot_as: tuple[float, ...] | None

    def axis(self) -> str:
        """The axis name with its unit: ``receivers (count)``."""
        return f"{self.label} ({self.unit})" if self.unit else self.label

    def x(self, value: Any) -> Any:
        """Where ``value`` sits on the x axis."""
        if self.plot_as is None:
            return value
        return self.plot_as[self.values.index(value)]


@dataclass(frozen=True)
class Figure:
    """A figure to collect: dotted ``key`` into summary.json, axis ``label`` and ``unit``."""

    key: str
    parts: tuple[str, ...]
    label: str
    unit: str

    def axis(self) -> str:
        return f"{self.label} ({self.unit})" if self.unit else self.label


@dataclass(frozen=True)
class Run:
    """One task: point ``point`` (0-based) with parameter ``values`` (path -> value) and
    ``seed``; ``data`` is the point's scenario document with the seed set; ``key`` its hash."""

    point: int
    values: dict[str, Any]
    seed: int
    data: dict[str, Any]
    key: str


@dataclass
class Sweep:
    """A validated sweep: where it came from, its base scenario, parameters, figures, runs."""

    path: Path
    name: str
    scenario_path: Path
    scenario_name: str
    kind: str
    parameters: list[Parameter]
    figures: list[Figure]
    seeds: list[int]
    runs: list[Run]

    @property
    def points(self) -> int:
        return len(self.runs) // len(self.seeds)


def run_key(kind: str, data: dict[str, Any], seed: int) -> str:
    """The hash a run's result is filed under: SHA-256 (first 16 hex digits) of the kind, the
    point's scenario document and the seed, as canonical JSON."""
    text = json.dumps(
        {"kind": kind, "scenario": data, "seed": seed},
        sort_keys=True,
        separators=(",", ":"),
        default=str,  # TOML datetimes
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _values(p: ParameterModel, rng: np.random.Generator) -> list[Any]:
    if p.values is not None:
        return list(p.values)
    if p.range is not None:
        r = p.range
        n = int(math.floor((r.stop - r.start) / r.step + 1e-9)) + 1
        out = [r.start + k * r.step for k in range(n)]
        whole = all(float(v).is_integer() for v in (r.start, r.step))
        return [int(v) if whole else round(v, 12) for v in out]
    if p.linspace is not None:
        s = p.linspace
        return [round(float(v), 12) for v in np.linspace(s.start, s.stop, s.num)]
    r = p.random
    assert r is not None
    if r.log:
        out = np.exp(rng.uniform(math.log(r.low), math.log(r.high), r.samples))
    else:
        out = rng.uniform(r.low, r.high, r.samples)
    return [int(round(v)) for v in out] if r.integer else [round(float(v), 12) for v in out]


def load_sweep(path: str | Path) -> Sweep:
    """Read and validate a sweep file (see the module doc) and expand it into runs.

    Raises :class:`~simulator.scenario.ScenarioError` listing every problem at once: the sweep
    file's own (file:line and key), the base scenario's, and those of each point's scenario
    (at the sweep line of the parameter that caused them, naming the points).
    """
    doc = load_toml(path)
    issues: list[Issue] = []
    try:
        model = doc.validate(SweepModel)
    except ScenarioError as exc:
        issues += exc.issues
        model = None
    base, device = _base(doc, issues)
    if device is not None:  # checks on the raw file, so they show even when the model fails
        issues += _figure_issues(doc, device)
    raw_set, raw_vary = doc.data.get("set"), doc.data.get("vary")
    if isinstance(raw_set, dict) and isinstance(raw_vary, dict):
        for both in sorted(set(raw_set) & set(raw_vary)):
            issues.append(doc.issue(("vary", both), "also given in [set]; give it in one place"))
    points = model if model is not None else _points_only(doc)
    if points is None or base is None or device is None:
        raise ScenarioError(_sorted(issues))
    params = []
    rng = np.random.default_rng(points.sample_seed)  # random parameters draw in file order
    for path_text, p in points.vary.items():
        params.append(
            Parameter(
                path=path_text,
                parts=split_path(path_text),
                label=p.label or path_text,
                unit=p.unit,
                values=tuple(_values(p, rng)),
                plot_as=None if p.plot_as is None else tuple(p.plot_as),
            )
        )
    for p in params:  # a repeated value would run the same runs twice under one key
        seen = [json.dumps(v, sort_keys=True) for v in p.values]
        twice = sorted({v for v in seen if seen.count(v) > 1})
        if twice:
            msg = f"value(s) {', '.join(twice)} given more than once"
            issues.append(doc.issue(("vary", p.path), msg))
    seeds = [1]  # checking the points needs no seeds; the runs get the file's
    if model is not None:
        seeds = list(range(1, model.seeds + 1)) if isinstance(model.seeds, int) else model.seeds
    combos = _combine(doc, points, params, issues)
    if len(combos) * len(seeds) > MAX_RUNS:
        msg = f"{len(combos)} points x {len(seeds)} seeds; a sweep may hold at most {MAX_RUNS}"
        issues.append(doc.issue(("vary",), msg))
        raise ScenarioError(_sorted(issues))
    runs = _runs(doc, points, base, device, params, combos, seeds, issues)
    if issues or model is None:
        raise ScenarioError(_sorted(issues))
    figures = [
        Figure(f.key, tuple(_split_key(f.key)), f.label or f.key, f.unit) for f in model.figures
    ]
    return Sweep(
        path=doc.path,
        name=model.name or doc.path.stem,
        scenario_path=base.path,
        scenario_name=str(base.data.get("name") or base.path.stem),
        kind=device.name,
        parameters=params,
        figures=figures,
        seeds=seeds,
        runs=runs,
    )


def _points_only(doc: ScenarioDoc) -> PointsModel | None:
    """The points part of a file whose whole model failed; None when that part fails too
    (its problems are already listed from the whole model)."""
    keys = set(PointsModel.model_fields)
    try:
        return PointsModel.model_validate({k: v for k, v in doc.data.items() if k in keys})
    except pydantic.ValidationError:
        return None


def _base(doc: ScenarioDoc, issues: list[Issue]):
    raw = doc.data.get("scenario")
    if not isinstance(raw, str) or not raw:
        return None, None  # the model says what is wrong
    path = doc.resolve_path(raw)
    if not is_file(path):
        issues.append(doc.issue(("scenario",), f"no such scenario file: {path}"))
        return None, None
    try:
        base = load_toml(path)
        device = registry.for_document(base)
        device.load(base)
    except ScenarioError as exc:
        issues.append(doc.issue(("scenario",), "the base scenario does not validate (below)"))
        issues += exc.issues
        return None, None
    return base, device


def _sorted(issues: list[Issue]) -> list[Issue]:
    """The sweep file's issues by line, then those of other files (the base scenario)."""
    return sorted(issues, key=lambda i: (i.file != issues[0].file, i.file, i.line or 0))


def _figure_issues(doc: ScenarioDoc, device) -> list[Issue]:
    known = set(CommonSummary.model_fields) | set(device.summary.model_fields)
    raw = doc.data.get("figures")
    out = []
    for i, f in enumerate(raw if isinstance(raw, list) else []):
        key = f.get("key") if isinstance(f, dict) else None
        if not isinstance(key, str) or not key:
            continue  # the model says what is wrong
        first = _split_key(key)[0]
        if first not in known:
            msg = (
                f"summary.json of kind {device.name!r} has no key {first!r}; "
                f"one of {', '.join(sorted(known))}"
            )
            out.append(doc.issue(("figures", i, "key"), msg))
    return out


def _combine(doc, model: PointsModel, params: list[Parameter], issues) -> list[tuple[Any, ...]]:
    if model.combine == "grid":
        return list(itertools.product(*(p.values for p in params)))
    lengths = {p.path: len(p.values) for p in params}
    if len(set(lengths.values())) > 1:
        text = ", ".join(f"{k}: {n}" for k, n in lengths.items())
        issues.append(doc.issue(("combine",), f"zip needs equally many values ({text})"))
        return []
    return list(zip(*(p.values for p in params), strict=True))


def _runs(doc, model: PointsModel, base, device, params, combos, seeds, issues) -> list[Run]:
    fixed = copy.deepcopy(base.data)
    before = len(issues)
    for path_text, value in model.set.items():
        problem = set_path(fixed, split_path(path_text), value)
        if problem:
            issues.append(doc.issue(("set", path_text), problem))
    set_failed = len(issues) > before  # then only the varied paths are checked, not the points
    runs: list[Run] = []
    found: dict[tuple[Any, ...], tuple[Issue, list[int]]] = {}  # one issue, many points
    for index, combo in enumerate(combos):
        data = copy.deepcopy(fixed)
        values = {p.path: v for p, v in zip(params, combo, strict=True)}
        for p, v in zip(params, combo, strict=True):
            problem = set_path(data, p.parts, v)
            if problem:
                _note(found, doc.issue(("vary", p.path), problem), index)
        try:
            if not set_failed:
                device.load(ScenarioDoc(base.path, data, base.locator))
        except ScenarioError as exc:
            for issue in exc.issues:
                _note(found, _blame(doc, model, issue), index)
        for seed in seeds:
            point_data = copy.deepcopy(data)
            point_data["seed"] = seed
            runs.append(
                Run(index, values, seed, point_data, run_key(device.name, point_data, seed))
            )
    for issue, points in found.values():
        if len(points) == len(combos):
            which = "every point"
        else:
            which = "point(s) " + ", ".join(str(i) for i in points[:8])
            which += ", ..." if len(points) > 8 else ""
        issues.append(Issue(issue.file, issue.line, issue.key, f"{which}: {issue.message}"))
    return runs


def _note(found, issue: Issue, index: int) -> None:
    slot = (issue.file, issue.line, issue.key, issue.message)
    found.setdefault(slot, (issue, []))[1].append(index)


def _blame(doc: ScenarioDoc, model: PointsModel, issue: Issue) -> Issue:
    """A point-scenario issue, moved to the sweep line that set the key it is about."""
    for table, paths in (("vary", model.vary), ("set", model.set)):
        for path_text in paths:
            dotted = ".".join(str(p) for p in split_path(path_text))
            if (
                issue.key == dotted
                or issue.key.startswith(dotted + ".")
                or (dotted.startswith(issue.key + "."))
            ):
                where = f"{issue.file}: {issue.key}" if issue.key else issue.file
                return doc.issue((table, path_text), f"{where}: {issue.message}")
    return issue
