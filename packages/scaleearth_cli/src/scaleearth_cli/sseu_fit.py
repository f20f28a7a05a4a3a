"""Fit SSE-U on a Stage-1 model's frozen visual features: ``scaleearth fit-sseu``.

SSE-U is a probe: it reads detached visual tokens (and, optionally, the image's spectrum), and Stage 2
keeps the vision tower at its Stage-1 weights, so the head's inputs are the same before and during Stage
2 and its loss reaches no other weight. Fitting it here, once per Stage-1 model, on every training image
of the corpus with large batches, gives the head the thousands of passes a regressor needs; a Stage-2
run then starts from it (``sseu_init``) and may keep it fixed (``sseu_freeze``) or go on training it
jointly. Inputs are computed exactly as in the model's hook (``modeling.ScaleEarthVLM``): the vision
tower's merged tokens, the pixels it read, the effective GSD after the processor's resize.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from .modeling import images_from_pixel_values, load_vlm, merged_image_tokens, vision_tower, visual_feature_size
from .scale import effective_log10_gsd, input_widths

FIT_REPORT_NAME = "sseu_fit.json"


@dataclass(frozen=True)
class SSEUFitConfig:
    """The head (``hidden``, ``depth``, ``dropout``, spectrum tile and bands; tile 0 reads features only),
    its optimisation, and which images: corpus ``sources`` (None: all) of ``train_split``, at most ``limit``
    (None: all; the features are held in memory, about N × tokens × width floats)."""

    hidden: int = 256
    depth: int = 2
    dropout: float = 0.2
    spectrum_tile: int = 64
    spectrum_bands: int = 16
    steps: int = 3000
    batch_size: int = 256
    lr: float = 2e-3
    weight_decay: float = 0.1
    beta: float = 0.5
    warmup_steps: int = 500
    train_split: str = "train"
    val_split: str | None = "val"
    sources: tuple[str, ...] | None = None
    limit: int | None = None
    extract_batch: int = 32
    seed: int = 0


def _images_with_gsd(corpus, split: str, sources, limit: int | None):
    """(PIL image, source GSD m, source width) of every image of ``split`` with a known GSD."""
    from geoscale_vqa import geoscale_dataset

    count = 0
    for sample in geoscale_dataset(corpus, split=split, sources=sources, mode="sample"):
        if sample.get("gsd_m") is None:
            continue
        yield sample["image"], float(sample["gsd_m"]), int(sample["width"])
        count += 1
        if limit is not None and count >= limit:
            return


@torch.no_grad()
def collect_head_inputs(vlm, processor, corpus, split: str, *, cfg: SSEUFitConfig, device="cpu"):
    """``sseu.HeadInputs`` of every image of ``split`` with a GSD: merged tokens, spectrum, effective log10 GSD."""
    from sseu import HeadInputs, scale_spectrum

    tower = vision_tower(vlm)
    merge = int(getattr(tower, "spatial_merge_size", 2))
    tokens, spectra, targets = [], [], []
    batch: list = []

    def flush() -> None:
        inputs = processor.image_processor(images=[b[0] for b in batch], return_tensors="pt")
        grid, pixels = inputs["image_grid_thw"], inputs["pixel_values"].to(device)
        out = tower(pixels.to(next(tower.parameters()).dtype), grid_thw=grid.to(device))
        padded, mask = merged_image_tokens(out, grid, merge)
        tokens.extend(padded[i, : int(mask[i].sum())].float().cpu() for i in range(len(batch)))
        if cfg.spectrum_tile:
            for image in images_from_pixel_values(pixels, grid, tower.config):
                spectra.append(scale_spectrum(image[None], tile=cfg.spectrum_tile, bands=cfg.spectrum_bands)[0].cpu())
        for (_, gsd_m, width), w in zip(batch, input_widths(processor, grid)):
            targets.append(effective_log10_gsd(gsd_m, [width], [w]))
        batch.clear()

    for item in _images_with_gsd(corpus, split, cfg.sources, cfg.limit):
        batch.append(item)
        if len(batch) == cfg.extract_batch:
            flush()
    if batch:
        flush()
    if not tokens:
        raise ValueError(f"{corpus}: split {split!r} has no image with a known GSD to fit SSE-U on")
    features = torch.nn.utils.rnn.pad_sequence(tokens, batch_first=True)
    mask = torch.zeros(features.shape[:2], dtype=torch.bool)
    for i, t in enumerate(tokens):
        mask[i, : len(t)] = True
    return HeadInputs(features, torch.tensor(targets, dtype=torch.float32), mask,
                      torch.stack(spectra) if spectra else None)  # fmt: skip


def fit_sseu(model: str | Path, corpus: str | Path, out: str | Path, cfg: SSEUFitConfig = SSEUFitConfig(),
             *, device: str = "cpu") -> dict:  # fmt: skip
    """Fit a head on ``model``'s frozen features of ``corpus``; write ``sseu_head.safetensors`` and a report."""
    from sseu import SSEUHead, fit_head, save_head

    from .train import SSEU_HEAD_NAME

    out = Path(out)
    vlm, processor = load_vlm(str(model), device=device)
    vlm.eval()
    torch.manual_seed(cfg.seed)  # the head first: a bad setting fails before the features are extracted
    head = SSEUHead(visual_feature_size(vlm), hidden=cfg.hidden, depth=cfg.depth, dropout=cfg.dropout,
                    spectrum_tile=cfg.spectrum_tile, spectrum_bands=cfg.spectrum_bands, check_inputs=False,
                    spectrum_channels=int(getattr(vision_tower(vlm).config, "in_channels", 3)))  # fmt: skip
    train = collect_head_inputs(vlm, processor, corpus, cfg.train_split, cfg=cfg, device=device)
    val = collect_head_inputs(vlm, processor, corpus, cfg.val_split, cfg=cfg, device=device) if cfg.val_split else None
    fitted = fit_head(head, train, val, steps=cfg.steps, batch_size=cfg.batch_size, lr=cfg.lr, seed=cfg.seed,
                      weight_decay=cfg.weight_decay, beta=cfg.beta, warmup_steps=cfg.warmup_steps)  # fmt: skip
    save_head(head, out / SSEU_HEAD_NAME)
    report = {"model": str(model), "corpus": str(corpus), "train_images": len(train),
              "val_images": len(val) if val is not None else 0, **fitted.as_dict(),
              "config": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(cfg).items()}}  # fmt: skip
    (out / FIT_REPORT_NAME).write_text(json.dumps(report, indent=1) + "\n")
    return report


SPLIT_REPORT_NAME = "sseu_split.json"


def sseu_split_report(model: str | Path, head_path: str | Path, corpus: str | Path, split: str, out: str | Path,
                      *, device: str = "cpu", extract_batch: int = 32) -> dict:  # fmt: skip
    """SSE-U on every image of ``split`` with a GSD (the hook's inputs, the effective GSD as truth): metrics,
    and how the deployment policy would use the estimates without metadata. Written to ``out``."""
    from sseu import head_predictions, load_head, resolve_scale, sseu_metrics

    head = load_head(head_path)
    vlm, processor = load_vlm(str(model), device=device)
    vlm.eval()
    cfg = SSEUFitConfig(spectrum_tile=head.spectrum_tile, spectrum_bands=head.spectrum_bands,
                        extract_batch=extract_batch)  # fmt: skip
    inputs = collect_head_inputs(vlm, processor, corpus, split, cfg=cfg, device=device)
    pred = head_predictions(head, inputs)
    counts = resolve_scale(None, pred).counts()
    report = {"split": split, "images": len(inputs), "metrics": sseu_metrics(pred, inputs.log10_gsd),
              "policy_without_metadata": {b: c / len(inputs) for b, c in counts.items()}, "head": str(head_path),
              "note": "every image of the split with a GSD, once; targets are effective GSDs"}  # fmt: skip
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / SPLIT_REPORT_NAME).write_text(json.dumps(report, indent=1) + "\n")
    return report
