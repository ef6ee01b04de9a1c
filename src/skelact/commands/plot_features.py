"""``skelact plot-features RUN``: a 2-D map of a run's test features for its most confused classes, before and
after FR-Head (:func:`skelact.inference.features.plot_ambiguous_features`)."""

from __future__ import annotations

import argparse

from skelact.errors import ConfigError
from skelact.inference.features import FIGURE_FILE, plot_ambiguous_features

NAME = "plot-features"
HELP = "2-D map of a run's features for its most confused classes"
DESCRIPTION = ("Extract the test features of a run (and of a baseline run, for FR-Head's before/after figure) and "
               "plot the classes it confuses most (t-SNE or PCA).")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of ``skelact plot-features``."""
    parser.add_argument("run", help="a run directory (an FR-Head run, or any run)")
    parser.add_argument("--baseline", help="the baseline run to compare with (the paper's figure)")
    parser.add_argument("--out", help=f"PNG to write (default RUN/{FIGURE_FILE})")
    parser.add_argument("--method", choices=("tsne", "pca"), default="tsne")
    parser.add_argument("--pairs", type=int, default=3, help="most confused pairs whose classes are shown")
    parser.add_argument("--classes", help="comma-separated class indices instead of the confused pairs")
    from skelact.engine.runs import CHECKPOINT_NAMES, DEFAULT_CHECKPOINT, TEST_SELECTED_NOTE

    parser.add_argument("--checkpoint", choices=CHECKPOINT_NAMES, default=DEFAULT_CHECKPOINT,
                        help=f"default: {DEFAULT_CHECKPOINT} ({TEST_SELECTED_NOTE})")
    parser.add_argument("--seed", type=int, default=0)



def run(args: argparse.Namespace) -> int:
    """Run the plot from parsed arguments; SkelactErrors propagate to the caller's one-line handler."""
    try:
        classes = None if args.classes is None else [int(c) for c in args.classes.split(",") if c.strip()]
    except ValueError as e:
        raise ConfigError(f"expected comma-separated class indices ({e})", field="--classes") from None
    path = plot_ambiguous_features(args.run, args.baseline, args.out, num_pairs=args.pairs, classes=classes,
                                   method=args.method, checkpoint=args.checkpoint, seed=args.seed)
    print(f"wrote {path} and {path.with_suffix('.json')}")
    return 0

