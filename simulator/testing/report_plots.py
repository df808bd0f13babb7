"""The timing histogram per baud of a suite report, as PNG bytes (matplotlib, Agg backend).

Input: the measurements of a JSON test record (:mod:`simulator.testing.plugin`). Every
measurement in seconds is a timing measurement; its samples (``samples``, every gap the test
saw) or else its one value go into the histogram of its baud (``budget["baud"]``, else the
DUT's M-Bus baud from the record). Lower and upper limits are drawn as dashed lines.
"""

from __future__ import annotations

import io
from typing import Any

TIME_UNITS = {"s": 1000.0, "ms": 1.0}  # unit -> factor to ms


def timing_by_baud(record: dict[str, Any]) -> dict[int, list[tuple[str, list[float], list]]]:
    """``{baud: [(measurement name, samples in ms, limits in ms), ...]}`` from a test record."""
    default = record.get("device", {}).get("mbus", {}).get("baud")
    out: dict[int, list[tuple[str, list[float], list]]] = {}
    for t in record.get("tests", []):
        for m in t.get("measurements", []):
            factor = TIME_UNITS.get(m.get("unit", ""))
            if factor is None:
                continue
            baud = (m.get("budget") or {}).get("baud", default)
            if baud is None:
                continue
            raw = m.get("samples") or [m["value"]]
            limits = [x * factor for x in (m.get("low"), m.get("high")) if x is not None]
            out.setdefault(int(baud), []).append(
                (m["name"], [float(x) * factor for x in raw], limits)
            )
    return out


def histogram_png(baud: int, series: list[tuple[str, list[float], list]]) -> bytes:
    """One PNG: a histogram (ms) per measurement of ``baud`` bit/s, limits dashed."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 1.6 + 0.9 * len(series)), dpi=90)
    axes = fig.subplots(len(series), 1, squeeze=False)[:, 0]
    for ax, (name, samples, limits) in zip(axes, series, strict=True):
        ax.hist(samples, bins=min(30, max(5, len(samples))), color="#3b6ea8")
        for x in limits:
            ax.axvline(x, color="#b00020", linestyle="--", linewidth=1)
        ax.set_title(f"{name} (n={len(samples)})", fontsize=9, loc="left")
        ax.tick_params(labelsize=8)
    axes[-1].set_xlabel("ms", fontsize=8)
    fig.suptitle(f"timing at {baud} bit/s", fontsize=10)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
