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
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, TypeVar

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
                try:
                    issues += check(self)
                except (TypeError, ValueError, KeyError, AttributeError, OverflowError):
                    # Checks read the raw document; a value of the wrong kind (a table where a
                    # number belongs) can trip them. The model has said what is wrong then;
                    # with a valid model the check itself is wrong, so that still raises.
                    if result is not None:
                        raise
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


def read_text(path: str | Path, encoding: str = "utf-8") -> str:
    """The text of a file a scenario names (or the scenario itself). Raises
    :class:`ScenarioError` when it cannot be read (missing, a name too long, ...) or is not
    ``encoding`` (UTF-8; ``utf-8-sig`` allows a BOM): line and byte offset of the first bad
    byte."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        why = exc.strerror or str(exc)
        raise ScenarioError([Issue(str(path), None, "", f"cannot read: {why}")]) from None
    except ValueError as exc:  # a NUL in the path
        raise ScenarioError([Issue(str(path), None, "", f"cannot read: {exc}")]) from None
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        msg = f"not UTF-8: byte {raw[exc.start]:#04x} at offset {exc.start} ({exc.reason})"
        raise ScenarioError([Issue(str(path), line, "", msg)]) from None


def is_file(path: Path) -> bool:
    """``path.is_file()``, False (not an exception) for a name too long or with a NUL."""
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def load_toml(path: str | Path) -> ScenarioDoc:
    """Read a TOML file. Raises :class:`ScenarioError` with the line of a syntax error, or
    (:func:`read_text`) the line and byte offset of bytes that are not UTF-8."""
    path = Path(path)
    text = read_text(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"line (\d+)", str(exc))
        raise ScenarioError(
            [Issue(str(path), int(m.group(1)) if m else None, "", f"TOML syntax: {exc}")]
        ) from None
    return ScenarioDoc(path, data, KeyLocator(text))


class StrictModel(pydantic.BaseModel):
    """Base for scenario/rig models: unknown keys are errors (they are usually typos), and
    ``inf``/``nan`` (TOML has both) are refused in every float: no interval, value or time
    in a model is meant to be infinite."""

    model_config = pydantic.ConfigDict(extra="forbid", frozen=False, allow_inf_nan=False)


class ConfigServerModel(StrictModel):
    """``[config_server]``: the in-world configuration server a device fetches CAD files
    from (seed 003 §9.1), ``files = { URL = "path relative to the scenario" }``."""

    files: dict[str, str] = pydantic.Field(default_factory=dict)

    def read(self, doc: ScenarioDoc) -> dict[str, bytes]:
        """URL -> the file's bytes (:func:`config_server_check` has checked they exist)."""
        return {url: doc.resolve_path(rel).read_bytes() for url, rel in self.files.items()}


def config_server_check(doc: ScenarioDoc) -> list[Issue]:
    """A ``ScenarioDoc.validate`` check: every ``[config_server] files`` entry is a file."""
    server = doc.data.get("config_server")
    files = server.get("files") if isinstance(server, dict) else None
    return [
        doc.issue(("config_server", "files", url), f"no file {rel}")
        for url, rel in (files or {}).items()
        if isinstance(rel, str) and not doc.resolve_path(rel).is_file()
    ]


#: The most meters (or NB-IoT modules) one scenario may create, over all its groups: the
#: ``stream`` kind's ceiling (a 100 000-meter city runs in minutes; 2 million is the bench's
#: stated edge). Checked on the raw file before any meter or address list is built.
MAX_METERS = 2_000_000

#: The most scheduled transmissions or readouts one run may hold (meters x rounds): ten times
#: the 100 000-meter city day (9.6 million telegrams). Checked before anything is built.
MAX_EVENTS = 100_000_000

#: Calendar window of world time (``start`` to ``start + hours``): the narrowest of the codecs
#: the models write dates with (SMS TP-SCTS two-digit years read back as 2000..2068 by
#: ``%y``; M-Bus type F/G dates; cron years 1970..2199).
EARLIEST_START = datetime(2000, 1, 1, tzinfo=UTC)
LATEST_END = datetime(2068, 12, 31, tzinfo=UTC)


def _in_window(v: datetime) -> datetime:
    v = v if v.tzinfo is not None else v.replace(tzinfo=UTC)
    if not EARLIEST_START <= v <= LATEST_END - timedelta(days=367):
        raise ValueError(
            f"start must lie in {EARLIEST_START:%Y-%m-%d}..{LATEST_END.year - 1}-12-30 (the run "
            f"must end by {LATEST_END:%Y-%m-%d}, the calendar the codecs can write)"
        )
    return v


#: A scenario's ``start`` (world time 0): aware (naive = UTC), within the calendar window.
StartTime = Annotated[datetime, pydantic.AfterValidator(_in_window)]


def budget_issues(
    doc: ScenarioDoc, key_path: Sequence[Any], meters: float, events: float
) -> list[Issue]:
    """Issues (at ``key_path``) when ``meters`` or ``events`` exceed :data:`MAX_METERS` /
    :data:`MAX_EVENTS`; kinds compute both from the raw file before building anything."""
    out = []
    if meters > MAX_METERS:
        msg = f"{meters:.0f} meters; a scenario may create at most {MAX_METERS}"
        out.append(doc.issue(key_path, msg))
    if events > MAX_EVENTS:
        msg = (
            f"about {events:.3g} scheduled transmissions/readouts; a run may hold at most "
            f"{MAX_EVENTS:.0e} (fewer meters, a longer interval or fewer hours)"
        )
        out.append(doc.issue(key_path, msg))
    return out


def budget_check(
    count: tuple[tuple[str, ...], float], interval: tuple[tuple[str, ...], float], unit_s: float
) -> Callable[[ScenarioDoc], list[Issue]]:
    """A ``ScenarioDoc.validate`` check for kinds whose size is one count and one interval:
    ``count`` and ``interval`` are (key path, default); ``unit_s`` is the interval's unit in
    s. Events = count x (hours x 3600 s) / interval. Values of the wrong kind are left to
    the model."""

    def check(doc: ScenarioDoc) -> list[Issue]:
        def raw(path: tuple[str, ...], default: float) -> Any:
            node: Any = doc.data
            for key in path:
                node = node.get(key, {}) if isinstance(node, dict) else None
            return default if node == {} else node

        n, every, hours = raw(*count), raw(*interval), raw(("hours",), 24.0)
        if not all(_finite_positive(v) for v in (n, every, hours)):
            return []
        return budget_issues(doc, count[0], n, n * hours * 3600.0 / (every * unit_s))

    return check


def _finite_positive(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and 0 < v < float("inf")


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
    #: what trace.jsonl holds: ``all`` events, ``frames`` only (core.trace.FRAME_KINDS), or
    #: ``summary`` (no trace file); the model runs the same at every level
    trace_level: str = "all"
    #: every wait through the SimPy event loop, no exact fast path (``World.fast_path``;
    #: ``meterbench run --event-path``): the trace is the same, only slower
    event_path: bool = False

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
