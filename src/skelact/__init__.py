"""skelact: human action recognition from skeletons and video.

The package reads left to right: ``skeleton`` (joint layouts, graphs) -> ``data`` (readers, the dataset store,
transforms) -> ``models`` -> ``methods`` -> ``engine`` -> ``evaluation`` -> ``cli``. Lower layers never import
higher ones.
"""

__version__ = "0.1.0"
