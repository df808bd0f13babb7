"""How a run's M-Bus requests and readouts were carried out: the exact fast path or the SimPy
event path.

Both summary models with a wired bus (``mbus``, ``cme3100``) report the counts of
:meth:`simulator.mbus.bus.Bus.path_counts` and :attr:`simulator.mbus.master.Master.readout_paths`
under the same keys and descriptions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pydantic

if TYPE_CHECKING:
    from simulator.mbus.master import Master


def direct_field() -> Any:
    return pydantic.Field(
        description="requests carried out without a SimPy event up to the next request "
        "(the exact fast path, World.sleep)"
    )


def event_field() -> Any:
    return pydantic.Field(
        description="requests that needed the SimPy event loop (another process or the "
        "run's end fell in between, or --event-path)"
    )


def fast_readouts_field() -> Any:
    return pydantic.Field(
        description="readouts computed on the exact fast path: proven clean and alone before "
        "they began, carried out without SimPy events (simulator.mbus.fast_readout)"
    )


def event_readouts_field() -> Any:
    return pydantic.Field(
        description="readouts carried out step by step on the event path (not provably "
        "clean: faults, twins, replies on the line, another process due, or --event-path)"
    )


def request_paths(master: Master) -> dict[str, int]:
    """``requests_direct`` and ``requests_event`` of the master's bus (they sum to its
    requests), ``readouts_fast`` and ``readouts_event`` of ``master`` (they sum to the
    readouts it began)."""
    counts = master.bus.path_counts()
    return {
        "requests_direct": counts["direct"],
        "requests_event": counts["event"],
        "readouts_fast": master.readout_paths["fast"],
        "readouts_event": master.readout_paths["event"],
    }
