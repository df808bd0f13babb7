"""Shared test helpers: where the optional ../shared folder is, and small fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

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
