"""The ``"triton"`` backend: one autograd function around the fused kernels of ``lowrank.py``.

Forward saves ``x`` (by reference), ``xa = x A^T`` and ``u = c g xa`` (both ``[rows, r]`` fp32):
nothing activation-sized is materialised beyond the output itself. Gradients: dX, dA, dB, d tau,
d sharpness, and d s / d var when the scale requires grad (SSE-U predictions driving the gate).

Base layers: a plain ``nn.Linear`` runs inside the fused GEMM (``y = x W^T + b + u B^T`` and
``dX = dY W + dxa A``); a bitsandbytes ``Linear4bit`` computes its own product (bnb handles compute
dtype and packing) and the kernel adds the adapter into that output in place; its backward
dequantises the weight once and uses the fused GEMM. ``CSHLORA_TRITON_BASE=torch`` makes the dense
base product a torch (cuBLAS) call with the adapter added in place instead, to compare the two.

Gate kinds (``layer.gate.kernel_mode``, see ``cshlora.gates``): no gate and the continuous gate in-kernel;
a table gate (``"bucketed"``, or any registered kind) is computed
by ``layer.gate_values`` in torch and passed as a per-row table whose gradient the kernel returns.

Falls back to the torch reference path (same result, no kernels) when the fused path cannot be
exact: dropout > 0 in training (the mask would have to be drawn in-kernel), a base whose parameters
require grad (no dW here), autocast (the kernels would ignore it), a base that is neither
``nn.Linear`` nor ``Linear4bit``, dtype or device mismatches (torch raises its usual error),
non-fp32 adapters, and empty inputs.
"""

from __future__ import annotations

import os

import torch
from torch import nn
from torch.autograd.function import once_differentiable

from ..backends import torch_forward
from ..gates import KERNEL_CONTINUOUS, KERNEL_NONE, KERNEL_TABLE
from ..layer import is_4bit
from . import launch

GATE_NONE, GATE_CONTINUOUS, GATE_TABLE = KERNEL_NONE, KERNEL_CONTINUOUS, KERNEL_TABLE
BASE_ENV_VAR = "CSHLORA_TRITON_BASE"


def fallback_reason(layer, x: torch.Tensor) -> str | None:
    """Why this call must take the torch path, or None when the kernels can run it."""
    base, A = layer.base_layer, layer.lora_A
    if isinstance(layer.dropout, nn.Dropout) and layer.dropout.p > 0 and layer.dropout.training:
        return "dropout in training"
    if any(p.requires_grad for p in base.parameters()):
        return "base layer parameters require grad"
    if torch.is_autocast_enabled(x.device.type):
        return "autocast"
    if x.numel() == 0:
        return "empty input"
    if A.dtype != torch.float32 or A.device != x.device:
        return "adapter dtype/device"
    if type(base) is nn.Linear:
        if base.weight.dtype != x.dtype or base.weight.device != x.device:
            return "base dtype/device differs from the input"
    elif not is_4bit(base):
        return f"unsupported base layer {type(base).__name__}"
    return None


def _base_mode() -> str:
    mode = os.environ.get(BASE_ENV_VAR, "fused").strip().lower() or "fused"
    if mode not in ("fused", "torch"):
        raise ValueError(f"{BASE_ENV_VAR}={mode!r}: expected 'fused' or 'torch'")
    return mode


def _gate_inputs(layer, s, var, lead: tuple[int, ...]):
    """(mode, s_rows, var_rows, table, tau, sharpness): the gate as the kernels take it, per row."""
    mode = layer.gate.kernel_mode  # the gate kind says how the kernels take it (cshlora.gates)
    if mode == GATE_NONE or s is None:
        return GATE_NONE, None, None, None, None, None
    if mode == GATE_CONTINUOUS:
        # One fp32 value per row (M floats): per-sample scales become a row scale, no gather.
        rows = lambda t: t.to(torch.float32).expand(lead).reshape(-1).contiguous()
        return GATE_CONTINUOUS, rows(s), rows(var) if var is not None else None, None, layer.tau, layer.sharpness
    table = layer.gate_values(s, var)  # [*s.shape, r], differentiable in torch
    return GATE_TABLE, None, None, table.expand(*lead, table.shape[-1]).reshape(-1, table.shape[-1]), None, None


def _dense_weight(base: nn.Module, dtype: torch.dtype) -> torch.Tensor:
    """``W [N, K]`` of the base: the weight itself, or a 4-bit weight dequantised (once per call)."""
    if type(base) is nn.Linear:
        return base.weight
    import bitsandbytes as bnb

    w = base.weight
    return bnb.functional.dequantize_4bit(w.data, w.quant_state).to(dtype)


class CSHLoRAFunction(torch.autograd.Function):
    """``y = base(x) + c ((x A^T) * g) B^T`` on 2-D ``x``; gate inputs per row (see ``_gate_inputs``)."""

    @staticmethod
    def forward(ctx, x, A, B, tau, sharp, s, var, table, base, scaling, mode, base_mode):
        xa, u = launch.shrink(x, A, scaling, mode, s=s, var=var, tau=tau, sharp=sharp, table=table)
        if type(base) is nn.Linear and base_mode == "fused":
            y = launch.matmul_lowrank(x, base.weight.t(), u, B.t(), bias=base.bias)
        else:
            y = base(x)  # fresh output of the base product: add the adapter into it in place
            y = launch.matmul_lowrank(None, None, u, B.t(), c=y, out=y)
        ctx.save_for_backward(x, A, B, tau, sharp, s, var, table, xa, u)
        ctx.base, ctx.scaling, ctx.mode, ctx.base_mode = base, scaling, mode, base_mode
        return y

    @staticmethod
    @once_differentiable  # no double backward through the kernels: a clear error instead of a wrong one
    def backward(ctx, dy):
        x, A, B, tau, sharp, s, var, table, xa, u = ctx.saved_tensors
        need = ctx.needs_input_grad
        rows = launch.bwd_rows(dy, B, xa, ctx.scaling, ctx.mode, s=s, var=var, tau=tau, sharp=sharp, table=table)
        dA = launch.lowrank_t(rows["dxa"], x) if need[1] else None
        dB = launch.lowrank_t(u, dy, transpose_out=True) if need[2] else None
        dx = None
        if need[0]:
            W = _dense_weight(ctx.base, dy.dtype)
            if ctx.base_mode == "fused":
                dx = launch.matmul_lowrank(dy, W, rows["dxa"], A, out_dtype=x.dtype)
            else:
                dx = torch.mm(dy, W)
                dx = launch.matmul_lowrank(None, None, rows["dxa"], A, c=dx, out=dx)
        pick = lambda i, name: rows[name] if need[i] else None
        return (dx, dA, dB, pick(3, "dtau"), pick(4, "dsharp"), pick(5, "ds"), pick(6, "dvar"), pick(7, "dtable"),
                None, None, None, None)  # fmt: skip


def triton_forward(layer, x: torch.Tensor, s, var) -> torch.Tensor:
    """Backend ``forward(layer, x, s, var)``: the whole layer output, fused where possible."""
    if fallback_reason(layer, x) is not None:
        return torch_forward(layer, x, s, var)
    lead = tuple(x.shape[:-1])
    x2 = x.reshape(-1, x.shape[-1])  # a view whenever the strides allow; kernels take any 2-D strides
    mode, s_rows, v_rows, table, tau, sharp = _gate_inputs(layer, s, var, lead)
    y = CSHLoRAFunction.apply(
        x2, layer.lora_A, layer.lora_B, tau, sharp, s_rows, v_rows, table,
        layer.base_layer, float(layer.scaling), mode, _base_mode(),
    )  # fmt: skip
    return y.reshape(*lead, y.shape[-1])
