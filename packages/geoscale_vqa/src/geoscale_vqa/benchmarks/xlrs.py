"""XLRS-Bench (lite): a folder of JSONL files or of the Hugging Face parquet shards.

A record: `index, question, multi-choice options` (["(A) …", …]), `answer` (letters), `category`
("Task/Subtask", 13 sub-tasks), `l2-category`, `image` (a list: paths relative to the JSONL file, or
inline {"bytes", "path"} cells in parquet). One sub-task, Overall Land use classification, has several
right answers. Scored by exact set match; micro = all questions, macro = mean over sub-tasks.
XLRS carries no GSD (its images come from several sources), so `gsd_m` is None.
"""

from __future__ import annotations

from pathlib import Path

from .common import (
    check_unique,
    choice_answer,
    group_stats,
    image_root,
    iter_jsonl,
    mean_accuracy,
    micro,
    require,
    resolve_images,
)
from .prompts import choice_prompt
from .records import Benchmark, ParquetImage, Question

FIELDS = ("index", "question", "multi-choice options", "answer", "category", "image")
MULTI_ANSWER_SUBTASK = "land use classification/overall land use classification"


def _question(record: dict, where: str, images: tuple) -> Question:
    require(record, FIELDS, where)
    lines, letters, answer = choice_answer(record["multi-choice options"], record["answer"], where)
    category = str(record["category"])
    multi = category.lower() == MULTI_ANSWER_SUBTASK or len(answer.value) > 1
    prompt = choice_prompt(
        str(record["question"]),
        lines,
        letters,
        multi=multi,
        cue="The answer(s) is(are):" if multi else "The answer is:",
    )
    groups = {"task": category.split("/")[0], "subtask": category}
    if record.get("l2-category"):
        groups["l2-category"] = str(record["l2-category"])
    return Question(
        id=record["index"],
        prompt=prompt,
        answer=answer,
        images=images,
        groups=groups,
        question=str(record["question"]),
        answer_text=str(record["answer"]),
    )


def _read_jsonl(path: Path, root: Path | None, with_images: bool) -> list[Question]:
    questions = []
    base = root if root is not None else path.parent
    for _, where, record in iter_jsonl(path):
        require(record, FIELDS, where)
        images = resolve_images(record["image"], base, where, check=with_images) if with_images else ()
        questions.append(_question(record, where, images))
    return questions


def _image_counts(path: Path) -> list[int]:
    """Images per row, read one row group at a time so a shard's pixels are never all in memory."""
    import pyarrow.parquet as pq

    file, counts = pq.ParquetFile(path), []
    for group in range(file.num_row_groups):
        for cell in file.read_row_group(group, columns=["image"]).column(0).to_pylist():
            counts.append(len(cell) if isinstance(cell, list) else 1)
    return counts


def _read_parquet(path: Path, with_images: bool) -> list[Question]:
    try:
        import pyarrow.parquet as pq
    except ImportError:  # pragma: no cover - pyarrow is a dependency; this guards a broken install
        raise ValueError("reading XLRS parquet shards needs pyarrow (pip install pyarrow)") from None
    names = pq.read_schema(path).names
    missing = [f for f in FIELDS if f not in names]
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(repr(f) for f in missing)}")
    columns = [c for c in (*FIELDS, "l2-category") if c in names and c != "image"]
    rows = pq.read_table(path, columns=columns).to_pylist()
    counts = _image_counts(path) if with_images else [0] * len(rows)
    return [
        _question(
            {**row, "image": None},
            f"{path}: row {i}",
            tuple(ParquetImage(str(path), i, "image", k) for k in range(counts[i])),
        )
        for i, row in enumerate(rows)
    ]


def load_xlrs(path, images=None, *, with_images: bool = True) -> Benchmark:
    path = Path(path)
    if not path.exists():
        raise ValueError(f"XLRS data {path} does not exist")
    files = [path] if path.is_file() else sorted([*path.rglob("*.jsonl"), *path.rglob("*.parquet")])
    suffixes = {f.suffix for f in files}
    if not files or not suffixes <= {".jsonl", ".parquet"}:
        raise ValueError(f"no XLRS .jsonl or .parquet files in {path}")
    if len(suffixes) > 1:
        raise ValueError(f"{path} holds both .jsonl and .parquet files; point the data path at one layout")
    root = image_root(images, path) if images is not None else None
    questions = []
    for file in files:
        questions += (
            _read_jsonl(file, root, with_images) if file.suffix == ".jsonl" else _read_parquet(file, with_images)
        )
    check_unique(questions, str(path))
    return Benchmark("xlrs", path, questions, files, images_root=root)


def summarise(pairs) -> tuple[dict, dict]:
    subtasks = group_stats(pairs, lambda q: q.groups["subtask"])
    groups = {"subtask": subtasks, "task": group_stats(pairs, lambda q: q.groups["task"])}
    if any("l2-category" in q.groups for q, _ in pairs):
        groups["l2-category"] = group_stats(pairs, lambda q: q.groups.get("l2-category"))
    return {"micro": micro(pairs), "macro": mean_accuracy(subtasks)}, groups
