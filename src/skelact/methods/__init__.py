"""What is optimised: one file per paper recipe (supervised, FR-Head, SkeletonCLR, CrosSCLR, SkeletonMAE, ...).

A method wraps a model and turns a batch into a loss; the engine (:mod:`skelact.engine`) runs it.
"""
