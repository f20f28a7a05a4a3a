"""The ``scaleearth`` command line: thin Typer commands over the ScaleEarth libraries."""

__version__ = "0.1.0"
