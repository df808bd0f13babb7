"""CMe3100 gateway simulation speed: simulated gateway-days per wall second.

Run: ``python3 -m pytest benches/bench_cme3100.py --benchmark-only -s``. Each case runs a
shipped scenario through the run skeleton (trace written to a file, every report parsed back
at the head-end): the 40-meter building (32 read, hourly readout, hourly HTTP and daily FTP and
e-mail reports) and the 250-meter building (installed by secondary search, hourly readout and
HTTP report). The figure is ``gateway_days_per_s`` in ``extra_info`` (printed with ``-s``).
"""

from __future__ import annotations

import resource
import time
from pathlib import Path

import pytest

from simulator.devices import run_scenario
from simulator.scenario import RunOptions

SCEN = Path(__file__).resolve().parents[1] / "fixtures" / "scenarios"


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
        peak_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    )
    print(f"\n{name}: {days:g} gateway-days in {wall:.2f} s = {days / wall:.3f} gateway-days/s")
    assert summary["exactly_once"]
