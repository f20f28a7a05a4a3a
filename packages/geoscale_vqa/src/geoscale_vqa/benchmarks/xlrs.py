"""XLRS-Bench (lite) in every published layout: questions, ids, scores and the official scorer's rules.

Layouts `--data` may point at (a folder, or one file of it):

- the Hugging Face `datasets.save_to_disk` folder (`dataset_dict.json`, `train/data-000NN-of-000MM.arrow`),
  as XLRS-Bench-lite is published (`xlrs_arrow`);
- the hub's parquet export (`*.parquet`, images inline) (`xlrs_arrow`);
- VLMEvalKit's copy, `XLRS-Bench-lite_partN.jsonl` or a TSV (options as one string, base64 images)
  (`xlrs_text`);
- the project's JSONL (one record per line, `image` paths relative to the file) (`xlrs_text`).

A record: `index, question, multi-choice options, answer` (letters), `category` ("Task/Subtask", 13
sub-tasks), `l2-category`, `image` (a list). One sub-task, Overall Land use classification, has several
right answers. XLRS carries no GSD (its images come from several sources), so `gsd_m` is None.

**Ids.** The question id is `index` when every index is distinct. In the published data `index`
restarts in every category, so then every question's id is `"<category>#<index>"` (e.g.
`"Counting/Overall counting#0"`), and predictions are keyed the same way; a (category, index) pair
that repeats is an error naming both rows.

**Scores** (exact set match of letters), side by side in `results.json`:

- `micro`: accuracy over all questions (lmms-eval `xlrs_micro_score`, VLMEvalKit "Overall micro");
- `macro`: mean accuracy over the sub-tasks present in this run (the project's definition);
- `macro_lmms_eval`: lmms-eval `xlrs_macro_score` (`tasks/xlrs/mcq_utils.py`): mean over all 13
  sub-tasks, a sub-task without questions counting 0, so a partial run is flagged (`partial_run`);
- `macro_vlmevalkit`: VLMEvalKit `XLRSBench` "Overall macro": mean over the `category/l2-category`
  groups present.

`--parser official` judges each answer as lmms-eval does (`official_mcq.py`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from .common import check_unique, choice_answer, group_stats, image_root, mean_accuracy, micro
from .judge import Outcome
from .official_mcq import XLRS_PREFIXES, letter_judge
from .prompts import choice_prompt
from .records import Benchmark, Question, question_key
from .xlrs_arrow import DATASET_DICT, read_arrow, read_parquet, save_to_disk_shards, split_folder_shards
from .xlrs_rows import XLRSRow
from .xlrs_text import read_jsonl, read_tsv

MULTI_ANSWER_SUBTASK = "land use classification/overall land use classification"
# The 13 sub-tasks lmms-eval's XLRS task knows (`TASK_PAIRs` in tasks/xlrs/mcq_utils.py); its macro is
# the mean over all of them.
TASK_PAIRS = (
    "Complex reasoning/Anomaly Detection and Interpretation",
    "Complex reasoning/Environmental condition reasoning",
    "Complex reasoning/Route planning",
    "Counting/Counting with changing detection",
    "Counting/Counting with complex reasoning",
    "Counting/Overall counting",
    "Counting/Regional counting",
    "Land use classification/Overall Land use classification",
    "Land use classification/Regional Land use classification",
    "Object properties/Object classification",
    "Object properties/Object color",
    "Object properties/Object motion state",
    "Object spatial relationship/Object spatial relationship",
)
METRIC_DEFINITIONS = {
    "micro": "accuracy over all questions (lmms-eval xlrs_micro_score, VLMEvalKit 'Overall micro')",
    "macro": "mean accuracy over the sub-tasks (category) present in this run",
    "macro_lmms_eval": "lmms-eval xlrs_macro_score: mean over all 13 sub-tasks, absent ones counted as 0",
    "macro_vlmevalkit": "VLMEvalKit XLRSBench 'Overall macro': mean over the category/l2-category groups present",
}
OFFICIAL_SCORER = "lmms-eval lmms_eval/tasks/xlrs/mcq_utils.py (e316f862; same rules in VLMEvalKit XLRSBench)"
READERS = {".jsonl": "text", ".tsv": "text", ".parquet": "parquet", ".arrow": "arrow"}


# -- finding the files of a layout ------------------------------------------------------------------
def _files(path: Path) -> list[Path]:
    if path.is_file():
        if path.name == DATASET_DICT:
            return save_to_disk_shards(path.parent)
        if path.suffix not in READERS:
            raise ValueError(f"{path} is not an XLRS file (.jsonl, .tsv, .parquet, .arrow or {DATASET_DICT})")
        return [path]
    if (path / DATASET_DICT).is_file():
        return save_to_disk_shards(path)
    if shards := split_folder_shards(path):
        return shards
    found = sorted(
        f
        for f in path.rglob("*")
        if f.suffix in READERS and f.is_file() and not any(p.startswith(".") for p in f.relative_to(path).parts)
    )
    found = _prefer_base64_copies(found)
    kinds = {f.suffix for f in found}
    if not found:
        raise ValueError(
            f"no XLRS data in {path}: expected {DATASET_DICT} (datasets.save_to_disk), .arrow shards, "
            ".parquet shards, or .jsonl/.tsv files"
        )
    if len(kinds) > 1:
        raise ValueError(f"{path} holds several layouts ({', '.join(sorted(kinds))}); point the data path at one")
    return found


def _prefer_base64_copies(files: list[Path]) -> list[Path]:
    """VLMEvalKit leaves `X_local.tsv` (image paths) next to `X.jsonl` (base64): read the .jsonl only."""
    stems = {f.with_suffix("") for f in files if f.suffix == ".jsonl"}
    return [f for f in files if not (f.name.endswith("_local.tsv") and f.with_name(f.name[:-10]) in stems)]


def _read(file: Path, root: Path | None, with_images: bool) -> list[XLRSRow]:
    if file.suffix == ".jsonl":
        return read_jsonl(file, root, with_images)
    if file.suffix == ".tsv":
        return read_tsv(file, root, with_images)
    if file.suffix == ".parquet":
        return read_parquet(file, with_images)
    return read_arrow(file, with_images)


# -- questions and ids ---------------------------------------------------------------------------
def _question(row: XLRSRow, qid) -> Question:
    lines, letters, answer = choice_answer(list(row.options), row.answer, row.where)
    multi = row.category.lower() == MULTI_ANSWER_SUBTASK or len(answer.value) > 1
    prompt = choice_prompt(
        row.question, lines, letters, multi=multi, cue="The answer(s) is(are):" if multi else "The answer is:"
    )
    groups = {"task": row.category.split("/")[0], "subtask": row.category}
    if row.l2_category:
        groups["l2-category"] = row.l2_category
    return Question(
        id=qid,
        prompt=prompt,
        answer=answer,
        images=row.images,
        groups=groups,
        question=row.question,
        answer_text=row.answer,
    )


def assign_ids(rows: list[XLRSRow]) -> tuple[list, str | None]:
    """`index` where every index is distinct, else `"<category>#<index>"` for every row (and a note)."""
    keys = [question_key(row.index) for row in rows]
    if len(set(keys)) == len(keys):
        return [row.index for row in rows], None
    ids, first = [], {}
    for row in rows:
        qid = f"{row.category}#{row.index}"
        if qid in first:
            raise ValueError(
                f"{row.where}: category {row.category!r} has index {row.index!r} twice (first at {first[qid]}); "
                "questions could not be told apart"
            )
        first[qid] = row.where
        ids.append(qid)
    return ids, "XLRS index repeats across categories: questions are identified as '<category>#<index>'"


def load_xlrs(path, images=None, *, with_images: bool = True) -> Benchmark:
    path = Path(path)
    if not path.exists():
        raise ValueError(f"XLRS data {path} does not exist")
    files = _files(path)
    root = image_root(images, path) if images is not None else None
    rows = [row for file in files for row in _read(file, root, with_images)]
    if not rows:
        raise ValueError(f"no XLRS questions in {path}")
    ids, note = assign_ids(rows)
    questions = [_question(row, qid) for row, qid in zip(rows, ids)]
    check_unique(questions, str(path))
    return Benchmark("xlrs", path, questions, files, images_root=root, notes=[note] if note else [])


# -- scores ------------------------------------------------------------------------------------
def _lmms_subtask(question: Question) -> str:
    return "/".join(question.groups["subtask"].split("/")[:2])


def _macro_lmms_eval(pairs) -> tuple[float, dict]:
    subtasks = group_stats(pairs, _lmms_subtask)
    known = {k: v for k, v in subtasks.items() if k in TASK_PAIRS}
    macro = sum(known[t]["accuracy"] if t in known else 0.0 for t in TASK_PAIRS) / len(TASK_PAIRS)
    info = {}
    absent = [t for t in TASK_PAIRS if t not in known]
    if absent:
        info["partial_run"] = {
            "subtasks_scored": len(known),
            "subtasks_absent": absent,
            "note": f"macro_lmms_eval counts the {len(absent)} absent sub-task(s) as 0",
        }
    unknown = sorted(set(subtasks) - set(TASK_PAIRS))
    if unknown:
        info["unknown_subtasks"] = {
            "subtasks": unknown,
            "note": "lmms-eval's XLRS task rejects these categories; they are left out of macro_lmms_eval",
        }
    return macro, info


def summarise(pairs) -> tuple[dict, dict, dict]:
    subtasks = group_stats(pairs, lambda q: q.groups["subtask"])
    groups = {"subtask": subtasks, "task": group_stats(pairs, lambda q: q.groups["task"])}
    if any("l2-category" in q.groups for q, _ in pairs):
        groups["l2-category"] = group_stats(pairs, lambda q: q.groups.get("l2-category"))
    macro_lmms, extra = _macro_lmms_eval(pairs)
    metrics = {"micro": micro(pairs), "macro": mean_accuracy(subtasks), "macro_lmms_eval": macro_lmms}
    if pairs and all("l2-category" in q.groups for q, _ in pairs):
        vlmevalkit = group_stats(pairs, lambda q: f"{q.groups['subtask']}/{q.groups['l2-category']}")
        metrics["macro_vlmevalkit"] = mean_accuracy(vlmevalkit)
    else:
        metrics["macro_vlmevalkit"] = None
        extra["macro_vlmevalkit"] = "not computed: VLMEvalKit groups by l2-category, which some questions lack"
    return metrics, groups, {"metric_definitions": METRIC_DEFINITIONS, **extra}


def official_judge(benchmark: Benchmark) -> Callable[[Question, str | None], Outcome]:
    """lmms-eval's judgement: its letter extraction, then `set(letters) == set(answer as stored)`."""
    return letter_judge(XLRS_PREFIXES)
