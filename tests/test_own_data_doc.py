"""docs/own-data.md stays runnable (issue 27, item 9): its array-making script, run on a slice of the real NW-UCLA
files, writes what the page shows, and every ``skelact`` command on the page parses with today's CLI."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

from skelact.cli import build_parser

REPO = Path(__file__).resolve().parents[1]
PAGE = (REPO / "docs" / "own-data.md").read_text(encoding="utf-8")
CLIPS = ["a01_s01_e00_v01", "a01_s01_e00_v02", "a05_s01_e00_v03"]


def test_the_script_writes_the_arrays_the_page_shows(shared_data, tmp_path):
    script = re.search(r"```python\n(.*?)```", PAGE, re.S).group(1)
    (tmp_path / "make_arrays.py").write_text(script)
    data = tmp_path / "data" / "nw_ucla" / "all_sqe"
    data.mkdir(parents=True)
    for name in CLIPS:
        shutil.copy(shared_data / "nw_ucla" / "all_sqe" / f"{name}.json", data)
    done = subprocess.run([sys.executable, "make_arrays.py"], cwd=tmp_path, capture_output=True, text=True,
                          env={"SKELACT_DATA": str(tmp_path / "data"), "PATH": ""}, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "3 clips in my_clips/\n"
    lines = (tmp_path / "my_clips" / "labels.csv").read_text().splitlines()
    assert lines[:3] == PAGE.split("$ head -3 my_clips/labels.csv\n")[1].splitlines()[:3]  # as the page shows
    assert lines[3] == "a05_s01_e00_v03,sit down,1,test"
    clip = np.load(tmp_path / "my_clips" / "a05_s01_e00_v03.npy")
    assert clip.dtype == np.float32 and clip.shape[1:] == (20, 3)


def test_every_command_on_the_page_parses():
    commands = [line[2:] for line in PAGE.splitlines() if line.startswith("$ skelact ")]
    assert len(commands) == 6  # two trainings: a shipped config on the store, then the fast preset
    parser = build_parser()
    for command in commands:
        argv = shlex.split(command.replace("$REPO", str(REPO)))[1:]
        args, unknown = parser.parse_known_args(argv)
        assert all("=" in u for u in unknown), (command, unknown)  # key=value overrides only
    assert {shlex.split(c)[1] for c in commands} == {"prepare", "info", "train", "predict", "export"}
