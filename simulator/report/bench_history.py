"""``meterbench bench history``: the saved bench results over commits as one PNG.

One line per benchmark, its normalised figure (best round / calibration loop, see
:mod:`simulator.report.benchmarks`) relative to its first saved value, one x position per
result file in commit-time order, so a slowdown shows as a step up whatever the machine was.
"""

from __future__ import annotations

from pathlib import Path

from simulator.report.benchmarks import Result, load


def results_in(folder: str | Path) -> list[Result]:
    """Every ``*.json`` result in ``folder``, oldest commit first (ties: file name).

    Raises FileNotFoundError if there is none, BenchFileError for an unreadable one."""
    files = sorted(Path(folder).glob("*.json"))
    if not files:
        raise FileNotFoundError(f"no *.json result in {folder}")
    return sorted((load(p) for p in files), key=lambda r: (r.time, r.path.name))


def plot(results: list[Result], out: str | Path, match: str = "") -> Path:
    """Draw the history of every benchmark whose name contains ``match``; return ``out``.

    Raises ValueError if no benchmark matches."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = sorted({n for r in results for n in r.figures if match in n})
    if not names:
        raise ValueError(f"no benchmark name contains {match!r}")
    fig, ax = plt.subplots(figsize=(10, 5))
    for name in names:
        points = [
            (i, r.figures[name].normalised) for i, r in enumerate(results) if name in r.figures
        ]
        first = points[0][1]
        ax.plot(
            [i for i, _ in points],
            [v / first for _, v in points],
            marker="o",
            label=name.replace("benches/", ""),
        )
    ax.axhline(1.2, color="grey", linestyle=":", linewidth=1)  # the compare threshold
    ax.set_xticks(range(len(results)))
    ax.set_xticklabels([r.commit[:8] or r.path.stem for r in results], rotation=45, ha="right")
    ax.set_ylabel("normalised (best round / calibration), relative to first")
    ax.set_title("meterbench benches over commits (lower is faster)")
    ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
