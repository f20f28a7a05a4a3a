"""The ``scaleearth`` command line: thin Typer commands over the ScaleEarth libraries."""

from ._version import __version__ as __version__
