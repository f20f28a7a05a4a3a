"""``scaleearth quickstart``: the whole pipeline on the synthetic scale world and the tiny Qwen3-VL, in one folder.

Steps (each reused on a second run when its folder is complete, see ``recipe.Steps``):
corpus (scale world + LLaVA-style Stage-1 instructions rendered from it) and a one-GSD spoofing set →
tiny Qwen3-VL → Stage 1 (SFT on the ``llava`` source, merged) → Stage 2 (CS-HLoRA + SSE-U on the
``synthetic`` source) → eval on the held-out split with oracle and with SSE-U predicted GSD → spoofing.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from .config import TrainConfig
from .recipe import (
    Built,
    EvalModels,
    EvalSettings,
    SpoofSettings,
    Steps,
    SyntheticWorld,
    build_synthetic_world,
    eval_step,
    make_tiny,
    resolve_device,
    spoof_step,
    train_step,
)

SUMMARY_NAME = "summary.json"
TIERS = ("object", "structure", "semantic", "scale")


@dataclass(frozen=True)
class TinyModel:
    """Sizes of the tiny Qwen3-VL; ``image_px`` is its pixel budget's side (the world's scenes fit it)."""

    hidden_size: int = 64
    num_layers: int = 2
    image_px: int = 96

    def sizes(self) -> dict:
        pixels = self.image_px**2
        return {"hidden_size": self.hidden_size, "num_layers": self.num_layers, "min_pixels": pixels,
                "max_pixels": pixels}  # fmt: skip


@dataclass(frozen=True)
class QuickstartConfig:
    out: Path = Path("runs/quickstart")
    pretrain_steps: int = 1500  # backbone pretraining (whole model, captions)
    stage1_steps: int = 300  # Stage-1 SFT (LLM, instructions)
    stage2_steps: int = 1500  # Stage-2 adapter + SSE-U
    device: str = "auto"
    world: SyntheticWorld = SyntheticWorld()
    tiny: TinyModel = TinyModel()
    questions: int | None = 800  # held-out questions evaluated (None: all)
    spoof_questions: int | None = 160
    spoof_points: int = 9
    seed: int = 0


def tiny_training(**overrides) -> TrainConfig:
    """The tiny model's training settings (every recipe): small rank, batch 8, no checkpointing, fp32.

    One QA per conversation, worded as evaluation asks it, from a shuffled stream. ``stage=0`` is the
    backbone pretraining: Stage 1's machinery with every weight trainable, vision tower included.
    """
    base = dict(
        r=8, alpha=16.0, quantize="none", batch_size=8, lr=5e-3, sseu_lr=3e-3, warmup_steps=10, max_length=512,
        max_turns=1, shuffle_buffer=1000, gradient_checkpointing=False, log_every=10, save_every=10**9,
    )  # fmt: skip
    stage = overrides.pop("stage", 2)
    if stage == 0:
        base.update(stage=1, full_finetune=True, unfreeze_vision=True, unfreeze_projector=True, merge=True, lr=1e-3,
                    sources=["llava"])  # fmt: skip
    elif stage == 1:
        base.update(stage=1, full_finetune=True, merge=True, lr=1e-3, sources=["llava"])
    else:
        base.update(stage=2, sources=["synthetic"])
    base.update(overrides)
    return TrainConfig(**base)


@dataclass
class QuickstartResult:
    out: Path
    evals: dict[str, dict]  # gsd source -> results.json
    spoof: dict  # spoof.json
    plots: list[Path]
    steps: Steps  # what each step did (built or reused, seconds)


def quickstart(cfg: QuickstartConfig, console=None) -> QuickstartResult:
    device = resolve_device(cfg.device)
    out = Path(cfg.out)
    steps = Steps(console)
    world = build_synthetic_world(steps, out, cfg.world, console)
    tiny = make_tiny(steps, out / "tiny-qwen3-vl", seed=cfg.seed, **cfg.tiny.sizes())

    progress = console is not None
    common = dict(seed=cfg.seed, device=device, progress=progress)
    s0 = tiny_training(stage=0, model=str(tiny.path), data=str(world.pretraining.path), out=str(out / "pretrain"),
                       max_steps=cfg.pretrain_steps, **common)  # fmt: skip
    pretrain = train_step(steps, "backbone pretraining (captions, whole model)", s0,
                          [world.pretraining.digest, tiny.digest], console)  # fmt: skip
    backbone = Built(pretrain.path / "merged", pretrain.digest)
    s1 = tiny_training(stage=1, model=str(backbone.path), data=str(world.corpus.path), out=str(out / "stage1"),
                       max_steps=cfg.stage1_steps, **common)  # fmt: skip
    stage1 = train_step(steps, "Stage 1 (SFT, merged)", s1, [world.corpus.digest, backbone.digest], console)
    merged = Built(stage1.path / "merged", stage1.digest)  # the model every Stage-2 run starts from
    s2 = tiny_training(stage=2, adapter="cshlora", model=str(merged.path), data=str(world.corpus.path),
                       out=str(out / "stage2"), max_steps=cfg.stage2_steps, **common)  # fmt: skip
    stage2 = train_step(steps, "Stage 2 (CS-HLoRA + SSE-U)", s2, [world.corpus.digest, stage1.digest], console)

    models = EvalModels(device)
    how = EvalSettings(limit=cfg.questions)
    evals = {
        source: eval_step(
            steps,
            f"eval, {source} GSD",
            out / f"eval-{source}",
            models,
            model=merged,
            adapter=stage2,
            data=world.corpus,
            how=how,
            gsd_source=source,
            seed=cfg.seed,
            console=console,
        )  # fmt: skip
        for source in ("oracle", "predicted")
    }
    spoof_how = SpoofSettings(points=cfg.spoof_points, limit=cfg.spoof_questions)
    spoof = spoof_step(
        steps, "GSD spoofing", out / "spoof", models, model=merged, adapter=stage2, data=world.spoof, how=spoof_how,
        console=console,
    )  # fmt: skip
    plots = [out / "spoof" / "spoof.png"]
    plots += [Path(r["sseu"]["calibration_plot"]) for r in evals.values() if r.get("sseu")]
    result = QuickstartResult(out, evals, spoof, plots, steps)
    (out / SUMMARY_NAME).write_text(json.dumps(summary(result), indent=1) + "\n")
    return result


def summary(result: QuickstartResult) -> dict:
    """The numbers of the final table, as saved in summary.json."""
    rows = []
    for source, r in result.evals.items():
        tiers = r["groups"]["tier"]
        sseu = (r.get("sseu") or {}).get("metrics", {})
        rows.append(
            {
                "gsd_source": source,
                "questions": r["counts"]["questions"],
                "accuracy": r["metrics"]["overall"],
                "tier_mean": r["metrics"]["tier_mean"],
                **{f"acc_{t}": tiers[t]["accuracy"] if t in tiers else None for t in TIERS},
                "sseu_mae_log10": sseu.get("mae_log10"),
                "gate_branches": r["run"]["gsd"]["branches"],
            }
        )
    best = max(result.spoof["points"], key=lambda p: p["accuracy"])
    return {
        "evals": rows,
        "spoof": {
            "true_gsd_m": result.spoof["true_gsd_m"], "best_gsd_m": best["gsd_m"], "best_accuracy": best["accuracy"]
        },
        "plots": [str(p) for p in result.plots],
        "steps": [{"name": s.name, "status": s.status, "seconds": s.seconds, "folder": str(s.folder)}
                  for s in result.steps.reports],
    }  # fmt: skip


def _pct(x) -> str:
    return "–" if x is None or not math.isfinite(x) else f"{100 * x:.1f}"


def summary_tables(data: dict):
    """Rich tables: what each step did, then the held-out accuracy per GSD source."""
    from rich.table import Table

    steps = Table(title="quickstart steps")
    for column in ("step", "status", "seconds", "folder"):
        steps.add_column(column, justify="right" if column == "seconds" else "left")
    for s in data["steps"]:
        steps.add_row(s["name"], s["status"], f"{s['seconds']:.1f}", s["folder"])

    table = Table(title="held-out synthetic split (geoscale, test): accuracy %")
    for column in ("gate GSD", "questions", "overall", "tier mean", *TIERS, "SSE-U MAE (decades)"):
        table.add_column(column, justify="left" if column == "gate GSD" else "right")
    for row in data["evals"]:
        mae = row["sseu_mae_log10"]
        table.add_row(
            row["gsd_source"], str(row["questions"]), _pct(row["accuracy"]), _pct(row["tier_mean"]),
            *(_pct(row[f"acc_{t}"]) for t in TIERS), "–" if mae is None else f"{mae:.3f}",
        )  # fmt: skip
    return steps, table
