"""Bring your own data: a folder of images plus a JSONL manifest.

`folder=DIR` reads `DIR/manifest.jsonl` (or `folder=FILE.jsonl` reads that file); image paths are
relative to the manifest's folder. One JSON object per line:

    {"image": "tiles/a.png", "gsd_m": 0.3, "id": "a", "split": "train",
     "labels": {"counts": {"car": 3}, "scene_class": "parking lot", "land_cover": ["..."],
                "rural_urban": "urban", "dominant_cover": "built-up", "presence": {"road": true}},
     "qa": [{"question": "...", "answer": "...", "type": "count", "tier": "object"}]}

Only `image` is required: a path relative to the manifest's folder that stays inside it (absolute paths,
`..` and symlinks leading out are rejected unless the build allows reads outside the source folder).
Without `gsd_m` the image's GeoTIFF tags are used; without either the line is rejected. `id` (text or an
integer) defaults to the image path, `split` to train. Every field is type-checked (`_fields`): a line
with a wrong type or value is rejected with the field named, and the build goes on. QA without a valid
tier get one by the documented rule (`qa.tiers`); answers are text or numbers.
"""

from __future__ import annotations

import json
import os
from pathlib import Path, PurePosixPath

from ..qa.tiers import source_tier
from ..records import QA, Item, Reject
from . import _fields as fields
from ._common import gsd_field, read_index_text
from .registry import Adapter, SourceError, SourceOptions, register

KIND = "folder"
MANIFEST = "manifest.jsonl"


def _manifest(arg: str) -> Path:
    path = Path(arg)
    return path / MANIFEST if path.is_dir() else path


def _check_inside(path: str) -> None:
    """Absolute paths and `..` leave the manifest's folder (symlinks are caught when the file is read)."""
    parts = PurePosixPath(path.replace(os.sep, "/"))
    if parts.is_absolute() or Path(path).is_absolute() or ".." in parts.parts:
        raise fields.FieldError(f"image {fields.show(path)} is absolute or has '..'; it must lie below the manifest")


def _qa(entries) -> list[QA]:
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise fields.FieldError(f"qa must be a list of {{question, answer}}, got {fields.show(entries)}")
    out = []
    for n, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise fields.FieldError(f"qa[{n}] must be an object with question and answer, got {fields.show(entry)}")
        if "answer" not in entry:
            raise fields.FieldError(f"qa[{n}] has no answer")
        question = fields.text(entry.get("question"), f"qa[{n}].question")
        answer = fields.answer_text(entry["answer"], f"qa[{n}].answer")
        qtype = fields.optional_text(entry.get("type"), f"qa[{n}].type")
        tier = fields.tier(entry.get("tier"), f"qa[{n}].tier") or source_tier(KIND, qtype, question)
        out.append(QA(question, answer, tier, qtype, "source"))
    return out


def _record(line: str, where: str, root: Path, options: SourceOptions) -> Item | Reject:
    """One manifest line as an Item, or the Reject that names what is wrong with it."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as err:
        return Reject(KIND, "malformed JSON", path=where, detail=str(err))
    if not isinstance(record, dict):
        return Reject(
            KIND, "malformed manifest record", path=where, detail=f"expected an object, got {fields.show(record)}"
        )
    try:
        image = fields.text(record.get("image"), "image")
        image_id = str(fields.record_id(record["id"])) if "id" in record else image
    except fields.FieldError as err:
        return Reject(KIND, "malformed manifest record", path=where, detail=str(err))
    if not options.limits.allow_outside_root:
        try:
            _check_inside(image)
        except fields.FieldError as err:
            return Reject(KIND, "path outside the source folder", image_id=image_id, path=where, detail=str(err))
    try:
        split = fields.split_name(record.get("split", "train"))
        qa = _qa(record.get("qa"))
        labels = fields.labels(record.get("labels"))
    except fields.FieldError as err:
        return Reject(KIND, "malformed manifest record", image_id=image_id, path=where, detail=str(err))
    gsd_m, reject = gsd_field(record.get("gsd_m"), KIND, split=split, image_id=image_id, path=where)
    if reject is not None:
        return reject
    return Item(
        source=KIND,
        split=split,
        image_id=image_id,
        image={"path": [str(root / image)]},
        gsd_m=gsd_m,
        qa=qa,
        labels=labels,
        root=str(root),
    )


def _items(arg: str, options: SourceOptions):
    manifest = _manifest(arg)
    lines = read_index_text(KIND, manifest).splitlines()
    seen = set()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{manifest}:{number}"
        entry = _record(line, where, manifest.parent, options)
        if isinstance(entry, Item):
            if (entry.split, entry.image_id) in seen:
                entry = Reject(KIND, "duplicate image id", split=entry.split, image_id=entry.image_id, path=where)
            else:
                seen.add((entry.split, entry.image_id))
        yield entry


def _validate(arg: str) -> None:
    path = Path(arg)
    if not path.exists():
        raise SourceError(f"{KIND}: {arg} does not exist")
    if not _manifest(arg).is_file():
        raise SourceError(f"{KIND}: no {MANIFEST} in {arg}")


register(Adapter(KIND, "images + JSONL manifest (image, gsd_m, labels, qa)", _validate, _items))
