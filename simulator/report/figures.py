"""Pictures of a run that tell the truth (issue 16), one look for every kind.

Rules every picture keeps, checked by :func:`save` before it writes a file (:class:`FigureError`
names the file and what is missing):

- the title says what the picture shows, then the run in words: ``<scenario>, random seed N``
  (:func:`run_title`; "seed 003" is a product manual, never the random seed);
- every axis that shows data is named, with its unit in parentheses: ``distance (m)``,
  ``meters (count)``;
- every axis that shows data has a legend (an axis with nothing to show says so in words,
  :func:`no_data`).

Colours are the Okabe-Ito palette (Okabe & Ito 2008, "Color Universal Design"), safe for the
common colour-vision deficiencies; good and bad outcomes also differ by marker or line style,
so they stay apart in grey print. Files are PNG at 100 dpi without the ``Software`` tag, with
zlib's fastest compression (level 1 instead of 6: the same pixels; the 100k city's three
pictures are written in about 65 ms less, its map.png is about 20 % larger).

Shared pictures of more than one kind live here too: :func:`rounds_plot` (readout rounds of a
wired master: mbus, cme2100, cme3100) and :func:`timeline_plot` (outcomes of events in lanes:
push reports, SMS).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

#: Okabe-Ito colours by name.
OKABE_ITO = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky blue": "#56B4E9",
    "bluish green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish purple": "#CC79A7",
}
GOOD = OKABE_ITO["blue"]  # heard, read, delivered
PARTLY = OKABE_ITO["orange"]  # heard by one receiver only, a retry
BAD = OKABE_ITO["vermillion"]  # never heard, failed, not delivered
NEUTRAL = "#8C8C8C"  # counted apart (windows heard by no receiver)
SERIES = [OKABE_ITO[k] for k in ("blue", "orange", "bluish green", "reddish purple", "sky blue")]
DPI = 100


class FigureError(ValueError):
    """A picture that breaks the rules of this module; ``problems`` lists each one."""

    def __init__(self, path: Path, problems: list[str]) -> None:
        self.path, self.problems = path, problems
        super().__init__(f"{path.name}: " + "; ".join(problems))


@dataclass(frozen=True)
class RunLabel:
    """The run a picture belongs to: scenario name and random seed."""

    scenario: str
    seed: int

    @property
    def words(self) -> str:
        return f"{self.scenario}, random seed {self.seed}"


def run_title(what: str, run: RunLabel) -> str:
    """``what`` on the first line, the run in words on the second."""
    return f"{what}\n{run.words}"


def pyplot() -> Any:
    """matplotlib.pyplot on the Agg backend (no display, no window)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def no_data(ax: Any, text: str) -> None:
    """Say in the axes why there is nothing to draw (exempts it from the legend rule)."""
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, wrap=True)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_gid("no-data")


def _has_data(ax: Any) -> bool:
    return ax.get_gid() != "no-data" and bool(ax.lines or ax.collections or ax.patches or ax.images)


def problems(fig: Any, run: RunLabel) -> list[str]:
    """What ``fig`` lacks under the module's rules (empty: it keeps them all)."""
    out = []
    titles = [fig.get_suptitle()]
    titles += [ax.get_title() for ax in fig.axes]
    if not any(run.scenario in t and f"random seed {run.seed}" in t for t in titles):
        out.append(f"no title names the run ({run.words!r})")
    legends = bool(fig.legends)
    for n, ax in enumerate(fig.axes):
        if not _has_data(ax):
            continue
        for axis, label in (("x", ax.get_xlabel()), ("y", ax.get_ylabel())):
            if not label:
                out.append(f"axes {n}: no {axis} axis name")
            elif "(" not in label or not label.rstrip().endswith(")"):
                out.append(f"axes {n}: {axis} axis {label!r} has no unit in parentheses")
        if ax.get_legend() is None and not legends:
            out.append(f"axes {n}: no legend")
    return out


def save(fig: Any, path: Path, run: RunLabel) -> Path:
    """Check ``fig`` (:class:`FigureError` if it breaks a rule), write it as PNG, close it."""
    plt = pyplot()
    bad = problems(fig, run)
    if bad:
        plt.close(fig)
        raise FigureError(path, bad)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI, metadata={"Software": None}, pil_kwargs={"compress_level": 1})
    plt.close(fig)
    return path


# -- pictures shared by kinds ---------------------------------------------------------------
@dataclass(frozen=True)
class Round:
    """One readout round of a wired master: start (s of world time), meters read OK, failed,
    meters in the round."""

    t_s: float
    ok: int
    failed: int
    meters: int


def _time_axis(start: datetime | None, end_s: float, note: str = "") -> tuple[float, str]:
    """(seconds per unit, axis name): hours for runs up to 3 days, else days."""
    since = "the start of the run" if start is None else f"{start:%Y-%m-%d %H:%M} UTC"
    unit, name = (3600.0, "h") if end_s <= 3 * 86400 else (86400.0, "days")
    return unit, f"time since {since} ({name}{note})"


def rounds_plot(
    rounds: list[Round], start: datetime | None, end_s: float, path: Path, run: RunLabel
) -> Path:
    """Meters read OK and failed in each readout round, against time (run of ``end_s`` s)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 3.8))
    unit, xlabel = _time_axis(start, end_s)
    if rounds:
        t = [r.t_s / unit for r in rounds]
        marker = "o" if len(rounds) <= 60 else None
        ax.step(
            t,
            [r.ok for r in rounds],
            where="post",
            color=GOOD,
            lw=2,
            marker=marker,
            label="read OK",
        )
        ax.step(
            t,
            [r.failed for r in rounds],
            where="post",
            color=BAD,
            ls="--",
            marker=marker,
            label="failed",
        )
        ax.set_ylim(bottom=0, top=max(r.meters for r in rounds) * 1.15 + 0.5)
        ax.set_xlim(0, end_s / unit)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize="small")
    else:
        no_data(ax, "no readout round in this run (install still running, or too short)")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("meters per round (count)")
    ax.set_title(run_title("Readout rounds", run))
    return save(fig, path, run)


@dataclass(frozen=True)
class Mark:
    """One event on a :func:`timeline_plot` lane: time (s), outcome, drawn raised (a retry)."""

    lane: str
    t_s: float
    ok: bool
    raised: bool = False


def timeline_plot(
    marks: list[Mark],
    start: datetime | None,
    end_s: float,
    path: Path,
    run: RunLabel,
    what: str,
    labels: tuple[str, str] = ("delivered", "not delivered"),
    lane_name: str = "report (name)",
) -> Path:
    """Every event per lane: ``labels[0]`` (blue circle) or ``labels[1]`` (vermillion cross);
    raised marks are retries."""
    plt = pyplot()
    lanes = list(dict.fromkeys(m.lane for m in marks))
    fig, ax = plt.subplots(figsize=(8, 1.8 + 0.6 * max(1, len(lanes))))
    unit, xlabel = _time_axis(start, end_s, "; retries drawn raised" * any(m.raised for m in marks))
    for ok, color, marker, label in ((True, GOOD, "o", labels[0]), (False, BAD, "x", labels[1])):
        pts = [m for m in marks if m.ok is ok]
        if pts:
            ax.scatter(
                [m.t_s / unit for m in pts],
                [lanes.index(m.lane) + (0.2 if m.raised else 0.0) for m in pts],
                color=color,
                marker=marker,
                s=22,
                label=f"{label} ({len(pts)})",
            )
    if marks:
        ax.set_yticks(range(len(lanes)), lanes)
        ax.set_ylim(-0.6, len(lanes) - 0.2)
        ax.set_xlim(-0.01 * end_s / unit, 1.01 * end_s / unit)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize="small")
    else:
        no_data(ax, "nothing happened in this run")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(lane_name)
    ax.set_title(run_title(what, run))
    return save(fig, path, run)
