"""Helpers the readers and summaries share: option lists, required fields, JSON files, group accuracy."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path

from .answers import LETTERS, parse_letter_set, split_option
from .judge import Outcome
from .records import Answer, Question


def require(record: Mapping, fields: Iterable[str], where: str) -> None:
    if not isinstance(record, Mapping):
        raise ValueError(f"{where}: expected a JSON object, got {type(record).__name__}")
    missing = [f for f in fields if f not in record]
    if missing:
        raise ValueError(f"{where}: missing field(s) {', '.join(repr(f) for f in missing)}")


def choice_answer(options, ground_truth, where: str) -> tuple[list[str], str, Answer]:
    """(option lines "(A) text", option letters, ground truth Answer) from a benchmark's option list.

    Options may be labelled ("(A) x", "A. x") or not (then lettered by position); labels must run A, B, C...
    """
    if not isinstance(options, (list, tuple)) or not options or not all(isinstance(o, str) for o in options):
        raise ValueError(f"{where}: options must be a non-empty list of strings, got {options!r}")
    letters = LETTERS[: len(options)]
    split = [split_option(o) for o in options]
    labels = [label for label, _ in split]
    if any(labels) and labels != list(letters):
        raise ValueError(f"{where}: option labels {labels} are not {', '.join(letters)} in order")
    lines = [f"({letter}) {text}" for letter, (_, text) in zip(letters, split)]
    truth = parse_letter_set(str(ground_truth), letters, where=where)
    return lines, letters, Answer("choice", truth, tuple(letters))


def iter_jsonl(path: Path) -> Iterator[tuple[int, str, object]]:
    """``(line number, "path:line", parsed value)`` for every non-blank line; ValueError names a bad line."""
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{path}:{n}"
            try:
                yield n, where, json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"{where}: malformed JSON line ({err.msg})") from None


def load_json_file(path: Path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: malformed JSON ({err})") from None


def resolve_images(names, base: Path, where: str, check: bool) -> tuple[str, ...]:
    """Image paths relative to `base`; with `check`, every file must exist (eval needs the pixels)."""
    if isinstance(names, str):
        names = [names]
    if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
        raise ValueError(f"{where}: images must be a path or a list of paths, got {names!r}")
    paths = [base / n for n in names]
    missing = [str(p) for p in paths if check and not p.is_file()]
    if missing:
        raise ValueError(f"{where}: image file(s) not found: {', '.join(missing[:3])}")
    return tuple(str(p) for p in paths)


def image_root(images, default: Path) -> Path:
    if images is None:
        return default
    root = Path(images)
    if not root.is_dir():
        raise ValueError(f"image root {images} does not exist" if not root.exists() else f"{images} is not a folder")
    return root


def check_unique(questions: list[Question], where: str) -> None:
    seen = set()
    for q in questions:
        if q.key in seen:
            raise ValueError(f"{where}: duplicate question id {q.id!r}; predictions could not be matched")
        seen.add(q.key)


def group_stats(
    pairs: list[tuple[Question, Outcome]],
    key: Callable[[Question], str | None],
    extra: Mapping[str, Callable[[Question, Outcome], bool]] | None = None,
) -> dict[str, dict]:
    """{label: {"n", "correct", "accuracy", "unparseable", "missing", *extra}} over the questions `key` labels.

    "unparseable" counts unparseable and invalid answers; `extra` adds one counter per predicate.
    """
    stats: dict[str, dict] = {}
    extra = extra or {}
    for question, outcome in pairs:
        label = key(question)
        if label is None:
            continue
        s = stats.setdefault(label, {"n": 0, "correct": 0, "unparseable": 0, "missing": 0, **dict.fromkeys(extra, 0)})
        s["n"] += 1
        s["correct"] += outcome.correct
        s["unparseable"] += outcome.status in ("unparseable", "invalid")
        s["missing"] += outcome.status == "missing"
        for name, predicate in extra.items():
            s[name] += bool(predicate(question, outcome))
    for s in stats.values():
        s["accuracy"] = s["correct"] / s["n"]
    return dict(sorted(stats.items()))


def micro(pairs) -> float:
    return sum(o.correct for _, o in pairs) / len(pairs) if pairs else 0.0


def mean_accuracy(groups: Mapping[str, dict]) -> float:
    return sum(g["accuracy"] for g in groups.values()) / len(groups) if groups else 0.0
