"""The small core every model uses: one world, its clock, seeded random streams and the trace."""

from simulator.core.rng import numpy_stream, stream
from simulator.core.trace import Trace, TraceEvent
from simulator.core.world import EPOCH, World

__all__ = ["EPOCH", "Trace", "TraceEvent", "World", "numpy_stream", "stream"]
