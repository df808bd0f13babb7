"""Allocator settings for a process that runs one scenario and exits (glibc only).

A city run allocates and frees hundreds of MB of NumPy temporaries. Under glibc's defaults an
array above the mmap threshold (dynamic, at most 32 MB) is mapped and unmapped each time, and
free heap memory above twice that threshold goes back to the system, so reusing it costs fresh
page faults: on the 100,000-meter city run (``fixtures/scenarios/stream-city-100k.toml``) about
0.2 s of system time of ~4 s, and most of the run-to-run spread. ``meterbench run`` keeps freed
memory instead; the peak RSS grows by about 10 % (the heap is not trimmed).

A fleet run also collects cyclic garbage less often (:func:`fewer_collections`).
"""

from __future__ import annotations

import ctypes
import gc
import sys
from collections.abc import Iterator
from contextlib import contextmanager

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


#: First threshold of CPython's cyclic garbage collector while a fleet runs (its default: 700).
GC_GEN0 = 20_000


@contextmanager
def fewer_collections(gen0: int = GC_GEN0) -> Iterator[None]:
    """Run the block with the collector's first threshold at ``gen0`` (container objects
    allocated and not yet freed between two young collections) instead of CPython's 700, and
    put the thresholds back afterwards (also on an error).

    A fleet frees nearly everything it allocates by reference counting, but keeps a large
    heap of long-lived objects that grows a little every simulated day: at the default, the
    NB-IoT bench fleet (2,000 modules, 7 days) spends 0.37 of 2.4 CPU-s in ~360 collections,
    most of it in the older generations, which walk that heap; at 20,000, 0.03 s in 8.
    The models use no finalisers, weak references or object ids that could outlive their
    object, so a run's results do not depend on when garbage is collected
    (``tests/test_core_memory.py`` runs a fleet both ways).
    """
    old = gc.get_threshold()
    gc.set_threshold(gen0, *old[1:])
    try:
        yield
    finally:
        gc.set_threshold(*old)
