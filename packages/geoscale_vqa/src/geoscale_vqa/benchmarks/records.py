"""The uniform records every benchmark reader yields: one `Question` per benchmark question.

A reader turns a benchmark's own layout into `Question`s, so prompting, answer extraction and scoring
never look at the source format again. Images travel as references (a path, inline bytes, a PIL image
or a lazy reference from `image_refs`), opened only by `open_image` when a model needs the pixels.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .image_refs import ArrowStreamImage, ParquetImage, RecordImage

LAZY_IMAGES = (ParquetImage, ArrowStreamImage, RecordImage)

# Answer kinds (see judge.py for how each is compared):
#   choice     letter set, exact set match               (XLRS, OmniEarth)
#   yesno      "yes" | "no"                              (RSVQA presence/comp, GeoScale presence)
#   count      exact integer                             (RSVQA-HR count, GeoScale count)
#   count_bin  RSVQA-LR count bin: 0, 1-10, 11-100, 101-1000, >1000
#   area_bin   RSVQA-HR area bin in m², same bin edges
#   vocab      one word of a closed vocabulary (`options`), e.g. rural | urban
#   length     one or more ground lengths in metres, matched within a relative tolerance
#   set        comma-separated items, exact set match (land-cover lists)
#   text       normalised exact string match
ANSWER_KINDS = ("choice", "yesno", "count", "count_bin", "area_bin", "vocab", "length", "set", "text")


@dataclass(frozen=True)
class Answer:
    """A ground truth, already normalised: `value` is a frozenset of letters, a str, an int or a tuple."""

    kind: str
    value: Any
    options: tuple[str, ...] = ()  # option letters (choice) or candidate words (vocab)

    def __post_init__(self):
        if self.kind not in ANSWER_KINDS:
            raise ValueError(f"unknown answer kind {self.kind!r}; expected one of {ANSWER_KINDS}")


@dataclass(frozen=True)
class Question:
    id: int | str  # the benchmark's own id, written back unchanged into predictions files
    prompt: str  # the full text prompt in the benchmark's own format
    answer: Answer
    images: tuple = ()  # path strings, bytes, PIL images or ParquetImage; () when read without images
    groups: Mapping[str, str] = field(default_factory=dict)  # e.g. {"subtask": ..., "L1": ...}
    gsd_m: float | None = None  # None where the benchmark carries no GSD
    question: str = ""  # the raw question text
    answer_text: str = ""  # the ground truth as written in the data

    @property
    def key(self) -> str:
        return question_key(self.id)


def question_key(qid) -> str:
    """Ids are matched as strings, so XLRS index 7 and a predictions file's "7" are the same question."""
    if isinstance(qid, bool) or not isinstance(qid, (int, str)):
        raise ValueError(f"question id must be an integer or a string, got {qid!r}")
    return str(qid)


@dataclass
class Benchmark:
    kind: str
    path: Path
    questions: list[Question]
    files: list[Path]  # the annotation files read; their sha256 goes into results.json
    images_root: Path | None = None
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> questions not scored (e.g. grounding)
    notes: list[str] = field(default_factory=list)
    variant: str = ""  # which scorer rules apply where one kind has several (rsvqa-lr, rsvqa-hr, rsvqa-xben)

    def __len__(self) -> int:
        return len(self.questions)


def open_image(ref):
    """An RGB PIL image from any image reference a reader produces."""
    from PIL import Image

    if isinstance(ref, LAZY_IMAGES):
        ref = ref.read_bytes()
    if isinstance(ref, (bytes, bytearray)):
        image = Image.open(io.BytesIO(ref))
    elif isinstance(ref, (str, Path)):
        image = Image.open(ref)
    elif isinstance(ref, Image.Image):
        image = ref
    else:
        raise ValueError(f"not an image reference: {type(ref).__name__}")
    return image if image.mode == "RGB" else image.convert("RGB")
