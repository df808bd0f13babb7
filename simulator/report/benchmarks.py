"""Bench results: pytest-benchmark JSON files, normalised by the calibration loop, compared,
and rendered as the README's performance table (docs/benchmarks.md).

A result file is what ``pytest benches --benchmark-json=FILE`` writes; benches/conftest.py
adds to every benchmark's ``extra_info`` the run's ``calibration_s`` (best time, s, of a fixed
pure-Python loop measured in the same run) and ``normalised`` (the benchmark's best round
divided by ``calibration_s``), so a figure moves with the code, not with the machine or its
load. Every function here
is generic over whatever benchmarks a file holds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Markers around the generated table in README.md.
README_BEGIN = "<!-- bench:begin -->"
README_END = "<!-- bench:end -->"
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
        return f"[{len(v)} rows]"  # tables of rows belong in the result file, not the README
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float):
        return f"{v:,.3g}" if abs(v) < 1000 else f"{v:,.0f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def table(result: Result, source: str) -> str:
    """The Markdown performance table of ``result`` (one row per benchmark, sorted by name),
    with a first line naming ``source`` (the result file as given to the generator), its
    commit and machine. This is the text between the README markers."""
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
    for name in sorted(result.figures):
        f = result.figures[name]
        extra = ", ".join(f"{k} {_fmt(v)}" for k, v in sorted(f.extra.items()))
        short = name.replace("benches/", "")
        rows.append(f"| `{short}` | {f.mean * 1e3:,.3f} ms | {f.normalised:,.3f} | {extra} |")
    return "\n".join(rows) + "\n"


def readme_block(text: str) -> tuple[int, int]:
    """Start and end offsets of the generated block between the README markers.

    Raises ValueError if the markers are missing or out of order."""
    start = text.find(README_BEGIN)
    end = text.find(README_END)
    if start < 0 or end < start:
        raise ValueError(f"README has no {README_BEGIN} ... {README_END} block")
    return start + len(README_BEGIN) + 1, end


def with_table(text: str, block: str) -> str:
    """``text`` (the README) with the block between the markers replaced by ``block``."""
    a, b = readme_block(text)
    return text[:a] + block + text[b:]


def source_of(text: str) -> str:
    """The result file named in the README block's first line (for the consistency test)."""
    a, b = readme_block(text)
    first = text[a:b].split("\n", 1)[0]
    marker = "`meterbench bench readme "
    if marker not in first:
        raise ValueError("README bench block does not name the result file it came from")
    return first.split(marker, 1)[1].split("`", 1)[0]
