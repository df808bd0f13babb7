"""Scenario and rig files: TOML loading and validation with file:line.

A scenario is a TOML file whose top-level ``kind`` names the world it builds; the device
registry (:mod:`simulator.devices.registry`) maps kinds to the code that builds them.

Validation uses pydantic models (one per kind) and reports **every** error at once as a
:class:`ScenarioError` whose items carry ``file:line`` and the dotted key. TOML itself does not
keep line numbers, so :class:`KeyLocator` finds them by reading the file's table headers and
``key =`` lines (good enough for the files people write; values inside multi-line inline
tables fall back to the nearest enclosing key).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pydantic

T = TypeVar("T", bound=pydantic.BaseModel)

#: The scenario ``meterbench run`` uses when given none (shipped inside the package).
DEFAULT_SCENARIO = Path(__file__).parent / "data" / "scenarios" / "building.toml"


@dataclass(frozen=True)
class Issue:
    """One problem in a scenario or rig file: where (file, line, dotted key) and what."""

    file: str
    line: int | None
    key: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.key or '<top>'}: {self.message}"


class ScenarioError(Exception):
    """A scenario or rig file has one or more problems; ``issues`` lists every one of them."""

    def __init__(self, issues: Sequence[Issue]) -> None:
        self.issues = list(issues)
        lines = "\n".join(f"  {i}" for i in self.issues)
        super().__init__(f"{len(self.issues)} problem(s):\n{lines}")


_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEYLINE = re.compile(r"^\s*([A-Za-z0-9_\-\"'.\s]+?)\s*=")


def _split_key(text: str) -> list[str]:
    parts = []
    for piece in re.findall(r'"[^"]*"|\'[^\']*\'|[^.]+', text):
        piece = piece.strip()
        if piece.startswith(("'", '"')):
            piece = piece[1:-1]
        parts.append(piece)
    return parts


class KeyLocator:
    """Maps key paths (``("slaves", 2, "baud")``) to 1-based line numbers of a TOML text."""

    def __init__(self, text: str) -> None:
        self.lines: dict[tuple[Any, ...], int] = {}
        counts: dict[tuple[str, ...], int] = {}
        table: tuple[Any, ...] = ()
        for lineno, raw in enumerate(text.splitlines(), start=1):
            m = _HEADER.match(raw)
            if m:
                names = tuple(_split_key(m.group(2)))
                if m.group(1) == "[[":
                    idx = counts.get(names, 0)
                    counts[names] = idx + 1
                    table = (*names, idx)
                    self.lines.setdefault(names, lineno)
                else:
                    table = self._resolve(names, counts)
                self.lines.setdefault(table, lineno)
                continue
            k = _KEYLINE.match(raw)
            if k and not raw.lstrip().startswith("#"):
                path = table + tuple(_split_key(k.group(1)))
                self.lines.setdefault(path, lineno)

    @staticmethod
    def _resolve(names: tuple[str, ...], counts: dict[tuple[str, ...], int]) -> tuple[Any, ...]:
        # [slaves.faults] after [[slaves]] belongs to the latest slaves element.
        out: list[Any] = []
        for i, name in enumerate(names):
            out.append(name)
            prefix = tuple(names[: i + 1])
            if prefix in counts and i < len(names) - 1:
                out.append(counts[prefix] - 1)
        return tuple(out)

    def line(self, path: Sequence[Any]) -> int | None:
        """Line of ``path`` or of its longest located prefix; ``None`` if nothing matches."""
        path = tuple(path)
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return None


@dataclass
class ScenarioDoc:
    """A loaded (not yet validated) TOML document with the means to locate its keys."""

    path: Path
    data: dict[str, Any]
    locator: KeyLocator

    @property
    def kind(self) -> str | None:
        """The top-level ``kind`` (which world the file builds), or None when it is missing."""
        kind = self.data.get("kind")
        return None if kind is None else str(kind)

    def issue(self, key_path: Sequence[Any], message: str) -> Issue:
        key = ".".join(str(p) for p in key_path)
        return Issue(str(self.path), self.locator.line(key_path), key, message)

    def validate(
        self,
        model: type[T],
        data: dict[str, Any] | None = None,
        *,
        checks: Sequence[Callable[[ScenarioDoc], list[Issue]]] = (),
    ) -> T:
        """Validate ``data`` (default: the whole document) against a pydantic ``model``.

        ``checks`` are cross-field checks run on the raw document (duplicate addresses, files
        that must exist...); they run even when the model fails, so one
        :class:`ScenarioError` lists every problem at once, with file:line and key (sorted by
        line when there are checks).
        """
        try:
            result = model.model_validate(self.data if data is None else data)
            issues: list[Issue] = []
        except pydantic.ValidationError as exc:
            result = None
            issues = [self.issue(e["loc"], _message(e)) for e in exc.errors()]
        if checks:
            for check in checks:
                issues += check(self)
            issues.sort(key=lambda i: (i.line or 0, i.key))
        if issues:
            raise ScenarioError(issues)
        assert result is not None
        return result

    def resolve_path(self, relative: str) -> Path:
        """A path written in the file, taken relative to the file's folder."""
        p = Path(relative)
        return p if p.is_absolute() else (self.path.parent / p)


def _message(err: dict[str, Any]) -> str:
    msg = str(err.get("msg", "invalid"))
    if err.get("type") == "extra_forbidden":
        return "unknown key (typo?)"
    if "input" in err and err.get("type") not in ("missing",):
        inp = err["input"]
        if not isinstance(inp, dict | list):
            msg += f" (got {inp!r})"
    return msg


def load_toml(path: str | Path) -> ScenarioDoc:
    """Read a TOML file. Raises :class:`ScenarioError` with the line of a syntax error."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError([Issue(str(path), None, "", f"cannot read: {exc.strerror}")]) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"line (\d+)", str(exc))
        raise ScenarioError(
            [Issue(str(path), int(m.group(1)) if m else None, "", f"TOML syntax: {exc}")]
        ) from None
    return ScenarioDoc(path, data, KeyLocator(text))


class StrictModel(pydantic.BaseModel):
    """Base for scenario/rig models: unknown keys are errors (they are usually typos)."""

    model_config = pydantic.ConfigDict(extra="forbid", frozen=False)


@dataclass
class RunOptions:
    """What ``meterbench run`` passes to a runner.

    ``seed``/``hours`` override the scenario's values when not ``None``; ``progress`` is called
    with a fraction in [0, 1] and a short text; ``out_dir`` exists when the runner is called.
    """

    out_dir: Path
    seed: int | None = None
    hours: float | None = None
    progress: Any = None
    quiet: bool = False
    #: kinds that push reports send them through real clients to real local receivers
    #: (``meterbench run --real-sinks``; the report bytes are the same as in-world)
    real_sinks: bool = False

    def resolve(self, seed: int, hours: float) -> tuple[int, float]:
        """The run's seed and duration (h): the scenario's, unless overridden here.

        Raises ``ValueError`` for an override that is not > 0 h (``meterbench run`` rejects
        such a ``--hours`` before calling a runner; a file's ``hours`` is checked by its model).
        """
        if self.hours is not None and not self.hours > 0:
            raise ValueError(f"hours override must be > 0, got {self.hours}")
        return (
            int(seed if self.seed is None else self.seed),
            float(hours if self.hours is None else self.hours),
        )

    def report(self, fraction: float, text: str = "") -> None:
        """Pass progress (fraction in [0, 1], a short text) to ``progress``, if there is one."""
        if self.progress is not None:
            self.progress(fraction, text)
