"""Shared test configuration: hypothesis profiles and paths to the shared data sets."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("default", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile(
    "ci",
    deadline=None,
    max_examples=60,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
)
settings.load_profile("ci" if os.environ.get("CI") else "default")

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
DATA = SHARED / "data"


@pytest.fixture
def shared_data() -> Path:
    """The shared data folder (../shared/data); tests needing it skip outside CI if it is absent."""
    if not DATA.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"CI must have ../shared beside the clone; {DATA} is missing")
        pytest.skip(f"{DATA} is not available")
    return DATA
