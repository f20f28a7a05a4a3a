"""The uniform records every benchmark reader yields: one `Question` per benchmark question.

A reader turns a benchmark's own layout into `Question`s, so prompting, answer extraction and scoring
never look at the source format again. Images travel as references (a path, inline bytes, a PIL image
or a lazy `ParquetImage`), opened only by `open_image` when a model needs the pixels.
"""

from __future__ import annotations

import io
from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

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

    def __len__(self) -> int:
        return len(self.questions)


@dataclass(frozen=True)
class ParquetImage:
    """Image k of row `row` in a parquet file, read on demand so a benchmark never holds all pixels."""

    path: str
    row: int
    column: str = "image"
    k: int = 0

    def read_bytes(self) -> bytes:
        group, offset = _locate_row(self.path, self.row)
        cell = _row_group_column(self.path, group, self.column)[offset].as_py()
        return _image_bytes(cell, self.k, self.path)


@lru_cache(maxsize=64)
def _row_group_starts(path: str) -> tuple[int, ...]:
    import pyarrow.parquet as pq

    meta = pq.ParquetFile(path).metadata
    starts, total = [], 0
    for group in range(meta.num_row_groups):
        starts.append(total)
        total += meta.row_group(group).num_rows
    return (*starts, total)


def _locate_row(path: str, row: int) -> tuple[int, int]:
    starts = _row_group_starts(path)
    if not 0 <= row < starts[-1]:
        raise ValueError(f"{path}: row {row} out of range ({starts[-1]} rows)")
    group = bisect_right(starts, row) - 1
    return group, row - starts[group]


@lru_cache(maxsize=1)
def _row_group_column(path: str, group: int, column: str):
    """One row group's image column, kept while a runner walks its rows in order (a group is read once)."""
    import pyarrow.parquet as pq

    return pq.ParquetFile(path).read_row_group(group, columns=[column]).column(0)


def _image_bytes(cell, k: int, where: str) -> bytes:
    """The bytes of image k in a Hugging Face `Image`/`Sequence(Image)` cell ({"bytes", "path"} or a list)."""
    if isinstance(cell, list):
        cell = cell[k]
    if isinstance(cell, dict) and cell.get("bytes"):
        return cell["bytes"]
    if isinstance(cell, (bytes, bytearray)):
        return bytes(cell)
    raise ValueError(f"{where}: image cell has no inline bytes")


def open_image(ref):
    """An RGB PIL image from any image reference a reader produces."""
    from PIL import Image

    if isinstance(ref, ParquetImage):
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
