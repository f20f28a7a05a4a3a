"""Helpers shared by the adapters: path checks, JSON loading that reports instead of raising."""

from __future__ import annotations

import json
from pathlib import Path

from ..gsd import GSDError, parse_gsd
from ..records import Reject

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")
SPLIT_NAMES = ("train", "val", "test")


def require_dir(kind: str, arg: str) -> Path:
    from . import SourceError

    path = Path(arg)
    if not path.is_dir():
        raise SourceError(f"{kind}: {arg} is not a directory" if path.exists() else f"{kind}: {arg} does not exist")
    return path


def require_file(kind: str, arg: str) -> Path:
    from . import SourceError

    path = Path(arg)
    if not path.is_file():
        raise SourceError(f"{kind}: {arg} is not a file" if path.exists() else f"{kind}: {arg} does not exist")
    return path


def load_json(path: Path, source: str, split: str | None = None):
    """(data, None) or (None, Reject) for an unreadable or malformed JSON file."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f), None
    except FileNotFoundError:
        return None, Reject(source, "missing file", split=split, path=str(path))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        return None, Reject(source, "malformed JSON", split=split, path=str(path), detail=str(err))


def gsd_field(value, source: str, **where):
    """(gsd or None, None) for a present-or-missing GSD field, (None, Reject) for an invalid one."""
    try:
        return parse_gsd(value), None
    except GSDError as err:
        return None, Reject(source, "invalid GSD", detail=str(err), **where)


def image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
