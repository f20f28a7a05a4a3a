"""RSVQA-LR and RSVQA-HR test splits (HR also `test_phili`), in the published JSON layout.

`{LR|USGS}_split_{split}_{questions,answers,images}.json` next to `Images_LR/{id}.tif` (LR) or
`Data/{id}.tif|png` (HR); see DESIGN.md section 3 and `geoscale_vqa.sources.rsvqa`, which reads the
same files for corpus building. This reader keeps the question ids (the corpus adapter does not need
them) and raises on malformed files instead of rejecting records, so it is separate.

`path` is the dataset folder (then `split`, default "test") or one `*_split_<split>_questions.json`.
Inactive questions, answers and images are dropped; a question whose answer is missing or does not
point back to it is skipped and counted under `skipped` (the corpus adapter rejects the same cases).

Scoring per question type, as in the RSVQA paper: LR presence/comp (yes/no), rural_urban, count in
bins 0, 1-10, 11-100, 101-1000, >1000; HR presence/comp, count (exact), area in m² in the same bins.
Results: accuracy per type, overall (all questions) and average (mean over types), the paper's OA/AA.
GSD: LR Sentinel-2 10 m, HR USGS aerial 0.15 m (DESIGN.md section 2).
"""

from __future__ import annotations

import re
from pathlib import Path

from .answers import extract_bin, extract_number, normalise_text, normalise_yes_no
from .common import group_stats, load_json_file, mean_accuracy, micro, require
from .prompts import short_answer_prompt
from .records import Answer, Benchmark, Question

VARIANTS = {
    "LR": {"name": "rsvqa-lr", "images": "Images_LR", "extensions": (".tif",), "gsd_m": 10.0},
    "USGS": {"name": "rsvqa-hr", "images": "Data", "extensions": (".tif", ".png"), "gsd_m": 0.15},
}
_QUESTIONS_FILE = re.compile(r"^(LR|USGS)_split_(.+)_questions\.json$")


def _locate(path: Path, split: str) -> tuple[Path, str, str]:
    """(root, prefix, split) from a folder or a questions file."""
    if path.is_file():
        match = _QUESTIONS_FILE.match(path.name)
        if match is None:
            raise ValueError(f"{path} is not an RSVQA {{LR|USGS}}_split_<split>_questions.json file")
        return path.parent, match.group(1), match.group(2)
    if not path.is_dir():
        raise ValueError(f"RSVQA data {path} does not exist")
    prefixes = [p for p in VARIANTS if (path / f"{p}_split_{split}_questions.json").exists()]
    if len(prefixes) != 1:
        found = sorted(p.name for p in path.glob("*_split_*_questions.json"))
        raise ValueError(
            f"{path}: expected one of LR_/USGS_split_{split}_questions.json, found {found or 'none'}"
            if not prefixes
            else f"{path} holds both LR and USGS {split} splits; pass one questions file"
        )
    return path, prefixes[0], split


def _answer(qtype: str, text: str, prefix: str, where: str) -> Answer:
    if qtype in ("presence", "comp"):
        value = normalise_yes_no(text)
        if value is None:
            raise ValueError(f"{where}: {qtype} answer {text!r} is not yes/no")
        return Answer("yesno", value)
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


def _table(records, what: str, path: Path) -> dict:
    table = {}
    for i, record in enumerate(records):
        require(record, ("id",), f"{path}: {what} {i}")
        table[record["id"]] = record
    return table


def load_rsvqa(path, images=None, *, split: str = "test", with_images: bool = True) -> Benchmark:
    root, prefix, split = _locate(Path(path), split)
    variant = VARIANTS[prefix]
    files = [root / f"{prefix}_split_{split}_{part}.json" for part in ("questions", "answers", "images")]
    parts = {}
    for file, part in zip(files, ("questions", "answers", "images")):
        if not file.exists():
            raise ValueError(f"RSVQA {split} split needs {file.name} next to the questions file")
        data = load_json_file(file)
        if not isinstance(data, dict) or not isinstance(data.get(part), list):
            raise ValueError(f"{file}: expected {{{part!r}: [...]}}")
        parts[part] = data[part]
    answers = _table(parts["answers"], "answer", files[1])
    active_images = {i["id"] for i in parts["images"] if isinstance(i, dict) and i.get("active", True)}
    image_dir = Path(images) if images is not None else root / variant["images"]
    if (images is not None or with_images) and not image_dir.is_dir():
        raise ValueError(f"image root {images} does not exist")
    questions, skipped = [], {}
    for i, q in enumerate(parts["questions"]):
        where = f"{files[0]}: question {i}"
        require(q, ("id", "img_id", "type", "question", "answers_ids"), where)
        if not q.get("active", True) or q["img_id"] not in active_images:
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
    return Benchmark("rsvqa", root, questions, files, images_root=image_dir, skipped=skipped, notes=notes)


def _image_path(image_dir: Path, img_id, extensions, with_images: bool, where: str) -> str | None:
    if not with_images:
        return None
    for ext in extensions:
        candidate = image_dir / f"{img_id}{ext}"
        if candidate.is_file():
            return str(candidate)
    raise ValueError(f"{where}: image {img_id} not found in {image_dir} ({'/'.join(extensions)})")


def summarise(pairs) -> tuple[dict, dict]:
    types = group_stats(pairs, lambda q: q.groups["type"])
    return {"overall": micro(pairs), "average": mean_accuracy(types)}, {"type": types}
