"""Source adapters: one small module per dataset format, registered by the `--source` kind they serve.

An adapter has two functions: `validate(arg)` fails at once (SourceError) on a missing path or a bad
argument, before any work starts; `items(arg, options)` yields `Item`s (one per image, in a fixed
order) and `Reject`s for inputs it cannot use. A problem with one record is a `Reject` (its fields are
checked with `_fields`); only a problem with the whole source (an unreadable index file) raises
`SourceError`. Adding a dataset = one module that calls `register`.
"""

from __future__ import annotations

# Importing the adapters registers them.
from . import dota, fmow, folder, llava, mtsccd, rsvqa, synthetic, xben  # noqa: E402,F401,I001
from .registry import REGISTRY, Adapter, SourceError, SourceOptions, SourceSpec, get_adapter, parse_source, register

__all__ = [
    "REGISTRY",
    "Adapter",
    "SourceError",
    "SourceOptions",
    "SourceSpec",
    "get_adapter",
    "parse_source",
    "register",
]
