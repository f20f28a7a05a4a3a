"""RSVQA-LR (Sentinel-2, 10 m) and RSVQA-HR (USGS aerial, 0.15 m).

Layout: `{prefix}_split_{split}_{questions,answers,images}.json` next to the image folder
(`LR_split_*` + `Images_LR/{id}.tif`; `USGS_split_*` + `Data/{id}.tif|png`). Records with
`active: false` are dropped. Every link is checked both ways (image -> question -> answer and back);
a question or answer whose ids do not match is rejected, the image keeps its other questions.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from ..qa.tiers import source_tier
from ..records import QA, Item, Reject
from . import Adapter, SourceOptions, register
from ._common import load_json, require_dir


def _index(records: list, what: str, source: str, split: str, path: Path) -> tuple[dict, list[Reject]]:
    table, rejects = {}, []
    for record in records:
        if not isinstance(record, dict) or "id" not in record:
            rejects.append(
                Reject(source, f"malformed {what} record", split=split, path=str(path), detail=repr(record)[:200])
            )
            continue
        table[record["id"]] = record
    return table, rejects


def _load_split(root: Path, prefix: str, split: str, source: str):
    files = {part: root / f"{prefix}_split_{split}_{part}.json" for part in ("questions", "answers", "images")}
    if not any(p.exists() for p in files.values()):
        return None, []
    loaded, rejects = {}, []
    for part, path in files.items():
        data, reject = load_json(path, source, split)
        if reject is None and not (isinstance(data, dict) and isinstance(data.get(part), list)):
            reject = Reject(source, "malformed JSON", split=split, path=str(path), detail=f"no list under {part!r}")
        if reject is not None:
            rejects.append(reject)
            continue
        loaded[part] = (data[part], path)
    if len(loaded) < 3:
        return None, rejects  # the split cannot be linked without all three files
    questions, r1 = _index(loaded["questions"][0], "question", source, split, loaded["questions"][1])
    answers, r2 = _index(loaded["answers"][0], "answer", source, split, loaded["answers"][1])
    return (questions, answers, loaded["images"][0]), rejects + r1 + r2


def _image_qa(image: dict, questions: dict, answers: dict, source: str, split: str) -> tuple[list[QA], list[Reject]]:
    image_id = str(image["id"])
    qa, rejects = [], []

    def reject(reason, detail):
        rejects.append(Reject(source, reason, split=split, image_id=image_id, detail=detail))

    for qid in image.get("questions_ids") or []:
        question = questions.get(qid)
        if question is None:
            reject("question id not found", f"question {qid}")
            continue
        if not question.get("active", True):
            continue
        if question.get("img_id") != image["id"]:
            reject("question img_id does not match image", f"question {qid} has img_id {question.get('img_id')!r}")
            continue
        if not isinstance(question.get("question"), str):
            reject("malformed question record", f"question {qid}")
            continue
        answer, problems = None, []
        for aid in question.get("answers_ids") or []:
            candidate = answers.get(aid)
            if candidate is None:
                problems.append(("answer id not found", f"answer {aid} of question {qid}"))
            elif not candidate.get("active", True):
                continue
            elif candidate.get("question_id") != qid:
                problems.append(
                    (
                        "answer question_id does not match question",
                        f"answer {aid} has question_id {candidate.get('question_id')!r}, expected {qid!r}",
                    )
                )
            elif answer is None:
                answer = candidate
        for problem in problems:  # every broken answer record is reported, used or not
            reject(*problem)
        if answer is None:
            if not problems:
                reject("no valid answer", f"question {qid}")
            continue
        qtype = str(question.get("type", ""))
        qa.append(
            QA(
                question["question"],
                str(answer["answer"]),
                source_tier(source, qtype, question["question"]),
                qtype,
                "source",
            )
        )
    return qa, rejects


def rsvqa_items(
    root: Path,
    *,
    source: str,
    prefix: str,
    image_dir: str,
    extensions: tuple[str, ...],
    splits: tuple[str, ...],
    dataset_gsd_m: float,
) -> Iterator[Item | Reject]:
    for split in splits:
        loaded, rejects = _load_split(root, prefix, split, source)
        yield from rejects
        if loaded is None:
            continue
        questions, answers, images = loaded
        for image in images:
            if not isinstance(image, dict) or "id" not in image:
                yield Reject(source, "malformed image record", split=split, detail=repr(image)[:200])
                continue
            if not image.get("active", True):
                continue
            qa, qa_rejects = _image_qa(image, questions, answers, source, split)
            yield from qa_rejects
            candidates = [str(root / image_dir / f"{image['id']}{ext}") for ext in extensions]
            yield Item(
                source=source,
                split=split,
                image_id=str(image["id"]),
                image={"path": candidates},
                dataset_gsd_m=dataset_gsd_m,
                qa=qa,
            )


def _lr_items(arg: str, options: SourceOptions):
    return rsvqa_items(
        Path(arg),
        source="rsvqa-lr",
        prefix="LR",
        image_dir="Images_LR",
        extensions=(".tif",),
        splits=("train", "val", "test"),
        dataset_gsd_m=10.0,
    )


def _hr_items(arg: str, options: SourceOptions):
    return rsvqa_items(
        Path(arg),
        source="rsvqa-hr",
        prefix="USGS",
        image_dir="Data",
        extensions=(".tif", ".png"),
        splits=("train", "val", "test", "test_phili"),
        dataset_gsd_m=0.15,
    )


def _validator(kind: str, prefix: str):
    def validate(arg: str) -> None:
        from . import SourceError

        root = require_dir(kind, arg)
        if not any(root.glob(f"{prefix}_split_*_questions.json")):
            raise SourceError(f"{kind}: no {prefix}_split_*_questions.json in {arg}")

    return validate


register(Adapter("rsvqa-lr", "RSVQA-LR folder (LR_split_*.json + Images_LR/)", _validator("rsvqa-lr", "LR"), _lr_items))
register(Adapter("rsvqa-hr", "RSVQA-HR folder (USGS_split_*.json + Data/)", _validator("rsvqa-hr", "USGS"), _hr_items))
