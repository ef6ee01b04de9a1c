"""Each format is documented once (issue 27, item 1): ``docs/formats/<format>.md`` is what ``skelact formats
FORMAT`` prints, both from the reader's docstring; and the arrays page's example, built from real NW-UCLA joints,
prepares into the store the page says it does."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from skelact.cli import main
from skelact.commands.formats import format_description, format_page
from skelact.data.sources import FORMATS
from skelact.data.store import SkeletonStore

DOCS = Path(__file__).resolve().parents[1] / "docs" / "formats"


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_the_page_is_what_the_command_prints(fmt, capsys):
    assert main(["formats", fmt]) == 0
    printed = capsys.readouterr().out
    assert printed == format_page(fmt)
    page = DOCS / f"{fmt}.md"
    assert page.is_file(), f"renew it: skelact formats {fmt} > docs/formats/{fmt}.md"
    assert page.read_text(encoding="utf-8") == printed, f"renew it: skelact formats {fmt} > docs/formats/{fmt}.md"
    assert ":func:`" not in printed and "::\n" not in printed  # the reST markup is made plain


def test_the_list_and_an_unknown_format(capsys):
    assert main(["formats"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines[:len(FORMATS)]] == list(FORMATS)
    assert main(["formats", "csv-of-joints"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "unknown format 'csv-of-joints'" in err and "arrays" in err


#: NW-UCLA joints (all_sqe order, skeleton/layouts/nw_ucla20.yaml) standing in for the example's hip and hands
HIP, LEFT_HAND, RIGHT_HAND = 0, 7, 11
EXAMPLE_ROWS = [["clip1", "wave", "1", "train"], ["clip2", "sit", "2", "train"], ["clip3", "wave", "3", "test"]]


def real_xy(shared_data: Path, clip: str, frames: int) -> np.ndarray:
    doc = json.loads((shared_data / "nw_ucla" / "all_sqe" / f"{clip}.json").read_text())
    return np.asarray(doc["skeletons"], dtype=np.float32)[:frames, [HIP, LEFT_HAND, RIGHT_HAND], :2]


def test_the_arrays_example_prepares_as_documented(shared_data, tmp_path):
    description = format_description("arrays")
    for row in [["name", "label", "subject", "split"], *EXAMPLE_ROWS]:  # the CSV below is the page's own
        assert ",".join(row) in description
    layout = tmp_path / "my_layout.yaml"
    layout.write_text("name: my_layout\njoints: [hip, l_hand, r_hand]\nbones: [[l_hand, hip], [r_hand, hip]]\n"
                      "center: hip\n")
    clip1 = real_xy(shared_data, "a01_s01_e00_v01", 40)
    clip2 = np.stack([real_xy(shared_data, "a02_s01_e00_v03", 25), real_xy(shared_data, "a03_s03_e02_v01", 25)])
    clip3 = real_xy(shared_data, "a04_s01_e00_v01", 31)
    clip3[5, 2] = 0.0  # the right hand missing in frame 5
    assert (clip1.shape, clip2.shape, clip3.shape) == ((40, 3, 2), (2, 25, 3, 2), (31, 3, 2))

    per_file = tmp_path / "my_clips"
    per_file.mkdir()
    for name, arr in zip(("clip1", "clip2", "clip3"), (clip1, clip2, clip3)):
        np.save(per_file / f"{name}.npy", arr)
    with open(per_file / "labels.csv", "w", newline="") as f:
        csv.writer(f).writerows([["name", "label", "subject", "split"], *EXAMPLE_ROWS])
    out = tmp_path / "my_store"
    assert main(["prepare", "arrays", str(per_file), str(out), "--layout", str(layout), "--quiet",
                 "--workers", "1"]) == 0
    store = SkeletonStore(out)
    assert store.class_names == ["sit", "wave"] and store.labels.tolist() == [1, 0, 1]
    assert {k: v.tolist() for k, v in store.splits["split"].items()} == {"train": [0, 1], "test": [2]}
    assert [store[i].meta["subject"] for i in range(3)] == [1, 2, 3]
    assert store.persons.tolist() == [1, 2, 1] and store.frames.tolist() == [40, 25, 31]
    assert store[2].scores[0, 5].tolist() == [1.0, 1.0, 0.0]  # the missing hand scores 0

    # the stacked form the page gives: [N, M, T, V, C] zero-padded, with a frames column
    stacked = tmp_path / "my_stack"
    stacked.mkdir()
    data = np.zeros((3, 2, 40, 3, 2), dtype=np.float32)
    data[0, 0, :40], data[1, :, :25], data[2, 0, :31] = clip1, clip2, clip3
    np.save(stacked / "data.npy", data)
    with open(stacked / "labels.csv", "w", newline="") as f:
        csv.writer(f).writerows([["name", "label", "subject", "split", "frames"],
                                 *[row + [str(n)] for row, n in zip(EXAMPLE_ROWS, (40, 25, 31))]])
    again = tmp_path / "my_store2"
    assert main(["prepare", "arrays", str(stacked), str(again), "--layout", str(layout), "--quiet",
                 "--workers", "1"]) == 0
    same = SkeletonStore(again)
    assert same.persons.tolist() == [1, 2, 1]  # the all-zero second person of clips 1 and 3 is dropped
    for i in range(3):
        np.testing.assert_array_equal(same[i].keypoints, store[i].keypoints)
