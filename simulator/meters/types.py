"""Meter types loaded from their files, and what the wired and wireless builders get from them.

:func:`load_meter_file` reads one file (:mod:`simulator.meters.model` shape) and returns a
:class:`MeterType`, or raises :class:`~simulator.scenario.ScenarioError` listing every problem
with ``file:line``: schema errors, unknown or circular record references, a derived profile
whose inputs are not noise-free waves, a record whose value does not fit its coding, a golden
telegram that is not hex or an expected decode that is not JSON. :func:`meter_types` loads the
shipped folder ``simulator/meters/data`` (package data, in the wheel) once.

A :class:`MeterType` makes value profiles for one meter from a ``random.Random`` (its own
stream): :meth:`MeterType.build` gives the wired slave's records (and monthly history for
multi-telegram meters), :meth:`MeterType.wireless_records` the wM-Bus meter's. Both draw the
same parameters in the same order, so one stream gives one meter whichever link reads it.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator, Mapping
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from simulator.mbus.errors import MBusError
from simulator.mbus.record_spec import RecordSpec
from simulator.mbus.records import _resolve
from simulator.meters import profiles as pf
from simulator.meters.model import REFERENCES, HexValue, MeterFile, RecordModel, Uniform
from simulator.scenario import Issue, ScenarioDoc, ScenarioError, load_toml

DATA = Path(__file__).parent / "data"
_TRIAL_CLOCK = datetime(2026, 1, 5)


def resolution(rec: RecordModel) -> float:
    """The record's resolution in its VIF family unit: ``resolution`` or 10^(VIF exponent)."""
    if rec.resolution is not None:
        return rec.resolution
    vifes = [c | 0x80 for c in rec.vife[:-1]] + [c & 0x7F for c in rec.vife[-1:]]
    _, exponent, _ = _resolve(rec.vif | (0x80 if vifes else 0), tuple(vifes))
    return 10**exponent if exponent >= 0 else float(f"1e{exponent}")


class ProfileError(ValueError):
    """A record's profile cannot be made (circular reference, integrand without a series)."""

    def __init__(self, record: str, message: str) -> None:
        self.record = record
        super().__init__(f"record {record!r}: {message}")


def _draw(value: Any, rng: random.Random) -> Any:
    if isinstance(value, Uniform):
        return rng.uniform(*value.uniform)
    if isinstance(value, HexValue):
        return bytes.fromhex(value.hex)
    return value


class MeterType:
    """One meter type (one file): identity, records, profiles. ``medium`` is the EN 13757-3
    medium / device type code (PROTOCOL.md §4.6)."""

    def __init__(self, model: MeterFile, path: Path) -> None:
        self.model = model
        self.path = path
        self.name = model.name
        self.description = model.description
        self.manufacturer = model.manufacturer
        self.version = model.version
        self.medium = model.medium
        self.records = {r.name: r for r in model.records}

    def __repr__(self) -> str:
        return f"MeterType({self.name!r}, {self.path})"

    @property
    def wired(self) -> bool:
        return self.model.wired is not None

    @property
    def wireless(self) -> bool:
        return self.model.wireless is not None

    @property
    def mode(self) -> str:
        """The default wM-Bus mode (S1, T1, C1A, C1B)."""
        return self.model.wireless.mode if self.model.wireless else "T1"

    def params(self, quantity: str) -> list[str]:
        """The number parameters of a record's profile (what a scenario may override)."""
        prof = self.records[quantity].profile
        refs = REFERENCES.get(prof.kind, ())
        return [k for k in type(prof).model_fields if k not in ("kind", *refs)]

    def profiles(
        self, rng: random.Random, overrides: Mapping[str, Mapping[str, Any]] | None = None
    ) -> dict[str, Any]:
        """Every record's profile for one meter, parameters drawn from ``rng`` in file order;
        ``overrides`` (quantity -> parameter -> value) replace drawn values afterwards, so an
        override never shifts another record's draws. ``ValueError`` for a derived profile
        whose inputs have no harmonic series (noise, counter, clock)."""
        overrides = overrides or {}
        drawn: dict[str, dict[str, Any]] = {}
        for rec in self.model.records:
            prof = rec.profile
            vals = {k: _draw(getattr(prof, k), rng) for k in self.params(rec.name)}
            vals.update(overrides.get(rec.name, {}))
            drawn[rec.name] = vals
        made: dict[str, Any] = {}

        def build_one(name: str, stack: tuple[str, ...] = ()) -> Any:
            if name in made:
                return made[name]
            if name in stack:
                raise ProfileError(name, f"circular reference {' -> '.join((*stack, name))}")
            prof, v = self.records[name].profile, drawn[name]
            sub = (*stack, name)
            if prof.kind == "constant":
                out: Any = pf.Constant(v["value"])
            elif prof.kind == "counter":
                out = pf.Counter(v["start"], v["rate_per_h"], v["swing"])
            elif prof.kind == "wave":
                out = pf.Wave(v["mean"], v["amplitude"], v["period_s"], v["phase"], v["noise"])
            elif prof.kind == "clock":
                out = pf.ClockValue()
            elif prof.kind == "difference":
                out = pf.Difference(make(prof.of[0], sub), make(prof.of[1], sub))
            elif prof.kind == "heat_power":
                out = pf.HeatPower(
                    make(prof.flow, sub),
                    make(prof.temperature_difference, sub),
                    v["rho_kg_m3"],
                    v["c_j_kgk"],
                )
            else:
                out = pf.Integral(v["start"], make(prof.of, sub), v["per_s"])
            if prof.kind in REFERENCES:
                out.harmonic()  # ValueError now for inputs without a series (noise, counter)
            made[name] = out
            return out

        def checked(name: str, stack: tuple[str, ...] = ()) -> Any:
            try:
                return build_one(name, stack)
            except ProfileError:
                raise
            except ValueError as exc:
                raise ProfileError(name, str(exc)) from None

        make = checked

        return {rec.name: make(rec.name) for rec in self.model.records}

    def _spec(self, rec: RecordModel, profile: Any, **kw: Any) -> RecordSpec:
        return RecordSpec(
            rec.name,
            rec.vif,
            rec.data_field,
            profile,
            resolution(rec),
            tuple(rec.vife),
            storage=kw.get("storage", rec.storage),
            tariff=rec.tariff,
            function=rec.function,
            age_s=kw.get("age_s", 0.0),
            telegram=kw.get("telegram", 0),
            subunit=rec.subunit,
        )

    def _names(self, link: Any) -> list[str]:
        listed = link.records if link is not None else None
        return list(self.records) if listed is None else list(listed)

    def build(
        self,
        rng: random.Random,
        telegrams: int = 1,
        overrides: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> list[RecordSpec]:
        """The wired slave's records: ``[wired] records`` in telegram 0, then for a
        multi-telegram meter the ``[history]`` records (storage 1, 2, ... each
        ``interval_s`` older) in telegrams 1..n-1, ``per_telegram`` per record and telegram."""
        profs = self.profiles(rng, overrides)
        out = [self._spec(self.records[n], profs[n]) for n in self._names(self.model.wired)]
        h = self.model.history
        if telegrams > 1 and h is not None:
            for name in h.records:
                storage = 1
                for tg in range(1, telegrams):
                    for _ in range(h.per_telegram):
                        out.append(
                            self._spec(
                                self.records[name],
                                profs[name],
                                storage=storage,
                                age_s=storage * h.interval_s,
                                telegram=tg,
                            )
                        )
                        storage += 1
        return out

    def wireless_records(
        self, rng: random.Random, overrides: Mapping[str, Mapping[str, Any]] | None = None
    ) -> list[RecordSpec]:
        """The wM-Bus meter's records (``[wireless] records``, default all), one telegram."""
        profs = self.profiles(rng, overrides)
        return [self._spec(self.records[n], profs[n]) for n in self._names(self.model.wireless)]


# -- checks with file:line -----------------------------------------------------------------------


def _reference_issues(doc: ScenarioDoc) -> list[Issue]:
    """Record names unique; every name a profile, [wired], [wireless] or [history] uses exists."""
    recs = doc.data.get("records")
    if not isinstance(recs, list):
        return []
    names = [r.get("name") for r in recs if isinstance(r, dict)]
    issues = []
    seen: set[Any] = set()
    for i, r in enumerate(recs):
        if not isinstance(r, dict):
            continue
        if r.get("name") in seen:
            issues.append(doc.issue(("records", i, "name"), f"duplicate record {r['name']!r}"))
        seen.add(r.get("name"))
        prof = r.get("profile")
        if not isinstance(prof, dict):
            continue
        for key in REFERENCES.get(prof.get("kind"), ()):
            refs = prof.get(key)
            for ref in refs if isinstance(refs, list) else [refs]:
                if isinstance(ref, str) and ref not in names:
                    issues.append(
                        doc.issue(
                            ("records", i, "profile"),
                            f"{prof['kind']} {key} = {ref!r}: no such record; one of {names}",
                        )
                    )
    for table in ("wired", "wireless", "history"):
        t = doc.data.get(table)
        listed = t.get("records") if isinstance(t, dict) else None
        for ref in listed if isinstance(listed, list) else []:
            if ref not in names:
                issues.append(
                    doc.issue((table, "records"), f"no such record {ref!r}; one of {names}")
                )
    return issues


def _golden_issues(doc: ScenarioDoc) -> list[Issue]:
    issues = []
    for i, g in enumerate(doc.data.get("golden") or []):
        if not isinstance(g, dict):
            continue
        try:
            bytes.fromhex("".join(str(g.get("telegram", "")).split()))
        except ValueError:
            issues.append(doc.issue(("golden", i, "telegram"), "not an even number of hex digits"))
        try:
            json.loads(str(g.get("expected", "")))
        except json.JSONDecodeError as exc:
            issues.append(doc.issue(("golden", i, "expected"), f"not JSON: {exc}"))
    return issues


def _build_issues(doc: ScenarioDoc) -> list[Issue]:
    """With a valid schema and references: make every profile and encode every record once."""
    try:
        model = MeterFile.model_validate(doc.data)
    except ValueError:
        return []  # the schema errors are reported by validate itself
    if _reference_issues(doc):
        return []
    mt = MeterType(model, doc.path)
    try:
        profs = mt.profiles(random.Random(0))
    except ProfileError as exc:
        i = list(mt.records).index(exc.record)
        return [doc.issue(("records", i, "profile"), str(exc))]
    issues = []
    for i, rec in enumerate(model.records):
        try:
            mt._spec(rec, profs[rec.name]).build(0.0, _TRIAL_CLOCK, random.Random(0))
        except (MBusError, ValueError, TypeError) as exc:
            issues.append(doc.issue(("records", i), f"record {rec.name!r}: {exc}"))
    return issues


def load_meter_file(path: str | Path) -> MeterType:
    """Load and check one meter type file; :class:`ScenarioError` lists every problem."""
    doc = load_toml(path)
    model = doc.validate(MeterFile, checks=[_reference_issues, _golden_issues, _build_issues])
    return MeterType(model, Path(path))


def load_folder(folder: str | Path) -> dict[str, MeterType]:
    """Every ``*.toml`` in ``folder`` by name; one :class:`ScenarioError` for all problems
    (including two files with one name)."""
    out: dict[str, MeterType] = {}
    issues: list[Issue] = []
    for path in sorted(Path(folder).glob("*.toml")):
        try:
            mt = load_meter_file(path)
        except ScenarioError as exc:
            issues += exc.issues
            continue
        if mt.name in out:
            issues.append(
                Issue(str(path), None, "name", f"{mt.name!r} also in {out[mt.name].path}")
            )
        out[mt.name] = mt
    if issues:
        raise ScenarioError(issues)
    return out


@cache
def meter_types() -> dict[str, MeterType]:
    """The shipped meter types (``simulator/meters/data``), loaded once."""
    return load_folder(DATA)


class TypeView(Mapping[str, MeterType]):
    """The shipped types that have a ``[wired]`` (or ``[wireless]``) identity, loaded lazily."""

    def __init__(self, link: str) -> None:
        self.link = link
        self._types: dict[str, MeterType] | None = None

    def _all(self) -> dict[str, MeterType]:
        # meter_types() is loaded once, so the view is filtered once (100k-meter cities look
        # a profile up per meter)
        if self._types is None:
            self._types = {k: v for k, v in meter_types().items() if getattr(v, self.link)}
        return self._types

    def __getitem__(self, name: str) -> MeterType:
        return self._all()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())
