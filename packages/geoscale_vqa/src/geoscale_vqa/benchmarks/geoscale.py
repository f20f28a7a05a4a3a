"""GeoScale held-out split: our own WebDataset shards (default split "test"), one question per QA pair.

Ids are `<sample key>/<n>`, n the QA's position in its sample (what `geoscale_dataset(mode="qa")` names
them). Answers are free text, so the answer kind comes from the QA type and the ground truth:
yes/no answers → yesno; `count` → exact integer; RSVQA `area` → m² bin; lengths (`gsd`, `footprint`,
`object_size`, or any "76.8 m"-style answer) → within 10% per dimension; land-cover lists → set match;
`rural_urban` → rural | urban; anything else → normalised exact text. Results: accuracy per tier, per
GSD decade (e.g. "1-10 m"), per QA type and per source, plus overall and the mean over tiers.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from pathlib import Path

from .answers import extract_bin, extract_lengths, extract_number, normalise_text, normalise_yes_no, split_items
from .common import check_unique, group_stats, mean_accuracy, micro
from .judge import Outcome, judge
from .prompts import qa_prompt
from .records import Answer, Benchmark, Question

LENGTH_TYPES = ("gsd", "footprint", "object_size")
SET_TYPES = ("land_cover", "LC")


def gsd_decade(gsd_m: float | None) -> str:
    """ "1-10 m" for 3.2 m: the decade [10^k, 10^(k+1)) holding the GSD; "unknown" without one."""
    if gsd_m is None:
        return "unknown"
    k = math.floor(math.log10(gsd_m) + 1e-9)  # 1000 m is log10 2.9999999999999996 in floating point
    return f"{10.0**k:g}-{10.0 ** (k + 1):g} m"


def _answer(qtype: str, text: str, where: str) -> Answer:
    if (yes_no := normalise_yes_no(text)) is not None:
        return Answer("yesno", yes_no)
    if qtype == "count":
        status, value = extract_number(text)
        if status == "strict" and float(value).is_integer():
            return Answer("count", int(value))
    if qtype == "area":
        status, value = extract_bin(text, area=True)
        if status == "strict":
            return Answer("area_bin", value)
    if qtype in LENGTH_TYPES or re.fullmatch(r"[\d.]+\s*(?:km|m|cm)(?:\s*×\s*[\d.]+\s*(?:km|m|cm))*", text.strip()):
        status, value = extract_lengths(text)
        if status == "strict":
            return Answer("length", value)
    if qtype in SET_TYPES:
        return Answer("set", split_items(text))
    if qtype == "rural_urban" and normalise_text(text) in ("rural", "urban"):
        return Answer("vocab", normalise_text(text), ("rural", "urban"))
    if not normalise_text(text):
        raise ValueError(f"{where}: empty answer")
    return Answer("text", normalise_text(text))


def load_geoscale(path, images=None, *, split: str = "test", with_images: bool = True) -> Benchmark:
    from ..reader import geoscale_dataset, shard_urls

    path = Path(path)
    if not path.exists():
        raise ValueError(f"GeoScale corpus {path} does not exist")
    if images is not None:
        raise ValueError("GeoScale shards carry their images; do not pass an image root")
    urls = shard_urls(path, split)
    if not urls:
        raise ValueError(f"no {split!r} shards in {path}")
    questions = []
    for qa in geoscale_dataset(path, split=split, mode="qa", rank=0, world_size=1):
        where = f"{qa.get('__url__')}: {qa['__key__']}"
        questions.append(
            Question(
                id=qa["__key__"],
                prompt=qa_prompt(qa["question"], str(qa.get("type", ""))),
                answer=_answer(str(qa.get("type", "")), str(qa["answer"]), where),
                images=(qa["image"],) if with_images else (),
                groups={
                    "tier": qa["tier"],
                    "gsd_decade": gsd_decade(qa.get("gsd_m")),
                    "type": str(qa.get("type", "")),
                    "source": qa["source"],
                },
                gsd_m=qa.get("gsd_m"),
                question=qa["question"],
                answer_text=str(qa["answer"]),
            )
        )
    check_unique(questions, str(path))
    files = [Path(u) for u in urls] + ([path / "manifest.json"] if (path / "manifest.json").exists() else [])
    return Benchmark("geoscale", path, questions, files, notes=[f"split {split}"])


METRIC_DEFINITIONS = {
    "overall": "accuracy over all questions",
    "tier_mean": "mean over tiers (object, structure, semantic, scale) of their accuracy",
}
OFFICIAL_SCORER = "none: GeoScale-VQA is this project's benchmark, so --parser official is the strict judge"


def summarise(pairs) -> tuple[dict, dict, dict]:
    tiers = group_stats(pairs, lambda q: q.groups["tier"])
    groups = {
        "tier": tiers,
        "gsd_decade": group_stats(pairs, lambda q: q.groups["gsd_decade"]),
        "type": group_stats(pairs, lambda q: q.groups["type"]),
        "source": group_stats(pairs, lambda q: q.groups["source"]),
    }
    metrics = {"overall": micro(pairs), "tier_mean": mean_accuracy(tiers)}
    return metrics, groups, {"metric_definitions": METRIC_DEFINITIONS}


def official_judge(benchmark: Benchmark) -> Callable[[Question, str | None], Outcome]:
    """GeoScale-VQA has no outside scorer: its official judgement is the project's own."""
    return lambda question, text: judge(question.answer, text)
