"""Fit an :class:`SSEUHead` on cached inputs: features of frozen images with their true log10 GSD.

SSE-U reads frozen visual features and its loss reaches no other weight, so training it inside a VLM's
fine-tuning loop and training it here on the same images optimise the same objective; here it gets the
many large-batch passes a regressor needs, for the price of one pass of the vision tower per image.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import Tensor

from .gsd import check_finite
from .head import SSEUHead
from .losses import sseu_loss
from .metrics import interval_coverage, mae_log10


@dataclass(frozen=True)
class HeadInputs:
    """What the head reads for ``N`` images: features ``[N, T, D]`` (or ``[N, D]``), an optional token
    mask ``[N, T]``, the spectrum ``[N, F]`` when the head reads pixels, and the true log10 GSD ``[N]``."""

    features: Tensor
    log10_gsd: Tensor
    mask: Tensor | None = None
    spectrum: Tensor | None = None

    def __post_init__(self) -> None:
        n = self.features.shape[0]
        for name in ("log10_gsd", "mask", "spectrum"):
            value = getattr(self, name)
            if value is not None and value.shape[0] != n:
                raise ValueError(f"{name} has {value.shape[0]} rows, features have {n}")
        if self.log10_gsd.dim() != 1:
            raise ValueError(f"log10_gsd must be [N], got shape {tuple(self.log10_gsd.shape)}")
        check_finite(self.log10_gsd, "log10_gsd")

    def __len__(self) -> int:
        return self.features.shape[0]

    def rows(self, index: Tensor) -> HeadInputs:
        pick = lambda t: None if t is None else t[index]  # noqa: E731
        return HeadInputs(self.features[index], self.log10_gsd[index], pick(self.mask), pick(self.spectrum))

    def to(self, device) -> HeadInputs:
        move = lambda t: None if t is None else t.to(device)  # noqa: E731
        return HeadInputs(self.features.to(device), self.log10_gsd.to(device), move(self.mask), move(self.spectrum))


@dataclass(frozen=True)
class FitReport:
    steps: int
    train_mae_log10: float
    val_mae_log10: float | None
    val_coverage_90: float | None
    history: list[dict] = field(default_factory=list)  # {"step", "loss"} every log_every steps

    def as_dict(self) -> dict:
        return {"steps": self.steps, "train_mae_log10": self.train_mae_log10, "val_mae_log10": self.val_mae_log10,
                "val_coverage_90": self.val_coverage_90, "history": self.history}  # fmt: skip


@torch.no_grad()
def head_predictions(head: SSEUHead, inputs: HeadInputs, batch_size: int = 1024):
    """The head's predictions for every row of ``inputs`` (eval mode, on the head's device), on the CPU."""
    from .head import SSEUPrediction

    was_training = head.training
    head.eval()
    device = next(head.parameters()).device
    means, variances = [], []
    for start in range(0, len(inputs), batch_size):
        part = inputs.rows(torch.arange(start, min(start + batch_size, len(inputs)))).to(device)
        pred = head(part.features, part.mask, spectrum=part.spectrum)
        means.append(pred.mean.cpu())
        variances.append(pred.var.cpu())
    head.train(was_training)
    return SSEUPrediction(torch.cat(means), torch.cat(variances))


def fit_head(
    head: SSEUHead,
    train: HeadInputs,
    val: HeadInputs | None = None,
    *,
    steps: int = 3000,
    batch_size: int = 256,
    lr: float = 2e-3,
    weight_decay: float = 0.1,
    beta: float = 0.5,
    warmup_steps: int = 500,
    seed: int = 0,
    log_every: int = 100,
) -> FitReport:
    """Train ``head`` in place on ``train`` (AdamW, cosine decay, :func:`sseu_loss` with its MSE warm-up).

    A head that reads pixels gets its spectrum standardiser from ``train`` first. ``val`` is only
    measured, never trained on. Deterministic for a given ``seed``.
    """
    if steps < 1 or batch_size < 1 or len(train) < 2:
        raise ValueError(
            f"need steps >= 1, batch_size >= 1 and 2+ training rows, got {steps}, {batch_size}, {len(train)}"
        )
    if head.reads_pixels:
        if train.spectrum is None or (val is not None and val.spectrum is None):
            raise ValueError("the head reads the image: every HeadInputs needs its spectrum")
        head.set_spectrum_standardizer(train.spectrum.float())
    device = next(head.parameters()).device
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 0.5 * (1.0 + math.cos(math.pi * s / steps)))
    history = []
    head.train()
    for step in range(steps):
        index = torch.randint(0, len(train), (min(batch_size, len(train)),), generator=generator)
        batch = train.rows(index).to(device)
        pred = head(batch.features, batch.mask, spectrum=batch.spectrum)
        loss = sseu_loss(pred, batch.log10_gsd.to(pred.mean.dtype), step=step, warmup_steps=warmup_steps, beta=beta)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"SSE-U fit: loss is {loss.item()} at step {step}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        if (step + 1) % log_every == 0 or step + 1 == steps:
            history.append({"step": step + 1, "loss": loss.item()})
    head.eval()
    train_pred = head_predictions(head, train)
    val_mae = coverage = None
    if val is not None:
        val_pred = head_predictions(head, val)
        val_mae = mae_log10(val_pred, val.log10_gsd.cpu())
        coverage = interval_coverage(val_pred, val.log10_gsd.cpu(), level=0.9)
    return FitReport(steps, mae_log10(train_pred, train.log10_gsd.cpu()), val_mae, coverage, history)
