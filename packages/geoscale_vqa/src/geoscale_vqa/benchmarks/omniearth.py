"""OmniEarth-Bench: its `jsons/` tree, one JSON list of records per L4 task file.

Published layout (OmniEarth-Bench `evaluation/README.md`): `prepare_data/` holds `jsons/` (files
`jsons/<L1>/<L2>/<L3>/<L4>.json`) and `raw/` (the images); a record's `Images` are relative to
`prepare_data/`. `--data` may name `prepare_data/`, `jsons/` or any folder or file below it.

A record: `Question_id, Question Type, Text, Answer Choices, Ground Truth, Images, L1-task … L4-task,
Dataset`. L1 tasks are the spheres (Atmosphere, Biosphere, Cryosphere, Lithosphere, Oceansphere,
Pedosphere, Cross-sphere). Options go up to G and the last one is "unable to decide"; choosing it is
counted per group. Visual Grounding questions have boxes, not letters: skipped and counted.

**Image root**: `images=DIR` if given; otherwise the folder above `jsons/` where a record's images are
there, else the JSON file's own folder.

**Ids**: `Question_id` when it is unique; `<L4-task>/<n>` ids repeat across files that share an L4
name, so then every question's id is `"<JSON path relative to jsons/>#<position in the file>"`.

**Scores** (exact set match), side by side in `results.json`:

- L1-L4 accuracy, counts aggregated L4 → L3 → L2 → L1 as OmniEarth-Bench's `mcq_utils.py` does
  (each level's accuracy is over all its questions); `micro`: over all questions;
- `macro`: mean over L4 tasks; `sphere_mean`: mean over spheres of their (count-weighted) accuracy;
- VLMEvalKit `OmniEarthMCQBench`: per sphere the mean of its L4 accuracies ("Sphere macro",
  `groups.L1.<sphere>.l4_mean`) and `overall_macro_vlmevalkit`, the mean over all L4 accuracies and
  all sphere macros together, as its "Overall macro" column mixes them.

`--parser official` judges each answer as OmniEarth-Bench's `mcq_utils.py` does (`official_mcq.py`).
Chain-of-Thought questions are scored there by a GPT judge (`cot_utils.py`), which cannot be
reproduced offline: here they are read as multiple choice in both modes, and counted in the results.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
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
)
from .judge import Outcome
from .official_mcq import OMNIEARTH_PREFIXES, letter_judge
from .prompts import choice_prompt
from .records import Benchmark, Question, question_key

LEVELS = ("L1-task", "L2-task", "L3-task", "L4-task")
FIELDS = ("Question_id", "Question Type", "Text", "Answer Choices", "Ground Truth", "Images", *LEVELS)
CHOICE_TYPES = ("Single Choice", "Multiple Choice", "Chain-of-Thought")
SKIPPED_TYPES = ("Visual Grounding",)
JSONS = "jsons"
METRIC_DEFINITIONS = {
    "micro": "accuracy over all questions (OmniEarth-Bench mcq_utils 'Overall Acc', VLMEvalKit 'Overall micro')",
    "macro": "mean accuracy over L4 tasks",
    "sphere_mean": "mean over spheres (L1) of their count-weighted accuracy",
    "overall_macro_vlmevalkit": "VLMEvalKit OmniEarthMCQBench 'Overall macro': mean over every L4 task accuracy "
    "and every per-sphere mean of L4 accuracies, together",
    "groups.L1.*.l4_mean": "VLMEvalKit 'Sphere macro': mean of the sphere's L4 task accuracies",
    "groups.L1.*.accuracy": "OmniEarth-Bench mcq_utils L1 accuracy: the sphere's questions, counts summed L4 -> L1",
}
OFFICIAL_SCORER = "OmniEarth-Bench evaluation/task_config/mcq_utils.py (nanocm/OmniEarth-Bench 2fe932c)"


def _jsons_folder(path: Path) -> Path:
    return path / JSONS if path.is_dir() and (path / JSONS).is_dir() else path


def _default_roots(file: Path) -> list[Path]:
    """The folder above `jsons/` (the published `prepare_data/`), then the JSON file's own folder."""
    above = [p.parent for p in file.parents if p.name == JSONS][:1]
    return list(dict.fromkeys([*above, file.parent]))


def _resolve(names, roots: list[Path], where: str, check: bool) -> tuple[tuple[str, ...], Path | None]:
    """Image paths under the first root that holds them all (with `check`), and that root."""
    if isinstance(names, str):
        names = [names]
    if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
        raise ValueError(f"{where}: Images must be a path or a list of paths, got {names!r}")
    if not check:
        return tuple(str(roots[0] / n) for n in names), None
    for root in roots:
        if all((root / n).is_file() for n in names):
            return tuple(str(root / n) for n in names), root
    tried = " or ".join(str(r) for r in roots)
    raise ValueError(f"{where}: image file(s) not found: {', '.join(names[:3])} (looked under {tried})")


def _question(record: dict, where: str, images: tuple[str, ...]) -> Question:
    lines, letters, answer = choice_answer(record["Answer Choices"], record["Ground Truth"], where)
    multi = record["Question Type"] == "Multiple Choice"
    path = [str(record[level]) for level in LEVELS]
    groups = {f"L{i + 1}": "/".join(path[: i + 1]) for i in range(4)}  # paths: L4 names repeat across parents
    groups["question_type"] = record["Question Type"]
    groups["unable_letter"] = letters[-1] if "unable to decide" in lines[-1].lower() else ""
    return Question(
        id=record["Question_id"],
        prompt=choice_prompt(str(record["Text"]), lines, letters, multi=multi),
        answer=answer,
        images=images,
        groups=groups,
        question=str(record["Text"]),
        answer_text=str(record["Ground Truth"]),
    )


def _records(file: Path):
    records = load_json_file(file)
    if not isinstance(records, list):
        raise ValueError(f"{file}: expected a JSON list of question records")
    return records


def load_omniearth(path, images=None, *, with_images: bool = True) -> Benchmark:
    path = Path(path)
    if not path.exists():
        raise ValueError(f"OmniEarth data {path} does not exist")
    folder = _jsons_folder(path)
    files = [folder] if folder.is_file() else sorted(folder.rglob("*.json"))
    if not files:
        raise ValueError(f"no OmniEarth .json files in {path}")
    explicit = [image_root(images, path)] if images is not None else None
    questions, places, skipped, roots_used = [], [], {}, set()
    for file in files:
        roots = explicit or _default_roots(file)
        for i, record in enumerate(_records(file)):
            where = f"{file}: record {i}"
            require(record, ("Question Type",), where)
            if record["Question Type"] in SKIPPED_TYPES:
                skipped[record["Question Type"]] = skipped.get(record["Question Type"], 0) + 1
                continue
            if record["Question Type"] not in CHOICE_TYPES:
                raise ValueError(f"{where}: unknown Question Type {record['Question Type']!r}")
            require(record, FIELDS, where)
            found, root = _resolve(record["Images"], roots, where, with_images) if with_images else ((), None)
            roots_used.add(root)
            questions.append(_question(record, where, found))
            places.append((file, i))
    questions, id_note = _unique_ids(questions, places, folder if folder.is_dir() else folder.parent)
    check_unique(questions, str(path))
    notes = [f"skipped {n} {kind} question(s): no letter answer" for kind, n in skipped.items()]
    notes += [id_note] if id_note else []
    notes += _official_notes(questions)
    used = explicit[0] if explicit else (next(iter(roots_used)) if len(roots_used) == 1 else None)
    return Benchmark("omniearth", path, questions, files, images_root=used, skipped=skipped, notes=notes)


def _unique_ids(questions: list[Question], places, base: Path) -> tuple[list[Question], str | None]:
    """`Question_id` where unique, else `"<file relative to jsons/>#<position>"` for every question."""
    keys = [question_key(q.id) for q in questions]
    if len(set(keys)) == len(keys):
        return questions, None
    renamed = [replace(q, id=f"{_relative_name(file, base)}#{i}") for q, (file, i) in zip(questions, places)]
    repeated = next(k for k in keys if keys.count(k) > 1)
    note = f"Question_id repeats (e.g. {repeated!r}): questions are identified as '<JSON file under jsons/>#<position>'"
    return renamed, note


def _relative_name(file: Path, base: Path) -> str:
    """The file's path under `jsons/` (whatever folder `--data` named), else under the data folder."""
    jsons = [p for p in file.parents if p.name == JSONS][:1]
    return file.relative_to(jsons[0] if jsons else base).as_posix()


def _official_notes(questions: list[Question]) -> list[str]:
    notes = []
    cot = sum(q.groups["question_type"] == "Chain-of-Thought" for q in questions)
    if cot:
        notes.append(
            f"{cot} Chain-of-Thought question(s): OmniEarth-Bench scores these with a GPT judge (cot_utils.py); "
            "here they are read as multiple choice in both parser modes"
        )
    without_unable = sum(not q.groups["unable_letter"] for q in questions)
    if without_unable:
        notes.append(
            f"{without_unable} question(s) whose last option is not 'unable to decide' "
            "(OmniEarth-Bench's mcq_utils.py asserts it is)"
        )
    return notes


def _chose_unable(question, outcome) -> bool:
    return bool(question.groups["unable_letter"]) and outcome.parsed == question.groups["unable_letter"]


def summarise(pairs) -> tuple[dict, dict, dict]:
    extra = {"unable_to_decide": _chose_unable}
    groups = {
        level: group_stats(pairs, lambda q, level=level: q.groups[level], extra) for level in ("L1", "L2", "L3", "L4")
    }
    groups["question_type"] = group_stats(pairs, lambda q: q.groups["question_type"], extra)
    l4_by_sphere: dict[str, list[float]] = {}
    for task, stats in groups["L4"].items():
        l4_by_sphere.setdefault(task.split("/")[0], []).append(stats["accuracy"])
    for sphere, stats in groups["L1"].items():
        stats["l4_mean"] = sum(l4_by_sphere[sphere]) / len(l4_by_sphere[sphere])
    everything = [s["accuracy"] for s in groups["L4"].values()] + [s["l4_mean"] for s in groups["L1"].values()]
    # macro is over L4 tasks only; the sphere mean is reported separately, never averaged with tasks
    metrics = {
        "micro": micro(pairs),
        "macro": mean_accuracy(groups["L4"]),
        "sphere_mean": mean_accuracy(groups["L1"]),
        "overall_macro_vlmevalkit": sum(everything) / len(everything) if everything else 0.0,
    }
    return metrics, groups, {"metric_definitions": METRIC_DEFINITIONS}


def official_judge(benchmark: Benchmark) -> Callable[[Question, str | None], Outcome]:
    """OmniEarth-Bench's judgement: its letter extraction, then `set(letters) == set(Ground Truth as stored)`."""
    return letter_judge(OMNIEARTH_PREFIXES)
