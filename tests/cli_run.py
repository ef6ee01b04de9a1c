"""Running the ``skelact`` command in-process from a test, and the one-line error every user mistake must give."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import pytest

from skelact.cli import main


def session_store_cache(tmp_path_factory) -> Path:
    """The session's store cache: every test module that trains on a real data set prepares its store here, so each
    store is prepared once per session."""
    return tmp_path_factory.getbasetemp() / "skelact-store-cache"


@contextmanager
def real_data_env(tmp_path_factory, data_root: Path | None = None, **variables: str):
    """``SKELACT_DATA`` at ``data_root`` (when given), ``SKELACT_CACHE`` at the session's store cache and any further
    environment ``variables``, for the duration of the block (a module- or session-scoped fixture cannot use the
    function-scoped ``monkeypatch``)."""
    with pytest.MonkeyPatch.context() as mp:
        if data_root is not None:
            mp.setenv("SKELACT_DATA", str(data_root))
        mp.setenv("SKELACT_CACHE", str(session_store_cache(tmp_path_factory)))
        for name, value in variables.items():
            mp.setenv(name, value)
        yield mp


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    """``(exit code, stdout, stderr)`` of ``skelact ARGV...`` (pytest's ``capsys`` captures the streams)."""
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(capsys, *argv) -> str:
    """The error line of ``skelact ARGV...``, asserting exit code 2 and exactly one ``skelact: error:`` line."""
    code, out, err = run_cli(capsys, *argv)
    lines = err.strip().splitlines()
    assert code == 2, (out, err)
    assert len(lines) == 1 and lines[0].startswith("skelact: error: "), err
    return lines[0]
