"""Joint layouts and the graphs built from them (numpy only)."""

from skelact.skeleton.layout import Layout, available_layouts, get_layout, load_layout

__all__ = ["Layout", "available_layouts", "get_layout", "load_layout"]
