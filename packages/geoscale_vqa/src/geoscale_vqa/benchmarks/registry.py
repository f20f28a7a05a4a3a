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
    summarise: Callable  # summarise([(Question, Outcome)]) -> (metrics, groups)
    data: str  # what --data points at


BENCHMARKS = {
    spec.kind: spec
    for spec in (
        BenchmarkSpec("xlrs", "XLRS-Bench", xlrs.load_xlrs, xlrs.summarise, "folder of .jsonl or .parquet files"),
        BenchmarkSpec(
            "omniearth", "OmniEarth-Bench", omniearth.load_omniearth, omniearth.summarise, "the jsons/ folder"
        ),
        BenchmarkSpec("rsvqa", "RSVQA", rsvqa.load_rsvqa, rsvqa.summarise, "RSVQA folder or *_questions.json"),
        BenchmarkSpec("geoscale", "GeoScale-VQA", geoscale.load_geoscale, geoscale.summarise, "corpus OUT folder"),
    )
}


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
