"""Which GSD the gate sees at inference: the deployment policy, in one function."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from .gsd import NEUTRAL_LOG10_GSD, check_finite, check_gsd_m, warn_if_implausible
from .head import SSEUPrediction

Branch = Literal["metadata", "estimate", "default"]
BRANCHES: tuple[Branch, ...] = ("metadata", "estimate", "default")

#: A 95 % interval at most one decade wide (std <= 0.255 decades, i.e. GSD known within a factor
#: ~1.8 at 1σ). Wider than that, a wrong estimate opens or shuts whole tiers of ranks, and the
#: neutral default is the safer bet.
DEFAULT_MAX_INTERVAL_WIDTH: float = 1.0
DEFAULT_INTERVAL_LEVEL: float = 0.95
#: One decade of std around the neutral 10 m: with the expected-gate form this softens every gate
#: instead of pretending to know the scale.
DEFAULT_VAR: float = 1.0


@dataclass(frozen=True)
class ScaleDecision:
    """Per-sample result of :func:`resolve_scale`.

    ``log10_gsd`` and ``var`` are ``[B]`` (decades, decades²), ready for
    ``cshlora.set_scale(model, log10_gsd, var)``; ``branch`` says where each value came from.
    """

    log10_gsd: Tensor
    var: Tensor
    branch: tuple[Branch, ...]

    def mask(self, branch: Branch) -> Tensor:
        """Bool ``[B]``: which samples took ``branch``."""
        if branch not in BRANCHES:
            raise ValueError(f"branch must be one of {BRANCHES}, got {branch!r}")
        return torch.tensor([b == branch for b in self.branch], device=self.log10_gsd.device)

    def counts(self) -> dict[str, int]:
        return {b: sum(1 for x in self.branch if x == b) for b in BRANCHES}


def _metadata_tensor(metadata_gsd_m: object, batch_size: int | None) -> Tensor:
    if torch.is_tensor(metadata_gsd_m):
        t = metadata_gsd_m.detach().to(torch.float64).cpu()
    elif isinstance(metadata_gsd_m, (int, float)):
        t = torch.tensor(float(metadata_gsd_m), dtype=torch.float64)
    elif isinstance(metadata_gsd_m, Sequence) and not isinstance(metadata_gsd_m, str):
        t = torch.tensor([math.nan if v is None else float(v) for v in metadata_gsd_m], dtype=torch.float64)
    else:
        raise TypeError(
            "metadata_gsd_m must be None, a number, a sequence of numbers/None or a tensor, "
            f"got {type(metadata_gsd_m).__name__}"
        )
    if t.dim() == 0:
        if batch_size is None:
            raise ValueError("a scalar metadata_gsd_m needs a prediction or batch_size for the batch size")
        t = t.expand(batch_size)
    if t.dim() != 1:
        raise ValueError(f"metadata_gsd_m must be a scalar or 1-D [B], got shape {tuple(t.shape)}")
    return t


def resolve_scale(
    metadata_gsd_m: Tensor | Sequence[float | None] | float | None = None,
    prediction: SSEUPrediction | None = None,
    *,
    batch_size: int | None = None,
    max_interval_width: float = DEFAULT_MAX_INTERVAL_WIDTH,
    level: float = DEFAULT_INTERVAL_LEVEL,
    default_log10_gsd: float = NEUTRAL_LOG10_GSD,
    default_var: float = DEFAULT_VAR,
    metadata_var: float = 0.0,
    metadata_log10_gsd: Tensor | Sequence[float | None] | None = None,
) -> ScaleDecision:
    """Pick, per sample, the log10 GSD (and its variance) that drives the CS-HLoRA gate.

    In order, for each sample:

    1. ``"metadata"``: the sample's GSD in metres from ``metadata_gsd_m``, if present. Missing
       entries are ``None`` or NaN. Present entries must be finite and > 0 (``ValueError``
       otherwise) and warn outside 0.01 m – 10 km. Variance ``metadata_var`` (0: trusted exactly).
    2. ``"estimate"``: the SSE-U ``prediction``, if its central ``level`` interval is narrower than
       ``max_interval_width`` decades. Its own variance is passed on, so the expected-gate form
       ``E[h(s)]`` softens gates in proportion to the head's doubt.
    3. ``"default"``: ``default_log10_gsd`` (10 m) with ``default_var`` (1 decade²).

    ``metadata_gsd_m`` may be None (no sample has metadata), a number (the same for the batch),
    a sequence or a 1-D tensor. ``metadata_log10_gsd`` gives the same in log10 (missing: None or NaN;
    present entries must be finite), for callers that work in log10 throughout; pass one or the other.
    The batch size comes from the metadata, the prediction, or
    ``batch_size``; they must agree. Values come back in the prediction's dtype and device
    (float32 on CPU without one); where the estimate is chosen they keep its autograd graph.
    """
    if not (math.isfinite(max_interval_width) and max_interval_width > 0):
        raise ValueError(f"max_interval_width must be a finite number > 0, got {max_interval_width}")
    for name, value in (("default_var", default_var), ("metadata_var", metadata_var)):
        if not (math.isfinite(value) and value >= 0):
            raise ValueError(f"{name} must be a finite variance >= 0, got {value}")
    if not math.isfinite(default_log10_gsd):
        raise ValueError(f"default_log10_gsd must be finite, got {default_log10_gsd}")

    sizes = {"batch_size": batch_size}
    if prediction is not None:
        if not isinstance(prediction, SSEUPrediction):
            raise TypeError(f"prediction must be an SSEUPrediction, got {type(prediction).__name__}")
        if prediction.mean.dim() != 1:
            raise ValueError(f"prediction must be per sample [B], got {tuple(prediction.mean.shape)}")
        check_finite(prediction.mean.detach(), "predicted mean")
        check_finite(prediction.var.detach(), "predicted var")
        sizes["prediction"] = prediction.mean.shape[0]
    if metadata_gsd_m is not None and metadata_log10_gsd is not None:
        raise ValueError("pass metadata_gsd_m or metadata_log10_gsd, not both")
    n = next((v for v in sizes.values() if v is not None), None)
    meta_log10 = None
    if metadata_log10_gsd is not None:
        meta_log10 = _metadata_tensor(metadata_log10_gsd, n)
        present = meta_log10[~torch.isnan(meta_log10)]
        check_finite(present, "metadata_log10_gsd")
        warn_if_implausible(present, "metadata_log10_gsd")
    elif metadata_gsd_m is not None:
        meta = _metadata_tensor(metadata_gsd_m, n)
        present = ~torch.isnan(meta)
        check_gsd_m(meta[present], "metadata_gsd_m")
        meta_log10 = torch.log10(torch.where(present, meta, 1.0)).masked_fill(~present, math.nan)
    if meta_log10 is not None:
        sizes["metadata_gsd_m"] = meta_log10.shape[0]
    known = {k: v for k, v in sizes.items() if v is not None}
    if not known:
        raise ValueError("cannot tell the batch size: pass metadata_gsd_m, prediction or batch_size")
    if len(set(known.values())) > 1:
        raise ValueError(f"batch sizes disagree: {known}")
    n = next(iter(known.values()))

    if prediction is not None:
        dtype, device = prediction.mean.dtype, prediction.mean.device
    else:
        dtype, device = torch.float32, torch.device("cpu")

    has_meta = torch.zeros(n, dtype=torch.bool)
    if meta_log10 is not None:
        has_meta = ~torch.isnan(meta_log10)
    if prediction is not None:
        narrow = (prediction.interval_width(level).detach() < max_interval_width).cpu()
    else:
        narrow = torch.zeros(n, dtype=torch.bool)
    use_estimate = ~has_meta & narrow

    value = torch.full((n,), default_log10_gsd, dtype=dtype, device=device)
    var = torch.full((n,), default_var, dtype=dtype, device=device)
    if prediction is not None:
        on = use_estimate.to(device)
        value = torch.where(on, prediction.mean, value)
        var = torch.where(on, prediction.var, var)
    if meta_log10 is not None:
        on = has_meta.to(device)
        value = torch.where(on, torch.nan_to_num(meta_log10).to(dtype=dtype, device=device), value)
        var = torch.where(on, torch.full_like(var, metadata_var), var)

    branch = tuple(
        "metadata" if m else "estimate" if e else "default"
        for m, e in zip(has_meta.tolist(), use_estimate.tolist(), strict=True)
    )
    return ScaleDecision(log10_gsd=value, var=var, branch=branch)
