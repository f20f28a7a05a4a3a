"""GeoScale-VQA: build scale-layered remote-sensing VQA corpora as WebDataset shards, and read them back.

from geoscale_vqa import build, geoscale_dataset
build(["synthetic=200", "rsvqa-lr=/data/RSVQA_LR"], "corpus", workers=4)
for sample in geoscale_dataset("corpus", split="train", mode="qa"):
    sample["image"], sample["question"], sample["answer"], sample["gsd_m"]
"""

from ._version import __version__ as __version__
from .build import BuildError, BuildResult, build, merge_parts, parse_part  # noqa: E402
from .gsd import GSDError, effective_gsd, gsd_from_geotiff, validate_gsd  # noqa: E402
from .qa.teacher import TeacherConfig  # noqa: E402  (torch/transformers load only when a teacher runs)
from .reader import geoscale_dataset, shard_urls  # noqa: E402
from .sources import REGISTRY as SOURCES  # noqa: E402
from .sources import SourceError, parse_source  # noqa: E402

# Benchmark readers and scorers (geoscale_vqa.benchmarks), imported on first use so `import geoscale_vqa`
# stays as light as before.
_BENCHMARK_EXPORTS = ("load_benchmark", "read_predictions", "results_table", "score_predictions", "write_predictions")


def __getattr__(name):
    if name in _BENCHMARK_EXPORTS:
        from . import benchmarks

        return getattr(benchmarks, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "SOURCES",
    "BuildError",
    "BuildResult",
    "GSDError",
    "SourceError",
    "TeacherConfig",
    "build",
    "effective_gsd",
    "geoscale_dataset",
    "gsd_from_geotiff",
    "load_benchmark",
    "merge_parts",
    "parse_part",
    "parse_source",
    "read_predictions",
    "results_table",
    "score_predictions",
    "shard_urls",
    "validate_gsd",
    "write_predictions",
]
