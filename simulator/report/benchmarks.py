"""Bench results: pytest-benchmark JSON files, normalised by the calibration loop, compared,
and rendered as the performance tables of the README and the docs (docs/benchmarks.md).

A result file is what ``pytest benches --benchmark-json=FILE`` writes; benches/conftest.py
adds to every benchmark's ``extra_info`` the run's ``calibration_s`` (best time, s, of a fixed
pure-Python loop measured in the same run) and ``normalised`` (the benchmark's best round
divided by ``calibration_s``), so a figure moves with the code, not with the machine or its
load. Every function here
is generic over whatever benchmarks a file holds.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Markers around a generated table (README.md: every benchmark). A docs page names which
#: benchmarks its table holds: ``<!-- bench:begin bench_bus.py -->`` keeps those whose full
#: name contains ``bench_bus.py``.
README_BEGIN = "<!-- bench:begin -->"
README_END = "<!-- bench:end -->"
#: Each marker is a line of its own (a marker quoted inside a line is text).
_BLOCK = re.compile(r"^<!-- bench:begin(?: (?P<match>[^\s>]+))? -->\n", re.M)
_END = re.compile(r"^<!-- bench:end -->$", re.M)
#: extra_info keys written by benches/conftest.py (not the benchmark's own figures).
CALIBRATION_KEYS = ("calibration_s", "normalised")


class BenchFileError(ValueError):
    """A result file that cannot be read or lacks the calibration figures (names file + what)."""


@dataclass(frozen=True)
class Figure:
    """One benchmark of a result file: ``name`` (pytest-benchmark ``fullname``), ``mean`` (s
    per round), ``normalised`` (best round / calibration, dimensionless) and its own ``extra``
    figures (``extra_info`` less the calibration keys)."""

    name: str
    mean: float
    normalised: float
    extra: dict[str, Any]


@dataclass(frozen=True)
class Result:
    """A result file: its ``path``, ``commit`` (id, or "" if unknown), ``time`` (commit time,
    ISO 8601, or the run's ``datetime``), ``machine`` (one line) and ``figures`` by name."""

    path: Path
    commit: str
    time: str
    machine: str
    figures: dict[str, Figure]


def load(path: str | Path) -> Result:
    """Read one pytest-benchmark JSON file.

    Raises :class:`BenchFileError` if it cannot be read or parsed, or if a benchmark lacks
    ``extra_info.normalised`` (a file not written through benches/conftest.py).
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        benches = data["benchmarks"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BenchFileError(f"{path}: not a pytest-benchmark JSON file ({exc})") from None
    figures = {}
    for b in benches:
        extra = dict(b.get("extra_info") or {})
        name = b.get("fullname") or b.get("name", "?")
        if not isinstance(extra.get("normalised"), int | float):
            raise BenchFileError(
                f"{path}: benchmark {name!r} has no extra_info.normalised "
                "(run the benches through benches/conftest.py)"
            )
        normalised = float(extra.pop("normalised"))
        extra.pop("calibration_s", None)
        figures[name] = Figure(name, float(b["stats"]["mean"]), normalised, extra)
    commit = data.get("commit_info") or {}
    machine = data.get("machine_info") or {}
    return Result(
        path=path,
        commit=str(commit.get("id") or "")[:12],
        time=str(commit.get("time") or data.get("datetime") or ""),
        machine=_machine(machine),
        figures=figures,
    )


def _machine(info: dict[str, Any]) -> str:
    cpu = info.get("cpu") if isinstance(info.get("cpu"), dict) else {}
    parts = [
        f"{info.get('python_implementation', '')} {info.get('python_version', '')}".strip(),
        str(cpu.get("brand_raw", "")),
        f"{cpu['count']} cores" if cpu.get("count") else "",
    ]
    return ", ".join(p for p in parts if p) or "unknown machine"


@dataclass(frozen=True)
class Change:
    """One benchmark in both files: ``ratio`` = new normalised / baseline normalised."""

    name: str
    baseline: float
    new: float

    @property
    def ratio(self) -> float:
        return self.new / self.baseline if self.baseline > 0 else float("inf")


@dataclass(frozen=True)
class Comparison:
    changes: list[Change]
    only_baseline: list[str]
    only_new: list[str]
    threshold: float

    @property
    def regressions(self) -> list[Change]:
        """Benchmarks whose normalised figure grew by more than ``threshold`` (0.2 = 20 %)."""
        return [c for c in self.changes if c.ratio > 1.0 + self.threshold]

    def lines(self) -> list[str]:
        """The comparison as text lines (one per benchmark) for the console."""
        names = [c.name for c in self.changes] + self.only_baseline + self.only_new
        w = max([len(n) for n in names] + [9])
        out = [f"{'benchmark':{w}} {'baseline':>10} {'new':>10} {'change':>8}"]
        for c in self.changes:
            flag = "  REGRESSION" if c in self.regressions else ""
            pct = (c.ratio - 1.0) * 100
            out.append(f"{c.name:{w}} {c.baseline:10.4g} {c.new:10.4g} {pct:+7.1f}%{flag}")
        out += [f"{n:{w}} only in the baseline" for n in self.only_baseline]
        out += [f"{n:{w}} new (not in the baseline)" for n in self.only_new]
        return out


def compare(baseline: Result, new: Result, threshold: float = 0.20) -> Comparison:
    """Compare normalised figures benchmark by benchmark (matched by full name).

    Benchmarks in only one file are listed, never a regression. Raises ValueError for a
    negative ``threshold``.
    """
    if threshold < 0:
        raise ValueError(f"threshold must be >= 0, got {threshold}")
    names = sorted(set(baseline.figures) & set(new.figures))
    return Comparison(
        changes=[
            Change(n, baseline.figures[n].normalised, new.figures[n].normalised) for n in names
        ],
        only_baseline=sorted(set(baseline.figures) - set(new.figures)),
        only_new=sorted(set(new.figures) - set(baseline.figures)),
        threshold=threshold,
    )


def newest(folder: str | Path) -> Path:
    """The most recently modified ``*.json`` in ``folder``; FileNotFoundError if none."""
    files = sorted(Path(folder).glob("*.json"), key=lambda p: p.stat().st_mtime)
    if not files:
        raise FileNotFoundError(f"no *.json result in {folder}")
    return files[-1]


def _fmt(v: Any) -> str:
    if isinstance(v, list | dict):
        return f"[{len(v)} rows]"  # a list of rows gets its own table (_rows_table)
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float):
        return f"{v:,.3g}" if abs(v) < 1000 else f"{v:,.0f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def table(result: Result, source: str, match: str = "") -> str:
    """The Markdown performance table of ``result`` (one row per benchmark whose full name
    contains ``match``, sorted by name), with a first line naming ``source`` (the result file
    as given to the generator), its commit and machine. This is the text between the markers.

    Raises ValueError if no benchmark matches (a renamed bench must not leave an empty table).
    """
    head = (
        f"Generated by `meterbench bench readme {source}` "
        f"(commit {result.commit or 'unknown'}, {result.machine}); do not edit by hand."
    )
    rows = [
        head,
        "",
        "| benchmark | mean per round | normalised | figures |",
        "|---|---:|---:|---|",
    ]
    names = sorted(n for n in result.figures if match in n)
    if not names:
        raise ValueError(f"no benchmark in {source} has {match!r} in its name")
    tables = []
    for name in names:
        f = result.figures[name]
        extra = ", ".join(f"{k} {_fmt(v)}" for k, v in sorted(f.extra.items()))
        short = name.replace("benches/", "")
        rows.append(f"| `{short}` | {f.mean * 1e3:,.3f} ms | {f.normalised:,.3f} | {extra} |")
        tables += [_rows_table(short, k, v) for k, v in sorted(f.extra.items()) if _is_rows(v)]
    return "\n".join(rows) + "\n" + "".join(tables)


def _is_rows(v: Any) -> bool:
    return isinstance(v, list) and bool(v) and all(isinstance(r, dict) for r in v)


def _rows_table(short: str, key: str, rows: list[dict[str, Any]]) -> str:
    """A figure that is a list of rows (dicts) as its own table under the main one."""
    columns = list(dict.fromkeys(k for r in rows for k in r))
    lines = [
        "",
        f"`{short}`, `{key}`:",
        "",
        "| " + " | ".join(columns) + " |",
        "|" + "---:|" * len(columns),
    ]
    lines += ["| " + " | ".join(_fmt(r.get(c, "")) for c in columns) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def blocks(text: str) -> list[tuple[int, int, str]]:
    """The generated blocks of a page: ``(start, end, match)`` offsets of the text between
    each begin marker's line and its end marker, in order.

    Raises ValueError for a begin marker without its end marker, or an end marker without a
    begin marker (names the line).
    """
    out = []
    pos = 0
    while True:
        m = _BLOCK.search(text, pos)
        found = _END.search(text, pos)
        end = found.start() if found else -1
        if m is None:
            if end >= 0:
                raise ValueError(f"line {_line(text, end)}: {README_END} without a begin marker")
            return out
        following = _BLOCK.search(text, m.end())
        if end < 0 or (following is not None and following.start() < end):
            raise ValueError(f"line {_line(text, m.start())}: bench block without {README_END}")
        if end < m.start():
            raise ValueError(f"line {_line(text, end)}: {README_END} without a begin marker")
        out.append((m.end(), end, m.group("match") or ""))
        pos = end + len(README_END)


def _line(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def with_tables(text: str, result: Result, source: str) -> str:
    """``text`` (the README or a docs page) with every generated block replaced by the table
    of ``result`` its marker asks for. Raises ValueError as :func:`blocks` and :func:`table`."""
    out, pos = [], 0
    for start, end, match in blocks(text):
        try:
            block = table(result, source, match)
        except ValueError as exc:
            raise ValueError(f"line {_line(text, start) - 1}: {exc}") from None
        out += [text[pos:start], block]
        pos = end
    return "".join(out) + text[pos:]


def source_of(text: str) -> str:
    """The result file the page's generated blocks name in their first line (for the
    consistency test). Raises ValueError if there is no block, a block names none, or two
    blocks name different files."""
    if not blocks(text):
        raise ValueError(f"no {README_BEGIN} ... {README_END} block")
    marker = "`meterbench bench readme "
    named = set()
    for start, end, _ in blocks(text):
        first = text[start:end].split("\n", 1)[0]
        if marker not in first:
            raise ValueError(f"line {_line(text, start) - 1}: the bench block names no result file")
        named.add(first.split(marker, 1)[1].split("`", 1)[0])
    if len(named) > 1:
        raise ValueError(f"bench blocks name different result files: {sorted(named)}")
    return named.pop()


def pages_with_tables(root: str | Path) -> list[Path]:
    """README.md and every docs/*.md under ``root`` that mentions a bench marker on a line of
    its own (a malformed one too, so that :func:`blocks` reports it rather than the page being
    left out). Pages are UTF-8 with LF line ends."""
    root = Path(root)
    pages = [root / "README.md", *sorted((root / "docs").glob("*.md"))]
    return [p for p in pages if p.is_file() and _ANY_MARKER.search(p.read_bytes())]


_ANY_MARKER = re.compile(rb"^\s*<!--\s*bench:", re.M)
