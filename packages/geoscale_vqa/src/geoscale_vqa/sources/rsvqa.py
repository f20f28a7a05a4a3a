"""RSVQA-LR (Sentinel-2, 10 m) and RSVQA-HR (USGS aerial, 0.15 m).

Layout: `{prefix}_split_{split}_{questions,answers,images}.json` next to the image folder
(`LR_split_*` + `Images_LR/{id}.tif`; `USGS_split_*` + `Data/{id}.tif|png`). Records with
`active: false` are dropped (`active` must be a JSON boolean). Every link is checked both ways
(image -> question -> answer and back); a question or answer whose ids do not match, whose fields have
the wrong type, or whose id an earlier record already has, is rejected, and the image keeps its other
questions. A split file that is missing (while its siblings exist) or unreadable stops the build.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from ..qa.tiers import source_tier
from ..records import QA, Item, Reject
from ..rsvqa_layout import LAYOUTS, Layout
from . import _fields as fields
from ._common import load_index, require_dir
from .registry import Adapter, SourceError, SourceOptions, register


def _index(records: list, what: str, source: str, split: str, path: Path) -> tuple[dict, list[Reject]]:
    """{id: record} of one split file; a record without a valid id, or whose id an earlier record has, is
    rejected (the earlier record is kept: nothing is silently replaced)."""
    table, rejects = {}, []
    for n, record in enumerate(records):
        where = dict(split=split, path=str(path))
        try:
            if not isinstance(record, dict):
                raise fields.FieldError(f"{what} record {n} must be an object, got {fields.show(record)}")
            rid = fields.record_id(record.get("id"), f"{what} record {n}: id")
        except fields.FieldError as err:
            rejects.append(Reject(source, f"malformed {what} record", detail=str(err), **where))
            continue
        if rid in table:
            rejects.append(
                Reject(
                    source, f"duplicate {what} id", detail=f"{what} id {rid!r} (record {n}); the first is kept", **where
                )
            )
            continue
        table[rid] = record
    return table, rejects


def _load_split(root: Path, prefix: str, split: str, source: str):
    """(questions, answers, images) of one split, or None when the split has no files at all.

    The three files are the source's index: one that is missing, unreadable or not shaped as RSVQA's
    stops the build (SourceError), since none of the split's records could be linked without it.
    """
    files = LAYOUTS[prefix].split_files(root, split)
    if not any(p.exists() for p in files.values()):
        return None, []
    loaded = {}
    for part, path in files.items():
        data = load_index(source, path)
        if not (isinstance(data, dict) and isinstance(data.get(part), list)):
            raise SourceError(f"{source}: index file {path} has no list under {part!r}")
        loaded[part] = data[part]
    questions, r1 = _index(loaded["questions"], "question", source, split, files["questions"])
    answers, r2 = _index(loaded["answers"], "answer", source, split, files["answers"])
    return (questions, answers, loaded["images"]), r1 + r2


def _active(record: dict, what: str) -> bool:
    return fields.flag(record.get("active", True), f"{what} active")


def _answer(qid, question: dict, answers: dict) -> tuple[str | None, list[tuple[str, str]]]:
    """The first active answer of a question that links back to it, and every problem met on the way."""
    answer, problems = None, []
    for aid in fields.id_list(question.get("answers_ids", []), f"question {qid!r}: answers_ids"):
        candidate = answers.get(aid)
        if candidate is None:
            problems.append(("answer id not found", f"answer {aid!r} of question {qid!r}"))
            continue
        try:
            if not _active(candidate, f"answer {aid!r}"):
                continue
            text = fields.answer_text(candidate.get("answer"), f"answer {aid!r}: answer")
        except fields.FieldError as err:
            problems.append(("malformed answer record", str(err)))
            continue
        if not fields.same_id(candidate.get("question_id"), qid):
            problems.append(
                (
                    "answer question_id does not match question",
                    f"answer {aid!r} has question_id {fields.show(candidate.get('question_id'))}, expected {qid!r}",
                )
            )
        elif answer is None:
            answer = text
    return answer, problems


def _question_qa(qid, image_id, questions: dict, answers: dict, source: str) -> tuple[QA | None, list]:
    """The QA of one question id of an image, or None with (reason, detail) problems."""
    question = questions.get(qid)
    if question is None:
        return None, [("question id not found", f"question {qid!r}")]
    try:
        if not _active(question, f"question {qid!r}"):
            return None, []
        if not fields.same_id(question.get("img_id"), image_id):
            return None, [
                (
                    "question img_id does not match image",
                    f"question {qid!r} has img_id {fields.show(question.get('img_id'))}",
                )
            ]
        text = fields.text(question.get("question"), f"question {qid!r}: question")
        qtype = fields.optional_text(question.get("type"), f"question {qid!r}: type")
        answer, problems = _answer(qid, question, answers)
    except fields.FieldError as err:
        return None, [("malformed question record", str(err))]
    if answer is None:
        return None, problems or [("no valid answer", f"question {qid!r}")]
    return QA(text, answer, source_tier(source, qtype, text), qtype, "source"), problems


def _image_qa(image: dict, questions: dict, answers: dict, source: str, split: str) -> tuple[list[QA], list[Reject]]:
    image_id = image["id"]
    qa, rejects = [], []
    for qid in fields.id_list(image.get("questions_ids", []), "questions_ids"):
        pair, problems = _question_qa(qid, image_id, questions, answers, source)
        # every broken record is reported, whether or not the question could still be used
        rejects += [Reject(source, r, split=split, image_id=str(image_id), detail=d) for r, d in problems]
        if pair is not None:
            qa.append(pair)
    return qa, rejects


def rsvqa_items(root: Path, *, layout: Layout, splits: tuple[str, ...] | None = None) -> Iterator[Item | Reject]:
    source, prefix = layout.name, layout.prefix
    for split in splits or layout.splits:
        loaded, rejects = _load_split(root, prefix, split, source)
        yield from rejects
        if loaded is None:
            continue
        questions, answers, images = loaded
        seen = set()
        for n, image in enumerate(images):
            try:
                if not isinstance(image, dict):
                    raise fields.FieldError(f"image record {n} must be an object, got {fields.show(image)}")
                image_id = fields.record_id(image.get("id"), f"image record {n}: id")
                if not _active(image, f"image {image_id!r}"):
                    continue
                if image_id in seen:
                    raise fields.FieldError(f"image id {image_id!r} (record {n}) appears twice; the first is kept")
                qa, qa_rejects = _image_qa(image, questions, answers, source, split)
            except fields.FieldError as err:
                yield Reject(source, "malformed image record", split=split, detail=str(err))
                continue
            seen.add(image_id)
            yield from qa_rejects
            yield Item(
                source=source,
                split=split,
                image_id=str(image_id),
                image={"path": [str(p) for p in layout.image_candidates(root, image_id)]},
                dataset_gsd_m=layout.gsd_m,
                qa=qa,
                root=str(root),
            )


def _lr_items(arg: str, options: SourceOptions):
    return rsvqa_items(Path(arg), layout=LAYOUTS["LR"])


def _hr_items(arg: str, options: SourceOptions):
    return rsvqa_items(Path(arg), layout=LAYOUTS["USGS"])


def _validator(kind: str, prefix: str):
    def validate(arg: str) -> None:
        root = require_dir(kind, arg)
        if not any(root.glob(f"{prefix}_split_*_questions.json")):
            raise SourceError(f"{kind}: no {prefix}_split_*_questions.json in {arg}")

    return validate


register(Adapter("rsvqa-lr", "RSVQA-LR folder (LR_split_*.json + Images_LR/)", _validator("rsvqa-lr", "LR"), _lr_items))
register(Adapter("rsvqa-hr", "RSVQA-HR folder (USGS_split_*.json + Data/)", _validator("rsvqa-hr", "USGS"), _hr_items))
