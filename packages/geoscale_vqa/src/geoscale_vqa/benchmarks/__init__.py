"""Benchmarks: readers, prompts, answer extraction and scoring for XLRS-Bench, OmniEarth-Bench, RSVQA and
the GeoScale held-out split. Pure data: no model is loaded here.

    from geoscale_vqa.benchmarks import load_benchmark, read_predictions, score_predictions, results_table

    bench = load_benchmark("xlrs", "/data/XLRS-Bench-lite")            # uniform Question records
    for q in bench.questions: q.id, q.prompt, q.images, q.gsd_m          # what a model runner needs
    results = score("xlrs", "/data/XLRS-Bench-lite", "preds.jsonl", "out")  # writes out/results.json
    results = score("xlrs", "/data/XLRS-Bench-lite", "preds.jsonl", "out", parser="official")  # lmms-eval's rules
"""

from .answers import extract_letters, parse_letter_set
from .image_refs import ArrowStreamImage, RecordImage
from .judge import Outcome, judge
from .predictions import read_predictions, write_predictions
from .prior import blind_prior, most_frequent_answers
from .records import Answer, Benchmark, ParquetImage, Question, open_image, question_key
from .registry import BENCHMARKS, benchmark_spec, load_benchmark
from .scoring import PARSERS, question_rows, score, score_predictions, write_results
from .table import results_table

__all__ = [
    "BENCHMARKS",
    "PARSERS",
    "Answer",
    "ArrowStreamImage",
    "Benchmark",
    "Outcome",
    "ParquetImage",
    "Question",
    "RecordImage",
    "benchmark_spec",
    "blind_prior",
    "extract_letters",
    "judge",
    "load_benchmark",
    "most_frequent_answers",
    "open_image",
    "parse_letter_set",
    "question_key",
    "question_rows",
    "read_predictions",
    "results_table",
    "score",
    "score_predictions",
    "write_predictions",
    "write_results",
]
