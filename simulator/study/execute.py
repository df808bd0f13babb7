"""Runs of a sweep as tasks on Dask distributed.

Each run is one task, :func:`run_point`: it builds the point's scenario document and runs it
through the one run skeleton (:func:`simulator.devices.run_scenario`) into a scratch folder,
and returns the figures picked from its summary. A run that raises is returned as ``failed``
with its error; a worker that dies mid-task has its task rescheduled by the Dask scheduler
(``distributed.scheduler.allowed-failures``, 3 by default), and a task that kills workers
more often than that comes back as failed. Neither stops the sweep.

Where tasks run: a :class:`distributed.LocalCluster` of one single-threaded worker process
per core by default, or the scheduler at ``scheduler`` (``tcp://HOST:8786``; else Dask's
``scheduler-address`` config). Workers of a real cluster need meterbench installed and the
scenario files (and the files they name) at the same paths.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from simulator.study.results import ResultsTable
from simulator.study.spec import Run, Sweep


class ClusterError(Exception):
    """The Dask scheduler cannot be reached or the local cluster cannot start."""


def pick(summary: dict[str, Any], parts: tuple[str, ...]) -> Any:
    """The value at ``parts`` in a summary; KeyError naming the keys there when missing."""
    node: Any = summary
    for i, part in enumerate(parts):
        if not isinstance(node, dict) or part not in node:
            where = ".".join(parts[:i]) or "summary.json"
            have = ", ".join(sorted(node)) if isinstance(node, dict) else type(node).__name__
            raise KeyError(f"{'.'.join(parts)}: {where} has no {part!r} (has: {have})")
        node = node[part]
    return node


def run_point(
    scenario_path: str, data: dict[str, Any], seed: int, figures: list[tuple[str, tuple]]
) -> dict[str, Any]:
    """One run (a Dask task): ``{"status", "error", "wall_s", "figures": {key: value}}``."""
    from simulator.devices import run_scenario
    from simulator.scenario import KeyLocator, RunOptions, ScenarioDoc, read_text

    t0 = time.perf_counter()
    try:
        path = Path(scenario_path)
        doc = ScenarioDoc(path, data, KeyLocator(read_text(path)))
        with tempfile.TemporaryDirectory(prefix="meterbench-point-") as tmp:
            outcome = run_scenario(doc, RunOptions(out_dir=Path(tmp), seed=seed, quiet=True))
        values = {key: pick(outcome.summary, parts) for key, parts in figures}
        status, error = "ok", ""
    except Exception as exc:  # a failed run keeps its error in the table, the sweep goes on
        values, status = {}, "failed"
        error = f"{type(exc).__name__}: {exc}".strip()
    return {
        "status": status,
        "error": error,
        "wall_s": time.perf_counter() - t0,
        "figures": values,
    }


@dataclass
class SweepProgress:
    """Prints ``[12/30 runs] 11 ok, 1 failed, 18 to go, about 0:42 left`` to ``stream`` (stderr),
    at most once a second and at the end. Time left = elapsed / finished x remaining."""

    total: int
    skipped: int = 0
    stream: TextIO | None = None
    enabled: bool = True

    def __post_init__(self) -> None:
        self.stream = self.stream or sys.stderr
        self.t0 = time.monotonic()
        self.ok = self.failed = 0
        self._last = 0.0

    def __call__(self, status: str) -> None:
        if status == "ok":
            self.ok += 1
        else:
            self.failed += 1
        now = time.monotonic()
        todo = self.total - self.skipped - self.ok - self.failed
        if not self.enabled or (todo and now - self._last < 1.0):
            return
        self._last = now
        finished = self.ok + self.failed
        left = (now - self.t0) / finished * todo
        done = self.skipped + finished
        text = (
            f"[{done:>{len(str(self.total))}}/{self.total} runs] {self.ok + self.skipped} ok, "
            f"{self.failed} failed, {todo} to go, about {_clock(left)} left"
        )
        print(text, file=self.stream, flush=True)


def _clock(seconds: float) -> str:
    s = int(round(seconds))
    return (
        f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"
    )


def local_cluster(workers: int | None = None):
    """A LocalCluster of ``workers`` (default: the machine's cores) single-threaded worker
    processes, without dashboard; ClusterError when it cannot start."""
    import logging

    import dask
    from distributed import LocalCluster

    # Dask starts workers with MALLOC_TRIM_THRESHOLD_=65536, which hands freed memory back to
    # the OS at once; the radio kernel allocates large arrays per step, and with it a run took
    # 1.7 times as long (docs/sweeps.md). The other variables (one BLAS thread) are kept.
    env = dict(dask.config.get("distributed.nanny.pre-spawn-environ", {}))
    env.pop("MALLOC_TRIM_THRESHOLD_", None)
    try:
        with dask.config.set({"distributed.nanny.pre-spawn-environ": env}):
            return LocalCluster(
                n_workers=workers or os.cpu_count() or 1,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                silence_logs=logging.ERROR,
            )
    except Exception as exc:  # Dask wraps start-up failures in many types
        raise ClusterError(f"the local Dask cluster did not start: {exc}") from exc


def connect(scheduler: str | None, workers: int | None):
    """``(client, cluster)``: a client of ``scheduler`` (or Dask's ``scheduler-address``
    config), else of a new :func:`local_cluster` (returned so the caller closes it)."""
    import dask
    from distributed import Client

    address = scheduler or dask.config.get("scheduler-address", None)
    if address:
        timeout = dask.config.get("distributed.comm.timeouts.connect")  # 30 s unless set
        try:
            return Client(address, timeout=timeout), None
        except Exception as exc:  # OSError, TimeoutError...
            raise ClusterError(f"cannot reach the Dask scheduler {address}: {exc}") from exc
    cluster = local_cluster(workers)
    return Client(cluster), cluster


def run_sweep(
    sweep: Sweep,
    table: ResultsTable,
    client,
    *,
    progress: SweepProgress | None = None,
    on_result: Callable[[Run, dict[str, Any]], None] | None = None,
) -> list[Run]:
    """Run every run of ``sweep`` that ``table`` has not finished on the Dask ``client``;
    each result goes to the table as it arrives. Returns the runs that ran.

    ``on_result(run, result)`` is called after each one is recorded. On an exception (Ctrl-C)
    the remaining tasks are cancelled, the table keeps what finished, and it propagates.
    """
    from distributed import as_completed

    done = table.finished()
    todo = [r for r in sweep.runs if r.key not in done]
    figures = [(f.key, f.parts) for f in sweep.figures]
    futures = {}
    for run in todo:
        future = client.submit(
            run_point,
            str(sweep.scenario_path),
            run.data,
            run.seed,
            figures,
            pure=False,  # a fresh task each time, also for a key a cancelled sweep used
        )
        futures[future] = run
    try:
        for future in as_completed(list(futures)):
            run = futures[future]
            if future.status == "finished":
                result = future.result()
            else:  # the task itself was lost: a worker died too often under it
                exc = future.exception()
                err = f"{type(exc).__name__}: {exc}".strip()
                result = {"status": "failed", "error": err, "wall_s": 0.0, "figures": {}}
            table.add(run, result["status"], result["error"], result["wall_s"], result["figures"])
            if progress is not None:
                progress(result["status"])
            if on_result is not None:
                on_result(run, result)
    finally:
        pending = [f for f in futures if not f.done()]
        if pending:
            client.cancel(pending)
        table.close()
    return todo
