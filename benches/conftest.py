"""Calibration for regression tracking (docs/benchmarks.md).

A fixed pure-Python workload (:func:`calibration_loop`: integer arithmetic, dict and list
work, attribute access and calls, the mix a discrete-event simulation does) is timed at the
start and at the end of the bench run; its best time is the run's ``calibration_s``. Every
benchmark in the JSON written by ``--benchmark-json`` gets ``extra_info.calibration_s`` and
``extra_info.normalised`` = its best round (``stats.min``) / ``calibration_s``: best against
best, the two figures least disturbed by other load on a shared machine, so a figure compared
across runs (``meterbench bench compare``) moves with the code, not with the machine. The
per-round samples (``stats.data``) are dropped so a saved file stays a few kB.
"""

from __future__ import annotations

import time

#: Repetitions of the inner loop (about 0.1 s on the project's 2-core machine).
CALIBRATION_N = 60_000
#: Timed repeats at each end of the run; the best counts (least disturbed by other load).
CALIBRATION_REPEATS = 5

_times: list[float] = []


class _Slot:
    __slots__ = ("value",)

    def __init__(self, value: int) -> None:
        self.value = value


def calibration_loop(n: int = CALIBRATION_N) -> int:
    """The fixed workload; returns a checksum so nothing is optimised away."""
    table: dict[int, int] = {}
    queue: list[_Slot] = []
    acc = 0
    for i in range(n):
        s = _Slot(i * 7 % 1009)
        queue.append(s)
        table[s.value] = table.get(s.value, 0) + 1
        if len(queue) > 64:
            acc += queue.pop(0).value
        acc ^= hash((i, s.value)) & 0xFFFF
    return acc + len(table)


def _measure() -> None:
    for _ in range(CALIBRATION_REPEATS):
        t0 = time.perf_counter()
        calibration_loop()
        _times.append(time.perf_counter() - t0)


def pytest_sessionstart(session) -> None:
    _measure()


def calibration_s() -> float:
    """Best calibration time of this run, s (measured at the start, and at the end once the
    JSON is written)."""
    return min(_times)


def pytest_benchmark_update_json(config, benchmarks, output_json) -> None:
    _measure()  # the end of the run: the machine's load may have changed meanwhile
    cal = calibration_s()
    output_json.setdefault("machine_info", {})["calibration_s"] = cal
    for bench in output_json.get("benchmarks", []):
        bench["stats"].pop("data", None)  # every round's time: megabytes per file, not needed
        extra = bench.setdefault("extra_info", {})
        extra["calibration_s"] = round(cal, 6)
        extra["normalised"] = round(bench["stats"]["min"] / cal, 6)
