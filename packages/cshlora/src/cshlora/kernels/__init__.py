"""Fused Triton kernels for :class:`cshlora.CSHLoRALinear` (the ``"triton"`` backend).

Importing this package imports neither triton nor the kernels: ``cshlora`` registers the backend
from here on every Linux install, so this must stay cheap and must not fail. The kernels module is
loaded on first use, and re-loaded if ``TRITON_INTERPRET`` changed since, because ``triton.jit``
fixes compiled-vs-interpreted at decoration time.

Where it runs: CUDA tensors in fp16/bf16/fp32. CPU tensors only under Triton's interpreter
(``TRITON_INTERPRET=1``) and only in fp32 (the interpreter mishandles bf16 dots); that path exists
for tests and is chosen only when ``backend="triton"`` is asked for explicitly: ``"auto"`` never
picks the interpreter, which is orders of magnitude slower than the torch path.

``"auto"`` does not pick these kernels on CUDA either, for now: they have never run on a GPU.
:data:`AUTO_ON_CUDA` turns that on once ``tools/gpu_check.sh`` step (a), the compiled kernels
against a float64 reference, has passed on a GPU and its result file is committed
(benchmarks/README.md, "Switching auto back to triton"). ``backend="triton"`` works meanwhile.
"""

from __future__ import annotations

import importlib
import os
import sys

import torch

_TRUE = ("1", "true", "on", "yes", "y")
_DTYPES_CUDA = (torch.float16, torch.bfloat16, torch.float32)
REQUIRES = "the triton backend runs fp16/bf16/fp32 CUDA tensors, and fp32 CPU tensors under TRITON_INTERPRET=1"
# Whether backend="auto" sends CUDA inputs here. False until the compiled kernels have passed
# tools/gpu_check.sh step (a) on a GPU with the result committed: until then auto keeps the torch
# path, so eval/predict on a GPU never run kernels that no GPU has run.
AUTO_ON_CUDA = False


def interpreter_on() -> bool:
    """Whether Triton would decorate kernels for its CPU interpreter right now."""
    triton = sys.modules.get("triton")
    if triton is not None and hasattr(triton, "knobs"):
        return bool(triton.knobs.runtime.interpret)  # honours programmatic overrides too
    return os.environ.get("TRITON_INTERPRET", "").strip().lower() in _TRUE


def supports(x: torch.Tensor) -> bool:
    """Inputs the triton backend can run when asked for by name."""
    if x.device.type == "cuda":
        return x.dtype in _DTYPES_CUDA
    return x.device.type == "cpu" and x.dtype == torch.float32 and interpreter_on()


def auto_supports(x: torch.Tensor) -> bool:
    """Inputs ``backend="auto"`` sends here: CUDA only (never the interpreter), once :data:`AUTO_ON_CUDA`."""
    return AUTO_ON_CUDA and x.device.type == "cuda" and x.dtype in _DTYPES_CUDA


def load_lowrank():
    """The kernels module, decorated for the current interpreter setting."""
    from . import lowrank

    if lowrank.INTERPRETED != interpreter_on():
        lowrank = importlib.reload(lowrank)
    return lowrank


def triton_forward(layer, x, s, var):
    """Backend entry point (see ``cshlora.backends``); imports the autograd function lazily."""
    from .autograd import triton_forward as forward

    return forward(layer, x, s, var)


__all__ = ["AUTO_ON_CUDA", "auto_supports", "interpreter_on", "load_lowrank", "supports", "triton_forward"]
