"""The run skeleton: what every ``meterbench run`` does the same way, whatever the kind.

1. load the scenario file and find its kind in the registry;
2. validate it (every problem at once, with file:line) before anything is built;
3. resolve seed and duration (the file's, unless the run overrides them);
4. open the trace (``trace.jsonl`` or none, as the kind says for this scenario) and make the
   seeded :class:`~simulator.core.world.World` (every random stream derives from the seed);
5. build the kind's simulation and run it in steps with progress;
6. collect the kind's figures, draw its plots, and write ``summary.json``: the common keys of
   :class:`~simulator.devices.summary.CommonSummary` followed by the kind's figures, checked
   against the kind's summary model before it is written;
7. write ``report.html``, the folder as one static page (:mod:`simulator.report.page`).

Kinds never open the trace or summary files themselves; CSV files go through
:meth:`BuildContext.csv` so the skeleton closes them even when a run fails.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simulator.core.trace import FRAME_KINDS, Trace
from simulator.core.world import World
from simulator.devices import registry
from simulator.devices.summary import (
    SUMMARY_SCHEMA_VERSION,
    check,
    file_sha256,
    meterbench_version,
)
from simulator.report.page import write_page
from simulator.scenario import RunOptions, ScenarioDoc, load_toml

#: Progress steps of a run (the world runs in this many slices; a kind may ignore them).
STEPS = 20


@dataclass
class RunOutcome:
    """A finished run: ``summary`` (what summary.json holds), console ``table``, ``files``,
    and the finished ``simulation`` (the kind's object, for suites that inspect the world)."""

    summary: dict[str, Any]
    table: list[tuple[str, str]] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    simulation: Any = None


def run_scenario(scenario: str | Path | ScenarioDoc, options: RunOptions) -> RunOutcome:
    """Run one scenario file through its kind (see the module doc); return its outcome.

    ``options.out_dir`` is created. Raises :class:`~simulator.scenario.ScenarioError` for a
    file that cannot be read, has no known ``kind`` or does not validate; nothing is built or
    written in that case.
    """
    doc = scenario if isinstance(scenario, ScenarioDoc) else load_toml(scenario)
    device = registry.for_document(doc)
    sc = device.load(doc)
    seed, hours = options.resolve(sc.seed, sc.hours)
    out = Path(options.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    level = device.trace(sc)
    trace_path = out / "trace.jsonl"
    write = level != "off" and options.trace_level != "summary"
    if not write:
        trace_path.unlink(missing_ok=True)  # no stale trace from an earlier run in this folder
    t0 = time.perf_counter()  # wall time of the run, for the summary only
    sink = trace_path.open("w", encoding="utf-8", newline="\n") if write else None
    kinds = FRAME_KINDS if options.trace_level == "frames" else None
    trace = Trace(keep=level == "keep", sink=sink, write_kinds=kinds)
    start = device.start(sc)
    world = World(seed, trace=trace) if start is None else World(seed, start=start, trace=trace)
    world.fast_path = not options.event_path
    ctx = registry.BuildContext(doc, sc, seed, hours, world, out, options)
    try:
        options.report(0.0, f"building the {device.name} world")
        sim = device.build(ctx)
        end = ctx.end
        for k in range(1, STEPS + 1):
            sim.advance(end * k / STEPS, k == STEPS)
            options.report(k / STEPS, sim.status())
        result = sim.finish()
    finally:
        ctx.close()
        if sink is not None:
            trace.flush()
            sink.close()
    files = ([] if sink is None else [trace_path]) + ctx.files + result.files
    if device.plots and device.plots_enabled(sc):
        files += sim.plots(out)
    summary: dict[str, Any] = {
        "schema_version": SUMMARY_SCHEMA_VERSION,
        "kind": device.name,
        "scenario": ctx.name,
        "scenario_path": str(doc.path),
        "scenario_sha256": file_sha256(doc.path),
        "seed": seed,
        "sim_seconds": hours * 3600.0,
        "wall_seconds": round(time.perf_counter() - t0, 3),
        "trace_events": world.trace.count,
        "meterbench_version": meterbench_version(),
    }
    clash = sorted(set(result.figures) & set(summary))
    if clash:
        raise RuntimeError(f"kind {device.name!r} reports common summary keys {clash}")
    summary.update(result.figures)
    check(summary)  # a kind that drifts from its declared summary fails here, not downstream
    summary_path = out / "summary.json"
    summary_path.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    table = [*result.table, ("trace events", str(world.trace.count))]
    files += [write_page(out, rows=table), summary_path]  # the page shows every file here
    return RunOutcome(summary=summary, table=table, files=files, simulation=sim)
