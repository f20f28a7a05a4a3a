"""Answering questions with a (Stage-2) Qwen3-VL: model + adapter run, GSD sources, batched greedy decoding.

Shared by ``eval``, ``spoof`` and ``predict``. The GSD travels the same road as in training, through the
same functions (``scaleearth_cli.scale``): the image is resized to the model's pixel budget (or cut into
tiles first, ``Tiling``), ``scale.effective_log10_gsd`` turns the source GSD into that of the pixels the
model sees, and ``GateSource.decide`` picks the gate input inside the vision-tower hook
(``ScaleEarthVLM.generate``), where SSE-U's estimate exists.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch

import cshlora
from cshlora.model import ADAPTER_CONFIG_NAME, ADAPTER_WEIGHTS_NAME
from geoscale_vqa.shards import sha256_file

from . import scale
from .modeling import ScaleEarthVLM, load_vlm
from .scale import GateSource


# -- the model and its adapter run -------------------------------------------------------------
@dataclass(frozen=True)
class AdapterRun:
    """The deliverables of a ``scaleearth train --stage 2`` run: ``adapter/`` and ``sseu_head.safetensors``."""

    path: Path  # what the user named
    adapter_dir: Path
    head_path: Path | None
    kind: str  # cshlora | lora | gsd-token | bucketed

    @classmethod
    def find(cls, path) -> AdapterRun:
        """Accepts a run folder (uses ``final/``), a checkpoint or ``final/`` folder, or an adapter folder."""
        from .train import ADAPTER_DIR, FINAL_DIR, SSEU_HEAD_NAME

        path = Path(path)
        for folder in (path / FINAL_DIR, path):
            if (folder / ADAPTER_DIR / ADAPTER_CONFIG_NAME).is_file():
                adapter_dir, head = folder / ADAPTER_DIR, folder / SSEU_HEAD_NAME
                break
        else:
            if not (path / ADAPTER_CONFIG_NAME).is_file():
                raise ValueError(f"no adapter in {path}: expected final/adapter/, adapter/ or an adapter folder")
            adapter_dir, head = path, path.parent / SSEU_HEAD_NAME
        return cls(path, adapter_dir, head if head.is_file() else None, _adapter_kind(path, adapter_dir))

    def describe(self) -> dict:
        weights = self.adapter_dir / ADAPTER_WEIGHTS_NAME
        return {
            "path": str(self.path),
            "kind": self.kind,
            "adapter_sha256": sha256_file(weights),
            "sseu_head": str(self.head_path) if self.head_path else None,
            "sseu_head_sha256": sha256_file(self.head_path) if self.head_path else None,
        }


def _adapter_kind(path: Path, adapter_dir: Path) -> str:
    """The run config names the baseline; without one, the gate kind tells cshlora/bucketed/lora apart."""
    import yaml

    from .config import RESOLVED_CONFIG_NAME

    for folder in (path, *path.parents[:3]):
        config = folder / RESOLVED_CONFIG_NAME
        if config.is_file():
            kind = (yaml.safe_load(config.read_text()) or {}).get("adapter")
            if kind:
                return str(kind)
    from .adapters import kind_of_gate

    return kind_of_gate(cshlora.load_adapter_config(adapter_dir).gate).name


@dataclass
class EvalModel:
    model: ScaleEarthVLM
    processor: object
    name: str
    adapter: AdapterRun | None
    device: torch.device
    quantize: str

    @property
    def has_head(self) -> bool:
        return self.model.sseu is not None

    @property
    def gsd_in_prompt(self) -> bool:
        from .adapters import ADAPTER_KINDS

        kind = ADAPTER_KINDS.get(self.adapter.kind) if self.adapter is not None else None
        return kind is not None and kind.gsd_in_prompt

    def describe(self) -> dict:
        return {
            "model": self.name,
            "adapter": self.adapter.describe() if self.adapter else None,
            "scale_gated": self.model.scale_gated,
            "device": str(self.device),
            "quantize": self.quantize,
        }


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def load_eval_model(
    model: str,
    adapter=None,
    *,
    device: str | None = None,
    quantize: str = "none",
    max_pixels: int | None = None,
    trust_remote_code: bool = False,
) -> EvalModel:
    """The VLM (``quantize`` none|nf4), the run's adapter and SSE-U head if given, in eval mode.

    ``max_pixels`` overrides the processor's pixel budget (larger images are downscaled to it).
    """
    from sseu import load_head

    device = torch.device(device or default_device())
    run = AdapterRun.find(adapter) if adapter is not None else None
    vlm, processor = load_vlm(model, quantize=quantize, device=device, trust_remote_code=trust_remote_code)
    head = None
    if run is not None:
        cshlora.load_adapter(vlm, run.adapter_dir)
        head = load_head(run.head_path, device=str(device)) if run.head_path else None
    if max_pixels is not None:
        processor.image_processor.size = {**dict(processor.image_processor.size), "longest_edge": int(max_pixels)}
    processor.tokenizer.padding_side = "left"  # batched generation continues every row at the same position
    return EvalModel(ScaleEarthVLM(vlm, head).eval(), processor, model, run, device, quantize)


# -- images and the pixel budget ---------------------------------------------------------------
def fit_to_pixel_budget(image, processor):
    """Downscale an image larger than the processor's budget to exactly the size the processor would pick.

    Same target as the processor's own resize (so the effective GSD is unchanged), but done once with
    PIL on the 8-bit image: an 8500 x 8500 XLRS image never becomes a float tensor at full size.
    """
    from PIL import Image
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import smart_resize

    ip = processor.image_processor
    budget = int(ip.size["longest_edge"])
    if image.width * image.height <= budget:
        return image
    factor = int(ip.patch_size) * int(ip.merge_size)
    h, w = smart_resize(image.height, image.width, factor, int(ip.size["shortest_edge"]), budget)
    return image.resize((w, h), Image.Resampling.BICUBIC)


TILINGS = "none | grid:N"


@dataclass(frozen=True)
class Tiling:
    """How an image over the pixel budget reaches the model (``eval --tiling``).

    ``none``: downscaled whole to the budget (the effective GSD grows by the downscale factor);
    ``grid:N``: cut into an N x N grid of tiles, each downscaled to the budget on its own, so the model
    sees up to N² times the pixels (and each tile's effective GSD is N times finer than the whole
    image's). Images within the budget are never tiled.
    """

    grid: int = 1

    @classmethod
    def parse(cls, text: str) -> Tiling:
        if text == "none":
            return cls(1)
        kind, _, arg = text.partition(":")
        if kind == "grid" and arg.isdigit() and 2 <= int(arg) <= 8:
            return cls(int(arg))
        raise ValueError(f"tiling must be {TILINGS} with 2 <= N <= 8, got {text!r}")

    def __str__(self) -> str:
        return "none" if self.grid == 1 else f"grid:{self.grid}"


def image_views(image, processor, tiling: Tiling) -> list:
    """[(size of the source region, that region within the pixel budget)]: the whole image, or its grid tiles."""
    budget = int(processor.image_processor.size["longest_edge"])
    if tiling.grid == 1 or image.width * image.height <= budget:
        return [(image.size, fit_to_pixel_budget(image, processor))]
    n, views = tiling.grid, []
    for row in range(n):
        for col in range(n):
            box = (col * image.width // n, row * image.height // n,
                   (col + 1) * image.width // n, (row + 1) * image.height // n)  # fmt: skip
            tile = image.crop(box)
            views.append((tile.size, fit_to_pixel_budget(tile, processor)))
    return views


class ImageCache:
    """RSVQA asks ~100 questions per image: keep the last few decoded images (their views, per tiling)."""

    def __init__(self, size: int = 16):
        self.size, self.items = size, {}

    def open(self, ref, processor):
        """(source size, image within the budget): the image downscaled whole."""
        return self.open_views(ref, processor, Tiling())[0]

    def open_views(self, ref, processor, tiling: Tiling) -> list:
        from geoscale_vqa.benchmarks import open_image

        key = (str(ref), tiling) if isinstance(ref, (str, Path)) else None
        if key is not None and key in self.items:
            return self.items[key]
        views = image_views(open_image(ref), processor, tiling)
        if key is not None:
            if len(self.items) >= self.size:
                self.items.pop(next(iter(self.items)))
            self.items[key] = views
        return views


# -- one batch -------------------------------------------------------------------------------
@dataclass
class Item:
    """One question to answer: its prompt, its images (PIL, already within the budget) and source sizes.

    With tiling, `images` holds every tile (view) and `source_widths` each tile's width in source pixels;
    `views` says how many views each source image became (None: one each).
    """

    prompt: str
    images: list
    source_widths: list[int]
    gsd_m: float | None = None  # the source images' GSD (metadata), None if unknown
    noise: float = 0.0  # decades added to the metadata for noisy:SIGMA
    views: list[int] | None = None


@dataclass
class Answer:
    text: str
    source_widths: list[int]  # image widths before the resize ...
    input_widths: list[int]  # ... and the widths the model saw
    effective_gsd_m: float | None  # true GSD of the model's pixels (None without metadata)
    gate_log10_gsd: float
    gate_var: float
    branch: str  # metadata | estimate | default
    sseu_mean: float | None = None  # SSE-U's log10 estimate (mean over the sample's images)
    sseu_var: float | None = None
    views: list[int] | None = None  # views (tiles) per source image
    view_effective_gsd_m: list[float] | None = None  # effective GSD of each view the model saw

    @property
    def gate_gsd_m(self) -> float:
        return 10.0**self.gate_log10_gsd


def chat_text(processor, item: Item, gsd_text: str = "") -> str:
    """The chat text of one question up to the assistant's reply: a training conversation plus its answer."""
    content = [{"type": "image"} for _ in item.images] + [{"type": "text", "text": gsd_text + item.prompt}]
    message = [{"role": "user", "content": content}]
    return processor.apply_chat_template(message, tokenize=False, add_generation_prompt=True)


def _per_sample(values: list, counts: list[int]) -> list[list]:
    ends = [sum(counts[: i + 1]) for i in range(len(counts))]
    return [values[end - n : end] for n, end in zip(counts, ends)]


def _per_sample_prediction(prediction, counts: list[int]):
    """SSE-U predicts per image; a sample's estimate is the mean over its images (mean and variance)."""
    from sseu import SSEUPrediction

    if prediction is None:
        return None
    mean, var = prediction.mean.detach().float().cpu(), prediction.var.detach().float().cpu()
    owner = torch.repeat_interleave(torch.arange(len(counts)), torch.tensor(counts))
    n = torch.tensor(counts, dtype=torch.float32)
    zeros = torch.zeros(len(counts))
    return SSEUPrediction(zeros.index_add(0, owner, mean) / n, zeros.index_add(0, owner, var) / n)


def answer_batch(em: EvalModel, items: list[Item], source: GateSource, *, max_new_tokens: int = 16) -> list[Answer]:
    """Greedy answers for a batch, each sample's gate input decided by ``source`` (see ``scaleearth_cli.scale``)."""
    processor = em.processor
    counts = [len(it.images) for it in items]
    if min(counts) == 0:
        raise ValueError("every question needs at least one image")
    if source.needs_estimate and not em.has_head:
        raise ValueError(f"--gsd-source {source} needs an adapter run with an SSE-U head")
    if em.gsd_in_prompt and source.kind in ("predicted", "mixed"):
        raise ValueError("the gsd-token adapter reads its GSD as prompt text: use oracle, noisy, fixed or none")
    images = [img for it in items for img in it.images]
    # The resize decides the effective GSD; the gsd-token baseline needs it before its prompt exists.
    grid = processor.image_processor(images=images, return_tensors="pt")["image_grid_thw"]
    widths = _per_sample(scale.input_widths(processor, grid), counts)
    truth = [scale.effective_log10_gsd(it.gsd_m, it.source_widths, w) for it, w in zip(items, widths)]
    truth_t = torch.tensor([math.nan if t is None else t for t in truth], dtype=torch.float64)
    noise = torch.tensor([it.noise for it in items], dtype=torch.float64)
    told = source.told(truth_t, noise=noise)
    if em.gsd_in_prompt:
        texts = [
            chat_text(processor, it, "" if math.isnan(t) else scale.gsd_prompt(10.0**t))
            for it, t in zip(items, told.tolist())
        ]
    else:
        texts = [chat_text(processor, it) for it in items]
    inputs = dict(processor(text=texts, images=images, padding=True, return_tensors="pt"))
    if not torch.equal(inputs["image_grid_thw"], grid):
        raise RuntimeError("the processor resized the images differently on its second call")

    decided = {}

    def choose_scale(prediction):
        sample_pred = _per_sample_prediction(prediction, counts)
        gate = source.decide(truth_t, sample_pred, noise=noise)
        decided.update(gate=gate, prediction=sample_pred)
        return gate.log10_gsd.detach(), gate.var

    ids, _ = em.model.generate(inputs, choose_scale, max_new_tokens=max_new_tokens, do_sample=False, num_beams=1)
    replies = processor.batch_decode(ids[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
    gate, pred = decided["gate"], decided["prediction"]
    return [
        Answer(
            text=text.strip(),
            source_widths=items[i].source_widths,
            input_widths=widths[i],
            effective_gsd_m=None if truth[i] is None else 10.0 ** truth[i],
            gate_log10_gsd=float(gate.log10_gsd[i]),
            gate_var=0.0 if gate.var is None else float(gate.var[i]),
            branch=gate.branch[i],
            sseu_mean=float(pred.mean[i]) if pred is not None else None,
            sseu_var=float(pred.var[i]) if pred is not None else None,
            views=items[i].views or [1] * len(items[i].images),
            view_effective_gsd_m=(
                None
                if items[i].gsd_m is None
                else [scale.effective_gsd_m(items[i].gsd_m, s, w) for s, w in zip(items[i].source_widths, widths[i])]
            ),
        )
        for i, text in enumerate(replies)
    ]


def code_version() -> dict:
    """Package versions and, inside a git checkout, the commit (and whether the tree had local changes)."""
    import subprocess
    from importlib.metadata import version

    out = {d: version(d) for d in ("scaleearth-cli", "cshlora", "sseu", "geoscale-vqa", "transformers", "torch")}
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=here, capture_output=True, text=True, timeout=10)
        if commit.returncode == 0:
            out["git_commit"] = commit.stdout.strip()
            out["git_dirty"] = bool(dirty.stdout.strip())
    except (OSError, subprocess.SubprocessError):
        pass
    return out
