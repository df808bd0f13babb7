"""CMe3100 gateway simulation speed: simulated gateway-days per wall second.

Run: ``python3 -m pytest benches/bench_cme3100.py --benchmark-only -s``. Each case runs a
shipped scenario through the run skeleton (trace written to a file, every report parsed back
at the head-end): the 40-meter building (32 read, hourly readout, hourly HTTP and daily FTP and
e-mail reports) and the 250-meter building (installed by secondary search, hourly readout and
HTTP report). The figure is ``gateway_days_per_s`` in ``extra_info`` (printed with ``-s``).

The year (issue 15: 250 meters x 365 days with hourly reports <= 20 s):
``test_year_250_meters`` runs ``cme3100-250`` for 1 day and for 2 days; the second day
(24 hourly rounds of 250 readouts, 24 hourly HTTP reports, one daily FTP report) is the
steady per-day cost, so the year is ``t(1 d) + 364 x (t(2 d) - t(1 d))``. That is a linear
model: it leaves out growth of the value database over the year (the peak RSS of a 365-day
run is not measured here). Wall and CPU figures (``*_cpu``: steadier on a shared machine).

The whole year, not extrapolated: ``MBENCH_CME3100_YEAR=1`` runs ``test_whole_year`` (8760 h
of ``cme3100-250`` at ``--trace-level summary``, several minutes), with its peak RSS.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from scenario_runs import SCENARIOS as SCEN
from scenario_runs import peak_rss_mb, timed_run, whole_year

from simulator.devices import run_scenario
from simulator.scenario import RunOptions


@pytest.mark.parametrize(
    "name, hours", [("cme3100-building", 48.0), ("cme3100-250", 24.0)], ids=["40", "250"]
)
def test_gateway_days_per_second(benchmark, tmp_path, name, hours):
    runs = iter(range(10**6))

    def one() -> dict:
        out = tmp_path / f"run{next(runs)}"
        return run_scenario(SCEN / f"{name}.toml", RunOptions(out, hours=hours)).summary

    t0 = time.perf_counter()
    summary = benchmark.pedantic(one, rounds=1, iterations=1)
    wall = time.perf_counter() - t0
    days = hours / 24.0
    benchmark.extra_info.update(
        gateway_days_per_s=round(days / wall, 3),
        meters=summary["meters_installed"],
        readouts=summary["readouts_ok"] + summary["readouts_failed"],
        peak_rss_mb=peak_rss_mb(),
    )
    print(f"\n{name}: {days:g} gateway-days in {wall:.2f} s = {days / wall:.3f} gateway-days/s")
    assert summary["exactly_once"]


def _run(out: Path, hours: float, level: str = "all") -> tuple[float, float, dict]:
    """Wall and CPU time (s) of one ``cme3100-250`` run at trace ``level``, and its summary."""
    return timed_run("cme3100-250", out, hours, level)


@pytest.mark.parametrize("level", ["all", "summary"])
def test_year_250_meters(benchmark, tmp_path, level):
    """The year with the full trace (``all``) and with none (``summary``: the report files,
    CSVs and summary.json only, ``meterbench run --trace-level summary``)."""
    wall1, cpu1, _ = _run(tmp_path / "day1", 24.0, level)
    box = {}

    def two_days():
        box["wall"], box["cpu"], box["summary"] = _run(tmp_path / "day2", 48.0, level)

    benchmark.pedantic(two_days, rounds=1, iterations=1)
    summary = box["summary"]
    assert summary["meters_installed"] == 250 and summary["exactly_once"]
    day, day_cpu = box["wall"] - wall1, box["cpu"] - cpu1
    year, year_cpu = wall1 + 364 * day, cpu1 + 364 * day_cpu
    benchmark.extra_info.update(
        gateway_days_per_s=round(1 / day, 3),
        gateway_days_per_cpu_s=round(1 / day_cpu, 3),
        year_s_extrapolated=round(year, 1),
        year_cpu_s_extrapolated=round(year_cpu, 1),
        readouts_per_day=(summary["readouts_ok"] + summary["readouts_failed"]) // 2,
        requests_direct=summary["requests_direct"],
        requests_event=summary["requests_event"],
        peak_rss_mb=peak_rss_mb(),
    )
    print(
        f"\ncme3100-250 (trace {level}): {1 / day:.3f} gateway-days/s, year extrapolated {year:.0f} s "
        f"(target <= 20 s); CPU: {1 / day_cpu:.3f} gateway-days/s, year {year_cpu:.0f} s"
    )


@pytest.mark.skipif(
    os.environ.get("MBENCH_CME3100_YEAR") != "1", reason="MBENCH_CME3100_YEAR=1: minutes"
)
@pytest.mark.timeout(3600)  # over the suite's 300 s per test
def test_whole_year(benchmark, tmp_path):
    """``cme3100-250`` for 8760 h at ``--trace-level summary`` (module doc)."""
    summary = whole_year(benchmark, "cme3100-250", tmp_path / "year")
    assert summary["meters_installed"] == 250 and summary["exactly_once"]
    benchmark.extra_info["readouts"] = summary["readouts_ok"] + summary["readouts_failed"]
