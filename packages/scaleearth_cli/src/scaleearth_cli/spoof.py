"""``scaleearth spoof``: the paper's GSD-spoofing test.

Every question is answered once per GSD of a log-spaced range, with that GSD fed to the gate instead of
the true one (``fixed:METRES``); everything else (images, prompts, decoding) is identical, so the gate is
the only thing that varies. A continuous gate should give a smooth bell over log-GSD peaking at the true
GSD; a bucketed one (B4) a step function; an adapter with ``lora_B = 0`` a flat line.

Writes ``spoof.csv`` (one row per GSD), ``spoof.png`` (accuracy vs GSD, true GSD marked),
``spoof_predictions.jsonl`` (every answer at every GSD) and ``spoof.json`` (summary and provenance).
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import statistics
from dataclasses import dataclass
from pathlib import Path

from geoscale_vqa.shards import sha256_file

from .evaluate import load_questions, run_questions
from .inference import EvalModel, code_version
from .scale import GateSource


def parse_gsd_range(text: str) -> tuple[float, float]:
    """ "0.03:30" -> (0.03, 30.0); both finite, > 0, low < high."""
    low, sep, high = text.partition(":")
    try:
        lo, hi = float(low), float(high)
    except ValueError:
        lo = hi = math.nan
    if not sep or not (math.isfinite(lo) and math.isfinite(hi) and 0 < lo < hi):
        raise ValueError(f"expected LOW:HIGH in metres with 0 < LOW < HIGH, got {text!r}")
    return lo, hi


def log_grid(low: float, high: float, points: int) -> list[float]:
    if points < 2:
        raise ValueError(f"points must be >= 2, got {points}")
    a, b = math.log10(low), math.log10(high)
    return [10.0 ** (a + (b - a) * i / (points - 1)) for i in range(points)]


@dataclass
class SpoofResult:
    rows: list[dict]  # gsd_m, log10_gsd, accuracy, correct, questions, unparseable
    true_gsd_m: float  # median effective GSD of the model's input pixels (what the gate should be told)
    dataset_gsd_m: float  # median GSD of the source images
    true_gsd_varies: bool
    csv_path: Path
    plot_path: Path
    predictions: dict[float, dict[str, str]]  # gsd -> {question key: answer}


def _headline(metrics: dict) -> str:
    return "overall" if "overall" in metrics else next(iter(metrics))


def spoof(
    em: EvalModel,
    bench: str,
    data,
    out,
    *,
    gsd_range: tuple[float, float] = (0.03, 30.0),
    points: int = 25,
    images=None,
    split: str | None = None,
    batch_size: int = 8,
    max_new_tokens: int = 16,
    limit: int | None = None,
    console=None,
) -> SpoofResult:
    from geoscale_vqa.benchmarks import score_predictions

    grid = log_grid(*gsd_range, points)
    benchmark = load_questions(bench, data, images, split=split, limit=limit)
    questions = [q for q in benchmark.questions if q.gsd_m is not None]
    if not questions:
        raise ValueError(f"{bench} at {data} has no question with a known GSD: spoofing needs the true GSD")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    sweep = run_questions(em, questions, [GateSource("fixed", g) for g in grid], batch_size=batch_size,
                          max_new_tokens=max_new_tokens, console=console, title="spoof")  # fmt: skip
    predictions = {g: {q.key: a.text for q, a in answered} for g, answered in zip(grid, sweep)}
    effective = [a.effective_gsd_m for _, a in sweep[0]]
    source = [q.gsd_m for q, _ in sweep[0]]

    scored = dataclasses.replace(benchmark, questions=questions)  # questions without a GSD are not swept
    rows = []
    for gsd in grid:
        results = score_predictions(scored, predictions[gsd])
        metrics, counts = results["metrics"], results["counts"]
        rows.append(
            {
                "gsd_m": gsd,
                "log10_gsd": math.log10(gsd),
                "accuracy": metrics[_headline(metrics)],
                "correct": counts["correct"],
                "questions": counts["questions"],
                "unparseable": counts["unparseable"] + counts["invalid"],
            }
        )
    true_gsd, dataset_gsd = statistics.median(effective), statistics.median(source)
    varies = max(effective) / min(effective) > 1.0 + 1e-6
    csv_path = _write_csv(out / "spoof.csv", rows)
    plot_path = _plot(out / "spoof.png", rows, true_gsd, dataset_gsd, varies, em, bench)
    with open(out / "spoof_predictions.jsonl", "w", encoding="utf-8") as f:
        for gsd in grid:
            for q in questions:
                f.write(json.dumps({"id": q.id, "gsd_m": gsd, "prediction": predictions[gsd][q.key]}) + "\n")
    summary = {
        "benchmark": bench,
        "data": str(data),
        "points": rows,
        "true_gsd_m": true_gsd,
        "true_gsd_is_median": varies,
        "true_gsd_range_m": [min(effective), max(effective)],
        "dataset_gsd_m": dataset_gsd,
        "note": "true GSD = effective GSD of the model's input pixels (the dataset's GSD after the processor "
        "resize); the gate is fed each spoofed GSD on that same scale",
        "run": {**em.describe(), "batch_size": batch_size, "max_new_tokens": max_new_tokens, "limit": limit},
        "data_files": [{"path": str(f), "sha256": sha256_file(f)} for f in scored.files],
        "code_version": code_version(),
    }
    (out / "spoof.json").write_text(json.dumps(summary, indent=1) + "\n")
    return SpoofResult(rows, true_gsd, dataset_gsd, varies, csv_path, plot_path, predictions)


def _write_csv(path: Path, rows: list[dict]) -> Path:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def _plot(path: Path, rows, true_gsd: float, dataset_gsd: float, varies: bool, em: EvalModel, bench: str) -> Path:
    # Figure + Agg canvas directly: no pyplot global state, no display needed.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.0, 4.0), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    ax.plot([r["gsd_m"] for r in rows], [100 * r["accuracy"] for r in rows], marker="o")
    label = f"{'median ' if varies else ''}true GSD {true_gsd:.3g} m"
    if not math.isclose(true_gsd, dataset_gsd, rel_tol=1e-3):
        label += f" (dataset {dataset_gsd:.3g} m, after resize)"
    ax.axvline(true_gsd, color="tab:red", linestyle="--", label=label)
    ax.set_xscale("log")
    ax.set_ylim(0, max(5.0, 110 * max(r["accuracy"] for r in rows)))  # a flat 0 % curve stays readable
    ax.set(xlabel="GSD fed to the gate (m per pixel)", ylabel="accuracy (%)")
    adapter = em.adapter.kind if em.adapter else "no adapter"
    ax.set_title(f"GSD spoofing: {bench}, {adapter}")
    ax.legend(loc="best")
    fig.tight_layout()
    fig.savefig(path, format="png")
    return path
