"""The RSVQA family's published layout, in one place: split-file names, image folders, extensions, GSDs.

Read by the corpus adapter (``sources.rsvqa``: a broken record is rejected and recorded) and by the
benchmark reader (``benchmarks.rsvqa``: the official question set, malformed files raise); the two differ
in what they do with a bad record, not in where the files are. docs/design.md section 3.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

PARTS = ("questions", "answers", "images")


@dataclass(frozen=True)
class Layout:
    prefix: str  # LR | USGS | RSVQAxBEN: the split files' prefix
    name: str  # the source / benchmark name
    images: str  # image folder under the dataset root
    extensions: tuple[str, ...]
    gsd_m: float  # the dataset's GSD (docs/design.md section 2)
    splits: tuple[str, ...]

    def split_files(self, root: Path, split: str) -> dict[str, Path]:
        """``{part: root/<prefix>_split_<split>_<part>.json}`` for questions, answers and images."""
        return {part: Path(root) / f"{self.prefix}_split_{split}_{part}.json" for part in PARTS}

    def image_candidates(self, root: Path, image_id) -> list[Path]:
        """Where image ``image_id`` may be, in the order tried."""
        return [Path(root) / self.images / f"{image_id}{ext}" for ext in self.extensions]


LAYOUTS = {
    layout.prefix: layout
    for layout in (
        Layout("LR", "rsvqa-lr", "Images_LR", (".tif",), 10.0, ("train", "val", "test")),
        Layout("USGS", "rsvqa-hr", "Data", (".tif", ".png"), 0.15, ("train", "val", "test", "test_phili")),
        Layout("RSVQAxBEN", "rsvqa-xben", "Images", (".tif", ".png"), 10.0, ("train", "val", "test")),
    )
}
