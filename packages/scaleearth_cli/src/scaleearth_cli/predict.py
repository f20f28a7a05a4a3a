"""``scaleearth predict``: one question about one image, saying where the gate's GSD came from.

The GSD comes from ``--gsd``, else the image's GeoTIFF tags, else SSE-U (used by the deployment policy
when its 95 % interval is narrow enough, otherwise the neutral default). Metadata GSDs describe the
file's pixels; the gate gets the effective GSD after the processor's resize, and both are reported.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .inference import EvalModel, ImageCache, Item, answer_batch
from .scale import GateSource

INTERVAL_LEVEL = 0.95


@dataclass
class Prediction:
    answer: str
    gsd_origin: str  # "--gsd" | "GeoTIFF tags" | "SSE-U" | "none"
    branch: str  # the policy's choice: metadata | estimate | default
    metadata_gsd_m: float | None  # the file's GSD (--gsd or tags)
    gate_gsd_m: float  # what the gate was given (effective GSD of the model's pixels)
    source_width: int
    input_width: int
    estimate_gsd_m: float | None = None  # SSE-U's estimate (effective GSD) and its central interval
    interval_m: tuple[float, float] | None = None

    def describe(self) -> str:
        resize = f"{self.source_width} -> {self.input_width} px"
        lines = [f"answer: {self.answer}"]
        if self.branch == "metadata":
            lines.append(
                f"GSD: {self.metadata_gsd_m:.4g} m from {self.gsd_origin} (metadata); the gate sees "
                f"{self.gate_gsd_m:.4g} m per model pixel ({resize})"
            )
        elif self.estimate_gsd_m is not None:
            lo, hi = self.interval_m
            estimate = (
                f"SSE-U estimate {self.estimate_gsd_m:.4g} m per model pixel ({resize}), "
                f"{100 * INTERVAL_LEVEL:.0f} % interval {lo:.4g}-{hi:.4g} m"
            )
            if self.branch == "estimate":
                lines.append(f"GSD: {estimate} (no metadata; the gate used the estimate)")
            else:
                lines.append(
                    f"GSD: {estimate}; the interval is too wide, so the gate used the neutral default "
                    f"{self.gate_gsd_m:.4g} m"
                )
        else:
            lines.append(
                f"GSD: unknown (no metadata, no SSE-U head); the gate used the default {self.gate_gsd_m:.4g} m"
            )
        return "\n".join(lines)


def metadata_gsd(image: Path, gsd_m: float | None) -> tuple[float | None, str]:
    """(GSD in metres, where it came from): ``--gsd`` first, then the GeoTIFF tags."""
    from geoscale_vqa.gsd import gsd_from_geotiff, validate_gsd

    if gsd_m is not None:
        return validate_gsd(gsd_m, what="--gsd"), "--gsd"
    tagged = gsd_from_geotiff(image)
    if tagged is not None:
        return tagged.gsd_m, "GeoTIFF tags"
    return None, "SSE-U"


def predict(em: EvalModel, image, question: str, *, gsd_m: float | None = None, max_new_tokens: int = 64) -> Prediction:
    import torch

    from sseu import SSEUPrediction

    image = Path(image)
    if not image.is_file():
        raise ValueError(f"image {image} does not exist")
    meta, origin = metadata_gsd(image, gsd_m)
    size, pixels = ImageCache().open(str(image), em.processor)
    item = Item(prompt=question, images=[pixels], source_widths=[size[0]], gsd_m=meta)
    (answer,) = answer_batch(em, [item], GateSource("oracle"), max_new_tokens=max_new_tokens)
    estimate = interval = None
    if answer.sseu_mean is not None:
        pred = SSEUPrediction(torch.tensor([answer.sseu_mean]), torch.tensor([answer.sseu_var]))
        lo, hi = pred.interval_m(INTERVAL_LEVEL)
        estimate, interval = float(pred.gsd_m()[0]), (float(lo[0]), float(hi[0]))
    if meta is None and estimate is None:
        origin = "none"
    return Prediction(
        answer=answer.text,
        gsd_origin=origin,
        branch=answer.branch,
        metadata_gsd_m=meta,
        gate_gsd_m=answer.gate_gsd_m,
        source_width=answer.source_widths[0],
        input_width=answer.input_widths[0],
        estimate_gsd_m=estimate,
        interval_m=interval,
    )
