"""The CS-HLoRA layer: a frozen linear plus a low-rank update whose ranks are gated by log10 GSD."""

from __future__ import annotations

import math
import warnings

import torch
from torch import nn

from . import backends
from .config import CSHLoRAConfig
from .gate import check_log10_gsd, check_variance
from .gates import gate_for


def is_4bit(layer: nn.Module) -> bool:
    """Whether ``layer`` is a bitsandbytes ``Linear4bit`` (checked without importing bitsandbytes)."""
    return type(layer).__name__ == "Linear4bit" and type(layer).__module__.startswith("bitsandbytes")


def _adapter_dtype(base: nn.Linear) -> torch.dtype:
    # Half-precision and quantised bases get fp32 adapters (as PEFT's autocast_adapter_dtype does):
    # the adapter is small, and fp32 keeps the gate and its thresholds well resolved.
    w = base.weight
    return w.dtype if w.dtype in (torch.float32, torch.float64) else torch.float32


def as_scale_tensor(value, what: str, device=None, dtype=torch.float32) -> torch.Tensor:
    """Turn a float / sequence / tensor into a floating tensor, keeping autograd history."""
    if torch.is_tensor(value):
        t = value if torch.is_floating_point(value) else value.to(dtype)
        return t.to(device) if device is not None else t
    try:
        return torch.as_tensor(value, dtype=dtype, device=device)
    except (TypeError, ValueError, RuntimeError) as e:
        raise ValueError(f"{what} must be a number, a sequence of numbers or a tensor, got {value!r}") from e


class ScaleConditioned:
    """Scale state shared by every scale-gated layer (native and PEFT): the stored ``s`` and ``var``.

    Subclasses provide ``gate_kind`` (the gate kind's name, for display), ``needs_scale`` (False when every
    active gate is open: plain LoRA) and ``default_log10_gsd``.
    """

    gate_kind: str
    needs_scale: bool
    default_log10_gsd: float | None
    _scale: torch.Tensor | None = None
    _scale_var: torch.Tensor | None = None

    def set_scale(self, log10_gsd: torch.Tensor | None, var: torch.Tensor | None = None) -> None:
        """Store an already-validated scale; :func:`cshlora.set_scale` is the public entry point."""
        self._scale, self._scale_var = log10_gsd, var

    def resolve_scale(self, x: torch.Tensor, log10_gsd=None, var=None):
        """The scale for input ``x``, validated and shaped to broadcast over ``x.shape[:-1]``."""
        if not self.needs_scale:
            return None, None
        if log10_gsd is not None:
            s = as_scale_tensor(log10_gsd, "log10_gsd", device=x.device)
            check_log10_gsd(s)
            if var is not None:
                var = as_scale_tensor(var, "var", device=x.device)
                check_variance(var)
        elif self._scale is not None:
            s, var = self._scale, self._scale_var
        elif self.default_log10_gsd is not None:
            s, var = torch.tensor(self.default_log10_gsd, device=x.device), None
        else:
            raise ValueError(
                "no scale set for this CS-HLoRA layer: call cshlora.set_scale(model, log10_gsd) before the "
                "forward pass, pass log10_gsd= to the layer, or build it with default_log10_gsd"
            )
        lead = tuple(x.shape[:-1])
        s, var = _expand_for_generation(s, var, lead)
        if s.dim() > len(lead) or tuple(s.shape) != lead[: s.dim()]:
            raise ValueError(
                f"log10_gsd has shape {tuple(s.shape)} but the input has leading dimensions {lead}: expected a "
                f"scalar, one value per sample {lead[:1]}, or one per token {lead}"
            )
        if var is not None and var.shape != s.shape:
            if var.dim() == 0:
                var = var.expand(s.shape)
            else:
                raise ValueError(f"var has shape {tuple(var.shape)} but log10_gsd has shape {tuple(s.shape)}")
        pad = (1,) * (len(lead) - s.dim())
        s = s.to(device=x.device).reshape(tuple(s.shape) + pad)
        if var is not None:
            var = var.to(device=x.device).reshape(tuple(var.shape) + pad)
        return s, var

    def scalar_scale(self, log10_gsd, var, device, dtype) -> tuple[torch.Tensor, torch.Tensor | None]:
        """One validated deployment scale (for merging): ``log10_gsd`` or else the stored scale."""
        if log10_gsd is None:
            log10_gsd, var = self._scale, self._scale_var
        if log10_gsd is None:
            raise ValueError("merging a gated adapter needs one deployment scale: pass log10_gsd or call set_scale")
        s = as_scale_tensor(log10_gsd, "log10_gsd", device=device, dtype=dtype)
        if s.numel() != 1:
            raise ValueError(f"merging needs one deployment scale, got log10_gsd of shape {tuple(s.shape)}")
        check_log10_gsd(s)
        v = None
        if var is not None:
            v = as_scale_tensor(var, "var", device=device, dtype=dtype)
            if v.numel() != 1:
                raise ValueError(f"merging needs one deployment variance, got var of shape {tuple(v.shape)}")
            check_variance(v)
            v = v.to(dtype).reshape(())
        return s.to(dtype).reshape(()), v


class CSHLoRALinear(ScaleConditioned, nn.Module):
    """``y = base(x) + (alpha/r) · ((dropout(x) A^T) ⊙ h(s)) B^T`` with ``h_k(s) = σ(a_k (τ_k − s))``.

    ``base_layer`` is an ``nn.Linear`` (fp32/bf16/fp16/fp64) or a bitsandbytes ``Linear4bit``; it is
    kept frozen and untouched. ``s = log10(GSD)`` comes from the ``log10_gsd`` argument, else from the
    last :func:`cshlora.set_scale`, else from ``config.default_log10_gsd``. Its shape is ``[]``,
    ``[B]`` (one scale per sample, broadcast over the sample's tokens) or ``[B, T]`` (per token, for
    packed sequences): any prefix of ``x.shape[:-1]``.
    """

    def __init__(self, base_layer: nn.Module, config: CSHLoRAConfig):
        super().__init__()
        if not isinstance(base_layer, nn.Linear):
            raise TypeError(
                f"CSHLoRALinear wraps torch.nn.Linear or bitsandbytes Linear4bit, got {type(base_layer).__name__}"
            )
        self.base_layer = base_layer
        self.config = config
        self.in_features = base_layer.in_features
        self.out_features = base_layer.out_features
        self.r = config.r
        self.scaling = config.scaling
        self.gate = gate_for(config.gate)
        self.gate_kind = self.gate.name
        self.merged = False
        self.disabled = False
        self._merged_at: tuple[torch.Tensor, torch.Tensor | None] | None = None
        self.default_log10_gsd = config.default_log10_gsd

        device = base_layer.weight.device
        dtype = _adapter_dtype(base_layer)
        self.lora_A = nn.Parameter(torch.empty(self.r, self.in_features, device=device, dtype=dtype))
        self.lora_B = nn.Parameter(torch.zeros(self.out_features, self.r, device=device, dtype=dtype))
        # Same initialisation as LoRA/PEFT, so B=0 makes the adapter start as the identity update.
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))

        for name, param in self.gate.init_params(config, device, dtype).items():
            setattr(self, name, param)
        self._gate_buffers = tuple(self.gate.init_buffers(config, device, dtype))
        for name, buffer in self.gate.init_buffers(config, device, dtype).items():
            self.register_buffer(name, buffer, persistent=False)  # rebuilt from the config, never saved
        self.dropout = nn.Dropout(config.dropout) if config.dropout > 0 else nn.Identity()

    def gate_values(self, s: torch.Tensor | None, var: torch.Tensor | None = None) -> torch.Tensor | None:
        """``h(s)`` of shape ``[*s.shape, r]`` in the adapter's dtype (``None`` for plain LoRA)."""
        if self.gate.is_open or s is None:
            return None
        dtype = self.lora_A.dtype
        s = s.to(dtype)
        var = var.to(dtype) if var is not None else None
        return self.gate.values(s, var, self.gate_state(), self.config)

    @property
    def needs_scale(self) -> bool:
        return not self.gate.is_open

    @property
    def adapter_param_names(self) -> tuple[str, ...]:
        """What the adapter saves: ``lora_A``, ``lora_B`` and the gate kind's parameters."""
        return ("lora_A", "lora_B", *self.gate.param_names)

    def gate_state(self) -> dict[str, torch.Tensor]:
        """The gate kind's per-rank parameters and buffers of this layer, by name."""
        return {name: getattr(self, name) for name in (*self.gate.param_names, *self._gate_buffers)}

    # -- forward -------------------------------------------------------------------------------
    @property
    def backend(self) -> str:
        """Configured backend name (``"auto"`` is resolved per input device at call time)."""
        return self.config.resolved_backend()

    def forward(self, x: torch.Tensor, log10_gsd=None, var=None) -> torch.Tensor:
        if self.disabled or self.merged:
            return self.base_layer(x)
        s, v = self.resolve_scale(x, log10_gsd, var)
        return backends.resolve_backend(self.backend, x).forward(self, x, s, v)

    # -- merging -------------------------------------------------------------------------------
    def delta_weight(self, log10_gsd=None, var=None) -> torch.Tensor:
        """``ΔW(s0) = scaling · B diag(h(s0)) A`` for one fixed scale, shape ``[d_out, d_in]``."""
        if self.gate.is_open:
            gate = torch.ones(self.r, device=self.lora_A.device, dtype=self.lora_A.dtype)
        else:
            gate = self.gate_values(*self.scalar_scale(log10_gsd, var, self.lora_A.device, self.lora_A.dtype))
        return (self.lora_B * (gate * self.scaling)) @ self.lora_A

    @torch.no_grad()
    def merge(self, log10_gsd=None, var=None) -> None:
        """Fold ``ΔW(s0)`` into the base weight; the layer then ignores scales until :meth:`unmerge`."""
        if self.merged:
            raise ValueError("this CS-HLoRA layer is already merged; call unmerge() first")
        if not self.gate.is_open:
            log10_gsd, var = self.scalar_scale(log10_gsd, var, self.lora_A.device, self.lora_A.dtype)
        self._add_to_base(self.delta_weight(log10_gsd, var))
        self.merged = True
        self._merged_at = (log10_gsd, var)

    @torch.no_grad()
    def unmerge(self) -> None:
        if not self.merged:
            raise ValueError("this CS-HLoRA layer is not merged")
        s, v = self._merged_at
        self._add_to_base(-self.delta_weight(s, v))
        self.merged = False
        self._merged_at = None

    def _add_to_base(self, dw: torch.Tensor) -> None:
        base = self.base_layer
        if is_4bit(base):
            import bitsandbytes as bnb

            warnings.warn(
                "merging into a 4-bit base re-quantises the weight: the merged layer differs from the "
                "adapter by NF4 rounding",
                stacklevel=3,
            )
            weight = base.weight
            w = bnb.functional.dequantize_4bit(weight.data, weight.quant_state).float() + dw.float()
            kwargs = {
                k: v
                for k, v in vars(weight).items()
                if k in ("blocksize", "compress_statistics", "quant_type", "quant_storage")
            }
            base.weight = bnb.nn.Params4bit(w.to("cpu").to(weight.quant_state.dtype), requires_grad=False, **kwargs).to(
                weight.device
            )
        else:
            base.weight.data += dw.to(base.weight.dtype)

    def _backend_label(self) -> str:
        name = self.backend
        try:
            chosen = backends.resolve_backend(name, self.lora_A).name
        except ValueError:
            return f"{name}(unavailable)"
        return chosen if name == chosen else f"{name}->{chosen}"

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, r={self.r}, "
            f"alpha={self.config.alpha}, gate={self.gate_kind}, backend={self._backend_label()}"
            + (", merged=True" if self.merged else "")
        )


def _expand_for_generation(s: torch.Tensor, var, lead: tuple) -> tuple:
    """Repeat per-sample scales for ``k`` rows each when the batch has ``k`` times as many rows.

    ``generate`` with ``num_beams=k`` or ``num_return_sequences=k`` expands every input with
    ``repeat_interleave(k, dim=0)``, so row ``i * k + j`` belongs to sample ``i``; the scale set for the
    samples follows the same rule. Anything else is left to the shape check.
    """
    if s.dim() == 0 or not lead or s.shape[0] == 0 or lead[0] == s.shape[0] or lead[0] % s.shape[0]:
        return s, var
    if tuple(s.shape[1:]) != lead[1 : s.dim()]:
        return s, var
    k = lead[0] // s.shape[0]
    s = s.repeat_interleave(k, dim=0)
    if var is not None and var.dim() > 0 and var.shape[0] * k == s.shape[0]:
        var = var.repeat_interleave(k, dim=0)
    return s, var
