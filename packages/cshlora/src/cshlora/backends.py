"""Registry of compute backends for the low-rank, gated path of :class:`CSHLoRALinear`.

A backend is a function ``forward(layer, x, s, var) -> Tensor`` returning the layer's whole output
``base(x) + scaling * ((dropout(x) @ A^T) * h(s)) @ B^T`` in the base output's dtype, so a backend
may fuse the adapter into the base computation. ``s`` and ``var`` arrive already validated and
shaped to broadcast against ``x.shape[:-1]`` (or ``None`` for ungated LoRA). Backends register
themselves on import (``torch`` here; ``triton`` in ``cshlora.kernels``, which ``import cshlora``
imports where triton is installed); ``"auto"`` picks the highest-priority backend that offers itself to
``auto`` for the input (today always torch: triton waits for a GPU check, see ``cshlora.kernels``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from .layer import CSHLoRALinear

ForwardFn = Callable[["CSHLoRALinear", torch.Tensor, "torch.Tensor | None", "torch.Tensor | None"], torch.Tensor]


@dataclass(frozen=True)
class Backend:
    name: str
    forward: ForwardFn
    supports: Callable[[torch.Tensor], bool]  # can it run this input (device, dtype)?
    priority: int  # higher wins under "auto"
    # Inputs "auto" may send here (default: ``supports``); lets a backend run somewhere only when
    # asked for by name, e.g. triton's CPU interpreter, which exists for tests.
    auto_supports: Callable[[torch.Tensor], bool] | None = None
    requires: str = ""  # what ``supports`` wants, for the error message


_REGISTRY: dict[str, Backend] = {}


def register_backend(backend: Backend) -> None:
    _REGISTRY[backend.name] = backend


def available_backends() -> list[str]:
    return sorted(_REGISTRY)


def resolve_backend(name: str, x: torch.Tensor) -> Backend:
    """The backend to run ``x`` with, given the configured name (after the env override)."""
    if name == "auto":
        usable = [b for b in _REGISTRY.values() if (b.auto_supports or b.supports)(x)]
        return max(usable, key=lambda b: b.priority)
    try:
        backend = _REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"cshlora backend {name!r} is not available in this installation "
            f"(available: {', '.join(available_backends())}); use backend='auto' or 'torch'"
        ) from None
    if not backend.supports(x):
        raise ValueError(
            f"cshlora backend {name!r} is not available for a {x.dtype} input on {x.device} "
            f"({backend.requires or 'unsupported device or dtype'}); use backend='auto' or 'torch'"
        )
    return backend


def gated_lowrank(x, A, B, scaling: float, gate=None, dropout=None) -> torch.Tensor:
    """``scaling · ((dropout(x) A^T) ⊙ gate) B^T`` in plain PyTorch, in ``A``'s dtype.

    The one definition of the adapter's math; the native layer and the PEFT layer both call it.
    """
    x = x.to(A.dtype)
    xa = torch.nn.functional.linear(dropout(x) if dropout is not None else x, A)
    # Fold the LoRA scaling into the [.., r] gate rather than the [.., d_out] output: one less
    # pass over an activation-sized tensor.
    xa = xa * (gate * scaling) if gate is not None else xa * scaling
    return torch.nn.functional.linear(xa, B)


def torch_forward(layer: CSHLoRALinear, x: torch.Tensor, s, var) -> torch.Tensor:
    """Reference backend: plain PyTorch, autograd does the backward."""
    result = layer.base_layer(x)
    delta = gated_lowrank(x, layer.lora_A, layer.lora_B, layer.scaling, layer.gate_values(s, var), layer.dropout)
    return result + delta.to(result.dtype)


register_backend(Backend("torch", torch_forward, supports=lambda x: True, priority=0))
