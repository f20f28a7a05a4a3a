"""Evaluation metrics for SSE-U; the target is ``log10(GSD / 1 m)``, results are Python floats.

All reductions run in float64 so a 4000-sample coverage or a metre-scale error is not rounded by
float32 (10 ** 4 decades already loses 3 digits there).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch
from torch import Tensor

from .gsd import check_finite, check_log10_gsd, normal_quantile_for_level
from .head import SSEUPrediction

#: Nominal levels of the reliability curve: dense in the middle, plus the tails people quote.
DEFAULT_LEVELS: tuple[float, ...] = tuple(round(0.05 * k, 2) for k in range(1, 20)) + (0.99,)


def _prepare(pred: SSEUPrediction | Tensor, target: Tensor) -> tuple[Tensor, Tensor | None, Tensor]:
    mean, var = (pred.mean, pred.var) if isinstance(pred, SSEUPrediction) else (pred, None)
    if not torch.is_tensor(target) or target.shape != mean.shape:
        shape = tuple(target.shape) if torch.is_tensor(target) else type(target).__name__
        raise ValueError(f"target (log10 GSD) must have shape {tuple(mean.shape)}, got {shape}")
    if mean.numel() == 0:
        raise ValueError("cannot compute metrics on an empty batch")
    target = target.detach().double()
    check_log10_gsd(target, "target")
    mean = mean.detach().double()
    check_finite(mean, "predicted mean")
    if var is not None:
        var = var.detach().double()
        check_finite(var, "predicted var")
        if bool((var <= 0).any()):
            raise ValueError("predicted var must be > 0")
    return mean, var, target


def _need_var(var: Tensor | None, what: str) -> Tensor:
    if var is None:
        raise TypeError(f"{what} needs an SSEUPrediction (mean and var), got a bare mean tensor")
    return var


def mae_log10(pred: SSEUPrediction | Tensor, target: Tensor) -> float:
    """Mean absolute error in decades (0.301 = off by a factor of 2 on average, geometrically)."""
    mean, _, target = _prepare(pred, target)
    return float((mean - target).abs().mean())


def mae_m(pred: SSEUPrediction | Tensor, target: Tensor) -> float:
    """Mean absolute error in metres of the median estimate ``10 ** mean``; dominated by coarse images."""
    mean, _, target = _prepare(pred, target)
    return float((10.0**mean - 10.0**target).abs().mean())


def median_relative_error_m(pred: SSEUPrediction | Tensor, target: Tensor) -> float:
    """Median over samples of ``|gsd_pred - gsd_true| / gsd_true`` in metres (interpolated median)."""
    mean, _, target = _prepare(pred, target)
    rel = (10.0 ** (mean - target) - 1.0).abs()
    return float(torch.quantile(rel, 0.5))


def interval_coverage(pred: SSEUPrediction, target: Tensor, level: float = 0.95) -> float:
    """Fraction of targets inside the predicted central ``level`` interval (ideal: ``level``)."""
    mean, var, target = _prepare(pred, target)
    z = normal_quantile_for_level(level)
    return float(((target - mean).abs() <= z * _need_var(var, "interval_coverage").sqrt()).double().mean())


def mean_gaussian_nll(pred: SSEUPrediction, target: Tensor) -> float:
    """Full Gaussian NLL per sample in nats (constant included, so it is comparable across papers)."""
    mean, var, target = _prepare(pred, target)
    var = _need_var(var, "mean_gaussian_nll")
    nll = 0.5 * (math.log(2.0 * math.pi) + var.log() + (target - mean) ** 2 / var)
    return float(nll.mean())


@dataclass(frozen=True)
class CalibrationSummary:
    """How well the predicted variance matches the actual errors.

    ``observed[i]`` is the coverage of the central interval of nominal level ``levels[i]``;
    a calibrated head has ``observed ≈ levels``. ``ece`` is the mean and ``max_gap`` the largest
    ``|observed - nominal|``. ``mean_z2`` is the mean squared standardised error (1 when calibrated,
    > 1 over-confident, < 1 under-confident). ``mean_std`` is the sharpness in decades.
    """

    levels: tuple[float, ...]
    observed: tuple[float, ...]
    ece: float
    max_gap: float
    mean_z2: float
    mean_std: float
    nll: float
    n: int

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def calibration_summary(
    pred: SSEUPrediction, target: Tensor, levels: Sequence[float] = DEFAULT_LEVELS
) -> CalibrationSummary:
    mean, var, target = _prepare(pred, target)
    var = _need_var(var, "calibration_summary")
    if len(levels) == 0:
        raise ValueError("levels must not be empty")
    abs_z = (target - mean).abs() / var.sqrt()
    observed = tuple(float((abs_z <= normal_quantile_for_level(lv)).double().mean()) for lv in levels)
    gaps = [abs(o - lv) for o, lv in zip(observed, levels, strict=True)]
    return CalibrationSummary(
        levels=tuple(float(lv) for lv in levels),
        observed=observed,
        ece=sum(gaps) / len(gaps),
        max_gap=max(gaps),
        mean_z2=float((abs_z**2).mean()),
        mean_std=float(var.sqrt().mean()),
        nll=mean_gaussian_nll(pred, target),
        n=int(target.numel()),
    )


def sseu_metrics(pred: SSEUPrediction, target: Tensor) -> dict[str, float]:
    """The numbers an eval report carries for SSE-U, as a flat dict of floats."""
    cal = calibration_summary(pred, target)
    return {
        "mae_log10": mae_log10(pred, target),
        "mae_m": mae_m(pred, target),
        "median_rel_error_m": median_relative_error_m(pred, target),
        "coverage_68": interval_coverage(pred, target, 0.68),
        "coverage_90": interval_coverage(pred, target, 0.90),
        "coverage_95": interval_coverage(pred, target, 0.95),
        "ece": cal.ece,
        "mean_z2": cal.mean_z2,
        "mean_std_log10": cal.mean_std,
        "nll": cal.nll,
        "n": float(cal.n),
    }
