"""simulator.core.memory: a run process keeps freed memory (glibc), so a second large array
reuses the first one's pages instead of faulting fresh ones in."""

from __future__ import annotations

import subprocess
import sys

import pytest

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
