"""skelact: human action recognition from skeletons and video.

The package reads left to right: ``skeleton`` (joint layouts, graphs) -> ``data`` (readers, the dataset store,
transforms) -> ``models`` -> ``methods`` -> ``evaluation`` -> ``pose`` -> ``config`` -> ``engine`` -> ``cli``.
Lower layers never import higher ones (docs/architecture.md has the full table; tests/test_architecture.py
checks it).
"""

__version__ = "0.1.0"
