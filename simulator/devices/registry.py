"""The device registry: scenario ``kind`` -> what builds, summarises and draws that world.

A device kind is one package that exposes one :class:`DeviceKind` as ``DEVICE`` in one module,
named once in :data:`BUILTIN` (or, for a kind that lives outside meterbench, in the
``meterbench.devices`` entry-point group: ``name = "package.module"``). ``meterbench run``, the
pytest plugin and every later verb find a kind here; nothing else maps kinds to code.

A kind gives the run skeleton (:mod:`simulator.devices.skeleton`) four things:

- ``scenario``: its pydantic scenario model (with ``seed``, ``hours`` and optionally ``name``
  and ``start``), and ``validate(doc)`` when it needs cross-field checks beyond the model;
- ``build(ctx)``: given a :class:`BuildContext` (validated scenario, seeded :class:`World`,
  results folder), the :class:`Simulation` to run;
- ``summary``: the pydantic model of its own figures in ``summary.json`` (the common keys are
  the skeleton's, :mod:`simulator.devices.summary`);
- ``plots``: whether ``Simulation.plots`` draws pictures.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from importlib.metadata import entry_points
from pathlib import Path
from typing import IO, Any, Protocol

import pydantic

from simulator.core.world import World
from simulator.scenario import RunOptions, ScenarioDoc, ScenarioError

#: Built-in kinds: scenario ``kind`` -> module that defines ``DEVICE``. One line per kind.
BUILTIN: dict[str, str] = {
    "mbus": "simulator.building.runner",
    "stream": "simulator.gateways.cme3100.stream_runner",
    "nbiot": "simulator.nbiot.runner",
    "cme2100": "simulator.gateways.cme2100.runner",
    "cme3100": "simulator.gateways.cme3100.runner",
}

#: Entry-point group through which other packages add kinds.
ENTRY_POINT_GROUP = "meterbench.devices"


@dataclass
class Outcome:
    """What a finished simulation reports: its figures, console rows and written files.

    ``figures`` must validate against the kind's ``summary`` model; ``table`` holds
    (label, text) rows for the console; ``files`` the files it wrote besides the skeleton's.
    """

    figures: dict[str, Any]
    table: list[tuple[str, str]] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)


class Simulation(Protocol):
    """A built world of one kind, driven by the skeleton.

    ``advance(until, last)``: run up to world time ``until`` (s); ``last`` is True on the final
    step (a kind may include the end instant). ``status()``: a short progress text.
    ``finish()``: called once after the last step, returns the :class:`Outcome`.
    ``plots(out)``: draw pictures into ``out`` and return their paths (only called when the
    kind has ``plots=True`` and the scenario does not switch them off).
    """

    def advance(self, until: float, last: bool) -> None: ...

    def status(self) -> str: ...

    def finish(self) -> Outcome: ...

    def plots(self, out: Path) -> list[Path]: ...


@dataclass
class BuildContext:
    """What a kind's ``build`` receives from the skeleton.

    ``world`` is seeded with ``seed`` and records into the run's trace; ``end`` is the simulated
    duration in s; ``out`` exists. :meth:`csv` opens a results CSV the skeleton closes.
    """

    doc: ScenarioDoc
    scenario: Any
    seed: int
    hours: float
    world: World
    out: Path
    options: RunOptions
    _open: list[IO[str]] = field(default_factory=list, repr=False)
    _cleanups: list[Callable[[], None]] = field(default_factory=list, repr=False)
    files: list[Path] = field(default_factory=list)

    @property
    def name(self) -> str:
        """The run's name: the scenario's ``name``, else the file's stem (summary, titles)."""
        return str(getattr(self.scenario, "name", None) or self.doc.path.stem)

    @property
    def end(self) -> float:
        """The simulated duration in s."""
        return self.hours * 3600.0

    def csv(self, name: str, columns: tuple[str, ...] | list[str], *, delimiter: str = ",") -> Any:
        """A ``csv.writer`` on ``out/name`` with its header row written (closed by the skeleton)."""
        import csv

        writer = csv.writer(self.text(name), lineterminator="\n", delimiter=delimiter)
        writer.writerow(columns)
        return writer

    def text(self, name: str) -> Any:
        """A text file ``out/name`` (UTF-8, no newline translation), closed by the skeleton."""
        path = self.out / name
        fh = path.open("w", encoding="utf-8", newline="")
        self._open.append(fh)
        self.files.append(path)
        return fh

    def on_close(self, cleanup: Callable[[], None]) -> None:
        """Call ``cleanup`` when the run ends, however it ends (real servers, threads)."""
        self._cleanups.append(cleanup)

    def close(self) -> None:
        while self._open:
            self._open.pop().close()
        while self._cleanups:
            self._cleanups.pop()()


@dataclass(frozen=True)
class DeviceKind:
    """One registered device kind (see the module doc).

    ``trace``: given the validated scenario, ``"full"`` (every event to trace.jsonl),
    ``"off"`` (no trace file) or ``"keep"`` (full, and also kept in memory for the kind to read
    back). ``plots``: the kind draws pictures; ``plots_enabled(scenario)`` may switch them off.
    ``sim_dut(world, bus, settings)``: the simulated device under test a sim rig uses for this
    kind (rig ``[dut] kind``), or None when the kind has none.
    """

    name: str
    title: str
    scenario: type[pydantic.BaseModel]
    build: Callable[[BuildContext], Simulation]
    summary: type[pydantic.BaseModel]
    validate: Callable[[ScenarioDoc], Any] | None = None
    trace: Callable[[Any], str] = lambda sc: "full"
    plots: bool = False
    plots_enabled: Callable[[Any], bool] = lambda sc: True
    sim_dut: Callable[..., Any] | None = None

    def load(self, doc: ScenarioDoc) -> Any:
        """The validated scenario; :class:`ScenarioError` with every problem at once."""
        if self.validate is not None:
            return self.validate(doc)
        return doc.validate(self.scenario)

    def start(self, scenario: Any) -> datetime | None:
        """Calendar time of world time 0, when the scenario sets one."""
        return getattr(scenario, "start", None)


_loaded: dict[str, DeviceKind] = {}


def _module_for(kind: str) -> str | None:
    if kind in BUILTIN:
        return BUILTIN[kind]
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == kind:
            return ep.value
    return None


def names() -> list[str]:
    """Every registered kind name, sorted."""
    extra = {ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)}
    return sorted(set(BUILTIN) | extra)


def get(kind: str) -> DeviceKind:
    """The :class:`DeviceKind` named ``kind``; ``KeyError`` if none is registered."""
    device = _loaded.get(kind)
    if device is None:
        module = _module_for(kind)
        if module is None:
            raise KeyError(kind)
        device = importlib.import_module(module).DEVICE
        if device.name != kind:
            raise RuntimeError(f"{module}.DEVICE is named {device.name!r}, registered as {kind!r}")
        _loaded[kind] = device
    return device


def kinds() -> list[DeviceKind]:
    """Every registered kind, loaded, in name order."""
    return [get(k) for k in names()]


def for_document(doc: ScenarioDoc) -> DeviceKind:
    """The kind a scenario file names in ``kind``; :class:`ScenarioError` (with the line) if
    the key is missing or names no registered kind."""
    kind = doc.kind
    if kind is None:
        msg = f"missing: the file must say which world it builds, kind = one of {names()}"
        raise ScenarioError([doc.issue(("kind",), msg)])
    try:
        return get(kind)
    except KeyError:
        raise ScenarioError(
            [doc.issue(("kind",), f"unknown scenario kind {kind!r}; one of {names()}")]
        ) from None
