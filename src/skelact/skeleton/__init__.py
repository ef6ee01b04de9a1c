"""Joint layouts and the graphs built from them (numpy only)."""

from skelact.skeleton.graph import (adjacency, build_partition, hop_distance, inward_outward_partition,
                                    k_hop_adjacency, spatial_partition)
from skelact.skeleton.layout import Layout, available_layouts, get_layout, load_layout

__all__ = ["Layout", "adjacency", "available_layouts", "build_partition", "get_layout", "hop_distance",
           "inward_outward_partition", "k_hop_adjacency", "load_layout", "spatial_partition"]
