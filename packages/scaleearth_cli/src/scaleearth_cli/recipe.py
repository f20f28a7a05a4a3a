"""Building blocks of the ``quickstart`` and ``ablate`` recipes: synthetic inputs, and steps that are reused once done.

A step is a folder plus the settings that produced it. When a step finishes, a marker
(``scaleearth_step.json``) is written last with a digest of its settings, of the steps it builds on and
of the project's code (``code_digest``), so a folder with a matching marker is complete, was made by this
code and is reused; anything else is rebuilt from scratch.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

STEP_MARKER = "scaleearth_step.json"
STAGE1_INSTRUCTIONS = "data.json"


def resolve_device(device: str) -> str:
    """auto -> cuda when torch sees a GPU, else cpu; cpu, cuda and cuda:N as given (the GPU must exist)."""
    import re

    import torch

    if device not in ("auto", "cpu", "cuda") and not re.fullmatch(r"cuda:\d+", device):
        raise ValueError(f"device must be auto, cpu, cuda or cuda:N, got {device!r}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {device} was asked for, but torch sees no GPU")
    if device.startswith("cuda:") and int(device[5:]) >= torch.cuda.device_count():
        raise ValueError(f"device {device} was asked for, but torch sees {torch.cuda.device_count()} GPU(s)")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


# -- synthetic inputs --------------------------------------------------------------------------
def _scene_seed(seed: int, stream: int, index: int) -> tuple[int, int]:
    # Own SeedSequence stream per use, so these scenes never coincide with the corpus's synthetic ones.
    gsd_seed, scene_seed = np.random.SeedSequence([seed, stream, index]).generate_state(2)
    return int(gsd_seed), int(scene_seed)


def _cover_words(scene) -> list[str]:
    fractions = scene.labels["cover_fractions"]
    return [c for c, f in sorted(fractions.items(), key=lambda kv: -kv[1]) if f >= 0.05]


def _visible_things(scene) -> list[str]:
    """Things a person describing the picture would name: present and at least two pixels across."""
    from geoscale_vqa.qa import physics

    names = [name for name, n in scene.labels["counts"].items() if n > 0]
    names += [name for name, present in scene.labels["presence"].items() if present]
    things = [physics.THINGS[n] for n in names if n in physics.THINGS]
    return [t.plural for t in things if physics.resolvable(t.size_m, scene.gsd_m)]


def _describe(scene) -> list[tuple[str, str]]:
    """Stage-1 instruction turns about a scene, without its GSD (as in RS instruction sets)."""
    covers = _cover_words(scene)
    features = [name for name, present in scene.labels["presence"].items() if present]
    caption = f"A {scene.setting} scene, mostly {covers[0]}"
    caption += f", with {' and '.join(features)}." if features else "."
    return [("Describe this image.", caption), ("Which land covers are visible?", ", ".join(covers))]


def _caption(scene) -> list[tuple[str, str]]:
    """Backbone-pretraining text: a generic caption naming the land covers and the visible things.

    The stand-in for the captions and labels Qwen3-VL was pretrained on: it says what can be seen and,
    for countable things big enough to count, how many ("0 cars, 3 trees"), never the GSD or a question of
    the corpus. Without numbers here the digits are never a target before Stage 2: their logits are
    pushed down during pretraining and Stage 2's LoRA could not lift them (counts were answered "ground").
    """
    from geoscale_vqa.qa import physics

    counted, plurals = [], set()
    for name, n in scene.labels["counts"].items():
        thing = physics.THINGS.get(name)
        if thing is not None and physics.can_ask_count(thing, scene.gsd_m, scene.extent_m):
            counted.append(f"{n} {thing.noun if n == 1 else thing.plural}")
            plurals.add(thing.plural)
    things = counted + [t for t in _visible_things(scene) if t not in plurals]
    caption = f"{scene.setting} land, mostly {', '.join(_cover_words(scene))}"
    caption += f"; {', '.join(things)}." if things else "."
    return [("Caption this image.", caption)]


def write_llava_scenes(
    folder, count: int, *, seed: int = 0, size_px: int = 96, stream: int = 1, turns=_describe
) -> Path:
    """LLaVA-format instruction data (the ``llava`` source's format) rendered from the scale world.

    Scenes come from their own seed ``stream`` (random GSDs, never stated in the text), so they never
    coincide with the corpus's scenes. ``turns(scene)`` gives the (question, answer) pairs. Returns the JSON.
    """
    from PIL import Image

    from geoscale_vqa.synthetic import make_scene, render, sample_gsd

    folder = Path(folder)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    records = []
    for i in range(count):
        gsd_seed, scene_seed = _scene_seed(seed, stream, i)
        scene = make_scene(scene_seed, sample_gsd(np.random.default_rng(gsd_seed)), size_px)
        name = f"images/{i:06d}.png"
        Image.fromarray(render(scene), "RGB").save(folder / name)
        conversation = [
            t for q, a in turns(scene) for t in ({"from": "human", "value": q}, {"from": "gpt", "value": a})
        ]
        conversation[0]["value"] = "<image>\n" + conversation[0]["value"]
        records.append({"id": f"scene{i:06d}", "image": name, "conversations": conversation})
    path = folder / STAGE1_INSTRUCTIONS
    path.write_text(json.dumps(records))
    return path


def write_stage1_instructions(folder, count: int, *, seed: int = 0, size_px: int = 96) -> Path:
    """Stage-1 instruction data: stands in for RS-GPT4V (seed stream 1)."""
    return write_llava_scenes(folder, count, seed=seed, size_px=size_px, stream=1, turns=_describe)


def write_pretraining_captions(folder, count: int, *, seed: int = 0, size_px: int = 96) -> Path:
    """Backbone-pretraining captions (seed stream 3), see ``_caption``."""
    return write_llava_scenes(folder, count, seed=seed, size_px=size_px, stream=3, turns=_caption)


def write_fixed_gsd_scenes(folder, count: int, gsd_m: float, *, seed: int = 0, size_px: int = 96) -> Path:
    """A ``folder`` source (manifest.jsonl, split test) of scale-world scenes all at one GSD.

    The spoofing test needs one true GSD, as RSVQA-HR's 0.15 m in the paper; the synthetic corpus has a
    different GSD per scene. The scene labels go into the manifest, so the templates ask the same kind
    of GSD-conditioned questions as in the corpus.
    """
    from PIL import Image

    from geoscale_vqa.synthetic import make_scene, render

    folder = Path(folder)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(count):
        scene = make_scene(_scene_seed(seed, 2, i)[1], gsd_m, size_px)
        name = f"images/{i:06d}.png"
        Image.fromarray(render(scene), "RGB").save(folder / name)
        labels = {k: v for k, v in scene.labels.items() if k != "cover_fractions"}
        lines.append({"image": name, "gsd_m": gsd_m, "id": f"fixed{i:06d}", "split": "test", "labels": labels})
    path = folder / "manifest.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


# -- steps that are reused when complete ---------------------------------------------------------
@dataclass
class StepReport:
    name: str
    folder: Path
    status: str  # built | reused
    seconds: float


CODE_PACKAGES = ("cshlora", "sseu", "geoscale_vqa", "scaleearth_cli")


@functools.cache
def code_digest() -> str:
    """sha256 of the Python sources of the project's packages, as installed (read once per process)."""
    import importlib

    return source_digest({name: Path(importlib.import_module(name).__file__).parent for name in CODE_PACKAGES})


def source_digest(roots: dict[str, Path]) -> str:
    """sha256 over every ``*.py`` below each root, with its path (a renamed or moved file counts too)."""
    digest = hashlib.sha256()
    for name, root in roots.items():
        for path in sorted(root.rglob("*.py")):
            digest.update(f"{name}/{path.relative_to(root).as_posix()}\n".encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


@dataclass
class Steps:
    """Runs named steps, skipping those whose folder holds a marker with the same settings digest."""

    console: object = None
    reports: list[StepReport] = field(default_factory=list)

    def run(self, name: str, folder, settings: dict, action: Callable[[], object]) -> str:
        """Run ``action`` (which fills ``folder``) unless already done; returns the step's digest.

        Put the digests of the steps this one builds on into ``settings``: a rebuilt input then
        invalidates everything after it.
        """
        folder = Path(folder)
        # The code that builds a step is part of what it is: a corpus rendered by an older world, or a model
        # trained by an older trainer, must not be reused after an upgrade.
        keyed = {"settings": settings, "code": code_digest()}
        digest = hashlib.sha256(json.dumps(keyed, sort_keys=True, default=str).encode()).hexdigest()[:16]
        marker = folder / STEP_MARKER
        if marker.is_file() and json.loads(marker.read_text()).get("digest") == digest:
            self.reports.append(StepReport(name, folder, "reused", 0.0))
            self._say(f"[green]✓[/green] {name}: reusing {folder}")
            return digest
        if folder.exists():  # incomplete or built with other settings: start clean (it is ours)
            shutil.rmtree(folder)
        self._say(f"[bold cyan]▶[/bold cyan] {name} → {folder}")
        started = time.perf_counter()
        action()
        seconds = time.perf_counter() - started
        folder.mkdir(parents=True, exist_ok=True)
        record = {"step": name, "digest": digest, "seconds": seconds, "settings": settings, "code": code_digest()}
        marker.write_text(json.dumps(record, indent=1, default=str) + "\n")
        self.reports.append(StepReport(name, folder, "built", seconds))
        self._say(f"[green]✓[/green] {name}: done in {seconds:.1f} s")
        return digest

    def _say(self, text: str) -> None:
        if self.console is not None:
            self.console.print(text)


class EvalModels:
    """Loads (model, adapter) for evaluation, keeping only the last one (an 8B model is large)."""

    def __init__(self, device: str, quantize: str = "none"):
        self.device, self.quantize = device, quantize
        self.key, self.model = None, None

    def get(self, model: str, adapter):
        from .inference import load_eval_model

        key = (str(model), str(adapter) if adapter is not None else None)
        if key != self.key:
            self.model = None  # free the previous one before loading the next
            self.model = load_eval_model(str(model), adapter, device=self.device, quantize=self.quantize)
            self.key = key
        return self.model


def read_results(folder) -> dict:
    return json.loads((Path(folder) / "results.json").read_text())


# -- the steps both recipes share ------------------------------------------------------------------
# Template QA types of the tiny world: the categorical ones. The numeric answers ("What is the GSD?" ->
# "3.81 m", the footprint, "an object N pixels long ... how long?") must be regressed through digit tokens
# to 10 %, which a 2-layer, 64-wide model does not learn here (measured: 0-3 % on `gsd`, below its prior).
# The scale is still asked about, as yes/no: `gsd_threshold` and `resolvable` can only be answered with it.
TINY_WORLD_QA_TYPES = ("resolvable", "gsd_threshold", "presence", "count", "rural_urban", "dominant_cover")


@dataclass(frozen=True)
class SyntheticWorld:
    """The CPU default data: a scale-world corpus (with Stage-1 instructions), pretraining captions and a
    one-GSD spoofing set, all rendered at ``scene_px`` (which the tiny model sees unresized)."""

    scenes: int = 8000  # corpus scenes (every 10th is held out as test, 5 mod 10 is val)
    stage1_images: int = 400  # LLaVA-style instruction images for Stage 1
    pretrain_images: int = 2000  # captioned images for the backbone pretraining (own seed stream)
    spoof_scenes: int = 24
    spoof_gsd_m: float = 0.5
    scene_px: int = 96
    qa_types: tuple[str, ...] | None = TINY_WORLD_QA_TYPES  # template QA types kept (None: all)
    seed: int = 0


@dataclass(frozen=True)
class Built:
    path: Path
    digest: str


@dataclass(frozen=True)
class WorldData:
    corpus: Built  # llava (Stage-1 instructions) + synthetic (Stage 2, held-out test and val)
    pretraining: Built  # llava-format captions for the backbone pretraining
    spoof: Built  # every scene at spoof_gsd_m


def build_synthetic_world(steps: Steps, root: Path, world: SyntheticWorld, console=None) -> WorldData:
    """The world's corpora under ``root``, each from its own input folder: built once, reused after.

    ``build`` wants an empty output folder, so the rendered inputs live beside the corpora.
    """
    from geoscale_vqa import build

    settings = {k: list(v) if isinstance(v, tuple) else v for k, v in vars(world).items()}
    workers = min(4, os.cpu_count() or 1)  # the corpus is identical for any worker count
    px = world.scene_px
    common = dict(shard_size=100, seed=world.seed, synthetic_size=px, console=console)
    types = list(world.qa_types) if world.qa_types is not None else None

    def rendered(name, folder, write) -> str:
        return steps.run(name, folder, settings, write)

    def corpus(name, folder, sources, after, **extra) -> Built:
        run = lambda: build(sources, folder, workers=workers, **common, **extra)  # noqa: E731
        return Built(folder, steps.run(name, folder, {**settings, "after": after}, run))

    llava_dir, captions_dir, scenes_dir = (
        root / "stage1-instructions",
        root / "pretraining-captions",
        root / "spoof-scenes",
    )
    llava = rendered(
        "Stage-1 instructions (LLaVA format)",
        llava_dir,
        lambda: write_stage1_instructions(llava_dir, world.stage1_images, seed=world.seed, size_px=px),
    )
    captions = rendered(
        "pretraining captions (LLaVA format)",
        captions_dir,
        lambda: write_pretraining_captions(captions_dir, world.pretrain_images, seed=world.seed, size_px=px),
    )
    scenes = rendered(
        f"spoofing scenes (all at {world.spoof_gsd_m:g} m)",
        scenes_dir,
        lambda: write_fixed_gsd_scenes(scenes_dir, world.spoof_scenes, world.spoof_gsd_m, seed=world.seed, size_px=px),
    )
    return WorldData(
        corpus=corpus("corpus (scale world + Stage-1 instructions)", root / "corpus",
                      [f"llava={llava_dir / STAGE1_INSTRUCTIONS}", f"synthetic={world.scenes}"], [llava],
                      template_types=types),
        pretraining=corpus("pretraining corpus", root / "pretraining-corpus",
                           [f"llava={captions_dir / STAGE1_INSTRUCTIONS}"], [captions]),
        spoof=corpus("spoofing set", root / "spoof-set", [f"folder={scenes_dir}"], [scenes], template_types=types),
    )  # fmt: skip


def make_tiny(steps: Steps, folder: Path, seed: int = 0, **sizes) -> Built:
    """The tiny Qwen3-VL (``sizes``: ``make_tiny_model``'s width, depth and pixel budget)."""
    from .tiny import make_tiny_model

    settings = {"seed": seed, **sizes}
    return Built(
        folder, steps.run("tiny Qwen3-VL", folder, settings, lambda: make_tiny_model(folder, seed=seed, **sizes))
    )


DISPLAY_ONLY_KEYS = ("progress",)


def train_step(steps: Steps, name: str, cfg, after: list[str], console=None) -> Built:
    """``scaleearth train`` with ``cfg`` into ``cfg.out``; reused when the same config already finished."""
    from .train import train

    out = Path(cfg.out)
    # Display-only keys do not change what a run produces, so they must not force a retraining (an ablation
    # split over processes, some with progress bars and some without, shares its steps).
    config = {k: v for k, v in cfg.to_dict().items() if k not in DISPLAY_ONLY_KEYS}
    settings = {"config": config, "after": after}
    return Built(out, steps.run(name, out, settings, lambda: train(cfg, console=console)))


@dataclass(frozen=True)
class EvalSettings:
    bench: str = "geoscale"
    split: str | None = "test"
    limit: int | None = None
    batch_size: int = 16
    max_new_tokens: int = 16


def eval_step(
    steps: Steps,
    name: str,
    folder: Path,
    models: EvalModels,
    *,
    model: Built,
    adapter: Built | None,
    data: Built,
    how: EvalSettings,
    gsd_source: str = "oracle",
    seed: int = 0,
    console=None,
) -> dict:
    """``scaleearth eval`` of (model, adapter) with one GSD source; returns results.json's content."""
    from .evaluate import evaluate

    def run():
        em = models.get(model.path, adapter.path if adapter else None)
        evaluate(
            em, how.bench, data.path, folder, gsd_source=gsd_source, split=how.split, batch_size=how.batch_size,
            max_new_tokens=how.max_new_tokens, limit=how.limit, seed=seed, console=console,
        )  # fmt: skip

    after = [model.digest, adapter.digest if adapter else None, data.digest]
    settings = {"eval": vars(how), "gsd_source": gsd_source, "seed": seed, "after": after}
    steps.run(name, folder, settings, run)
    return read_results(folder)


@dataclass(frozen=True)
class SpoofSettings:
    bench: str = "geoscale"
    split: str | None = "test"
    gsd_range: tuple[float, float] = (0.03, 30.0)
    points: int = 13
    limit: int | None = None
    batch_size: int = 16
    max_new_tokens: int = 16


def spoof_step(
    steps: Steps,
    name: str,
    folder: Path,
    models: EvalModels,
    *,
    model: Built,
    adapter: Built,
    data: Built,
    how: SpoofSettings,
    console=None,
) -> dict:
    """``scaleearth spoof``; returns spoof.json's content (its ``points`` are the curve)."""
    from .spoof import spoof

    def run():
        spoof(
            models.get(model.path, adapter.path), how.bench, data.path, folder, gsd_range=tuple(how.gsd_range),
            points=how.points, split=how.split, batch_size=how.batch_size, max_new_tokens=how.max_new_tokens,
            limit=how.limit, console=console,
        )  # fmt: skip

    settings = {"spoof": vars(how), "after": [model.digest, adapter.digest, data.digest]}
    steps.run(name, folder, settings, run)
    return json.loads((folder / "spoof.json").read_text())


def sseu_fit_step(steps: Steps, folder: Path, *, model: Built, corpus: Built, cfg=None, device: str = "cpu") -> Built:
    """``fit_sseu`` of ``model``'s frozen features on ``corpus``: the folder holds ``sseu_head.safetensors``."""
    from dataclasses import asdict

    from .sseu_fit import SSEUFitConfig, fit_sseu

    cfg = cfg or SSEUFitConfig()
    run = lambda: fit_sseu(model.path, corpus.path, folder, cfg, device=device)  # noqa: E731
    settings = {"fit": asdict(cfg), "after": [model.digest, corpus.digest]}
    return Built(folder, steps.run("SSE-U fit (frozen Stage-1 features, train split)", folder, settings, run))


def sseu_split_step(steps: Steps, folder: Path, *, model: Built, fitted: Built, corpus: Built, split: str,
                    device: str = "cpu") -> dict:  # fmt: skip
    """SSE-U (the head in ``fitted``) on every image of ``split``; returns ``sseu_split.json``'s content."""
    from .sseu_fit import SPLIT_REPORT_NAME, sseu_split_report
    from .train import SSEU_HEAD_NAME

    run = lambda: sseu_split_report(model.path, fitted.path / SSEU_HEAD_NAME, corpus.path, split, folder,  # noqa: E731
                                    device=device)  # fmt: skip
    steps.run(f"SSE-U on every {split} image", folder, {"split": split, "after": [model.digest, fitted.digest,
                                                                                  corpus.digest]}, run)  # fmt: skip
    return json.loads((folder / SPLIT_REPORT_NAME).read_text())


def pretrain_and_stage1(
    steps: Steps, out: Path, *, base: Built, corpus: Built, pretraining: Built | None, make_config, console=None
) -> Built:
    """The merged Stage-1 model every Stage-2 run starts from.

    With ``pretraining`` (the tiny model, which starts random), the backbone is first pretrained on
    captions, whole model (``make_config(0, ...)``), as the stand-in for Qwen3-VL's own pretraining; Stage 1
    (``make_config(1, ...)``) then starts from that. A real checkpoint goes straight to Stage 1.
    """
    start = base
    if pretraining is not None:
        s0 = make_config(0, model=str(base.path), data=str(pretraining.path), out=str(out / "pretrain"))
        done = train_step(steps, "backbone pretraining (captions, whole model)", s0, [pretraining.digest, base.digest],
                          console)  # fmt: skip
        start = Built(done.path / "merged", done.digest)
    s1 = make_config(1, model=str(start.path), data=str(corpus.path), out=str(out / "stage1"), merge=True)
    trained = train_step(steps, "Stage 1 (SFT, merged)", s1, [corpus.digest, start.digest], console)
    return Built(trained.path / "merged", trained.digest)
