"""The bench's error type, in a module of its own so the pytest plugin can name it without
importing the bench (the plugin stays cheap for projects that never use it)."""

from __future__ import annotations


class BenchError(RuntimeError):
    """The bench cannot reach the device under test: its port cannot be opened or is gone, a
    receiver cannot bind, no operator answers. A fault of the bench, not of the device:
    the pytest plugin reports it as ERROR. The message names the rig, the part and the reason.
    """
