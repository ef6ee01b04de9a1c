"""The model that ships inside the package: what ``skelact predict INPUT`` uses when no ``--model RUN`` is given.

It is a trained run reduced to two package-data files in ``skelact/inference/shipped/``:

- ``config.yaml``: the run's own ``config.yaml``, unchanged, so the shipped model is rebuilt with the run's model
  settings and sees its input through the run's test pipeline (``TorsoNormalize`` etc.) exactly as ``skelact test``
  did;
- ``weights.pt``: one plain dictionary, read with ``torch.load(weights_only=True)`` only (no pickled code), with
  ``format`` (:data:`FORMAT`), ``state_dict`` (the method's weights; floating tensors stored as float16, which halves
  the file, and cast back to the parameters' float32 when loaded), ``class_names``, ``layout`` (a built-in layout's
  name), ``coords``, ``epochs``, ``description`` (what ``predict`` prints), ``run`` (the run it came from) and
  ``config_sha256`` (the hash of the ``config.yaml`` it was packed with: weights are never run under another
  config's pipeline).

:func:`pack_run` writes the two files from a run (``tools/ship_demo_model.py`` trains the preset and calls it);
:func:`load_shipped_model` rebuilds the network through the same :func:`network_from_state` that loads a run's
checkpoint for ``predict`` and ``export``, without the training extra (Lightning) and without the dataset: the
class names, layout and coordinates come from the file (:class:`ShippedData` stands in for the store).
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

from skelact.atomic import write_bytes_atomic
from skelact.config import LoadedConfig, load_config
from skelact.errors import ConfigError, RunError
from skelact.inference.onnx_export import network_from_state, read_method_state

#: the folder of the package data, beside this module
SHIPPED_DIR = Path(__file__).resolve().parent / "shipped"
CONFIG_NAME = "config.yaml"
WEIGHTS_NAME = "weights.pt"
#: version of the ``weights.pt`` dictionary
FORMAT = "skelact-shipped-model/1"
#: largest ``weights.pt`` :func:`pack_run` writes: package data must stay small (issue 25: at most 3 MB)
MAX_BYTES = 3_000_000
#: the keys ``weights.pt`` must hold
_KEYS = ("format", "state_dict", "class_names", "layout", "coords", "epochs", "description", "run", "config_sha256")


@dataclass(frozen=True)
class ShippedData:
    """What a model is built from, as a store gives it (:func:`skelact.engine.build.data_info`), without the store."""

    layout: Any
    coords: int
    class_names: tuple[str, ...]
    #: the ``weights.pt`` the facts came from (named in errors where a store would name its folder)
    path: Path
    has_keypoints: bool = True

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


@dataclass(frozen=True)
class ShippedModel:
    """The shipped network in eval mode with the config it was trained with."""

    loaded: LoadedConfig
    data: ShippedData
    network: Any
    epochs: int
    description: str
    #: the training run it was packed from (as recorded when packing)
    run: str
    weights_path: Path
    config_path: Path


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _read_weights(path: Path) -> dict[str, Any]:
    import torch

    try:
        packed = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file is one user-facing line
        raise RunError(f"unreadable shipped model ({type(e).__name__}); expected a dictionary saved by "
                       "skelact.inference.shipped_model.pack_run", path) from None
    if not isinstance(packed, dict) or packed.get("format") != FORMAT:
        found = packed.get("format") if isinstance(packed, dict) else type(packed).__name__
        raise RunError(f"expected a shipped model of format {FORMAT!r}, found {found!r}", path, "format")
    missing = [k for k in _KEYS if k not in packed]
    if missing:
        raise RunError(f"the shipped model lacks {', '.join(missing)}", path, missing[0])
    return packed


def load_shipped_model(directory: str | PathLike | None = None) -> ShippedModel:
    """The network packed in ``directory`` (default: the package's own, :data:`SHIPPED_DIR`), in eval mode."""
    from skelact.skeleton.layout import get_layout

    folder = Path(directory) if directory is not None else SHIPPED_DIR
    config_path, weights_path = folder / CONFIG_NAME, folder / WEIGHTS_NAME
    for path in (config_path, weights_path):
        if not path.is_file():
            raise RunError("the shipped model is not installed (the package data is missing); give a trained run "
                           "with --model RUN", path)
    packed = _read_weights(weights_path)
    if packed["config_sha256"] != _sha256(config_path):
        raise RunError(f"the weights were packed with another {CONFIG_NAME} than the one beside them; pack the run "
                       "again (tools/ship_demo_model.py)", weights_path, "config_sha256")
    loaded = load_config(config_path)
    data = ShippedData(layout=get_layout(packed["layout"]), coords=int(packed["coords"]),
                       class_names=tuple(str(c) for c in packed["class_names"]), path=weights_path)
    network = network_from_state(loaded, data, packed["state_dict"], weights_path,
                                 f"the shipped weights do not fit the model of their {CONFIG_NAME}")
    return ShippedModel(loaded=loaded, data=data, network=network, epochs=int(packed["epochs"]),
                        description=str(packed["description"]), run=str(packed["run"]), weights_path=weights_path,
                        config_path=config_path)


def half_precision(state: dict[str, Any]) -> dict[str, Any]:
    """``state`` with its floating tensors as float16 (integer buffers such as batch-norm counters unchanged)."""
    return {k: v.half() if v.is_floating_point() else v for k, v in state.items()}


@dataclass(frozen=True)
class PackResult:
    config_path: Path
    weights_path: Path
    #: size of ``weights.pt``
    weights_bytes: int
    num_parameters: int


def pack_run(run_dir: str | PathLike, out_dir: str | PathLike | None = None, *, checkpoint: str = "last",
             description: str | None = None, max_bytes: int = MAX_BYTES) -> PackResult:
    """Write ``run_dir``'s ``checkpoint`` as the shipped model into ``out_dir`` (default :data:`SHIPPED_DIR`).

    The run's store gives the class names, layout and coordinates (so the dataset must be at hand, as for
    ``skelact test``); its layout must be a built-in one, which a fresh install can look up by name. The float16
    weights are loaded into the run's model before anything is written, and a ``weights.pt`` over ``max_bytes`` is
    refused with nothing written.
    """
    import torch

    from skelact.engine.build import open_dataset_store
    from skelact.engine.runs import CONFIG_FILE, checked_run_dir, run_checkpoint_path
    from skelact.models import same_layout
    from skelact.skeleton.layout import available_layouts, get_layout

    run = checked_run_dir(run_dir).resolve()
    ckpt = run_checkpoint_path(run, checkpoint)
    loaded = load_config(run / CONFIG_FILE)
    store = open_dataset_store(loaded, progress=False, log=lambda message: None)
    layout = store.layout
    if layout.name not in available_layouts() or not same_layout(get_layout(layout.name), layout):
        raise ConfigError(f"the run's layout {layout.name!r} is not a built-in layout; only a run on a built-in "
                          "layout can be shipped (a fresh install must find it by name)", str(run), "layout")
    method_state, epochs = read_method_state(ckpt)
    method_state = half_precision(method_state)
    data = ShippedData(layout=layout, coords=int(store.coords), class_names=tuple(store.class_names), path=ckpt)
    network = network_from_state(loaded, data, method_state, ckpt,
                                 f"the checkpoint does not fit the model of its run's {CONFIG_FILE}")
    config_text = (run / CONFIG_FILE).read_bytes()
    packed = {
        "format": FORMAT, "state_dict": method_state, "class_names": list(data.class_names), "layout": layout.name,
        "coords": data.coords, "epochs": epochs,
        "description": description or f"{type(network).__name__} trained on {loaded.cfg.experiment}",
        "run": f"{run.name} ({checkpoint} checkpoint, {epochs} epochs)",
        "config_sha256": hashlib.sha256(config_text).hexdigest(),
    }
    buffer = io.BytesIO()
    torch.save(packed, buffer)
    weights = buffer.getvalue()
    folder = Path(out_dir) if out_dir is not None else SHIPPED_DIR
    if len(weights) > max_bytes:
        raise ConfigError(f"the packed weights take {len(weights) / 1e6:.2f} MB, over the {max_bytes / 1e6:.2f} MB "
                          "allowed for package data; nothing was written (train a smaller model, e.g. a lower "
                          "model.base_channels)", str(folder / WEIGHTS_NAME), "size")
    folder.mkdir(parents=True, exist_ok=True)
    weights_path = write_bytes_atomic(folder / WEIGHTS_NAME, weights, fsync=True)
    config_path = write_bytes_atomic(folder / CONFIG_NAME, config_text, fsync=True)
    return PackResult(config_path=config_path, weights_path=weights_path, weights_bytes=len(weights),
                      num_parameters=sum(p.numel() for p in network.parameters()))
