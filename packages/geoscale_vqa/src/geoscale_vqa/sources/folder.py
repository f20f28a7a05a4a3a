"""Bring your own data: a folder of images plus a JSONL manifest.

`folder=DIR` reads `DIR/manifest.jsonl` (or `folder=FILE.jsonl` reads that file); image paths are
relative to the manifest's folder. One JSON object per line:

    {"image": "tiles/a.png", "gsd_m": 0.3, "id": "a", "split": "train",
     "labels": {"counts": {"car": 3}, "scene_class": "parking lot", "land_cover": ["..."],
                "rural_urban": "urban", "dominant_cover": "built-up", "presence": {"road": true}},
     "qa": [{"question": "...", "answer": "...", "type": "count", "tier": "object"}]}

Only `image` is required. Without `gsd_m` the image's GeoTIFF tags are used; without either the line is
rejected. `id` defaults to the image path, `split` to train. QA without a valid tier get one by the
documented rule (`qa.tiers`).
"""

from __future__ import annotations

import json
from pathlib import Path

from ..qa.tiers import source_tier
from ..records import QA, TIERS, Item, Reject
from . import Adapter, SourceError, SourceOptions, register
from ._common import gsd_field

KIND = "folder"
MANIFEST = "manifest.jsonl"
_LABEL_KEYS = {"counts", "presence", "scene_class", "land_cover", "rural_urban", "dominant_cover", "boxes"}


def _manifest(arg: str) -> Path:
    path = Path(arg)
    return path / MANIFEST if path.is_dir() else path


def _qa(entries) -> list[QA] | None:
    if entries is None:
        return []
    if not isinstance(entries, list):
        return None
    out = []
    for entry in entries:
        if not (isinstance(entry, dict) and isinstance(entry.get("question"), str) and "answer" in entry):
            return None
        qtype = str(entry.get("type", ""))
        tier = entry.get("tier")
        if tier not in TIERS:
            tier = source_tier(KIND, qtype, entry["question"])
        out.append(QA(entry["question"], str(entry["answer"]), tier, qtype, "source"))
    return out


def _items(arg: str, options: SourceOptions):
    manifest = _manifest(arg)
    seen = set()
    try:
        lines = manifest.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        yield Reject(KIND, "unreadable manifest", path=str(manifest), detail=str(err))
        return
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{manifest.name}:{number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            yield Reject(KIND, "malformed JSON", path=str(manifest), detail=f"line {number}: {err}")
            continue
        if not isinstance(record, dict) or not isinstance(record.get("image"), str) or not record["image"]:
            yield Reject(KIND, "malformed manifest record", path=str(manifest), detail=f"line {number}: no image")
            continue
        image_id = str(record.get("id", record["image"]))
        split = str(record.get("split", "train"))
        gsd_m, reject = gsd_field(record.get("gsd_m"), KIND, split=split, image_id=image_id)
        if reject is not None:
            yield reject
            continue
        qa = _qa(record.get("qa"))
        labels = record.get("labels") or {}
        if qa is None or not isinstance(labels, dict) or set(labels) - _LABEL_KEYS:
            yield Reject(
                KIND,
                "malformed manifest record",
                split=split,
                image_id=image_id,
                detail=f"{where}: qa must be a list of {{question, answer}}; labels keys {sorted(_LABEL_KEYS)}",
            )
            continue
        if (split, image_id) in seen:
            yield Reject(KIND, "duplicate image id", split=split, image_id=image_id, detail=where)
            continue
        seen.add((split, image_id))
        yield Item(
            source=KIND,
            split=split,
            image_id=image_id,
            image={"path": [str(manifest.parent / record["image"])]},
            gsd_m=gsd_m,
            qa=qa,
            labels=labels,
        )


def _validate(arg: str) -> None:
    path = Path(arg)
    if not path.exists():
        raise SourceError(f"{KIND}: {arg} does not exist")
    if not _manifest(arg).is_file():
        raise SourceError(f"{KIND}: no {MANIFEST} in {arg}")


register(Adapter(KIND, "images + JSONL manifest (image, gsd_m, labels, qa)", _validate, _items))
