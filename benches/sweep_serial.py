"""The runs of a sweep one by one in this process, without Dask: the baseline that
``meterbench sweep`` is compared with in docs/sweeps.md.

Run: ``python3 benches/sweep_serial.py fixtures/sweeps/stream-receivers.toml``. Each run goes
through the same task function as on Dask (:func:`simulator.study.execute.run_point`: the run
skeleton into a scratch folder, figures picked from the summary); prints each run's wall time
and the total, and checks every run is ok.
"""

from __future__ import annotations

import sys
import time

from simulator.study.execute import run_point
from simulator.study.spec import load_sweep


def main(spec: str) -> int:
    sweep = load_sweep(spec)
    figures = [(f.key, f.parts) for f in sweep.figures]
    t0 = time.perf_counter()
    failed = 0
    for run in sweep.runs:
        result = run_point(str(sweep.scenario_path), run.data, run.seed, figures)
        failed += result["status"] != "ok"
        print(f"point {run.point} seed {run.seed}: {result['wall_s']:.2f} s {result['status']}")
    total = time.perf_counter() - t0
    print(f"{len(sweep.runs)} runs one by one: {total:.1f} s wall, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
