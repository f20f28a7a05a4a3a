"""Helpers shared by the adapters: path checks, index files (fatal when broken), per-record JSON (a reject)."""

from __future__ import annotations

import json
from pathlib import Path

from ..gsd import GSDError, parse_gsd
from ..inputs import InputError, read_bytes, read_index
from ..records import Reject, error_text
from .registry import SourceError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")
SPLIT_NAMES = ("train", "val", "test")


def require_dir(kind: str, arg: str) -> Path:
    path = Path(arg)
    if not path.is_dir():
        raise SourceError(f"{kind}: {arg} is not a directory" if path.exists() else f"{kind}: {arg} does not exist")
    return path


def require_file(kind: str, arg: str) -> Path:
    path = Path(arg)
    if not path.is_file():
        raise SourceError(f"{kind}: {arg} is not a file" if path.exists() else f"{kind}: {arg} does not exist")
    return path


def read_index_text(kind: str, path: Path) -> str:
    """The text of an index file (split JSON, LLaVA JSON, a JSONL manifest). Without it the source cannot be
    read at all, so a problem is a `SourceError` that stops the build with one line."""
    try:
        return read_index(path).decode("utf-8")
    except FileNotFoundError:
        raise SourceError(f"{kind}: index file {path} does not exist") from None
    except (InputError, OSError, UnicodeDecodeError) as err:
        raise SourceError(f"{kind}: index file {path} is unreadable ({error_text(err)})") from None


def load_index(kind: str, path: Path):
    """The parsed JSON of an index file; problems as in `read_index_text`."""
    text = read_index_text(kind, path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise SourceError(f"{kind}: index file {path} is not valid JSON ({err})") from None


def load_json(path: Path, source: str, root: Path, *, max_bytes: int, allow_outside: bool = False, **where):
    """(data, None) or (None, Reject) for a per-record JSON file (fMoW metadata): confined and bounded."""
    try:
        data = read_bytes(path, root=root, max_bytes=max_bytes, allow_outside=allow_outside)
        return json.loads(data.decode("utf-8")), None
    except FileNotFoundError:
        return None, Reject(source, "missing file", path=str(path), **where)
    except InputError as err:
        return None, Reject(source, err.reason, path=str(path), detail=err.detail, **where)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        return None, Reject(source, "malformed JSON", path=str(path), detail=str(err), **where)


def gsd_field(value, source: str, **where):
    """(gsd or None, None) for a present-or-missing GSD field, (None, Reject) for an invalid one."""
    try:
        return parse_gsd(value), None
    except GSDError as err:
        return None, Reject(source, "invalid GSD", detail=str(err), **where)


def image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
