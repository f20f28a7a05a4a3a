"""MtSCCD-style scene classification folders (about 1 m GSD, 300 × 300 px).

Layout: `DIR/<class>/<image>` or `DIR/<split>/<class>/<image>` with split in train/val/test. The class
folder is the label; the dataset has no questions, so its QA come from templates (scene class plus
whatever the GSD allows).
"""

from __future__ import annotations

from pathlib import Path

from ..records import Item
from ._common import SPLIT_NAMES, image_files, require_dir
from .registry import Adapter, SourceError, SourceOptions, register

KIND = "mtsccd"
DATASET_GSD_M = 1.0


def _split_roots(root: Path) -> list[tuple[str, Path]]:
    splits = [(s, root / s) for s in SPLIT_NAMES if (root / s).is_dir()]
    return splits or [("train", root)]


def _items(arg: str, options: SourceOptions):
    root = Path(arg)
    for split, folder in _split_roots(root):
        for class_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
            for image in image_files(class_dir):
                yield Item(
                    source=KIND,
                    split=split,
                    image_id=f"{class_dir.name}/{image.stem}",
                    image={"path": [str(image)]},
                    dataset_gsd_m=DATASET_GSD_M,
                    labels={"scene_class": class_dir.name},
                    root=str(root),
                )


def _validate(arg: str) -> None:
    root = require_dir(KIND, arg)
    if not any(p.is_dir() for _, folder in _split_roots(root) for p in folder.iterdir()):
        raise SourceError(f"{KIND}: {arg} has no class folders")


register(Adapter(KIND, "scene folders per class (optionally under train/val/test)", _validate, _items))
