"""Fused Triton kernels for :class:`cshlora.CSHLoRALinear` (the ``"triton"`` backend).

Importing this package registers the ``"triton"`` backend and imports neither triton nor the kernels:
``import cshlora`` imports it on every install where triton is found, so it must stay cheap and must
not fail. The kernels module is
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

import torch

from ..backends import Backend, register_backend
from .loader import interpreter_on, load_lowrank

_DTYPES_CUDA = (torch.float16, torch.bfloat16, torch.float32)
REQUIRES = "the triton backend runs fp16/bf16/fp32 CUDA tensors, and fp32 CPU tensors under TRITON_INTERPRET=1"
# Whether backend="auto" sends CUDA inputs here. False until the compiled kernels have passed
# tools/gpu_check.sh step (a) on a GPU with the result committed: until then auto keeps the torch
# path, so eval/predict on a GPU never run kernels that no GPU has run.
AUTO_ON_CUDA = False


def supports(x: torch.Tensor) -> bool:
    """Inputs the triton backend can run when asked for by name."""
    if x.device.type == "cuda":
        return x.dtype in _DTYPES_CUDA
    return x.device.type == "cpu" and x.dtype == torch.float32 and interpreter_on()


def auto_supports(x: torch.Tensor) -> bool:
    """Inputs ``backend="auto"`` sends here: CUDA only (never the interpreter), once :data:`AUTO_ON_CUDA`."""
    return AUTO_ON_CUDA and x.device.type == "cuda" and x.dtype in _DTYPES_CUDA


def triton_forward(layer, x, s, var):
    """Backend entry point (see ``cshlora.backends``); imports the autograd function lazily."""
    from .autograd import triton_forward as forward

    return forward(layer, x, s, var)


register_backend(
    Backend("triton", triton_forward, supports, priority=10, auto_supports=auto_supports, requires=REQUIRES)
)

__all__ = ["AUTO_ON_CUDA", "auto_supports", "interpreter_on", "load_lowrank", "supports", "triton_forward"]
