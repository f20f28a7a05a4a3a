"""GSD units, the plausible range, and the input checks every public function shares.

Everything in this package works in ``s = log10(GSD / 1 m)`` ("decades"): the gate of CS-HLoRA is a
function of ``s``, and a Gaussian in ``s`` is a log-normal in metres, which is how GSD errors behave
(being off by a factor of 2 matters as much at 0.3 m as at 30 m).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import torch
from torch import Tensor

#: GSDs outside this range (metres) are almost certainly unit mistakes (km vs m, cm vs m).
#: They trigger :class:`ImplausibleGSDWarning` but are never clamped: a deliberate spoofing sweep
#: may go there on purpose, and silently moving a value would hide the mistake we want to surface.
PLAUSIBLE_GSD_M: tuple[float, float] = (0.01, 10_000.0)
PLAUSIBLE_LOG10_GSD: tuple[float, float] = (-2.0, 4.0)

#: 10 m: the geometric centre of the plausible range and a Sentinel-2-like value that sits between
#: the object (2 m) and semantic (1000 m) tier thresholds, so no tier is fully shut by default.
NEUTRAL_LOG10_GSD: float = 1.0


class ImplausibleGSDWarning(UserWarning):
    """A GSD outside 0.01 m – 10 km was accepted as is (probably a unit mistake)."""


def _first_index(bad: Tensor) -> int:
    return int(bad.reshape(-1).nonzero()[0, 0])


def check_finite(values: Tensor, name: str) -> None:
    """Raise ``ValueError`` naming ``name`` if ``values`` holds NaN or inf."""
    if not torch.is_tensor(values):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(values).__name__}")
    if values.is_floating_point() and not bool(torch.isfinite(values).all()):
        n_nan = int(torch.isnan(values).sum())
        n_inf = int(torch.isinf(values).sum())
        first = (~torch.isfinite(values)).nonzero()[0].tolist()
        raise ValueError(f"{name} must be finite but has {n_nan} NaN and {n_inf} inf value(s) (first at index {first})")


def warn_if_implausible(log10_gsd: Tensor, name: str) -> None:
    """Warn with :class:`ImplausibleGSDWarning` if any value lies outside 0.01 m – 10 km."""
    lo, hi = PLAUSIBLE_LOG10_GSD
    outside = (log10_gsd < lo) | (log10_gsd > hi)
    if bool(outside.any()):
        example = float(log10_gsd.reshape(-1)[_first_index(outside)])
        warnings.warn(implausible_message(name, int(outside.sum()), 10.0**example), ImplausibleGSDWarning, stacklevel=3)


def implausible_message(what: str, count: int, example_m: float) -> str:
    """The wording shared with cshlora and geoscale_vqa (tests/test_workspace.py keeps the three in step)."""
    return (
        f"{what}: {count} GSD value(s) outside the plausible range 0.01 m - 10 km (e.g. {example_m:.4g} m); "
        "used as given, check the units"
    )


def check_log10_gsd(log10_gsd: Tensor, name: str) -> None:
    """Raise on NaN/inf, warn (never clamp) outside the plausible range."""
    check_finite(log10_gsd, name)
    warn_if_implausible(log10_gsd, name)


def check_gsd_m(gsd_m: Tensor, name: str) -> None:
    """Raise on NaN/inf/zero/negative metres, warn (never clamp) outside the plausible range."""
    check_finite(gsd_m, name)
    nonpositive = gsd_m <= 0
    if bool(nonpositive.any()):
        example = float(gsd_m.reshape(-1)[_first_index(nonpositive)])
        raise ValueError(
            f"{name} must be > 0 metres per pixel; got {int(nonpositive.sum())} value(s) <= 0 (e.g. {example:g})"
        )
    warn_if_implausible(torch.log10(gsd_m.double()), name)


def log10_gsd_from_metres(gsd_m: Tensor | Sequence[float] | float) -> Tensor:
    """Convert GSD in metres to ``log10`` decades, rejecting values that are not a GSD.

    Raises ``ValueError`` for NaN, inf, 0 or negative values; warns outside 0.01 m – 10 km.
    Float tensors keep their dtype; anything else becomes float64.
    """
    t = gsd_m if torch.is_tensor(gsd_m) else torch.as_tensor(gsd_m, dtype=torch.float64)
    if not t.is_floating_point():
        t = t.double()
    check_gsd_m(t, "gsd_m")
    return torch.log10(t)


def gsd_m_from_log10(log10_gsd: Tensor) -> Tensor:
    """``10 ** log10_gsd``; the inverse of :func:`log10_gsd_from_metres`."""
    check_finite(log10_gsd, "log10_gsd")
    return torch.pow(10.0, log10_gsd)


def normal_quantile_for_level(level: float) -> float:
    """Half-width, in standard deviations, of the central Gaussian interval holding ``level``."""
    if not (isinstance(level, (int, float)) and 0.0 < level < 1.0):
        raise ValueError(f"interval level must be a probability in (0, 1), got {level!r}")
    from statistics import NormalDist

    return NormalDist().inv_cdf(0.5 + level / 2.0)
