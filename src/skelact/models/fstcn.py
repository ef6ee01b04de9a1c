"""FstCN: factorised spatio-temporal convolutional network with SCI score fusion of its test views.

Sun, Jia, Yeung and Shi, "Human Action Recognition using Factorized Spatio-Temporal Convolutional Networks",
ICCV 2015 (Sections 3-4, Fig. 2). The 3D convolution of a clip is factorised into 2D spatial convolutions per
frame (SCLs) followed by 1D temporal convolutions (TCLs):

* **lower SCLs**, shared by every frame of both paths: Conv 96 7x7/2, ReLU, LRN, max-pool 3/2; Conv 256 5x5/2,
  ReLU, LRN, max-pool 3/2; Conv 512 3x3; Conv 512 3x3 (ReLU after each);
* **temporal path**, on the frame differences ``diff`` (``V_diff``): Conv 128 3x3 and max-pool per frame, then
  the **transformation-and-permutation (T-P) operator**: the ``C x T x H x W`` features are reshaped to
  ``(H W) x C x T`` and multiplied along ``C`` by a learned matrix ``P`` (``C x C'``, started at the identity);
  then two parallel temporal convolutions, kernels 3 and 5 along ``T`` with 32 channels (the ``H W`` positions
  are their input channels, the ``C'`` rows share the kernel), dropout 0.5, no pooling; fully connected 4096 ->
  2048;
* **spatial path**, on one frame of ``clip`` (``V_clip``; the middle one): Conv 128 3x3 and max-pool, fully
  connected 4096 -> 2048;
* the two 2048-vectors concatenated, then the classifier; an **auxiliary classifier** on the lower SCLs'
  features of the spatial frame (global average pooling, then a linear layer) for the training stage that uses
  it (``aux_weight`` > 0 adds its cross-entropy times that weight to the loss; 0 leaves it out).

Reading of the details the paper leaves open: convolutions pad to keep ``k // 2`` borders (so crops smaller than
204 still reach the top); the temporal convolutions pad ``T`` the same way. Widths are arguments, paper values by
default, so a CPU config can be narrow. ``pretrained``: a local weights file (a state dict, or a checkpoint
holding one under ``state_dict`` with a ``model.`` / ``method.model.`` prefix); tensors whose name and shape
match are loaded, nothing is downloaded (the paper starts from ImageNet weights, which are not reachable here).

**Test views.** Given ``[N, views, 3, l_t, H, W]`` inputs (``M`` clip pairs x 18 crops from
:class:`~skelact.data.transforms.ClipPairs`), the model scores every view and fuses them per sample
(``fusion``): ``sci`` weights each view's softmax vector ``p_v`` by its sparsity concentration index,
``SCI(p) = (K max_k p_k / ||p||_1 - 1) / (K - 1)``, and sums ``sum_v SCI(p_v) p_v`` over all crops of all clip
pairs at once (our reading of the paper's "SCI-based score fusion": one weighted sum over every crop and clip,
with no separate per-clip stage; a sample whose views are all exactly uniform falls back to the plain sum).
``mean`` averages ``p_v`` (the ablation). This is the rule of
:func:`skelact.evaluation.fusion.fuse_sci` with the views as its streams and stream weights 1, written in torch
here because models sit below ``evaluation`` in the layers; ``tests/test_fstcn.py`` checks the two agree. The
output is ``log`` of the fused, renormalised probabilities, so ``argmax``, cross-entropy and the saved scores
all read it as logits.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from skelact.errors import ConfigError
from skelact.models.data_info import DataArguments

FUSIONS = ("sci", "mean")


def sci(probabilities: torch.Tensor) -> torch.Tensor:
    """Sparsity concentration index of each non-negative vector along the last axis (1: one-hot, 0: uniform)."""
    k = probabilities.shape[-1]
    total = probabilities.sum(dim=-1)
    ratio = probabilities.max(dim=-1).values / total.clamp_min(torch.finfo(probabilities.dtype).tiny)
    return (k * ratio - 1.0) / (k - 1)


def fuse_views(view_logits: torch.Tensor, fusion: str = "sci") -> torch.Tensor:
    """``[N, views, K]`` logits -> ``[N, K]`` log of the fused probabilities (see the module docstring)."""
    probabilities = torch.softmax(view_logits.double(), dim=-1)
    if fusion == "sci":
        weights = sci(probabilities)  # [N, views]
        no_evidence = weights.sum(dim=1, keepdim=True) <= 0
        weights = torch.where(no_evidence, torch.ones_like(weights), weights)
    elif fusion == "mean":
        weights = torch.ones(probabilities.shape[:2], dtype=probabilities.dtype, device=probabilities.device)
    else:
        raise ValueError(f"unknown fusion {fusion!r}; expected one of {FUSIONS}")
    fused = torch.einsum("nv,nvk->nk", weights, probabilities)
    fused = fused / fused.sum(dim=1, keepdim=True)
    return torch.log(fused.clamp_min(1e-30)).to(view_logits.dtype)


class TransformPermute(nn.Module):
    """The T-P operator: ``[N, T, C, H, W]`` -> ``[N, H W, C', T]``, ``C'`` rows = ``P^T`` times the channels.

    ``P`` is ``C x C'``, learned, started at the identity (its first ``min(C, C')`` columns)."""

    def __init__(self, channels: int, out_channels: int):
        super().__init__()
        self.P = nn.Parameter(torch.eye(channels, out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, t, c, h, w = x.shape
        # C x T x H x W -> (H W) x C x T, then along C: (H W) x C' x T
        reshaped = x.permute(0, 3, 4, 2, 1).reshape(n, h * w, c, t)
        return torch.einsum("nsct,cd->nsdt", reshaped, self.P)


def _conv(in_channels: int, out_channels: int, kernel: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, kernel, stride=stride, padding=kernel // 2)


class LowerSCL(nn.Module):
    """The lower spatial convolutional layers shared by every frame: ``[B, 3, H, W]`` -> ``[B, c4, h, w]``."""

    def __init__(self, widths: Sequence[int]):
        super().__init__()
        c1, c2, c3, c4 = widths
        self.layers = nn.Sequential(
            _conv(3, c1, 7, 2), nn.ReLU(inplace=True), nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0),
            nn.MaxPool2d(3, 2),
            _conv(c1, c2, 5, 2), nn.ReLU(inplace=True), nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0),
            nn.MaxPool2d(3, 2),
            _conv(c2, c3, 3), nn.ReLU(inplace=True),
            _conv(c3, c4, 3), nn.ReLU(inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def _fc(in_features: int, widths: Sequence[int], dropout: float) -> nn.Sequential:
    layers: list[nn.Module] = []
    for width in widths:
        layers += [nn.Linear(in_features, width), nn.ReLU(inplace=True), nn.Dropout(dropout)]
        in_features = width
    return nn.Sequential(*layers)


class FstCN(DataArguments, nn.Module):
    """FstCN (see the module docstring). ``forward(clip, diff)``: ``[N, 3, l_t, H, W]`` each -> logits ``[N, K]``;
    ``[N, views, 3, l_t, H, W]`` -> fused log-probabilities ``[N, K]``."""

    DATA_ARGUMENTS = ("num_classes",)

    def __init__(self, num_classes: int, clip_len: int = 5, crop_size: int = 204,
                 scl_widths: Sequence[int] = (96, 256, 512, 512), path_channels: int = 128,
                 tp_channels: int = 128, temporal_channels: int = 32, temporal_kernels: Sequence[int] = (3, 5),
                 fc_widths: Sequence[int] = (4096, 2048), dropout: float = 0.5, aux_weight: float = 0.0,
                 fusion: str = "sci", pretrained: str | None = None):
        super().__init__()
        if len(scl_widths) != 4 or any(int(w) < 1 for w in scl_widths):
            raise ConfigError(f"expected four positive widths, got {list(scl_widths)}", field="scl_widths")
        if fusion not in FUSIONS:
            raise ConfigError(f"expected one of {', '.join(FUSIONS)}, got {fusion!r}", field="fusion")
        if not float(aux_weight) >= 0:
            raise ConfigError(f"expected a weight >= 0, got {aux_weight!r}", field="aux_weight")
        if not fc_widths:
            raise ConfigError("expected at least one width", field="fc_widths")
        self.num_classes = int(num_classes)
        self.clip_len = int(clip_len)
        self.crop_size = int(crop_size)
        self.fusion = fusion
        #: weight of the auxiliary classifier's loss (read by the supervised method; 0: not used)
        self.aux_weight = float(aux_weight)
        self.lower = LowerSCL([int(w) for w in scl_widths])
        c4 = int(scl_widths[3])
        self.temporal_scl = nn.Sequential(_conv(c4, path_channels, 3), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2))
        self.spatial_scl = nn.Sequential(_conv(c4, path_channels, 3), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2))
        try:
            with torch.no_grad():
                probe = self.temporal_scl(self.lower(torch.zeros(1, 3, self.crop_size, self.crop_size)))
        except RuntimeError:
            raise ConfigError(f"{self.crop_size} pixels is too small a crop for FstCN's seven pooled layers; use "
                              "at least 64", field="crop_size") from None
        _, _, h, w = probe.shape
        self.tp = TransformPermute(path_channels, tp_channels)
        self.tcl = nn.ModuleList(
            nn.Sequential(nn.Conv2d(h * w, temporal_channels, (1, int(k)), padding=(0, int(k) // 2)),
                          nn.ReLU(inplace=True), nn.Dropout(dropout))
            for k in temporal_kernels)
        temporal_features = len(self.tcl) * temporal_channels * tp_channels * self.clip_len
        self.temporal_fc = _fc(temporal_features, fc_widths, dropout)
        self.spatial_fc = _fc(path_channels * h * w, fc_widths, dropout)
        self.classifier = nn.Linear(2 * int(fc_widths[-1]), self.num_classes)
        self.aux_classifier = nn.Linear(c4, self.num_classes)
        if pretrained:
            self.load_pretrained(pretrained)

    # -- blocks ---------------------------------------------------------------------------------------------------

    def lower_frames(self, frames: torch.Tensor) -> torch.Tensor:
        """``[N, 3, T, H, W]`` -> lower SCL features ``[N, T, C, h, w]`` of every frame."""
        n, c, t, h, w = frames.shape
        if h != self.crop_size or w != self.crop_size:
            raise ValueError(f"FstCN was built for {self.crop_size}x{self.crop_size} crops (model.crop_size), got "
                             f"{h}x{w} frames")
        features = self.lower(frames.transpose(1, 2).reshape(n * t, c, h, w))
        return features.reshape(n, t, *features.shape[1:])

    def temporal_path(self, diff: torch.Tensor) -> torch.Tensor:
        """``V_diff`` ``[N, 3, l_t, H, W]`` -> ``[N, fc_widths[-1]]``."""
        lower = self.lower_frames(diff)
        n, t = lower.shape[:2]
        features = self.temporal_scl(lower.flatten(0, 1))
        features = self.tp(features.reshape(n, t, *features.shape[1:]))  # [N, H W, C', T]
        return self.temporal_fc(torch.cat([conv(features).flatten(1) for conv in self.tcl], dim=1))

    def spatial_path(self, clip: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``V_clip`` ``[N, 3, l_t, H, W]`` -> (``[N, fc_widths[-1]]``, auxiliary logits ``[N, K]``), from its
        middle frame."""
        frame = clip[:, :, clip.shape[2] // 2: clip.shape[2] // 2 + 1]
        lower = self.lower_frames(frame)[:, 0]
        aux = self.aux_classifier(lower.mean(dim=(2, 3)))
        return self.spatial_fc(self.spatial_scl(lower).flatten(1)), aux

    # -- forward --------------------------------------------------------------------------------------------------

    def forward(self, clip: torch.Tensor, diff: torch.Tensor, return_aux: bool = False) -> Any:
        if clip.dim() == 6:
            n, views = clip.shape[:2]
            logits = self.forward(clip.flatten(0, 1), diff.flatten(0, 1))
            return fuse_views(logits.reshape(n, views, -1), self.fusion)
        spatial, aux = self.spatial_path(clip)
        logits = self.classifier(torch.cat([self.temporal_path(diff), spatial], dim=1))
        return (logits, aux) if return_aux else logits

    # -- weights --------------------------------------------------------------------------------------------------

    def load_pretrained(self, path: str) -> None:
        """Load the tensors of a local weights file whose names and shapes match this model's."""
        file = Path(path).expanduser()
        if not file.is_file():
            raise ConfigError(f"no such weights file {str(file)!r}", field="pretrained")
        try:
            raw = torch.load(file, map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001 - any unreadable file is one user-facing line
            raise ConfigError(f"unreadable weights file {str(file)!r} ({type(e).__name__})", field="pretrained") \
                from None
        state = raw.get("state_dict", raw) if isinstance(raw, dict) else None
        if not isinstance(state, dict):
            raise ConfigError(f"{str(file)!r} holds no state dict", field="pretrained")
        own = self.state_dict()
        matched = {}
        for key, value in state.items():
            for prefix in ("method.model.", "model.", ""):
                name = key[len(prefix):] if key.startswith(prefix) else None
                if name in own and torch.is_tensor(value) and value.shape == own[name].shape:
                    matched[name] = value
                    break
        if not matched:
            raise ConfigError(f"no tensor of {str(file)!r} matches FstCN's names and shapes", field="pretrained")
        self.load_state_dict(matched, strict=False)
        self.pretrained_keys = sorted(matched)
