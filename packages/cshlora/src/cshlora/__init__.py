"""CS-HLoRA: continuous scale-conditioned LoRA for remote-sensing models.

``y = W x + (alpha / r) · B · diag(h(s)) · A · x`` with ``h_k(s) = sigmoid(a_k (tau_k − s))`` and
``s = log10(GSD in metres)``: finer images open more ranks.
"""

import importlib.util

from ._version import __version__ as __version__
from .backends import available_backends, register_backend
from .config import DEFAULT_TARGET_MODULES, DEFAULT_TIERS, CSHLoRAConfig, Tier
from .export import adapter_for_gsd, export_lora, export_lora_grid, read_export_index
from .gate import ImplausibleGSDWarning, bucket_gate, continuous_gate, log10_gsd
from .gates import GATES, RankGate, register_gate
from .layer import CSHLoRALinear
from .model import (
    adapter_state_dict,
    clear_scale,
    cshlora_layers,
    inject,
    load_adapter,
    load_adapter_config,
    merge,
    save_adapter,
    set_gsd,
    set_scale,
    unload_adapter,
    unmerge,
)

# The fused kernels register the "triton" backend on import. find_spec imports nothing, so installs
# without triton (macOS) stay light, and the kernels themselves compile on first use.
if importlib.util.find_spec("triton") is not None:
    from . import kernels as _kernels  # noqa: F401

__all__ = [
    "CSHLoRAConfig",
    "CSHLoRALinear",
    "GATES",
    "ImplausibleGSDWarning",
    "RankGate",
    "register_gate",
    "DEFAULT_TARGET_MODULES",
    "DEFAULT_TIERS",
    "Tier",
    "adapter_state_dict",
    "available_backends",
    "bucket_gate",
    "clear_scale",
    "continuous_gate",
    "cshlora_layers",
    "adapter_for_gsd",
    "export_lora",
    "export_lora_grid",
    "read_export_index",
    "inject",
    "load_adapter",
    "load_adapter_config",
    "log10_gsd",
    "merge",
    "register_backend",
    "save_adapter",
    "set_gsd",
    "set_scale",
    "unload_adapter",
    "unmerge",
]
