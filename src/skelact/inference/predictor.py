"""``skelact predict INPUT [--model RUN]``: the actions in one video or skeleton file, by a trained run or, without
one, by the model shipped inside the package (:mod:`skelact.inference.shipped_model`: a run packed with its own
config, so everything below holds for it as for the run it came from).

The input becomes one :class:`~skelact.data.sequence.SkeletonSequence` in the run's joint layout: a skeleton file is
parsed by the reader of its format (given, or guessed from the file: ``.skeleton`` NTU RGB+D, ``.json`` NW-UCLA when
it holds ``skeletons`` else OpenPose / ST-GCN JSON, ``.mat`` Penn Action, ``.npy`` NTU's dict-in-npy, or a plain numeric ``[T, V, C]`` / ``[M, T, V, C]`` array read with
the run's own layout, as the ``arrays`` format stores a sample), a video goes
through the pose layer (:func:`skelact.pose.pipeline.video_to_sequence`, MediaPipe mapped to the run's layout, image
pixels for a 2D model and world metres for a 3D one). The sequence then takes exactly the path a test sample takes
(:func:`skelact.engine.build.build_pipeline_of` ``'test'``: the config's ``data.test_pipeline`` plus its input steps,
the person slots of ``data.num_persons``, the batch padding of ``data.num_frames``) into the network that
:func:`skelact.inference.onnx_export.load_inference_network` rebuilds from the run's config and checkpoint, so a test sample
predicted from its source file gets the scores ``skelact test`` wrote for it. Probabilities are the softmax of the
logits.

Long inputs. The whole input is classified once (what ``topk`` reports), and when it is longer than the model's
window a sliding window (``window`` frames, every ``stride`` frames, the last window flush with the end) classifies
each stretch on its own: the timeline. The default window is the test pipeline's temporal window
(:func:`pipeline_window`), the default stride half of it. A window in which nobody was found is not classified;
it appears as ``(no person)`` with class index -1.

RGB runs. A run whose test pipeline reads the sample's video (a step in :data:`RGB_STEPS`, FstCN's ``ClipPairs``) or
whose model takes :data:`RGB_INPUTS` (``clip``, ``diff``) needs no pose: the video is decoded once and handed to the
run's own test pipeline as the sample's ``video``, so the crops, clip pairs and view fusion are those of
``skelact test`` (scores through :func:`skelact.data.batch.clip_averaged_scores`, as evaluation computes them). The
whole video is classified once; there is no timeline (the test pipeline already spreads its clip pairs over the
video) and no rendering (there is no skeleton to draw).

RGBPose runs. A run whose test pipeline has a step of :data:`RGB_POSE_STEPS` (RGBPose-Conv3D's ``RGBPoseClips``,
whichever of its pathways the model has) takes a video and both its frames and its poses: the video is decoded once,
MediaPipe estimates the poses on those frames (``video_to_sequence(frames_out=...)``), and the frames and poses go
together through the run's test pipeline as a sample of an aligned store would (crop, clips, heatmaps), scored as
evaluation scores a batch. The whole video is classified once; there is no timeline.

Rendering (video input only) draws the skeleton the model saw and, per frame, the top action of the timeline window
whose centre is nearest (the whole-input top action for inputs no longer than one window), with its probability.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from skelact.data.sequence import SkeletonSequence
from skelact.errors import ConfigError, DataError, LayoutError

#: file suffixes treated as video without asking PyAV first (any other file PyAV can decode is a video too)
VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".3gp"})
#: window (frames) when the test pipeline names none and data.num_frames is unset
DEFAULT_WINDOW = 64
#: test-pipeline transforms that fix the clip length, and the argument that holds it
_WINDOW_ARGUMENTS = {"UclaSample": "window_size", "ValidCropResize": "window", "UniformSample": "clip_len"}
#: samples per forward pass when classifying timeline windows
_BATCH = 64
#: test-pipeline steps that read the sample's video frames: a run with one takes RGB, not skeletons
RGB_STEPS = frozenset({"ClipPairs"})
#: test-pipeline steps that read the sample's video frames and its keypoints together (RGBPose-Conv3D)
RGB_POSE_STEPS = frozenset({"RGBPoseClips"})
#: model inputs made of video frames (FstCN's clip pairs, the frame-level CNN's clips)
RGB_INPUTS = frozenset({"clip", "diff"})
#: the timeline's name for a window in which nobody was found (its class index is -1)
NO_PERSON = "(no person)"


@dataclass(frozen=True)
class ClassProbability:
    index: int
    name: str
    prob: float


@dataclass(frozen=True)
class TimelineWindow:
    """One sliding window: frames ``[start, end)`` and its top class."""

    start: int
    end: int
    index: int
    name: str
    prob: float


@dataclass
class Prediction:
    """What :func:`predict` found; :meth:`to_json` is the ``--json`` output."""

    input: Path
    run: Path
    checkpoint: Path
    #: ``"video"`` or the skeleton format key the input was read with (``"rgb video"``: an RGB run's input)
    kind: str
    #: the skeleton the model saw; ``None`` for an RGB run, which sees the frames
    sequence: SkeletonSequence | None
    class_names: list[str]
    #: softmax over the classes for the whole input, float64 [K]
    probs: np.ndarray
    topk: list[ClassProbability]
    timeline: list[TimelineWindow] = field(default_factory=list)
    window: int = 0
    stride: int = 0
    #: decoded frames of an RGB run's video (a skeleton input's length is its sequence's)
    video_frames: int = 0
    #: the model used, as printed: the checkpoint's path, or the shipped model's description and file
    model: str = ""

    @property
    def frames(self) -> int:
        return int(self.sequence.num_frames) if self.sequence is not None else self.video_frames

    @property
    def layout(self) -> str:
        return self.sequence.layout if self.sequence is not None else "rgb"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "input": str(self.input), "model": self.model or str(self.checkpoint), "run": str(self.run),
            "checkpoint": str(self.checkpoint), "kind": self.kind,
            "frames": self.frames, "layout": self.layout,
            "topk": [{"class": c.name, "index": c.index, "prob": c.prob} for c in self.topk],
            "window": self.window, "stride": self.stride,
            "timeline": [{"start": w.start, "end": w.end, "class": w.name, "index": w.index, "prob": w.prob}
                         for w in self.timeline],
        }
        if self.sequence is not None and self.sequence.label >= 0:  # the file's own label, for comparison
            label = int(self.sequence.label)
            name = self.class_names[label] if label < len(self.class_names) else f"class_{label}"
            out["label"] = {"class": name, "index": label}
        return out

    def caption(self, frame: int) -> str:
        """The top action shown on ``frame`` of a rendered video."""
        if self.timeline:
            centres = np.array([(w.start + w.end) / 2 for w in self.timeline])
            best = self.timeline[int(np.argmin(np.abs(centres - (frame + 0.5))))]
            return best.name if best.index < 0 else f"{best.name} {100 * best.prob:.0f}%"
        top = self.topk[0]
        return f"{top.name} {100 * top.prob:.0f}%"


# ------------------------------------------------------------------------------------------------- the input


def guess_format(path: Path, trust_pickle: bool = False) -> str:
    """The skeleton format of ``path`` from its suffix (and, for ``.json`` / ``.npy``, its content).

    A ``.npy`` is read with ``allow_pickle=False`` first and an object array only through the restricted unpickler
    (:func:`skelact.data.safe_pickle.load_npy`), unless ``trust_pickle``: looking at a file must not run its code.
    """
    suffix = path.suffix.lower()
    if suffix == ".skeleton":
        return "ntu"
    if suffix == ".mat":
        return "penn-action"
    if suffix == ".json":
        import json

        try:
            doc = json.loads(path.read_bytes())
        except (OSError, ValueError) as e:
            raise DataError(f"not valid JSON ({type(e).__name__}); expected an NW-UCLA or OpenPose JSON skeleton file",
                            path, "json") from None
        return "nw-ucla" if isinstance(doc, dict) and "skeletons" in doc else "openpose-json"
    if suffix == ".npy":
        from skelact.data.safe_pickle import load_npy

        value = load_npy(path, trust=trust_pickle)  # NTU's npy files are pickled dicts, read as their reader does
        if not isinstance(value, np.ndarray):
            raise DataError(f"expected one array (.npy), found {type(value).__name__}", path, "npy")
        if value.dtype == object and value.ndim == 0 and isinstance(value.item(), dict):
            return "ntu-npy"
        return PLAIN_ARRAY  # the user's own [T, V, C] / [M, T, V, C]: read with the run's layout
    raise DataError(f"neither a video nor a known skeleton file (suffix {suffix or '(none)'!r}: expected a video, "
                    ".skeleton, .json, .mat or .npy, or give --format)", path, "INPUT")


#: what :func:`guess_format` calls a plain numeric ``.npy`` (not a reader's format key): the layout is the run's
PLAIN_ARRAY = "array"


def read_plain_array(path: Path, layout: Any, coords: int) -> SkeletonSequence:
    """A user's own array file, ``[T, V, C]`` or ``[M, T, V, C]`` as the ``arrays`` format stores a sample, read with
    the run's ``layout`` (the file carries none); an exact 0 is a missing joint, as in that format. Errors show the
    file's own shape."""
    from skelact.data.safe_pickle import load_npy
    from skelact.data.sources.arrays import presence_scores

    value = load_npy(path, trust=False)
    shape = tuple(getattr(value, "shape", ()))
    if not isinstance(value, np.ndarray) or value.dtype.kind not in "fiu":
        raise DataError("expected a numeric array [T, V, C] or [M, T, V, C]", path, "npy")
    if value.ndim not in (3, 4):
        raise DataError(f"expected [T, V, C] or [M, T, V, C], got shape {shape}", path, "npy")
    if shape[-2] != layout.num_joints:
        raise LayoutError(f"array of shape {shape} has {shape[-2]} joints but the run's layout {layout.name!r} has "
                          f"{layout.num_joints} ({', '.join(layout.joints)})", path, "joints")
    if shape[-1] != coords:
        raise LayoutError(f"array of shape {shape} has {shape[-1]} coordinates per joint but the run's model takes "
                          f"{coords}", path, "coords")
    keypoints = np.asarray(value, dtype=np.float32).reshape((-1,) + shape[-3:])
    return SkeletonSequence(keypoints=keypoints, scores=presence_scores(keypoints), label=-1, name=path.stem,
                            layout=layout.name)


def is_video(path: Path) -> bool:
    """A video by its suffix, or any other file PyAV can open with a video stream."""
    if path.suffix.lower() in VIDEO_SUFFIXES:
        return True
    if path.suffix.lower() in {".skeleton", ".json", ".mat", ".npy"}:
        return False
    try:
        from skelact.video.probe import probe_video

        probe_video(path)
    except Exception:  # noqa: BLE001 - not decodable (or no PyAV): not a video
        return False
    return True


def read_skeleton_file(path: Path, fmt: str, options: dict[str, Any] | None = None) -> SkeletonSequence:
    """One skeleton file through the reader of ``fmt`` (``options`` as the run prepared its data with)."""
    from skelact.data.sources import open_source

    return open_source(fmt, path.parent, **dict(options or {})).read(path)


# ---------------------------------------------------------------------------------------------------- the model


def pipeline_window(test_pipeline: Sequence[Any], num_frames: int | None = None) -> int:
    """Frames the model looks at: the clip length of the test pipeline's temporal sampler (``UclaSample``
    ``window_size``, ``ValidCropResize`` ``window``, ``UniformSample`` ``clip_len``; the last one wins), else
    ``data.num_frames``, else :data:`DEFAULT_WINDOW`."""
    window = None
    for spec in test_pipeline:
        if isinstance(spec, dict) and spec.get("type") in _WINDOW_ARGUMENTS:
            value = spec.get(_WINDOW_ARGUMENTS[spec["type"]])
            if value is None and spec["type"] == "ValidCropResize":
                value = 64  # its default
            if value is not None:
                window = int(value)
    return window or (int(num_frames) if num_frames else DEFAULT_WINDOW)


def takes_rgb(test_pipeline: Sequence[Any], input_pipeline: Sequence[Any] = ()) -> bool:
    """Whether a run's model looks at video frames: its test pipeline has a step of :data:`RGB_STEPS`, or its
    ``ToInputs`` names an input of :data:`RGB_INPUTS`."""
    for spec in [*test_pipeline, *input_pipeline]:
        if not isinstance(spec, dict):
            continue
        if spec.get("type") in RGB_STEPS:
            return True
        if spec.get("type") == "ToInputs" and RGB_INPUTS & set(spec.get("inputs") or ()):
            return True
    return False


def takes_rgb_and_pose(test_pipeline: Sequence[Any]) -> bool:
    """Whether a run's test pipeline cuts its inputs from a video's frames and poses together
    (:data:`RGB_POSE_STEPS`)."""
    return any(isinstance(spec, dict) and spec.get("type") in RGB_POSE_STEPS for spec in test_pipeline)


def window_starts(num_frames: int, window: int, stride: int) -> list[int]:
    """Starts of the sliding windows over ``num_frames``: every ``stride`` frames, plus one flush with the end."""
    if num_frames <= window:
        return [0]
    starts = list(range(0, num_frames - window + 1, stride))
    if starts[-1] + window < num_frames:
        starts.append(num_frames - window)
    return starts


def resolve_run(run_or_checkpoint: str | PathLike) -> tuple[Path, Path | None]:
    """``(run directory, checkpoint file)`` from a ``.ckpt`` inside a run, or ``(run directory, None)`` from a run
    directory (the caller picks its ``best`` or ``last`` checkpoint)."""
    from skelact.engine.runs import checked_run_dir
    from skelact.errors import RunError

    given = Path(run_or_checkpoint)
    if given.is_file():
        if given.suffix != ".ckpt":
            raise RunError("expected a run directory or a .ckpt file of one", given)
        return checked_run_dir(given.resolve().parent.parent).resolve(), given.resolve()
    return checked_run_dir(given).resolve(), None


class Predictor:
    """A run's inference network with its test-time preprocessing: :meth:`probabilities` of sequences.

    ``Predictor(RUN)`` loads a trained run (and opens its store for the layout and class names);
    :meth:`Predictor.shipped` loads the model packed inside the package (:mod:`skelact.inference.shipped_model`),
    which needs neither a run nor a dataset."""

    def __init__(self, run_or_checkpoint: str | PathLike, checkpoint: str | None = None, *,
                 log: Callable[[str], None] | None = None):
        from skelact.config import load_config
        from skelact.engine.build import open_dataset_store
        from skelact.engine.runs import CONFIG_FILE, DEFAULT_CHECKPOINT, run_checkpoint_path
        from skelact.inference.onnx_export import load_inference_network

        from skelact.engine import require_lightning

        require_lightning()  # the run-directory helpers of the engine live beside its Lightning trainer
        self.run, self.checkpoint = resolve_run(run_or_checkpoint)
        loaded = load_config(self.run / CONFIG_FILE)
        if self.checkpoint is None:
            # one rule with test and export: the last checkpoint unless asked (the best one is selected on the
            # test set)
            self.checkpoint = run_checkpoint_path(self.run, checkpoint or DEFAULT_CHECKPOINT)
        quiet = log or (lambda message: None)
        store = open_dataset_store(loaded, progress=False, log=quiet)
        network, epochs = load_inference_network(loaded, store, self.checkpoint)
        #: what ``predict`` names as the model it used
        self.model_label = str(self.checkpoint)
        self._take(loaded, store, network, epochs)

    @classmethod
    def shipped(cls, directory: str | PathLike | None = None) -> "Predictor":
        """The model shipped inside the package (or packed into ``directory``), with its run's test pipeline."""
        from skelact.inference.shipped_model import load_shipped_model

        model = load_shipped_model(directory)
        self = cls.__new__(cls)
        self.run = self.checkpoint = model.weights_path
        self.model_label = f"shipped: {model.description} ({model.weights_path})"
        self._take(model.loaded, model.data, model.network, model.epochs)
        return self

    def _take(self, loaded: Any, store: Any, network: Any, epochs: int) -> None:
        """Keep what prediction needs of the config, the data (a store, or the shipped model's facts) and the
        network."""
        from skelact.config import to_container
        from skelact.engine.build import build_pipeline_of

        cfg = loaded.cfg
        self.loaded, self.store, self.network, self.epochs = loaded, store, network, epochs
        # a keypoint-free video store (UCF101 style, RGB runs only) has no layout to give
        keypoints = getattr(store, "has_keypoints", True)
        self.layout = store.layout if keypoints else None
        self.coords = int(store.coords) if keypoints else 0
        self.class_names = list(store.class_names)
        self.num_persons = int(cfg.data.num_persons)
        self.num_frames = None if cfg.data.num_frames is None else int(cfg.data.num_frames)
        self.data_format = cfg.data.format
        self.data_options = to_container(cfg.data.options) or {}
        self.window = pipeline_window(to_container(cfg.data.test_pipeline), self.num_frames)
        self.rgb = takes_rgb(to_container(cfg.data.test_pipeline), to_container(cfg.data.input_pipeline) or ())
        self.rgb_pose = takes_rgb_and_pose(to_container(cfg.data.test_pipeline))
        self.threads = int(cfg.trainer.threads)
        self.seed = int(cfg.seed)
        self.pipeline = build_pipeline_of(loaded, "test")

    def check_layout(self, seq: SkeletonSequence, source: Path) -> None:
        """One error when ``seq``'s joints are not those the model was trained on."""
        from skelact.engine.build import same_layout
        from skelact.skeleton.layout import get_layout

        # a plain array was read with the run's own layout, which may be a user's YAML no name can look up
        theirs = self.layout if seq.layout == self.layout.name else get_layout(seq.layout)
        if not same_layout(theirs, self.layout):
            raise LayoutError(f"the input has layout {theirs.name!r} ({theirs.num_joints} joints) but the model of "
                              f"{self.run} was trained on {self.layout.name!r} ({self.layout.num_joints} joints)",
                              source, "layout")
        if seq.num_coords < self.coords:
            raise LayoutError(f"the input has {seq.num_coords} coordinates per joint but the model takes {self.coords}",
                              source, "coords")

    def _sample(self, seq: SkeletonSequence, start: int = 0, end: int | None = None) -> Any:
        from skelact.data.dataset import named_inputs
        from skelact.data.transforms import sample_from_sequence

        sample = sample_from_sequence(seq)
        sample["keypoints"] = np.ascontiguousarray(sample["keypoints"][:, start:end, :, :self.coords])
        if sample.get("scores") is not None:
            sample["scores"] = np.ascontiguousarray(sample["scores"][:, start:end])
        sample["layout"] = self.layout
        # test pipelines are deterministic; the generator is only there for the interface
        sample = self.pipeline(sample, np.random.default_rng(self.seed))
        return named_inputs(sample, self.num_persons, seq.name, {"label": 0, "index": 0})

    def probabilities(self, seq: SkeletonSequence, spans: Sequence[tuple[int, int | None]] = ((0, None),)
                      ) -> np.ndarray:
        """Softmax class probabilities ``[len(spans), K]`` (float64) of frames ``[start, end)`` of ``seq``, each
        through the test pipeline and batched as evaluation batches them."""
        return self._scored([(seq, start, end) for start, end in spans])

    def probabilities_of(self, sequences: Sequence[SkeletonSequence]) -> np.ndarray:
        """Softmax class probabilities ``[len(sequences), K]`` (float64) of whole sequences, batched: what
        :meth:`probabilities` gives each of them, in fewer forward passes."""
        return self._scored([(seq, 0, None) for seq in sequences])

    def _scored(self, pieces: Sequence[tuple[SkeletonSequence, int, int | None]]) -> np.ndarray:
        import torch

        from skelact.data.batch import collate_by_name, model_inputs
        from skelact.engine.threads import use_threads

        out = []
        with use_threads(self.threads, 1), torch.no_grad():
            for first in range(0, len(pieces), _BATCH):
                batch = [self._sample(seq, s, e) for seq, s, e in pieces[first:first + _BATCH]]
                logits = self.network(**model_inputs(collate_by_name(batch, self.num_frames)))
                out.append(torch.softmax(logits.double(), dim=-1).numpy())
        return np.concatenate(out)

    def test_subset(self, log: Callable[[str], None] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(probabilities [N, K] float64, labels [N])`` of the test subset of the model's config (``data.split``,
        ``data.test_subset``) read from its store (prepared into the cache on first use), every sample through
        :meth:`probabilities_of`: how the shipped model is checked against the accuracy it was shipped with."""
        from skelact.engine.build import open_dataset_store, subset_indices

        store = open_dataset_store(self.loaded, progress=False, log=log or (lambda message: None))
        if list(store.class_names) != self.class_names:
            raise DataError(f"the store's classes {list(store.class_names)} are not the model's {self.class_names}",
                            store.path, "class_names")
        indices = subset_indices(self.loaded, store, "test")
        return self.probabilities_of([store[int(i)] for i in indices]), np.asarray(store.labels)[indices]

    def rgb_probabilities(self, video: Path) -> tuple[np.ndarray, int]:
        """``(softmax class probabilities [K] (float64), frames decoded)`` of an RGB run on ``video``: decoded
        once, then through the test pipeline as the sample's video and scored as evaluation scores a batch."""
        import torch

        from skelact.data.batch import clip_averaged_scores, collate_by_name
        from skelact.data.dataset import named_inputs
        from skelact.engine.threads import use_threads

        readers = [step for step in self.pipeline.transforms if hasattr(step, "frames_of")]
        frames = decoded_frames(video, readers[0].max_side if readers else None)
        for step in readers:  # the steps read these frames instead of decoding (or caching) the video again
            step._frame_cache = _DecodedVideo(frames)
        sample = {"name": video.stem, "label": 0, "meta": {}, "video": str(video)}
        sample = self.pipeline(sample, np.random.default_rng(self.seed))
        item = named_inputs(sample, self.num_persons, video.name, {"label": 0, "index": 0})
        with use_threads(self.threads, 1), torch.no_grad():
            logits = clip_averaged_scores(self.network, collate_by_name([item], self.num_frames))
        return torch.softmax(logits.double(), dim=-1)[0].numpy(), int(frames.shape[0])


    def rgb_pose_probabilities(self, seq: SkeletonSequence, frames: np.ndarray, video: Path) -> np.ndarray:
        """Softmax class probabilities ``[K]`` (float64) of an RGBPose run on ``video``'s decoded ``frames`` and its
        poses ``seq`` (frame ``t`` of one is frame ``t`` of the other), through the test pipeline and scored as
        evaluation scores a batch."""
        import torch

        from skelact.data.batch import clip_averaged_scores, collate_by_name
        from skelact.data.dataset import named_inputs
        from skelact.data.transforms import sample_from_sequence
        from skelact.engine.threads import use_threads

        if frames.shape[0] != seq.num_frames:
            raise DataError(f"{frames.shape[0]} decoded frames but {seq.num_frames} frames of poses", video, "INPUT")
        for step in self.pipeline.transforms:
            if hasattr(step, "frames_of"):  # the steps read these frames instead of decoding the video again
                step._frame_cache = _DecodedVideo(frames)
        sample = sample_from_sequence(seq)
        sample["keypoints"] = np.ascontiguousarray(sample["keypoints"][..., :self.coords])
        sample["layout"] = self.layout
        sample["video"] = str(video)
        sample = self.pipeline(sample, np.random.default_rng(self.seed))
        item = named_inputs(sample, self.num_persons, video.name, {"label": 0, "index": 0})
        with use_threads(self.threads, 1), torch.no_grad():
            logits = clip_averaged_scores(self.network, collate_by_name([item], self.num_frames))
        return torch.softmax(logits.double(), dim=-1)[0].numpy()


class _DecodedVideo:
    """A :class:`~skelact.video.frame_cache.FrameCache` stand-in holding one video's frames already decoded."""

    def __init__(self, frames: np.ndarray):
        self._frames = frames

    def frames(self, video: str) -> np.ndarray:
        return self._frames

    decode = frames


def decoded_frames(video: Path, max_side: int | None = None) -> np.ndarray:
    """``uint8 [T, H, W, 3]`` frames of ``video`` (longer side at most ``max_side``). A file that is not a decodable
    video, holds no frame or is truncated (fewer frames than its container declares,
    :func:`skelact.video.probe.probe_frames`) is a :class:`~skelact.errors.DataError`: a prediction from the part
    before the damage would look like one of the whole video."""
    from skelact.video.probe import probe_frames
    from skelact.video.reader import VideoReader

    probe_frames(video)
    with VideoReader(video, max_side=max_side, threads=1) as reader:
        return np.stack(list(reader))


# ------------------------------------------------------------------------------------------------------ predict


def load_input(predictor: Predictor, path: Path, fmt: str | None = None, *, mirrored: bool = False,
               estimator: str = "mediapipe", trust_pickle: bool = False, frames_out: list | None = None,
               max_side: int | None = None) -> tuple[SkeletonSequence, str]:
    """``(sequence in the model's layout, kind)`` of a video or skeleton file (see the module docstring); a video's
    decoded frames (scaled to ``max_side``) are appended to ``frames_out`` when it is given."""
    if not path.exists():
        raise DataError("input not found", path, "INPUT")
    if path.is_dir():
        raise DataError("is a directory; give one video or skeleton file", path, "INPUT")
    if fmt is None and is_video(path):
        from skelact.pose.mapping import get_mapping
        from skelact.pose.pipeline import video_to_sequence

        if estimator == "mediapipe":  # refuse before the estimator loads and the video is decoded
            try:
                get_mapping("mediapipe33", predictor.layout)
            except LayoutError as e:
                raise LayoutError(f"the model of {predictor.run} takes layout {predictor.layout.name!r}, which the "
                                  f"{estimator} estimator cannot produce ({e.message})", path, "layout") from None
        coordinates = "image" if predictor.coords == 2 else "world"
        options = {"coordinates": coordinates} if estimator == "mediapipe" else {}
        seq = video_to_sequence(path, estimator, predictor.layout, max_persons=predictor.num_persons,
                                mirrored=mirrored, estimator_options=options, frames_out=frames_out,
                                max_side=max_side)
        return seq, "video"
    fmt = fmt or guess_format(path, trust_pickle)
    if fmt in (PLAIN_ARRAY, "arrays"):  # one sample of the arrays format: the run knows its layout
        return read_plain_array(path, predictor.layout, predictor.coords), PLAIN_ARRAY
    options = predictor.data_options if fmt == predictor.data_format else {}
    if trust_pickle:
        options = {**options, "trust_pickle": True}
    return read_skeleton_file(path, fmt, options), fmt


def predict(run_or_checkpoint: str | PathLike | None, input_path: str | PathLike, *, fmt: str | None = None,
            top_k: int = 5, window: int | None = None, stride: int | None = None, checkpoint: str | None = None,
            mirrored: bool = False, render: str | PathLike | None = None, predictor: Predictor | None = None,
            trust_pickle: bool = False) -> Prediction:
    """Classify ``input_path`` with a run, or with the shipped model when ``run_or_checkpoint`` is None (see the
    module docstring); ``render``: write the annotated video there."""
    path = Path(input_path)
    if top_k < 1:
        raise ConfigError(f"must be at least 1, got {top_k}", field="--top-k")
    for name, value in (("--window", window), ("--stride", stride)):
        if value is not None and value < 1:
            raise ConfigError(f"must be at least 1 frame, got {value}", field=name)
    if render is not None and Path(render).suffix.lower() != ".mp4":
        raise ConfigError("the rendered video is written as MP4; give a path ending in .mp4", str(render), "--render")
    if not path.exists():
        raise DataError("input not found", path, "INPUT")
    if predictor is None:
        predictor = (Predictor.shipped() if run_or_checkpoint is None
                     else Predictor(run_or_checkpoint, checkpoint))
    if predictor.rgb:
        return predict_rgb(predictor, path, top_k, render)
    if predictor.rgb_pose:
        return predict_rgb_pose(predictor, path, top_k, mirrored, render)
    seq, kind = load_input(predictor, path, fmt, mirrored=mirrored, trust_pickle=trust_pickle)
    if render is not None and kind != "video":
        raise ConfigError(f"--render needs a video input; {path.name} is a {kind} skeleton file", str(path),
                          "--render")
    predictor.check_layout(seq, path)

    names = predictor.class_names
    probs = predictor.probabilities(seq)[0]
    order = np.argsort(-probs, kind="stable")[: min(top_k, probs.size)]
    topk = [ClassProbability(int(k), names[k], float(probs[k])) for k in order]

    win = int(window or predictor.window)
    step = int(stride or max(1, win // 2))
    timeline: list[TimelineWindow] = []
    if seq.num_frames > win:
        starts = window_starts(seq.num_frames, win, step)
        # a stretch where the estimator found nobody has no action to classify (it would reach the model as
        # all-zero input); it is reported as such
        anyone = np.any(seq.keypoints != 0, axis=(0, 2, 3))
        seen = [s for s in starts if anyone[s:s + win].any()]
        window_probs = dict(zip(seen, predictor.probabilities(seq, [(s, s + win) for s in seen]))) if seen else {}
        for s in starts:
            if s not in window_probs:
                timeline.append(TimelineWindow(s, s + win, -1, NO_PERSON, 0.0))
                continue
            p = window_probs[s]
            k = int(np.argmax(p))
            timeline.append(TimelineWindow(s, s + win, k, names[k], float(p[k])))
    result = Prediction(input=path.resolve(), run=predictor.run, checkpoint=predictor.checkpoint, kind=kind,
                        sequence=seq, class_names=names, probs=probs, topk=topk, timeline=timeline, window=win,
                        stride=step, model=predictor.model_label)
    if render is not None:
        render_prediction(result, render)
    return result


def predict_rgb(predictor: Predictor, path: Path, top_k: int = 5, render: str | PathLike | None = None
                ) -> Prediction:
    """:func:`predict` for a run whose model looks at video frames (see the module docstring)."""
    if path.is_dir():
        raise DataError("is a directory; give one video file", path, "INPUT")
    if render is not None:
        raise ConfigError(f"--render draws a skeleton; the model of {predictor.run} takes RGB frames and sees none",
                          str(render), "--render")
    probs, frames = predictor.rgb_probabilities(path)
    order = np.argsort(-probs, kind="stable")[: min(top_k, probs.size)]
    names = predictor.class_names
    topk = [ClassProbability(int(k), names[k], float(probs[k])) for k in order]
    return Prediction(input=path.resolve(), run=predictor.run, checkpoint=predictor.checkpoint, kind="rgb video",
                      sequence=None, class_names=names, probs=probs, topk=topk, video_frames=frames,
                      model=predictor.model_label)


def predict_rgb_pose(predictor: Predictor, path: Path, top_k: int = 5, mirrored: bool = False,
                     render: str | PathLike | None = None) -> Prediction:
    """:func:`predict` for an RGBPose run: the video decoded once, MediaPipe's poses, both pathways (see the module
    docstring)."""
    if not is_video(path):
        raise DataError(f"the model of {predictor.run} takes a video (its frames and their poses); this is not one",
                        path, "INPUT")
    readers = [step for step in predictor.pipeline.transforms if hasattr(step, "frames_of")]
    frames: list[np.ndarray] = []
    seq, kind = load_input(predictor, path, None, mirrored=mirrored, frames_out=frames,
                           max_side=readers[0].max_side if readers else None)
    predictor.check_layout(seq, path)
    probs = predictor.rgb_pose_probabilities(seq, np.stack(frames), path)
    order = np.argsort(-probs, kind="stable")[: min(top_k, probs.size)]
    names = predictor.class_names
    topk = [ClassProbability(int(k), names[k], float(probs[k])) for k in order]
    result = Prediction(input=path.resolve(), run=predictor.run, checkpoint=predictor.checkpoint,
                        kind="video (RGB + poses)", sequence=seq, class_names=names, probs=probs, topk=topk,
                        video_frames=len(frames))
    if render is not None:
        render_prediction(result, render)
    return result


def render_prediction(prediction: Prediction, out: str | PathLike) -> int:
    """Write ``out``: the input video with the skeleton and the per-frame top action; returns frames written."""
    from skelact.pose.render import render_video

    seq = prediction.sequence
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    return render_video(prediction.input, out, seq.keypoints, seq.scores, seq.layout, captions=prediction.caption)


def format_prediction(prediction: Prediction) -> str:
    """The human-readable report ``skelact predict`` prints."""
    lines = [f"input    {prediction.input} ({prediction.kind}, {prediction.frames} frames, layout {prediction.layout})",
             f"model    {prediction.model or prediction.checkpoint}"]
    width = max(len(c.name) for c in prediction.topk)
    for rank, c in enumerate(prediction.topk, 1):
        lines.append(f"{rank:>2}. {c.name:<{width}}  {100 * c.prob:6.2f} %")
    if prediction.timeline:
        lines.append(f"timeline (window {prediction.window} frames, stride {prediction.stride}):")
        for w in prediction.timeline:
            share = "" if w.index < 0 else f"  {100 * w.prob:.1f} %"
            lines.append(f"  frames {w.start:>5}-{w.end - 1:<5}  {w.name}{share}")
    return "\n".join(lines)
