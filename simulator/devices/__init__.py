"""Device kinds: the registry, the run skeleton and the summary every run writes.

``meterbench run`` and the pytest plugin find a scenario's kind with :func:`registry.get` /
:func:`registry.for_document` and run it with :func:`skeleton.run_scenario`; see
:mod:`simulator.devices.registry` for what a kind provides.
"""

from simulator.devices.registry import (
    BuildContext,
    DeviceKind,
    Outcome,
    Simulation,
    for_document,
    get,
    kinds,
    names,
)
from simulator.devices.skeleton import RunOutcome, run_scenario

__all__ = [
    "BuildContext",
    "DeviceKind",
    "Outcome",
    "RunOutcome",
    "Simulation",
    "for_document",
    "get",
    "kinds",
    "names",
    "run_scenario",
]
