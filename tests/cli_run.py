"""Running the ``skelact`` command in-process from a test, and the one-line error every user mistake must give."""

from __future__ import annotations

from skelact.cli import main


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
