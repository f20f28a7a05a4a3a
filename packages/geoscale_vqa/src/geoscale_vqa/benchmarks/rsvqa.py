"""RSVQA-LR, RSVQA-HR (`test`, `test_phili`) and RSVQAxBEN test splits, in their published JSON layout.

`{LR|USGS|RSVQAxBEN}_split_{split}_{questions,answers,images}.json` next to `Images_LR/{id}.tif` (LR),
`Data/{id}.tif|png` (HR) or `Images/{id}.tif` (xBEN); see docs/design.md section 3 and
`geoscale_vqa.sources.rsvqa`, which reads the same files (one layout: `geoscale_vqa.rsvqa_layout`) for
corpus building. This reader keeps the question ids (the corpus adapter does not need them) and raises on
malformed files instead of rejecting records, so it is separate.

`path` is the dataset folder (then `split`, default "test") or one `*_split_<split>_questions.json`.
The split files as the datasets' own generators write them (syvlo/RSVQA `AutomaticDB/Splits.py`,
RSVQAxBEN `BigEarthNetVQA.ipynb`) list every image of the database and fill id gaps with placeholder
records `{"id": n, "active": false}` so that list position equals id: an inactive record is skipped
before any of its fields is looked at. Inactive answers and images are dropped; a question whose
answer is missing or does not point back to it is skipped and counted under `skipped`. The question
count equals the reference loader's (`VQA_model/VQALoader.py`: every question id of every active
image), or the notes say by how many and why it differs. RSVQAxBEN's reference test loader also drops
questions whose answer is not among the 1,000 most frequent training answers; that needs the training
split and is not applied here.

Scoring per question type, as in the RSVQA paper: LR presence/comp (yes/no), rural_urban, count in
bins 0, 1-10, 11-100, 101-1000, >1000; HR presence/comp, count (exact), area in m² in the same bins;
xBEN presence (yes/no) and LC (a set of land-cover classes). Results: accuracy per type, overall (all
questions) and average (mean over types), the paper's OA/AA. `--parser official` compares answers
after the reference answer encoding (`official_rsvqa.py`).
GSD: LR and xBEN Sentinel-2 10 m, HR USGS aerial 0.15 m (docs/design.md section 2).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from ..rsvqa_layout import LAYOUTS
from .answers import extract_bin, extract_number, normalise_text, normalise_yes_no, split_items
from .common import group_stats, load_json_file, mean_accuracy, micro, require
from .judge import MISSING, Outcome
from .official_rsvqa import rsvqa_encoding
from .prompts import short_answer_prompt
from .records import Answer, Benchmark, Question

# The layout (file names, image folders, GSDs) is shared with the corpus adapter: geoscale_vqa.rsvqa_layout.
VARIANTS = {
    prefix: {"name": layout.name, "images": layout.images, "extensions": layout.extensions, "gsd_m": layout.gsd_m}
    for prefix, layout in LAYOUTS.items()
}
_QUESTIONS_FILE = re.compile(r"^(LR|USGS|RSVQAxBEN)_split_(.+)_questions\.json$")
METRIC_DEFINITIONS = {
    "overall": "OA: accuracy over all questions (RSVQA train.py / computeStats.py)",
    "average": "AA: mean over question types of their accuracy",
}
OFFICIAL_SCORER = "syvlo/RSVQA VQA_model/VocabEncoder.py answer encoding (3c445ff); RSVQAxBEN Model.ipynb (7e8e922)"


def _locate(path: Path, split: str) -> tuple[Path, str, str]:
    """(root, prefix, split) from a folder or a questions file."""
    if path.is_file():
        match = _QUESTIONS_FILE.match(path.name)
        if match is None:
            raise ValueError(f"{path} is not an RSVQA {{LR|USGS|RSVQAxBEN}}_split_<split>_questions.json file")
        return path.parent, match.group(1), match.group(2)
    if not path.is_dir():
        raise ValueError(f"RSVQA data {path} does not exist")
    prefixes = [p for p in VARIANTS if (path / f"{p}_split_{split}_questions.json").exists()]
    if len(prefixes) != 1:
        found = sorted(p.name for p in path.glob("*_split_*_questions.json"))
        raise ValueError(
            f"{path}: expected one of LR_/USGS_/RSVQAxBEN_split_{split}_questions.json, found {found or 'none'}"
            if not prefixes
            else f"{path} holds {' and '.join(prefixes)} {split} splits; pass one questions file"
        )
    return path, prefixes[0], split


def _answer(qtype: str, text: str, prefix: str, where: str) -> Answer:
    if qtype in ("presence", "comp"):
        value = normalise_yes_no(text)
        if value is None:
            raise ValueError(f"{where}: {qtype} answer {text!r} is not yes/no")
        return Answer("yesno", value)
    if qtype == "LC" and prefix == "RSVQAxBEN":  # "Pastures, mixed forest and water bodies", or "None"
        return Answer("set", split_items(text))
    if qtype == "rural_urban":
        return Answer("vocab", normalise_text(text), ("rural", "urban"))
    if qtype == "count" and prefix == "USGS":  # HR counts are scored exactly, as in the paper
        status, value = extract_number(text)
        if status != "strict" or not float(value).is_integer():
            raise ValueError(f"{where}: count answer {text!r} is not an integer")
        return Answer("count", int(value))
    if qtype in ("count", "area"):
        status, value = extract_bin(text, area=qtype == "area")
        if status != "strict":
            raise ValueError(f"{where}: {qtype} answer {text!r} is not a number")
        return Answer("area_bin" if qtype == "area" else "count_bin", value)
    return Answer("text", normalise_text(text))


def _inactive(record) -> bool:
    """A placeholder `{"id": n, "active": false}` or a dropped record: skipped before any field is read."""
    return isinstance(record, dict) and not record.get("active", True)


def _table(records, what: str, path: Path) -> dict:
    table = {}
    for i, record in enumerate(records):
        if _inactive(record):
            continue
        require(record, ("id",), f"{path}: {what} {i}")
        table[record["id"]] = record
    return table


def _active_images(records, path: Path) -> tuple[set, int]:
    """(ids of the active images, questions the reference loader reads: every question id of every active image)."""
    ids, listed = set(), 0
    for i, record in enumerate(records):
        if _inactive(record):
            continue
        require(record, ("id",), f"{path}: image {i}")
        ids.add(record["id"])
        listed += len(record.get("questions_ids") or [])
    return ids, listed


def load_rsvqa(path, images=None, *, split: str = "test", with_images: bool = True) -> Benchmark:
    root, prefix, split = _locate(Path(path), split)
    variant = VARIANTS[prefix]
    files = list(LAYOUTS[prefix].split_files(root, split).values())
    parts = {}
    for file, part in zip(files, ("questions", "answers", "images")):
        if not file.exists():
            raise ValueError(f"RSVQA {split} split needs {file.name} next to the questions file")
        data = load_json_file(file)
        if not isinstance(data, dict) or not isinstance(data.get(part), list):
            raise ValueError(f"{file}: expected {{{part!r}: [...]}}")
        parts[part] = data[part]
    answers = _table(parts["answers"], "answer", files[1])
    active_images, reference_count = _active_images(parts["images"], files[2])
    image_dir = Path(images) if images is not None else root / variant["images"]
    if (images is not None or with_images) and not image_dir.is_dir():
        raise ValueError(f"image root {image_dir} does not exist")
    questions, skipped = [], {}
    for i, q in enumerate(parts["questions"]):
        where = f"{files[0]}: question {i}"
        if _inactive(q):
            continue
        require(q, ("id", "img_id", "type", "question", "answers_ids"), where)
        if q["img_id"] not in active_images:
            skipped["image not active in this split"] = skipped.get("image not active in this split", 0) + 1
            continue
        linked = [answers.get(a) for a in q["answers_ids"]]
        linked = [a for a in linked if a is not None and a.get("active", True) and a.get("question_id") == q["id"]]
        if not linked:
            skipped["no valid answer"] = skipped.get("no valid answer", 0) + 1
            continue
        require(linked[0], ("answer",), f"{files[1]}: answer {linked[0]['id']}")
        text = str(linked[0]["answer"])
        image = _image_path(image_dir, q["img_id"], variant["extensions"], with_images, where)
        questions.append(
            Question(
                id=q["id"],
                prompt=short_answer_prompt(q["question"]),
                answer=_answer(str(q["type"]), text, prefix, where),
                images=(image,) if image else (),
                groups={"type": str(q["type"])},
                gsd_m=variant["gsd_m"],
                question=q["question"],
                answer_text=text,
            )
        )
    notes = [f"{variant['name']} split {split}"]
    notes += [f"skipped {n} question(s): {reason}" for reason, n in skipped.items()]
    if len(questions) != reference_count:
        notes.append(
            f"the reference loader (VQALoader.py) reads {reference_count} question(s) here: every question id "
            f"of every active image; {len(questions)} are scored"
        )
    return Benchmark(
        "rsvqa", root, questions, files, images_root=image_dir, skipped=skipped, notes=notes, variant=variant["name"]
    )


def _image_path(image_dir: Path, img_id, extensions, with_images: bool, where: str) -> str | None:
    if not with_images:
        return None
    for ext in extensions:
        candidate = image_dir / f"{img_id}{ext}"
        if candidate.is_file():
            return str(candidate)
    raise ValueError(f"{where}: image {img_id} not found in {image_dir} ({'/'.join(extensions)})")


def summarise(pairs) -> tuple[dict, dict, dict]:
    types = group_stats(pairs, lambda q: q.groups["type"])
    metrics = {"overall": micro(pairs), "average": mean_accuracy(types)}
    return metrics, {"type": types}, {"metric_definitions": METRIC_DEFINITIONS}


def official_judge(benchmark: Benchmark) -> Callable[[Question, str | None], Outcome]:
    """The reference judgement: the answer's encoding equals the ground truth's (`official_rsvqa.py`)."""
    variant = benchmark.variant

    def judge(question: Question, text: str | None) -> Outcome:
        if text is None:
            return MISSING
        found = rsvqa_encoding(text, variant)
        if found is None:
            return Outcome("unparseable", None, False)
        return Outcome("official", " ".join(found), found == rsvqa_encoding(question.answer_text, variant))

    return judge
