"""RSVQA-xBEN: questions on BigEarthNet Sentinel-2 patches (120 × 120 px at 10 m).

Layout: `RSVQAxBEN_QA_{split}.json` = {id: {"type", "question", "answer", "S2_name"}} and one folder per
patch holding single-band GeoTIFFs `{S2_name}_B02.tif` ... (directly in DIR or in `BigEarthNet-v1.0/`).
The RGB image is B04/B03/B02 with a fixed linear stretch (reflectance × 10^4 / 3000 -> 0..255), the
same for every patch so brightness stays comparable. All QA go to one sample per patch.
"""

from __future__ import annotations

from pathlib import Path

from ..qa.tiers import source_tier
from ..records import QA, Item, Reject
from . import _fields as fields
from ._common import load_index, require_dir
from .registry import Adapter, SourceError, SourceOptions, register

KIND = "rsvqa-xben"
SPLITS = ("train", "val", "test")
PATCH_FOLDERS = ("BigEarthNet-v1.0", "BigEarthNet-S2", "BigEarthNet")
RGB_BANDS = ("B04", "B03", "B02")
STRETCH_MAX = 3000.0


def _patch_root(root: Path) -> Path:
    for name in PATCH_FOLDERS:
        if (root / name).is_dir():
            return root / name
    return root


def _items(arg: str, options: SourceOptions):
    root = Path(arg)
    patches = _patch_root(root)
    for split in SPLITS:
        path = root / f"RSVQAxBEN_QA_{split}.json"
        if not path.exists():
            continue
        data = load_index(KIND, path)
        if not isinstance(data, dict):
            raise SourceError(f"{KIND}: index file {path} must hold an object of QA records")
        grouped: dict[str, list[QA]] = {}
        for qid, record in data.items():
            try:
                if not isinstance(record, dict):
                    raise fields.FieldError(f"must be an object, got {fields.show(record)}")
                question = fields.text(record.get("question"), "question")
                answer = fields.answer_text(record.get("answer"))
                patch = fields.text(record.get("S2_name"), "S2_name")
                qtype = fields.optional_text(record.get("type"), "type")
            except fields.FieldError as err:
                yield Reject(KIND, "malformed QA record", split=split, detail=f"id {qid}: {err}")
                continue
            grouped.setdefault(patch, []).append(
                QA(question, answer, source_tier(KIND, qtype, question), qtype, "source")
            )
        for name, qa in grouped.items():
            folder = patches / name
            bands = [str(folder / f"{name}_{band}.tif") for band in RGB_BANDS]
            yield Item(
                source=KIND,
                split=split,
                image_id=name,
                image={"bands": bands, "stretch_max": STRETCH_MAX},
                dataset_gsd_m=10.0,
                qa=qa,
                root=str(root),
            )


def _validate(arg: str) -> None:
    root = require_dir(KIND, arg)
    if not any((root / f"RSVQAxBEN_QA_{s}.json").exists() for s in SPLITS):
        raise SourceError(f"{KIND}: no RSVQAxBEN_QA_{{train,val,test}}.json in {arg}")


register(Adapter(KIND, "RSVQA-xBEN QA JSON + BigEarthNet patch folders", _validate, _items))
