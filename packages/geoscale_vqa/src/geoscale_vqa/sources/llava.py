"""LLaVA-style instruction data (Stage 1): `[{"id", "image", "conversations": [{"from", "value"}]}]`.

Images are relative to the JSON file's folder. Human/gpt turns become QA pairs in order (type
`conversation`); the `<image>` placeholder is the only text removed from a question. A GSD is
optional here (field `gsd_m` or `gsd`, else the image's GeoTIFF tags, else none: Stage 1 does not use
it), but a GSD that is given must be valid. Records that share an image become one sample.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..qa.tiers import source_tier
from ..records import QA, Item, Reject
from . import _fields as fields
from ._common import gsd_field, load_index, require_file
from .registry import Adapter, SourceError, SourceOptions, register

KIND = "llava"
_PLACEHOLDER = re.compile(r"\s*<image>\s*")


def _pairs(conversations) -> list[tuple[str, str]] | None:
    if not isinstance(conversations, list) or len(conversations) < 2 or len(conversations) % 2:
        return None
    pairs = []
    for human, gpt in zip(conversations[::2], conversations[1::2]):
        if not (isinstance(human, dict) and isinstance(gpt, dict)):
            return None
        if human.get("from") not in ("human", "user") or gpt.get("from") not in ("gpt", "assistant"):
            return None
        if not isinstance(human.get("value"), str) or not isinstance(gpt.get("value"), str):
            return None
        pairs.append((_PLACEHOLDER.sub(" ", human["value"]).strip(), gpt["value"]))
    return pairs


def _items(arg: str, options: SourceOptions):
    path = Path(arg)
    data = load_index(KIND, path)
    if not isinstance(data, list):
        raise SourceError(f"{KIND}: {path} must hold a list of records, got {type(data).__name__}")
    items: dict[str, Item] = {}
    for n, record in enumerate(data):
        if not isinstance(record, dict):
            yield Reject(KIND, "malformed record", detail=f"record {n}: {fields.show(record)}")
            continue
        try:
            record_id = fields.record_id(record.get("id", n), f"record {n}: id")
        except fields.FieldError as err:
            yield Reject(KIND, "malformed record", detail=str(err))
            continue
        image = record.get("image")
        if image is None:
            yield Reject(KIND, "no image (text-only record)", detail=f"record {record_id}")
            continue
        try:
            image = fields.text(image, "image")
            split = fields.split_name(record.get("split", "train"))
        except fields.FieldError as err:
            yield Reject(KIND, "malformed record", detail=f"record {record_id}: {err}")
            continue
        pairs = _pairs(record.get("conversations"))
        if pairs is None:
            yield Reject(KIND, "malformed conversations", image_id=image, split=split, detail=f"record {record_id}")
            continue
        gsd_m, reject = gsd_field(record.get("gsd_m", record.get("gsd")), KIND, image_id=image, split=split)
        if reject is not None:
            yield reject
            continue
        qa = [QA(q, a, source_tier(KIND, "conversation", q), "conversation", "source") for q, a in pairs]
        key = (split, image)
        if key in items:
            if gsd_m is not None and items[key].gsd_m not in (None, gsd_m):
                yield Reject(
                    KIND,
                    "conflicting GSD for the same image",
                    image_id=image,
                    split=split,
                    detail=f"record {record_id}: {gsd_m} vs {items[key].gsd_m}",
                )
                continue
            items[key].qa += qa
            items[key].gsd_m = items[key].gsd_m if items[key].gsd_m is not None else gsd_m
            continue
        items[key] = Item(
            source=KIND,
            split=split,
            image_id=image,
            image={"path": [str(path.parent / image)]},
            gsd_m=gsd_m,
            gsd_required=False,
            qa=qa,
            root=str(path.parent),
        )
    yield from items.values()


def _validate(arg: str) -> None:
    path = require_file(KIND, arg)
    if path.suffix.lower() != ".json":
        raise SourceError(f"{KIND}: expected a LLaVA-style .json file, got {arg}")


register(Adapter(KIND, "LLaVA-style conversation JSON (GSD optional)", _validate, _items))
