"""FstCN on the CPU: clip pairs per second from the input pipeline (with and without the frame cache) against clips
per second the model trains and infers on, so one can see whether loading keeps up with the model.

Input pipeline: the ``ClipPairs`` step of a config's train and test pipelines over the first ``--samples`` training
(test) videos of the store, in one process:

- ``cache cold``: an empty frame cache, so each video is decoded once and written (the first epoch);
- ``cache warm``: the same samples again, read from the memory-mapped cache (every later epoch);
- ``no cache``: ``cache: false``, every call decodes the video.

Model: the config's model on random inputs of the pipeline's shapes, one thread: ``train`` times zero_grad,
forward, cross-entropy (plus the auxiliary loss when used), backward and an AdamW step on a batch of
``data.batch_size`` clip pairs; ``infer`` times an ``eval()`` forward of one test sample (``M x 18`` views).
Medians of ``--repeats`` after one warm-up.

    OMP_NUM_THREADS=1 python benchmarks/bench_fstcn.py configs/penn_action/fstcn_rgb_cpu.yaml \\
        --store STORE [--samples 48] [--repeats 5]

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config")
    parser.add_argument("--store", required=True)
    parser.add_argument("--samples", type=int, default=48)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    import numpy as np
    import torch

    from skelact.config import load_config
    from skelact.data.batch import collate_by_name, model_inputs
    from skelact.data.cache import open_store
    from skelact.data.dataset import SkeletonDataset
    from skelact.engine.build import build_method, build_pipeline_of, subset_indices

    torch.set_num_threads(1)
    loaded = load_config(args.config)
    store = open_store(args.store)
    out: dict = {"config": args.config, "samples": args.samples, "load_avg_1m_before": os.getloadavg()[0]}
    for which in ("train", "test"):
        indices = subset_indices(loaded, store, which)[: args.samples]
        pipeline = build_pipeline_of(loaded, which)
        pairs = pipeline.transforms[0]
        with tempfile.TemporaryDirectory() as cache_dir:
            pairs.cache_dir = cache_dir
            pairs._frame_cache = None
            data = SkeletonDataset(store, indices, pipeline, seed=0)
            for label, cache in (("cache_cold", True), ("cache_warm", True), ("no_cache", False)):
                pairs.cache = cache
                start = time.perf_counter()
                for i in range(len(data)):
                    data[i]
                seconds = time.perf_counter() - start
                out[f"{which}_pipeline_{label}_clips_per_s"] = round(len(data) / seconds, 1)
        if which == "train":
            train_batch = collate_by_name([data[i % len(data)] for i in range(int(loaded.cfg.data.batch_size))])
        else:
            test_batch = collate_by_name([data[0]])

    from skelact.engine.build import build_model

    model = build_model(loaded, store)
    method = build_method(loaded, model)
    optimiser = torch.optim.AdamW(method.parameters(), lr=1e-4)

    def train_step() -> None:
        optimiser.zero_grad()
        loss = method.training_step(train_batch)[0]
        loss.backward()
        optimiser.step()

    def infer_step() -> None:
        with torch.no_grad():
            method(**model_inputs(test_batch))

    for label, step, clips in (("train", train_step, int(loaded.cfg.data.batch_size)), ("infer", infer_step, 1)):
        method.train(label == "train")
        step()
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            step()
            times.append(time.perf_counter() - start)
        out[f"model_{label}_clips_per_s"] = round(clips / statistics.median(times), 2)
    views = int(test_batch[next(iter(model_inputs(test_batch)))].shape[1])
    out["test_views_per_clip"] = views
    out["model_infer_views_per_s"] = round(out["model_infer_clips_per_s"] * views, 1)
    out["load_avg_1m_after"] = os.getloadavg()[0]
    out["numpy"] = np.__version__
    out["torch"] = torch.__version__
    print(json.dumps(out))


if __name__ == "__main__":
    main()
