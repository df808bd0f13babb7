"""Shared test helpers: where the optional ../shared folder is, and small fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# Profiles (select with --hypothesis-profile=NAME):
# - ci (default): every property with a fixed derivation of examples (100 each), so a landing
#   does not depend on which random examples one run drew; the fuzz harness (test_fuzz.py)
#   stays well under a minute on 2 cores.
# - dev: the same with varying seeds, to explore locally.
# - deep: nightly fuzzing, a million examples a property (MBENCH_FUZZ_EXAMPLES overrides the
#   count for a shorter soak): `pytest tests/test_fuzz.py --hypothesis-profile=deep`.
# No deadline anywhere: a 2-core machine under load makes per-example timing meaningless
# (speed is measured in benches/, not asserted in tests).
settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("dev", deadline=None, print_blob=True)
settings.register_profile(
    "deep",
    max_examples=int(
        os.environ.get("MBENCH_FUZZ_EXAMPLES") or os.environ.get("MB_FUZZ_EXAMPLES", "1000000")
    ),
    deadline=None,
    print_blob=True,
    suppress_health_check=list(HealthCheck),
)
settings.load_profile("ci")

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
CORPUS = SHARED / "corpus"
FIXTURES = ROOT / "fixtures"


@pytest.fixture
def corpus_dir() -> Path:
    """../shared/corpus, or skip when this checkout stands alone."""
    if not CORPUS.is_dir():
        pytest.skip("../shared/corpus is absent (fresh clone outside the workplace)")
    return CORPUS
