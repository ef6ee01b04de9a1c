"""Heatmap volumes: skelact's numpy (and torch) builders against pyskl's ``GeneratePoseTarget``, side by side.

Four cases, the shapes of PoseConv3D's NTU / FineGym recipe (COCO-17 joints, 48 frames, 56 x 56 maps, sigma 0.6):

- ``joint_1p``: joint volumes of one person, ``[17, 48, 56, 56]``;
- ``joint_2p``: the same with two persons (maximum of both);
- ``limb_1p``: limb volumes of one person, one map per bone of skelact's ``coco17`` layout (16 bones: pyskl's default
  list of 17 adds a hip-hip limb; pyskl is given our 16 so that both draw the same maps);
- ``test_10clip_flip``: a test sample of 10 clips of 48 frames, joint volumes and their mirror images (pyskl's
  ``double=True``; skelact's ``GenerateHeatmap double=true``): 20 volumes of ``[17, 48, 56, 56]``.

Poses are real: Penn Action's ground-truth 2D joints (``$SKELACT_DATA/penn_action_labels``, the first ``--clips``
label files), mapped by name onto COCO-17 (Penn's head as the nose; eyes and ears are not annotated, so they are
missing with confidence 0, which is how pyskl's data marks an undetected joint), cropped to the subject, sampled
to 48 frames and resized to 56 x 56 by skelact's own pipeline steps. The second person of ``joint_2p`` is the next
clip's subject. Confidences are Penn's visibility flags (0 or 1).

pyskl's file is not part of skelact: it is loaded from ``--pyskl-file`` (default ``.bench/pyskl/heatmap_related.py``
under the repository root, git-ignored) with a stand-in for its ``from ..builder import PIPELINES``. Before timing,
every case asserts that both give the same volumes to 1e-5. Timings are interleaved (pyskl, then ours, on the same
clip, clip after clip) so load changes hit both alike; the figures are the median and the best of ``--repeats``
calls (on a shared, overloaded machine a sub-millisecond call is sometimes descheduled, which the best shows), on one
core (``torch.set_num_threads(1)``, OMP/MKL threads 1, set before numpy loads).

    python benchmarks/bench_heatmaps.py [--pyskl-file PATH] [--repeats 30] [--clips 8] [--device cpu|cuda]

Prints one JSON line per case: pyskl's and our rates (clips/s; for the test sample, ms per sample), the speed-up
and the largest difference. ``--device cuda`` also times the batched torch builder on the GPU (batch ``--batch``).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import sys
import time
import types
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_var] = "1"

import numpy as np  # noqa: E402
import torch  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from skelact.data.heatmaps import heatmap_volume  # noqa: E402
from skelact.data.heatmaps_torch import heatmap_volume_torch  # noqa: E402
from skelact.data.sources.penn_action import PennActionSource  # noqa: E402
from skelact.data.transforms import GenerateHeatmap, Resize, SubjectCrop, UniformSample  # noqa: E402
from skelact.skeleton.layout import get_layout  # noqa: E402

SIZE = (56, 56)
FRAMES = 48
SIGMA = 0.6
#: COCO-17 joint name -> Penn Action joint name (Penn has no eyes or ears)
PENN_NAME = {"nose": "head"}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--pyskl-file", default=str(REPO / ".bench" / "pyskl" / "heatmap_related.py"))
    p.add_argument("--data", default=os.environ.get("SKELACT_DATA", str(REPO.parent / "shared" / "data")))
    p.add_argument("--clips", type=int, default=8, help="Penn Action clips to cycle through")
    p.add_argument("--repeats", type=int, default=30, help="timed calls per case and implementation")
    p.add_argument("--device", default="cpu", help="also time the torch builder on this device (cuda)")
    p.add_argument("--batch", type=int, default=32, help="clips per torch call on the device")
    return p.parse_args(argv)


def load_pyskl(path: Path):
    """pyskl's ``heatmap_related.py`` as a module, its relative ``..builder`` import answered by a stand-in
    package whose ``PIPELINES.register_module()`` returns the class unchanged."""
    if not path.is_file():
        sys.exit(f"{path}: no such file (copy pyskl's pyskl/datasets/pipelines/heatmap_related.py there)")

    class Registry:
        def register_module(self, *args, **kwargs):
            return lambda cls: cls

    for name in ("pyskl_stub", "pyskl_stub.pipelines"):
        package = types.ModuleType(name)
        package.__path__ = []
        sys.modules[name] = package
    builder = types.ModuleType("pyskl_stub.builder")
    builder.PIPELINES = Registry()
    sys.modules["pyskl_stub.builder"] = builder
    spec = importlib.util.spec_from_file_location("pyskl_stub.pipelines.heatmap_related", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def penn_as_coco(seq) -> tuple[np.ndarray, np.ndarray]:
    """Penn Action keypoints ``[1, T, 13, 2]`` and visibilities as COCO-17 ``[1, T, 17, 2]``, unmatched joints
    missing (0, confidence 0)."""
    coco, penn = get_layout("coco17"), get_layout("penn13")
    kp = np.zeros(seq.keypoints.shape[:2] + (17, 2), np.float32)
    scores = np.zeros(seq.keypoints.shape[:2] + (17,), np.float32)
    for v, name in enumerate(coco.joints):
        name = PENN_NAME.get(name, name)
        if name in penn.joints:
            kp[:, :, v] = seq.keypoints[:, :, penn.index(name), :2]
            scores[:, :, v] = seq.scores[:, :, penn.index(name)]
    scores[~np.any(kp != 0, axis=-1)] = 0
    return kp, scores


def real_samples(data: Path, count: int, num_clips: int) -> list[dict]:
    source = PennActionSource(data / "penn_action_labels")
    rng = np.random.default_rng(0)
    steps = [SubjectCrop(), UniformSample(clip_len=FRAMES, num_clips=num_clips, test_mode=True), Resize(list(SIZE))]
    out = []
    for item in source.items()[:count]:
        kp, scores = penn_as_coco(source.read(item))
        sample = {"keypoints": kp, "scores": scores, "layout": "coco17", "name": item.stem}
        for step in steps:
            sample = step(sample, rng)
        out.append(sample)
    return out


def two_person(samples: list[dict]) -> list[dict]:
    return [dict(s, keypoints=np.concatenate([s["keypoints"], samples[(i + 1) % len(samples)]["keypoints"]]),
                 scores=np.concatenate([s["scores"], samples[(i + 1) % len(samples)]["scores"]]))
            for i, s in enumerate(samples)]


def pyskl_results(sample: dict) -> dict:
    return {"keypoint": sample["keypoints"].copy(), "keypoint_score": sample["scores"].copy(), "img_shape": SIZE}


def timed(fn, arg) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn(arg)
    return time.perf_counter() - start, out


def run_case(name: str, samples: list[dict], theirs, ours, to_ours_layout, repeats: int) -> dict:
    worst = 0.0
    for s in samples:  # equal values first (this is also the warm-up)
        want = to_ours_layout(theirs(pyskl_results(s))["imgs"])
        got = ours(s)
        assert got.shape == want.shape, (name, got.shape, want.shape)
        worst = max(worst, float(np.abs(got - want).max()))
    assert worst <= 1e-5, f"{name}: skelact and pyskl differ by {worst}"
    t_theirs, t_ours = [], []
    for r in range(repeats):
        s = samples[r % len(samples)]
        results = pyskl_results(s)
        t_theirs.append(timed(theirs, results)[0])
        t_ours.append(timed(ours, s)[0])
    a, b = statistics.median(t_theirs), statistics.median(t_ours)
    fast_a, fast_b = min(t_theirs), min(t_ours)
    return {"case": name, "pyskl_ms": round(a * 1e3, 3), "skelact_ms": round(b * 1e3, 3),
            "pyskl_per_s": round(1 / a, 1), "skelact_per_s": round(1 / b, 1), "speedup": round(a / b, 2),
            "pyskl_best_ms": round(fast_a * 1e3, 3), "skelact_best_ms": round(fast_b * 1e3, 3),
            "speedup_best": round(fast_a / fast_b, 2), "max_abs_diff": worst, "repeats": repeats}


def main(argv=None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(1)
    pyskl = load_pyskl(Path(args.pyskl_file))
    coco = get_layout("coco17")
    one = real_samples(Path(args.data), args.clips, 1)
    two = two_person(one)
    tests = real_samples(Path(args.data), args.clips, 10)

    def frames_first(volume):  # pyskl's [T, K, H, W] as ours [K, T, H, W]
        return volume.transpose(1, 0, 2, 3)

    joints = pyskl.GeneratePoseTarget(sigma=SIGMA, with_kp=True, with_limb=False)
    limbs = pyskl.GeneratePoseTarget(sigma=SIGMA, with_kp=False, with_limb=True, skeletons=coco.bones)
    doubled = pyskl.GeneratePoseTarget(sigma=SIGMA, with_kp=True, with_limb=False, double=True)
    generate = GenerateHeatmap(sigma=SIGMA, double=True)

    def ours_test(sample):
        return generate(sample, None)["heatmap"]

    def test_layout(volume):  # pyskl's [2 * 10 * 48, K, H, W] as ours [20, K, 48, H, W]
        return volume.reshape(20, FRAMES, *volume.shape[1:]).transpose(0, 2, 1, 3, 4)

    rows = [
        run_case("joint_1p", one, joints, lambda s: heatmap_volume(s["keypoints"], s["scores"], SIZE, SIGMA),
                 frames_first, args.repeats),
        run_case("joint_2p", two, joints, lambda s: heatmap_volume(s["keypoints"], s["scores"], SIZE, SIGMA),
                 frames_first, args.repeats),
        run_case("limb_1p", one, limbs, lambda s: heatmap_volume(s["keypoints"], s["scores"], SIZE, SIGMA,
                                                                 limbs=coco.bones, with_joints=False),
                 frames_first, args.repeats),
        run_case("test_10clip_flip", tests, doubled, ours_test, test_layout, max(args.repeats // 3, 5)),
    ]
    for row in rows:
        print(json.dumps(row), flush=True)
    for row in torch_rows(one, two, coco, args):
        print(json.dumps(row), flush=True)


def torch_rows(one: list[dict], two: list[dict], coco, args) -> list[dict]:
    """The batched torch builder: clips/s on the CPU (one thread) and on ``--device``, values checked against the
    numpy builder."""
    devices = ["cpu"] + ([args.device] if args.device != "cpu" else [])
    rows = []
    for case, samples, limbs in (("joint_1p", one, None), ("joint_2p", two, None), ("limb_1p", one, coco.bones)):
        batch = [samples[i % len(samples)] for i in range(args.batch)]
        kp = torch.from_numpy(np.stack([s["keypoints"] for s in batch]))
        sc = torch.from_numpy(np.stack([s["scores"] for s in batch]))
        want = np.stack([heatmap_volume(s["keypoints"], s["scores"], SIZE, SIGMA, limbs, limbs is None)
                         for s in batch[:4]])
        for device in devices:
            kd, sd = kp.to(device), sc.to(device)

            def build():
                out = heatmap_volume_torch(kd, sd, SIZE, SIGMA, limbs, limbs is None)
                if device != "cpu":
                    torch.cuda.synchronize()
                return out

            got = build()
            diff = float(np.abs(got[:4].cpu().numpy() - want).max())
            assert diff <= 1e-5, (case, device, diff)
            times = []
            for _ in range(max(args.repeats // 3, 5)):
                times.append(timed(lambda _: build(), None)[0])
            t = statistics.median(times)
            rows.append({"case": case, "torch_device": device, "batch": args.batch,
                         "clips_per_s": round(args.batch / t, 1), "max_abs_diff_vs_numpy": diff})
    return rows


if __name__ == "__main__":
    main()
