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
from . import Adapter, SourceError, SourceOptions, register
from ._common import load_json, require_dir

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
        data, reject = load_json(path, KIND, split)
        if reject is None and not isinstance(data, dict):
            reject = Reject(KIND, "malformed JSON", split=split, path=str(path), detail="expected an object of QA")
        if reject is not None:
            yield reject
            continue
        grouped: dict[str, list[QA]] = {}
        for qid, record in data.items():
            if not (
                isinstance(record, dict)
                and all(isinstance(record.get(k), str) for k in ("question", "answer", "S2_name"))
            ):
                yield Reject(KIND, "malformed QA record", split=split, detail=f"id {qid}: {repr(record)[:160]}")
                continue
            qtype = str(record.get("type", ""))
            grouped.setdefault(record["S2_name"], []).append(
                QA(record["question"], record["answer"], source_tier(KIND, qtype, record["question"]), qtype, "source")
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
            )


def _validate(arg: str) -> None:
    root = require_dir(KIND, arg)
    if not any((root / f"RSVQAxBEN_QA_{s}.json").exists() for s in SPLITS):
        raise SourceError(f"{KIND}: no RSVQAxBEN_QA_{{train,val,test}}.json in {arg}")


register(Adapter(KIND, "RSVQA-xBEN QA JSON + BigEarthNet patch folders", _validate, _items))
