"""The SSE-U head: pooled or token visual features -> Gaussian over log10 GSD."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor, nn

from .gsd import NEUTRAL_LOG10_GSD, check_finite, normal_quantile_for_level

#: Bounds on the predicted standard deviation, in decades of GSD.
#: 0.01 decades is a 2.3 % GSD error: finer than any label we train on, so the variance cannot
#: collapse to 0 and make the NLL blow up on an over-confident sample. 3 decades spans 0.01 m to
#: 10 km around 10 m: "no idea at all"; beyond that the variance would only absorb errors.
MIN_STD_LOG10: float = 0.01
MAX_STD_LOG10: float = 3.0


@dataclass(frozen=True)
class SSEUPrediction:
    """A Gaussian over ``s = log10(GSD / 1 m)`` per sample: ``mean`` and ``var`` have shape ``[B]``."""

    mean: Tensor
    var: Tensor

    def __post_init__(self) -> None:
        if self.mean.shape != self.var.shape:
            raise ValueError(
                f"prediction mean and var must have the same shape, got "
                f"{tuple(self.mean.shape)} and {tuple(self.var.shape)}"
            )

    def __len__(self) -> int:
        return self.mean.shape[0] if self.mean.dim() else 1

    @property
    def std(self) -> Tensor:
        return self.var.sqrt()

    def gsd_m(self) -> Tensor:
        """Point estimate in metres: ``10 ** mean``, the median of the implied log-normal GSD."""
        return torch.pow(10.0, self.mean)

    def interval(self, level: float = 0.95) -> tuple[Tensor, Tensor]:
        """Central interval holding ``level`` of the probability, in log10 decades."""
        half = normal_quantile_for_level(level) * self.std
        return self.mean - half, self.mean + half

    def interval_m(self, level: float = 0.95) -> tuple[Tensor, Tensor]:
        """The same central interval in metres (exact: ``10 ** x`` is monotone)."""
        lo, hi = self.interval(level)
        return torch.pow(10.0, lo), torch.pow(10.0, hi)

    def interval_width(self, level: float = 0.95) -> Tensor:
        """Width of the central interval in decades (1.0 = the upper bound is 10x the lower)."""
        return 2.0 * normal_quantile_for_level(level) * self.std

    def detach(self) -> SSEUPrediction:
        return SSEUPrediction(self.mean.detach(), self.var.detach())


Pooling = Literal["attention", "mean"]


class SSEUHead(nn.Module):
    """Heteroscedastic regressor of log10 GSD on frozen visual features.

    ``forward(features, mask=None)`` takes pooled features ``[B, D]`` or token features ``[B, N, D]``
    with an optional ``mask`` ``[B, N]`` (True/nonzero = a real token). A ``[B, D]`` input is the
    same as ``[B, 1, D]``. Masked tokens are zeroed before anything reads them, so padding may hold
    any value (even NaN) without changing the output.

    Per token: optional LayerNorm (VLM features have large, uneven magnitudes) -> pooling
    (``"attention"``: one learned score per token, softmax over the real tokens; ``"mean"``) ->
    Linear -> GELU -> Linear -> (mean, raw). ``var = std**2`` with
    ``log std = log min_std + (log max_std - log min_std) * sigmoid(raw)``: bounded in
    ``[min_std, max_std]`` decades, and smooth in log-space, which the ``log var`` term of the NLL
    likes. The output layer starts at zero weight, so an untrained head predicts exactly
    ``init_mean`` with ``init_std`` for every image: a broad prior around 10 m by default.

    ``check_inputs=False`` skips the NaN/inf check on the features, which costs one host sync per
    call (worth dropping inside ``torch.compile`` or a tight GPU loop once the data is trusted).
    """

    def __init__(
        self,
        in_features: int,
        hidden: int = 256,
        *,
        pooling: Pooling = "attention",
        input_norm: bool = True,
        dropout: float = 0.0,
        init_mean: float = NEUTRAL_LOG10_GSD,
        init_std: float = 1.0,
        min_std: float = MIN_STD_LOG10,
        max_std: float = MAX_STD_LOG10,
        check_inputs: bool = True,
    ) -> None:
        super().__init__()
        if in_features < 1 or hidden < 1:
            raise ValueError(f"in_features and hidden must be >= 1, got {in_features}, {hidden}")
        if pooling not in ("attention", "mean"):
            raise ValueError(f"pooling must be 'attention' or 'mean', got {pooling!r}")
        if not (0.0 < min_std < max_std) or not math.isfinite(max_std):
            raise ValueError(f"need 0 < min_std < max_std < inf, got {min_std}, {max_std}")
        if not (min_std < init_std < max_std):
            raise ValueError(f"init_std must lie strictly inside ({min_std}, {max_std}), got {init_std}")
        if not math.isfinite(init_mean):
            raise ValueError(f"init_mean must be finite, got {init_mean}")
        self.config: dict[str, Any] = dict(
            in_features=in_features, hidden=hidden, pooling=pooling, input_norm=input_norm,
            dropout=dropout, init_mean=init_mean, init_std=init_std, min_std=min_std,
            max_std=max_std, check_inputs=check_inputs,
        )  # fmt: skip
        self.in_features = in_features
        self.pooling = pooling
        self.check_inputs = check_inputs
        self.log_min_std = math.log(min_std)
        self.log_max_std = math.log(max_std)

        self.norm = nn.LayerNorm(in_features) if input_norm else nn.Identity()
        self.score = nn.Linear(in_features, 1) if pooling == "attention" else None
        self.mlp = nn.Sequential(nn.Linear(in_features, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, 2))
        self.reset_output(init_mean, init_std)

    @torch.no_grad()
    def reset_output(self, init_mean: float, init_std: float) -> None:
        """Make the head predict ``init_mean`` ± ``init_std`` for every input (zero output weights)."""
        out: nn.Linear = self.mlp[-1]
        out.weight.zero_()
        frac = (math.log(init_std) - self.log_min_std) / (self.log_max_std - self.log_min_std)
        out.bias.copy_(torch.tensor([init_mean, math.log(frac / (1.0 - frac))]))

    def _as_tokens(self, features: Tensor, mask: Tensor | None) -> tuple[Tensor, Tensor]:
        if features.dim() == 2:
            if mask is not None:
                raise ValueError("mask is only meaningful for token features [B, N, D], got [B, D]")
            features = features.unsqueeze(1)
        if features.dim() != 3 or features.shape[-1] != self.in_features:
            raise ValueError(
                f"features must be [B, {self.in_features}] or [B, N, {self.in_features}], got {tuple(features.shape)}"
            )
        if mask is None:
            mask = torch.ones(features.shape[:2], dtype=torch.bool, device=features.device)
        else:
            if mask.shape != features.shape[:2]:
                raise ValueError(f"mask must be [B, N] = {tuple(features.shape[:2])}, got {tuple(mask.shape)}")
            mask = mask.to(device=features.device) != 0
            empty = ~mask.any(dim=1)
            if bool(empty.any()):
                rows = empty.nonzero().flatten().tolist()
                raise ValueError(f"mask rows {rows[:8]} have no valid tokens; cannot pool an empty row")
        features = features.masked_fill(~mask.unsqueeze(-1), 0.0)
        if self.check_inputs:
            check_finite(features, "features")
        return features, mask

    def pool(self, tokens: Tensor, mask: Tensor) -> Tensor:
        if self.score is None:
            w = mask.to(tokens.dtype)
            w = w / w.sum(dim=1, keepdim=True)
        else:
            logits = self.score(tokens).squeeze(-1).masked_fill(~mask, float("-inf"))
            w = torch.softmax(logits, dim=1)
        return torch.einsum("bn,bnd->bd", w, tokens)

    def forward(self, features: Tensor, mask: Tensor | None = None) -> SSEUPrediction:
        tokens, mask = self._as_tokens(features, mask)
        # Features from a bf16 VLM are promoted to the head's own precision: the variance
        # bounds (std down to 0.01 decades) need more than bf16's 3 significant digits.
        tokens = tokens.to(self.mlp[0].weight.dtype)
        out = self.mlp(self.pool(self.norm(tokens), mask))
        mean, raw = out.unbind(dim=-1)
        log_std = self.log_min_std + (self.log_max_std - self.log_min_std) * torch.sigmoid(raw)
        return SSEUPrediction(mean=mean, var=torch.exp(2.0 * log_std))
