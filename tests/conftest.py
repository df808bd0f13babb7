"""Shared test helpers: where the optional ../shared folder is, and small fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

# CI (CI=true) runs every property with a fixed derivation of examples, so a landing does not
# depend on which random examples one run happened to draw; locally the seeds vary, to explore.
# No deadline anywhere: a 2-core machine under load makes per-example timing meaningless
# (speed is measured in benches/, not asserted in tests).
settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("dev", deadline=None, print_blob=True)
settings.load_profile("ci" if os.environ.get("CI") else "dev")

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
