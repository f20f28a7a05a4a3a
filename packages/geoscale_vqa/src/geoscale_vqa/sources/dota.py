"""DOTA: aerial images with oriented object boxes and a per-image GSD header.

Layout: `DIR/images/*.png` + `DIR/labelTxt/*.txt`, or the same under `DIR/{train,val,test}/`.
A label file starts with `imagesource:...` and `gsd:0.146...` (`gsd:None` when unknown) followed by
one object per line: `x1 y1 x2 y2 x3 y3 x4 y4 category difficult`. Objects become exact counts for the
template generator; DOTA v1.0's 15 categories are exhaustively annotated (absent = 0), later versions'
extra categories are only counted where they occur.
"""

from __future__ import annotations

from pathlib import Path

from ..inputs import InputError, read_bytes
from ..records import Item, Reject
from ._common import SPLIT_NAMES, gsd_field, image_files, require_dir
from .registry import Adapter, SourceError, SourceOptions, register

KIND = "dota"
VOCABULARY_V1 = (
    "plane",
    "ship",
    "storage-tank",
    "baseball-diamond",
    "tennis-court",
    "basketball-court",
    "ground-track-field",
    "harbor",
    "bridge",
    "large-vehicle",
    "small-vehicle",
    "helicopter",
    "roundabout",
    "soccer-ball-field",
    "swimming-pool",
)


def _split_roots(root: Path) -> list[tuple[str, Path]]:
    splits = [(s, root / s) for s in SPLIT_NAMES if (root / s / "images").is_dir()]
    return splits or [("train", root)]


def parse_label_file(text: str) -> tuple[str | None, dict[str, int]]:
    """(raw gsd header value or None, counts per category); raises ValueError on a malformed line."""
    gsd_text, counts = None, {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("imagesource:"):
            continue
        if line.startswith("gsd:"):
            gsd_text = line[4:]
            continue
        parts = line.split()
        if len(parts) not in (9, 10):
            raise ValueError(f"line {number}: expected 8 coordinates, a category and a difficulty, got {line!r}")
        try:
            [float(v) for v in parts[:8]]
        except ValueError:
            raise ValueError(f"line {number}: non-numeric coordinates in {line!r}") from None
        counts[parts[8]] = counts.get(parts[8], 0) + 1
    return gsd_text, counts


def _items(arg: str, options: SourceOptions):
    root, limits = Path(arg), options.limits
    for split, folder in _split_roots(root):
        for image in image_files(folder / "images"):
            where = {"split": split, "image_id": image.stem}
            label = folder / "labelTxt" / f"{image.stem}.txt"
            try:
                data = read_bytes(
                    label, root=root, max_bytes=limits.max_file_bytes, allow_outside=limits.allow_outside_root
                )
                gsd_text, found = parse_label_file(data.decode("utf-8"))
            except FileNotFoundError:
                yield Reject(KIND, "missing label file", path=str(label), **where)
                continue
            except InputError as err:
                yield Reject(KIND, err.reason, path=str(label), detail=err.detail, **where)
                continue
            except (UnicodeDecodeError, ValueError) as err:
                yield Reject(KIND, "malformed label file", path=str(label), detail=str(err), **where)
                continue
            gsd_m, reject = gsd_field(gsd_text, KIND, **where)
            if reject is not None:
                yield reject
                continue
            counts = {name: 0 for name in VOCABULARY_V1} | found
            yield Item(
                source=KIND,
                split=split,
                image_id=image.stem,
                image={"path": [str(image)]},
                gsd_m=gsd_m,
                labels={"counts": counts},
                root=str(root),
            )


def _validate(arg: str) -> None:
    root = require_dir(KIND, arg)
    if not any((folder / "images").is_dir() for _, folder in _split_roots(root)):
        raise SourceError(f"{KIND}: no images/ folder in {arg} (or in its train/val/test folders)")


register(Adapter(KIND, "DOTA images/ + labelTxt/ (per-image gsd header)", _validate, _items))
