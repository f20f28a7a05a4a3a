"""Score predictions against a benchmark: per-question outcomes, the benchmark's own aggregates, provenance.

`results.json` records what is needed to trace a number back to a command: the benchmark kind, the data
path and the sha256 of every annotation file read (images are not hashed: XLRS JSONL and OmniEarth point
at thousands; parquet and Arrow shards and GeoScale shards hold their images and are hashed whole), the
predictions file and its sha256, `geoscale_vqa.__version__`, and anything the caller adds under `run`
(model, adapter, gsd-source). Missing predictions count as wrong and are listed; predictions for ids the
benchmark does not have are listed and not scored.

**Parsers.** `parser="strict"` (the default) reads answers with the project's strict-then-fallback rules
(`answers.py`, `judge.py`); `parser="official"` with the benchmark's own scorer's rules (lmms-eval for
XLRS, OmniEarth-Bench's `mcq_utils.py`, RSVQA's answer encoding; `official_mcq.py`,
`official_rsvqa.py`). `metrics`, `groups` and `scored.jsonl` follow the chosen parser; `parsers` holds
both modes' headline metrics and how many answers the two judge differently, with their ids.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from pathlib import Path

from ..shards import sha256_file
from .judge import LENGTH_RTOL, judge
from .predictions import read_predictions
from .records import Benchmark
from .registry import benchmark_spec, load_benchmark

SCHEMA = "geoscale-vqa-results/1"
LISTED_IDS = 50  # ids listed in results.json per problem kind; counts are always complete


PARSERS = ("strict", "official")


def check_parser(parser: str) -> str:
    if parser not in PARSERS:
        raise ValueError(f"unknown parser {parser!r}; expected one of {', '.join(PARSERS)}")
    return parser


def judge_all(
    benchmark: Benchmark, predictions: Mapping[str, str], *, parser: str = "strict", length_rtol: float = LENGTH_RTOL
):
    """[(question, outcome)] in benchmark order; a question without a prediction is "missing"."""
    if check_parser(parser) == "official":
        official = benchmark_spec(benchmark.kind).official_judge(benchmark)
        return [(q, official(q, predictions.get(q.key))) for q in benchmark.questions]
    return [(q, judge(q.answer, predictions.get(q.key), length_rtol=length_rtol)) for q in benchmark.questions]


def _parser_comparison(spec, by_parser: dict, parser: str) -> dict:
    """Both parsers' headline metrics and the questions they judge differently."""
    strict, official = by_parser["strict"], by_parser["official"]
    differ = [q.id for (q, a), (_, b) in zip(strict, official) if a.correct != b.correct]
    return {
        "selected": parser,
        "official_scorer": spec.official_scorer,
        **{name: {"metrics": spec.summarise(pairs)[0], "correct": sum(o.correct for _, o in pairs)}
           for name, pairs in by_parser.items()},
        "judged_differently": len(differ),
        "judged_differently_ids": differ[:LISTED_IDS],
    }  # fmt: skip


def score_predictions(
    benchmark: Benchmark,
    predictions: Mapping[str, str],
    *,
    predictions_path=None,
    run: Mapping | None = None,
    parser: str = "strict",
    length_rtol: float = LENGTH_RTOL,
) -> dict:
    """The results dict (as written to results.json) for `predictions` = {question key: raw text}."""
    from .._version import __version__

    spec = benchmark_spec(benchmark.kind)
    by_parser = {mode: judge_all(benchmark, predictions, parser=mode, length_rtol=length_rtol) for mode in PARSERS}
    pairs = by_parser[check_parser(parser)]
    metrics, groups, extra = spec.summarise(pairs)
    status = Counter(o.status for _, o in pairs)
    known = {q.key for q in benchmark.questions}
    unknown = sorted(k for k in predictions if k not in known)
    missing = [q.id for q, o in pairs if o.status == "missing"]
    return {
        "schema": SCHEMA,
        "benchmark": benchmark.kind,
        "title": spec.title,
        "parser": parser,
        "metrics": metrics,
        **extra,
        "parsers": _parser_comparison(spec, by_parser, parser),
        "counts": {
            "questions": len(pairs),
            "correct": sum(o.correct for _, o in pairs),
            "strict": status["strict"],
            "fallback": status["fallback"],
            "official": status["official"],
            "unparseable": status["unparseable"],
            "invalid": status["invalid"],
            "missing": status["missing"],
            "unknown_ids": len(unknown),
            "skipped": dict(benchmark.skipped),
        },
        "groups": groups,
        "missing_ids": missing[:LISTED_IDS],
        "unknown_ids": unknown[:LISTED_IDS],
        "data": {
            "path": str(benchmark.path),
            "images": str(benchmark.images_root) if benchmark.images_root else None,
            "files": [{"path": str(f), "sha256": sha256_file(f)} for f in benchmark.files],
        },
        "predictions": (
            {"path": str(predictions_path), "sha256": sha256_file(predictions_path)} if predictions_path else None
        ),
        "code_version": {"geoscale_vqa": __version__},
        "notes": list(benchmark.notes),
        "run": dict(run or {}),
    }


def question_rows(
    benchmark: Benchmark, predictions: Mapping[str, str], *, parser: str = "strict", length_rtol: float = LENGTH_RTOL
):
    """One row per question for scored.jsonl: id, groups, truth, prediction, and under the chosen parser what
    was parsed, its status and whether it is right; `strict_correct`/`official_correct` give both verdicts."""
    check_parser(parser)
    both = {mode: judge_all(benchmark, predictions, parser=mode, length_rtol=length_rtol) for mode in PARSERS}
    return (_row(q, strict, official, parser, predictions) for (q, strict), (_, official) in zip(*both.values()))


def _row(q, strict, official, parser: str, predictions) -> dict:
    o = strict if parser == "strict" else official
    return {
        "id": q.id,
        **{k: v for k, v in q.groups.items() if v},
        "answer": q.answer_text,
        "prediction": predictions.get(q.key),
        "parsed": o.parsed,
        "status": o.status,
        "correct": o.correct,
        "strict_correct": strict.correct,
        "official_correct": official.correct,
    }


def write_results(out_dir, results: Mapping, rows=None) -> Path:
    """`out_dir/results.json` (and `out_dir/scored.jsonl` when per-question `rows` are given)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if rows is not None:
        with open(out / "scored.jsonl", "w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
    path = out / "results.json"
    path.write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def score(
    bench: str,
    data_path,
    predictions_path,
    out_dir,
    *,
    images=None,
    run: Mapping | None = None,
    parser: str = "strict",
    **options,
) -> dict:
    """Read a benchmark and a predictions file, score, write `out_dir/results.json` and `scored.jsonl`."""
    check_parser(parser)
    benchmark = load_benchmark(bench, data_path, images, with_images=False, **options)
    predictions = read_predictions(predictions_path)
    results = score_predictions(benchmark, predictions, predictions_path=predictions_path, run=run, parser=parser)
    write_results(out_dir, results, question_rows(benchmark, predictions, parser=parser))
    return results
