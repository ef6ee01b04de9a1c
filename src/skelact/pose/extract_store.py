"""A store of videos in, the same samples with keypoints out: ``skelact extract-poses VIDEO_STORE OUT_STORE``.

The videos of a store written by ``skelact prepare video-folder`` go through the ordinary extraction
(:func:`skelact.pose.extract.extract_poses`: worker processes, per-video cache, resume, bad videos rejected with
their reason) under their store sample names, into an intermediate store in the work folder
``<OUT's parent>/.<OUT's name>.work/``. That store is then joined with the input's labels, class names and splits
into OUT, every sample keeping its video reference, now aligned frame by frame with its keypoints: keypoint frame
``t`` was estimated on decoded frame ``t``. When the decoder yields a different number of frames than the probe
counted, the reference takes the decoded count (what the keypoints align with) and a warning says so.

An interrupted run resumes like any extraction (the per-video cache is kept until OUT is complete). Samples that
fail here are added to the input's own ``rejected`` list and left out of the splits.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any

from skelact.data.splits import resolve_named_splits
from skelact.data.store import MANIFEST, SkeletonStore, StoreWriter, commit_directory, temporary_sibling
from skelact.errors import DataError, StoreError, disk_full_error, is_disk_full

if TYPE_CHECKING:
    from skelact.pose.base import PoseEstimator
    from skelact.pose.extract import ExtractReport
    from skelact.skeleton.layout import Layout


def video_store_input(inputs: Any) -> Path | None:
    """The store directory when ``inputs`` is exactly one skelact store that refers to videos, else ``None``."""
    if isinstance(inputs, (str, PathLike)):
        inputs = [inputs]
    if not isinstance(inputs, Sequence) or len(inputs) != 1 or not isinstance(inputs[0], (str, PathLike)):
        return None
    path = Path(inputs[0])
    if not (path / MANIFEST).is_file():
        return None
    store = SkeletonStore(path)
    if store.kind != "video" and not int(store.manifest.get("num_videos", 0)):
        raise StoreError("this store refers to no videos, so there is nothing to extract poses from (prepare one "
                         "with skelact prepare video-folder)", path)
    return path


def extract_poses_from_store(store_path: str | PathLike, out_store: str | PathLike,
                             estimator: "str | PoseEstimator" = "mediapipe",
                             layout: "str | PathLike | Layout" = "coco17", workers: int | None = None,
                             resume: bool = True, *, overwrite: bool = False, max_persons: int = 1,
                             criterion: str = "area", max_side: int | None = None, mirrored: bool = False,
                             estimator_options: Mapping[str, Any] | None = None, progress: bool = True,
                             keep_work: bool = False) -> "ExtractReport":
    """Estimate poses on every video of a store and write them, with the store's labels and splits, to
    ``out_store`` (see the module docstring; the arguments are :func:`~skelact.pose.extract.extract_poses`')."""
    from skelact.data.prepare import _check_out
    from skelact.pose.extract import VideoItem, extract_poses, work_dir_for

    started = time.perf_counter()
    source = SkeletonStore(store_path)
    out = Path(out_store)
    _check_out(out, overwrite)
    items, rejected = [], list(source.rejected)
    for i in range(len(source)):
        if source.video(i) is None:
            rejected.append({"file": f"{source.path}#{source.name(i)}", "reason": "no video reference"})
        else:
            items.append(VideoItem(source.video_path(i), source.name(i), source.video_root))
    if not items:
        raise DataError("no sample of this store refers to a video", source.path)
    work = work_dir_for(out)
    poses_path = work / "poses"
    try:
        work.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise StoreError(f"cannot create the work folder ({e.strerror or e})", work) from None
    # keep_work: the per-video cache outlives the intermediate store, so a run interrupted while joining resumes
    # without estimating again
    inner = extract_poses(items, poses_path, estimator=estimator, layout=layout, workers=workers, resume=resume,
                          overwrite=True, max_persons=max_persons, criterion=criterion, max_side=max_side,
                          mirrored=mirrored, estimator_options=estimator_options, progress=progress,
                          keep_work=True)
    poses = SkeletonStore(poses_path)
    warnings = list(inner.warnings)
    tmp = temporary_sibling(out)
    writer = StoreWriter(tmp, poses.layout, video_root=source.video_root)
    try:
        _join(source, poses, writer, warnings)
        named = {split: {subset: [source.name(int(i)) for i in idx] for subset, idx in subsets.items()}
                 for split, subsets in source.splits.items()}
        splits, unknown = resolve_named_splits(named, writer.name_to_index, source.path, strict=False)
        if unknown:
            warnings.append(f"{len(unknown)} sample(s) of the input's splits had no poses and were left out, e.g. "
                            f"{unknown[0]!r}")
        writer.close(class_names=source.class_names, splits=splits,
                     source={"format": "video-store", "path": str(source.path.resolve()),
                             "options": {"input_source": source.manifest.get("source")}},
                     rejected=rejected + list(inner.rejected),
                     extra={"extraction": poses.manifest.get("extraction"),
                            "split_sources": source.manifest.get("split_sources", {})})
        commit_directory(tmp, out, overwrite=overwrite)
    except BaseException as error:
        writer.abort()
        if is_disk_full(error):
            raise disk_full_error(out) from None
        raise
    if not keep_work:
        shutil.rmtree(work, ignore_errors=True)
    return replace(inner, out=out, num_samples=len(writer), seconds=time.perf_counter() - started,
                   rejected=rejected + list(inner.rejected), warnings=warnings, work_dir=work)


def _join(source: SkeletonStore, poses: SkeletonStore, writer: StoreWriter, warnings: list[str]) -> None:
    """Each sample with poses, in the input's order, with the input's label, meta and (realigned) video."""
    found = {name: j for j, name in enumerate(poses.names)}
    for i in range(len(source)):
        j = found.get(source.name(i))
        if j is None:
            continue  # rejected by the extraction (listed there)
        seq = poses[j]
        video = source.video(i)
        assert video is not None
        if video.frames != seq.num_frames:
            warnings.append(f"{source.name(i)}: the probe counted {video.frames} frames, the decoder gave "
                            f"{seq.num_frames}; the reference now says {seq.num_frames}, as the keypoints")
            video = replace(video, frames=seq.num_frames)
        seq.label = int(source.labels[i])
        seq.meta = {**source.meta(i), **seq.meta}
        writer.add(seq, file=source.file(i), video=video)
