"""Shared fixtures. Real data comes from ``../shared/data`` beside the checkout (or ``$SKELACT_DATA``).

In CI (``CI=true``) missing data is an error, not a skip: a green run must have read the real files.
"""

from __future__ import annotations

import os
import shutil
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


@pytest.fixture(scope="session")
def penn_labels(tmp_path_factory, shared_data):
    """``copy(names)``: a fresh Penn Action source folder (``.../labels``) holding copies of the named label files
    (``"0001"`` for ``0001.mat``); skips when any of them is missing."""
    source = shared_data / "penn_action_labels" / "labels"

    def copy(names) -> Path:
        if not all((source / f"{name}.mat").is_file() for name in names):
            pytest.skip("Penn Action labels not available")
        folder = tmp_path_factory.mktemp("penn") / "labels"
        folder.mkdir()
        for name in names:
            shutil.copy(source / f"{name}.mat", folder)
        return folder

    return copy


@pytest.fixture(scope="session")
def render_penn_store(tmp_path_factory, penn_labels):
    """``render(clips, size)``: a ``penn-action-rendered`` store of the named Penn Action label files drawn at
    ``size`` px (needs PyAV and scipy; skips without the labels), for the tests of the RGB models."""
    def render(clips: tuple[str, ...], size: int):
        pytest.importorskip("av")
        pytest.importorskip("scipy.io")
        from skelact.data.prepare import prepare
        from skelact.data.store import SkeletonStore

        folder = penn_labels(clips)
        out = tmp_path_factory.mktemp("stores") / "rendered"
        prepare("penn-action-rendered", folder, out, workers=1, progress=False, size=size)
        return SkeletonStore(out)

    return render
