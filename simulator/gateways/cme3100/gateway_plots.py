"""Pictures of a ``cme3100`` run: readout success per round and push delivery over time."""

from __future__ import annotations

from pathlib import Path
from typing import Any

DELIVERED, FAILED = "#1a9850", "#d73027"  # green / red, told apart by shape as well


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=100, metadata={"Software": None})
    _plt().close(fig)
    return path


def rounds_plot(rounds: list, world: Any, path: Path, title: str) -> Path:
    """Meters read OK and failed in each readout round, against the day of the run."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 3.5))
    days = [r.started / 86400.0 for r in rounds]
    ax.step(days, [r.ok for r in rounds], where="post", color=DELIVERED, label="read OK")
    ax.step(days, [r.failed for r in rounds], where="post", color=FAILED, ls="--", label="failed")
    ax.set_ylim(bottom=0, top=max([r.meters for r in rounds], default=1) * 1.1 + 0.5)
    ax.set_xlabel(f"time since {world.start:%Y-%m-%d %H:%M} UTC (days)")
    ax.set_ylabel("meters per readout round")
    ax.set_title(f"Readout rounds: {title}")
    ax.legend(loc="lower right")
    return _save(fig, path)


def delivery_plot(attempts: list, world: Any, path: Path, title: str) -> Path:
    """Every push attempt per report: delivered (circle) or failed (cross), retries marked."""
    plt = _plt()
    reports = sorted({a.report for a in attempts})
    fig, ax = plt.subplots(figsize=(8, 1.2 + 0.6 * max(1, len(reports))))
    for y, name in enumerate(reports):
        mine = [a for a in attempts if a.report == name]
        for ok, color, marker, label in (
            (True, DELIVERED, "o", "delivered"),
            (False, FAILED, "x", "not delivered"),
        ):
            pts = [a for a in mine if a.ok is ok]
            ax.scatter(
                [a.t / 86400.0 for a in pts],
                [y + (0.15 if a.attempt else 0.0) for a in pts],
                color=color,
                marker=marker,
                s=18,
                label=label if y == 0 else None,
            )
    ax.set_yticks(range(len(reports)), reports)
    ax.set_xlabel(f"time since {world.start:%Y-%m-%d %H:%M} UTC (days); retries drawn raised")
    ax.set_title(f"Push report attempts: {title}")
    if attempts:
        ax.legend(loc="upper right", fontsize="small")
    return _save(fig, path)
