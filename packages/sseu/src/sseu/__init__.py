"""SSE-U: predict log10 ground sampling distance and its uncertainty from visual features.

The head, losses and metrics arrive with their own issue; this package currently only
reserves the name and version inside the ScaleEarth workspace.
"""

__version__ = "0.1.0"
