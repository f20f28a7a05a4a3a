"""OmniEarth-Bench: its `jsons/` folder, one JSON list of records per task file.

A record: `Question_id, Question Type, Text, Answer Choices, Ground Truth, Images, L1-task … L4-task,
Dataset`. `Images` are relative to an image root (`images=DIR`, default the JSON's folder). L1 tasks are
the spheres (Atmosphere, Biosphere, Cryosphere, Lithosphere, Oceansphere, Pedosphere, Cross-sphere).
Options go up to G and the last one is "unable to decide"; choosing it is counted per group.

Scoring follows the benchmark's own code (exact set match, counts aggregated L4 → L3 → L2 → L1, i.e.
each level's accuracy is over all its questions) plus overall micro accuracy, and a clean macro: the
mean over L4 tasks, never mixed with the sphere (L1) columns. Visual Grounding questions have boxes,
not letters; they are skipped and counted under `skipped`.
"""

from __future__ import annotations

from pathlib import Path

from .common import (
    check_unique,
    choice_answer,
    group_stats,
    image_root,
    load_json_file,
    mean_accuracy,
    micro,
    require,
    resolve_images,
)
from .prompts import choice_prompt
from .records import Benchmark, Question

LEVELS = ("L1-task", "L2-task", "L3-task", "L4-task")
FIELDS = ("Question_id", "Question Type", "Text", "Answer Choices", "Ground Truth", "Images", *LEVELS)
CHOICE_TYPES = ("Single Choice", "Multiple Choice", "Chain-of-Thought")
SKIPPED_TYPES = ("Visual Grounding",)


def _question(record: dict, where: str, root: Path, with_images: bool) -> Question:
    lines, letters, answer = choice_answer(record["Answer Choices"], record["Ground Truth"], where)
    multi = record["Question Type"] == "Multiple Choice"
    path = [str(record[level]) for level in LEVELS]
    groups = {f"L{i + 1}": "/".join(path[: i + 1]) for i in range(4)}  # paths: L4 names repeat across parents
    groups["question_type"] = record["Question Type"]
    groups["unable_letter"] = letters[-1] if "unable to decide" in lines[-1].lower() else ""
    images = resolve_images(record["Images"], root, where, check=True) if with_images else ()
    return Question(
        id=record["Question_id"],
        prompt=choice_prompt(str(record["Text"]), lines, letters, multi=multi),
        answer=answer,
        images=images,
        groups=groups,
        question=str(record["Text"]),
        answer_text=str(record["Ground Truth"]),
    )


def load_omniearth(path, images=None, *, with_images: bool = True) -> Benchmark:
    path = Path(path)
    if not path.exists():
        raise ValueError(f"OmniEarth data {path} does not exist")
    files = [path] if path.is_file() else sorted(path.rglob("*.json"))
    if not files:
        raise ValueError(f"no OmniEarth .json files in {path}")
    questions, skipped = [], {}
    for file in files:
        records = load_json_file(file)
        if not isinstance(records, list):
            raise ValueError(f"{file}: expected a JSON list of question records")
        root = image_root(images, file.parent)
        for i, record in enumerate(records):
            where = f"{file}: record {i}"
            require(record, ("Question Type",), where)
            if record["Question Type"] in SKIPPED_TYPES:
                skipped[record["Question Type"]] = skipped.get(record["Question Type"], 0) + 1
                continue
            if record["Question Type"] not in CHOICE_TYPES:
                raise ValueError(f"{where}: unknown Question Type {record['Question Type']!r}")
            require(record, FIELDS, where)
            questions.append(_question(record, where, root, with_images))
    check_unique(questions, str(path))
    notes = [f"skipped {n} {kind} question(s): no letter answer" for kind, n in skipped.items()]
    root = image_root(images, path) if images is not None else None
    return Benchmark("omniearth", path, questions, files, images_root=root, skipped=skipped, notes=notes)


def _chose_unable(question, outcome) -> bool:
    return bool(question.groups["unable_letter"]) and outcome.parsed == question.groups["unable_letter"]


def summarise(pairs) -> tuple[dict, dict]:
    extra = {"unable_to_decide": _chose_unable}
    groups = {
        level: group_stats(pairs, lambda q, level=level: q.groups[level], extra) for level in ("L1", "L2", "L3", "L4")
    }
    groups["question_type"] = group_stats(pairs, lambda q: q.groups["question_type"], extra)
    # macro is over L4 tasks only; the sphere mean is reported separately, never averaged with tasks
    metrics = {"micro": micro(pairs), "macro": mean_accuracy(groups["L4"]), "sphere_mean": mean_accuracy(groups["L1"])}
    return metrics, groups
