"""Allocator settings for a process that runs one scenario and exits (glibc only).

A city run allocates and frees hundreds of MB of NumPy temporaries. Under glibc's defaults an
array above the mmap threshold (dynamic, at most 32 MB) is mapped and unmapped each time, and
free heap memory above twice that threshold goes back to the system, so reusing it costs fresh
page faults: on the 100,000-meter city run (``fixtures/scenarios/stream-city-100k.toml``) about
0.2 s of system time of ~4 s, and most of the run-to-run spread. ``meterbench run`` keeps freed
memory instead; the peak RSS grows by about 10 % (the heap is not trimmed).
"""

from __future__ import annotations

import ctypes
import sys

# mallopt parameters (glibc malloc.h)
_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3

#: (parameter, value in bytes): arrays up to 1 GiB come from the heap, up to 1 GiB of free
#: heap is kept, and the heap grows 64 MiB at a time.
SETTINGS = ((_M_MMAP_THRESHOLD, 1 << 30), (_M_TRIM_THRESHOLD, 1 << 30), (_M_TOP_PAD, 64 << 20))


def keep_freed_memory() -> bool:
    """Apply :data:`SETTINGS` with ``mallopt`` (process-wide, for the rest of the process).

    Returns True when the C library took every setting, False where there is no glibc
    ``mallopt`` (macOS, musl: nothing changes). Results of a run never depend on it.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library this process runs on
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return all([mallopt(param, value) == 1 for param, value in SETTINGS])
