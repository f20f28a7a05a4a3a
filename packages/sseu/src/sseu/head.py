"""The SSE-U head: pooled or token visual features -> Gaussian over log10 GSD."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor, nn

from .gsd import NEUTRAL_LOG10_GSD, check_finite, normal_quantile_for_level
from .spectrum import check_bands, scale_spectrum, spectrum_size

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
    ``depth`` × (Linear -> GELU -> Dropout) -> Linear -> (mean, raw). ``var = std**2`` with
    ``log std = log min_std + (log max_std - log min_std) * sigmoid(raw)``: bounded in
    ``[min_std, max_std]`` decades, and smooth in log-space, which the ``log var`` term of the NLL
    likes. The output layer starts at zero weight, so an untrained head predicts exactly
    ``init_mean`` with ``init_std`` for every image: a broad prior around 10 m by default.

    ``check_inputs=False`` skips the NaN/inf check on the features, which costs one host sync per
    call (worth dropping inside ``torch.compile`` or a tight GPU loop once the data is trusted).

    ``spectrum_tile > 0`` makes the head also read the image itself: :func:`sseu.spectrum.scale_spectrum`
    (``spectrum_tile``, ``spectrum_bands``, over ``spectrum_channels`` channels), standardised by buffers
    that :meth:`set_spectrum_standardizer` sets from training data (``sseu.fit_head`` does), joins the
    pooled features before the MLP. Pass ``images=`` (``[B, C, H, W]`` or a list of ``[C, H, W]``, in
    the pixel normalisation the head was fitted on) or a precomputed ``spectrum=`` ``[B, F]``.
    """

    def __init__(
        self,
        in_features: int,
        hidden: int = 256,
        *,
        depth: int = 1,
        pooling: Pooling = "attention",
        input_norm: bool = True,
        dropout: float = 0.0,
        init_mean: float = NEUTRAL_LOG10_GSD,
        init_std: float = 1.0,
        min_std: float = MIN_STD_LOG10,
        max_std: float = MAX_STD_LOG10,
        check_inputs: bool = True,
        spectrum_tile: int = 0,
        spectrum_bands: int = 16,
        spectrum_channels: int = 3,
    ) -> None:
        super().__init__()
        if spectrum_tile < 0 or (spectrum_tile and (spectrum_tile < 4 or spectrum_bands < 1 or spectrum_channels < 1)):
            raise ValueError(
                f"need spectrum_tile 0 (off) or >= 4 with bands and channels >= 1, got {spectrum_tile}, "
                f"{spectrum_bands}, {spectrum_channels}"
            )
        if spectrum_tile:
            check_bands(spectrum_tile, spectrum_bands)  # fail at construction, not on the first image
        if in_features < 1 or hidden < 1 or depth < 1:
            raise ValueError(f"in_features, hidden and depth must be >= 1, got {in_features}, {hidden}, {depth}")
        if pooling not in ("attention", "mean"):
            raise ValueError(f"pooling must be 'attention' or 'mean', got {pooling!r}")
        if not (0.0 < min_std < max_std) or not math.isfinite(max_std):
            raise ValueError(f"need 0 < min_std < max_std < inf, got {min_std}, {max_std}")
        if not (min_std < init_std < max_std):
            raise ValueError(f"init_std must lie strictly inside ({min_std}, {max_std}), got {init_std}")
        if not math.isfinite(init_mean):
            raise ValueError(f"init_mean must be finite, got {init_mean}")
        self.config: dict[str, Any] = dict(
            in_features=in_features, hidden=hidden, depth=depth, pooling=pooling, input_norm=input_norm,
            dropout=dropout, init_mean=init_mean, init_std=init_std, min_std=min_std,
            max_std=max_std, check_inputs=check_inputs, spectrum_tile=spectrum_tile, spectrum_bands=spectrum_bands,
            spectrum_channels=spectrum_channels,
        )  # fmt: skip
        self.in_features = in_features
        self.pooling = pooling
        self.check_inputs = check_inputs
        self.log_min_std = math.log(min_std)
        self.log_max_std = math.log(max_std)

        self.spectrum_tile, self.spectrum_bands = spectrum_tile, spectrum_bands
        self.spectrum_features = spectrum_size(spectrum_channels, spectrum_bands) if spectrum_tile else 0
        if self.spectrum_features:  # (no buffers otherwise: head files from before stay loadable as they are)
            # The standardiser is data, not weights: set once from the training images, then fixed.
            self.register_buffer("spectrum_shift", torch.zeros(self.spectrum_features))
            self.register_buffer("spectrum_scale", torch.ones(self.spectrum_features))

        self.norm = nn.LayerNorm(in_features) if input_norm else nn.Identity()
        self.score = nn.Linear(in_features, 1) if pooling == "attention" else None
        width = in_features + self.spectrum_features
        layers: list[nn.Module] = []
        for i in range(depth):
            layers += [nn.Linear(width if i == 0 else hidden, hidden), nn.GELU(), nn.Dropout(dropout)]
        self.mlp = nn.Sequential(*layers, nn.Linear(hidden, 2))
        self.reset_output(init_mean, init_std)

    @property
    def reads_pixels(self) -> bool:
        """True when the head needs the image (``images=`` or ``spectrum=``) besides the features."""
        return self.spectrum_features > 0

    def spectrum_of(self, images: Tensor | list[Tensor]) -> Tensor:
        """The head's descriptor ``[B, F]`` of ``images``: ``[B, C, H, W]``, or a list of ``[C, H, W]`` of any sizes."""
        if not self.reads_pixels:
            raise ValueError("this head reads no spectrum (spectrum_tile=0)")
        if torch.is_tensor(images):
            images = list(images) if images.dim() == 4 else [images]
        out = []
        for i, image in enumerate(images):
            if image.dim() != 3:
                raise ValueError(f"image {i} must be [C, H, W], got shape {tuple(image.shape)}")
            out.append(scale_spectrum(image[None], tile=self.spectrum_tile, bands=self.spectrum_bands)[0])
        spectrum = torch.stack(out)
        if spectrum.shape[1] != self.spectrum_features:
            raise ValueError(
                f"images have {images[0].shape[0]} channels; the head was built for "
                f"{self.spectrum_features // (self.spectrum_bands + 2)}"
            )
        return spectrum

    @torch.no_grad()
    def set_spectrum_standardizer(self, spectra: Tensor) -> None:
        """Centre and scale the spectrum inputs by the mean and std of ``spectra`` ``[N, F]`` (training images)."""
        if spectra.dim() != 2 or spectra.shape[1] != self.spectrum_features or spectra.shape[0] < 2:
            raise ValueError(f"need spectra [N >= 2, {self.spectrum_features}], got {tuple(spectra.shape)}")
        check_finite(spectra, "spectra")
        self.spectrum_shift.copy_(spectra.mean(0))
        self.spectrum_scale.copy_(spectra.std(0).clamp_min(1e-6))

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

    def forward(
        self,
        features: Tensor,
        mask: Tensor | None = None,
        *,
        images: Tensor | list[Tensor] | None = None,
        spectrum: Tensor | None = None,
    ) -> SSEUPrediction:
        tokens, mask = self._as_tokens(features, mask)
        # Features from a bf16 VLM are promoted to the head's own precision: the variance
        # bounds (std down to 0.01 decades) need more than bf16's 3 significant digits.
        dtype = self.mlp[0].weight.dtype
        pooled = self.pool(self.norm(tokens.to(dtype)), mask)
        if self.reads_pixels:
            if spectrum is None:
                if images is None:
                    raise ValueError("this head reads the image too: pass images= or spectrum=")
                spectrum = self.spectrum_of(images)
            if spectrum.shape != (pooled.shape[0], self.spectrum_features):
                raise ValueError(
                    f"spectrum must be [{pooled.shape[0]}, {self.spectrum_features}], got {tuple(spectrum.shape)}"
                )
            spectrum = (spectrum.to(device=pooled.device, dtype=dtype) - self.spectrum_shift) / self.spectrum_scale
            pooled = torch.cat([pooled, spectrum], dim=-1)
        elif images is not None or spectrum is not None:
            raise ValueError("this head reads no spectrum (spectrum_tile=0); pass features only")
        out = self.mlp(pooled)
        mean, raw = out.unbind(dim=-1)
        log_std = self.log_min_std + (self.log_max_std - self.log_min_std) * torch.sigmoid(raw)
        return SSEUPrediction(mean=mean, var=torch.exp(2.0 * log_std))
