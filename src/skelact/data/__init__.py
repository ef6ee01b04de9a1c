"""Data: readers for foreign formats, the dataset store, splits and transforms."""

from skelact.data.sequence import SkeletonSequence

__all__ = ["SkeletonSequence"]
