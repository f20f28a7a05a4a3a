"""``scaleearth eval`` and ``scaleearth score``: run a model on a benchmark, or score any model's predictions.

``evaluate`` writes, under ``out``: ``predictions.jsonl`` (``{"id", "prediction"}`` per line plus what the
gate saw: gate GSD, policy branch, image widths before and after the resize, views (tiles) per image
and the effective GSD of each view), ``results.json`` and
``scored.jsonl`` (via ``geoscale_vqa.benchmarks``), and, when the adapter run has an SSE-U head and the
benchmark has true GSDs, ``sseu_calibration.png``. ``results.json`` records the model, adapter (with
hashes), GSD source, parser, tiling, policy branch counts, resize summary and code version under
``run``, and the SSE-U report under ``sseu``. ``parser`` (strict | official) picks how answers are read
(``geoscale_vqa.benchmarks.scoring``); ``tiling`` (none | grid:N) how images over the pixel budget
reach the model (``inference.Tiling``).
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from pathlib import Path

from geoscale_vqa.progress import progress_bar

from .inference import EvalModel, ImageCache, Item, Tiling, answer_batch, code_version
from .scale import GateSource

PREDICTIONS_NAME = "predictions.jsonl"
CALIBRATION_PLOT_NAME = "sseu_calibration.png"


def load_questions(bench: str, data, images=None, *, split: str | None = None, limit: int | None = None):
    """The benchmark (first ``limit`` questions only, noted in the results, if given)."""
    from geoscale_vqa.benchmarks import load_benchmark

    options = {"split": split} if split else {}
    benchmark = load_benchmark(bench, data, images, **options)
    if limit is not None and limit < len(benchmark.questions):
        benchmark = dataclasses.replace(
            benchmark,
            questions=benchmark.questions[:limit],
            notes=[*benchmark.notes, f"limited to the first {limit} of {len(benchmark.questions)} questions"],
        )
    return benchmark


def question_noise(n: int, source: GateSource, seed: int) -> list[float]:
    """Per-question noise in decades for noisy:SIGMA, drawn once so batch size and order cannot change it."""
    import torch

    from sseu import perturb_log10_gsd

    if source.kind != "noisy" or n == 0:
        return [0.0] * n
    return perturb_log10_gsd(torch.zeros(n, dtype=torch.float64), source.value, seed=seed).tolist()


def batches(questions, size: int):
    for start in range(0, len(questions), size):
        yield questions[start : start + size]


def items_for(em: EvalModel, questions, cache: ImageCache, noise: dict, tiling: Tiling | None = None) -> list[Item]:
    items, tiling = [], tiling or Tiling()
    for q in questions:
        opened = [cache.open_views(ref, em.processor, tiling) for ref in q.images]
        views = [view for image_views in opened for view in image_views]
        items.append(
            Item(
                prompt=q.prompt,
                images=[image for _, image in views],
                source_widths=[size[0] for size, _ in views],
                gsd_m=q.gsd_m,
                noise=noise.get(q.key, 0.0),
                views=[len(image_views) for image_views in opened],
            )
        )
    return items


def prediction_row(question, answer) -> dict:
    row = {"id": question.id, "question": question.question, "truth": question.answer_text}
    row |= {"prediction": answer.text, "gate_gsd_m": answer.gate_gsd_m, "branch": answer.branch}
    row["effective_gsd_m"] = answer.effective_gsd_m
    row["source_widths"], row["input_widths"] = answer.source_widths, answer.input_widths
    row["resize"] = [_resize_kind(s, w) for s, w in zip(answer.source_widths, answer.input_widths)]
    row["views"], row["view_effective_gsd_m"] = answer.views, answer.view_effective_gsd_m
    if answer.sseu_mean is not None:
        row["sseu_log10_gsd"], row["sseu_var"] = answer.sseu_mean, answer.sseu_var
    return row


def _resize_kind(source_width: int, input_width: int) -> str:
    return "downscaled" if source_width > input_width else "upscaled" if source_width < input_width else "unchanged"


def run_questions(
    em, questions, source, *, batch_size, max_new_tokens, seed=0, console=None, title="eval", tiling=None
):
    """[(question, inference.Answer)] in benchmark order, with a Rich progress bar when ``console`` is given.

    ``source`` may also be a list of GSD sources (the spoofing sweep): then one such list per source,
    each batch's images decoded and resized once for all of them.
    """
    sweep = isinstance(source, (list, tuple))
    sources = list(source) if sweep else [source]
    keys = [q.key for q in questions]
    noise = [dict(zip(keys, question_noise(len(questions), s, seed))) for s in sources]
    cache = ImageCache()
    out = [[] for _ in sources]
    progress = progress_bar(console, title) if console is not None else None
    task = progress.add_task(title, total=len(questions) * len(sources)) if progress else None
    if progress:
        progress.start()
    try:
        for chunk in batches(questions, batch_size):
            items = items_for(em, chunk, cache, {}, tiling)
            for i, src in enumerate(sources):
                noisy = [dataclasses.replace(it, noise=noise[i].get(q.key, 0.0)) for it, q in zip(items, chunk)]
                out[i] += list(zip(chunk, answer_batch(em, noisy, src, max_new_tokens=max_new_tokens)))
                if progress:
                    progress.advance(task, len(chunk))
    finally:
        if progress:
            progress.stop()
    return out if sweep else out[0]


def resize_summary(answered) -> dict:
    """How the images were resized to the model's pixel budget (the effective GSD follows this factor).

    Counted per view (a whole image, or one tile) of a question: an image asked about in several
    questions counts once per question.
    """
    pairs = [(s, w) for _, a in answered for s, w in zip(a.source_widths, a.input_widths)]
    factors = [s / w for s, w in pairs]
    return {
        "question_images": sum(len(a.views or a.source_widths) for _, a in answered),
        "tiled_images": sum(n > 1 for _, a in answered for n in (a.views or [])),
        "views": len(pairs),
        "downscaled": sum(f > 1 for f in factors),
        "upscaled": sum(f < 1 for f in factors),
        "source_width_px": [min(s for s, _ in pairs), max(s for s, _ in pairs)],
        "model_width_px": [min(w for _, w in pairs), max(w for _, w in pairs)],
        "gsd_factor": [min(factors), max(factors)],
    }


def _image_identity(ref) -> str:
    """Which image a reference is: its path, or a digest of its bytes or pixels (corpora carry images inline)."""
    import hashlib

    if isinstance(ref, (str, Path)):
        return str(ref)
    if isinstance(ref, (bytes, bytearray)):
        return hashlib.sha256(ref).hexdigest()
    if hasattr(ref, "tobytes") and hasattr(ref, "size"):  # a PIL image
        return f"{ref.size}:{ref.mode}:" + hashlib.sha256(ref.tobytes()).hexdigest()
    return f"object:{id(ref)}"


def sseu_report(answered, out_dir: Path) -> dict | None:
    """SSE-U against the true effective GSD: MAE, coverage, calibration plot, and what the policy would pick.

    One entry per image set: questions sharing an image (RSVQA asks ~100 per image) count once.
    """
    import torch

    from sseu import SSEUPrediction, plot_calibration, resolve_scale, sseu_metrics

    seen, mean, var, target = set(), [], [], []
    for q, a in answered:
        key = tuple(_image_identity(r) for r in q.images)
        if a.sseu_mean is None or a.effective_gsd_m is None or key in seen:
            continue
        seen.add(key)
        mean.append(a.sseu_mean)
        var.append(a.sseu_var)
        target.append(math.log10(a.effective_gsd_m))
    if not mean:
        return None
    pred = SSEUPrediction(torch.tensor(mean, dtype=torch.float64), torch.tensor(var, dtype=torch.float64))
    truth = torch.tensor(target, dtype=torch.float64)
    plot = plot_calibration(pred, truth, out_dir / CALIBRATION_PLOT_NAME, title="SSE-U calibration")
    without_metadata = resolve_scale(None, pred).counts()
    n = len(mean)
    return {
        "images": n,
        "metrics": sseu_metrics(pred, truth),
        "calibration_plot": str(plot),
        "policy_without_metadata": {b: c / n for b, c in without_metadata.items()},
        "note": "targets are the effective GSD of the model's input pixels; one entry per distinct image",
    }


def evaluate(
    em: EvalModel,
    bench: str,
    data,
    out,
    *,
    gsd_source: str = "oracle",
    images=None,
    split: str | None = None,
    batch_size: int = 8,
    max_new_tokens: int = 16,
    limit: int | None = None,
    seed: int = 0,
    console=None,
    parser: str = "strict",
    tiling: str = "none",
) -> dict:
    """Answer every question of a benchmark, write predictions and results; returns the results dict."""
    from geoscale_vqa.benchmarks import (
        blind_prior,
        question_rows,
        score_predictions,
        write_predictions,
        write_results,
    )
    from geoscale_vqa.benchmarks.scoring import check_parser

    source = GateSource.parse(gsd_source)
    check_parser(parser)
    views = Tiling.parse(tiling)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    benchmark = load_questions(bench, data, images, split=split, limit=limit)
    answered = run_questions(
        em, benchmark.questions, source, batch_size=batch_size, max_new_tokens=max_new_tokens, seed=seed,
        console=console, tiling=views,
    )  # fmt: skip
    predictions_path = write_predictions(out / PREDICTIONS_NAME, (prediction_row(q, a) for q, a in answered))
    predictions = {q.key: a.text for q, a in answered}
    branches = Counter(a.branch for _, a in answered)
    without_gsd = sum(q.gsd_m is None for q in benchmark.questions)
    run = {
        **em.describe(),
        "gsd_source": str(source),
        "gsd": {
            "branches": {b: branches.get(b, 0) for b in ("metadata", "estimate", "default")},
            "questions_without_benchmark_gsd": without_gsd,
            "note": _gsd_note(source, without_gsd, len(benchmark.questions), em),
        },
        "resize": resize_summary(answered),
        "tiling": str(views),
        "parser": parser,
        "batch_size": batch_size,
        "max_new_tokens": max_new_tokens,
        "limit": limit,
        "seed": seed,
        "decoding": "greedy",
    }
    results = score_predictions(benchmark, predictions, predictions_path=predictions_path, run=run, parser=parser)
    results["code_version"] = {**results["code_version"], **code_version()}
    if benchmark.kind == "geoscale":  # the corpus's own training split gives the baseline every number needs
        results["blind_prior"] = blind_prior(benchmark, data)
    if em.has_head:
        results["sseu"] = sseu_report(answered, out)
    write_results(out, results, question_rows(benchmark, predictions, parser=parser))
    return results


def _gsd_note(source: GateSource, without_gsd: int, n: int, em: EvalModel) -> str:
    notes = []
    if not em.model.scale_gated:
        notes.append("the model has no scale-gated adapter: the gate GSD does not change its computation")
    if source.uses_metadata and without_gsd:
        fallback = "SSE-U estimate, else the neutral default" if em.has_head else "the neutral default (no SSE-U)"
        notes.append(f"{without_gsd} of {n} questions have no benchmark GSD: {source.kind} fell back to {fallback}")
    return "; ".join(notes)


def score_file(
    bench: str, data, predictions, out, *, images=None, split: str | None = None, parser: str = "strict"
) -> dict:
    """Score a predictions file from any model (``scaleearth score``): the library's ``score``."""
    from geoscale_vqa.benchmarks import score

    options = {"split": split} if split else {}
    return score(bench, data, predictions, out, images=images, run={"command": "score"}, parser=parser, **options)
