"""One image's GSD on its way to the gate: the single road that training and inference share.

1. :func:`input_widths`: the width in pixels the processor resized each image to (its patch grid times
   the patch size: Qwen3-VL resizes to a pixel budget in multiples of 32 px).
2. :func:`effective_log10_gsd`: log10 of the GSD of those pixels, ``gsd_m x source_width / input_width``
   (docs/design.md section 2), averaged in log10 over a sample's images or tiles.
3. :func:`gsd_prompt`: the sentence the gsd-token baseline reads instead of a gate.
4. :class:`GateSource`: where the gate's GSD comes from, parsed from one string (``--gate-gsd`` in
   training, ``--gsd-source`` in evaluation), and its per-sample decision, in log10 throughout:

   ========== ========================================================================================
   oracle     the effective GSD from the metadata (samples without one: as ``predicted``)
   predicted  no metadata: the deployment policy decides (``sseu.resolve_scale``): the SSE-U estimate
              when its 95 % interval is under one decade wide, else the neutral 10 m default
   mixed:P    each sample ``predicted`` with probability P, else ``oracle`` (training with predicted GSD)
   noisy:S    oracle + N(0, S^2) decades
   fixed:M    M metres for every sample (the spoofing sweep)
   none       the neutral default for every sample
   ========== ========================================================================================

   Metadata (oracle, noisy, fixed) reaches the gate with no variance: the hard gate.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch is imported where a decision is made: parsing a source stays light
    import torch

GATE_SOURCES = "oracle | predicted | mixed:P | noisy:SIGMA | fixed:METRES | none"


def input_widths(processor, image_grid_thw: torch.Tensor) -> list[int]:
    """Widths in pixels the model sees, one per image, from the processor's ``image_grid_thw``."""
    patch = int(processor.image_processor.patch_size)
    return [int(w) * patch for w in image_grid_thw[:, 2]]


def effective_gsd_m(gsd_m: float | None, source_width: int, input_width: int) -> float | None:
    """The GSD of the pixels the model sees (None when the source GSD is unknown)."""
    from geoscale_vqa import effective_gsd

    return None if gsd_m is None else effective_gsd(gsd_m, source_width, input_width)


def effective_log10_gsd(gsd_m: float | None, source_widths: Sequence[int], widths: Sequence[int]) -> float | None:
    """log10 effective GSD of one sample: the mean over its images or tiles (each may be resized differently)."""
    if gsd_m is None:
        return None
    views = [effective_gsd_m(gsd_m, s, w) for s, w in zip(source_widths, widths, strict=True)]
    return sum(math.log10(v) for v in views) / len(views)


def format_gsd(gsd_m: float) -> str:
    """The GSD as the gsd-token baseline writes it into the prompt: three significant digits."""
    return f"{gsd_m:.3g}"


def gsd_prompt(gsd_m: float) -> str:
    return f"Ground sampling distance: {format_gsd(gsd_m)} m per pixel.\n"


@dataclass(frozen=True)
class GateInput:
    """What one batch's gate is given: ``log10_gsd`` [B], ``var`` [B] or None (hard gate), and where each came from."""

    log10_gsd: torch.Tensor
    var: torch.Tensor | None
    branch: tuple[str, ...]  # metadata | estimate | default, per sample


@dataclass(frozen=True)
class GateSource:
    kind: str
    value: float | None = None

    @classmethod
    def parse(cls, text: str) -> GateSource:
        """Parse a source name (see the module docstring); a ValueError names the accepted forms."""
        text = str(text).strip()
        if text in ("oracle", "predicted", "none"):
            return cls(text)
        kind, _, arg = text.partition(":")
        if kind in ("mixed", "noisy", "fixed") and arg:
            try:
                value = float(arg)
            except ValueError:
                value = math.nan
            ok = {"mixed": 0 <= value <= 1, "noisy": value >= 0, "fixed": value > 0}[kind]
            if math.isfinite(value) and ok:
                return cls(kind, value)
            need = {"mixed": "P in [0, 1]", "noisy": "SIGMA >= 0 (decades)", "fixed": "METRES > 0"}[kind]
            raise ValueError(f"{kind}:{arg} needs a finite {need}")
        raise ValueError(f"GSD source must be one of {GATE_SOURCES}, got {text!r}")

    def __str__(self) -> str:
        return self.kind if self.value is None else f"{self.kind}:{self.value:g}"

    @property
    def uses_metadata(self) -> bool:
        """Whether the sample's own GSD reaches the gate (for some samples, with mixed)."""
        return self.kind in ("oracle", "noisy", "mixed")

    @property
    def needs_estimate(self) -> bool:
        """Whether SSE-U must exist: its estimate is what ``predicted`` (and ``mixed``) are about."""
        return self.kind in ("predicted", "mixed")

    def told(
        self,
        effective_log10: torch.Tensor,
        *,
        noise: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """The log10 GSD each sample's gate is told as metadata, NaN where the policy must decide.

        ``effective_log10`` [B]: the samples' effective GSD (NaN: unknown). ``noisy`` adds ``noise`` [B] (in
        decades, drawn by the caller so that batching cannot change it), else SIGMA x N(0, 1) drawn from
        ``generator``; ``mixed`` draws its samples from ``generator``.
        """
        import torch

        truth = effective_log10.detach().to(torch.float64).cpu()
        nan = torch.full_like(truth, math.nan)
        if self.kind == "fixed":
            return torch.full_like(truth, math.log10(self.value))
        if self.kind in ("predicted", "none"):
            return nan
        if self.kind == "noisy":
            if noise is None:
                noise = self.value * torch.randn(truth.shape, generator=generator, dtype=torch.float64)
            return truth + noise.to(torch.float64).cpu()
        if self.kind == "mixed":
            if generator is None:
                raise ValueError("mixed:P draws which samples use the estimate: pass a seeded generator")
            use_estimate = torch.rand(truth.shape, generator=generator, dtype=torch.float64) < self.value
            return torch.where(use_estimate, nan, truth)
        return truth  # oracle

    def decide(
        self,
        effective_log10: torch.Tensor,
        prediction=None,
        *,
        noise: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> GateInput:
        """Per-sample gate input: metadata where told, else ``sseu.resolve_scale`` on SSE-U's ``prediction``.

        ``prediction`` is an ``sseu.SSEUPrediction`` [B] or None (no head); ``none`` ignores it. Pass a
        detached prediction unless the LM loss should reach SSE-U through the gate.
        """
        from sseu import resolve_scale

        told = self.told(effective_log10, noise=noise, generator=generator)
        policy_prediction = None if self.kind in ("none", "fixed") else prediction
        decision = resolve_scale(metadata_log10_gsd=told, prediction=policy_prediction, batch_size=len(told))
        var = None if all(b == "metadata" for b in decision.branch) else decision.var
        return GateInput(decision.log10_gsd, var, decision.branch)
