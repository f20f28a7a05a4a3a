"""Reliability plot of SSE-U for eval reports (matplotlib, imported only when a plot is drawn)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor

from .head import SSEUPrediction
from .metrics import DEFAULT_LEVELS, calibration_summary


def plot_calibration(
    pred: SSEUPrediction,
    target: Tensor,
    path: str | Path,
    *,
    levels: Sequence[float] = DEFAULT_LEVELS,
    n_bins: int = 10,
    title: str | None = None,
    dpi: int = 100,
) -> Path:
    """Write a two-panel PNG and return its path.

    Left: nominal vs observed coverage of the central intervals (the diagonal is perfect
    calibration; below it = over-confident). Right: predicted std vs the actual RMS error, in
    ``n_bins`` equal-count bins of predicted std; this shows whether the head knows *which*
    images are hard, which a single coverage number cannot.
    """
    # Figure + the Agg canvas directly: no pyplot global state, no GUI backend, thread-safe.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    cal = calibration_summary(pred, target, levels)
    std = pred.var.detach().double().sqrt().cpu()
    err2 = (target.detach().double().cpu() - pred.mean.detach().double().cpu()) ** 2
    order = torch.argsort(std)
    bins = [b for b in torch.tensor_split(order, min(n_bins, len(order))) if len(b)]
    bin_std = [float(std[b].pow(2).mean().sqrt()) for b in bins]
    bin_rmse = [float(err2[b].mean().sqrt()) for b in bins]

    fig = Figure(figsize=(9.0, 4.0), dpi=dpi)
    FigureCanvasAgg(fig)
    left, right = fig.subplots(1, 2)
    left.plot([0, 1], [0, 1], color="0.6", linestyle="--", label="ideal")
    left.plot(cal.levels, cal.observed, marker="o", label="SSE-U")
    left.set(xlim=(0, 1), ylim=(0, 1), xlabel="nominal central-interval level",
             ylabel="observed coverage", title=f"coverage (ECE {cal.ece:.3f}, n={cal.n})")  # fmt: skip
    left.legend(loc="upper left")

    top = max(bin_std + bin_rmse) * 1.1
    right.plot([0, top], [0, top], color="0.6", linestyle="--", label="ideal")
    right.plot(bin_std, bin_rmse, marker="o", label=f"{len(bins)} equal-count bins")
    right.set(xlim=(0, top), ylim=(0, top), xlabel="predicted std (decades)", ylabel="RMS error (decades)",
              title=f"error vs uncertainty (mean z² {cal.mean_z2:.2f})")  # fmt: skip
    right.legend(loc="upper left")
    if title:
        fig.suptitle(title)
    fig.tight_layout()

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path
