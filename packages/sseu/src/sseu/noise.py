"""Corrupted GSD for ablations: noisy metadata and GSD spoofing.

Both work on log10 GSD and return new tensors. Results outside 0.01 m – 10 km warn but are kept:
a spoofing sweep may go there on purpose.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .gsd import check_log10_gsd, warn_if_implausible


def perturb_log10_gsd(
    log10_gsd: Tensor, sigma: float, *, seed: int | None = None, generator: torch.Generator | None = None
) -> Tensor:
    """``log10_gsd + N(0, sigma²)`` per element (``sigma`` in decades; 0.3 = about a factor 2).

    Pass ``seed`` or a CPU ``generator`` for reproducible noise; the noise is drawn on the CPU and
    moved to ``log10_gsd``'s device, so the same seed gives the same values on any device.
    """
    if seed is not None and generator is not None:
        raise ValueError("pass seed or generator, not both")
    if not (math.isfinite(sigma) and sigma >= 0):
        raise ValueError(f"sigma must be a finite number >= 0 (decades), got {sigma}")
    check_log10_gsd(log10_gsd, "log10_gsd")
    if seed is not None:
        generator = torch.Generator().manual_seed(seed)
    noise = torch.randn(log10_gsd.shape, generator=generator, dtype=torch.float64)
    out = (log10_gsd.double() + sigma * noise).to(dtype=log10_gsd.dtype, device=log10_gsd.device)
    warn_if_implausible(out, "perturbed log10_gsd")
    return out


def spoof_log10_gsd(log10_gsd: Tensor, factor: float) -> Tensor:
    """Pretend every GSD is ``factor`` times its true value: ``log10_gsd + log10(factor)``."""
    if not (math.isfinite(factor) and factor > 0):
        raise ValueError(f"spoofing factor must be a finite number > 0, got {factor}")
    check_log10_gsd(log10_gsd, "log10_gsd")
    out = log10_gsd + math.log10(factor)
    warn_if_implausible(out, "spoofed log10_gsd")
    return out
