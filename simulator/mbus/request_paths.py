"""How a run's M-Bus requests were carried out: the exact fast path or the SimPy event path.

Both summary models with a wired bus (``mbus``, ``cme3100``) report the two counts of
:meth:`simulator.mbus.bus.Bus.path_counts` under the same keys and descriptions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pydantic

if TYPE_CHECKING:
    from simulator.mbus.bus import Bus


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


def request_paths(bus: Bus) -> dict[str, int]:
    """``requests_direct`` and ``requests_event`` of ``bus`` (they sum to its requests)."""
    counts = bus.path_counts()
    return {"requests_direct": counts["direct"], "requests_event": counts["event"]}
