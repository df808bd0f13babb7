"""Timed runs of a shipped scenario, shared by the year benches (bench_bus, bench_cme3100).

A run goes through the run skeleton (:func:`simulator.devices.run_scenario`) as
``meterbench run`` does; its wall and CPU seconds are measured around the whole run, plotting
included. The first run in a process also pays one-off imports (matplotlib and the device
kinds' modules, ~0.5 s), which would land in whichever run comes first and skew a difference
of two runs, so :func:`timed_run` first makes one short untimed run per process. CPU seconds
(``time.process_time``) are the steadier figure on a shared machine.
"""

from __future__ import annotations

import resource
import tempfile
import time
from pathlib import Path

from simulator.devices import run_scenario
from simulator.scenario import RunOptions

SCENARIOS = Path(__file__).resolve().parents[1] / "fixtures" / "scenarios"


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far (MB, from ``ru_maxrss`` in KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


_warm: set[str] = set()


def warm_up(path: Path) -> None:
    """One short untimed run of ``path`` per process (its imports, caches and plots)."""
    if str(path) not in _warm:
        with tempfile.TemporaryDirectory() as tmp:
            run_scenario(path, RunOptions(Path(tmp), hours=1.0, trace_level="summary"))
        _warm.add(str(path))


def timed_run(
    scenario: str | Path, out: Path, hours: float, level: str = "all"
) -> tuple[float, float, dict]:
    """Wall seconds, CPU seconds and ``summary.json`` of one run of ``scenario`` (a shipped
    scenario's name or a path) for ``hours`` at trace ``level`` into ``out``, after
    :func:`warm_up`."""
    path = Path(scenario) if str(scenario).endswith(".toml") else SCENARIOS / f"{scenario}.toml"
    warm_up(path)
    t0, c0 = time.perf_counter(), time.process_time()
    summary = run_scenario(path, RunOptions(out, hours=hours, trace_level=level)).summary
    return time.perf_counter() - t0, time.process_time() - c0, summary


def whole_year(benchmark, scenario: str, out: Path) -> dict:
    """Run ``scenario`` for 8760 h at ``--trace-level summary`` once under ``benchmark``
    (``extra_info``: ``year_s``, ``year_cpu_s``, ``peak_rss_mb``); returns its summary."""
    box = {}

    def year():
        box["wall"], box["cpu"], box["summary"] = timed_run(scenario, out, 8760.0, "summary")

    benchmark.pedantic(year, rounds=1, iterations=1)
    benchmark.extra_info.update(
        year_s=round(box["wall"], 1), year_cpu_s=round(box["cpu"], 1), peak_rss_mb=peak_rss_mb()
    )
    print(f"\n{scenario} whole year (trace summary): {box['wall']:.0f} s, {box['cpu']:.0f} CPU-s")
    return box["summary"]
