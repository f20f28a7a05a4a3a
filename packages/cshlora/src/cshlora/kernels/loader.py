"""Loading the Triton kernels module for the current interpreter setting (imports triton only when called)."""

from __future__ import annotations

import importlib
import os
import sys

_TRUE = ("1", "true", "on", "yes", "y")


def interpreter_on() -> bool:
    """Whether Triton would decorate kernels for its CPU interpreter right now."""
    triton = sys.modules.get("triton")
    if triton is not None and hasattr(triton, "knobs"):
        return bool(triton.knobs.runtime.interpret)  # honours programmatic overrides too
    return os.environ.get("TRITON_INTERPRET", "").strip().lower() in _TRUE


def load_lowrank():
    """The kernels module, decorated for the current interpreter setting."""
    from . import lowrank

    if lowrank.INTERPRETED != interpreter_on():
        lowrank = importlib.reload(lowrank)
    return lowrank
