"""The blind prior: answer each question with the most frequent training answer of its type, never looking.

A model's accuracy means something only next to this baseline. The answers are counted on the training
split of the same corpus only (never on the split being scored), per QA type; ties go to the answer that
sorts first, so the prior is deterministic. The prior's predictions are judged by the same judge as the
model's, so "0" for "How many cars?" scores exactly as the model's "0" would.
"""

from __future__ import annotations

import functools
import json
import os
from collections import Counter, defaultdict
from pathlib import Path

from .records import Benchmark

PRIOR_SPLIT = "train"


def most_frequent_answers(corpus, *, split: str = PRIOR_SPLIT) -> dict[str, str]:
    """{QA type: its most frequent answer} over the ``split`` shards of a GeoScale-VQA corpus.

    Reads only the samples' JSON (no image is decoded). The shards are read once per process for the same
    files (path, size, mtime): an ablation evaluates one corpus dozens of times.
    """
    from ..reader import shard_urls

    urls = shard_urls(Path(corpus), split)
    if not urls:
        raise ValueError(f"no {split!r} shards in {corpus}: the blind prior needs the corpus's training split")
    files = tuple((u, os.stat(u).st_size, os.stat(u).st_mtime_ns) for u in urls)
    return dict(_most_frequent(files, split))


@functools.lru_cache(maxsize=8)
def _most_frequent(files: tuple, split: str) -> tuple:
    import webdataset as wds

    urls = [u for u, _, _ in files]
    counts: dict[str, Counter] = defaultdict(Counter)
    for raw in wds.WebDataset(urls, shardshuffle=False, empty_check=False):
        record = json.loads(raw["json"])
        if record.get("split") != split:
            continue
        for qa in record["qa"]:
            counts[str(qa.get("type", ""))][str(qa["answer"])] += 1
    return tuple((t, min(c.items(), key=lambda kv: (-kv[1], kv[0]))[0]) for t, c in sorted(counts.items()))


def prior_predictions(benchmark: Benchmark, answers: dict[str, str]) -> dict[str, str]:
    """{question key: the prior's answer}; a type never seen in training gets no answer (scored wrong)."""
    return {q.key: answers[q.groups["type"]] for q in benchmark.questions if q.groups.get("type") in answers}


def blind_prior(benchmark: Benchmark, corpus, *, split: str = PRIOR_SPLIT) -> dict:
    """The prior's answers and its accuracy on ``benchmark`` (overall, per tier, per type), as results.json holds it."""
    from .registry import benchmark_spec
    from .scoring import judge_all

    if benchmark.kind != "geoscale":
        raise ValueError(f"a blind prior needs the training split of a GeoScale-VQA corpus, not {benchmark.kind!r}")
    answers = most_frequent_answers(corpus, split=split)
    pairs = judge_all(benchmark, prior_predictions(benchmark, answers))
    metrics, groups, _ = benchmark_spec(benchmark.kind).summarise(pairs)
    return {
        "definition": f"most frequent {split!r}-split answer per QA type of the same corpus; no image seen",
        "answers": answers,
        "metrics": metrics,
        "groups": {k: groups[k] for k in ("tier", "type") if k in groups},
    }
