"""The data that flows from a source adapter through the QA generators into a shard.

An adapter yields `Item`s: light, picklable descriptions of one image (where its bytes are, what GSD
the source states, its source QA and labels). Workers turn an item into a finished `Sample` or a
`Reject`; nothing is written until the whole sample exists in memory, so no half sample can appear.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

SCHEMA = "geoscale-vqa/1"
TIERS = ("object", "structure", "semantic", "scale")
QA_ORIGINS = ("source", "template", "teacher")


@dataclass(frozen=True)
class QA:
    question: str
    answer: str
    tier: str
    type: str
    origin: str

    def __post_init__(self):
        if self.tier not in TIERS:
            raise ValueError(f"tier must be one of {TIERS}, got {self.tier!r}")
        if self.origin not in QA_ORIGINS:
            raise ValueError(f"origin must be one of {QA_ORIGINS}, got {self.origin!r}")

    def to_json(self) -> dict:
        return {
            "question": self.question,
            "answer": self.answer,
            "tier": self.tier,
            "type": self.type,
            "origin": self.origin,
        }


@dataclass
class Item:
    """One image as a source adapter describes it, before any pixel is read.

    `image` says where the pixels come from: {"path": str} for a file, {"bands": [paths]} for a stack
    of single-band rasters (BigEarthNet), {"synthetic": {...}} for the scale world.
    `gsd_m` is the per-image value the source states (None if it states none); `dataset_gsd_m` is the
    dataset-level constant used when neither the source nor the file's GeoTIFF tags give one.
    `labels` are exact annotations the template generator may turn into QA (see `qa.templates`).
    `root` is the source folder the item's files must lie in (see `inputs`); None for synthetic items.
    """

    source: str
    split: str
    image_id: str
    image: dict
    gsd_m: float | None = None
    gsd_origin: str | None = None  # how the source knows gsd_m; None means per-image metadata
    dataset_gsd_m: float | None = None
    gsd_required: bool = True
    qa: list[QA] = field(default_factory=list)
    labels: dict[str, Any] = field(default_factory=dict)
    root: str | None = None

    @property
    def key(self) -> str:
        return sample_key(self.source, self.split, self.image_id)


@dataclass
class Reject:
    """An input that was skipped, and why. Written to rejects.jsonl; never fatal to the build."""

    source: str
    reason: str
    split: str | None = None
    image_id: str | None = None
    path: str | None = None
    detail: str | None = None

    def to_json(self) -> dict:
        out = {"source": self.source, "reason": self.reason}
        for name in ("split", "image_id", "path", "detail"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out


_ADDRESS = re.compile(r" at 0x[0-9A-Fa-f]+")


def error_text(err: BaseException) -> str:
    """`Type: message` of an exception for a reject's detail, without object addresses (`<... at 0x7f..>`),
    so identical builds write identical rejects."""
    return _ADDRESS.sub("", f"{type(err).__name__}: {err}")


_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")
_MAX_KEY = 90  # keeps tar member names within the 100-byte ustar field


def clean_name(text: str) -> str:
    """Letters, digits, '_' and '-' only: no dots (WebDataset splits keys at the first dot), no slashes."""
    return _UNSAFE.sub("_", text).strip("_") or "x"


def sample_key(source: str, split: str, image_id: str) -> str:
    """`__key__` of a sample: readable, dot-free, slash-free, and unique per (source, split, image_id).

    Whenever cleaning changed the id (so two ids could collide) a short hash of the original is added.
    """
    raw = f"{source}/{split}/{image_id}"
    key = f"{clean_name(source)}-{clean_name(split)}-{clean_name(image_id)}"
    if clean_name(image_id) != image_id or len(key) > _MAX_KEY:
        digest = hashlib.sha1(raw.encode()).hexdigest()[:10]
        key = f"{key[: _MAX_KEY - 11]}-{digest}"
    return key
