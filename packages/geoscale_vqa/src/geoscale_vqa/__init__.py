"""GeoScale-VQA: build scale-layered remote-sensing VQA corpora as WebDataset shards.

The source adapters and the builder arrive with their own issue; this package currently only
reserves the name and version inside the ScaleEarth workspace.
"""

__version__ = "0.1.0"
