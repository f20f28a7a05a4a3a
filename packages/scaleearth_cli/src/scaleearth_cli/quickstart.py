"""``scaleearth quickstart``: the whole pipeline on the synthetic scale world and the tiny Qwen3-VL, in one folder.

Steps (each reused on a second run when its folder is complete, see ``recipe.Steps``):
corpus (scale world + LLaVA-style Stage-1 instructions rendered from it), pretraining captions and a
one-GSD spoofing set → tiny Qwen3-VL → backbone pretraining (whole model, captions) → Stage 1 (SFT on the
``llava`` source, merged) → SSE-U fit (frozen Stage-1 features and the image spectrum, train split) →
Stage 2 (CS-HLoRA on the ``synthetic`` source, from that SSE-U, kept fixed) → eval on the held-out split
with oracle and with SSE-U predicted GSD, beside the blind prior → spoofing → SSE-U on every held-out image
→ learning-target checks.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from .config import TrainConfig
from .recipe import (
    EvalModels,
    EvalSettings,
    SpoofSettings,
    Steps,
    SyntheticWorld,
    build_synthetic_world,
    eval_step,
    make_tiny,
    pretrain_and_stage1,
    resolve_device,
    spoof_step,
    sseu_fit_step,
    sseu_split_step,
    train_step,
)
from .results import EvalResult

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
    stage2_steps: int = 4000  # Stage-2 adapter + SSE-U
    device: str = "auto"
    world: SyntheticWorld = SyntheticWorld()
    tiny: TinyModel = TinyModel()
    questions: int | None = 800  # held-out questions evaluated (None: all)
    eval_split: str = "test"  # "val" while developing a recipe: test is looked at once
    spoof_questions: int | None = 160
    spoof_points: int = 9
    seed: int = 0


def tiny_training(**overrides) -> TrainConfig:
    """The tiny model's training settings (every recipe): small rank, batch 8, no checkpointing, fp32.

    One QA per conversation, worded as evaluation asks it, from a shuffled stream. ``stage=0`` is the
    backbone pretraining: Stage 1's machinery with every weight trainable, vision tower included.
    """
    base = dict(
        r=8, alpha=16.0, quantize="none", batch_size=8, lr=2e-3, sseu_lr=3e-3, warmup_steps=10, max_length=512,
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
    sseu: dict | None = None  # SSE-U on every held-out image (sseu_split.json)


def quickstart(cfg: QuickstartConfig, console=None) -> QuickstartResult:
    device = resolve_device(cfg.device)
    out = Path(cfg.out)
    steps = Steps(console)
    world = build_synthetic_world(steps, out, cfg.world, console)
    tiny = make_tiny(steps, out / "tiny-qwen3-vl", seed=cfg.seed, **cfg.tiny.sizes())

    progress = console is not None
    steps_of = {0: cfg.pretrain_steps, 1: cfg.stage1_steps, 2: cfg.stage2_steps}

    def make_config(stage: int, **fixed) -> TrainConfig:
        return tiny_training(stage=stage, max_steps=steps_of[stage], seed=cfg.seed, device=device, progress=progress,
                             **fixed)  # fmt: skip

    merged = pretrain_and_stage1(steps, out, base=tiny, corpus=world.corpus, pretraining=world.pretraining,
                                 make_config=make_config, console=console)  # fmt: skip
    from .train import SSEU_HEAD_NAME

    fitted = sseu_fit_step(steps, out / "sseu", model=merged, corpus=world.corpus, device=device)
    s2 = make_config(2, adapter="cshlora", model=str(merged.path), data=str(world.corpus.path), out=str(out / "stage2"),
                     sseu_init=str(fitted.path / SSEU_HEAD_NAME), sseu_freeze=True)  # fmt: skip
    stage2 = train_step(steps, "Stage 2 (CS-HLoRA; SSE-U fixed)", s2, [world.corpus.digest, merged.digest,
                                                                        fitted.digest], console)  # fmt: skip

    models = EvalModels(device)
    how = EvalSettings(split=cfg.eval_split, limit=cfg.questions)
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
    sseu = sseu_split_step(steps, out / f"sseu-{cfg.eval_split}", model=merged, fitted=fitted, corpus=world.corpus,
                           split=cfg.eval_split, device=device)  # fmt: skip
    plots = [out / "spoof" / "spoof.png"]
    plots += [r.sseu.calibration_plot for r in map(EvalResult.from_dict, evals.values()) if r.sseu]
    result = QuickstartResult(out, evals, spoof, plots, steps, sseu)
    (out / SUMMARY_NAME).write_text(json.dumps(summary(result), indent=1) + "\n")
    return result


# The tiny world's learning targets (issue 11; packages/scaleearth_cli/README.md): what summary.json checks.
TARGET_MARGIN = 0.20  # held-out accuracy (metadata GSD) >= blind prior + 20 points
TARGET_TYPE_MIN_N = 30  # no question type with at least this many questions below its own prior
TARGET_TOP_ANSWER_SHARE = 0.50  # no single answer string is more than half of the predictions
TARGET_SPOOF_FACTOR, TARGET_SPOOF_RISE = 2.5, 0.05  # the spoofing peak: near the true GSD, above both ends
TARGET_SSEU_MAE, TARGET_COVERAGE_90 = 0.15, (0.85, 0.95)


def _predictions(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "predictions.jsonl").read_text().splitlines() if line]


def checks(result: QuickstartResult) -> dict:
    """Each learning target: the measured value, the target and whether it is met (on the oracle eval)."""
    oracle = EvalResult.from_dict(result.evals["oracle"])
    prior = oracle.prior
    prior_of = {t: acc for t, (_, acc) in prior.types.items()}
    below = {
        t: {"accuracy": acc, "prior": prior_of[t], "n": n}
        for t, (n, acc) in oracle.scores.types.items()
        if n >= TARGET_TYPE_MIN_N and acc < prior_of.get(t, 0.0)
    }
    answers = Counter(row["prediction"] for row in _predictions(result.out / "eval-oracle"))
    top, top_n = answers.most_common(1)[0] if answers else ("", 0)
    points = result.spoof["points"]
    best = max(points, key=lambda p: p["accuracy"])
    factor = max(best["gsd_m"], result.spoof["true_gsd_m"]) / min(best["gsd_m"], result.spoof["true_gsd_m"])
    rise = best["accuracy"] - max(points[0]["accuracy"], points[-1]["accuracy"])
    # SSE-U is judged on every held-out image, not only on those of the evaluated questions.
    sseu = (result.sseu or {}).get("metrics", {})
    mae, cov = sseu.get("mae_log10", math.inf), sseu.get("coverage_90", math.nan)
    lo, hi = TARGET_COVERAGE_90
    margin = oracle.scores.accuracy - prior.accuracy
    return {
        "beats_prior_by": {"value": margin, "target": TARGET_MARGIN, "met": margin >= TARGET_MARGIN},
        "types_below_prior": {"value": below, "target": f"none with n >= {TARGET_TYPE_MIN_N}", "met": not below},
        "top_answer_share": {"value": top_n / max(1, sum(answers.values())), "answer": top,
                             "target": TARGET_TOP_ANSWER_SHARE,
                             "met": top_n <= TARGET_TOP_ANSWER_SHARE * sum(answers.values())},
        "spoof_peak": {"value": {"best_gsd_m": best["gsd_m"], "factor_from_true": factor, "rise_over_ends": rise},
                       "target": f"within x{TARGET_SPOOF_FACTOR} of the true GSD, >= {TARGET_SPOOF_RISE:.0%} above "
                                 "both ends",
                       "met": factor <= TARGET_SPOOF_FACTOR and rise >= TARGET_SPOOF_RISE},
        "sseu_mae_log10": {"value": mae, "target": TARGET_SSEU_MAE, "met": mae <= TARGET_SSEU_MAE,
                           "images": (result.sseu or {}).get("images")},
        "sseu_coverage_90": {"value": cov, "target": list(TARGET_COVERAGE_90), "met": lo <= cov <= hi},
    }  # fmt: skip


def summary(result: QuickstartResult) -> dict:
    """The numbers of the final table, as saved in summary.json."""
    rows = []
    oracle = EvalResult.from_dict(result.evals["oracle"])
    if oracle.prior is not None:
        rows.append({
            "gsd_source": "blind prior (no image)", "questions": oracle.questions,
            "accuracy": oracle.prior.accuracy, "tier_mean": oracle.prior.tier_mean,
            **{f"acc_{t}": oracle.prior.tiers.get(t) for t in TIERS},
            "sseu_mae_log10": None, "gate_branches": None,
        })  # fmt: skip
    for source, raw in result.evals.items():
        r = EvalResult.from_dict(raw)
        rows.append(
            {
                "gsd_source": source,
                "questions": r.questions,
                "accuracy": r.scores.accuracy,
                "tier_mean": r.scores.tier_mean,
                **{f"acc_{t}": r.scores.tiers.get(t) for t in TIERS},
                "sseu_mae_log10": r.sseu.mae_log10 if r.sseu else None,
                "gate_branches": r.branches,
            }
        )
    best = max(result.spoof["points"], key=lambda p: p["accuracy"])
    return {
        "evals": rows,
        "types": {
            t: {"n": n, "accuracy": acc, "prior": oracle.prior.types.get(t, (0, None))[1] if oracle.prior else None}
            for t, (n, acc) in oracle.scores.types.items()
        },
        "checks": checks(result) if oracle.prior is not None else None,
        "spoof": {
            "true_gsd_m": result.spoof["true_gsd_m"], "best_gsd_m": best["gsd_m"], "best_accuracy": best["accuracy"],
            "curve": [{"gsd_m": p["gsd_m"], "accuracy": p["accuracy"]} for p in result.spoof["points"]],
        },
        "sseu_held_out": result.sseu,
        "plots": [str(p) for p in result.plots],
        "steps": [{"name": s.name, "status": s.status, "seconds": s.seconds, "folder": str(s.folder)}
                  for s in result.steps.reports],
    }  # fmt: skip


def _pct(x) -> str:
    return "–" if x is None or not math.isfinite(x) else f"{100 * x:.1f}"


def summary_tables(data: dict):
    """Rich tables: what each step did, the held-out accuracy per GSD source beside the blind prior, per
    question type, and the learning targets."""
    from rich.table import Table

    steps = Table(title="quickstart steps")
    for column in ("step", "status", "seconds", "folder"):
        steps.add_column(column, justify="right" if column == "seconds" else "left")
    for s in data["steps"]:
        steps.add_row(s["name"], s["status"], f"{s['seconds']:.1f}", s["folder"])

    table = Table(title="held-out synthetic split (geoscale): accuracy %")
    for column in ("gate GSD", "questions", "overall", "tier mean", *TIERS, "SSE-U MAE (decades, these images)"):
        table.add_column(column, justify="left" if column == "gate GSD" else "right")
    for row in data["evals"]:
        mae = row["sseu_mae_log10"]
        table.add_row(
            row["gsd_source"], str(row["questions"]), _pct(row["accuracy"]), _pct(row["tier_mean"]),
            *(_pct(row[f"acc_{t}"]) for t in TIERS), "–" if mae is None else f"{mae:.3f}",
        )  # fmt: skip
    types = Table(title="per question type (metadata GSD): accuracy % vs blind prior %")
    for column in ("type", "questions", "model", "prior"):
        types.add_column(column, justify="left" if column == "type" else "right")
    for t, row in data["types"].items():
        types.add_row(t, str(row["n"]), _pct(row["accuracy"]), "–" if row["prior"] is None else _pct(row["prior"]))
    tables = [steps, table, types]
    if data.get("checks"):
        targets = Table(title="learning targets")
        for column in ("target", "met", "measured"):
            targets.add_column(column)
        for name, check in data["checks"].items():
            targets.add_row(name, "yes" if check["met"] else "NO", _measured(check["value"]))
        tables.append(targets)
    return tables


def _measured(value) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, dict):
        return ", ".join(f"{k} {_measured(v)}" for k, v in value.items()) or "none"
    return str(value)
