"""Training losses for SSE-U; the target is always ``log10(GSD / 1 m)``.

Plain Gaussian NLL scales the gradient on the mean by ``1 / var``: once the head declares a region
noisy it stops fitting the mean there (the variance "swallows" the error). β-NLL (Seitzer et al.,
ICLR 2022, "On the Pitfalls of Heteroscedastic Uncertainty Estimation with Probabilistic Neural
Networks") multiplies each sample's NLL by ``stop_gradient(var) ** beta``, which gives the mean a
gradient ``∝ var**(beta-1)``: ``beta=0`` is NLL, ``beta=1`` is MSE on the mean, 0.5 is the
paper's default. The optimal variance is still the squared error, so calibration is kept.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from .gsd import check_finite, check_log10_gsd
from .head import SSEUPrediction

Reduction = Literal["mean", "sum", "none"]


def _reduce(loss: Tensor, reduction: Reduction) -> Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _check(pred: SSEUPrediction, target: Tensor) -> None:
    if not isinstance(pred, SSEUPrediction):
        raise TypeError(f"pred must be an SSEUPrediction, got {type(pred).__name__}")
    if not torch.is_tensor(target) or target.shape != pred.mean.shape:
        shape = tuple(target.shape) if torch.is_tensor(target) else type(target).__name__
        raise ValueError(f"target (log10 GSD) must be a tensor of shape {tuple(pred.mean.shape)}, got {shape}")
    check_log10_gsd(target.detach(), "target")
    check_finite(pred.mean.detach(), "predicted mean")
    check_finite(pred.var.detach(), "predicted var")
    if bool((pred.var.detach() <= 0).any()):
        raise ValueError("predicted var must be > 0")


def _nll_terms(pred: SSEUPrediction, target: Tensor) -> Tensor:
    # The constant 0.5*log(2*pi) is left out, as in torch.nn.functional.gaussian_nll_loss(full=False):
    # it moves no gradient. metrics.mean_gaussian_nll reports the full NLL.
    return 0.5 * (torch.log(pred.var) + (target - pred.mean) ** 2 / pred.var)


def gaussian_nll_loss(pred: SSEUPrediction, target: Tensor, reduction: Reduction = "mean") -> Tensor:
    """Gaussian negative log-likelihood of ``target`` under ``pred`` (without the constant)."""
    _check(pred, target)
    return _reduce(_nll_terms(pred, target), reduction)


def beta_nll_loss(pred: SSEUPrediction, target: Tensor, beta: float = 0.5, reduction: Reduction = "mean") -> Tensor:
    """β-NLL: each sample's NLL times ``stop_gradient(var) ** beta`` (``beta`` in [0, 1])."""
    if not 0.0 <= beta <= 1.0:
        raise ValueError(f"beta must be in [0, 1], got {beta}")
    _check(pred, target)
    loss = _nll_terms(pred, target)
    if beta > 0:
        loss = loss * pred.var.detach() ** beta
    return _reduce(loss, reduction)


def sseu_loss(
    pred: SSEUPrediction,
    target: Tensor,
    *,
    step: int,
    warmup_steps: int = 0,
    beta: float = 0.5,
    reduction: Reduction = "mean",
) -> Tensor:
    """The training loss with an optional MSE warm-up for the mean.

    For ``step < warmup_steps``: ``MSE(mean) + NLL(detached mean, var)``. The mean learns as in plain
    regression, unaffected by a still-random variance, while the variance already tracks the
    residuals, so switching to β-NLL afterwards does not shock the mean. From ``warmup_steps`` on:
    :func:`beta_nll_loss`.
    """
    if step < 0 or warmup_steps < 0:
        raise ValueError(f"step and warmup_steps must be >= 0, got {step}, {warmup_steps}")
    if step >= warmup_steps:
        return beta_nll_loss(pred, target, beta=beta, reduction=reduction)
    _check(pred, target)
    mse = (target - pred.mean) ** 2
    var_fit = _nll_terms(SSEUPrediction(pred.mean.detach(), pred.var), target)
    return _reduce(mse + var_fit, reduction)
