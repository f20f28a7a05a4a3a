"""The benchmark kinds `eval` and `score` accept, each a reader and a summary of per-question outcomes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from . import geoscale, omniearth, rsvqa, xlrs
from .records import Benchmark


@dataclass(frozen=True)
class BenchmarkSpec:
    kind: str
    title: str
    load: Callable[..., Benchmark]  # load(path, images=None, *, with_images=True, **options)
    summarise: Callable  # summarise([(Question, Outcome)]) -> (metrics, groups, extra results keys)
    official_judge: Callable  # official_judge(benchmark) -> judge(question, text) -> Outcome, the reference rules
    official_scorer: str  # which reference code `--parser official` reproduces
    data: str  # what --data points at


def _spec(kind: str, title: str, module, load: Callable, data: str) -> BenchmarkSpec:
    return BenchmarkSpec(kind, title, load, module.summarise, module.official_judge, module.OFFICIAL_SCORER, data)


BENCHMARKS = {
    spec.kind: spec
    for spec in (
        _spec(
            "xlrs", "XLRS-Bench", xlrs, xlrs.load_xlrs,
            "datasets.save_to_disk folder, .parquet shards, VLMEvalKit .jsonl/.tsv or project .jsonl",
        ),
        _spec("omniearth", "OmniEarth-Bench", omniearth, omniearth.load_omniearth, "prepare_data/ or its jsons/"),
        _spec("rsvqa", "RSVQA", rsvqa, rsvqa.load_rsvqa, "RSVQA LR/HR/xBEN folder or *_questions.json"),
        _spec("geoscale", "GeoScale-VQA", geoscale, geoscale.load_geoscale, "corpus OUT folder"),
    )
}  # fmt: skip


def benchmark_spec(kind: str) -> BenchmarkSpec:
    if kind not in BENCHMARKS:
        raise ValueError(f"unknown benchmark kind {kind!r}; expected one of {', '.join(BENCHMARKS)}")
    return BENCHMARKS[kind]


def load_benchmark(kind: str, path, images=None, *, with_images: bool = True, **options) -> Benchmark:
    """Read a benchmark into uniform `Question`s.

    `images` is an image root for layouts whose image paths are relative (XLRS JSONL, OmniEarth, RSVQA);
    `with_images=False` skips image checks and references (scoring needs none); `options` are per kind:
    `split` for rsvqa ("test", "test_phili", ...) and geoscale ("test").
    """
    return benchmark_spec(kind).load(path, images, with_images=with_images, **options)
