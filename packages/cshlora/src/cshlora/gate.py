"""Gate functions h(s) over the rank dimension, and validation of scale inputs.

All gates take ``s = log10(GSD in metres)`` of shape ``S`` (any shape, usually ``[B]`` or
``[B, T]``) and return ``[*S, r]``. With a variance ``var`` of ``s`` they return the *expected*
gate under ``s ~ N(mean, var)``, so an uncertain GSD softens the gates instead of committing to
one tier.
"""

from __future__ import annotations

import math
import warnings

import torch

# Plausible GSDs: 1 cm (close-range drone) to 10 km (coarse global products).
PLAUSIBLE_LOG10_GSD = (-2.0, 4.0)

# Probit approximation of E[sigmoid(z)], z ~ N(m, v): sigmoid(m / sqrt(1 + pi v / 8)).
_PROBIT_FACTOR = math.pi / 8.0


def log10_gsd(gsd_m: float | torch.Tensor) -> torch.Tensor:
    """Convert a GSD in metres per pixel to ``log10`` metres, rejecting impossible values."""
    g = torch.as_tensor(gsd_m, dtype=torch.float64 if not torch.is_tensor(gsd_m) else None)
    if not torch.is_floating_point(g):
        g = g.double()
    if not bool(torch.isfinite(g).all()):
        raise ValueError(f"GSD must be finite metres per pixel, got {_show(g)}")
    if bool((g <= 0).any()):
        raise ValueError(f"GSD must be > 0 metres per pixel, got {_show(g)}")
    s = torch.log10(g)
    warn_if_implausible(s)
    return s


def check_log10_gsd(s: torch.Tensor, what: str = "log10_gsd") -> None:
    """Raise ``ValueError`` for NaN/inf scales; warn (never clamp) for implausible ones."""
    if not torch.is_floating_point(s):
        raise ValueError(f"{what} must be a floating-point tensor, got dtype {s.dtype}")
    # Both checks come back in one host transfer: set_scale runs every training step, and each
    # separate bool() would be a device sync.
    sd = s.detach()
    lo, hi = PLAUSIBLE_LOG10_GSD
    finite, plausible = torch.stack([torch.isfinite(sd).all(), ((sd >= lo) & (sd <= hi)).all()]).tolist()
    if not finite:
        raise ValueError(f"{what} must be finite (log10 of a GSD in metres), got {_show(s)}")
    if not plausible:
        _warn_implausible(sd, what)


def check_variance(var: torch.Tensor, what: str = "var") -> None:
    if not torch.is_floating_point(var):
        raise ValueError(f"{what} must be a floating-point tensor, got dtype {var.dtype}")
    ok = torch.stack([torch.isfinite(var).all(), (var >= 0).all()]).all()
    if not bool(ok):
        raise ValueError(f"{what} must be finite and >= 0 (variance of log10 GSD), got {_show(var)}")


def warn_if_implausible(s: torch.Tensor, what: str = "log10_gsd") -> None:
    lo, hi = PLAUSIBLE_LOG10_GSD
    sd = s.detach()
    if sd.numel() and not bool(((sd >= lo) & (sd <= hi)).all()):
        _warn_implausible(sd, what)


class ImplausibleGSDWarning(UserWarning):
    """A GSD outside 0.01 m - 10 km: used as given (never clamped), but probably a unit mistake.

    The same check, range, category name and wording as in ``sseu`` and ``geoscale_vqa`` (each package
    installs alone, so each has its own; tests/test_workspace.py keeps the three in step).
    """


def _warn_implausible(sd: torch.Tensor, what: str) -> None:
    lo, hi = PLAUSIBLE_LOG10_GSD
    outside = (sd < lo) | (sd > hi)
    example = float(sd.reshape(-1)[outside.reshape(-1).nonzero()[0, 0]])
    warnings.warn(implausible_message(what, int(outside.sum()), 10.0**example), ImplausibleGSDWarning, stacklevel=4)


def implausible_message(what: str, count: int, example_m: float) -> str:
    return (
        f"{what}: {count} GSD value(s) outside the plausible range 0.01 m - 10 km (e.g. {example_m:.4g} m); "
        "used as given, check the units"
    )


def continuous_gate(
    s: torch.Tensor, tau: torch.Tensor, sharpness: torch.Tensor, var: torch.Tensor | None = None
) -> torch.Tensor:
    """``h_k(s) = sigmoid(a_k (tau_k - s))``, or its expectation under ``s ~ N(s, var)``."""
    z = sharpness * (tau - s.unsqueeze(-1))
    if var is not None:
        z = z * torch.rsqrt(1.0 + _PROBIT_FACTOR * sharpness.square() * var.unsqueeze(-1))
    return torch.sigmoid(z)


def bucket_gate(
    s: torch.Tensor, edges_log10: torch.Tensor, sizes: list[int], var: torch.Tensor | None = None
) -> torch.Tensor:
    """One-hot rank slices chosen by GSD bucket (the B4 baseline).

    Bucket ``i`` covers ``edges[i-1] <= s < edges[i]``. With ``var`` the slice weights are the
    probabilities of each bucket under ``s ~ N(s, var)`` (the expectation of the one-hot gate).
    """
    if var is None:
        idx = torch.bucketize(s.detach(), edges_log10, right=True)
        probs = torch.nn.functional.one_hot(idx, len(sizes)).to(s.dtype)
    else:
        std = var.clamp_min(0).sqrt().unsqueeze(-1)
        # P(s < edge) for every edge; std == 0 gives an exact step via the sign.
        diff = edges_log10 - s.unsqueeze(-1)
        safe = torch.where(std > 0, std, torch.ones_like(std))
        cdf = torch.where(std > 0, 0.5 * (1 + torch.erf(diff / (safe * math.sqrt(2.0)))), (diff > 0).to(s.dtype))
        lower = torch.cat([torch.zeros_like(cdf[..., :1]), cdf], dim=-1)
        upper = torch.cat([cdf, torch.ones_like(cdf[..., :1])], dim=-1)
        probs = upper - lower
    repeats = torch.tensor(sizes, device=s.device)
    return torch.repeat_interleave(probs, repeats, dim=-1)


def _show(t: torch.Tensor, limit: int = 6) -> str:
    flat = t.detach().flatten().tolist()
    body = ", ".join(f"{v:g}" for v in flat[:limit])
    more = f", ... ({len(flat)} values)" if len(flat) > limit else ""
    return f"[{body}{more}]" if t.dim() else body
