"""simulator.core.memory: a run process keeps freed memory (glibc), so a second large array
reuses the first one's pages instead of faulting fresh ones in; a fleet runs with fewer
garbage collections and the same results."""

from __future__ import annotations

import gc
import subprocess
import sys
from pathlib import Path

import pytest

from simulator.core.memory import GC_GEN0, fewer_collections

#: Allocates, touches and frees a 96 MB array twice; prints the page faults of the second.
_CHILD = """
import resource, sys
import numpy as np
from simulator.core.memory import keep_freed_memory
np._core.multiarray._set_madvise_hugepage(False)  # 4 kB pages: faults count pages
took = keep_freed_memory() if sys.argv[1] == "keep" else None
def touch():
    a = np.ones(12 * 2**20)  # 96 MB: above glibc's largest dynamic mmap threshold
    del a
touch()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
touch()
print(took, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _second_faults(mode: str) -> tuple[str, int]:
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, mode], capture_output=True, text=True, check=True
    ).stdout.split()
    return out[0], int(out[1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt")
def test_a_second_large_array_reuses_freed_pages():
    took, kept = _second_faults("keep")
    _, default = _second_faults("default")
    assert took == "True"
    assert default > 20_000  # glibc's default maps the array afresh: ~24k pages fault in
    assert kept < default / 10


def test_fewer_collections_sets_the_first_threshold_and_puts_it_back():
    before = gc.get_threshold()
    with fewer_collections():
        assert gc.get_threshold() == (GC_GEN0, *before[1:])
        with fewer_collections(50):  # nested: the outer setting comes back
            assert gc.get_threshold()[0] == 50
        assert gc.get_threshold()[0] == GC_GEN0
    assert gc.get_threshold() == before
    with pytest.raises(RuntimeError), fewer_collections():
        raise RuntimeError("a run that fails")
    assert gc.get_threshold() == before


def _fleet_outcome(gen0: int | None) -> list:
    """A small NB-IoT fleet (trace off) with the collector at ``gen0`` (None: disabled)."""
    from simulator.core.trace import Trace
    from simulator.core.world import World
    from simulator.nbiot.runner import build
    from simulator.nbiot.scenario_model import NbiotScenario
    from simulator.scenario import load_toml

    doc = load_toml(Path(__file__).resolve().parent.parent / "fixtures/scenarios/nbiot-fleet.toml")
    doc.data["fleet"]["modules"] = 120
    doc.data["output"]["trace"] = "off"
    scn = doc.validate(NbiotScenario)
    world = World(scn.seed, trace=Trace(keep=False))
    server, modules = build(scn, world)
    end = 2.5 * 86400
    enabled = gc.isenabled()
    if gen0 is None:
        gc.disable()
    try:
        with fewer_collections(gen0 or GC_GEN0):
            world.run(end)
    finally:
        if enabled:
            gc.enable()
    out = [(sorted(m.summary(end).items()), list(m.at_server)) for m in modules]
    return [*out, server.uplinks, {k: list(v) for k, v in server.latencies.items()}]


def test_a_fleet_gives_the_same_results_however_often_garbage_is_collected():
    often = _fleet_outcome(10)  # a young collection every 10 objects kept
    assert often == _fleet_outcome(GC_GEN0) == _fleet_outcome(None)
    assert often[-2] > 120
