"""Shared pytest fixtures.

``../shared`` (beside the checkout) holds real TIMIT speech for the tests that
need it; those tests skip cleanly when it is absent.
"""

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
TIMIT_SAMPLE = SHARED / "data" / "timit-sample"


@pytest.fixture(scope="session")
def timit_sample_dir() -> Path:
    """The NLTK-layout TIMIT sample in ../shared, or skip."""
    if not (TIMIT_SAMPLE / "dr1-fvmh0").is_dir():
        pytest.skip("../shared/data/timit-sample is not available")
    return TIMIT_SAMPLE
