"""Shared fixtures. Real data comes from ``../shared/data`` beside the checkout (or ``$SKELACT_DATA``).

In CI (``CI=true``) missing data is an error, not a skip: a green run must have read the real files.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _data_root() -> Path:
    env = os.environ.get("SKELACT_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    root = _data_root()
    if not (root / "README.md").is_file():
        msg = f"real test data not found at {root} (set SKELACT_DATA or put shared/data beside the checkout)"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(msg)
        pytest.skip(msg)
    return root
