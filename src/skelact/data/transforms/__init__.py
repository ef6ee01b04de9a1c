"""Per-sample data transforms: numpy only, one sample at a time, every random choice from a passed-in generator.

**Design.** A transform is a callable ``transform(sample, rng) -> sample``. ``sample`` is a plain dict holding at
least ``keypoints [M, T, V, C]`` float32 and optionally ``scores [M, T, V]``, ``label``, ``layout`` (a
:class:`~skelact.skeleton.layout.Layout` or its name), ``name`` (used in error messages) and ``meta``
(:mod:`skelact.data.transforms.sample` lists the keys; :func:`sample_from_sequence` builds one from a
``SkeletonSequence``). ``rng`` is a :class:`numpy.random.Generator`; transforms never touch numpy's global state, so a
pipeline run is reproducible from the generator's seed. Transforms return a new dict and never write into the
arrays they receive. Temporal transforms re-index ``scores`` with the keypoints; joint re-orderings permute them.

**Configs.** Every transform is registered by class name: :func:`build_transform` turns ``{'type': Name, **kwargs}``
into an instance and :func:`build_pipeline` (or ``Compose([...])``) a list of them into a pipeline. A wrong type or
argument raises one :class:`~skelact.errors.ConfigError` naming it. :data:`PRESETS` holds the published recipes.

**What reproduces what** (read from the official code; our own implementations):

=====================  ===========================================================================================
``ValidCropResize``    CTR-GCN ``valid_crop_resize`` (NTU): crop ratio in ``p_interval``, linear resize to 64
``RandomRotation``     CTR-GCN ``random_rot`` / pyskl ``RandomRot``: one x/y/z rotation per sample, +-0.3 rad
``CenterOnJoint``      CTR-GCN NW-UCLA: subtract the first frame's spine joint (index 1); ``frame: each``:
                       CrosSCLR NTU: every frame on its own spine-shoulder joint
``AlignShoulders``     CrosSCLR NTU: every frame turned about y so the shoulders lie along +x
``InterpolateFrames``  CrosSCLR NTU: linear interpolation in time to 50 frames
``RandomViewRotation`` CTR-GCN NW-UCLA: random whole-degree x/y turns in +-60 and a scale in [0.5, 1.5]
``MinMaxNormalize``    CTR-GCN NW-UCLA: per-axis min-max to [-1, 1] over the sample
``UclaSample``         CTR-GCN NW-UCLA: 52 sorted draws (train) / evenly spaced frames (test)
``PreNormalize3D``     pyskl / 2s-AGCN: drop empty frames, centre, spine to +z, shoulders to +x
``TorsoNormalize``     image keypoints: hip midpoint to 0, median torso length to 1 (ours; any estimator)
``UniformSample``      pyskl ``UniformSampleFrames``: segment-wise sampling, seeded and deterministic in test mode
``TemporalCrop``       CrosSCLR / SkeletonCLR ``temperal_crop``: mirrored padding T // 6, random crop of length T
``Shear``              CrosSCLR / SkeletonCLR ``shear``: random 3x3 shear, off-diagonals in +-0.5
``RandomScale``        pyskl ``RandomScale``: per-axis factors 1 +- 0.2
``RandomBoneScale``    bone lengths times U[1 - s, 1 + s], rebuilt from the centre outward (ours)
``Flip``               left/right mirror through the layout's flip pairs
``ToModality``         joint, bone, joint_motion, bone_motion (:mod:`.modality`, the only place they are computed)
``SubjectCrop`` ...    pyskl ``PoseCompact``, ``Resize``, ``RandomResizedCrop``, ``GeneratePoseTarget`` (``GenerateHeatmap``,
                       ``HeatmapFlip``): PoseConv3D heatmap volumes (:mod:`.heatmap`)
``RGBPoseClips``       pyskl ``MMUniformSampleFrames`` ... ``GeneratePoseTarget(scaling=0.25)``: RGBPose-Conv3D's
                       RGB clip and heatmap clip of one video, one crop and flip (:mod:`.rgb_pose_clips`)
``PoseJitter`` ...     test-time corruptions (``DropJoints``, ``ZeroConfidence``): estimator noise made on purpose,
                       for the PoseConv3D robustness benchmark (ours; :mod:`.corruption`)
``ToInputs``           the last step: names the arrays the model takes (:mod:`.inputs`)
=====================  ===========================================================================================

Not reproduced on purpose: CTR-GCN's NW-UCLA loader (and pyskl's ``RepeatDataset``) repeating the training set 5
times per epoch: in skelact an epoch is one pass, and the engine counts passes honestly.
"""

from skelact.data.transforms.clip_pairs import ClipPairs
from skelact.data.transforms.compose import Compose, build_pipeline
from skelact.data.transforms.corruption import DropJoints, PoseJitter, ZeroConfidence
from skelact.data.transforms.heatmap import (
    GenerateHeatmap,
    HeatmapFlip,
    RandomResizedCrop,
    Resize,
    SelectCoords,
    SubjectCrop,
)
from skelact.data.transforms.inputs import DEFAULT_INPUTS, ToInputs
from skelact.data.transforms.interpolate import InterpolateFrames, interpolate_frames, interpolation_positions
from skelact.data.transforms.modality import (
    MODALITIES,
    ToModality,
    bone_vectors,
    modality_name,
    modality_scores,
    motion,
    to_modality,
)
from skelact.data.transforms.presets import PRESETS, preset_pipeline, preset_specs
from skelact.data.transforms.rgb_pose_clips import RGBPoseClips
from skelact.data.transforms.registry import TRANSFORMS, available_transforms, build_transform, register_transform
from skelact.data.transforms.sample import Sample, sample_from_sequence
from skelact.data.transforms.spatial import (
    Flip,
    RandomBoneScale,
    RandomRotation,
    RandomScale,
    RandomViewRotation,
    Shear,
    ctrgcn_rotation,
    flip_keypoints,
    scale_bones,
    shear_matrix,
    ucla_view_matrix,
)
from skelact.data.transforms.temporal import (
    TemporalCrop,
    UclaSample,
    UniformSample,
    ValidCropResize,
    count_valid_frames,
    resize_time_bilinear,
    temporal_crop_indices,
    ucla_test_indices,
    ucla_train_indices,
    uniform_sample_indices,
    uniform_sample_test_indices,
    valid_crop_window,
)
from skelact.data.transforms.view import CenterOnJoint, MinMaxNormalize, PreNormalize3D, TorsoNormalize
from skelact.data.transforms.view_alignment import AlignShoulders, shoulder_angles

__all__ = [
    "DEFAULT_INPUTS",
    "MODALITIES",
    "PRESETS",
    "TRANSFORMS",
    "AlignShoulders",
    "CenterOnJoint",
    "ClipPairs",
    "RGBPoseClips",
    "Compose",
    "DropJoints",
    "Flip",
    "GenerateHeatmap",
    "HeatmapFlip",
    "InterpolateFrames",
    "MinMaxNormalize",
    "PoseJitter",
    "PreNormalize3D",
    "RandomBoneScale",
    "RandomResizedCrop",
    "RandomRotation",
    "RandomScale",
    "RandomViewRotation",
    "Resize",
    "Sample",
    "SelectCoords",
    "Shear",
    "SubjectCrop",
    "TemporalCrop",
    "TorsoNormalize",
    "ToInputs",
    "ToModality",
    "UclaSample",
    "UniformSample",
    "ValidCropResize",
    "ZeroConfidence",
    "available_transforms",
    "bone_vectors",
    "build_pipeline",
    "build_transform",
    "count_valid_frames",
    "ctrgcn_rotation",
    "flip_keypoints",
    "interpolate_frames",
    "interpolation_positions",
    "modality_name",
    "modality_scores",
    "motion",
    "preset_pipeline",
    "preset_specs",
    "register_transform",
    "resize_time_bilinear",
    "sample_from_sequence",
    "scale_bones",
    "shear_matrix",
    "shoulder_angles",
    "temporal_crop_indices",
    "to_modality",
    "ucla_test_indices",
    "ucla_train_indices",
    "ucla_view_matrix",
    "uniform_sample_indices",
    "uniform_sample_test_indices",
    "valid_crop_window",
]
