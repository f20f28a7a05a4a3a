"""XLRS layouts in text files: the project's JSONL and VLMEvalKit's `XLRS-Bench-lite_partN.jsonl` / TSV.

- Project JSONL: one record per line, `multi-choice options` a list of "(A) …" strings, `image` a list
  of paths relative to the file (or to `images=DIR`).
- VLMEvalKit copy (`XLRS-Bench-lite_partN.jsonl`, or a TSV with the same columns): `multi-choice
  options` is one string (the choices and the instruction, appended to the question by VLMEvalKit),
  `image` is base64 text or a list of it, or, as VLMEvalKit writes for a repeated image, the `index`
  of another row of the same file whose image it shares. A localised TSV has `image_path` instead:
  paths relative to `images=DIR` (default: the TSV's folder).

A record is read as VLMEvalKit's when its options are a string. Records are read one at a time and
only their byte offset is kept for the images (`RecordImage`), so a file of 8,500 px base64 images is
never in memory at once.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from .common import require, resolve_images
from .image_refs import RecordImage, base64_images, iter_tsv_rows
from .xlrs_rows import FIELDS, XLRSRow, text_fields

MAX_RECORD_BYTES = 1 << 30  # one JSONL line (one question with its base64 images)
INDEX_REFERENCE_CHARS = 64  # VLMEvalKit: an image field this short names the row holding the image


def _jsonl_records(path: Path):
    """(byte offset, "path:line", record) for every non-blank line; a line is read whole but bounded."""
    with open(path, "rb") as f:
        offset, n = 0, 0
        while True:
            line = f.readline(MAX_RECORD_BYTES + 1)
            if not line:
                return
            n += 1
            where = f"{path}:{n}"
            if len(line) > MAX_RECORD_BYTES and not line.endswith(b"\n"):
                raise ValueError(f"{where}: line longer than {MAX_RECORD_BYTES} bytes")
            if line.strip():
                try:
                    record = json.loads(line)
                except (json.JSONDecodeError, UnicodeDecodeError) as err:
                    raise ValueError(f"{where}: malformed JSON line ({getattr(err, 'msg', err)})") from None
                yield offset, where, record
            offset += len(line)


def _image_refs(record: dict, path: Path, offset: int, fmt: str, root: Path | None, where: str, check: bool):
    """Image references of one record, or the `index` it borrows its image from (VLMEvalKit)."""
    if isinstance(record.get("multi-choice options"), str) and "image" in record:
        value = record["image"]
        if isinstance(value, str) and len(value) <= INDEX_REFERENCE_CHARS:
            return value.strip()  # resolved once the whole file is read
        count = len(base64_images(value, where))
        return tuple(RecordImage(str(path), offset, fmt, k) for k in range(count))
    names = record["image"] if "image" in record else record["image_path"]
    if isinstance(names, str) and names.startswith("["):
        names = base64_images(names, where)  # a list written as text (localised VLMEvalKit TSV)
    return resolve_images(names, root if root is not None else path.parent, where, check=check)


def _rows(records, path: Path, fmt: str, root: Path | None, with_images: bool) -> list[XLRSRow]:
    rows, borrowed = [], {}
    for offset, where, record in records:
        require(record, FIELDS, where)
        if not any(f in record for f in ("image", "image_path")):
            raise ValueError(f"{where}: missing field(s) 'image'")
        fields = text_fields(record, where)
        images = _image_refs(record, path, offset, fmt, root, where, with_images) if with_images else ()
        if isinstance(images, str):
            borrowed[len(rows)] = images
            images = ()
        rows.append(XLRSRow(images=images, where=where, **fields))
    if borrowed:
        rows = _resolve_borrowed(rows, borrowed, path)
    return rows


def _resolve_borrowed(rows: list[XLRSRow], borrowed: dict[int, str], path: Path) -> list[XLRSRow]:
    owners: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        if i not in borrowed:
            owners.setdefault(str(row.index), []).append(i)
    out = list(rows)
    for i, ref in borrowed.items():
        found = owners.get(ref, [])
        if len(found) != 1:
            problem = "no row" if not found else f"{len(found)} rows"
            raise ValueError(f"{rows[i].where}: image refers to index {ref!r}, but {path} has {problem} with it")
        out[i] = replace(rows[i], images=rows[found[0]].images)
    return out


def read_jsonl(path: Path, root: Path | None, with_images: bool) -> list[XLRSRow]:
    return _rows(_jsonl_records(path), path, "jsonl", root, with_images)


def read_tsv(path: Path, root: Path | None, with_images: bool) -> list[XLRSRow]:
    records = ((offset, f"{path}: row {n}", row) for offset, n, row in iter_tsv_rows(str(path)))
    return _rows(records, path, "tsv", root, with_images)
