"""Console output for the command line: a progress line and a two-column summary table."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TextIO


class Progress:
    """Prints ``[ 42%] text`` to ``stream`` (stderr): in place on a terminal, else every 10 %."""

    def __init__(self, stream: TextIO | None = None, enabled: bool = True) -> None:
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = self.stream.isatty()
        self._last_decile = -1

    def __call__(self, fraction: float, text: str = "") -> None:
        if not self.enabled:
            return
        fraction = min(max(fraction, 0.0), 1.0)
        if self.tty:
            self.stream.write(f"\r[{fraction * 100:5.1f}%] {text[:60]:<60}")
            if fraction >= 1.0:
                self.stream.write("\n")
            self.stream.flush()
            return
        decile = int(fraction * 10)
        if decile > self._last_decile:
            self._last_decile = decile
            self.stream.write(f"[{fraction * 100:5.1f}%] {text}\n")
            self.stream.flush()


def format_table(rows: Sequence[tuple[str, str]], title: str | None = None) -> str:
    """Render ``(label, value)`` rows as an aligned two-column text table."""
    if not rows:
        return ""
    width = max(len(label) for label, _ in rows)
    vwidth = max(len(str(v)) for _, v in rows)
    rule = "-" * (width + vwidth + 3)
    out = []
    if title:
        out += [title, rule]
    out += [f"{label:<{width}} | {value}" for label, value in rows]
    out.append(rule)
    return "\n".join(out)
