"""fMoW (Functional Map of the World): per-image JSON metadata with the GSD and the facility box.

Layout: `DIR/<split>/<category>/<category>_<n>/<category>_<n>_<k>_rgb.{jpg,json}` (fMoW-rgb; the
`_msrgb` files of fMoW-full work the same way). The JSON's `gsd` is the image's GSD; its first
bounding box's `category` is the scene class, and every box's pixel size becomes a scale question.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..records import Item, Reject
from . import _fields as fields
from ._common import IMAGE_EXTENSIONS, gsd_field, load_json, require_dir
from .registry import Adapter, SourceError, SourceOptions, register

KIND = "fmow"
SPLITS = ("train", "val", "test", "seq")


def _metadata_files(root: Path) -> list[Path]:
    found = []
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        found += [Path(folder) / f for f in sorted(files) if f.endswith(".json")]
    return found


def _labels(meta: dict) -> dict:
    """`boxes` (and `scene_class` from the first box), type-checked like any source's labels.

    fMoW boxes are [x, y, width, height] in pixels; entries that are not such a box are skipped as
    before, but a box with a non-integer or negative size makes the record a reject (FieldError).
    """
    boxes = meta.get("bounding_boxes") or []
    if not isinstance(boxes, list):
        raise fields.FieldError(f"bounding_boxes must be a list, got {fields.show(boxes)}")
    out = [
        {"category": box.get("category", "object"), "width_px": box["box"][2], "height_px": box["box"][3]}
        for box in boxes
        if isinstance(box, dict) and isinstance(box.get("box"), list) and len(box["box"]) == 4
    ]
    labels = {"boxes": out}
    if out and out[0]["category"] != "object":
        labels["scene_class"] = out[0]["category"]
    return fields.labels(labels)


def _items(arg: str, options: SourceOptions):
    root, limits = Path(arg), options.limits
    for meta_path in _metadata_files(root):
        rel = meta_path.relative_to(root)
        split = rel.parts[0] if len(rel.parts) > 1 and rel.parts[0] in SPLITS else "train"
        image_id = rel.with_suffix("").as_posix()
        where = {"split": split, "image_id": image_id}
        meta, reject = load_json(
            meta_path, KIND, root, max_bytes=limits.max_file_bytes, allow_outside=limits.allow_outside_root, **where
        )
        if reject is None and not isinstance(meta, dict):
            reject = Reject(KIND, "malformed JSON", path=str(meta_path), detail="expected an object", **where)
        if reject is not None:
            yield reject
            continue
        if "gsd" not in meta:
            yield Reject(KIND, "gsd missing", path=str(meta_path), **where)
            continue
        gsd_m, reject = gsd_field(meta["gsd"], KIND, **where)
        if reject is not None or gsd_m is None:
            yield reject or Reject(KIND, "gsd missing", path=str(meta_path), **where)
            continue
        try:
            labels = _labels(meta)
        except fields.FieldError as err:
            yield Reject(KIND, "malformed metadata", path=str(meta_path), detail=str(err), **where)
            continue
        candidates = [str(meta_path.with_suffix(ext)) for ext in IMAGE_EXTENSIONS]
        yield Item(
            source=KIND,
            split=split,
            image_id=image_id,
            image={"path": candidates},
            gsd_m=gsd_m,
            labels=labels,
            root=str(root),
        )


def _validate(arg: str) -> None:
    root = require_dir(KIND, arg)
    if not any(root.rglob("*.json")):
        raise SourceError(f"{KIND}: no per-image .json metadata under {arg}")


register(Adapter(KIND, "fMoW folders with per-image JSON (gsd, bounding_boxes)", _validate, _items))
