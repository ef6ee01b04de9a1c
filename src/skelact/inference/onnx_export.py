"""``skelact export RUN --onnx FILE``: a run's inference network as an ONNX model, checked against PyTorch.

What is exported is the network a deployment runs and nothing else: the method's backbone
(``method.inference_model()`` where a method defines it, else ``method.model``), so training-only modules such as
FR-Head's contrastive heads never reach the file. The graph takes skelact's batch layout ``x [N, M, T, V, C]``
float32 (samples, persons, frames, joints, coordinates; see :mod:`skelact.models.layers`) and returns
``logits [N, K]``. The batch axis is always dynamic; the frame axis is dynamic when the traced graph gives the same
logits on a clip of another length (true for ST-GCN and CTR-GCN), else it is fixed to the length of the check batch.

The check runs onnxruntime on a real batch of the run's test subset (a few samples through the run's test pipeline,
a different batch size from the one traced) and compares with PyTorch: the largest absolute difference of the
logits is printed, and one above the allowed difference is an error and leaves no file behind. The allowed
difference is ``tolerance`` (1e-4) for logits up to 1 in magnitude and ``tolerance * max|logit|`` above that:
float32 carries about 7 significant digits, so a logit of 400 is only resolved to 3e-5 and two correct float32
runtimes (or PyTorch against itself in float64) already differ by 1e-4 there. The model is written beside the
target and renamed into place only after the check passes.

Beside ``FILE`` (``model.onnx``) a ``model.json`` describes the inputs for a deployment: input and output names,
shapes and layout, the joint layout (joint order), class names, modality, and the preprocessing to apply (the run's
test pipeline with its input steps) -- everything needed to feed the model without skelact's config system.

Exported with ``do_constant_folding=False``: the ONNX initializers keep the state-dict names of the backbone's
weights, so the file can be audited against the checkpoint (which weights are in it, and that no other module's
are); onnxruntime folds constants and fuses batch-norm into convolutions itself when it loads the model.
"""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any, Callable

import numpy as np

from skelact.config import LoadedConfig, load_config, to_container
from skelact.errors import MissingDependencyError
from skelact.engine.runs import CONFIG_FILE, checked_run_dir, checkpoint_note, run_checkpoint_path, write_run_text
from skelact.errors import RunError
from skelact.errors import ConfigError

EXPORT_INSTALL_HINT = "pip install 'skelact[export]'"
INPUT_NAME = "x"
OUTPUT_NAME = "logits"
#: the opset the torch exporter and onnxruntime of the export extra agree on (ST-GCN / CTR-GCN need nothing newer)
OPSET = 17
#: largest logit difference between onnxruntime and PyTorch the check accepts, relative to max(1, max |logit|)
TOLERANCE = 1e-4
#: test samples the check runs through both runtimes
CHECK_SAMPLES = 4
#: version of the JSON description written beside the model
INFO_FORMAT = "skelact-onnx/1"


@dataclass(frozen=True)
class ExportResult:
    """What :func:`export_onnx` wrote and measured."""

    onnx_path: Path
    info_path: Path
    #: largest |onnxruntime - PyTorch| over the logits of the check batch
    max_abs_diff: float
    #: parameters of the exported network (the backbone's)
    num_parameters: int
    #: whether the frame axis is dynamic (else fixed to ``info["input"]["shape"][2]``)
    dynamic_frames: bool
    info: dict


def require_onnx() -> tuple[Any, Any]:
    """``(onnx, onnxruntime)``, or one :class:`~skelact.engine.MissingDependencyError` line naming the extra."""
    missing = []
    modules = []
    for name in ("onnx", "onnxruntime"):
        try:
            modules.append(__import__(name))
        except ImportError:
            missing.append(name)
    if missing:
        raise MissingDependencyError(f"ONNX export needs the {' and '.join(repr(m) for m in missing)} package(s); "
                                     f"install them with {EXPORT_INSTALL_HINT}", field=missing[0])
    return modules[0], modules[1]


def inference_network(method: Any) -> Any:
    """The network a method deploys: ``method.inference_model()`` when it defines one, else ``method.model``."""
    pick = getattr(method, "inference_model", None)
    if callable(pick):
        return pick()
    model = getattr(method, "model", None)
    if model is None:
        raise ConfigError(f"{type(method).__name__} defines no inference network to export (neither "
                          "inference_model() nor .model)", field="method.type")
    return model


def load_inference_network(loaded: LoadedConfig, store: Any, checkpoint_path: Path) -> tuple[Any, int]:
    """``(network, epochs trained)``: the run's method rebuilt from its config with the checkpoint's weights loaded
    (:func:`network_from_state`)."""
    method_state, epochs = read_method_state(checkpoint_path)
    network = network_from_state(loaded, store, method_state, checkpoint_path,
                                 f"the checkpoint does not fit the model of its run's {CONFIG_FILE}")
    return network, epochs


def read_method_state(checkpoint_path: Path) -> tuple[dict[str, Any], int]:
    """``(the method's weights, epochs trained)`` of a run's Lightning checkpoint, read with ``weights_only``; an
    unreadable file is one :class:`RunError` naming it."""
    import torch

    try:
        checkpoint = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
        state = checkpoint["state_dict"]
    except Exception as e:  # noqa: BLE001 - any unreadable checkpoint is one user-facing line
        raise RunError(f"unreadable checkpoint ({type(e).__name__})", checkpoint_path) from None
    # SkeletonLitModule holds the method as ``method``
    prefix = "method."
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}, int(checkpoint.get("epoch", -1)) + 1


def network_from_state(loaded: LoadedConfig, store: Any, method_state: dict[str, Any], source: Path,
                       mismatch: str) -> Any:
    """The method of ``loaded`` built for ``store``'s data with ``method_state`` loaded strictly (every module of
    the method, training-only ones included, must match; floating tensors of another precision, such as the
    shipped model's float16, are cast to the parameters' own), reduced to its inference network in eval mode. A
    state that does not fit is one :class:`RunError` about ``source`` starting with ``mismatch``."""
    from skelact.engine.build import build_method, build_model

    method = build_method(loaded, build_model(loaded, store))
    try:
        method.load_state_dict(method_state)
    except RuntimeError as e:
        raise RunError(f"{mismatch} ({str(e).splitlines()[0]})", source) from None
    network = inference_network(method)
    network.eval()
    return network


def check_inputs(loaded: LoadedConfig, store: Any, num_samples: int = CHECK_SAMPLES
                 ) -> tuple[dict[str, Any], tuple[str, ...], list[str]]:
    """``({input name: batch tensor}, names of the keypoint-sequence inputs, sample names)``: the first
    ``num_samples`` samples of the run's test subset through its test pipeline, batched as evaluation batches
    them."""
    from skelact.data.batch import collate_by_name, model_inputs
    from skelact.engine.build import build_dataset

    test_set = build_dataset(loaded, store, "test")
    positions = range(min(int(num_samples), len(test_set)))
    items = [test_set[i] for i in positions]
    batch = collate_by_name(items, loaded.cfg.data.num_frames)
    return model_inputs(batch), tuple(items[0].get("sequences", ())), [test_set.names[i] for i in positions]


def _describe_input(name: str, value: Any, sequence: bool, dynamic_frames: bool) -> dict[str, Any]:
    """One graph input for a deployment: name, shape (symbolic batch and, if dynamic, frames), layout, dtype."""
    shape: list[Any] = ["batch", *(int(s) for s in value.shape[1:])]
    out = {"name": name, "shape": shape, "dtype": str(value.dtype).replace("torch.", "")}
    if sequence:
        if dynamic_frames:
            shape[2] = "frames"
        out.update(layout="N M T V C", axes=["samples", "persons", "frames", "joints", "coordinates"])
    return out


class _RuntimeFailed(Exception):
    """onnxruntime could not load or run the exported model."""


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0]}" if text else type(error).__name__


def _export_to(network: Any, example: dict[str, Any], sequences: tuple[str, ...], path: Path, dynamic_frames: bool,
               target: Path) -> None:
    """Trace ``network(**example)`` into ``path``: one graph input per named input, in the batch's order, each with
    a dynamic batch axis, and a dynamic frame axis on the keypoint sequences when ``dynamic_frames``."""
    import torch

    axes = {name: ({0: "batch", 2: "frames"} if dynamic_frames and name in sequences else {0: "batch"})
            for name in example}
    with warnings.catch_warnings():
        # the tracer warns about the models' Python shape checks, which hold for every input the graph accepts
        warnings.simplefilter("ignore")
        try:
            with torch.no_grad():
                torch.onnx.export(network, (), str(path), kwargs=dict(example), input_names=list(example),
                                  output_names=[OUTPUT_NAME], opset_version=OPSET, dynamo=False,
                                  do_constant_folding=False, dynamic_axes={**axes, OUTPUT_NAME: {0: "batch"}})
        except Exception as e:  # noqa: BLE001 - the exporter's errors are about the model, reported in one line
            raise RunError(f"torch.onnx.export (opset {OPSET}) cannot export {type(network).__name__}: "
                           f"{_first_line(e)}", str(target), "onnx") from None


def _onnx_logits(ort: Any, path: Path, inputs: dict[str, Any]) -> np.ndarray:
    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, _torch_threads())
    session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    feed = {name: np.ascontiguousarray(value.numpy()) for name, value in inputs.items()}
    (logits,) = session.run([OUTPUT_NAME], feed)
    return np.asarray(logits)


def _torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def _max_abs_diff(ort: Any, path: Path, network: Any, inputs: dict[str, Any]) -> float:
    import torch

    with torch.no_grad():
        expected = network(**inputs).numpy()
    try:
        got = _onnx_logits(ort, path, inputs)
    except Exception as e:  # noqa: BLE001 - onnxruntime raises its own exception types
        raise _RuntimeFailed(_first_line(e)) from None
    if got.shape != expected.shape:
        return float("inf")
    return float(np.max(np.abs(got.astype(np.float64) - expected.astype(np.float64))))


def _logit_scale(network: Any, inputs: dict[str, Any]) -> float:
    """The largest |logit| PyTorch gives on ``inputs`` (what the tolerance scales with above 1)."""
    import torch

    with torch.no_grad():
        return float(network(**inputs).abs().max())


def _shorter_clip(inputs: dict[str, Any], sequences: tuple[str, ...]) -> dict[str, Any] | None:
    """The batch with its keypoint sequences cut to three quarters of their frames (another length to test a
    dynamic frame axis on); None when there is no sequence to cut."""
    out = dict(inputs)
    for name in sequences:
        frames = int(inputs[name].shape[2])
        shorter = max(1, (3 * frames) // 4)
        if shorter >= frames:
            return None
        out[name] = inputs[name][:, :, :shorter].contiguous()
    return out if sequences else None


def _fsync_rename(tmp: Path, target: Path) -> None:
    with open(tmp, "rb") as handle:
        os.fsync(handle.fileno())
    os.chmod(tmp, 0o644)
    os.replace(tmp, target)


def export_onnx(run_dir: str | PathLike, onnx_path: str | PathLike, checkpoint: str = "last", *,
                num_samples: int = CHECK_SAMPLES, tolerance: float = TOLERANCE,
                log: Callable[[str], None] = print) -> ExportResult:
    """Export the inference network of ``run_dir``'s ``best`` or ``last`` checkpoint to ``onnx_path`` and check it
    with onnxruntime against PyTorch on ``num_samples`` real test samples (see the module docstring)."""
    onnx, ort = require_onnx()
    from skelact import __version__
    from skelact.engine.build import open_dataset_store
    from skelact.engine.threads import use_threads

    run = checked_run_dir(run_dir).resolve()
    ckpt_path = run_checkpoint_path(run, checkpoint)
    target = Path(onnx_path).expanduser().resolve()
    if target.suffix == ".json":
        raise ConfigError("the model file must not end in .json (the description is written beside it as "
                          "<name>.json)", str(target), "--onnx")
    if target.is_dir():
        raise ConfigError("is a directory; give the path of the .onnx file to write", str(target), "--onnx")
    info_path = target.with_suffix(".json")
    loaded = load_config(run / CONFIG_FILE)
    cfg = loaded.cfg

    with use_threads(cfg.trainer.threads, 1, log):
        store = open_dataset_store(loaded, progress=False, log=log)
        network, epoch = load_inference_network(loaded, store, ckpt_path)
        num_parameters = sum(p.numel() for p in network.parameters())
        inputs, sequences, names = check_inputs(loaded, store, num_samples)
        count = int(next(iter(inputs.values())).shape[0])
        example = {name: value[: min(2, count)] for name, value in inputs.items()}
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            allowed = tolerance * max(1.0, _logit_scale(network, inputs))
            _export_to(network, example, sequences, tmp, True, target)
            try:
                diff = _max_abs_diff(ort, tmp, network, inputs)
            except _RuntimeFailed:
                diff = float("inf")
            dynamic_frames = diff <= allowed and bool(sequences)
            shorter = _shorter_clip(inputs, sequences)
            if dynamic_frames and shorter is not None:
                try:
                    dynamic_frames = _max_abs_diff(ort, tmp, network, shorter) <= allowed
                except _RuntimeFailed:  # the graph fixed the frame count somewhere
                    dynamic_frames = False
                if not dynamic_frames:
                    log("the traced graph does not generalise to other clip lengths; fixing their frames")
            if not dynamic_frames:
                _export_to(network, example, sequences, tmp, False, target)
                try:
                    diff = _max_abs_diff(ort, tmp, network, inputs)
                except _RuntimeFailed as e:
                    raise RunError(f"onnxruntime cannot run the exported model ({e}); nothing was written",
                                   str(target), "onnx") from None
            shapes = ", ".join(f"{name} {list(value.shape)}" for name, value in inputs.items())
            log(f"onnxruntime vs PyTorch on {count} test samples ({shapes}): max abs diff {diff:.3g} "
                f"(allowed {allowed:.3g})")
            if not diff <= allowed:
                raise RunError(f"the ONNX model's logits differ from PyTorch's by up to {diff:.3g} on "
                               f"{count} test samples (allowed {allowed:.3g}); nothing was written",
                               str(target), "onnx")
            try:
                onnx.checker.check_model(str(tmp))
            except Exception as e:  # noqa: BLE001 - onnx.checker.ValidationError and friends
                raise RunError(f"the exported model is not valid ONNX ({_first_line(e)}); nothing was written",
                               str(target), "onnx") from None
            _fsync_rename(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)

    layout = store.layout
    pipeline = to_container(cfg.data.test_pipeline) + to_container(cfg.data.input_pipeline)
    described = [_describe_input(name, value, name in sequences, dynamic_frames) for name, value in inputs.items()]
    t = int(inputs[sequences[0]].shape[2]) if sequences else None
    info = {
        "format": INFO_FORMAT,
        "onnx_file": target.name,
        "input": described[0],
        "inputs": described,
        "output": {"name": OUTPUT_NAME, "shape": ["batch", store.num_classes],
                   "meaning": "raw class scores (logits); softmax gives probabilities"},
        "class_names": store.class_names,
        "num_classes": store.num_classes,
        "modality": cfg.data.modality,
        "layout": {"name": layout.name, "num_joints": layout.num_joints, "joints": list(layout.joints),
                   "center": layout.joints[layout.center], "coords": store.coords},
        "preprocessing": {
            "summary": (f"per sample: the test pipeline below (skelact.data.transforms; its last steps make the "
                        f"{cfg.data.modality} modality and name the inputs {', '.join(inputs)}); keypoint sequences "
                        f"[M, T, V, C] keep the first {cfg.data.num_persons} person(s), missing ones zero-padded; "
                        "each input is stacked over the batch"
                        + ("" if cfg.data.num_frames is None else f", sequences zero-padded to {cfg.data.num_frames} "
                           "frames")),
            "test_pipeline": pipeline,
            "num_persons": int(cfg.data.num_persons),
            "num_frames": cfg.data.num_frames,
            "frames_checked": t,
        },
        "model": {"type": cfg.model.type, "class": type(network).__name__, "num_parameters": num_parameters},
        "source": {"run_dir": str(run), "checkpoint": checkpoint, "epoch": epoch, "experiment": cfg.experiment,
                   "skelact_version": __version__},
        "check": {"runtime": f"onnxruntime {ort.__version__}", "samples": names, "max_abs_diff": diff,
                  "allowed": allowed, "tolerance": tolerance},
        "opset": OPSET,
    }
    write_run_text(info_path, json.dumps(info, indent=2, ensure_ascii=False) + "\n")
    log(f"exported {type(network).__name__} ({num_parameters:,} parameters, {checkpoint} checkpoint, epoch {epoch}"
        f"{checkpoint_note(checkpoint)}) "
        f"to {target}; inputs " + ", ".join(f"{d['name']} {d['shape']}" for d in described)
        + f"; description {info_path}")
    return ExportResult(onnx_path=target, info_path=info_path, max_abs_diff=diff, num_parameters=num_parameters,
                        dynamic_frames=dynamic_frames, info=info)
