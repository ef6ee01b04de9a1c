"""One writer per place: the lock of skelact.locking, against a second holder in this process, in another live
process, and after its holder was killed."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap

import pytest

from skelact.errors import DiskFullError, disk_full_error, is_disk_full
from skelact.locking import LockedError, lock_beside, lock_dir


def test_second_writer_in_same_process_is_refused_and_named(tmp_path):
    first = lock_dir(tmp_path, "run directory").acquire()
    with pytest.raises(LockedError) as caught:
        lock_dir(tmp_path, "run directory").acquire()
    message = str(caught.value)
    assert str(tmp_path) in message and "run directory" in message and f"process {os.getpid()}" in message
    first.release()
    lock_dir(tmp_path, "run directory").acquire().release()  # free again once released


def _hold_in_child(lock_file_dir, ready_file):
    code = textwrap.dedent(f"""
        import pathlib, time
        from skelact.locking import lock_dir
        lock = lock_dir({str(lock_file_dir)!r}, "run directory").acquire()
        pathlib.Path({str(ready_file)!r}).write_text("held")
        time.sleep(60)
    """)
    return subprocess.Popen([sys.executable, "-c", code])


def _wait_for(path, timeout=20.0):
    import time
    end = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < end, "child never took the lock"
        time.sleep(0.05)


def test_live_holder_in_another_process_blocks_and_kill_9_frees(tmp_path):
    ready = tmp_path / "ready"
    child = _hold_in_child(tmp_path, ready)
    try:
        _wait_for(ready)
        with pytest.raises(LockedError, match=f"process {child.pid}"):
            lock_dir(tmp_path, "run directory").acquire()
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    # the dead holder's file is still there (stale), and is taken over
    assert (tmp_path / ".skelact.lock").exists()
    with lock_dir(tmp_path, "run directory") as lock:
        assert lock.held


def test_lock_beside_a_store_that_does_not_exist_yet(tmp_path):
    target = tmp_path / "stores" / "mine"
    with lock_beside(target, "store"):
        assert not target.exists()
        with pytest.raises(LockedError, match="store"):
            lock_beside(target, "store").acquire()


def test_disk_full_error_names_path_and_sizes(tmp_path):
    error = OSError(28, "No space left on device")
    assert is_disk_full(error) and not is_disk_full(OSError(13, "Permission denied"))
    message = str(disk_full_error(tmp_path / "missing" / "file.npy", needed_bytes=12_500_000))
    assert isinstance(disk_full_error(tmp_path), DiskFullError)
    assert "file.npy" in message and "12.5 MB needed" in message and re.search(r"[0-9.]+ (bytes|KB|MB|GB) free", message)
    assert "about 640 bytes needed" in str(disk_full_error(tmp_path, needed_bytes=640))
    assert "about 2.5 KB needed" in str(disk_full_error(tmp_path, needed_bytes=2_500))


def test_cli_broken_pipe_is_quiet_and_a_full_disk_is_one_line(monkeypatch, capsys):
    """BrokenPipeError is an OSError: the CLI's last-resort full-disk handler must not catch it first."""
    import skelact.cli as cli
    from skelact.commands import layouts

    def raises(error):
        def command(args):
            raise error
        return command

    monkeypatch.setattr(layouts, "run", raises(BrokenPipeError(32, "Broken pipe")))
    monkeypatch.setattr(os, "dup2", lambda *a: None)  # keep pytest's own stdout
    monkeypatch.setattr(cli.sys, "stdout", type("Out", (), {"fileno": lambda self: 1})())
    assert cli.main(["layouts"]) == 0
    monkeypatch.setattr(layouts, "run", raises(OSError(28, "No space left on device", "/tmp/x.ckpt")))
    assert cli.main(["layouts"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "/tmp/x.ckpt" in err[0] and "no space left" in err[0]
